/*
 * Failed-login throttle (see throttle.h): an open-addressing table of fixed size with
 * short linear probes. An empty slot has hash 0.
 */
#include "throttle.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

#define PROBE 8
#define MAX_STRIKES 8                    /* blocks double up to 2^8 times the first one */
#define MAX_BLOCK_MS (24 * 3600 * 1000LL) /* and never pass a day */
#define FORGIVE_MS (24 * 3600 * 1000LL)   /* a key quiet this long starts again */

struct slot {
    uint64_t hash;
    int64_t window_start;
    int64_t blocked_until;
    int64_t last_seen;
    int failures;
    int strikes; /* blocks earned so far: each one lasts twice the one before */
};

struct auth_throttle {
    pthread_mutex_t lock;
    struct auth_throttle_limits lim;
    uint8_t key[crypto_shorthash_KEYBYTES];
    struct slot *slots;
};

int auth_throttle_create(struct auth_throttle **out, const struct auth_throttle_limits *lim)
{
    struct auth_throttle *t;
    if (lim->capacity < PROBE || lim->max_failures < 1)
        return VAP_EINVAL;
    t = calloc(1, sizeof(*t));
    if (!t)
        return VAP_ENOMEM;
    t->slots = calloc(lim->capacity, sizeof(*t->slots));
    if (!t->slots) {
        free(t);
        return VAP_ENOMEM;
    }
    t->lim = *lim;
    crypto_shorthash_keygen(t->key);
    pthread_mutex_init(&t->lock, NULL);
    *out = t;
    return 0;
}

void auth_throttle_destroy(struct auth_throttle *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->lock);
    free(t->slots);
    free(t);
}

static uint64_t key_hash(struct auth_throttle *t, const char *key)
{
    uint64_t h;
    crypto_shorthash((unsigned char *)&h, (const unsigned char *)key, strlen(key), t->key);
    return h ? h : 1;
}

/* Finds key's slot; with create, takes an empty or the stalest slot in the probe run. */
static struct slot *find(struct auth_throttle *t, uint64_t h, int create)
{
    size_t start = (size_t)(h % t->lim.capacity);
    struct slot *victim = NULL;
    for (size_t i = 0; i < PROBE; i++) {
        struct slot *s = &t->slots[(start + i) % t->lim.capacity];
        if (s->hash == h)
            return s;
        if (!create)
            continue;
        if (s->hash == 0) {
            if (!victim || victim->hash != 0)
                victim = s;
        } else if (!victim || (victim->hash != 0 && s->last_seen < victim->last_seen)) {
            victim = s;
        }
    }
    if (victim) {
        memset(victim, 0, sizeof(*victim));
        victim->hash = h;
    }
    return victim;
}

static uint32_t seconds_until(int64_t until_ms, int64_t now_ms)
{
    int64_t left = until_ms - now_ms;
    return left <= 0 ? 0 : (uint32_t)((left + 999) / 1000);
}

uint32_t auth_throttle_check(struct auth_throttle *t, const char *key, int64_t now_ms)
{
    uint64_t h = key_hash(t, key);
    uint32_t wait = 0;
    struct slot *s;
    pthread_mutex_lock(&t->lock);
    s = find(t, h, 0);
    if (s)
        wait = seconds_until(s->blocked_until, now_ms);
    pthread_mutex_unlock(&t->lock);
    return wait;
}

uint32_t auth_throttle_fail(struct auth_throttle *t, const char *key, int64_t now_ms)
{
    uint64_t h = key_hash(t, key);
    uint32_t wait = 0;
    struct slot *s;
    pthread_mutex_lock(&t->lock);
    s = find(t, h, 1);
    if (s) {
        if (s->last_seen && now_ms - s->last_seen >= FORGIVE_MS)
            s->strikes = 0;
        if (now_ms - s->window_start >= t->lim.window_ms || s->failures == 0) {
            s->window_start = now_ms;
            s->failures = 0;
        }
        s->failures++;
        s->last_seen = now_ms;
        if (s->failures >= t->lim.max_failures) {
            int64_t block = t->lim.block_ms << (s->strikes < MAX_STRIKES ? s->strikes : MAX_STRIKES);
            if (block > MAX_BLOCK_MS)
                block = MAX_BLOCK_MS;
            if (s->strikes < MAX_STRIKES)
                s->strikes++;
            s->blocked_until = now_ms + block;
            s->failures = 0;
            s->window_start = now_ms;
            wait = seconds_until(s->blocked_until, now_ms);
        }
    }
    pthread_mutex_unlock(&t->lock);
    return wait;
}

void auth_throttle_clear(struct auth_throttle *t, const char *key)
{
    uint64_t h = key_hash(t, key);
    struct slot *s;
    pthread_mutex_lock(&t->lock);
    s = find(t, h, 0);
    if (s)
        memset(s, 0, sizeof(*s));
    pthread_mutex_unlock(&t->lock);
}
