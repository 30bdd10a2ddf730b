/*
 * vap-usage's shared state: the database pool, the outbox synchroniser (sync.c) and
 * the query handlers (queries.c).
 */
#ifndef VAP_USAGE_H
#define VAP_USAGE_H

#include "db.h"
#include "rpc.h"

struct usage_sync;

struct usage_ctx {
    struct vap_db_pool *db;
    struct vap_rpc_client *auth;
    struct usage_sync *sync;
};

/* Starts following auth's usage events (pub/sub at events_url) and outbox (req/rep). */
int usage_sync_start(struct usage_ctx *ctx, const char *events_url);
void usage_sync_stop(struct usage_ctx *ctx);

/* Highest outbox seq applied, and how many holes are waited for (for logs/metrics). */
void usage_sync_state(struct usage_ctx *ctx, int64_t *applied_max, int *holes);

void usage_list(void *user, const struct vap_rpc_request *req, struct vap_rpc_response *resp);
void usage_traffic(void *user, const struct vap_rpc_request *req,
                   struct vap_rpc_response *resp);
/* sessions.c: a voice session's record (idempotent upsert by session_id). */
void usage_session_report(void *user, const struct vap_rpc_request *req,
                          struct vap_rpc_response *resp);
void usage_ping(void *user, const struct vap_rpc_request *req, struct vap_rpc_response *resp);

#endif
