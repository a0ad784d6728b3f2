/*
 * http: the libmicrohttpd glue, the only code that calls libmicrohttpd.
 *
 * Runs the daemon with an internal thread pool (epoll), turns each request
 * into a struct req for the router, feeds request bodies to it as they
 * stream in, and writes the response it describes (file bodies with
 * MHD_create_response_from_fd, so plain HTTP uses sendfile). One access
 * log line per request. struct http_server is owned by the caller of
 * http_start() and freed by http_stop().
 *
 * Limits on hostile clients: beyond max_connections a new connection is
 * closed as soon as it is accepted; a connection idle for idle_timeout is
 * closed; and a request head (request line and headers) must be complete
 * within twice idle_timeout of the connection opening or of its previous
 * request ending, however slowly its bytes trickle in.
 */
#ifndef BERTH_HTTP_H
#define BERTH_HTTP_H

#include "config.h"
#include "handlers.h"

struct http_server;

/* Starts listening as cfg says. Returns 0 or E_CONFIG/E_IO (logged). */
int http_start(struct registry *reg, const struct config *cfg, struct http_server **out);
/* Stops accepting, waits for the worker threads, frees the server. */
void http_stop(struct http_server *s);

#endif
