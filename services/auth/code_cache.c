/*
 * A short-lived memory of what the database said about codes.
 *
 * Visitors log in with the same code again and again (every page load, every device
 * of a family) and an admin's dashboard lists the codes every few seconds; each was a
 * database round trip (plus, for the list, one decryption per code). Answers are kept
 * here and stay right because:
 *
 * - vap-auth is the only writer of auth.otps, and every change it makes (create,
 *   update, delete, access) calls auth_code_cache_changed() once committed, which
 *   forgets everything (a new generation). A reader takes the generation BEFORE its
 *   database read and stores under it, so an answer read while a change was
 *   committing is never believed: either the read started after the commit, or the
 *   change's new generation outdates it.
 * - Answers also age out after ttl_ms (AUTH_CODE_CACHE_MS, 1 s by default), which
 *   bounds what a second vap-auth (the overlap of a rolling update) or a hand edit of
 *   the database could leave stale. Logins never spend a use (access does, in one SQL
 *   statement), so the worst a stale answer can do is let a visitor log in up to that
 *   long after their code ran out, and then be refused access.
 * - Unknown codes are not remembered (guesses are throttled instead), nor lists over
 *   64 KiB. Decrypted codes in a kept list are wiped when it is dropped.
 * - An answer past half its ttl is refreshed ahead by ONE reader: the first to find it
 *   is told "miss" and reads the database, while the others keep getting the answer
 *   (still within its ttl) until the new one replaces it. Without this, every answer
 *   expired for everyone at once and all readers of that moment (64 under load) queued
 *   for 4 database connections: a 10-20 ms stall every second, most of the p99.
 */
#include "code_cache.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"

#define FACT_SLOTS 4096     /* direct-mapped: a colliding hash replaces the older one */
#define LIST_SLOTS 4
#define LIST_MAX_BYTES 65536

struct fact_slot {
    uint8_t hash[AUTH_CODE_HASH_LEN];
    uint64_t gen; /* 0: empty */
    int64_t at_ms;
    int64_t refresh_claimed_ms; /* when a reader last took the refresh ahead */
    struct auth_code_facts facts;
};

struct list_slot {
    int32_t limit, offset, filter;
    uint64_t gen; /* 0: empty */
    int64_t at_ms;
    int64_t refresh_claimed_ms;
    uint8_t *packed;
    size_t len;
};

struct auth_code_cache {
    pthread_mutex_t lock;
    atomic_uint_fast64_t gen; /* starts at 1 */
    int64_t ttl_ms;
    unsigned next_list;
    struct fact_slot facts[FACT_SLOTS];
    struct list_slot lists[LIST_SLOTS];
};

int auth_code_cache_create(struct auth_code_cache **out, int64_t ttl_ms)
{
    struct auth_code_cache *c = calloc(1, sizeof(*c));
    if (!c)
        return VAP_ENOMEM;
    pthread_mutex_init(&c->lock, NULL);
    atomic_init(&c->gen, 1);
    c->ttl_ms = ttl_ms;
    *out = c;
    return 0;
}

static void drop_list(struct list_slot *s)
{
    if (s->packed) {
        sodium_memzero(s->packed, s->len);
        free(s->packed);
    }
    memset(s, 0, sizeof(*s));
}

void auth_code_cache_destroy(struct auth_code_cache *c)
{
    if (!c)
        return;
    for (int i = 0; i < LIST_SLOTS; i++)
        drop_list(&c->lists[i]);
    pthread_mutex_destroy(&c->lock);
    sodium_memzero(c, sizeof(*c));
    free(c);
}

uint64_t auth_code_cache_generation(struct auth_code_cache *c)
{
    return atomic_load(&c->gen);
}

void auth_code_cache_changed(struct auth_code_cache *c)
{
    atomic_fetch_add(&c->gen, 1);
    /* stale facts are ignored by generation; lists hold decrypted codes: wipe them now */
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < LIST_SLOTS; i++)
        drop_list(&c->lists[i]);
    pthread_mutex_unlock(&c->lock);
}

static bool fresh(const struct auth_code_cache *c, uint64_t gen, int64_t at_ms, int64_t now)
{
    return gen != 0 && gen == atomic_load(&c->gen) && now - at_ms < c->ttl_ms;
}

/* Whether this reader, holding the lock and having found a fresh answer read at at_ms,
 * should refresh it ahead instead (see the top of this file). A claim lapses after half
 * a ttl, so a refresher whose read failed does not stop the next one. */
static bool claim_refresh(const struct auth_code_cache *c, int64_t at_ms,
                          int64_t *claimed_ms, int64_t now)
{
    int64_t half = c->ttl_ms / 2;
    if (half == 0 || now - at_ms < half || now - *claimed_ms < half)
        return false;
    *claimed_ms = now;
    return true;
}

static struct fact_slot *slot_of(struct auth_code_cache *c, const uint8_t *hash)
{
    uint32_t i;
    memcpy(&i, hash, sizeof(i)); /* the hash is a MAC: its bytes are uniform */
    return &c->facts[i % FACT_SLOTS];
}

bool auth_code_cache_find(struct auth_code_cache *c, const uint8_t hash[AUTH_CODE_HASH_LEN],
                          struct auth_code_facts *out)
{
    struct fact_slot *s;
    int64_t now;
    bool hit;
    if (c->ttl_ms <= 0)
        return false;
    s = slot_of(c, hash);
    pthread_mutex_lock(&c->lock);
    now = vap_now_ms();
    hit = fresh(c, s->gen, s->at_ms, now) &&
          sodium_memcmp(s->hash, hash, AUTH_CODE_HASH_LEN) == 0 &&
          !claim_refresh(c, s->at_ms, &s->refresh_claimed_ms, now);
    if (hit)
        *out = s->facts;
    pthread_mutex_unlock(&c->lock);
    return hit;
}

void auth_code_cache_put(struct auth_code_cache *c, const uint8_t hash[AUTH_CODE_HASH_LEN],
                         uint64_t gen, const struct auth_code_facts *facts)
{
    struct fact_slot *s;
    if (c->ttl_ms <= 0)
        return;
    s = slot_of(c, hash);
    pthread_mutex_lock(&c->lock);
    memcpy(s->hash, hash, AUTH_CODE_HASH_LEN);
    s->gen = gen;
    s->at_ms = vap_now_ms();
    s->refresh_claimed_ms = 0;
    s->facts = *facts;
    pthread_mutex_unlock(&c->lock);
}

bool auth_code_cache_list_find(struct auth_code_cache *c, int32_t limit, int32_t offset,
                               int32_t filter, uint8_t **out, size_t *len)
{
    bool hit = false;
    int64_t now = vap_now_ms();
    if (c->ttl_ms <= 0)
        return false;
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < LIST_SLOTS && !hit; i++) {
        struct list_slot *s = &c->lists[i];
        if (!fresh(c, s->gen, s->at_ms, now) || s->limit != limit || s->offset != offset ||
            s->filter != filter)
            continue;
        if (claim_refresh(c, s->at_ms, &s->refresh_claimed_ms, now))
            break; /* this reader refreshes it */
        *out = malloc(s->len ? s->len : 1);
        if (*out) {
            memcpy(*out, s->packed, s->len);
            *len = s->len;
            hit = true;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return hit;
}

void auth_code_cache_list_put(struct auth_code_cache *c, int32_t limit, int32_t offset,
                              int32_t filter, uint64_t gen, const uint8_t *packed, size_t len)
{
    uint8_t *copy;
    struct list_slot *s = NULL;
    if (c->ttl_ms <= 0 || len > LIST_MAX_BYTES)
        return;
    copy = malloc(len ? len : 1);
    if (!copy)
        return;
    memcpy(copy, packed, len);
    pthread_mutex_lock(&c->lock);
    if (gen != atomic_load(&c->gen)) { /* changed while it was read: not worth keeping */
        pthread_mutex_unlock(&c->lock);
        sodium_memzero(copy, len);
        free(copy);
        return;
    }
    for (int i = 0; i < LIST_SLOTS && !s; i++)
        if (c->lists[i].gen && c->lists[i].limit == limit && c->lists[i].offset == offset &&
            c->lists[i].filter == filter)
            s = &c->lists[i];
    if (!s)
        s = &c->lists[c->next_list++ % LIST_SLOTS];
    drop_list(s);
    s->limit = limit;
    s->offset = offset;
    s->filter = filter;
    s->gen = gen;
    s->at_ms = vap_now_ms();
    s->refresh_claimed_ms = 0;
    s->packed = copy;
    s->len = len;
    pthread_mutex_unlock(&c->lock);
}
