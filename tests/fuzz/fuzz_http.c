/*
 * fuzz_http: HTTP requests -> the gateway's whole request path, gw_handle_request()
 * (services/gateway/router.c): request id, CORS, route matching and {id} segments,
 * bearer tokens (authn.c, common/token.c), and every route handler's parsing of form and
 * JSON bodies (common/http.c, common/json.c, mg_get_var) and query strings (limit,
 * offset, active, agent_type, since, bucket), static files under web/, and the JSON the
 * gateway builds from vap-auth's and vap-usage's replies.
 *
 * civetweb is replaced by this file (GNU ld --wrap, see CMakeLists.txt): the request
 * comes from the input, the reply goes to a buffer. mg_get_var is civetweb's own.
 * vap_rpc_call is replaced too: the "backend" answers as the input says, with a reply
 * body that goes through protobuf-c decoding as in common/rpc.c.
 *
 * Input: an HTTP/1.1 request as text (LF or CRLF line ends):
 *   POST /api/otps?x=1 HTTP/1.1        method, target (path and query)
 *   Content-Type: application/json     headers; Content-Length, when given, is what
 *   ...                                civetweb would report (else the body's length)
 *                                      an empty line, then the body
 *   {"count": 2, "max_uses": 5}
 * Headers the harness reads (they are passed on too):
 *   Authorization: Bearer @admin | @otp   a valid admin / visitor token is put in
 *   X-Fuzz-Rpc: 200                 the backend's status (absent: it is unreachable)
 *   X-Fuzz-Rpc-Body: <base64>       its packed reply; X-Fuzz-Rpc-Detail / -Field / -Retry
 *   X-Fuzz-Revocation: revoked | stale
 *   X-Fuzz-Draining: 1
 * Checks: exactly one response, with a status line, and a JSON body that parses when
 * it says application/json. VAP_FUZZ_DUMP=1 in the environment prints each response.
 */
#include "fuzz.h"

#include <civetweb.h>
#include <sodium.h>
#include <strings.h>

#include "clock.h"
#include "err.h"
#include "gateway.h"
#include "log.h"
#include "metrics.h"
#include "revocations.h"

const struct gw_metric_route *gw_router_metric_routes(int *n);

#define MAX_HEADERS 64 /* civetweb's MG_MAX_HEADERS */

static struct gw_ctx gw;
static char *admin_token, *otp_token;
static char web_root[4096]; /* WEB_DIR, resolved as the gateway resolves it */

/* The request being handled and the reply it got. */
static struct {
    struct mg_request_info ri;
    char *text; /* the input, NUL-terminated, cut into the pieces ri points to */
    const char *body;
    size_t body_len, body_pos;
    char *auth; /* Authorization with a token put in, or NULL */
    char out[128 * 1024];
    size_t out_len;
    int responses; /* status lines written, files sent */
    int file_sent;
} req;

/* A fake connection and context: only their addresses are ever used. */
static char fake_conn, fake_ctx;

static const char *header(const char *name)
{
    for (int i = 0; i < req.ri.num_headers; i++)
        if (strcasecmp(req.ri.http_headers[i].name, name) == 0) {
            if (req.auth && strcasecmp(name, "Authorization") == 0)
                return req.auth;
            return req.ri.http_headers[i].value;
        }
    return NULL;
}

/* ---- civetweb, as the gateway sees it ---- */

const struct mg_request_info *__wrap_mg_get_request_info(const struct mg_connection *conn)
{
    FUZZ_CHECK(conn == (const void *)&fake_conn, "request info of another connection");
    return &req.ri;
}

const char *__wrap_mg_get_header(const struct mg_connection *conn, const char *name)
{
    (void)conn;
    return header(name);
}

struct mg_context *__wrap_mg_get_context(const struct mg_connection *conn)
{
    (void)conn;
    return (struct mg_context *)&fake_ctx;
}

void *__wrap_mg_get_user_data(const struct mg_context *ctx)
{
    FUZZ_CHECK(ctx == (const void *)&fake_ctx, "user data of another context");
    return &gw;
}

/* civetweb never reads past Content-Length; without one it reads to the end. */
int __wrap_mg_read(struct mg_connection *conn, void *buf, size_t len)
{
    size_t left = req.body_len - req.body_pos;
    (void)conn;
    if (req.ri.content_length >= 0 && (size_t)req.ri.content_length < req.body_len)
        left = (size_t)req.ri.content_length - req.body_pos;
    if (len > left)
        len = left;
    if (len > 0)
        memcpy(buf, req.body + req.body_pos, len);
    req.body_pos += len;
    return (int)len;
}

int __wrap_mg_write(struct mg_connection *conn, const void *buf, size_t len)
{
    (void)conn;
    if (len >= 9 && memcmp(buf, "HTTP/1.1 ", 9) == 0)
        req.responses++;
    if (len > sizeof(req.out) - req.out_len)
        len = sizeof(req.out) - req.out_len;
    memcpy(req.out + req.out_len, buf, len);
    req.out_len += len;
    return (int)len;
}

void __wrap_mg_send_mime_file2(struct mg_connection *conn, const char *path, const char *mime_type,
                               const char *additional_headers)
{
    (void)conn;
    FUZZ_CHECK(strncmp(path, web_root, strlen(web_root)) == 0 && path[strlen(web_root)] == '/',
               "a file outside WEB_DIR was served");
    FUZZ_CHECK(strstr(path, "/../") == NULL, "a served path has ..");
    FUZZ_CHECK(mime_type && additional_headers, "send_file without type or headers");
    req.responses++;
    req.file_sent = 1;
}

/* ---- the backends ---- */

int __wrap_vap_rpc_call(struct vap_rpc_client *client, const char *method, const char *request_id,
                        const ProtobufCMessage *request,
                        const ProtobufCMessageDescriptor *reply_desc, int64_t deadline_ms,
                        struct vap_rpc_result *res)
{
    const char *status = header("X-Fuzz-Rpc"), *b64 = header("X-Fuzz-Rpc-Body");
    const char *detail = header("X-Fuzz-Rpc-Detail"), *field = header("X-Fuzz-Rpc-Field");
    const char *retry = header("X-Fuzz-Rpc-Retry");
    (void)client;
    (void)deadline_ms;

    memset(res, 0, sizeof(*res));
    FUZZ_CHECK(method && request_id, "rpc call without method or request id");
    if (request) {
        /* What would go on the wire: the request must pack. */
        size_t len = protobuf_c_message_get_packed_size(request);
        uint8_t *buf = malloc(len ? len : 1);
        FUZZ_CHECK(protobuf_c_message_pack(request, buf) == len, "request packs short");
        free(buf);
    }
    if (!status)
        return VAP_EUNAVAIL;
    res->status = atoi(status);
    res->retry_after = retry ? (uint32_t)strtoul(retry, NULL, 10) : 0;
    snprintf(res->detail, sizeof(res->detail), "%s", detail ? detail : "");
    snprintf(res->field, sizeof(res->field), "%s", field ? field : "");
    if (reply_desc && res->status >= 200 && res->status < 300) {
        size_t cap = b64 ? strlen(b64) : 0, len = 0;
        uint8_t *bin = malloc(cap + 1);
        if (b64 && sodium_base642bin(bin, cap, b64, cap, NULL, &len, NULL,
                                     sodium_base64_VARIANT_ORIGINAL) != 0)
            len = 0;
        res->reply = protobuf_c_message_unpack(reply_desc, NULL, len, bin);
        free(bin);
        if (!res->reply)
            return VAP_EPROTO;
    }
    return 0;
}

enum gw_token_state __wrap_gw_revocations_check(struct gw_revocations *v,
                                                const struct vap_token_claims *claims)
{
    const char *h = header("X-Fuzz-Revocation");
    (void)v;
    FUZZ_CHECK(claims->role == VAP_ROLE_ADMIN || claims->role == VAP_ROLE_OTP,
               "revocation check of a token without a role");
    if (h && strcmp(h, "revoked") == 0)
        return GW_TOKEN_REVOKED;
    if (h && strcmp(h, "stale") == 0)
        return GW_TOKEN_UNKNOWN;
    return GW_TOKEN_OK;
}

int64_t __wrap_gw_revocations_age_ms(struct gw_revocations *v)
{
    const char *h = header("X-Fuzz-Revocation");
    (void)v;
    return h && strcmp(h, "stale") == 0 ? -1 : 100;
}

/* ---- setup ---- */

static char *make_token(enum vap_role role, const char *sub, const uint8_t *key, size_t key_len)
{
    struct vap_token_claims c;
    char *tok = NULL;
    memset(&c, 0, sizeof(c));
    snprintf(c.sub, sizeof(c.sub), "%s", sub);
    c.role = role;
    c.iat = vap_wall_ms() / 1000;
    c.exp = c.iat + 30 * 24 * 3600; /* outlives any fuzzing run */
    c.otp_id = 7;
    c.pwv = 1;
    if (vap_token_issue(key, key_len, &c, &tok) != 0)
        abort();
    return tok;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const struct gw_metric_route *routes;
    int n_routes;
    char auth[2100];
    (void)argc;
    (void)argv;

    if (sodium_init() < 0)
        abort();
    vap_log_init("fuzz", VAP_LOG_DEBUG);
    gw.cfg.secret_key = FUZZ_KEY;
    gw.cfg.secret_key_previous = FUZZ_KEY_PREVIOUS;
    gw.token_keys.current = (const uint8_t *)FUZZ_KEY;
    gw.token_keys.current_len = strlen(FUZZ_KEY);
    gw.token_keys.previous = (const uint8_t *)FUZZ_KEY_PREVIOUS;
    gw.token_keys.previous_len = strlen(FUZZ_KEY_PREVIOUS);
    gw.cfg.cors_origins =
        "http://localhost:3000, https://portal.example.com/ ,http://localhost:8000";
    gw.cfg.web_dir = VAP_SOURCE_DIR "/web";
    gw.cfg.agents_dir = VAP_SOURCE_DIR "/config/agents";
    gw.cfg.rpc_timeout_ms = 3000;
    gw.cfg.login_timeout_ms = 8000;
    gw.cfg.revocation_max_age_ms = 30000;
    gw.cfg.voice_max_per_token = 3;
    snprintf(gw.request_id_prefix, sizeof(gw.request_id_prefix), "fuzz0000");
    if (!realpath(gw.cfg.web_dir, web_root))
        abort();
    routes = gw_router_metric_routes(&n_routes);
    if (gw_metrics_create(&gw.metrics, routes, n_routes) != 0 ||
        gw_agents_reload(gw.cfg.agents_dir) != 0)
        abort();
    /* Visitor tokens are signed with the previous key: the rotation path is taken too. */
    admin_token =
        make_token(VAP_ROLE_ADMIN, "cawadmin", gw.token_keys.current, gw.token_keys.current_len);
    otp_token =
        make_token(VAP_ROLE_OTP, "otp:7", gw.token_keys.previous, gw.token_keys.previous_len);
    snprintf(auth, sizeof(auth), "Bearer %s", admin_token);
    free(admin_token);
    admin_token = strdup(auth);
    snprintf(auth, sizeof(auth), "Bearer %s", otp_token);
    free(otp_token);
    otp_token = strdup(auth);
    return 0;
}

/* Cuts the input into request line, headers and body. Returns 0 when it is no request. */
static int parse_request(const uint8_t *data, size_t size)
{
    char *p, *line_end, *sp, *q;
    const char *cl;

    memset(&req.ri, 0, sizeof(req.ri));
    req.text = fuzz_strndup(data, size);
    /* civetweb's parser stops at a NUL in the head; the body may hold any byte. */
    p = req.text;
    line_end = strchr(p, '\n');
    if (!line_end)
        return 0;
    *line_end = '\0';
    if (line_end > p && line_end[-1] == '\r')
        line_end[-1] = '\0';
    sp = strchr(p, ' ');
    if (!sp || sp == p)
        return 0;
    *sp = '\0';
    req.ri.request_method = p;
    req.ri.request_uri = sp + 1;
    sp = strchr(sp + 1, ' ');
    if (sp) {
        *sp = '\0';
        req.ri.http_version = sp + 1;
    } else {
        req.ri.http_version = "1.1";
    }
    if (req.ri.request_uri[0] != '/')
        return 0; /* civetweb answers those itself */
    q = strchr(req.ri.request_uri, '?');
    req.ri.local_uri = req.ri.local_uri_raw = req.ri.request_uri;
    if (q) {
        /* civetweb keeps the full URI and cuts the local one at '?' */
        char *local = fuzz_strndup(req.ri.request_uri, (size_t)(q - req.ri.request_uri));
        req.ri.local_uri = req.ri.local_uri_raw = local;
        req.ri.query_string = q + 1;
    }
    p = line_end + 1;
    while (*p && *p != '\n' && !(*p == '\r' && p[1] == '\n')) {
        char *colon, *value;
        line_end = strchr(p, '\n');
        if (!line_end)
            return 0;
        *line_end = '\0';
        if (line_end > p && line_end[-1] == '\r')
            line_end[-1] = '\0';
        colon = strchr(p, ':');
        if (!colon || colon == p || req.ri.num_headers == MAX_HEADERS)
            return 0; /* civetweb refuses the request */
        *colon = '\0';
        value = colon + 1;
        while (*value == ' ')
            value++;
        req.ri.http_headers[req.ri.num_headers].name = p;
        req.ri.http_headers[req.ri.num_headers].value = value;
        req.ri.num_headers++;
        p = line_end + 1;
    }
    if (*p == '\r')
        p++;
    if (*p == '\n')
        p++;
    req.body = (const char *)data + (p - req.text);
    req.body_len = size - (size_t)(p - req.text);
    req.body_pos = 0;
    cl = header("Content-Length");
    if (cl) {
        char *end;
        long long n = strtoll(cl, &end, 10);
        req.ri.content_length = (*end == '\0' && n >= 0) ? n : -1;
    } else {
        req.ri.content_length = (long long)req.body_len;
        if (header("Transfer-Encoding"))
            req.ri.content_length = -1;
    }
    snprintf(req.ri.remote_addr, sizeof(req.ri.remote_addr), "127.0.0.1");
    req.ri.remote_port = 40000;
    req.ri.server_port = 8000;
    req.ri.user_data = &gw;
    {
        const char *a = header("Authorization");
        if (a && strcmp(a, "Bearer @admin") == 0)
            req.auth = admin_token;
        else if (a && strcmp(a, "Bearer @otp") == 0)
            req.auth = otp_token;
    }
    return 1;
}

/* The reply must be one response whose JSON body (if it has one) parses. */
static void check_reply(int handled)
{
    const char *head_end, *ct;
    FUZZ_CHECK(req.responses <= 1, "more than one response to a request");
    if (handled == 0) {
        FUZZ_CHECK(req.responses == 0, "a response to a request left to civetweb");
        return;
    }
    FUZZ_CHECK(req.responses == 1, "a request got no response");
    if (req.file_sent || req.out_len == sizeof(req.out))
        return;
    head_end = memmem(req.out, req.out_len, "\r\n\r\n", 4);
    FUZZ_CHECK(head_end != NULL, "a response without the end of its head");
    ct = memmem(req.out, (size_t)(head_end - req.out), "Content-Type: application/json", 30);
    if (ct && strcmp(req.ri.request_method, "HEAD") != 0) {
        json_error_t jerr;
        size_t body_len = req.out_len - (size_t)(head_end + 4 - req.out);
        json_t *doc = json_loadb(head_end + 4, body_len, 0, &jerr);
        FUZZ_CHECK(doc != NULL, "a JSON response does not parse");
        json_decref(doc);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int handled;
    const char *draining;

    req.out_len = 0;
    req.responses = 0;
    req.file_sent = 0;
    req.auth = NULL;
    req.ri.local_uri = NULL;
    if (parse_request(data, size)) {
        draining = header("X-Fuzz-Draining");
        atomic_store(&gw.draining, draining && strcmp(draining, "1") == 0);
        handled = gw_handle_request((struct mg_connection *)&fake_conn);
        if (getenv("VAP_FUZZ_DUMP")) /* for writing seeds: see what a request got */
            fprintf(stderr, "---- %d\n%.*s\n", handled, (int)req.out_len, req.out);
        check_reply(handled);
        atomic_store(&gw.draining, 0);
    }
    if (req.ri.local_uri && req.ri.local_uri != req.ri.request_uri)
        free((char *)req.ri.local_uri);
    free(req.text);
    return 0;
}
