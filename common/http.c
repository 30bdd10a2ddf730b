/* civetweb request/response helpers (see http.h). */
#include "http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "err.h"

int vap_http_read_body(struct mg_connection *conn, size_t max, char **out, size_t *len)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    size_t cap, got = 0;
    char *buf;

    if (ri->content_length > (long long)max)
        return VAP_ETOOBIG;
    cap = ri->content_length >= 0 ? (size_t)ri->content_length : max;
    buf = malloc(cap + 1);
    if (!buf)
        return VAP_ENOMEM;
    for (;;) {
        int n;
        if (got == cap) {
            /* Chunked body filled the ceiling: one more byte means too big. */
            char probe;
            if (ri->content_length < 0 && mg_read(conn, &probe, 1) > 0) {
                free(buf);
                return VAP_ETOOBIG;
            }
            break;
        }
        n = mg_read(conn, buf + got, cap - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (ri->content_length >= 0 && got != (size_t)ri->content_length) {
        free(buf);
        return VAP_EINVAL;
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return 0;
}

int vap_http_content_type_is(struct mg_connection *conn, const char *mime)
{
    const char *ct = mg_get_header(conn, "Content-Type");
    size_t n = strlen(mime);
    if (!ct)
        return 0;
    while (*ct == ' ')
        ct++;
    if (strncasecmp(ct, mime, n) != 0)
        return 0;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

int vap_http_form_field(const char *body, size_t len, const char *name, char *buf,
                        size_t size)
{
    int n = mg_get_var(body, len, name, buf, size);
    if (n == -1)
        return -1;
    if (n < 0)
        return -2;
    return n;
}

const char *vap_http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Entity";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    }
    return "Unknown";
}

int vap_http_send(struct mg_connection *conn, int status, const char *content_type,
                  const char *body, size_t len, const char *extra_headers)
{
    char head[2048];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "%s\r\n",
                     status, vap_http_reason(status), content_type, len,
                     extra_headers ? extra_headers : "");
    if (n < 0 || (size_t)n >= sizeof(head))
        return -1;
    if (strcmp(mg_get_request_info(conn)->request_method, "HEAD") == 0)
        len = 0; /* the headers say how long the body would be; none is sent */
    if (len > 0 && len <= 16384) {
        /* Small replies: header and body in one write, one packet. */
        char *all = malloc((size_t)n + len);
        if (all) {
            memcpy(all, head, (size_t)n);
            memcpy(all + n, body, len);
            int w = mg_write(conn, all, (size_t)n + len);
            free(all);
            return w < 0 ? -1 : (int)len;
        }
    }
    if (mg_write(conn, head, (size_t)n) < 0)
        return -1;
    if (len > 0 && mg_write(conn, body, len) < 0)
        return -1;
    return (int)len;
}

int vap_http_send_json(struct mg_connection *conn, int status, json_t *json,
                       const char *extra_headers)
{
    char *text = json_dumps(json, JSON_COMPACT);
    int rv;
    json_decref(json);
    if (!text)
        return vap_http_send(conn, 500, "application/json", "{\"detail\":\"Internal error\"}",
                             27, extra_headers);
    rv = vap_http_send(conn, status, "application/json", text, strlen(text), extra_headers);
    free(text);
    return rv;
}

int vap_http_send_error(struct mg_connection *conn, int status, const char *detail,
                        const char *extra_headers)
{
    return vap_http_send_json(conn, status, json_pack("{s:s}", "detail", detail),
                              extra_headers);
}

int vap_http_send_validation(struct mg_connection *conn, struct vap_verrors *v,
                             const char *extra_headers)
{
    json_t *list = v->list ? v->list : json_array();
    v->list = NULL;
    return vap_http_send_json(conn, 422, json_pack("{s:o}", "detail", list), extra_headers);
}

/* ---- the client's address behind trusted proxies ---- */

/* Whether ip is in the list; -1 when the list does not parse. */
static int trusted_has(const char *list, const struct vap_ip *ip)
{
    int found = 0;
    const char *p = list;
    while (*p) {
        const char *start, *end, *slash;
        struct vap_ip net;
        int bits;
        while (*p == ',' || isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        start = p;
        while (*p && *p != ',' && !isspace((unsigned char)*p))
            p++;
        end = p;
        slash = memchr(start, '/', (size_t)(end - start));
        if (!vap_ip_parse(start, (size_t)((slash ? slash : end) - start), &net))
            return -1;
        bits = net.family == AF_INET ? 32 : 128;
        if (slash) {
            char *num_end;
            long v = strtol(slash + 1, &num_end, 10);
            if (num_end != end || slash + 1 == end || v < 0 || v > bits)
                return -1;
            bits = (int)v;
        }
        if (ip && vap_ip_in_prefix(ip, &net, bits))
            found = 1;
    }
    return found;
}

int vap_http_trusted_valid(const char *trusted)
{
    return trusted_has(trusted ? trusted : "", NULL) >= 0;
}

int vap_http_client_addr(const char *peer, const char *forwarded_for, const char *trusted,
                         char *out, size_t size)
{
    struct vap_ip ip;
    const char *end;
    snprintf(out, size, "%s", peer ? peer : "");
    if (!trusted || !trusted[0])
        return 0;
    if (trusted_has(trusted, NULL) < 0)
        return VAP_EINVAL;
    if (!peer || !forwarded_for || !vap_ip_parse(peer, strlen(peer), &ip) ||
        trusted_has(trusted, &ip) != 1)
        return 0;
    end = forwarded_for + strlen(forwarded_for);
    while (end > forwarded_for) {
        const char *start = end, *a, *b;
        while (start > forwarded_for && start[-1] != ',')
            start--;
        a = start;
        b = end;
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        if (!vap_ip_parse(a, (size_t)(b - a), &ip))
            return 0; /* garbage: believe nothing further left */
        if (trusted_has(trusted, &ip) != 1) {
            snprintf(out, size, "%.*s", (int)(b - a), a);
            return 0;
        }
        end = start > forwarded_for ? start - 1 : forwarded_for;
    }
    return 0;
}
