/*
 * The admin's views of usage: records newest first with filters and paging, and
 * traffic per configured agent (one row per agent, used or not) or per hour.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "usage.h"
#include "usage.pb-c.h"

static void db_error(struct vap_rpc_response *resp, int err)
{
    if (err == VAP_EUNAVAIL || err == VAP_ETIMEDOUT)
        vap_rpc_response_error(resp, 503, "Database unavailable");
    else
        vap_rpc_response_error(resp, 500, "Internal error");
}

static int64_t col_i64(PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* Runs sql with params on a pooled connection. */
static int query(struct usage_ctx *ctx, const struct vap_rpc_request *req, const char *sql,
                 int n, const char *const *params, PGresult **res)
{
    PGconn *conn = NULL;
    int rv = vap_db_acquire(ctx->db, &conn, req->deadline_ms);
    if (rv != 0)
        return rv;
    rv = vap_db_exec(conn, req->request_id, sql, n, params, res);
    vap_db_release(ctx->db, conn);
    return rv;
}

void usage_list(void *user, const struct vap_rpc_request *req, struct vap_rpc_response *resp)
{
    struct usage_ctx *ctx = user;
    const Vap__UsageListRequest *in = (const Vap__UsageListRequest *)req->body;
    Vap__UsageList list = VAP__USAGE_LIST__INIT;
    Vap__UsageRecord *recs = NULL, **ptrs = NULL;
    char since[24], limit[16], offset[16];
    const char *params[4] = {in->agent_type, since, limit, offset};
    PGresult *res = NULL;
    int rv, n;

    snprintf(since, sizeof(since), "%" PRId64, in->since_ms);
    snprintf(limit, sizeof(limit), "%d", in->limit > 0 && in->limit <= 1000 ? in->limit : 100);
    snprintf(offset, sizeof(offset), "%d", in->offset > 0 ? in->offset : 0);
    rv = query(ctx, req,
               "SELECT id, coalesce(otp_id, 0), agent_type,"
               " (extract(epoch FROM accessed_at) * 1000)::int8, coalesce(session_id, ''),"
               " duration_seconds IS NOT NULL, coalesce(duration_seconds, 0)"
               " FROM usage.accesses WHERE ($1 = '' OR agent_type = $1)"
               " AND accessed_at >= to_timestamp($2::float8 / 1000)"
               " ORDER BY accessed_at DESC, id DESC LIMIT $3 OFFSET $4",
               4, params, &res);
    if (rv != 0) {
        db_error(resp, rv);
        return;
    }
    n = PQntuples(res);
    recs = calloc((size_t)n + 1, sizeof(*recs));
    ptrs = calloc((size_t)n + 1, sizeof(*ptrs));
    if (!recs || !ptrs) {
        vap_rpc_response_error(resp, 500, "Internal error");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        vap__usage_record__init(&recs[i]);
        recs[i].id = col_i64(res, i, 0);
        recs[i].otp_id = col_i64(res, i, 1);
        recs[i].agent_type = PQgetvalue(res, i, 2);
        recs[i].accessed_at_ms = col_i64(res, i, 3);
        recs[i].session_id = PQgetvalue(res, i, 4);
        recs[i].has_duration = PQgetvalue(res, i, 5)[0] == 't';
        recs[i].duration_seconds = strtod(PQgetvalue(res, i, 6), NULL);
        ptrs[i] = &recs[i];
    }
    list.n_records = (size_t)n;
    list.records = ptrs;
    if (vap_rpc_response_body(resp, &list.base) != 0)
        vap_rpc_response_error(resp, 500, "Internal error");
out:
    free(recs);
    free(ptrs);
    PQclear(res);
}

/* Builds a PostgreSQL text[] literal from names (agent ids: [a-z0-9_-] only). */
static char *text_array(char **names, size_t n)
{
    size_t cap = 3, pos = 0;
    char *out;
    for (size_t i = 0; i < n; i++)
        cap += strlen(names[i]) + 3;
    out = malloc(cap);
    if (!out)
        return NULL;
    out[pos++] = '{';
    for (size_t i = 0; i < n; i++)
        pos += (size_t)snprintf(out + pos, cap - pos, "%s\"%s\"", i ? "," : "", names[i]);
    out[pos++] = '}';
    out[pos] = '\0';
    return out;
}

static int names_are_ids(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (const char *p = names[i]; *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
                return 0;
    return 1;
}

void usage_traffic(void *user, const struct vap_rpc_request *req,
                   struct vap_rpc_response *resp)
{
    struct usage_ctx *ctx = user;
    const Vap__TrafficRequest *in = (const Vap__TrafficRequest *)req->body;
    Vap__TrafficReply reply = VAP__TRAFFIC_REPLY__INIT;
    Vap__TrafficRow *rows = NULL, **ptrs = NULL;
    char since[24], *types = NULL;
    PGresult *res = NULL;
    int rv, n;

    if (!names_are_ids(in->agent_types, in->n_agent_types)) {
        vap_rpc_response_error(resp, 400, "agent ids only");
        return;
    }
    types = text_array(in->agent_types, in->n_agent_types);
    if (!types) {
        vap_rpc_response_error(resp, 500, "Internal error");
        return;
    }
    snprintf(since, sizeof(since), "%" PRId64, in->since_ms);
    {
        const char *params[2] = {types, since};
        if (in->hourly)
            rv = query(ctx, req,
                       "WITH acc AS (SELECT agent_type, date_trunc('hour', accessed_at) h,"
                       "  count(*) n, count(DISTINCT otp_id) u FROM usage.accesses"
                       "  WHERE accessed_at >= to_timestamp($2::float8 / 1000)"
                       "  AND agent_type = ANY($1::text[]) GROUP BY 1, 2),"
                       " ses AS (SELECT agent_type, date_trunc('hour', started_at) h, count(*) n,"
                       "  coalesce(sum(duration_seconds), 0) secs FROM usage.sessions"
                       "  WHERE started_at >= to_timestamp($2::float8 / 1000)"
                       "  AND agent_type = ANY($1::text[]) GROUP BY 1, 2)"
                       " SELECT coalesce(acc.agent_type, ses.agent_type), coalesce(acc.n, 0),"
                       " coalesce(acc.u, 0), coalesce(ses.n, 0), coalesce(ses.secs, 0), 0,"
                       " (extract(epoch FROM coalesce(acc.h, ses.h)) * 1000)::int8"
                       " FROM acc FULL JOIN ses ON acc.agent_type = ses.agent_type AND acc.h = ses.h"
                       " ORDER BY 7, 1",
                       2, params, &res);
        else
            rv = query(ctx, req,
                       /* totals kept by triggers (migrations/002_agent_totals.sql) */
                       "SELECT t.agent_type, coalesce(x.accesses, 0), coalesce(x.users, 0),"
                       " coalesce(x.sessions, 0), coalesce(x.session_seconds, 0),"
                       " coalesce((extract(epoch FROM x.last_accessed_at) * 1000)::int8, 0), 0"
                       " FROM unnest($1::text[]) AS t(agent_type)"
                       " LEFT JOIN usage.agent_totals x ON x.agent_type = t.agent_type"
                       " ORDER BY t.agent_type",
                       1, params, &res);
    }
    free(types);
    if (rv != 0) {
        db_error(resp, rv);
        return;
    }
    n = PQntuples(res);
    rows = calloc((size_t)n + 1, sizeof(*rows));
    ptrs = calloc((size_t)n + 1, sizeof(*ptrs));
    if (!rows || !ptrs) {
        vap_rpc_response_error(resp, 500, "Internal error");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        vap__traffic_row__init(&rows[i]);
        rows[i].agent_type = PQgetvalue(res, i, 0);
        rows[i].total_accesses = col_i64(res, i, 1);
        rows[i].unique_users = col_i64(res, i, 2);
        rows[i].total_sessions = col_i64(res, i, 3);
        rows[i].total_session_seconds = strtod(PQgetvalue(res, i, 4), NULL);
        rows[i].last_accessed_ms = col_i64(res, i, 5);
        rows[i].hour_ms = col_i64(res, i, 6);
        ptrs[i] = &rows[i];
    }
    reply.n_rows = (size_t)n;
    reply.rows = ptrs;
    if (vap_rpc_response_body(resp, &reply.base) != 0)
        vap_rpc_response_error(resp, 500, "Internal error");
out:
    free(rows);
    free(ptrs);
    PQclear(res);
}

void usage_ping(void *user, const struct vap_rpc_request *req, struct vap_rpc_response *resp)
{
    struct usage_ctx *ctx = user;
    PGresult *res = NULL;
    int rv = query(ctx, req, "SELECT 1", 0, NULL, &res);
    PQclear(res);
    if (rv != 0)
        db_error(resp, rv);
}
