/* action: the pull/push/delete bits and their names. */
#include "action.h"

#include <string.h>

static const struct {
	enum action bit;
	const char *name;
} names[] = { { ACTION_PULL, "pull" }, { ACTION_PUSH, "push" }, { ACTION_DELETE, "delete" } };

const char *action_name(unsigned a)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (a == (unsigned)names[i].bit)
			return names[i].name;
	return NULL;
}

unsigned action_from_name(const char *s, size_t len)
{
	if (len == 1 && s[0] == '*')
		return ACTION_ALL;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i].name) == len && !memcmp(s, names[i].name, len))
			return (unsigned)names[i].bit;
	return 0;
}
