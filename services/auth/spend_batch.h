/*
 * Group commit for access spends. Concurrent access calls queue their spend; one
 * batcher thread takes every queued spend (up to AUTH_SPEND_BATCH_MAX), runs them as one
 * statement and one commit, and hands each caller its own outcome, then takes what
 * queued meanwhile. Under load this turns N statements and N commits (each a WAL flush)
 * into one; a lone call runs as a batch of one, with the single-spend statement. A batch
 * that fails on a conflict (a resent request whose key is already being granted) or on
 * the deadline of one of its members is run again one spend at a time, each with its own
 * deadline.
 *
 * The statement keeps the guarantee of the single spend: on k remaining uses, N
 * concurrent requests for one code are granted exactly min(N, k), in arrival order,
 * each grant with its outbox event in the same transaction.
 */
#ifndef VAP_AUTH_SPEND_BATCH_H
#define VAP_AUTH_SPEND_BATCH_H

#include <pthread.h>
#include <stdint.h>

#include "db.h"

#define AUTH_SPEND_BATCH_MAX 64
#define AUTH_GRANT_ID_MAX 40 /* a uuid's text and its NUL */

/* What became of one queued spend. */
enum auth_spend_outcome {
    AUTH_SPEND_GRANTED = 1, /* spent: remaining, grant_id, seq, at_ms are set */
    AUTH_SPEND_NOT_GRANTED, /* nothing spent: the code is gone, inactive or used up, or the
                               key already has a grant (a resent request) */
    AUTH_SPEND_FAILED       /* the database failed: error holds the VAP_E* code */
};

struct auth_spend {
    /* in */
    int64_t otp_id;
    const char *idempotency_key;
    const char *agent_type;
    const char *token_jti;
    const char *request_id;
    int64_t deadline_ms;   /* when the batch statement must have ended (monotonic) */
    /* out */
    enum auth_spend_outcome outcome;
    int error;
    int32_t remaining;
    char grant_id[AUTH_GRANT_ID_MAX];
    int64_t seq;           /* the outbox event's sequence number */
    int64_t at_ms;         /* when it was spent (epoch ms) */
    /* private to spend_batch.c */
    int done;
    pthread_cond_t wake;
    struct auth_spend *next;
};

struct auth_spend_queue;

/*
 * Called by the batcher after each commit that granted spends, with those spends
 * (granted[0..n), n >= 1, in seq order), before their callers are told: one commit's
 * usage events are published as one message, not one per access.
 */
typedef void (*auth_spends_granted_fn)(void *user, struct auth_spend *const *granted, int n);

int auth_spend_queue_create(struct auth_spend_queue **out, struct vap_db_pool *db,
                            auth_spends_granted_fn on_granted, void *user);
/* Only once no call is in progress: stops the batcher thread. */
void auth_spend_queue_destroy(struct auth_spend_queue *q);

/*
 * Queues s and blocks until a batch has decided it (s->outcome). A waiting caller holds
 * no database connection; the batcher holds one for each batch.
 */
void auth_spend_batched(struct auth_spend_queue *q, struct auth_spend *s);

#endif
