/* log: one write(2) per line on stderr, so threads never interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"

static atomic_int current = LOG_INFO;
static atomic_int format = LOG_FMT_TEXT;
static const char *names[] = { "error", "warn", "info", "debug" };

void log_set_level(enum log_level level)
{
	atomic_store(&current, (int)level);
}

enum log_level log_get_level(void)
{
	return (enum log_level)atomic_load(&current);
}

int log_level_parse(const char *s, enum log_level *out)
{
	for (int i = 0; i <= LOG_DEBUG; i++) {
		if (!strcmp(s, names[i])) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void log_set_format(enum log_format fmt)
{
	if (fmt == LOG_FMT_AUTO)
		fmt = isatty(STDERR_FILENO) ? LOG_FMT_TEXT : LOG_FMT_JSON;
	atomic_store(&format, (int)fmt);
}

enum log_format log_get_format(void)
{
	return (enum log_format)atomic_load(&format);
}

int log_format_parse(const char *s, enum log_format *out)
{
	static const char *fnames[] = { "auto", "text", "json" };
	for (int i = 0; i <= LOG_FMT_JSON; i++) {
		if (!strcmp(s, fnames[i])) {
			*out = (enum log_format)i;
			return 0;
		}
	}
	return -1;
}

void log_timestamp(struct buf *out)
{
	char ts[32];
	struct timespec now;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	buf_addf(out, "%s.%03ldZ", ts, now.tv_nsec / 1000000);
}

void log_raw(const char *line, unsigned long len)
{
	while (len) {
		ssize_t n = write(STDERR_FILENO, line, len);
		if (n <= 0)
			return;
		line += n;
		len -= (unsigned long)n;
	}
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	if ((int)level > atomic_load(&current))
		return;
	struct buf b = BUF_INIT, msg = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vaddf(&msg, fmt, ap);
	va_end(ap);
	if (atomic_load(&format) == LOG_FMT_JSON) {
		buf_adds(&b, "{\"time\":\"");
		log_timestamp(&b);
		buf_addf(&b, "\",\"level\":\"%s\",\"msg\":", names[level]);
		buf_add_json_str(&b, msg.buf);
		buf_addch(&b, '}');
	} else {
		log_timestamp(&b);
		buf_addf(&b, " %s: %s", names[level], msg.buf);
	}
	buf_addch(&b, '\n');
	log_raw(b.buf, b.len);
	buf_release(&b);
	buf_release(&msg);
}
