/*
 * metrics: the daemon's counters and histograms, and their rendering in
 * the Prometheus text exposition format for GET /metrics.
 *
 * Process-wide state made of atomics: every function is thread-safe and
 * lock-free; nothing is allocated except the rendered text.
 */
#ifndef BERTH_METRICS_H
#define BERTH_METRICS_H

#include <stdint.h>

#include "buf.h"
#include "store.h"

/* Records the start time (call once at start-up). */
void metrics_start(void);
/* One finished request: route (enum route_kind), status, duration, bytes. */
void metrics_request(int route, int status, double seconds, uint64_t bytes_in, uint64_t bytes_out);
/* A blob upload request starts or ends streaming its body. */
void metrics_upload_begin(void);
void metrics_upload_end(void);
/* A token was issued (ok) or refused. */
void metrics_token(int ok);
/* A password or access-token check failed. */
void metrics_login_failed(void);
/* Appends the whole exposition (storage figures from the database included). */
void metrics_render(struct store *st, struct buf *out);

#endif
