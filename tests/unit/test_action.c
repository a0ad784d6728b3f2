/* Unit tests for common/action: the action bits and their names. */
#include <string.h>

#include "action.h"
#include "t.h"

static unsigned from(const char *s)
{
	return action_from_name(s, strlen(s));
}

int main(void)
{
	CHECK_EQ_INT(ACTION_ALL, 7);
	CHECK_STR(action_name(ACTION_PULL), "pull");
	CHECK_STR(action_name(ACTION_PUSH), "push");
	CHECK_STR(action_name(ACTION_DELETE), "delete");
	CHECK(action_name(0) == NULL);
	CHECK(action_name(ACTION_PULL | ACTION_PUSH) == NULL);
	CHECK(action_name(8) == NULL);
	CHECK_EQ_INT(from("pull"), ACTION_PULL);
	CHECK_EQ_INT(from("push"), ACTION_PUSH);
	CHECK_EQ_INT(from("delete"), ACTION_DELETE);
	CHECK_EQ_INT(from("*"), ACTION_ALL);
	CHECK_EQ_INT(from(""), 0);
	CHECK_EQ_INT(from("Pull"), 0);
	CHECK_EQ_INT(from("pul"), 0);
	CHECK_EQ_INT(from("pulls"), 0);
	CHECK_EQ_INT(from("**"), 0);
	/* Only the len bytes count: a name inside a longer list. */
	CHECK_EQ_INT(action_from_name("push,pull", 4), ACTION_PUSH);
	CHECK_EQ_INT(action_from_name("pull\0x", 6), 0);
	return t_done();
}
