/*
 * cli: what the administrative subcommands share: opening the data
 * directory and policy of a registry (which may be running at the same
 * time: SQLite's WAL makes that safe) and closing them again.
 */
#ifndef BERTH_CLI_H
#define BERTH_CLI_H

#include "config.h"
#include "handlers.h"

struct cli {
	struct config cfg;
	struct registry reg;
};

/* Loads the config (path, $BERTH_CONFIG or the embedded default) and opens the registry's state. */
int cli_open(struct cli *cli, const char *config_path);
void cli_close(struct cli *cli);

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

#endif
