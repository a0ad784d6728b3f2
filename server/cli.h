/*
 * cli: what the administrative subcommands share: opening the data
 * directory and policy of a registry (which may be running at the same
 * time: SQLite's WAL makes that safe) and closing them again (main.c);
 * option parsing, usage errors and time formatting (cli_util.c).
 */
#ifndef BERTH_CLI_H
#define BERTH_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "handlers.h"

struct cli {
	struct config cfg;
	struct registry reg;
};

/*
 * Loads the config (path, $BERTH_CONFIG or the embedded default; root, when
 * not NULL, overrides its data directory, as `serve --root` does) and opens
 * the registry's state. Never creates a data directory or an administrator
 * password: a directory `berth serve` did not make is refused with "no
 * berth data directory at ROOT (use --root or -c)". Returns 0, or 1 after
 * printing why.
 */
int cli_open(struct cli *cli, const char *config_path, const char *root);
void cli_close(struct cli *cli);

/* ---- shared by the subcommands (cli_util.c) ---- */

/* Prints "error: <message>", a blank line and usage to stderr; returns 2, the exit status of a usage error. */
int cli_usage_error(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * One option of a subcommand, matched by name or alias (may be NULL): a
 * flag sets *flag to 1, an option with a value stores the next argument
 * (borrowed from argv) in *value. With neither, it asks for help.
 */
struct cli_opt {
	const char *name, *alias;
	int *flag;
	const char **value;
};
/*
 * Parses argv[0 .. argc-1] by opts (ended by an entry without a name). A
 * word not starting with '-' goes to *positional when that is not NULL
 * and still NULL. Returns 0; -1 after printing usage to stdout for a help
 * option; 2 after a usage error (unknown option, missing value, argument
 * too many: see cli_usage_error()).
 */
int cli_parse_opts(int argc, char **argv, const struct cli_opt *opts, const char **positional, const char *usage);

/* ms since the epoch as RFC 3339 UTC with milliseconds ("2024-05-01T12:00:00.000Z") into out (n >= 40 is ample). */
void cli_fmt_time(int64_t ms, char *out, size_t n);

int cli_token_main(int argc, char **argv);
int cli_health_main(int argc, char **argv);
/* `berth import` and `berth export` (cli_import.c). */
int cli_import_main(int argc, char **argv);
int cli_export_main(int argc, char **argv);
/* `berth tag ls | history | rollback` (cli_tag.c); argv[0] is "tag". Returns the exit status. */
int cli_tag_main(int argc, char **argv);
/* `berth audit [...]` (cli_audit.c); argv[0] is "audit". Returns the exit status. */
int cli_audit_main(int argc, char **argv);
/* `berth gc [--dry-run] [--json] [--verbose]` (cli_gc.c); argv[0] is "gc". Returns the exit status. */
int cli_gc_main(int argc, char **argv);
/* `berth fsck [--repair] [--json] [--verbose]` (cli_gc.c); argv[0] is "fsck". Returns the exit status. */
int cli_fsck_main(int argc, char **argv);
/* `berth migrate --to CONFIG [...]` (cli_migrate.c); argv[0] is "migrate". Returns the exit status. */
int cli_migrate_main(int argc, char **argv);

#endif
