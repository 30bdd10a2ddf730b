/*
 * Throttling of failed logins. Each key (a client address, or "user:" + a username)
 * counts failures in a fixed window; reaching the limit blocks the key until the block
 * ends, and the caller answers 429 with Retry-After. Each further block of the same key
 * lasts twice the one before (up to 256 times the first, and never over a day), until
 * the key has been quiet for a day; so a patient guesser gets about 90 tries from one
 * key on the first day and about 11 a day after. A success clears the key.
 * The table has a fixed capacity: when full, the entry seen longest ago nearby is
 * replaced, so memory is bounded whatever an attacker sends. Keys are hashed with a
 * per-process random key (SipHash), so an attacker cannot aim collisions.
 * Thread-safe. State is per process: it resets when vap-auth restarts.
 */
#ifndef VAP_AUTH_THROTTLE_H
#define VAP_AUTH_THROTTLE_H

#include <stddef.h>
#include <stdint.h>

struct auth_throttle;

struct auth_throttle_limits {
    int max_failures;  /* failures in one window that block the key */
    int64_t window_ms;
    int64_t block_ms;
    size_t capacity;   /* keys remembered at most */
};

int auth_throttle_create(struct auth_throttle **out, const struct auth_throttle_limits *lim);
void auth_throttle_destroy(struct auth_throttle *t);

/* Returns 0 when key may try now, else the seconds to wait (>= 1). */
uint32_t auth_throttle_check(struct auth_throttle *t, const char *key, int64_t now_ms);

/* Records a failure; returns the seconds to wait if this failure blocked the key, else 0. */
uint32_t auth_throttle_fail(struct auth_throttle *t, const char *key, int64_t now_ms);

/* Forgets key (after a success). */
void auth_throttle_clear(struct auth_throttle *t, const char *key);

#endif
