/* cli_util: option parsing, usage errors and time formatting shared by the administrative subcommands. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"

int cli_usage_error(const char *usage, const char *fmt, ...)
{
	va_list ap;
	fputs("error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n\n%s", usage);
	return 2;
}

static const struct cli_opt *find_opt(const struct cli_opt *opts, const char *arg)
{
	for (; opts->name; opts++)
		if (!strcmp(arg, opts->name) || (opts->alias && !strcmp(arg, opts->alias)))
			return opts;
	return NULL;
}

int cli_parse_opts(int argc, char **argv, const struct cli_opt *opts, const char **positional, const char *usage)
{
	for (int i = 0; i < argc; i++) {
		const char *o = argv[i];
		const struct cli_opt *p = find_opt(opts, o);
		if (p && p->flag) {
			*p->flag = 1;
		} else if (p && p->value) {
			if (i + 1 >= argc)
				return cli_usage_error(usage, "option \"%s\" needs a value", o);
			*p->value = argv[++i];
		} else if (p) {
			fputs(usage, stdout);
			return -1;
		} else if (!positional || o[0] == '-') {
			return cli_usage_error(usage, "unknown option \"%s\"", o);
		} else if (*positional) {
			return cli_usage_error(usage, "unexpected argument \"%s\"", o);
		} else {
			*positional = o;
		}
	}
	return 0;
}

void cli_fmt_time(int64_t ms, char *out, size_t n)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char ts[24];
	gmtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, n, "%s.%03dZ", ts, (int)(ms % 1000));
}
