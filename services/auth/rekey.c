/*
 * Re-keying stored one-time codes after SECRET_KEY changed. At start, when
 * SECRET_KEY_PREVIOUS is set, every code made under the previous key gets its code_hash
 * and code_enc rewritten under the current key, so the codes keep working once
 * SECRET_KEY_PREVIOUS is removed. One transaction under an advisory lock: replicas that
 * start together take turns and the later ones find nothing to do. Rows already under
 * the current key are left alone (it is tried first), deleted rows (code_enc NULL) are
 * skipped. A live row whose new hash already belongs to another live code (a replica
 * still on the old key made the same code during a rolling rotation) is left under the
 * previous key and counted; it keeps working while SECRET_KEY_PREVIOUS is set.
 * Only counts are logged, never codes.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "signals.h"

#define REKEY_BATCH 500 /* rows read and rewritten per statement */
#define REKEY_STR_(x) #x
#define REKEY_STR(x) REKEY_STR_(x)
#define REKEY_ITEM_MAX (2 * AUTH_CODE_ENC_LEN + 8) /* one bytea array item, see codes.h */

struct rekey_counts {
    int rekeyed, current, conflicts, unreadable;
};

/* Array literals for one UPDATE: ids, old code_enc (to skip rows changed meanwhile),
 * new code_hash, new code_enc. */
struct rekey_batch {
    char *ids, *olds, *hashes, *encs;
    size_t ids_pos, olds_pos, hashes_pos, encs_pos;
    int n;
};

static void batch_reset(struct rekey_batch *b)
{
    b->ids[0] = b->olds[0] = b->hashes[0] = b->encs[0] = '{';
    b->ids_pos = b->olds_pos = b->hashes_pos = b->encs_pos = 1;
    b->n = 0;
}

static void close_array(char *buf, size_t *pos)
{
    buf[(*pos)++] = '}';
    buf[*pos] = '\0';
}

/* Rewrites the batch's rows; rows deleted meanwhile or whose new hash is taken by another
 * live code are left as they are. */
static int batch_apply(PGconn *conn, struct rekey_batch *b, struct rekey_counts *counts)
{
    const char *params[4] = {b->ids, b->olds, b->hashes, b->encs};
    PGresult *res = NULL;
    int rv;

    close_array(b->ids, &b->ids_pos);
    close_array(b->olds, &b->olds_pos);
    close_array(b->hashes, &b->hashes_pos);
    close_array(b->encs, &b->encs_pos);
    rv = vap_db_exec(conn, NULL,
                     "UPDATE auth.otps o SET code_hash = t.h, code_enc = t.e"
                     " FROM unnest($1::int8[], $2::bytea[], $3::bytea[], $4::bytea[])"
                     "   AS t(id, old, h, e)"
                     " WHERE o.id = t.id AND o.code_enc = t.old"
                     " AND NOT (o.deleted_at IS NULL AND o.is_active AND o.used_count < o.max_uses"
                     "   AND EXISTS (SELECT 1 FROM auth.otps x WHERE x.code_hash = t.h"
                     "     AND x.id <> o.id AND x.deleted_at IS NULL AND x.is_active"
                     "     AND x.used_count < x.max_uses))"
                     " RETURNING o.id",
                     4, params, &res);
    if (rv != 0)
        return rv;
    counts->rekeyed += PQntuples(res);
    counts->conflicts += b->n - PQntuples(res);
    PQclear(res);
    return 0;
}

/* Sorts one row (id, code_enc) into the counts or the batch. */
static void rekey_row(const struct auth_ctx *ctx, PGresult *res, int row, struct rekey_batch *b,
                      struct rekey_counts *counts)
{
    uint8_t old[AUTH_CODE_ENC_LEN + 8], hash[AUTH_CODE_HASH_LEN], enc[AUTH_CODE_ENC_LEN];
    int n = auth_bytea_parse(PQgetvalue(res, row, 1), old, sizeof(old));
    enum auth_rekey_result r = AUTH_REKEY_UNREADABLE;
    int len;

    if (n >= 0)
        r = auth_codes_rekey(&ctx->codes, ctx->prev, old, (size_t)n, hash, enc);
    if (r == AUTH_REKEY_CURRENT) {
        counts->current++;
        return;
    }
    if (r == AUTH_REKEY_UNREADABLE) {
        counts->unreadable++;
        return;
    }
    len = snprintf(b->ids + b->ids_pos, 22, "%s%s", b->n > 0 ? "," : "", PQgetvalue(res, row, 0));
    if (len > 0 && len < 22)
        b->ids_pos += (size_t)len;
    auth_bytea_array_append(b->olds, &b->olds_pos, old, (size_t)n);
    auth_bytea_array_append(b->hashes, &b->hashes_pos, hash, sizeof(hash));
    auth_bytea_array_append(b->encs, &b->encs_pos, enc, sizeof(enc));
    b->n++;
}

/* One pass over every stored code in one transaction. */
static int rekey_once(const struct auth_ctx *ctx, PGconn *conn, struct rekey_batch *b,
                      struct rekey_counts *counts)
{
    char last_id[24] = "0";
    int rv;

    memset(counts, 0, sizeof(*counts));
    rv = vap_db_command(conn, NULL, "BEGIN");
    if (rv != 0)
        return rv;
    /* Its own lock, not the migrations': a long re-key must not hold up other schemas. */
    rv = vap_db_command(conn, NULL, "SELECT pg_advisory_xact_lock(7365826002)");
    while (rv == 0) {
        const char *params[1] = {last_id};
        PGresult *res = NULL;
        int rows;
        rv = vap_db_exec(conn, NULL,
                         "SELECT id, code_enc FROM auth.otps WHERE code_enc IS NOT NULL"
                         " AND id > $1::int8 ORDER BY id LIMIT " REKEY_STR(REKEY_BATCH),
                         1, params, &res);
        if (rv != 0)
            break;
        rows = PQntuples(res);
        batch_reset(b);
        for (int i = 0; i < rows; i++)
            rekey_row(ctx, res, i, b, counts);
        if (rows > 0)
            snprintf(last_id, sizeof(last_id), "%s", PQgetvalue(res, rows - 1, 0));
        PQclear(res);
        if (b->n > 0)
            rv = batch_apply(conn, b, counts);
        if (rows < REKEY_BATCH)
            break;
    }
    if (rv == 0)
        rv = vap_db_command(conn, NULL, "COMMIT");
    else
        vap_db_command(conn, NULL, "ROLLBACK");
    return rv;
}

static void log_counts(const struct rekey_counts *c)
{
    vap_info(NULL, "otp re-key done rekeyed=%d already_current=%d", c->rekeyed, c->current);
    if (c->conflicts > 0)
        vap_warn(NULL,
                 "otp re-key: %d codes left under SECRET_KEY_PREVIOUS (another live code has"
                 " the same digits, or deleted meanwhile); they stop working when"
                 " SECRET_KEY_PREVIOUS is removed",
                 c->conflicts);
    if (c->unreadable > 0)
        vap_warn(NULL,
                 "otp re-key: %d codes were made under neither SECRET_KEY nor"
                 " SECRET_KEY_PREVIOUS; they cannot be used or listed",
                 c->unreadable);
}

int auth_rekey_codes(struct auth_ctx *ctx, int timeout_s)
{
    int64_t give_up = vap_now_ms() + (int64_t)timeout_s * 1000;
    struct rekey_batch b = {0};
    struct rekey_counts counts;
    int rv = VAP_ENOMEM;

    if (!ctx->prev)
        return 0;
    b.ids = malloc(REKEY_BATCH * 22 + 4);
    b.olds = malloc(REKEY_BATCH * REKEY_ITEM_MAX + 4);
    b.hashes = malloc(REKEY_BATCH * REKEY_ITEM_MAX + 4);
    b.encs = malloc(REKEY_BATCH * REKEY_ITEM_MAX + 4);
    if (!b.ids || !b.olds || !b.hashes || !b.encs)
        goto out;
    for (;;) {
        PGconn *conn = NULL;
        int sig;
        rv = vap_db_acquire(ctx->db, &conn, vap_now_ms() + 5000);
        if (rv == 0) {
            rv = rekey_once(ctx, conn, &b, &counts);
            vap_db_release(ctx->db, conn);
            if (rv == 0) {
                log_counts(&counts);
                goto out;
            }
        }
        if (vap_now_ms() > give_up) {
            vap_error(NULL, "otp re-key failed for %d s: %s", timeout_s, vap_strerror(rv));
            goto out;
        }
        vap_warn(NULL, "otp re-key failed (%s); retrying", vap_strerror(rv));
        sig = vap_signals_wait(1000);
        if (sig == SIGTERM || sig == SIGINT) {
            rv = VAP_EUNAVAIL;
            goto out;
        }
    }
out:
    free(b.ids);
    free(b.olds);
    free(b.hashes);
    free(b.encs);
    return rv;
}
