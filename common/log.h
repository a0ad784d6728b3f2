/*
 * log: leveled log lines on stderr.
 *
 * Each call writes exactly one line with a single write(2), so lines from
 * different threads never interleave. Owns only the current level (a global
 * set at start-up and on reload). Never pass secrets (passwords, tokens,
 * Authorization headers) to these functions.
 */
#ifndef BERTH_LOG_H
#define BERTH_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };
/* AUTO: text when stderr is a terminal, JSON otherwise (for log collectors). */
enum log_format { LOG_FMT_AUTO = 0, LOG_FMT_TEXT, LOG_FMT_JSON };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "error", "warn", "info", "debug"; returns 0 or -1. */
int log_level_parse(const char *s, enum log_level *out);
void log_set_format(enum log_format fmt);
/* The format in force (never AUTO: resolved against stderr when set). */
enum log_format log_get_format(void);
/* Parses "auto", "text", "json"; returns 0 or -1. */
int log_format_parse(const char *s, enum log_format *out);
/* Appends the current time as "2026-01-31T12:34:56.789Z". */
struct buf;
void log_timestamp(struct buf *out);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes line (no newline needed) as is, whatever the level. */
void log_raw(const char *line, unsigned long len);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
