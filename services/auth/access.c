/*
 * Access to an agent: a use of the OTP is spent (only while it is active, not deleted
 * and has uses left), the grant recorded and the usage event written into the outbox in
 * one statement, so N concurrent calls on k remaining uses grant exactly min(N, k), and
 * every grant has its event. Concurrent spends share one statement and commit
 * (spend_batch.c), and one published message carries that commit's usage events. The
 * grant's idempotency key is unique: a resent RPC (sent again after a broken
 * connection) finds the first grant instead of spending again. Also serves vap-usage's
 * outbox reads.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "auth.pb-c.h"
#include "err.h"
#include "events.pb-c.h"
#include "log.h"
#include "spend_batch.h"

#define REPLY_MARGIN_MS 100 /* time the answer needs to reach the gateway */

/* auth_spends_granted_fn: one commit's grants as one "usage.access" event. */
void auth_publish_grants(void *user, struct auth_spend *const *granted, int n)
{
    struct auth_ctx *ctx = user;
    Vap__Event ev = VAP__EVENT__INIT;
    Vap__UsageEvent u[AUTH_SPEND_BATCH_MAX], *up[AUTH_SPEND_BATCH_MAX];

    if (n > AUTH_SPEND_BATCH_MAX) /* a batch is never larger */
        n = AUTH_SPEND_BATCH_MAX;
    for (int i = 0; i < n; i++) {
        vap__usage_event__init(&u[i]);
        u[i].seq = granted[i]->seq;
        u[i].type = "usage.access";
        u[i].otp_id = granted[i]->otp_id;
        u[i].agent_type = (char *)granted[i]->agent_type;
        u[i].grant_id = granted[i]->grant_id;
        u[i].occurred_at_ms = granted[i]->at_ms;
        up[i] = &u[i];
    }
    ev.type = "usage.access";
    ev.n_usages = (size_t)n;
    ev.usages = up;
    auth_publish_event(ctx, &ev);
}

/* Explains why nothing was spent: 401 gone, 403 inactive or exhausted. */
static void explain_refusal(struct auth_ctx *ctx, PGconn *conn, const char *rid,
                            const char *id_text, struct vap_rpc_response *resp)
{
    const char *params[1] = {id_text};
    PGresult *res = NULL;
    int rv = vap_db_exec(conn, rid,
                         "SELECT deleted_at IS NOT NULL, is_active, used_count >= max_uses"
                         " FROM auth.otps WHERE id = $1",
                         1, params, &res);
    (void)ctx;
    if (rv != 0)
        auth_db_error(resp, rv);
    else if (PQntuples(res) == 0 || PQgetvalue(res, 0, 0)[0] == 't')
        vap_rpc_response_error(resp, 401, "Token has been revoked");
    else if (PQgetvalue(res, 0, 1)[0] != 't')
        vap_rpc_response_error(resp, 403, "OTP is inactive");
    else
        vap_rpc_response_error(resp, 403, "OTP has no remaining uses");
    PQclear(res);
}

/* A resent request: answer with the grant the first attempt made. */
static int replay_grant(PGconn *conn, const char *rid, const char *key,
                        struct vap_rpc_response *resp)
{
    const char *params[1] = {key};
    PGresult *res = NULL;
    Vap__AccessReply reply = VAP__ACCESS_REPLY__INIT;
    int rv = vap_db_exec(conn, rid,
                         "SELECT g.id, coalesce(o.max_uses - o.used_count, 0), g.otp_id IS NOT NULL"
                         " FROM auth.grants g LEFT JOIN auth.otps o ON o.id = g.otp_id"
                         " WHERE g.idempotency_key = $1",
                         1, params, &res);
    if (rv != 0 || PQntuples(res) != 1) {
        PQclear(res);
        return rv ? rv : VAP_ENOTFOUND;
    }
    reply.grant_id = PQgetvalue(res, 0, 0);
    reply.remaining_uses = (int32_t)strtol(PQgetvalue(res, 0, 1), NULL, 10);
    reply.counted = PQgetvalue(res, 0, 2)[0] == 't';
    rv = vap_rpc_response_body(resp, &reply.base);
    PQclear(res);
    return rv;
}

/* An admin's access: a grant that spends nothing. */
static void access_admin(struct auth_ctx *ctx, const struct vap_rpc_request *req,
                         const Vap__AccessRequest *in, struct vap_rpc_response *resp)
{
    const char *params[4] = {in->idempotency_key, in->admin_username, in->agent_type,
                             in->token_jti};
    Vap__AccessReply reply = VAP__ACCESS_REPLY__INIT;
    PGconn *conn = NULL;
    PGresult *res = NULL;
    int rv = vap_db_acquire(ctx->db, &conn, req->deadline_ms);

    if (rv == 0)
        rv = vap_db_exec(conn, req->request_id,
                         "INSERT INTO auth.grants (idempotency_key, admin_username, agent_type,"
                         " token_jti) VALUES ($1, $2, $3, $4) RETURNING id",
                         4, params, &res);
    if (rv == VAP_ECONFLICT) {
        rv = replay_grant(conn, req->request_id, in->idempotency_key, resp);
    } else if (rv == 0) {
        reply.grant_id = PQgetvalue(res, 0, 0);
        rv = vap_rpc_response_body(resp, &reply.base);
    }
    if (rv != 0)
        auth_db_error(resp, rv);
    PQclear(res);
    if (conn)
        vap_db_release(ctx->db, conn);
}

/* Nothing was spent: a resent request whose first attempt committed (its answer was
 * lost) gets that grant; any other is told why. */
static void answer_unspent(struct auth_ctx *ctx, const struct vap_rpc_request *req,
                           const Vap__AccessRequest *in, struct vap_rpc_response *resp)
{
    char id_text[24];
    PGconn *conn = NULL;
    int rv = vap_db_acquire(ctx->db, &conn, req->deadline_ms);

    if (rv != 0) {
        auth_db_error(resp, rv);
        return;
    }
    snprintf(id_text, sizeof(id_text), "%" PRId64, in->otp_id);
    rv = replay_grant(conn, req->request_id, in->idempotency_key, resp);
    if (rv == VAP_ENOTFOUND)
        explain_refusal(ctx, conn, req->request_id, id_text, resp);
    else if (rv != 0)
        auth_db_error(resp, rv);
    vap_db_release(ctx->db, conn);
}

void auth_access(void *user, const struct vap_rpc_request *req, struct vap_rpc_response *resp)
{
    struct auth_ctx *ctx = user;
    const Vap__AccessRequest *in = (const Vap__AccessRequest *)req->body;
    Vap__AccessReply reply = VAP__ACCESS_REPLY__INIT;
    struct auth_spend spend = {0};

    if (!in->idempotency_key[0] || !in->agent_type[0] || !in->token_jti[0]) {
        vap_rpc_response_error(resp, 400, "incomplete access request");
        return;
    }
    if (in->is_admin) {
        access_admin(ctx, req, in, resp);
        return;
    }
    spend.otp_id = in->otp_id;
    spend.idempotency_key = in->idempotency_key;
    spend.agent_type = in->agent_type;
    spend.token_jti = in->token_jti;
    spend.request_id = req->request_id;
    /* Cancelled rather than committed once the gateway has answered "try again":
     * a client that retries then spends once, not twice. */
    spend.deadline_ms = req->deadline_ms - REPLY_MARGIN_MS;
    auth_spend_batched(ctx->spends, &spend);
    switch (spend.outcome) {
    case AUTH_SPEND_GRANTED:
        auth_code_cache_changed(ctx->code_cache); /* counts and lists change */
        reply.counted = 1;
        reply.remaining_uses = spend.remaining;
        reply.grant_id = spend.grant_id;
        if (vap_rpc_response_body(resp, &reply.base) != 0)
            vap_rpc_response_error(resp, 500, "Internal error");
        break;
    case AUTH_SPEND_NOT_GRANTED:
        answer_unspent(ctx, req, in, resp);
        break;
    default: /* a lost connection may have committed it: counts may have changed */
        auth_code_cache_changed(ctx->code_cache);
        auth_db_error(resp, spend.error);
        break;
    }
}

void auth_outbox(void *user, const struct vap_rpc_request *req, struct vap_rpc_response *resp)
{
    struct auth_ctx *ctx = user;
    const Vap__OutboxRequest *in = (const Vap__OutboxRequest *)req->body;
    Vap__OutboxBatch batch = VAP__OUTBOX_BATCH__INIT;
    Vap__UsageEvent *events = NULL, **ptrs = NULL;
    char after[24], limit[16], *seqs = NULL;
    const char *params[3];
    PGconn *conn = NULL;
    PGresult *res = NULL, *max = NULL;
    size_t pos = 0;
    int rv, n;

    snprintf(after, sizeof(after), "%" PRId64, in->after_seq);
    snprintf(limit, sizeof(limit), "%d", in->limit > 0 && in->limit <= 5000 ? in->limit : 1000);
    seqs = malloc(in->n_seqs * 22 + 3);
    if (!seqs) {
        vap_rpc_response_error(resp, 500, "Internal error");
        return;
    }
    seqs[pos++] = '{';
    for (size_t i = 0; i < in->n_seqs && i < 10000; i++)
        pos += (size_t)snprintf(seqs + pos, 22, "%s%" PRId64, i ? "," : "", in->seqs[i]);
    seqs[pos++] = '}';
    seqs[pos] = '\0';
    params[0] = after;
    params[1] = limit;
    params[2] = seqs;
    rv = vap_db_acquire(ctx->db, &conn, req->deadline_ms);
    if (rv != 0) {
        auth_db_error(resp, rv);
        free(seqs);
        return;
    }
    rv = vap_db_exec(conn, req->request_id,
                     "(SELECT seq, type, coalesce(otp_id, 0), agent_type, coalesce(grant_id::text, ''),"
                     "  (extract(epoch FROM occurred_at) * 1000)::int8 FROM auth.outbox"
                     "  WHERE seq > $1 ORDER BY seq LIMIT $2)"
                     " UNION"
                     " (SELECT seq, type, coalesce(otp_id, 0), agent_type, coalesce(grant_id::text, ''),"
                     "  (extract(epoch FROM occurred_at) * 1000)::int8 FROM auth.outbox"
                     "  WHERE seq = ANY($3::int8[]))"
                     " ORDER BY 1",
                     3, params, &res);
    if (rv == 0)
        rv = vap_db_exec(conn, req->request_id,
                         "SELECT coalesce(max(seq), 0) FROM auth.outbox", 0, NULL, &max);
    vap_db_release(ctx->db, conn);
    free(seqs);
    if (rv != 0) {
        auth_db_error(resp, rv);
        goto out;
    }
    n = PQntuples(res);
    events = calloc((size_t)n + 1, sizeof(*events));
    ptrs = calloc((size_t)n + 1, sizeof(*ptrs));
    if (!events || !ptrs) {
        vap_rpc_response_error(resp, 500, "Internal error");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        vap__usage_event__init(&events[i]);
        events[i].seq = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        events[i].type = PQgetvalue(res, i, 1);
        events[i].otp_id = strtoll(PQgetvalue(res, i, 2), NULL, 10);
        events[i].agent_type = PQgetvalue(res, i, 3);
        events[i].grant_id = PQgetvalue(res, i, 4);
        events[i].occurred_at_ms = strtoll(PQgetvalue(res, i, 5), NULL, 10);
        ptrs[i] = &events[i];
    }
    batch.n_events = (size_t)n;
    batch.events = ptrs;
    batch.max_seq = strtoll(PQgetvalue(max, 0, 0), NULL, 10);
    if (vap_rpc_response_body(resp, &batch.base) != 0)
        vap_rpc_response_error(resp, 500, "Internal error");
out:
    free(events);
    free(ptrs);
    PQclear(res);
    PQclear(max);
}
