/*
 * Changing one-time codes: update (max uses, active flag) and delete. Both publish
 * otp.changed after commit so every gateway refuses (or again accepts) the code's
 * tokens within a second; gateways that miss the event catch up from the revocation
 * snapshot (revocation.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "auth.pb-c.h"
#include "err.h"
#include "log.h"

void auth_otp_update(void *user, const struct vap_rpc_request *req,
                     struct vap_rpc_response *resp)
{
    struct auth_ctx *ctx = user;
    const Vap__OtpUpdateRequest *in = (const Vap__OtpUpdateRequest *)req->body;
    char id[24], set_max[2], max_uses[16], set_active[2], active[2];
    const char *params[5] = {id, set_max, max_uses, set_active, active};
    PGconn *conn = NULL;
    PGresult *res = NULL;
    int rv, revoked;

    if (!in->set_max_uses && !in->set_is_active) {
        vap_rpc_response_error(resp, 422, "nothing to update");
        return;
    }
    if (in->set_max_uses && (in->max_uses < 1 || in->max_uses > 100000)) {
        vap_rpc_response_error(resp, 422, "must be between 1 and 100000");
        snprintf(resp->field, sizeof(resp->field), "max_uses");
        return;
    }
    snprintf(id, sizeof(id), "%" PRId64, in->id);
    snprintf(set_max, sizeof(set_max), "%c", in->set_max_uses ? 't' : 'f');
    snprintf(max_uses, sizeof(max_uses), "%d", in->max_uses);
    snprintf(set_active, sizeof(set_active), "%c", in->set_is_active ? 't' : 'f');
    snprintf(active, sizeof(active), "%c", in->is_active ? 't' : 'f');
    rv = vap_db_acquire(ctx->db, &conn, req->deadline_ms);
    if (rv != 0) {
        auth_db_error(resp, rv);
        return;
    }
    /* One statement: the row lock taken by UPDATE makes the used_count check exact even
     * while visitors are spending uses. */
    rv = vap_db_exec(conn, req->request_id,
                     "WITH target AS (SELECT id, used_count FROM auth.otps"
                     "   WHERE id = $1 AND deleted_at IS NULL FOR UPDATE),"
                     " changed AS (UPDATE auth.otps o SET"
                     "   max_uses = CASE WHEN $2::bool THEN $3::int ELSE o.max_uses END,"
                     "   is_active = CASE WHEN $4::bool THEN $5::bool ELSE o.is_active END,"
                     "   updated_at = now()"
                     "   FROM target t WHERE o.id = t.id"
                     "   AND (NOT $2::bool OR $3::int >= t.used_count)"
                     "   RETURNING o.id)"
                     " SELECT (SELECT count(*) FROM target), (SELECT count(*) FROM changed),"
                     " (SELECT used_count FROM target)",
                     5, params, &res);
    auth_code_cache_changed(ctx->code_cache); /* committed or not: forget either way */
    if (rv == 0 && PQgetvalue(res, 0, 0)[0] == '0') {
        vap_rpc_response_error(resp, 404, "OTP not found");
        goto out;
    }
    if (rv == 0 && PQgetvalue(res, 0, 1)[0] == '0') {
        vap_rpc_response_error(resp, 409, "max_uses cannot be below used_count (%s)",
                               PQgetvalue(res, 0, 2));
        goto out;
    }
    if (rv == VAP_ECONFLICT) {
        vap_rpc_response_error(resp, 409, "Another live OTP has the same code");
        goto out;
    }
    if (rv != 0) {
        auth_db_error(resp, rv);
        goto out;
    }
    PQclear(res);
    res = NULL;
    {
        const char *p[1] = {id};
        rv = vap_db_exec(conn, req->request_id,
                         "SELECT " AUTH_OTP_COLUMNS " FROM auth.otps WHERE id = $1", 1, p, &res);
    }
    if (rv != 0 || PQntuples(res) != 1) {
        auth_db_error(resp, rv ? rv : VAP_EDB);
        goto out;
    }
    {
        Vap__Otp otp = VAP__OTP__INIT;
        char code[AUTH_CODE_LEN + 1];
        auth_otp_from_row(ctx, res, 0, &otp, code);
        revoked = !otp.is_active;
        if (vap_rpc_response_body(resp, &otp.base) != 0)
            vap_rpc_response_error(resp, 500, "Internal error");
        sodium_memzero(code, sizeof(code));
    }
    auth_publish_otp_changed(ctx, in->id, revoked);
    vap_info(req->request_id, "otp updated id=%s", id);
out:
    PQclear(res);
    vap_db_release(ctx->db, conn);
}

void auth_otp_delete(void *user, const struct vap_rpc_request *req,
                     struct vap_rpc_response *resp)
{
    struct auth_ctx *ctx = user;
    const Vap__OtpDeleteRequest *in = (const Vap__OtpDeleteRequest *)req->body;
    char id[24];
    const char *params[1] = {id};
    PGconn *conn = NULL;
    PGresult *res = NULL;
    int rv;

    snprintf(id, sizeof(id), "%" PRId64, in->id);
    rv = vap_db_acquire(ctx->db, &conn, req->deadline_ms);
    if (rv != 0) {
        auth_db_error(resp, rv);
        return;
    }
    /* The row stays for the usage history; the code itself is erased. */
    rv = vap_db_exec(conn, req->request_id,
                     "UPDATE auth.otps SET deleted_at = now(), updated_at = now(),"
                     " is_active = false, code_enc = NULL"
                     " WHERE id = $1 AND deleted_at IS NULL RETURNING id",
                     1, params, &res);
    vap_db_release(ctx->db, conn);
    auth_code_cache_changed(ctx->code_cache);
    if (rv != 0) {
        auth_db_error(resp, rv);
        return;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        vap_rpc_response_error(resp, 404, "OTP not found");
        return;
    }
    PQclear(res);
    auth_publish_otp_changed(ctx, in->id, 1);
    vap_info(req->request_id, "otp deleted id=%s", id);
}
