/* req: per-request state and the response description handlers fill. */
#include "req.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "authn.h"
#include "xalloc.h"

void req_init(struct req *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->body, 0);
	buf_init(&r->err_detail, 0);
	buf_init(&r->out, 0);
	r->out_fd = -1;
	r->content_length = -1;
	r->method = M_OTHER;
	r->method_str = "";
}

void req_release(struct req *r)
{
	if (r->on_cleanup)
		r->on_cleanup(r);
	authn_ident_free(r->ident);
	free(r->path);
	free(r->name);
	free(r->ref);
	query_release(&r->query);
	buf_release(&r->body);
	buf_release(&r->err_detail);
	buf_release(&r->out);
	for (size_t i = 0; i < r->nheaders; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	free(r->headers);
	store_reader_free(r->out_reader);
	r->out_reader = NULL;
	if (r->out_fd >= 0)
		close(r->out_fd);
}

const char *req_arg(struct req *r, const char *key)
{
	return query_get(&r->query, key);
}

int req_fail(struct req *r, int err, const char *fmt, ...)
{
	if (r->err)
		return r->err;
	r->err = err;
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		buf_vaddf(&r->err_detail, fmt, ap);
		va_end(ap);
	}
	return err;
}

void resp_header(struct req *r, const char *name, const char *fmt, ...)
{
	struct buf v = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vaddf(&v, fmt, ap);
	va_end(ap);
	r->headers = xrealloc(r->headers, (r->nheaders + 1) * sizeof(*r->headers));
	r->headers[r->nheaders].name = xstrdup(name);
	r->headers[r->nheaders].value = buf_detach(&v, NULL);
	r->nheaders++;
}

void resp_status(struct req *r, int status)
{
	r->status = status;
}

void resp_body(struct req *r, int status, const char *content_type)
{
	r->status = status;
	if (content_type)
		resp_header(r, "Content-Type", "%s", content_type);
}

void resp_reader(struct req *r, int status, struct store_reader *rd, uint64_t len)
{
	r->status = status;
	store_reader_free(r->out_reader);
	r->out_reader = rd;
	r->out_len = len;
}

void resp_fd(struct req *r, int status, int fd, uint64_t off, uint64_t len)
{
	r->status = status;
	if (r->out_fd >= 0)
		close(r->out_fd);
	r->out_fd = fd;
	r->out_off = off;
	r->out_len = len;
}
