/*
 * Agent routes: the list and public config of configured agents (any valid token),
 * access to an agent (spends a use through vap-auth), and the admin's usage and traffic
 * views (answered by vap-usage). The agent set is reloaded on SIGHUP (agents_reload).
 */
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agents.h"
#include "auth.pb-c.h"
#include "clock.h"
#include "gateway.h"
#include "http.h"
#include "log.h"
#include "usage.pb-c.h"

static pthread_rwlock_t agents_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct vap_agents *agents_current;

static void log_agent_error(void *user, const char *message)
{
    (void)user;
    vap_error(NULL, "agent file refused: %s", message);
}

int gw_agents_reload(const char *dir)
{
    struct vap_agents *fresh = NULL, *old;
    int rv = vap_agents_load(dir, log_agent_error, NULL, &fresh);
    if (rv != 0) {
        vap_error(NULL, "cannot read agents directory %s", dir);
        return rv;
    }
    pthread_rwlock_wrlock(&agents_lock);
    old = agents_current;
    agents_current = fresh;
    pthread_rwlock_unlock(&agents_lock);
    vap_agents_unref(old);
    vap_info(NULL, "agents loaded count=%zu dir=%s", vap_agents_count(fresh), dir);
    return 0;
}

/* A reference to the current set; the caller unrefs it. */
static struct vap_agents *agents_get(void)
{
    struct vap_agents *a;
    pthread_rwlock_rdlock(&agents_lock);
    a = agents_current;
    if (a)
        vap_agents_ref(a);
    pthread_rwlock_unlock(&agents_lock);
    return a;
}

int gw_agent_exists(const char *id)
{
    struct vap_agents *a = agents_get();
    int found = a && vap_agents_find(a, id) != NULL;
    if (a)
        vap_agents_unref(a);
    return found;
}

void gw_agents_free(void)
{
    pthread_rwlock_wrlock(&agents_lock);
    vap_agents_unref(agents_current);
    agents_current = NULL;
    pthread_rwlock_unlock(&agents_lock);
}

void gw_route_agents_list(struct gw_req *r)
{
    struct vap_agents *a = agents_get();
    json_t *arr = json_array();
    for (size_t i = 0; a && i < vap_agents_count(a); i++) {
        const struct vap_agent *ag = vap_agents_at(a, i);
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "id", ag->id, "name", ag->name,
                                             "description", ag->description));
    }
    vap_agents_unref(a);
    gw_reply_json(r, 200, arr);
}

void gw_route_agents_config(struct gw_req *r)
{
    struct vap_agents *a = agents_get();
    const struct vap_agent *ag = a && r->path_param ? vap_agents_find(a, r->path_param) : NULL;
    if (ag)
        gw_reply_json(r, 200, json_deep_copy(ag->public_json));
    else
        gw_reply_error(r, 404, "Agent not found");
    vap_agents_unref(a);
}

void gw_route_agents_access(struct gw_req *r)
{
    Vap__AccessRequest in = VAP__ACCESS_REQUEST__INIT;
    struct vap_verrors v = {0};
    struct vap_rpc_result res;
    struct vap_agents *a;
    const char *agent_type = NULL;
    char key[33];
    uint8_t raw[16];
    json_t *body = NULL;
    int known, rv;

    if (gw_read_json_body(r, &body) != 0)
        return;
    vap_json_string_field(body, "agent_type", 1, 64, 1, &agent_type, NULL, &v);
    if (vap_verrors_any(&v)) {
        json_decref(body);
        gw_reply_validation(r, &v);
        return;
    }
    a = agents_get();
    known = a && vap_agents_find(a, agent_type) != NULL;
    vap_agents_unref(a);
    if (!known) {
        json_decref(body);
        gw_reply_error(r, 404, "Agent not found");
        return;
    }
    /* Made here, never taken from the client: a client reusing a key must not get a
     * second grant for one spent use. */
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(key, sizeof(key), raw, sizeof(raw));
    in.is_admin = r->claims.role == VAP_ROLE_ADMIN;
    in.otp_id = in.is_admin ? 0 : r->claims.otp_id;
    in.admin_username = in.is_admin ? r->claims.sub : "";
    in.agent_type = (char *)agent_type;
    in.token_jti = r->claims.jti;
    in.idempotency_key = key;
    rv = vap_rpc_call(r->gw->auth, "auth.access", r->request_id, &in.base,
                      &vap__access_reply__descriptor, gw_deadline(r, r->gw->cfg.rpc_timeout_ms),
                      &res);
    if (!gw_reply_rpc_failure(r, rv, &res)) {
        const Vap__AccessReply *out = (const Vap__AccessReply *)res.reply;
        json_t *remaining = out->counted ? json_integer(out->remaining_uses) : json_null();
        gw_reply_json(r, 200,
                      json_pack("{s:s, s:s, s:o}", "message", "Access granted", "agent_type",
                                agent_type, "remaining_uses", remaining));
    }
    json_decref(body);
    vap_rpc_result_clear(&res);
}

/* Parses an ISO 8601 UTC time ("2026-11-25T10:00:00Z", fraction and Z optional) or epoch
 * seconds into epoch ms. 0 or -1. */
static int parse_time(const char *text, int64_t *out_ms)
{
    struct tm tm;
    const char *end;
    int64_t secs;
    if (vap_parse_int64(text, 0, 100000000000LL, &secs) == 0) {
        *out_ms = secs * 1000;
        return 0;
    }
    memset(&tm, 0, sizeof(tm));
    end = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end) {
        memset(&tm, 0, sizeof(tm));
        end = strptime(text, "%Y-%m-%d", &tm);
        if (!end)
            return -1;
    }
    if (*end == '.')
        for (end++; *end >= '0' && *end <= '9'; end++)
            ;
    if (*end == 'Z' || strcmp(end, "+00:00") == 0)
        end += *end == 'Z' ? 1 : 6;
    if (*end != '\0')
        return -1;
    *out_ms = (int64_t)timegm(&tm) * 1000;
    return 0;
}

static int query_var(struct gw_req *r, const char *name, char *buf, size_t size)
{
    const char *qs = r->ri->query_string;
    if (!qs)
        return -1;
    return mg_get_var(qs, strlen(qs), name, buf, size);
}

static json_t *time_or_null(int64_t ms)
{
    char text[32];
    if (ms <= 0)
        return json_null();
    vap_format_iso8601(ms, 0, text, sizeof(text));
    return json_string(text);
}

void gw_route_agents_usage(struct gw_req *r)
{
    Vap__UsageListRequest in = VAP__USAGE_LIST_REQUEST__INIT;
    struct vap_verrors v = {0};
    struct vap_rpc_result res;
    char agent[72] = "", buf[64];
    int64_t since = 0, limit = 100, offset = 0;
    int n, rv;

    /* ?bucket=hour: the hourly series, the same as on /api/agents/traffic. */
    if (query_var(r, "bucket", buf, sizeof(buf)) >= 0) {
        gw_route_agents_traffic(r);
        return;
    }
    n = query_var(r, "agent_type", agent, sizeof(agent));
    if (n == -2)
        vap_verrors_add_at(&v, "query", "agent_type", "too long", "value_error");
    if (query_var(r, "since", buf, sizeof(buf)) >= 0 && parse_time(buf, &since) != 0)
        vap_verrors_add_at(&v, "query", "since", "must be an ISO 8601 UTC time",
                           "value_error.datetime");
    if (query_var(r, "limit", buf, sizeof(buf)) >= 0 && vap_parse_int64(buf, 1, 1000, &limit) != 0)
        vap_verrors_add_at(&v, "query", "limit", "must be an integer between 1 and 1000",
                           "type_error.integer");
    if (query_var(r, "offset", buf, sizeof(buf)) >= 0 &&
        vap_parse_int64(buf, 0, 100000000, &offset) != 0)
        vap_verrors_add_at(&v, "query", "offset", "must be an integer >= 0", "type_error.integer");
    if (vap_verrors_any(&v)) {
        gw_reply_validation(r, &v);
        return;
    }
    in.agent_type = agent;
    in.since_ms = since;
    in.limit = (int32_t)limit;
    in.offset = (int32_t)offset;
    rv = vap_rpc_call(r->gw->usage, "usage.list", r->request_id, &in.base,
                      &vap__usage_list__descriptor, gw_deadline(r, r->gw->cfg.rpc_timeout_ms),
                      &res);
    if (!gw_reply_rpc_failure(r, rv, &res)) {
        const Vap__UsageList *list = (const Vap__UsageList *)res.reply;
        json_t *arr = json_array();
        for (size_t i = 0; i < list->n_records; i++) {
            const Vap__UsageRecord *u = list->records[i];
            json_array_append_new(
                arr, json_pack("{s:I, s:o, s:s, s:o, s:o, s:o}", "id", (json_int_t)u->id,
                               "otp_id", u->otp_id ? json_integer(u->otp_id) : json_null(),
                               "agent_type", u->agent_type, "accessed_at",
                               time_or_null(u->accessed_at_ms), "session_id",
                               u->session_id[0] ? json_string(u->session_id) : json_null(),
                               "duration_seconds",
                               u->has_duration ? json_real(u->duration_seconds) : json_null()));
        }
        gw_reply_json(r, 200, arr);
    }
    vap_rpc_result_clear(&res);
}

void gw_route_agents_traffic(struct gw_req *r)
{
    Vap__TrafficRequest in = VAP__TRAFFIC_REQUEST__INIT;
    struct vap_verrors v = {0};
    struct vap_rpc_result res;
    struct vap_agents *a;
    char buf[64];
    char **types = NULL;
    int64_t since = 0;
    int rv;

    if (query_var(r, "bucket", buf, sizeof(buf)) >= 0) {
        if (strcmp(buf, "hour") != 0)
            vap_verrors_add_at(&v, "query", "bucket", "only \"hour\" is supported",
                               "value_error");
        in.hourly = 1;
        since = vap_wall_ms() - 24LL * 3600 * 1000;
    }
    if (query_var(r, "since", buf, sizeof(buf)) >= 0 && parse_time(buf, &since) != 0)
        vap_verrors_add_at(&v, "query", "since", "must be an ISO 8601 UTC time",
                           "value_error.datetime");
    if (vap_verrors_any(&v)) {
        gw_reply_validation(r, &v);
        return;
    }
    a = agents_get();
    in.n_agent_types = a ? vap_agents_count(a) : 0;
    types = calloc(in.n_agent_types + 1, sizeof(*types));
    for (size_t i = 0; types && i < in.n_agent_types; i++)
        types[i] = (char *)vap_agents_at(a, i)->id;
    in.agent_types = types;
    in.since_ms = since;
    rv = vap_rpc_call(r->gw->usage, "usage.traffic", r->request_id, &in.base,
                      &vap__traffic_reply__descriptor, gw_deadline(r, r->gw->cfg.rpc_timeout_ms),
                      &res);
    if (!gw_reply_rpc_failure(r, rv, &res)) {
        const Vap__TrafficReply *t = (const Vap__TrafficReply *)res.reply;
        json_t *arr = json_array();
        for (size_t i = 0; i < t->n_rows; i++) {
            const Vap__TrafficRow *row = t->rows[i];
            json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:f}", "agent_type", row->agent_type,
                                  "total_accesses", (json_int_t)row->total_accesses,
                                  "unique_users", (json_int_t)row->unique_users,
                                  "total_sessions", (json_int_t)row->total_sessions,
                                  "total_session_seconds", row->total_session_seconds);
            if (in.hourly)
                json_object_set_new(o, "hour", time_or_null(row->hour_ms));
            else
                json_object_set_new(o, "last_accessed", time_or_null(row->last_accessed_ms));
            json_array_append_new(arr, o);
        }
        gw_reply_json(r, 200, arr);
    }
    free(types);
    vap_agents_unref(a);
    vap_rpc_result_clear(&res);
}
