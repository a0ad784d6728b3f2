/* gc_mark: the mark of one repository: what is live, what goes and in which order. */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "gc_internal.h"
#include "manifest.h"
#include "xalloc.h"

static int on_manifest(void *ctx, const struct meta_gc_manifest *m)
{
	struct gc_repo *g = ctx;
	g->nodes = xgrow(g->nodes, &g->nodes_alloc, g->n, sizeof(*g->nodes));
	struct gc_node *nd = &g->nodes[g->n];
	memset(nd, 0, sizeof(*nd));
	nd->digest = xstrdup(m->digest);
	nd->subject = m->subject ? xstrdup(m->subject) : NULL;
	nd->size = m->size;
	nd->root = (unsigned char)m->root;
	*strmap_get(&g->index, m->digest, 1) = (int64_t)g->n;
	g->n++;
	return 0;
}

static long node_of(const struct gc_repo *g, const char *digest)
{
	int64_t *v = strmap_get((struct strmap *)&g->index, digest, 0);
	return v ? (long)*v : -1;
}

static int on_ref(void *ctx, const char *manifest, int kind, const char *digest)
{
	struct gc_repo *g = ctx;
	g->refs = xgrow(g->refs, &g->refs_alloc, g->nrefs, sizeof(*g->refs));
	struct gc_ref *r = &g->refs[g->nrefs++];
	r->from = node_of(g, manifest);
	r->kind = kind;
	r->digest = xstrdup(digest);
	return 0;
}

static int on_link(void *ctx, const char *digest, int64_t size, int64_t linked_ms)
{
	struct gc_repo *g = ctx;
	g->links = xgrow(g->links, &g->links_alloc, g->nlinks, sizeof(*g->links));
	struct gc_link *l = &g->links[g->nlinks++];
	memset(l, 0, sizeof(*l));
	l->digest = xstrdup(digest);
	l->size = size;
	l->linked_ms = linked_ms;
	return 0;
}

int gc_repo_load(struct meta *m, struct gc_repo *g, int64_t id, const struct meta_gc_cutoffs *cut)
{
	int rc;
	memset(g, 0, sizeof(*g));
	g->id = id;
	/*
	 * Three reads, not one snapshot: what changes in between is caught by
	 * the re-checks of the deleting transactions. References of a manifest
	 * that appeared after the first read count as live (from = -1).
	 */
	rc = meta_gc_manifests(m, id, cut, on_manifest, g);
	if (!rc)
		rc = meta_gc_refs(m, id, on_ref, g);
	if (!rc)
		rc = meta_gc_links(m, id, on_link, g);
	return rc;
}

/* Keeps edges, keeper -> kept: an index keeps its children, a manifest keeps its referrers. */
struct edges {
	size_t *start; /* n + 1 offsets into to */
	size_t *to;
};

static void edges_build(const struct gc_repo *g, struct edges *e)
{
	size_t *count = xcalloc(g->n + 1, sizeof(*count)), total = 0;
	e->start = xcalloc(g->n + 1, sizeof(*e->start));
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1) {
			for (size_t i = 0; i < g->n; i++) {
				e->start[i] = total;
				total += count[i];
				count[i] = 0;
			}
			e->start[g->n] = total;
			e->to = xcalloc(total ? total : 1, sizeof(*e->to));
		}
		for (size_t i = 0; i < g->nrefs; i++) {
			const struct gc_ref *r = &g->refs[i];
			long c = r->kind == REF_CHILD && r->from >= 0 ? node_of(g, r->digest) : -1;
			if (c < 0)
				continue;
			if (pass == 1)
				e->to[e->start[r->from] + count[r->from]] = (size_t)c;
			count[r->from]++;
		}
		for (size_t i = 0; i < g->n; i++) {
			long s = g->nodes[i].subject ? node_of(g, g->nodes[i].subject) : -1;
			if (s < 0)
				continue;
			if (pass == 1)
				e->to[e->start[s] + count[s]] = i;
			count[s]++;
		}
	}
	free(count);
}

/* Liveness spreads from the roots along keeps edges. */
static void mark_live(struct gc_repo *g, const struct edges *e)
{
	size_t *stack = xmalloc((g->n ? g->n : 1) * sizeof(*stack)), top = 0;
	for (size_t i = 0; i < g->nrefs; i++) {
		/* a child of a manifest newer than the first read: its keeper is live by definition */
		long c = g->refs[i].from < 0 && g->refs[i].kind == REF_CHILD ? node_of(g, g->refs[i].digest) : -1;
		if (c >= 0)
			g->nodes[c].root = 1;
	}
	for (size_t i = 0; i < g->n; i++)
		if (g->nodes[i].root) {
			g->nodes[i].live = 1;
			stack[top++] = i;
		}
	while (top) {
		size_t v = stack[--top];
		for (size_t k = e->start[v]; k < e->start[v + 1]; k++) {
			size_t w = e->to[k];
			if (!g->nodes[w].live) {
				g->nodes[w].live = 1;
				stack[top++] = w;
			}
		}
	}
	free(stack);
}

/*
 * Deletion order among the dead: a keeper before what it keeps (Kahn's
 * algorithm), so that the re-check inside each transaction, which keeps a
 * manifest while any existing manifest keeps it, lets the whole chain go in
 * one run. Dead manifests keeping each other in a cycle (possible only
 * when built on purpose) never reach in-degree zero and stay, with what
 * they keep: the re-check would refuse them anyway.
 */
static void order_dead(struct gc_repo *g, const struct edges *e)
{
	size_t head = 0;
	g->order = xmalloc((g->n ? g->n : 1) * sizeof(*g->order));
	for (size_t v = 0; v < g->n; v++)
		for (size_t k = e->start[v]; k < e->start[v + 1]; k++)
			if (!g->nodes[v].live && !g->nodes[e->to[k]].live)
				g->nodes[e->to[k]].indeg++;
	for (size_t v = 0; v < g->n; v++)
		if (!g->nodes[v].live && !g->nodes[v].indeg)
			g->order[g->norder++] = v;
	while (head < g->norder) {
		size_t v = g->order[head++];
		g->nodes[v].gone = 1;
		for (size_t k = e->start[v]; k < e->start[v + 1]; k++) {
			size_t w = e->to[k];
			if (!g->nodes[w].live && --g->nodes[w].indeg == 0)
				g->order[g->norder++] = w;
		}
	}
}

/* A link stays when a manifest that stays is that blob or uses it as config or layer. */
static void decide_links(struct gc_repo *g, int64_t grace_ms)
{
	struct strmap kept = { 0 };
	size_t dead = 0;
	for (size_t i = 0; i < g->n; i++)
		if (!g->nodes[i].gone)
			strmap_get(&kept, g->nodes[i].digest, 1);
	for (size_t i = 0; i < g->nrefs; i++) {
		const struct gc_ref *r = &g->refs[i];
		if (r->kind != REF_CHILD && (r->from < 0 || !g->nodes[r->from].gone))
			strmap_get(&kept, r->digest, 1);
	}
	for (size_t i = 0; i < g->nlinks; i++) {
		struct gc_link *l = &g->links[i];
		if (strmap_get(&kept, l->digest, 0))
			continue;
		if (node_of(g, l->digest) >= 0)
			l->own_gone = 1; /* only a manifest to be deleted is not in kept */
		else if (l->linked_ms < grace_ms)
			l->dead = 1;
		if (l->own_gone || l->dead)
			dead++;
	}
	g->empties = g->norder == g->n && dead == g->nlinks;
	strmap_release(&kept);
}

void gc_repo_mark(struct gc_repo *g, int64_t grace_ms)
{
	struct edges e = { 0 };
	edges_build(g, &e);
	mark_live(g, &e);
	order_dead(g, &e);
	decide_links(g, grace_ms);
	free(e.start);
	free(e.to);
}

void gc_repo_release(struct gc_repo *g)
{
	for (size_t i = 0; i < g->n; i++) {
		free(g->nodes[i].digest);
		free(g->nodes[i].subject);
	}
	for (size_t i = 0; i < g->nrefs; i++)
		free(g->refs[i].digest);
	for (size_t i = 0; i < g->nlinks; i++)
		free(g->links[i].digest);
	free(g->nodes);
	free(g->refs);
	free(g->links);
	free(g->order);
	strmap_release(&g->index);
	memset(g, 0, sizeof(*g));
}
