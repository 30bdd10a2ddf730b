/*
 * The gateway's request pipeline: every request gets a request id, security and CORS
 * headers, a route from the table below (exact paths and one {id} segment; a trailing
 * slash is ignored), authentication as the route demands, and its latency recorded.
 * Unknown paths fall through to the static files of WEB_DIR, then 404; a known path
 * with another method is 405.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "clock.h"
#include "err.h"
#include "gateway.h"
#include "voice_gw.h"
#include "http.h"
#include "log.h"
#include "metrics.h"

struct route {
    const char *method;
    const char *pattern; /* "{id}" matches one path segment */
    void (*handler)(struct gw_req *r);
    enum gw_auth_need auth;
};

static const struct route routes[] = {
    {"POST", "/api/auth/login/admin", gw_route_login_admin, GW_AUTH_NONE},
    {"POST", "/api/auth/login/otp", gw_route_login_otp, GW_AUTH_NONE},
    {"PUT", "/api/auth/change-password", gw_route_change_password, GW_AUTH_ADMIN},
    {"GET", "/api/otps", gw_route_otp_list, GW_AUTH_ADMIN},
    {"POST", "/api/otps", gw_route_otp_create, GW_AUTH_ADMIN},
    {"PUT", "/api/otps/{id}", gw_route_otp_update, GW_AUTH_ADMIN},
    {"DELETE", "/api/otps/{id}", gw_route_otp_delete, GW_AUTH_ADMIN},
    {"GET", "/api/agents/list", gw_route_agents_list, GW_AUTH_ANY},
    {"GET", "/api/agents/config/{id}", gw_route_agents_config, GW_AUTH_ANY},
    {"POST", "/api/agents/access", gw_route_agents_access, GW_AUTH_ANY},
    {"GET", "/api/agents/usage", gw_route_agents_usage, GW_AUTH_ADMIN},
    {"GET", "/api/agents/traffic", gw_route_agents_traffic, GW_AUTH_ADMIN},
    {"GET", "/api/voice-agents/stream", gw_route_voice_stream_http, GW_AUTH_NONE},
    {"GET", "/api/voice-agents/stream/twilio", gw_route_voice_stream_http, GW_AUTH_NONE},
    {"GET", "/healthz", gw_route_healthz, GW_AUTH_NONE},
    {"GET", "/readyz", gw_route_readyz, GW_AUTH_NONE},
    {"GET", "/metrics", gw_route_metrics, GW_AUTH_NONE},
    {"GET", "/docs", gw_route_docs, GW_AUTH_NONE},
    {"GET", "/redoc", gw_route_redoc, GW_AUTH_NONE},
    {"GET", "/openapi.json", gw_route_openapi, GW_AUTH_NONE},
};
#define N_ROUTES ((int)(sizeof(routes) / sizeof(routes[0])))
/* Metric slots after the routes: */
#define M_STATIC N_ROUTES
#define M_PREFLIGHT (N_ROUTES + 1)
#define M_UNMATCHED (N_ROUTES + 2)
#define N_METRIC_ROUTES (N_ROUTES + 3)

static struct gw_metric_route metric_routes[N_METRIC_ROUTES];

const struct gw_metric_route *gw_router_metric_routes(int *n)
{
    for (int i = 0; i < N_ROUTES; i++) {
        metric_routes[i].method = routes[i].method;
        metric_routes[i].route = routes[i].pattern;
    }
    metric_routes[M_STATIC] = (struct gw_metric_route){"GET", "static"};
    metric_routes[M_PREFLIGHT] = (struct gw_metric_route){"OPTIONS", "preflight"};
    metric_routes[M_UNMATCHED] = (struct gw_metric_route){"ANY", "unmatched"};
    *n = N_METRIC_ROUTES;
    return metric_routes;
}

void gw_add_header(struct gw_req *r, const char *name, const char *value)
{
    int n = snprintf(r->headers + r->headers_len, sizeof(r->headers) - r->headers_len,
                     "%s: %s\r\n", name, value);
    if (n > 0 && (size_t)n < sizeof(r->headers) - r->headers_len)
        r->headers_len += (size_t)n;
    else
        r->headers[r->headers_len] = '\0'; /* dropped: never a partial header line */
}

void gw_reply_raw(struct gw_req *r, int status, const char *content_type, const char *body,
                  size_t len)
{
    r->status = status;
    vap_http_send(r->conn, status, content_type, body, len, r->headers);
}

void gw_reply_json(struct gw_req *r, int status, json_t *body)
{
    r->status = status;
    vap_http_send_json(r->conn, status, body, r->headers);
}

void gw_reply_error(struct gw_req *r, int status, const char *detail)
{
    r->status = status;
    vap_http_send_error(r->conn, status, detail, r->headers);
}

void gw_reply_validation(struct gw_req *r, struct vap_verrors *v)
{
    r->status = 422;
    vap_http_send_validation(r->conn, v, r->headers);
}

int64_t gw_deadline(struct gw_req *r, long timeout_ms)
{
    (void)r;
    return vap_now_ms() + timeout_ms;
}

int gw_reply_rpc_failure(struct gw_req *r, int rv, const struct vap_rpc_result *res)
{
    char retry[16];
    if (rv != 0) {
        vap_warn(r->request_id, "backend call failed: %s", vap_strerror(rv));
        gw_add_header(r, "Retry-After", "1");
        gw_reply_error(r, 503, "Service temporarily unavailable");
        return 1;
    }
    if (res->status >= 200 && res->status < 300)
        return 0;
    if (res->status == 429 || res->status == 503) {
        snprintf(retry, sizeof(retry), "%u", res->retry_after ? res->retry_after : 1);
        gw_add_header(r, "Retry-After", retry);
    }
    if (res->status == 401)
        gw_add_header(r, "WWW-Authenticate", "Bearer");
    if (res->status == 422) {
        struct vap_verrors v = {0};
        vap_verrors_add(&v, res->field[0] ? res->field : NULL, res->detail, "value_error");
        gw_reply_validation(r, &v);
        return 1;
    }
    gw_reply_error(r, res->status, res->detail[0] ? res->detail : "Error");
    return 1;
}

void gw_reply_too_large(struct gw_req *r)
{
    /* The rest of the body is not read: the connection cannot be reused. */
    gw_add_header(r, "Connection", "close");
    gw_reply_error(r, 413, "Request body too large (limit 65536 bytes)");
}

int gw_read_json_body(struct gw_req *r, json_t **out)
{
    struct vap_verrors v = {0};
    char *body = NULL;
    size_t len = 0;
    int rv;

    if (r->ri->content_length > VAP_HTTP_BODY_MAX) {
        gw_reply_too_large(r);
        return -1;
    }
    if (!vap_http_content_type_is(r->conn, "application/json")) {
        gw_reply_error(r, 415, "Content-Type must be application/json");
        return -1;
    }
    rv = vap_http_read_body(r->conn, VAP_HTTP_BODY_MAX, &body, &len);
    if (rv == VAP_ETOOBIG) {
        gw_reply_too_large(r);
        return -1;
    }
    if (rv != 0) {
        gw_reply_error(r, 400, "Could not read the request body");
        return -1;
    }
    rv = vap_json_parse_object(body, len, out, &v);
    free(body);
    if (rv != 0) {
        gw_reply_validation(r, &v);
        return -1;
    }
    return 0;
}

/* Matches path against pattern; a {id} segment is copied to r->path_param. */
static int match(const char *pattern, const char *path, size_t path_len, struct gw_req *r)
{
    const char *p = pattern, *s = path, *end = path + path_len;
    while (*p && s < end) {
        if (strncmp(p, "{id}", 4) == 0) {
            const char *seg_end = memchr(s, '/', (size_t)(end - s));
            size_t n;
            if (!seg_end)
                seg_end = end;
            n = (size_t)(seg_end - s);
            if (n == 0 || n >= sizeof(r->path_param_buf))
                return 0;
            memcpy(r->path_param_buf, s, n);
            r->path_param_buf[n] = '\0';
            r->path_param = r->path_param_buf;
            s = seg_end;
            p += 4;
            continue;
        }
        if (*p != *s)
            return 0;
        p++;
        s++;
    }
    return *p == '\0' && s == end;
}

static void make_request_id(struct gw_req *r)
{
    const char *given = mg_get_header(r->conn, "X-Request-Id");
    if (given) {
        size_t n = strlen(given);
        int ok = n > 0 && n < sizeof(r->request_id);
        for (size_t i = 0; ok && i < n; i++)
            ok = (given[i] >= '0' && given[i] <= '9') || (given[i] >= 'a' && given[i] <= 'z') ||
                 (given[i] >= 'A' && given[i] <= 'Z') || given[i] == '-' || given[i] == '_';
        if (ok) {
            memcpy(r->request_id, given, n + 1);
            return;
        }
    }
    snprintf(r->request_id, sizeof(r->request_id), "%s-%llx", r->gw->request_id_prefix,
             (unsigned long long)atomic_fetch_add(&r->gw->request_counter, 1));
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

int gw_handle_request(struct mg_connection *conn)
{
    struct gw_ctx *gw = mg_get_user_data(mg_get_context(conn));
    struct gw_req req;
    struct timespec t0;
    const char *uri, *method;
    size_t path_len;
    int metric = M_UNMATCHED, path_matched = 0;
    char allow[64] = "";

    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (gw_is_voice_upgrade(conn) && !atomic_load(&gw->draining))
        return 0; /* civetweb hands it to the WebSocket handler (voice_stream.c) */
    memset(&req, 0, sizeof(req));
    req.gw = gw;
    req.conn = conn;
    req.ri = mg_get_request_info(conn);
    req.headers[0] = '\0';
    uri = req.ri->local_uri ? req.ri->local_uri : "/";
    method = req.ri->request_method;
    vap_http_client_addr(req.ri->remote_addr, mg_get_header(conn, "X-Forwarded-For"),
                         gw->cfg.trusted_proxies, req.client_addr, sizeof(req.client_addr));
    gw_metrics_in_flight(gw->metrics, 1);
    make_request_id(&req);
    gw_add_header(&req, "X-Request-Id", req.request_id);
    gw_add_header(&req, "X-Content-Type-Options", "nosniff");
    gw_add_header(&req, "Referrer-Policy", "no-referrer");
    gw_cors_headers(&req);

    path_len = strlen(uri);
    if (path_len > 1 && uri[path_len - 1] == '/')
        path_len--;

    if (atomic_load(&gw->draining) && strcmp(uri, "/healthz") != 0) {
        /* Shutting down: requests already running finish; new ones go elsewhere. */
        gw_add_header(&req, "Connection", "close");
        gw_add_header(&req, "Retry-After", "1");
        gw_reply_error(&req, 503, "Server is shutting down; retry");
        goto done;
    }
    if (strcmp(method, "OPTIONS") == 0 && mg_get_header(conn, "Origin") &&
        mg_get_header(conn, "Access-Control-Request-Method")) {
        metric = M_PREFLIGHT;
        gw_cors_preflight(&req);
        goto done;
    }
    for (int i = 0; i < N_ROUTES; i++) {
        req.path_param = NULL;
        if (!match(routes[i].pattern, uri, path_len, &req))
            continue;
        path_matched = 1;
        if (strcmp(routes[i].method, method) != 0 &&
            !(strcmp(method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0)) {
            size_t used = strlen(allow);
            snprintf(allow + used, sizeof(allow) - used, "%s%s", used ? ", " : "",
                     routes[i].method);
            continue;
        }
        metric = i;
        if (routes[i].auth != GW_AUTH_NONE && gw_authenticate(&req, routes[i].auth) != 0)
            goto done;
        routes[i].handler(&req);
        goto done;
    }
    if (path_matched) {
        gw_add_header(&req, "Allow", allow);
        gw_reply_error(&req, 405, "Method Not Allowed");
        goto done;
    }
    if ((strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) &&
        gw_serve_static(&req, uri) == 0) {
        metric = M_STATIC;
        goto done;
    }
    gw_reply_error(&req, 404, "Not Found");
done:
    gw_metrics_observe(gw->metrics, metric, req.status, seconds_since(&t0));
    gw_metrics_in_flight(gw->metrics, -1);
    if (vap_log_enabled(VAP_LOG_DEBUG))
        vap_debug(req.request_id, "%s %s status=%d addr=%s", method, uri, req.status,
                  req.client_addr);
    /* civetweb: a value > 0 means the request was handled, and the number is the status. */
    return req.status > 0 ? req.status : 1;
}
