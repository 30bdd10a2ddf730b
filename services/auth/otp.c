/*
 * One-time codes: create (CSPRNG codes, unique among live codes), list, update,
 * delete, and visitor login with a code. Codes are found by keyed hash and shown to
 * the admin by decrypting code_enc (see codes.h); they never appear in logs. During a
 * key rotation (SECRET_KEY_PREVIOUS set) a code not yet re-keyed (rekey.c) is found by
 * its previous-key hash and listed by decrypting with the previous key.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "auth.h"
#include "auth.pb-c.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "token.h"

static int64_t col_int(PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

void auth_otp_from_row(struct auth_ctx *ctx, PGresult *res, int row, Vap__Otp *otp,
                       char *code)
{
    uint8_t enc[AUTH_CODE_ENC_LEN + 8];
    int n = auth_bytea_parse(PQgetvalue(res, row, 1), enc, sizeof(enc));
    if (n < 0 || auth_codes_decrypt_either(&ctx->codes, ctx->prev, enc, (size_t)n, code) < 0)
        code[0] = '\0'; /* made under another SECRET_KEY: listed without its code */
    otp->id = col_int(res, row, 0);
    otp->code = code;
    otp->max_uses = (int32_t)col_int(res, row, 2);
    otp->used_count = (int32_t)col_int(res, row, 3);
    otp->is_active = PQgetvalue(res, row, 4)[0] == 't';
    otp->created_at_ms = col_int(res, row, 5);
    otp->last_used_at_ms = col_int(res, row, 6);
}

/* Packs every row of res (AUTH_OTP_COLUMNS) as an OtpList reply. */
static void reply_otp_rows(struct auth_ctx *ctx, PGresult *res, struct vap_rpc_response *resp)
{
    int n = PQntuples(res);
    Vap__OtpList list = VAP__OTP_LIST__INIT;
    Vap__Otp *otps = calloc((size_t)(n ? n : 1), sizeof(*otps));
    Vap__Otp **ptrs = calloc((size_t)(n ? n : 1), sizeof(*ptrs));
    char *codes = calloc((size_t)(n ? n : 1), AUTH_CODE_LEN + 1);

    if (!otps || !ptrs || !codes) {
        vap_rpc_response_error(resp, 500, "Internal error");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        vap__otp__init(&otps[i]);
        auth_otp_from_row(ctx, res, i, &otps[i], codes + (size_t)i * (AUTH_CODE_LEN + 1));
        ptrs[i] = &otps[i];
    }
    list.n_otps = (size_t)n;
    list.otps = ptrs;
    if (vap_rpc_response_body(resp, &list.base) != 0)
        vap_rpc_response_error(resp, 500, "Internal error");
out:
    free(codes);
    free(ptrs);
    free(otps);
}

/* A failed code login counts for the address and for its network: guessing from many
 * addresses of one network (a /24, a /64) is throttled as one. */
static void code_failure(struct auth_ctx *ctx, const char *addr_key, const char *net_key)
{
    int64_t now = vap_now_ms();
    auth_throttle_fail(ctx->throttle_addr, addr_key, now);
    auth_throttle_fail(ctx->throttle_net, net_key, now);
}

/* Reads what a code login needs about the row code finds (hash: its current-key hash)
 * and remembers it. VAP_ENOTFOUND for no row, a database error, or 0. */
static int find_code(struct auth_ctx *ctx, const struct vap_rpc_request *req, const char *code,
                     const uint8_t hash[AUTH_CODE_HASH_LEN], struct auth_code_facts *facts)
{
    uint8_t prev[AUTH_CODE_HASH_LEN];
    char hash_hex[2 * AUTH_CODE_HASH_LEN + 3], prev_hex[2 * AUTH_CODE_HASH_LEN + 3];
    const char *params[2] = {hash_hex, prev_hex};
    uint64_t gen = auth_code_cache_generation(ctx->code_cache);
    PGconn *conn = NULL;
    PGresult *res = NULL;
    int rv;

    auth_bytea_hex(hash, AUTH_CODE_HASH_LEN, hash_hex);
    auth_codes_hash(ctx->prev ? ctx->prev : &ctx->codes, code, prev);
    auth_bytea_hex(prev, sizeof(prev), prev_hex);
    sodium_memzero(prev, sizeof(prev));
    rv = vap_db_acquire(ctx->db, &conn, req->deadline_ms);
    if (rv != 0)
        return rv;
    /* A live row wins over dead ones that once had the same code; then a row under the
     * current key ($1) over one not yet re-keyed ($2, the current hash again when there
     * is no previous key). */
    rv = vap_db_exec(conn, req->request_id,
                     "SELECT id, is_active, used_count < max_uses FROM auth.otps"
                     " WHERE code_hash IN ($1, $2) AND deleted_at IS NULL"
                     " ORDER BY (is_active AND used_count < max_uses) DESC,"
                     " code_hash = $1 DESC, id DESC LIMIT 1",
                     2, params, &res);
    vap_db_release(ctx->db, conn);
    sodium_memzero(hash_hex, sizeof(hash_hex));
    sodium_memzero(prev_hex, sizeof(prev_hex));
    if (rv != 0)
        return rv;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return VAP_ENOTFOUND;
    }
    facts->otp_id = col_int(res, 0, 0);
    facts->active = PQgetvalue(res, 0, 1)[0] == 't';
    facts->has_uses = PQgetvalue(res, 0, 2)[0] == 't';
    PQclear(res);
    auth_code_cache_put(ctx->code_cache, hash, gen, facts);
    return 0;
}

void auth_login_otp(void *user, const struct vap_rpc_request *req,
                    struct vap_rpc_response *resp)
{
    struct auth_ctx *ctx = user;
    const Vap__LoginOtpRequest *in = (const Vap__LoginOtpRequest *)req->body;
    uint8_t hash[AUTH_CODE_HASH_LEN];
    char addr_key[80], net[64], net_key[80];
    struct auth_code_facts facts;
    struct vap_token_claims claims;
    uint32_t wait;
    int rv;

    snprintf(addr_key, sizeof(addr_key), "otp:%s", in->client_addr);
    vap_ip_network(in->client_addr, net, sizeof(net));
    snprintf(net_key, sizeof(net_key), "otpnet:%s", net);
    wait = auth_throttle_check(ctx->throttle_addr, addr_key, vap_now_ms());
    if (wait == 0)
        wait = auth_throttle_check(ctx->throttle_net, net_key, vap_now_ms());
    if (wait > 0) {
        vap_rpc_response_error(resp, 429, "Too many failed attempts; try again later");
        resp->retry_after = wait;
        return;
    }
    if (!auth_codes_valid(in->code)) {
        code_failure(ctx, addr_key, net_key);
        vap_rpc_response_error(resp, 401, "Invalid or expired OTP");
        return;
    }
    auth_codes_hash(&ctx->codes, in->code, hash);
    if (!auth_code_cache_find(ctx->code_cache, hash, &facts)) {
        rv = find_code(ctx, req, in->code, hash, &facts);
        sodium_memzero(hash, sizeof(hash));
        if (rv == VAP_ENOTFOUND) {
            code_failure(ctx, addr_key, net_key);
            vap_info(req->request_id, "otp login failed: unknown code addr=%s", in->client_addr);
            vap_rpc_response_error(resp, 401, "Invalid or expired OTP");
            return;
        }
        if (rv != 0) {
            auth_db_error(resp, rv);
            return;
        }
    }
    sodium_memzero(hash, sizeof(hash));
    if (!facts.active || !facts.has_uses) {
        code_failure(ctx, addr_key, net_key);
        vap_rpc_response_error(resp, 403,
                               !facts.active ? "OTP is inactive" : "OTP has no remaining uses");
        return;
    }
    memset(&claims, 0, sizeof(claims));
    claims.otp_id = facts.otp_id;
    snprintf(claims.sub, sizeof(claims.sub), "otp:%" PRId64, claims.otp_id);
    claims.role = VAP_ROLE_OTP;
    auth_reply_token(ctx, &claims, resp);
    vap_debug(req->request_id, "otp login ok otp_id=%" PRId64, claims.otp_id);
}

void auth_otp_list(void *user, const struct vap_rpc_request *req,
                   struct vap_rpc_response *resp)
{
    struct auth_ctx *ctx = user;
    const Vap__OtpListRequest *in = (const Vap__OtpListRequest *)req->body;
    char limit[16], offset[16], filter[4];
    const char *params[3] = {limit, offset, filter};
    PGconn *conn = NULL;
    PGresult *res = NULL;
    uint64_t gen;
    int rv;

    snprintf(limit, sizeof(limit), "%d", in->limit > 0 && in->limit <= 10000 ? in->limit : 10000);
    snprintf(offset, sizeof(offset), "%d", in->offset > 0 ? in->offset : 0);
    snprintf(filter, sizeof(filter), "%d", in->active_filter);
    if (auth_code_cache_list_find(ctx->code_cache, in->limit, in->offset, in->active_filter,
                                  &resp->body, &resp->body_len))
        return;
    gen = auth_code_cache_generation(ctx->code_cache);
    rv = vap_db_acquire(ctx->db, &conn, req->deadline_ms);
    if (rv != 0) {
        auth_db_error(resp, rv);
        return;
    }
    rv = vap_db_exec(conn, req->request_id,
                     "SELECT " AUTH_OTP_COLUMNS " FROM auth.otps WHERE deleted_at IS NULL"
                     " AND ($3 = 0 OR is_active = ($3 = 1))"
                     " ORDER BY id DESC LIMIT $1 OFFSET $2",
                     3, params, &res);
    vap_db_release(ctx->db, conn);
    if (rv != 0) {
        auth_db_error(resp, rv);
        return;
    }
    reply_otp_rows(ctx, res, resp);
    PQclear(res);
    if (resp->status == 200 && resp->body)
        auth_code_cache_list_put(ctx->code_cache, in->limit, in->offset, in->active_filter, gen,
                                 resp->body, resp->body_len);
}

void auth_otp_create(void *user, const struct vap_rpc_request *req,
                     struct vap_rpc_response *resp)
{
    struct auth_ctx *ctx = user;
    const Vap__OtpCreateRequest *in = (const Vap__OtpCreateRequest *)req->body;
    /* Each array item: quotes, comma, "\\x" and two hex digits a byte. */
    const size_t item_max = 2 * AUTH_CODE_ENC_LEN + 8;
    char *hashes = NULL, *encs = NULL, *prevs = NULL, *ids = NULL, max_uses[16];
    size_t ids_pos = 1;
    const char *params[4];
    PGresult *all = NULL;
    PGconn *conn = NULL;
    int rv, remaining, attempts = 0;
    int created = 0;

    if (in->count < 1 || in->count > 1000 || in->max_uses < 1 || in->max_uses > 100000) {
        vap_rpc_response_error(resp, 422, "count must be 1..1000 and max_uses 1..100000");
        return;
    }
    hashes = malloc((size_t)in->count * item_max + 4);
    encs = malloc((size_t)in->count * item_max + 4);
    prevs = malloc((size_t)in->count * item_max + 4);
    ids = malloc((size_t)in->count * 22 + 4);
    if (!hashes || !encs || !prevs || !ids) {
        vap_rpc_response_error(resp, 500, "Internal error");
        goto out;
    }
    snprintf(max_uses, sizeof(max_uses), "%d", in->max_uses);
    ids[0] = '{';
    rv = vap_db_acquire(ctx->db, &conn, req->deadline_ms);
    if (rv != 0) {
        auth_db_error(resp, rv);
        goto out;
    }
    rv = vap_db_command(conn, req->request_id, "BEGIN");
    remaining = in->count;
    /* Collisions with live codes (ON CONFLICT DO NOTHING) are retried with new codes. */
    while (rv == 0 && remaining > 0 && attempts++ < 20) {
        size_t hp = 1, ep = 1, pp = 1;
        PGresult *res = NULL;
        char code[AUTH_CODE_LEN + 1];
        hashes[0] = '{';
        encs[0] = '{';
        prevs[0] = '{';
        for (int i = 0; i < remaining; i++) {
            uint8_t hash[AUTH_CODE_HASH_LEN], enc[AUTH_CODE_ENC_LEN];
            auth_codes_generate(code);
            auth_codes_hash(&ctx->codes, code, hash);
            auth_codes_encrypt(&ctx->codes, code, enc);
            auth_bytea_array_append(hashes, &hp, hash, sizeof(hash));
            auth_bytea_array_append(encs, &ep, enc, sizeof(enc));
            if (ctx->prev) {
                auth_codes_hash(ctx->prev, code, hash);
                auth_bytea_array_append(prevs, &pp, hash, sizeof(hash));
            }
        }
        sodium_memzero(code, sizeof(code));
        hashes[hp++] = '}';
        hashes[hp] = '\0';
        encs[ep++] = '}';
        encs[ep] = '\0';
        prevs[pp++] = '}';
        prevs[pp] = '\0';
        params[0] = hashes;
        params[1] = encs;
        params[2] = max_uses;
        params[3] = prevs;
        /* DISTINCT ON drops codes drawn twice in the same batch. During a rotation a code
         * is also refused when a live code not yet re-keyed has the same digits (its
         * previous-key hash p; without a previous key $4 is empty and unnest pads p with
         * NULL, which matches nothing). */
        rv = vap_db_exec(conn, req->request_id,
                         "INSERT INTO auth.otps (code_hash, code_enc, max_uses)"
                         " SELECT DISTINCT ON (h) h, e, $3::int"
                         " FROM unnest($1::bytea[], $2::bytea[], $4::bytea[]) AS t(h, e, p)"
                         " WHERE NOT EXISTS (SELECT 1 FROM auth.otps x WHERE x.code_hash = t.p"
                         "   AND x.deleted_at IS NULL AND x.is_active"
                         "   AND x.used_count < x.max_uses)"
                         " ON CONFLICT (code_hash) WHERE deleted_at IS NULL AND is_active"
                         " AND used_count < max_uses DO NOTHING RETURNING id",
                         4, params, &res);
        if (rv == 0) {
            for (int i = 0; i < PQntuples(res); i++) {
                int n = snprintf(ids + ids_pos, 22, "%s%s", ids_pos > 1 ? "," : "",
                                 PQgetvalue(res, i, 0));
                ids_pos += (size_t)n;
            }
            remaining -= PQntuples(res);
            created += PQntuples(res);
            PQclear(res);
        }
    }
    if (rv == 0 && remaining > 0)
        rv = VAP_ECONFLICT;
    if (rv == 0)
        rv = vap_db_command(conn, req->request_id, "COMMIT");
    auth_code_cache_changed(ctx->code_cache); /* a new code may share digits with a dead one */
    if (rv == 0) {
        const char *p[1] = {ids};
        ids[ids_pos++] = '}';
        ids[ids_pos] = '\0';
        rv = vap_db_exec(conn, req->request_id,
                         "SELECT " AUTH_OTP_COLUMNS " FROM auth.otps WHERE id = ANY($1::int8[])"
                         " ORDER BY id DESC",
                         1, p, &all);
    } else {
        vap_db_command(conn, req->request_id, "ROLLBACK");
    }
    vap_db_release(ctx->db, conn);
    if (rv == VAP_ECONFLICT) {
        vap_rpc_response_error(resp, 409, "Could not find enough free codes; try fewer");
        goto out;
    }
    if (rv != 0) {
        auth_db_error(resp, rv);
        goto out;
    }
    reply_otp_rows(ctx, all, resp);
    resp->status = 201;
    vap_info(req->request_id, "otps created count=%d max_uses=%d", created, in->max_uses);
out:
    PQclear(all);
    free(hashes);
    free(encs);
    free(prevs);
    free(ids);
}
