/*
 * A voice stream claims its access grant: the oldest unconsumed, unexpired grant of
 * this token for this agent is consumed in one statement (row lock, SKIP LOCKED), so
 * one grant opens exactly one session however many streams race for it. The gateway's
 * claim key makes a resent request find the grant it already consumed.
 */
#include <stdlib.h>

#include "auth.h"
#include "err.h"
#include "log.h"
#include "voice.pb-c.h"

#define SQL_CLAIM                                                                          \
    "UPDATE auth.grants SET consumed_at = now(), claim_key = $3"                            \
    " WHERE id = (SELECT id FROM auth.grants WHERE token_jti = $1 AND agent_type = $2"      \
    "   AND consumed_at IS NULL AND expires_at > now()"                                     \
    "   ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)"                                \
    " RETURNING id, coalesce(otp_id, 0)"

#define SQL_REPLAY "SELECT id, coalesce(otp_id, 0) FROM auth.grants WHERE claim_key = $1"

void auth_grant_claim(void *user, const struct vap_rpc_request *req,
                      struct vap_rpc_response *resp)
{
    struct auth_ctx *ctx = user;
    const Vap__GrantClaimRequest *in = (const Vap__GrantClaimRequest *)req->body;
    Vap__GrantClaimReply reply = VAP__GRANT_CLAIM_REPLY__INIT;
    const char *params[3] = {in->token_jti, in->agent_type, req->request_id};
    PGconn *conn = NULL;
    PGresult *res = NULL;
    int rv;

    if (!in->token_jti[0] || !in->agent_type[0] || !req->request_id[0]) {
        vap_rpc_response_error(resp, 400, "incomplete grant claim");
        return;
    }
    rv = vap_db_acquire(ctx->db, &conn, req->deadline_ms);
    if (rv != 0) {
        auth_db_error(resp, rv);
        return;
    }
    rv = vap_db_exec(conn, req->request_id, SQL_CLAIM, 3, params, &res);
    if (rv == 0 && PQntuples(res) == 0) {
        PQclear(res);
        res = NULL;
        rv = vap_db_exec(conn, req->request_id, SQL_REPLAY, 1, params + 2, &res);
    }
    vap_db_release(ctx->db, conn);
    if (rv != 0) {
        auth_db_error(resp, rv);
    } else if (PQntuples(res) == 0) {
        vap_rpc_response_error(resp, 403, "No access grant for this agent: call "
                                          "/api/agents/access first");
    } else {
        reply.grant_id = PQgetvalue(res, 0, 0);
        reply.otp_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        if (vap_rpc_response_body(resp, &reply.base) != 0)
            vap_rpc_response_error(resp, 500, "Internal error");
    }
    PQclear(res);
}

/* A stream that could not start gives its grant back (the visitor loses no use). */
void auth_grant_release(void *user, const struct vap_rpc_request *req,
                        struct vap_rpc_response *resp)
{
    struct auth_ctx *ctx = user;
    const Vap__GrantClaimReply *in = (const Vap__GrantClaimReply *)req->body;
    const char *params[1] = {in->grant_id};
    PGconn *conn = NULL;
    int rv;

    if (!in->grant_id[0]) {
        vap_rpc_response_error(resp, 400, "grant_id is required");
        return;
    }
    rv = vap_db_acquire(ctx->db, &conn, req->deadline_ms);
    if (rv == 0) {
        rv = vap_db_exec(conn, req->request_id,
                         "UPDATE auth.grants SET consumed_at = NULL, claim_key = NULL"
                         " WHERE id = $1::uuid AND consumed_at IS NOT NULL",
                         1, params, NULL);
        vap_db_release(ctx->db, conn);
    }
    if (rv == VAP_EINVAL || rv == VAP_EDB)
        vap_rpc_response_error(resp, 400, "not a grant id");
    else if (rv != 0)
        auth_db_error(resp, rv);
}
