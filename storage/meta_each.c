/* meta_each: the shared statement runners: a read handed to a callback row by row, a write in its own transaction. */
#include <assert.h>

#include "meta_internal.h"

int meta_each(struct meta *m, const struct meta_query *q, meta_bind_fn bind, const void *barg, meta_row_fn row, void *rarg)
{
	struct meta_conn *c;
	struct db_stmt *s;
	int rc = meta_conn_get(m, &c);
	if (!rc)
		rc = meta_stmt(c, q, &s);
	if (rc)
		return rc;
	if (bind)
		bind(s, barg);
	while ((rc = meta_step(c, s)) == 1) {
		if ((rc = row(s, rarg)))
			break;
	}
	meta_stmt_done(c, q, s);
	return rc;
}

/* meta_write()'s statement, its parameters and what it hands back. */
struct write_one {
	const struct meta_query *q;
	meta_bind_fn bind;
	const void *barg;
	int changes;
	int64_t rowid;
};

static int write_one_tx(struct meta_conn *c, void *arg)
{
	struct write_one *w = arg;
	struct db_stmt *s;
	int rc = meta_stmt(c, w->q, &s);
	if (rc)
		return rc;
	if (w->bind)
		w->bind(s, w->barg);
	rc = meta_step(c, s);
	if (rc == 1) {
		w->rowid = db_col_int64(s, 0);
		rc = meta_exec(c, s);
	}
	w->changes = (int)db_changes(c->db);
	meta_stmt_done(c, w->q, s);
	return rc;
}

int meta_write(struct meta *m, const struct meta_query *q, meta_bind_fn bind, const void *barg, int *changes, int64_t *rowid)
{
	struct write_one w = { .q = q, .bind = bind, .barg = barg };
	int rc = meta_tx_run(m, write_one_tx, &w);
	if (changes)
		*changes = w.changes;
	if (rowid)
		*rowid = w.rowid;
	return rc;
}

int meta_first_int64(struct db_stmt *s, void *rarg)
{
	if (rarg)
		*(int64_t *)rarg = db_col_int64(s, 0);
	return 1;
}

void meta_bind_text1(struct db_stmt *s, const void *text)
{
	db_bind_text(s, 1, text);
}

void meta_bind_int64_1(struct db_stmt *s, const void *v)
{
	db_bind_int64(s, 1, *(const int64_t *)v);
}

void meta_bind_texts(struct db_stmt *s, const void *texts)
{
	const struct meta_texts *t = texts;
	assert(t->n >= 0 && t->n <= (int)(sizeof(t->v) / sizeof(t->v[0])));
	for (int i = 0; i < t->n; i++)
		db_bind_text(s, i + 1, t->v[i]);
}

void meta_bind_ints(struct db_stmt *s, const void *ints)
{
	const struct meta_ints *t = ints;
	assert(t->n >= 0 && t->n <= (int)(sizeof(t->v) / sizeof(t->v[0])));
	for (int i = 0; i < t->n; i++)
		db_bind_int64(s, i + 1, t->v[i]);
}

void meta_bind_text_int(struct db_stmt *s, const void *ti)
{
	const struct meta_text_int *t = ti;
	db_bind_text(s, 1, t->text);
	db_bind_int64(s, 2, t->num);
}
