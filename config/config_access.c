/* config_access: reads the users, groups and access rules of the config file and checks their references. */
#include <stdlib.h>
#include <string.h>

#include "config_walk.h"
#include "err.h"
#include "xalloc.h"

/*
 * A list in the file replaces the one c already holds: config_release() on
 * a zeroed config that borrows just those lists frees exactly them.
 */
static void drop_lists(struct config *c, int users, int groups, int rules)
{
	struct config tmp = { 0 };
	if (users) {
		tmp.users = c->users;
		tmp.n_users = c->n_users;
		c->users = NULL;
		c->n_users = 0;
	}
	if (groups) {
		tmp.groups = c->groups;
		tmp.n_groups = c->n_groups;
		c->groups = NULL;
		c->n_groups = 0;
	}
	if (rules) {
		tmp.rules = c->rules;
		tmp.n_rules = c->n_rules;
		c->rules = NULL;
		c->n_rules = 0;
	}
	config_release(&tmp);
}

static int user_key(struct config_walk *w, const char *key, json_t *item, void *arg)
{
	struct config_user *u = arg;
	const char *why;
	if (!strcmp(key, "groups"))
		return config_walk_strv(w, item, config_name_check, "group names", &u->groups);
	if (strcmp(key, "password"))
		return config_walk_fail(w, "unknown key (expected one of: password, groups)");
	if (!json_is_string(item))
		return config_walk_fail(w, "expected a string");
	if (config_phc_check(json_string_value(item), &why))
		return config_walk_fail(w, "%s", why);
	u->password = xstrdup(json_string_value(item));
	return 0;
}

static int read_user(struct config_walk *w, const char *name, json_t *v, void *arg)
{
	struct config *c = arg;
	const char *why;
	if (config_name_check(name, &why))
		return config_walk_fail(w, "bad user name: %s", why);
	struct config_user *u = &c->users[c->n_users++];
	u->name = xstrdup(name);
	return config_walk_object(w, v, "an object like {\"password\": \"$argon2id$...\", \"groups\": [...]}",
				  user_key, u);
}

int config_walk_users(struct config_walk *w, json_t *v, struct config *c)
{
	if (json_is_object(v)) {
		drop_lists(c, 1, 0, 0);
		c->users = xcalloc(json_object_size(v) + 1, sizeof(*c->users));
	}
	return config_walk_object(w, v, "an object of users by name", read_user, c);
}

static int read_group(struct config_walk *w, const char *name, json_t *v, void *arg)
{
	struct config *c = arg;
	const char *why;
	if (config_name_check(name, &why))
		return config_walk_fail(w, "bad group name: %s", why);
	struct config_group *g = &c->groups[c->n_groups++];
	g->name = xstrdup(name);
	return config_walk_strv(w, v, config_name_check, "user names", &g->members);
}

int config_walk_groups(struct config_walk *w, json_t *v, struct config *c)
{
	if (json_is_object(v)) {
		drop_lists(c, 0, 1, 0);
		c->groups = xcalloc(json_object_size(v) + 1, sizeof(*c->groups));
	}
	return config_walk_object(w, v, "an object of member lists by group name", read_group, c);
}

static int read_actions(struct config_walk *w, json_t *v, unsigned *out)
{
	static const char msg[] = "expected \"pull\", \"push\", \"delete\" or \"*\"";
	size_t i;
	json_t *item;
	int rc = 0;
	if (!json_is_array(v) || !json_array_size(v))
		return config_walk_fail(w, "expected a non-empty array of actions (\"pull\", \"push\", \"delete\" or \"*\")");
	json_array_foreach(v, i, item) {
		const char *s = json_string_value(item); /* NULL when not a string */
		size_t old = config_walk_push_index(w, i);
		unsigned bits = s ? action_from_name(s, strlen(s)) : 0;
		if (!s)
			rc = config_walk_fail(w, "%s", msg);
		else if (bits)
			*out |= bits;
		else
			rc = config_walk_fail(w, "unknown action \"%s\" (%s)", s, msg);
		config_walk_pop(w, old);
		if (rc)
			return rc;
	}
	return 0;
}

static int rule_key(struct config_walk *w, const char *key, json_t *item, void *arg)
{
	struct config_rule *r = arg;
	int rc;
	if (!strcmp(key, "repositories")) {
		rc = config_walk_strv(w, item, config_glob_check, "repository globs", &r->repositories);
		if (!rc && !r->repositories.n)
			rc = config_walk_fail(w, "expected at least one repository glob");
		return rc;
	}
	if (!strcmp(key, "users"))
		return config_walk_strv(w, item, config_name_check, "user names", &r->users);
	if (!strcmp(key, "groups"))
		return config_walk_strv(w, item, config_name_check, "group names", &r->groups);
	if (!strcmp(key, "anonymous")) {
		r->anonymous = json_is_true(item);
		return json_is_boolean(item) ? 0 : config_walk_fail(w, "expected true or false");
	}
	if (!strcmp(key, "actions"))
		return read_actions(w, item, &r->actions);
	return config_walk_fail(w, "unknown key (expected one of: repositories, users, groups, anonymous, actions)");
}

static int read_rule(struct config_walk *w, json_t *v, struct config_rule *r)
{
	int rc = config_walk_object(w, v, "an object", rule_key, r);
	if (rc)
		return rc;
	if (!r->repositories.n)
		return config_walk_fail(w, "a rule needs \"repositories\"");
	if (!r->actions)
		return config_walk_fail(w, "a rule needs \"actions\"");
	if (!r->users.n && !r->groups.n && !r->anonymous)
		return config_walk_fail(w, "a rule must name \"users\", \"groups\" or \"anonymous\": true");
	return 0;
}

int config_walk_access(struct config_walk *w, json_t *v, struct config *c)
{
	size_t i;
	json_t *item;
	if (!json_is_array(v))
		return config_walk_fail(w, "expected an array of rules");
	drop_lists(c, 0, 0, 1);
	c->rules = xcalloc(json_array_size(v) + 1, sizeof(*c->rules));
	json_array_foreach(v, i, item) {
		size_t old = config_walk_push_index(w, i);
		int rc = read_rule(w, item, &c->rules[c->n_rules++]);
		config_walk_pop(w, old);
		if (rc)
			return rc;
	}
	return 0;
}

/* Tag globs: the tag alphabet plus '*'. */
int config_tag_glob_check(const char *s, const char **why)
{
	if (!*s || strlen(s) > 128) {
		*why = "expected 1 to 128 characters";
		return -1;
	}
	for (; *s; s++) {
		char ch = *s;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      strchr("._-*", ch))) {
			*why = "tag globs hold letters, digits, '.', '_', '-' and '*'";
			return -1;
		}
	}
	return 0;
}

static int immutable_key(struct config_walk *w, const char *key, json_t *item, void *arg)
{
	struct config_immutable *im = arg;
	if (!strcmp(key, "repositories"))
		return config_walk_strv(w, item, config_glob_check, "repository globs", &im->repositories);
	if (!strcmp(key, "tags"))
		return config_walk_strv(w, item, config_tag_glob_check, "tag globs", &im->tags);
	return config_walk_fail(w, "unknown key (expected one of: repositories, tags)");
}

static int read_immutable(struct config_walk *w, json_t *v, struct config_immutable *im)
{
	int rc = config_walk_object(w, v, "an object", immutable_key, im);
	if (rc)
		return rc;
	if (!im->repositories.n || !im->tags.n)
		return config_walk_fail(w, "an immutable-tag rule needs \"repositories\" and \"tags\"");
	return 0;
}

int config_walk_immutable(struct config_walk *w, json_t *v, struct config *c)
{
	size_t i;
	json_t *item;
	if (!json_is_array(v))
		return config_walk_fail(w, "expected an array of rules");
	c->immutable = xcalloc(json_array_size(v) + 1, sizeof(*c->immutable));
	c->n_immutable = 0;
	json_array_foreach(v, i, item) {
		size_t old = config_walk_push_index(w, i);
		int rc = read_immutable(w, item, &c->immutable[c->n_immutable++]);
		config_walk_pop(w, old);
		if (rc)
			return rc;
	}
	return 0;
}

static int find_user(const struct config *c, const char *name)
{
	for (size_t i = 0; i < c->n_users; i++)
		if (!strcmp(c->users[i].name, name))
			return 1;
	return 0;
}

/* A group exists when the "groups" object defines it or some user lists it. */
static int find_group(const struct config *c, const char *name)
{
	for (size_t i = 0; i < c->n_groups; i++)
		if (!strcmp(c->groups[i].name, name))
			return 1;
	for (size_t i = 0; i < c->n_users; i++)
		for (size_t j = 0; j < c->users[i].groups.n; j++)
			if (!strcmp(c->users[i].groups.v[j], name))
				return 1;
	return 0;
}

/* Names are checked once the whole file is read, so order in the file does not matter. */
int config_walk_references(struct config_walk *w, const struct config *c)
{
	for (size_t i = 0; i < c->n_groups; i++) {
		const struct config_strv *m = &c->groups[i].members;
		for (size_t j = 0; j < m->n; j++) {
			if (find_user(c, m->v[j]))
				continue;
			buf_reset(&w->path);
			buf_addf(&w->path, "groups.%s[%zu]", c->groups[i].name, j);
			return config_walk_fail(w, "unknown user \"%s\" (not in \"users\")", m->v[j]);
		}
	}
	for (size_t i = 0; i < c->n_rules; i++) {
		const struct config_rule *r = &c->rules[i];
		for (size_t j = 0; j < r->users.n; j++) {
			if (find_user(c, r->users.v[j]))
				continue;
			buf_reset(&w->path);
			buf_addf(&w->path, "access[%zu].users[%zu]", i, j);
			return config_walk_fail(w, "unknown user \"%s\" (not in \"users\")", r->users.v[j]);
		}
		for (size_t j = 0; j < r->groups.n; j++) {
			if (find_group(c, r->groups.v[j]))
				continue;
			buf_reset(&w->path);
			buf_addf(&w->path, "access[%zu].groups[%zu]", i, j);
			return config_walk_fail(w, "unknown group \"%s\" (not in \"groups\" nor in any user's \"groups\")",
				    r->groups.v[j]);
		}
	}
	return 0;
}
