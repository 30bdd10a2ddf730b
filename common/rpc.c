/*
 * protobuf-c request/reply (see rpc.h): the envelopes, the method table, deadlines,
 * admission and metrics, over one of two transports chosen by the URL: tcp:// and ipc://
 * over plain stream sockets (rpc_stream.h: a pooled connection per call, a thread per
 * server connection), tls+tcp:// over nng req0/rep0 with mutual TLS (rpc_nng.h: a
 * context per call; an intake queue and worker threads on the server). Either way a
 * request's deadline runs from its arrival, so waiting to be served counts against its
 * caller's budget.
 */
#include "rpc.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "prometheus.h"
#include "rpc.pb-c.h"
#include "rpc_nng.h"
#include "rpc_stream.h"

/* nng server: workers added for the handlers that mostly wait (vap_rpc_method.waits),
 * which hold a worker while they wait (the stream transport just does not count them). */
#define RPC_NNG_WAITING_WORKERS 64

struct vap_rpc_client {
    struct vap_stream_client *stream; /* tcp://, ipc:// */
    struct vap_nng_client *nng;       /* tls+tcp:// */
};

int vap_rpc_client_open(struct vap_rpc_client **out, const char *url)
{
    struct vap_rpc_client *c = calloc(1, sizeof(*c));
    int rv;
    if (!c)
        return VAP_ENOMEM;
    if (vap_stream_handles(url)) {
        rv = vap_stream_client_open(&c->stream, url);
        if (rv != 0) {
            vap_error(NULL, "rpc client: bad url=%s", url);
            free(c);
            return rv;
        }
        *out = c;
        return 0;
    }
    rv = vap_nng_client_open(&c->nng, url);
    if (rv != 0) {
        free(c);
        return rv;
    }
    *out = c;
    return 0;
}

void vap_rpc_client_close(struct vap_rpc_client *client)
{
    if (!client)
        return;
    vap_stream_client_close(client->stream);
    vap_nng_client_close(client->nng);
    free(client);
}

void vap_rpc_result_clear(struct vap_rpc_result *res)
{
    if (res->reply) {
        protobuf_c_message_free_unpacked(res->reply, NULL);
        res->reply = NULL;
    }
}

/* Packs m into a malloc'd buffer. 0 or VAP_ENOMEM. */
static int pack_to_buf(const ProtobufCMessage *m, uint8_t **out, size_t *out_len)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return VAP_ENOMEM;
    protobuf_c_message_pack(m, buf);
    *out = buf;
    *out_len = len;
    return 0;
}

static int call(struct vap_rpc_client *client, const char *method, const char *request_id,
                const ProtobufCMessage *request, const ProtobufCMessageDescriptor *reply_desc,
                int64_t deadline_ms, struct vap_rpc_result *res)
{
    Vap__RpcRequest env = VAP__RPC_REQUEST__INIT;
    Vap__RpcReply *reply = NULL;
    uint8_t *body = NULL, *out = NULL, *in = NULL;
    size_t out_len = 0, in_len = 0;
    int64_t left = vap_ms_left(deadline_ms);
    int rv;

    memset(res, 0, sizeof(*res));
    if (left <= 0)
        return VAP_ETIMEDOUT;
    if (request) {
        env.body.len = protobuf_c_message_get_packed_size(request);
        body = malloc(env.body.len ? env.body.len : 1);
        if (!body)
            return VAP_ENOMEM;
        protobuf_c_message_pack(request, body);
        env.body.data = body;
    }
    env.method = (char *)method;
    env.request_id = (char *)(request_id ? request_id : "");
    env.budget_ms = (uint32_t)left;
    rv = pack_to_buf(&env.base, &out, &out_len);
    free(body);
    if (rv != 0)
        return rv;
    rv = client->stream
             ? vap_stream_call(client->stream, out, out_len, deadline_ms, &in, &in_len)
             : vap_nng_call(client->nng, out, out_len, deadline_ms, &in, &in_len);
    free(out);
    if (rv != 0)
        return rv;

    reply = vap__rpc_reply__unpack(NULL, in_len, in);
    free(in);
    if (!reply) {
        vap_error(request_id, "rpc reply does not decode method=%s", method);
        return VAP_EPROTO;
    }
    res->status = reply->status;
    res->retry_after = reply->retry_after;
    snprintf(res->detail, sizeof(res->detail), "%s", reply->detail ? reply->detail : "");
    snprintf(res->field, sizeof(res->field), "%s", reply->field ? reply->field : "");
    rv = 0;
    if (reply_desc && res->status >= 200 && res->status < 300) {
        res->reply = protobuf_c_message_unpack(reply_desc, NULL, reply->body.len,
                                               reply->body.data);
        if (!res->reply) {
            vap_error(request_id, "rpc reply body does not decode method=%s", method);
            rv = VAP_EPROTO;
        }
    }
    vap__rpc_reply__free_unpacked(reply, NULL);
    return rv;
}

int vap_rpc_call(struct vap_rpc_client *client, const char *method, const char *request_id,
                 const ProtobufCMessage *request, const ProtobufCMessageDescriptor *reply_desc,
                 int64_t deadline_ms, struct vap_rpc_result *res)
{
    /* Each thread remembers the series of the methods it calls: no lock per call. */
    static __thread struct {
        char method[64];
        struct vap_histogram *seconds;
    } cache[8];
    static __thread unsigned next;
    char labels[96];
    struct vap_histogram *h = NULL;
    int64_t t0 = vap_now_us();
    int rv = call(client, method, request_id, request, reply_desc, deadline_ms, res);
    for (unsigned i = 0; i < 8 && !h; i++)
        if (cache[i].seconds && strcmp(cache[i].method, method) == 0)
            h = cache[i].seconds;
    if (!h) {
        snprintf(labels, sizeof(labels), "method=\"%s\"", method);
        h = vap_histogram("vap_rpc_client_seconds",
                          "Calls to other services, answered or not, by method.", labels);
        if (h && strlen(method) < sizeof(cache[0].method)) {
            unsigned i = next++ % 8;
            snprintf(cache[i].method, sizeof(cache[i].method), "%s", method);
            cache[i].seconds = h;
        }
    }
    vap_histogram_observe(h, (double)(vap_now_us() - t0) / 1e6);
    if (rv != 0) {
        snprintf(labels, sizeof(labels), "method=\"%s\",error=\"%s\"", method,
                 rv == VAP_ETIMEDOUT ? "timeout" : rv == VAP_EPROTO ? "protocol" : "unavailable");
        vap_counter_add(vap_counter("vap_rpc_client_failures_total",
                                    "Calls that got no usable answer, by method and cause.",
                                    labels),
                        1);
    }
    return rv;
}

/* ---- server ---- */

struct vap_rpc_server {
    struct vap_stream_server *stream; /* tcp://, ipc:// */
    struct vap_nng_server *nng;       /* tls+tcp:// */
    const struct vap_rpc_method *methods;
    struct vap_histogram **seconds; /* per method, in the table's order */
    struct vap_counter **errors;
    struct vap_histogram *queued;   /* arrival to being served */
    struct vap_counter *expired;    /* dropped: the budget ran out while queued */
    void *user;
    /* Stream transport: each connection has its own thread, so this bounds how many
     * requests are served at once (nthreads, as the nng workers do). */
    int nthreads;
    atomic_int serving, waiting;
    pthread_mutex_t lock;
    pthread_cond_t admitted; /* monotonic clock */
};

int vap_rpc_response_body(struct vap_rpc_response *resp, const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return VAP_ENOMEM;
    protobuf_c_message_pack(msg, buf);
    free(resp->body);
    resp->body = buf;
    resp->body_len = len;
    return 0;
}

void vap_rpc_response_error(struct vap_rpc_response *resp, int status, const char *fmt, ...)
{
    va_list ap;
    resp->status = status;
    va_start(ap, fmt);
    vsnprintf(resp->detail, sizeof(resp->detail), fmt, ap);
    va_end(ap);
}

static const struct vap_rpc_method *find_method(const struct vap_rpc_method *methods,
                                                const char *name)
{
    for (const struct vap_rpc_method *m = methods; m->name; m++)
        if (strcmp(m->name, name) == 0)
            return m;
    return NULL;
}

static void serve_method(struct vap_rpc_server *srv, const struct vap_rpc_method *m,
                         const Vap__RpcRequest *env, struct vap_rpc_request *req,
                         struct vap_rpc_response *resp, ProtobufCMessage **body)
{
    *body = protobuf_c_message_unpack(m->request_desc, NULL, env->body.len, env->body.data);
    if (!*body) {
        vap_rpc_response_error(resp, 400, "request body does not decode");
        return;
    }
    req->body = *body;
    m->handler(srv->user, req, resp);
}

/* Stream transport: waits until fewer than nthreads requests are being served, or
 * until deadline_ms. 0 when admitted (call release() after), else VAP_ETIMEDOUT. */
static int admit(struct vap_rpc_server *srv, int64_t deadline_ms)
{
    struct timespec until = {.tv_sec = deadline_ms / 1000,
                             .tv_nsec = (deadline_ms % 1000) * 1000000};
    int n = atomic_load(&srv->serving), rv = VAP_ETIMEDOUT, timed_out = 0;
    /* Fast path, no lock: a free place taken with one compare-and-swap. */
    while (n < srv->nthreads)
        if (atomic_compare_exchange_weak(&srv->serving, &n, n + 1))
            return 0;
    pthread_mutex_lock(&srv->lock);
    atomic_fetch_add(&srv->waiting, 1); /* before looking again: release() sees it */
    for (;;) {
        n = atomic_load(&srv->serving);
        while (n < srv->nthreads && rv != 0)
            if (atomic_compare_exchange_weak(&srv->serving, &n, n + 1))
                rv = 0;
        if (rv == 0 || timed_out)
            break;
        timed_out = pthread_cond_timedwait(&srv->admitted, &srv->lock, &until) == ETIMEDOUT;
    }
    atomic_fetch_sub(&srv->waiting, 1);
    pthread_mutex_unlock(&srv->lock);
    return rv;
}

static void release(struct vap_rpc_server *srv)
{
    atomic_fetch_sub(&srv->serving, 1);
    if (atomic_load(&srv->waiting) > 0) {
        pthread_mutex_lock(&srv->lock);
        pthread_cond_signal(&srv->admitted);
        pthread_mutex_unlock(&srv->lock);
    }
}

/* Either transport's serve callback (arg: the vap_rpc_server): decodes one request,
 * runs its handler and packs the reply into *out (malloc'd). Returns 0 to answer,
 * nonzero to drop it unanswered. */
static int serve_one(void *arg, const uint8_t *in, size_t in_len, int64_t received,
                     uint8_t **out_buf, size_t *out_len)
{
    struct vap_rpc_server *srv = arg;
    Vap__RpcRequest *env = vap__rpc_request__unpack(NULL, in_len, in);
    Vap__RpcReply out = VAP__RPC_REPLY__INIT;
    struct vap_rpc_response resp;
    struct vap_rpc_request req;
    ProtobufCMessage *body = NULL;
    const struct vap_rpc_method *m;
    int rv, admitted;

    memset(&resp, 0, sizeof(resp));
    resp.status = 200;
    if (!env) {
        vap_warn(NULL, "rpc request does not decode; dropped");
        return VAP_EPROTO;
    }
    req.method = env->method;
    req.request_id = env->request_id;
    req.deadline_ms = received + env->budget_ms;
    m = find_method(srv->methods, env->method);
    /* Stream transport: a handler that mostly waits (m->waits) is not counted against
     * the handlers running at once; every other one waits for a place. */
    admitted = srv->stream && !(m && m->waits);
    if (admitted && admit(srv, req.deadline_ms) != 0) {
        admitted = 0;
        req.deadline_ms = 0; /* not admitted in time: expired */
    }
    vap_histogram_observe(srv->queued, (double)(vap_now_ms() - received) / 1e3);
    if (vap_ms_left(req.deadline_ms) <= 0) {
        /* Waited for a worker until its caller gave up: running it now could only do
         * what the caller was told did not happen (e.g. spend a use after a 503). */
        vap_warn(req.request_id, "rpc request expired while queued method=%s queued_ms=%lld",
                 env->method, (long long)(vap_now_ms() - received));
        vap_counter_add(srv->expired, 1);
        if (admitted)
            release(srv);
        vap__rpc_request__free_unpacked(env, NULL);
        return VAP_ETIMEDOUT;
    }
    if (m) {
        size_t i = (size_t)(m - srv->methods);
        int64_t t0 = vap_now_us();
        serve_method(srv, m, env, &req, &resp, &body);
        vap_histogram_observe(srv->seconds[i], (double)(vap_now_us() - t0) / 1e6);
        if (resp.status >= 500)
            vap_counter_add(srv->errors[i], 1);
    } else {
        vap_rpc_response_error(&resp, 501, "unknown method");
    }
    if (admitted)
        release(srv);
    if (vap_ms_left(req.deadline_ms) <= 0) {
        /* The caller has given up; an answer now would only be discarded. */
        vap_warn(req.request_id, "rpc answered after deadline method=%s took_ms=%lld",
                 env->method, (long long)(vap_now_ms() - received));
    }
    out.status = resp.status;
    out.detail = resp.detail;
    out.field = resp.field;
    out.retry_after = resp.retry_after;
    out.body.data = resp.body;
    out.body.len = resp.body_len;
    rv = pack_to_buf(&out.base, out_buf, out_len);
    free(resp.body);
    if (body)
        protobuf_c_message_free_unpacked(body, NULL);
    vap__rpc_request__free_unpacked(env, NULL);
    return rv;
}

/* Frees the server's memory (its transport stopped, or never started). */
static void destroy(struct vap_rpc_server *srv)
{
    pthread_mutex_destroy(&srv->lock);
    pthread_cond_destroy(&srv->admitted);
    free(srv->seconds); /* the series themselves live as long as the process */
    free(srv->errors);
    free(srv);
}

int vap_rpc_server_start(struct vap_rpc_server **out, const char *url,
                         const struct vap_rpc_method *methods, void *user, int nthreads)
{
    struct vap_rpc_server *srv = calloc(1, sizeof(*srv));
    pthread_condattr_t attr;
    size_t n = 0;
    int rv;

    if (!srv)
        return VAP_ENOMEM;
    srv->methods = methods;
    srv->user = user;
    srv->nthreads = nthreads;
    while (methods[n].name)
        n++;
    srv->seconds = calloc(n + 1, sizeof(*srv->seconds));
    srv->errors = calloc(n + 1, sizeof(*srv->errors));
    if (!srv->seconds || !srv->errors) {
        free(srv->seconds);
        free(srv->errors);
        free(srv);
        return VAP_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        char labels[96];
        snprintf(labels, sizeof(labels), "method=\"%s\"", methods[i].name);
        srv->seconds[i] = vap_histogram("vap_rpc_server_seconds",
                                        "Requests served to other services, by method.", labels);
        srv->errors[i] = vap_counter("vap_rpc_server_errors_total",
                                     "Requests answered with a 5xx status, by method.", labels);
    }
    srv->queued = vap_histogram("vap_rpc_server_queued_seconds",
                                "Time requests waited for a free worker thread.", "");
    srv->expired = vap_counter("vap_rpc_server_expired_total",
                               "Requests dropped unserved: the caller's deadline passed while"
                               " they waited for a worker.",
                               "");
    pthread_mutex_init(&srv->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&srv->admitted, &attr);
    pthread_condattr_destroy(&attr);
    if (vap_stream_handles(url)) {
        rv = vap_stream_server_start(&srv->stream, url, serve_one, srv);
    } else {
        /* nng: a waiting handler holds one of the workers, so give them their own. */
        for (size_t i = 0; i < n; i++)
            if (methods[i].waits) {
                nthreads += RPC_NNG_WAITING_WORKERS;
                break;
            }
        rv = vap_nng_server_start(&srv->nng, url, nthreads, serve_one, srv);
    }
    if (rv != 0) {
        destroy(srv);
        return rv;
    }
    *out = srv;
    return 0;
}

void vap_rpc_server_stop(struct vap_rpc_server *srv)
{
    if (!srv)
        return;
    if (srv->stream)
        vap_stream_server_stop(srv->stream);
    else
        vap_nng_server_stop(srv->nng);
    destroy(srv);
}
