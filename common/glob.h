/*
 * glob: the glob language of the config's repository and tag patterns
 * (access rules, immutable-tag rules) and of personal access token scopes.
 *
 * Owns nothing: pure functions on caller-owned NUL-terminated strings,
 * nothing allocated, nothing retained. Thread-safe.
 */
#ifndef BERTH_GLOB_H
#define BERTH_GLOB_H

// Returns 1 when name matches glob, else 0. Globs are '/'-separated
// components; '*' matches any run of characters within one component, and
// "**" as a whole component matches any number of components, including
// none. (Line comments here because the examples hold a slash-star.)
//   "team/*"     matches "team/app",  not "team" nor "team/a/b"
//   "team/**"    matches "team", "team/app" and "team/a/b"
//   "a/**/b"     matches "a/b", "a/x/b" and "a/x/y/b"
//   "*-cache"    matches "go-cache", not "x/go-cache"
// Everything else matches itself only.
int glob_match(const char *glob, const char *name);

#endif
