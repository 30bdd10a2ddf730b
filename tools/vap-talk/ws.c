/*
 * The voice stream's WebSocket, on civetweb's client (the library the gateway serves it
 * with). civetweb reads on a thread of its own and hands each frame to on_data; sends
 * may come from any thread (civetweb locks the connection per frame). What this file
 * adds: the base URL taken apart, the close frame turned into a code and a reason, the
 * close handshake answered, pings answered.
 *
 * civetweb's client cannot add request headers, so the token travels as ?token= (which
 * API.md offers for browsers; the gateway never logs it) rather than in Authorization.
 */
#include <civetweb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "talk.h"

#define WS_REASON_MAX 124 /* a close frame's payload is at most 125 bytes, 2 for the code */

struct talk_ws {
    struct mg_connection *conn;
    talk_ws_message_fn on_message;
    talk_ws_closed_fn on_closed;
    void *user;
    pthread_mutex_t lock;
    bool close_sent, closed;
    int close_code;
    char close_reason[WS_REASON_MAX + 1];
};

struct url {
    bool tls;
    char host[256];
    int port;
    char prefix[512];
};

static int parse_base(const char *base, struct url *u, char *err, size_t err_size)
{
    const char *p, *host_end, *path;
    size_t host_len;

    memset(u, 0, sizeof(*u));
    if (strncmp(base, "http://", 7) == 0 || strncmp(base, "ws://", 5) == 0) {
        p = strchr(base, '/') + 2;
        u->port = 80;
    } else if (strncmp(base, "https://", 8) == 0 || strncmp(base, "wss://", 6) == 0) {
        p = strchr(base, '/') + 2;
        u->tls = true;
        u->port = 443;
    } else {
        snprintf(err, err_size, "--base must start with http:// or https://");
        return VAP_EINVAL;
    }
    path = p + strcspn(p, "/?#");
    if (*p == '[') { /* [v6 address] */
        host_end = memchr(p, ']', (size_t)(path - p));
        if (!host_end) {
            snprintf(err, err_size, "--base: unterminated [address]");
            return VAP_EINVAL;
        }
        host_len = (size_t)(host_end - p - 1);
        p++;
        host_end++;
    } else {
        host_end = memchr(p, ':', (size_t)(path - p));
        if (!host_end)
            host_end = path;
        host_len = (size_t)(host_end - p);
    }
    if (host_len == 0 || host_len >= sizeof(u->host)) {
        snprintf(err, err_size, "--base: no host");
        return VAP_EINVAL;
    }
    memcpy(u->host, p, host_len);
    if (*host_end == ':') {
        char *end;
        long port = strtol(host_end + 1, &end, 10);
        if (end != path || port < 1 || port > 65535) {
            snprintf(err, err_size, "--base: bad port");
            return VAP_EINVAL;
        }
        u->port = (int)port;
    }
    if (*path == '/') {
        size_t n = strcspn(path, "?#");
        while (n > 0 && path[n - 1] == '/')
            n--;
        if (n >= sizeof(u->prefix)) {
            snprintf(err, err_size, "--base: path too long");
            return VAP_EINVAL;
        }
        memcpy(u->prefix, path, n);
    }
    return 0;
}

static void send_close(struct talk_ws *ws, struct mg_connection *conn, int code, const char *reason)
{
    char payload[2 + WS_REASON_MAX];
    size_t n = strlen(reason);
    if (n > WS_REASON_MAX)
        n = WS_REASON_MAX;
    payload[0] = (char)((code >> 8) & 0xff);
    payload[1] = (char)(code & 0xff);
    memcpy(payload + 2, reason, n);
    pthread_mutex_lock(&ws->lock);
    if (!ws->close_sent && !ws->closed) {
        ws->close_sent = true;
        mg_websocket_client_write(conn, MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE, payload, 2 + n);
    }
    pthread_mutex_unlock(&ws->lock);
}

static int on_data(struct mg_connection *conn, int bits, char *data, size_t len, void *arg)
{
    struct talk_ws *ws = arg;
    int op = bits & 0x0f;

    if (op == MG_WEBSOCKET_OPCODE_TEXT || op == MG_WEBSOCKET_OPCODE_BINARY) {
        ws->on_message(ws->user, op == MG_WEBSOCKET_OPCODE_TEXT, data, len);
    } else if (op == MG_WEBSOCKET_OPCODE_PING) {
        mg_websocket_client_write(conn, MG_WEBSOCKET_OPCODE_PONG, data, len);
    } else if (op == MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE) {
        int code = len >= 2 ? ((unsigned char)data[0] << 8 | (unsigned char)data[1]) : 1005;
        size_t n = len > 2 ? len - 2 : 0;
        if (n > WS_REASON_MAX)
            n = WS_REASON_MAX;
        pthread_mutex_lock(&ws->lock);
        ws->close_code = code;
        memcpy(ws->close_reason, len > 2 ? data + 2 : "", n);
        ws->close_reason[n] = '\0';
        pthread_mutex_unlock(&ws->lock);
        send_close(ws, conn, code == 1005 ? 1000 : code, ""); /* the closing handshake */
        return 0;
    }
    return 1;
}

static void on_close(const struct mg_connection *conn, void *arg)
{
    struct talk_ws *ws = arg;
    int code;
    char reason[WS_REASON_MAX + 1];
    (void)conn;

    pthread_mutex_lock(&ws->lock);
    ws->closed = true;
    code = ws->close_code ? ws->close_code : 1006;
    memcpy(reason, ws->close_reason, sizeof(reason));
    pthread_mutex_unlock(&ws->lock);
    ws->on_closed(ws->user, code, reason);
}

int talk_ws_open(const char *base, const char *path_query, talk_ws_message_fn on_message,
                 talk_ws_closed_fn on_closed, void *user, struct talk_ws **out, char *err,
                 size_t err_size)
{
    struct talk_ws *ws;
    struct url u;
    char path[4096], cw_err[256] = "";
    int rv;

    *out = NULL;
    rv = parse_base(base, &u, err, err_size);
    if (rv != 0)
        return rv;
    if (snprintf(path, sizeof(path), "%s%s", u.prefix, path_query) >= (int)sizeof(path)) {
        snprintf(err, err_size, "the stream URL is too long");
        return VAP_EINVAL;
    }
    ws = calloc(1, sizeof(*ws));
    if (!ws) {
        snprintf(err, err_size, "out of memory");
        return VAP_ENOMEM;
    }
    ws->on_message = on_message;
    ws->on_closed = on_closed;
    ws->user = user;
    pthread_mutex_init(&ws->lock, NULL);
    ws->conn = mg_connect_websocket_client(u.host, u.port, u.tls, cw_err, sizeof(cw_err), path,
                                           NULL, on_data, on_close, ws);
    if (!ws->conn) {
        snprintf(err, err_size, "cannot open the voice stream at %s:%d: %s", u.host, u.port,
                 cw_err[0] ? cw_err : "connection failed");
        pthread_mutex_destroy(&ws->lock);
        free(ws);
        return VAP_EUNAVAIL;
    }
    *out = ws;
    return 0;
}

static int send_frame(struct talk_ws *ws, int opcode, const char *data, size_t len)
{
    bool closed;
    pthread_mutex_lock(&ws->lock);
    closed = ws->closed || ws->close_sent;
    pthread_mutex_unlock(&ws->lock);
    if (closed)
        return VAP_EUNAVAIL;
    return mg_websocket_client_write(ws->conn, opcode, data, len) > 0 ? 0 : VAP_EUNAVAIL;
}

int talk_ws_send_text(struct talk_ws *ws, const char *text)
{
    return send_frame(ws, MG_WEBSOCKET_OPCODE_TEXT, text, strlen(text));
}

int talk_ws_send_binary(struct talk_ws *ws, const void *data, size_t len)
{
    return send_frame(ws, MG_WEBSOCKET_OPCODE_BINARY, data, len);
}

void talk_ws_close(struct talk_ws *ws, int code, const char *reason)
{
    send_close(ws, ws->conn, code, reason);
}

void talk_ws_free(struct talk_ws *ws)
{
    if (!ws)
        return;
    mg_close_connection(ws->conn);
    pthread_mutex_destroy(&ws->lock);
    free(ws);
}

const char *talk_close_words(int code)
{
    switch (code) {
    case 1000:
        return "normal close";
    case 1006:
        return "the connection dropped without a close frame";
    case 1008:
        return "policy: a query option was refused (codec, sample_rate or protocol)";
    case 1011:
        return "server error (e.g. the voice worker was lost)";
    case 1013:
        return "try again later: no voice worker or service available";
    case 4401:
        return "unauthorized: the token is missing, invalid, expired or revoked";
    case 4403:
        return "forbidden: no access grant for this agent, or the code is exhausted";
    case 4404:
        return "unknown agent (or no such session to resume)";
    case 4429:
        return "too many concurrent sessions for this token";
    default:
        return "closed";
    }
}

int talk_ws_init(const char *base)
{
    bool tls = strncmp(base, "https://", 8) == 0 || strncmp(base, "wss://", 6) == 0;
    unsigned want = tls ? MG_FEATURES_TLS : 0;
    unsigned got = mg_init_library(want);
    if (tls && !(got & MG_FEATURES_TLS)) {
        mg_exit_library();
        return VAP_EUNAVAIL;
    }
    return 0;
}

void talk_ws_cleanup(void)
{
    mg_exit_library();
}

int talk_url_escape(const char *in, char *out, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *in; in++) {
        unsigned char c = (unsigned char)*in;
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '_' || c == '.' || c == '~';
        if (o + (plain ? 1 : 3) >= size)
            return VAP_ETOOBIG;
        if (plain) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (o >= size)
        return VAP_ETOOBIG;
    out[o] = '\0';
    return 0;
}
