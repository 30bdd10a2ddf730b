/*
 * Operations routes and static files: /healthz (process up), /readyz (vap-auth and,
 * through it, the database answer; the revocation view is fresh; not draining),
 * /metrics (Prometheus text), /docs, /redoc, /openapi.json, and the files under
 * WEB_DIR: the portal's pages are "/" (index.html, the visitor page) and "/admin"
 * (admin.html, the dashboard). Static paths are resolved with realpath() and must stay
 * inside WEB_DIR. HTML pages get a Content-Security-Policy: the API docs' (Swagger UI
 * and ReDoc need inline styles and blob workers) or the portal's, which allows only
 * same-origin scripts, styles, worklets and connections (the voice WebSocket included:
 * CSP 3 'self' covers ws:/wss: of the same host) and blob: media.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "auth.pb-c.h"
#include "clock.h"
#include "gateway.h"
#include "voice_gw.h"
#include "http.h"
#include "metrics.h"
#include "revocations.h"

#define CSP_DOCS                                                                           \
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "           \
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; manifest-src 'self'; " \
    "worker-src blob:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

#define CSP_PORTAL                                                                         \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "      \
    "font-src 'self'; connect-src 'self'; media-src 'self' blob:; worker-src 'self'; "     \
    "manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

/* Paths that name a page rather than a file. */
static const struct {
    const char *path, *file;
} pages[] = {
    {"/", "/index.html"},
    {"/admin", "/admin.html"},
    {"/admin/", "/admin.html"},
};

void gw_route_healthz(struct gw_req *r)
{
    gw_add_header(r, "Cache-Control", "no-store");
    gw_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

void gw_route_readyz(struct gw_req *r)
{
    Vap__Empty empty = VAP__EMPTY__INIT;
    struct vap_rpc_result res;
    int64_t age = gw_revocations_age_ms(r->gw->revocations);
    int rv = vap_rpc_call(r->gw->auth, "auth.ping", r->request_id, &empty.base, NULL,
                          gw_deadline(r, 1000), &res);
    int auth_ok = rv == 0 && res.status == 200;
    int fresh = age >= 0 && age <= r->gw->cfg.revocation_max_age_ms;
    int draining = atomic_load(&r->gw->draining);
    int ready = auth_ok && fresh && !draining;
    const char *auth_state = auth_ok ? "ok" : (rv == 0 ? "database unavailable" : "unreachable");

    vap_rpc_result_clear(&res);
    gw_add_header(r, "Cache-Control", "no-store");
    if (!ready)
        gw_add_header(r, "Retry-After", "1");
    gw_reply_json(r, ready ? 200 : 503,
                  json_pack("{s:s, s:{s:s, s:s, s:s, s:i}}", "status", ready ? "ready" : "not ready",
                            "checks", "auth", auth_state, "revocations",
                            fresh ? "ok" : "stale", "gateway", draining ? "draining" : "ok",
                            "voice_workers", gw_voice_live_workers()));
}

void gw_route_metrics(struct gw_req *r)
{
    char extra[1024];
    size_t len = 0;
    char *text;
    int64_t age = gw_revocations_age_ms(r->gw->revocations);
    snprintf(extra, sizeof(extra),
             "# HELP vap_gateway_revocation_age_seconds Age of the revocation snapshot.\n"
             "# TYPE vap_gateway_revocation_age_seconds gauge\n"
             "vap_gateway_revocation_age_seconds %.3f\n"
             "# HELP vap_gateway_draining Whether the gateway is draining.\n"
             "# TYPE vap_gateway_draining gauge\nvap_gateway_draining %d\n"
             "# HELP vap_voice_workers_live Voice workers linked, live and not draining.\n"
             "# TYPE vap_voice_workers_live gauge\nvap_voice_workers_live %d\n"
             "# HELP vap_voice_sessions Voice sessions relayed by this gateway now.\n"
             "# TYPE vap_voice_sessions gauge\nvap_voice_sessions %d\n"
             "# HELP vap_voice_streams Voice WebSockets open on this gateway (each holds a "
             "thread; GW_VOICE_MAX_STREAMS at most).\n"
             "# TYPE vap_voice_streams gauge\nvap_voice_streams %d\n",
             age < 0 ? -1.0 : (double)age / 1000.0, atomic_load(&r->gw->draining),
             gw_voice_live_workers(), gw_voice_sessions(), atomic_load(&r->gw->voice_streams));
    text = gw_metrics_render(r->gw->metrics, extra, &len);
    if (!text) {
        gw_reply_error(r, 500, "Internal error");
        return;
    }
    gw_reply_raw(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
}

static const char *mime_for(const char *path)
{
    static const struct {
        const char *ext, *mime;
    } types[] = {
        {".html", "text/html; charset=utf-8"},  {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},    {".json", "application/json"},
        {".png", "image/png"},                  {".svg", "image/svg+xml"},
        {".ico", "image/x-icon"},               {".wav", "audio/wav"},
        {".txt", "text/plain; charset=utf-8"},  {".map", "application/json"},
        {".woff2", "font/woff2"},               {".webmanifest", "application/manifest+json"},
    };
    const char *dot = strrchr(path, '.');
    if (dot)
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
            if (strcmp(dot, types[i].ext) == 0)
                return types[i].mime;
    return "application/octet-stream";
}

/* The API docs' pages (docs*.html, redoc*.html) keep their own, looser policy. */
static const char *csp_for(const char *file)
{
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    if (strncmp(base, "docs", 4) == 0 || strncmp(base, "redoc", 5) == 0)
        return CSP_DOCS;
    return CSP_PORTAL;
}

/* Sends file (an absolute path inside WEB_DIR) with security headers. */
static void send_file(struct gw_req *r, const char *file)
{
    const char *mime = mime_for(file);
    /* Cache-Control comes from civetweb's static_file_cache_control (main.c). */
    if (strncmp(mime, "text/html", 9) == 0) {
        gw_add_header(r, "Content-Security-Policy", csp_for(file));
        gw_add_header(r, "X-Frame-Options", "DENY");
    }
    r->status = 200;
    /* civetweb adds Content-Length, Last-Modified, ETag and answers conditional GETs. */
    mg_send_mime_file2(r->conn, file, mime, r->headers);
}

int gw_serve_static(struct gw_req *r, const char *path)
{
    char joined[PATH_MAX], resolved[PATH_MAX], root[PATH_MAX];
    struct stat st;
    int n;

    for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
        if (strcmp(path, pages[i].path) == 0) {
            path = pages[i].file;
            break;
        }
    if (path[0] != '/' || strstr(path, "..") || strstr(path, "//") || strchr(path, '\\'))
        return -1;
    if (!realpath(r->gw->cfg.web_dir, root))
        return -1;
    n = snprintf(joined, sizeof(joined), "%s%s", root, path);
    if (n < 0 || (size_t)n >= sizeof(joined))
        return -1;
    if (!realpath(joined, resolved))
        return -1;
    n = (int)strlen(root);
    if (strncmp(resolved, root, (size_t)n) != 0 || resolved[n] != '/')
        return -1;
    if (stat(resolved, &st) != 0 || !S_ISREG(st.st_mode))
        return -1;
    send_file(r, resolved);
    return 0;
}

static void serve_named(struct gw_req *r, const char *name)
{
    if (gw_serve_static(r, name) != 0)
        gw_reply_error(r, 404, "Not Found (run scripts/install-web-assets.sh)");
}

void gw_route_docs(struct gw_req *r)
{
    serve_named(r, "/docs.html");
}

void gw_route_redoc(struct gw_req *r)
{
    serve_named(r, "/redoc.html");
}

void gw_route_openapi(struct gw_req *r)
{
    serve_named(r, "/openapi.json");
}
