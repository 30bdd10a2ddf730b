/*
 * vap-auth's shared state and the entry points of its RPC handlers. One struct
 * auth_ctx lives for the process; handlers run on the RPC server's threads and reach
 * the database through its pool.
 */
#ifndef VAP_AUTH_H
#define VAP_AUTH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "code_cache.h"
#include "codes.h"
#include "db.h"
#include "pubsub.h"
#include "rpc.h"
#include "spend_batch.h"
#include "throttle.h"
#include "token.h"

struct auth_ctx {
    struct vap_db_pool *db;
    struct vap_pub *events;
    struct auth_codes codes;          /* OTP hashing and encryption keys */
    struct auth_codes codes_prev;     /* the same from SECRET_KEY_PREVIOUS ... */
    const struct auth_codes *prev;    /* ... &codes_prev when it is set, else NULL */
    const uint8_t *jwt_key;
    size_t jwt_key_len;
    long token_ttl_s;
    struct auth_throttle *throttle_addr;  /* failed logins per client address */
    struct auth_throttle *throttle_user;  /* failed admin logins per username */
    struct auth_throttle *throttle_net;   /* failed code logins per network (/24, /64) */
    struct auth_code_cache *code_cache;   /* recent code lookups and lists (code_cache.c) */
    struct auth_spend_queue *spends;      /* access spends grouped per commit */
    pthread_mutex_t events_lock;          /* keeps seq order equal to publish order */
    char instance[33];
    atomic_uint_fast64_t seq;             /* last event seq published */
    pthread_mutex_t hash_slots_lock;      /* bounds concurrent argon2id hashing */
    pthread_cond_t hash_slots_cond;
    int hash_slots;
    int hash_waiters;
};

/* Runs on the RPC threads. */
void auth_login_admin(void *user, const struct vap_rpc_request *req,
                      struct vap_rpc_response *resp);
void auth_change_password(void *user, const struct vap_rpc_request *req,
                          struct vap_rpc_response *resp);
void auth_login_otp(void *user, const struct vap_rpc_request *req,
                    struct vap_rpc_response *resp);
void auth_otp_list(void *user, const struct vap_rpc_request *req,
                   struct vap_rpc_response *resp);
void auth_otp_create(void *user, const struct vap_rpc_request *req,
                     struct vap_rpc_response *resp);
void auth_otp_update(void *user, const struct vap_rpc_request *req,
                     struct vap_rpc_response *resp);
void auth_otp_delete(void *user, const struct vap_rpc_request *req,
                     struct vap_rpc_response *resp);
void auth_revocations(void *user, const struct vap_rpc_request *req,
                      struct vap_rpc_response *resp);
void auth_access(void *user, const struct vap_rpc_request *req,
                 struct vap_rpc_response *resp);
void auth_outbox(void *user, const struct vap_rpc_request *req,
                 struct vap_rpc_response *resp);
/* grant_claim.c: a voice stream consumes its access grant. */
void auth_grant_claim(void *user, const struct vap_rpc_request *req,
                      struct vap_rpc_response *resp);
void auth_grant_release(void *user, const struct vap_rpc_request *req,
                        struct vap_rpc_response *resp);
void auth_ping(void *user, const struct vap_rpc_request *req, struct vap_rpc_response *resp);

/* Creates the default admin if no admin of that name exists. Blocks. */
int auth_ensure_default_admin(struct auth_ctx *ctx);

/*
 * rekey.c: when ctx->prev is set, rewrites every stored code made under the previous
 * key under the current one (one transaction, advisory lock). Retries for timeout_s on
 * database errors. Blocks; runs at start, before the RPC server. Returns 0 or an error.
 */
int auth_rekey_codes(struct auth_ctx *ctx, int timeout_s);

struct Vap__Event;

/* Publishes ev with this process's instance id and the next sequence number. */
void auth_publish_event(struct auth_ctx *ctx, struct Vap__Event *ev);

/* Publishes that an OTP's tokens stop (revoked) or start again working. */
void auth_publish_otp_changed(struct auth_ctx *ctx, int64_t otp_id, int revoked);

/* Publishes an admin's new password version. */
void auth_publish_password_changed(struct auth_ctx *ctx, const char *username, int version);

/* The spend queue's auth_spends_granted_fn (user = the auth_ctx): publishes one commit's
 * grants as one "usage.access" event. */
void auth_publish_grants(void *user, struct auth_spend *const *granted, int n);

/* The columns auth_otp_from_row() reads, in its order. */
#define AUTH_OTP_COLUMNS                                                                   \
    "id, code_enc, max_uses, used_count, is_active,"                                       \
    " (extract(epoch FROM created_at) * 1000)::int8,"                                      \
    " coalesce((extract(epoch FROM last_used_at) * 1000)::int8, 0)"

struct Vap__Otp;

/* Fills otp from row of res (selected with AUTH_OTP_COLUMNS). code (7 bytes) receives
 * the decrypted code and must outlive otp; a code made under neither SECRET_KEY nor
 * SECRET_KEY_PREVIOUS is "". */
void auth_otp_from_row(struct auth_ctx *ctx, PGresult *res, int row, struct Vap__Otp *otp,
                       char *code);

/* Maps a pool/db error to a reply: 503 for unavailable/timeouts, 500 otherwise. */
void auth_db_error(struct vap_rpc_response *resp, int err);

/* Signs a token for claims and packs a TokenReply into resp. */
void auth_reply_token(struct auth_ctx *ctx, struct vap_token_claims *claims,
                      struct vap_rpc_response *resp);

#endif
