/*
 * A short-lived memory of what the database said about codes, so that a burst of
 * visitor logins with the same codes and an admin's repeated listing skip the database
 * (see code_cache.c for why it stays right).
 */
#ifndef VAP_AUTH_CODE_CACHE_H
#define VAP_AUTH_CODE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codes.h"

struct auth_code_cache;

/* What a code login needs to know about the row a code hash finds. */
struct auth_code_facts {
    int64_t otp_id;
    bool active;
    bool has_uses;
};

/* ttl_ms: how long an answer is believed at most (0: the cache is off). */
int auth_code_cache_create(struct auth_code_cache **out, int64_t ttl_ms);
void auth_code_cache_destroy(struct auth_code_cache *c);

/* The generation to pass to a later put: read it BEFORE reading the database. */
uint64_t auth_code_cache_generation(struct auth_code_cache *c);

/* Forgets everything; call AFTER a change to any code has committed. */
void auth_code_cache_changed(struct auth_code_cache *c);

/* Looks a code hash up; true with *out filled when a fresh answer is known. An answer
 * past half its ttl answers false to one caller (it reads the database and puts the
 * new answer) while the others still get it. */
bool auth_code_cache_find(struct auth_code_cache *c, const uint8_t hash[AUTH_CODE_HASH_LEN],
                          struct auth_code_facts *out);

/* Remembers the row found for a hash, read from the database under generation gen. */
void auth_code_cache_put(struct auth_code_cache *c, const uint8_t hash[AUTH_CODE_HASH_LEN],
                         uint64_t gen, const struct auth_code_facts *facts);

/* The packed OtpList reply for one (limit, offset, filter) query: a malloc'd copy in
 * *out (free it) when a fresh one is known; refreshed ahead as codes are. */
bool auth_code_cache_list_find(struct auth_code_cache *c, int32_t limit, int32_t offset,
                               int32_t filter, uint8_t **out, size_t *len);

/* Remembers a packed OtpList reply read under generation gen (large lists are not). */
void auth_code_cache_list_put(struct auth_code_cache *c, int32_t limit, int32_t offset,
                              int32_t filter, uint64_t gen, const uint8_t *packed, size_t len);

#endif
