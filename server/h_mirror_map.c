/*
 * h_mirror_map: the pull-through cache's bounded maps (see
 * h_mirror_internal.h) and the tag freshness kept in one of them. A map
 * is cleared whole when full: what it holds only saves upstream calls.
 */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "h_mirror_internal.h"
#include "xalloc.h"

struct mirror_map_entry {
	struct mirror_map_entry *next;
	int64_t v;
	char *text;
	size_t len;
	char key[];
};

static size_t map_hash(const char *s)
{
	size_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

void mirror_map_release(struct mirror_map *mp)
{
	for (size_t i = 0; i < mp->nslots; i++)
		for (struct mirror_map_entry *e = mp->slots[i], *next; e; e = next) {
			next = e->next;
			free(e->text);
			free(e);
		}
	free(mp->slots);
	mp->slots = NULL;
	mp->count = 0;
	mp->bytes = 0;
}

static struct mirror_map_entry *map_find(const struct mirror_map *mp, const char *key)
{
	if (!mp->slots)
		return NULL;
	for (struct mirror_map_entry *e = mp->slots[map_hash(key) % mp->nslots]; e; e = e->next)
		if (!strcmp(e->key, key))
			return e;
	return NULL;
}

void mirror_map_set_text(struct mirror_map *mp, const char *key, int64_t v, const char *text, size_t len)
{
	struct mirror_map_entry *e;
	if (text && mp->max_bytes && len > mp->max_bytes)
		return;
	if (!mp->nslots)
		mp->nslots = 4096;
	if ((e = map_find(mp, key))) {
		mp->bytes -= e->len;
		free(e->text);
		e->text = NULL;
		e->len = 0;
	} else {
		if (mp->count >= mp->max)
			mirror_map_release(mp);
		if (!mp->slots)
			mp->slots = xcalloc(mp->nslots, sizeof(*mp->slots));
		struct mirror_map_entry **slot = &mp->slots[map_hash(key) % mp->nslots];
		size_t klen = strlen(key);
		e = xcalloc(1, sizeof(*e) + klen + 1);
		memcpy(e->key, key, klen + 1);
		e->next = *slot;
		*slot = e;
		mp->count++;
	}
	e->v = v;
	if (text) {
		/* past the byte bound everything else goes, this one stays */
		if (mp->max_bytes && mp->bytes + len > mp->max_bytes) {
			mirror_map_release(mp);
			mirror_map_set_text(mp, key, v, text, len);
			return;
		}
		e->text = xmalloc(len + 1);
		memcpy(e->text, text, len);
		e->text[len] = '\0';
		e->len = len;
		mp->bytes += len;
	}
}

void mirror_map_set(struct mirror_map *mp, const char *key, int64_t v)
{
	mirror_map_set_text(mp, key, v, NULL, 0);
}

int mirror_map_get_text(const struct mirror_map *mp, const char *key, int64_t *v, struct buf *text)
{
	const struct mirror_map_entry *e = map_find(mp, key);
	if (!e)
		return 0;
	*v = e->v;
	if (text && e->text)
		buf_add(text, e->text, e->len);
	return 1;
}

int mirror_map_get(const struct mirror_map *mp, const char *key, int64_t *v)
{
	return mirror_map_get_text(mp, key, v, NULL);
}

/* ---- tag freshness ---- */

int mirror_fresh_since(int64_t at_ms, unsigned freshness_s)
{
	return clock_wall_ms() - at_ms < (int64_t)freshness_s * 1000;
}

void mirror_mark_fresh(struct mirror *m, const char *key, int64_t at_ms)
{
	pthread_mutex_lock(&m->lock);
	mirror_map_set(&m->fresh, key, at_ms);
	pthread_mutex_unlock(&m->lock);
}

int mirror_is_fresh(struct mirror *m, const char *key, unsigned freshness_s)
{
	int64_t at = 0;
	int found;
	pthread_mutex_lock(&m->lock);
	found = mirror_map_get(&m->fresh, key, &at);
	pthread_mutex_unlock(&m->lock);
	return found && mirror_fresh_since(at, freshness_s);
}
