/*
 * CORS: only the origins listed in CORS_ORIGINS (comma-separated, exact match; "*"
 * allows any origin, without credentials) get Access-Control-Allow-* headers.
 * Preflights from other origins are refused with 400, as Starlette does.
 */
#include <stdio.h>
#include <string.h>

#include "gateway.h"
#include "http.h"

/* Whether origin is in the comma-separated list. */
static int origin_listed(const char *list, const char *origin, int *wildcard)
{
    size_t olen = strlen(origin);
    const char *p = list;
    *wildcard = 0;
    while (p && *p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        while (n > 0 && *p == ' ') {
            p++;
            n--;
        }
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '/'))
            n--;
        if (n == 1 && *p == '*') {
            *wildcard = 1;
            return 1;
        }
        if (n == olen && strncmp(p, origin, n) == 0)
            return 1;
        p = comma ? comma + 1 : NULL;
    }
    return 0;
}

void gw_cors_headers(struct gw_req *r)
{
    const char *origin = mg_get_header(r->conn, "Origin");
    int wildcard;
    if (!origin || strlen(origin) > 200)
        return;
    gw_add_header(r, "Vary", "Origin");
    if (!origin_listed(r->gw->cfg.cors_origins, origin, &wildcard))
        return;
    if (wildcard) {
        gw_add_header(r, "Access-Control-Allow-Origin", "*");
        return;
    }
    gw_add_header(r, "Access-Control-Allow-Origin", origin);
    gw_add_header(r, "Access-Control-Allow-Credentials", "true");
}

/* Whether the requested headers are plain tokens (echoed back only then). */
static int headers_token_list(const char *h)
{
    if (strlen(h) > 200)
        return 0;
    for (; *h; h++)
        if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') || (*h >= '0' && *h <= '9') ||
              *h == '-' || *h == '_' || *h == ',' || *h == ' '))
            return 0;
    return 1;
}

void gw_cors_preflight(struct gw_req *r)
{
    const char *origin = mg_get_header(r->conn, "Origin");
    const char *req_headers = mg_get_header(r->conn, "Access-Control-Request-Headers");
    int wildcard;
    if (!origin_listed(r->gw->cfg.cors_origins, origin, &wildcard)) {
        gw_reply_raw(r, 400, "text/plain; charset=utf-8", "Disallowed CORS origin", 22);
        return;
    }
    gw_add_header(r, "Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS");
    gw_add_header(r, "Access-Control-Allow-Headers",
                  req_headers && headers_token_list(req_headers)
                      ? req_headers
                      : "Authorization, Content-Type, X-Request-Id");
    gw_add_header(r, "Access-Control-Max-Age", "600");
    gw_reply_raw(r, 200, "text/plain; charset=utf-8", "OK", 2);
}
