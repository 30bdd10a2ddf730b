/*
 * Administrators: login with argon2id-hashed passwords, password change (which bumps
 * the password version and so revokes older admin tokens everywhere), and the default
 * admin created on first start. argon2id is deliberately expensive (64 MiB, ~0.1 s),
 * so at most a few hashes run at once; an unknown username costs the same time as a
 * known one.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "auth.pb-c.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "token.h"

#define DEFAULT_ADMIN_USER "cawadmin"
#define DEFAULT_ADMIN_PASSWORD "adminc@w"

/* A valid argon2id hash of a random password: verifying against it costs as much as a
 * real check, so an unknown username cannot be told apart by timing. */
static char dummy_hash[crypto_pwhash_STRBYTES];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void make_dummy_hash(void)
{
    char pw[33];
    uint8_t raw[16];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(pw, sizeof(pw), raw, sizeof(raw));
    if (crypto_pwhash_str(dummy_hash, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        dummy_hash[0] = '\0';
}

/*
 * Takes one of the few argon2id slots. At most two threads wait for a slot; any other
 * caller is told to come back (503), so a burst of admin logins can never occupy every
 * RPC thread and starve visitors' OTP logins. Returns 0 or VAP_EUNAVAIL.
 */
static int take_hash_slot(struct auth_ctx *ctx)
{
    pthread_mutex_lock(&ctx->hash_slots_lock);
    if (ctx->hash_slots == 0 && ctx->hash_waiters >= 2) {
        pthread_mutex_unlock(&ctx->hash_slots_lock);
        return VAP_EUNAVAIL;
    }
    ctx->hash_waiters++;
    while (ctx->hash_slots == 0)
        pthread_cond_wait(&ctx->hash_slots_cond, &ctx->hash_slots_lock);
    ctx->hash_waiters--;
    ctx->hash_slots--;
    pthread_mutex_unlock(&ctx->hash_slots_lock);
    return 0;
}

static void give_hash_slot(struct auth_ctx *ctx)
{
    pthread_mutex_lock(&ctx->hash_slots_lock);
    ctx->hash_slots++;
    pthread_cond_signal(&ctx->hash_slots_cond);
    pthread_mutex_unlock(&ctx->hash_slots_lock);
}

/* 1: matches, 0: does not, VAP_EUNAVAIL: too busy to check now. */
static int verify_password(struct auth_ctx *ctx, const char *hash, const char *password)
{
    int ok;
    if (take_hash_slot(ctx) != 0)
        return VAP_EUNAVAIL;
    ok = crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
    give_hash_slot(ctx);
    return ok;
}

static int hash_password(struct auth_ctx *ctx, const char *password,
                         char out[crypto_pwhash_STRBYTES])
{
    int rv;
    if (take_hash_slot(ctx) != 0)
        return VAP_EUNAVAIL;
    rv = crypto_pwhash_str(out, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                           crypto_pwhash_MEMLIMIT_INTERACTIVE);
    give_hash_slot(ctx);
    return rv == 0 ? 0 : VAP_ENOMEM;
}

void auth_db_error(struct vap_rpc_response *resp, int err)
{
    if (err == VAP_EUNAVAIL || err == VAP_ETIMEDOUT)
        vap_rpc_response_error(resp, 503, "Database unavailable");
    else
        vap_rpc_response_error(resp, 500, "Internal error");
}

void auth_reply_token(struct auth_ctx *ctx, struct vap_token_claims *claims,
                      struct vap_rpc_response *resp)
{
    Vap__TokenReply reply = VAP__TOKEN_REPLY__INIT;
    char *token = NULL;
    int64_t now = vap_wall_ms() / 1000;

    claims->iat = now;
    claims->exp = now + ctx->token_ttl_s;
    if (vap_token_issue(ctx->jwt_key, ctx->jwt_key_len, claims, &token) != 0) {
        vap_rpc_response_error(resp, 500, "Internal error");
        return;
    }
    reply.access_token = token;
    reply.expires_in = (uint32_t)ctx->token_ttl_s;
    if (vap_rpc_response_body(resp, &reply.base) != 0)
        vap_rpc_response_error(resp, 500, "Internal error");
    sodium_memzero(token, strlen(token));
    free(token);
}

/* Checks both throttle keys; on a block fills resp (429) and returns 1. */
static int throttled(struct auth_ctx *ctx, const char *addr_key, const char *user_key,
                     struct vap_rpc_response *resp)
{
    int64_t now = vap_now_ms();
    uint32_t wait = auth_throttle_check(ctx->throttle_addr, addr_key, now);
    if (wait == 0 && user_key)
        wait = auth_throttle_check(ctx->throttle_user, user_key, now);
    if (wait == 0)
        return 0;
    vap_rpc_response_error(resp, 429, "Too many failed attempts; try again later");
    resp->retry_after = wait;
    return 1;
}

static void record_failure(struct auth_ctx *ctx, const char *addr_key, const char *user_key)
{
    int64_t now = vap_now_ms();
    auth_throttle_fail(ctx->throttle_addr, addr_key, now);
    if (user_key)
        auth_throttle_fail(ctx->throttle_user, user_key, now);
}

/* Reads the admin's hash and version; 0, VAP_ENOTFOUND or a db error. */
static int load_admin(struct auth_ctx *ctx, const char *rid, const char *username,
                      int64_t deadline, char hash[crypto_pwhash_STRBYTES], int *version)
{
    const char *params[1] = {username};
    PGconn *conn = NULL;
    PGresult *res = NULL;
    int rv = vap_db_acquire(ctx->db, &conn, deadline);
    if (rv != 0)
        return rv;
    rv = vap_db_exec(conn, rid,
                     "SELECT password_hash, password_version FROM auth.admins WHERE username = $1",
                     1, params, &res);
    vap_db_release(ctx->db, conn);
    if (rv != 0)
        return rv;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return VAP_ENOTFOUND;
    }
    snprintf(hash, crypto_pwhash_STRBYTES, "%s", PQgetvalue(res, 0, 0));
    *version = (int)strtol(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
    return 0;
}

void auth_login_admin(void *user, const struct vap_rpc_request *req,
                      struct vap_rpc_response *resp)
{
    struct auth_ctx *ctx = user;
    const Vap__LoginAdminRequest *in = (const Vap__LoginAdminRequest *)req->body;
    char hash[crypto_pwhash_STRBYTES], addr_key[80], user_key[160];
    struct vap_token_claims claims;
    int version = 0, rv, ok;

    /* The gateway checks lengths in characters; these byte caps (4 bytes a UTF-8
     * character) only keep unchecked callers from feeding argon2 megabytes. */
    if (strlen(in->username) > 4 * 64 || strlen(in->password) > 4 * 128) {
        vap_rpc_response_error(resp, 401, "Incorrect username or password");
        return;
    }
    snprintf(addr_key, sizeof(addr_key), "addr:%s", in->client_addr);
    snprintf(user_key, sizeof(user_key), "user:%s", in->username);
    if (throttled(ctx, addr_key, user_key, resp)) {
        vap_warn(req->request_id, "admin login throttled addr=%s", in->client_addr);
        return;
    }
    rv = load_admin(ctx, req->request_id, in->username, req->deadline_ms, hash, &version);
    if (rv != 0 && rv != VAP_ENOTFOUND) {
        auth_db_error(resp, rv);
        return;
    }
    pthread_once(&dummy_once, make_dummy_hash);
    ok = verify_password(ctx, rv == 0 ? hash : dummy_hash, in->password);
    if (ok == VAP_EUNAVAIL) {
        vap_rpc_response_error(resp, 503, "Too many logins at once; try again");
        resp->retry_after = 1;
        return;
    }
    ok = ok == 1 && rv == 0;
    if (!ok) {
        record_failure(ctx, addr_key, user_key);
        vap_info(req->request_id, "admin login failed addr=%s", in->client_addr);
        vap_rpc_response_error(resp, 401, "Incorrect username or password");
        return;
    }
    auth_throttle_clear(ctx->throttle_addr, addr_key);
    memset(&claims, 0, sizeof(claims));
    snprintf(claims.sub, sizeof(claims.sub), "%s", in->username);
    claims.role = VAP_ROLE_ADMIN;
    claims.pwv = version;
    auth_reply_token(ctx, &claims, resp);
    vap_info(req->request_id, "admin login ok addr=%s", in->client_addr);
}

void auth_change_password(void *user, const struct vap_rpc_request *req,
                          struct vap_rpc_response *resp)
{
    struct auth_ctx *ctx = user;
    const Vap__ChangePasswordRequest *in = (const Vap__ChangePasswordRequest *)req->body;
    char hash[crypto_pwhash_STRBYTES], new_hash[crypto_pwhash_STRBYTES], user_key[160];
    char addr_key[80], version_text[16];
    const char *params[3];
    PGconn *conn = NULL;
    PGresult *res = NULL;
    int version = 0, rv;
    size_t new_len = strlen(in->new_password);

    if (new_len < 8 || new_len > 4 * 128) {
        vap_rpc_response_error(resp, 422, "must be between 8 and 128 characters");
        snprintf(resp->field, sizeof(resp->field), "new_password");
        return;
    }
    snprintf(addr_key, sizeof(addr_key), "addr:%s", in->client_addr);
    snprintf(user_key, sizeof(user_key), "user:%s", in->username);
    if (throttled(ctx, addr_key, user_key, resp))
        return;
    rv = load_admin(ctx, req->request_id, in->username, req->deadline_ms, hash, &version);
    if (rv == VAP_ENOTFOUND) {
        vap_rpc_response_error(resp, 401, "Could not validate credentials");
        return;
    }
    if (rv != 0) {
        auth_db_error(resp, rv);
        return;
    }
    rv = verify_password(ctx, hash, in->current_password);
    if (rv == VAP_EUNAVAIL) {
        vap_rpc_response_error(resp, 503, "Too many logins at once; try again");
        resp->retry_after = 1;
        return;
    }
    if (rv != 1) {
        record_failure(ctx, addr_key, user_key);
        vap_rpc_response_error(resp, 400, "Incorrect current password");
        return;
    }
    if (hash_password(ctx, in->new_password, new_hash) != 0) {
        vap_rpc_response_error(resp, 503, "Too many logins at once; try again");
        resp->retry_after = 1;
        return;
    }
    rv = vap_db_acquire(ctx->db, &conn, req->deadline_ms);
    if (rv != 0) {
        auth_db_error(resp, rv);
        return;
    }
    params[0] = in->username;
    params[1] = new_hash;
    rv = vap_db_exec(conn, req->request_id,
                     "UPDATE auth.admins SET password_hash = $2, password_changed = true,"
                     " password_version = password_version + 1, updated_at = now()"
                     " WHERE username = $1 RETURNING password_version",
                     2, params, &res);
    vap_db_release(ctx->db, conn);
    if (rv != 0) {
        auth_db_error(resp, rv);
        return;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        vap_rpc_response_error(resp, 401, "Could not validate credentials");
        return;
    }
    snprintf(version_text, sizeof(version_text), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    version = (int)strtol(version_text, NULL, 10);
    auth_publish_password_changed(ctx, in->username, version);
    vap_info(req->request_id, "admin password changed version=%d", version);
}

int auth_ensure_default_admin(struct auth_ctx *ctx)
{
    const char *params[2] = {DEFAULT_ADMIN_USER, NULL};
    char hash[crypto_pwhash_STRBYTES];
    PGconn *conn = NULL;
    PGresult *res = NULL;
    int rv = vap_db_acquire(ctx->db, &conn, vap_now_ms() + 10000);
    if (rv != 0)
        return rv;
    rv = vap_db_exec(conn, NULL, "SELECT 1 FROM auth.admins WHERE username = $1", 1, params,
                     &res);
    if (rv != 0 || PQntuples(res) > 0)
        goto out;
    if (hash_password(ctx, DEFAULT_ADMIN_PASSWORD, hash) != 0) {
        rv = VAP_ENOMEM;
        goto out;
    }
    params[1] = hash;
    /* ON CONFLICT: a replica starting at the same moment may have created it. Never
     * overwrite: the password may have been changed since. */
    rv = vap_db_exec(conn, NULL,
                     "INSERT INTO auth.admins (username, password_hash) VALUES ($1, $2)"
                     " ON CONFLICT (username) DO NOTHING",
                     2, params, NULL);
    if (rv == 0)
        vap_info(NULL, "default admin created username=%s", DEFAULT_ADMIN_USER);
out:
    PQclear(res);
    vap_db_release(ctx->db, conn);
    return rv;
}
