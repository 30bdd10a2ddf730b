/*
 * Revocation facts for the gateways: events published after each commit that revokes
 * (or restores) tokens, and the snapshot a gateway reads at start, on a gap in the
 * event sequence, and periodically. The snapshot lists OTPs that are inactive, or were
 * deleted within the token lifetime (older ones' tokens have expired anyway), and every
 * admin's password version.
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

void auth_publish_event(struct auth_ctx *ctx, Vap__Event *ev)
{
    /* The lock keeps seq order equal to send order, so a subscriber's gap check holds. */
    pthread_mutex_lock(&ctx->events_lock);
    ev->instance = ctx->instance;
    ev->seq = atomic_load(&ctx->seq) + 1;
    atomic_store(&ctx->seq, ev->seq);
    if (vap_pub_send(ctx->events, &ev->base) != 0)
        vap_warn(NULL, "event not published type=%s seq=%" PRIu64, ev->type, ev->seq);
    pthread_mutex_unlock(&ctx->events_lock);
}

void auth_publish_otp_changed(struct auth_ctx *ctx, int64_t otp_id, int revoked)
{
    Vap__Event ev = VAP__EVENT__INIT;
    ev.type = "otp.changed";
    ev.otp_id = otp_id;
    ev.otp_revoked = revoked;
    auth_publish_event(ctx, &ev);
}

void auth_publish_password_changed(struct auth_ctx *ctx, const char *username, int version)
{
    Vap__Event ev = VAP__EVENT__INIT;
    ev.type = "admin.password_changed";
    ev.username = (char *)username;
    ev.password_version = version;
    auth_publish_event(ctx, &ev);
}

void auth_revocations(void *user, const struct vap_rpc_request *req,
                      struct vap_rpc_response *resp)
{
    struct auth_ctx *ctx = user;
    Vap__RevocationSnapshot snap = VAP__REVOCATION_SNAPSHOT__INIT;
    char ttl[24];
    const char *params[1] = {ttl};
    PGconn *conn = NULL;
    PGresult *otps = NULL, *admins = NULL;
    Vap__AdminVersion *av = NULL, **avp = NULL;
    int64_t *ids = NULL;
    int rv, n_otps, n_admins;

    /* Read seq first: events after it may be reflected in the rows too, and applying
     * them again is harmless. */
    snap.instance = ctx->instance;
    snap.seq = atomic_load(&ctx->seq);
    snprintf(ttl, sizeof(ttl), "%ld", ctx->token_ttl_s + 120);
    rv = vap_db_acquire(ctx->db, &conn, req->deadline_ms);
    if (rv != 0) {
        auth_db_error(resp, rv);
        return;
    }
    rv = vap_db_exec(conn, req->request_id,
                     "SELECT id FROM auth.otps WHERE (deleted_at IS NULL AND NOT is_active)"
                     " OR deleted_at > now() - make_interval(secs => $1::int)",
                     1, params, &otps);
    if (rv == 0)
        rv = vap_db_exec(conn, req->request_id,
                         "SELECT username, password_version FROM auth.admins", 0, NULL, &admins);
    vap_db_release(ctx->db, conn);
    if (rv != 0) {
        auth_db_error(resp, rv);
        goto out;
    }
    n_otps = PQntuples(otps);
    n_admins = PQntuples(admins);
    ids = calloc((size_t)n_otps + 1, sizeof(*ids));
    av = calloc((size_t)n_admins + 1, sizeof(*av));
    avp = calloc((size_t)n_admins + 1, sizeof(*avp));
    if (!ids || !av || !avp) {
        vap_rpc_response_error(resp, 500, "Internal error");
        goto out;
    }
    for (int i = 0; i < n_otps; i++)
        ids[i] = strtoll(PQgetvalue(otps, i, 0), NULL, 10);
    for (int i = 0; i < n_admins; i++) {
        vap__admin_version__init(&av[i]);
        av[i].username = PQgetvalue(admins, i, 0);
        av[i].password_version = (int32_t)strtol(PQgetvalue(admins, i, 1), NULL, 10);
        avp[i] = &av[i];
    }
    snap.n_revoked_otp_ids = (size_t)n_otps;
    snap.revoked_otp_ids = ids;
    snap.n_admins = (size_t)n_admins;
    snap.admins = avp;
    if (vap_rpc_response_body(resp, &snap.base) != 0)
        vap_rpc_response_error(resp, 500, "Internal error");
out:
    free(ids);
    free(av);
    free(avp);
    PQclear(otps);
    PQclear(admins);
}

void auth_ping(void *user, const struct vap_rpc_request *req, struct vap_rpc_response *resp)
{
    struct auth_ctx *ctx = user;
    PGconn *conn = NULL;
    int rv = vap_db_acquire(ctx->db, &conn, req->deadline_ms);
    if (rv == 0) {
        rv = vap_db_command(conn, req->request_id, "SELECT 1");
        vap_db_release(ctx->db, conn);
    }
    if (rv != 0)
        auth_db_error(resp, rv);
}
