/*
 * One-time code routes (admin only): list, create, update, delete. The gateway turns
 * JSON into vap-auth requests and vap-auth's Otp messages into the public OTP object.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.pb-c.h"
#include "clock.h"
#include "gateway.h"
#include "http.h"
#include "json.h"
#include "log.h"

#define OTP_ID_MAX 9007199254740991LL /* 2^53 - 1: exact in every JSON client */

/* Writes the public OTP object. Straight into the reply's text rather than through a
 * jansson tree: a list of codes is the busiest admin reply, and the tree's allocations
 * were a third of the machine in `GET /api/otps/` under load. */
static void write_otp(struct vap_jw *w, const Vap__Otp *o)
{
    char when[32];
    vap_jw_raw(w, "{\"id\":");
    vap_jw_int(w, o->id);
    vap_jw_raw(w, ",\"code\":");
    vap_jw_str(w, o->code);
    vap_jw_raw(w, ",\"max_uses\":");
    vap_jw_int(w, o->max_uses);
    vap_jw_raw(w, ",\"used_count\":");
    vap_jw_int(w, o->used_count);
    vap_jw_raw(w, ",\"remaining_uses\":");
    vap_jw_int(w, (int64_t)o->max_uses - o->used_count);
    vap_jw_raw(w, ",\"is_active\":");
    vap_jw_bool(w, o->is_active);
    vap_jw_raw(w, ",\"created_at\":");
    vap_format_iso8601(o->created_at_ms, 0, when, sizeof(when));
    vap_jw_str(w, when);
    vap_jw_raw(w, ",\"last_used_at\":");
    if (o->last_used_at_ms > 0) {
        vap_format_iso8601(o->last_used_at_ms, 0, when, sizeof(when));
        vap_jw_str(w, when);
    } else {
        vap_jw_raw(w, "null");
    }
    vap_jw_raw(w, "}");
}

/* Replies with one OTP object (single) or the array of them. */
static void reply_otps(struct gw_req *r, int status, const Vap__Otp *const *otps, size_t n,
                       int single)
{
    struct vap_jw w = {0};
    size_t len;
    char *text;
    if (!single)
        vap_jw_raw(&w, "[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            vap_jw_raw(&w, ",");
        write_otp(&w, otps[i]);
    }
    if (!single)
        vap_jw_raw(&w, "]");
    text = vap_jw_finish(&w, &len);
    if (!text) {
        gw_reply_error(r, 500, "Internal error");
        return;
    }
    gw_reply_raw(r, status, "application/json", text, len);
    free(text);
}

static void reply_otp_list(struct gw_req *r, int status, const Vap__OtpList *list)
{
    reply_otps(r, status, (const Vap__Otp *const *)list->otps, list->n_otps, 0);
}

/* Reads an optional integer query parameter; adds a validation error when bad. */
static int query_int(struct gw_req *r, const char *name, int64_t min, int64_t max,
                     int64_t *out, struct vap_verrors *v)
{
    const char *qs = r->ri->query_string;
    char buf[32], msg[64];
    int n;
    if (!qs)
        return 0;
    n = mg_get_var(qs, strlen(qs), name, buf, sizeof(buf));
    if (n == -1)
        return 0;
    if (n < 0 || vap_parse_int64(buf, min, max, out) != 0) {
        snprintf(msg, sizeof(msg), "must be an integer between %lld and %lld", (long long)min,
                 (long long)max);
        vap_verrors_add_at(v, "query", name, msg, "type_error.integer");
        return -1;
    }
    return 1;
}

void gw_route_otp_list(struct gw_req *r)
{
    Vap__OtpListRequest in = VAP__OTP_LIST_REQUEST__INIT;
    struct vap_verrors v = {0};
    struct vap_rpc_result res;
    const char *qs = r->ri->query_string;
    int64_t limit = 10000, offset = 0; /* existing dashboards expect every code */
    char active[8];
    int rv;

    query_int(r, "limit", 1, 10000, &limit, &v);
    query_int(r, "offset", 0, 100000000, &offset, &v);
    if (qs && mg_get_var(qs, strlen(qs), "active", active, sizeof(active)) >= 0) {
        if (strcmp(active, "true") == 0 || strcmp(active, "1") == 0)
            in.active_filter = 1;
        else if (strcmp(active, "false") == 0 || strcmp(active, "0") == 0)
            in.active_filter = 2;
        else
            vap_verrors_add_at(&v, "query", "active", "value could not be parsed to a boolean",
                               "type_error.bool");
    }
    if (vap_verrors_any(&v)) {
        gw_reply_validation(r, &v);
        return;
    }
    in.limit = (int32_t)limit;
    in.offset = (int32_t)offset;
    rv = vap_rpc_call(r->gw->auth, "auth.otp_list", r->request_id, &in.base,
                      &vap__otp_list__descriptor, gw_deadline(r, r->gw->cfg.rpc_timeout_ms), &res);
    if (!gw_reply_rpc_failure(r, rv, &res))
        reply_otp_list(r, 200, (const Vap__OtpList *)res.reply);
    vap_rpc_result_clear(&res);
}

void gw_route_otp_create(struct gw_req *r)
{
    Vap__OtpCreateRequest in = VAP__OTP_CREATE_REQUEST__INIT;
    struct vap_verrors v = {0};
    struct vap_rpc_result res;
    int64_t count = 0, max_uses = 0;
    json_t *body = NULL;
    int rv;

    if (gw_read_json_body(r, &body) != 0)
        return;
    vap_json_int_field(body, "count", 1, 1000, 1, &count, NULL, &v);
    vap_json_int_field(body, "max_uses", 1, 100000, 1, &max_uses, NULL, &v);
    json_decref(body);
    if (vap_verrors_any(&v)) {
        gw_reply_validation(r, &v);
        return;
    }
    in.count = (int32_t)count;
    in.max_uses = (int32_t)max_uses;
    rv = vap_rpc_call(r->gw->auth, "auth.otp_create", r->request_id, &in.base,
                      &vap__otp_list__descriptor, gw_deadline(r, r->gw->cfg.rpc_timeout_ms), &res);
    if (!gw_reply_rpc_failure(r, rv, &res))
        reply_otp_list(r, 201, (const Vap__OtpList *)res.reply);
    vap_rpc_result_clear(&res);
}

/* Parses the {id} path segment; replies 422 and returns -1 when it is not an id. */
static int path_id(struct gw_req *r, int64_t *id)
{
    struct vap_verrors v = {0};
    if (r->path_param && vap_parse_int64(r->path_param, 1, OTP_ID_MAX, id) == 0)
        return 0;
    vap_verrors_add_at(&v, "path", "otp_id", "value is not a valid integer",
                       "type_error.integer");
    gw_reply_validation(r, &v);
    return -1;
}

void gw_route_otp_update(struct gw_req *r)
{
    Vap__OtpUpdateRequest in = VAP__OTP_UPDATE_REQUEST__INIT;
    struct vap_verrors v = {0};
    struct vap_rpc_result res;
    int64_t id, max_uses = 0;
    int has_max = 0, has_active = 0, active = 0, rv;
    json_t *body = NULL;

    if (path_id(r, &id) != 0 || gw_read_json_body(r, &body) != 0)
        return;
    vap_json_int_field(body, "max_uses", 1, 100000, 0, &max_uses, &has_max, &v);
    vap_json_bool_field(body, "is_active", 0, &active, &has_active, &v);
    json_decref(body);
    if (!vap_verrors_any(&v) && !has_max && !has_active)
        vap_verrors_add(&v, NULL, "give max_uses and/or is_active", "value_error.missing");
    if (vap_verrors_any(&v)) {
        gw_reply_validation(r, &v);
        return;
    }
    in.id = id;
    in.set_max_uses = has_max;
    in.max_uses = (int32_t)max_uses;
    in.set_is_active = has_active;
    in.is_active = active;
    rv = vap_rpc_call(r->gw->auth, "auth.otp_update", r->request_id, &in.base,
                      &vap__otp__descriptor, gw_deadline(r, r->gw->cfg.rpc_timeout_ms), &res);
    if (!gw_reply_rpc_failure(r, rv, &res)) {
        const Vap__Otp *one = (const Vap__Otp *)res.reply;
        reply_otps(r, 200, &one, 1, 1);
    }
    vap_rpc_result_clear(&res);
}

void gw_route_otp_delete(struct gw_req *r)
{
    Vap__OtpDeleteRequest in = VAP__OTP_DELETE_REQUEST__INIT;
    struct vap_rpc_result res;
    int64_t id;
    int rv;

    if (path_id(r, &id) != 0)
        return;
    in.id = id;
    rv = vap_rpc_call(r->gw->auth, "auth.otp_delete", r->request_id, &in.base, NULL,
                      gw_deadline(r, r->gw->cfg.rpc_timeout_ms), &res);
    if (!gw_reply_rpc_failure(r, rv, &res))
        gw_reply_json(r, 200, json_pack("{s:s}", "message", "OTP deleted"));
    vap_rpc_result_clear(&res);
}
