/*
 * The floor under every route that crosses an internal RPC: bare request/reply round
 * trips in one process, no work and no protobuf, 64 caller threads, on 127.0.0.1. Three
 * transports, run alternately, side by side, printed as requests/s:
 *   - nng req0/rep0 as common/rpc.c used it for every link until 2026-12-02 (a context
 *     and an aio per call, 4 TCP connections), the server answering from 16 worker
 *     threads (as it still does for tls+tcp:// links);
 *   - the same with answers given right in nng's aio callbacks (nothing can be cheaper
 *     with nng);
 *   - common/rpc_stream.c, what tcp:// and ipc:// links use now (a pooled connection
 *     per call, a thread per server connection).
 *
 *   cmake --build build --target vap-rpc-floor && build/bin/vap-rpc-floor
 *
 * At 64 connections a route's mean latency is at least 64 / (its requests/s) (Little's
 * law), so this bounds what gateway -> auth routes can reach on a machine.
 */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "rpc_stream.h"

#define CALLERS 64
#define SERVER_THREADS 16
#define CONNECTIONS 4
#define SECONDS 5

struct run {
    nng_socket srv, cli;
    atomic_long done;
    atomic_int stop;
};

struct slot {
    struct run *r;
    nng_ctx ctx;
    nng_aio *aio;
    int sending;
};

static void *server_thread(void *arg)
{
    struct run *r = arg;
    nng_aio *aio;
    nng_ctx ctx;
    if (nng_aio_alloc(&aio, NULL, NULL) != 0 || nng_ctx_open(&ctx, r->srv) != 0)
        return NULL;
    for (;;) {
        nng_msg *m;
        nng_ctx_recv(ctx, aio);
        nng_aio_wait(aio);
        if (nng_aio_result(aio) != 0)
            break;
        m = nng_aio_get_msg(aio);
        nng_aio_set_msg(aio, m);
        nng_ctx_send(ctx, aio);
        nng_aio_wait(aio);
        if (nng_aio_result(aio) != 0)
            nng_msg_free(m);
    }
    nng_aio_free(aio);
    return NULL;
}

static void answer_cb(void *arg)
{
    struct slot *s = arg;
    if (!s->sending) {
        if (nng_aio_result(s->aio) != 0)
            return;
        s->sending = 1;
        nng_aio_set_msg(s->aio, nng_aio_get_msg(s->aio));
        nng_ctx_send(s->ctx, s->aio);
    } else {
        if (nng_aio_result(s->aio) != 0) {
            nng_msg_free(nng_aio_get_msg(s->aio));
            if (nng_aio_result(s->aio) == NNG_ECLOSED)
                return;
        }
        s->sending = 0;
        nng_ctx_recv(s->ctx, s->aio);
    }
}

static void *caller(void *arg)
{
    struct run *r = arg;
    while (!atomic_load(&r->stop)) {
        nng_aio *aio;
        nng_ctx ctx;
        nng_msg *m;
        if (nng_aio_alloc(&aio, NULL, NULL) != 0)
            break;
        if (nng_ctx_open(&ctx, r->cli) != 0 || nng_msg_alloc(&m, 200) != 0) {
            nng_aio_free(aio);
            break;
        }
        nng_aio_set_msg(aio, m);
        nng_aio_set_timeout(aio, 1000);
        nng_ctx_send(ctx, aio);
        nng_aio_wait(aio);
        if (nng_aio_result(aio) != 0) {
            nng_msg_free(m);
        } else {
            nng_ctx_recv(ctx, aio);
            nng_aio_wait(aio);
            if (nng_aio_result(aio) == 0) {
                nng_msg_free(nng_aio_get_msg(aio));
                atomic_fetch_add(&r->done, 1);
            }
        }
        nng_ctx_close(ctx);
        nng_aio_free(aio);
    }
    return NULL;
}

/* Requests/s over SECONDS after a 1 s warm-up; inline: answer in the callbacks. */
static long measure(int port, int inline_answers)
{
    struct run r = {0};
    pthread_t servers[SERVER_THREADS], callers[CALLERS];
    struct slot *slots = NULL;
    char url[64];
    long before, after;

    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", port);
    if (nng_rep0_open(&r.srv) != 0 || nng_listen(r.srv, url, NULL, 0) != 0 ||
        nng_req0_open(&r.cli) != 0) {
        fprintf(stderr, "rpc_floor: cannot listen on %s\n", url);
        exit(1);
    }
    nng_socket_set_ms(r.cli, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    for (int i = 0; i < CONNECTIONS; i++)
        nng_dial(r.cli, url, NULL, 0);
    if (inline_answers) {
        slots = calloc(CALLERS, sizeof(*slots));
        for (int i = 0; slots && i < CALLERS; i++) {
            slots[i].r = &r;
            nng_aio_alloc(&slots[i].aio, answer_cb, &slots[i]);
            nng_ctx_open(&slots[i].ctx, r.srv);
            nng_ctx_recv(slots[i].ctx, slots[i].aio);
        }
    } else {
        for (int i = 0; i < SERVER_THREADS; i++)
            pthread_create(&servers[i], NULL, server_thread, &r);
    }
    for (int i = 0; i < CALLERS; i++)
        pthread_create(&callers[i], NULL, caller, &r);
    sleep(1);
    before = atomic_load(&r.done);
    sleep(SECONDS);
    after = atomic_load(&r.done);
    atomic_store(&r.stop, 1);
    for (int i = 0; i < CALLERS; i++)
        pthread_join(callers[i], NULL);
    nng_close(r.cli);
    nng_close(r.srv);
    if (inline_answers) {
        for (int i = 0; slots && i < CALLERS; i++)
            nng_aio_free(slots[i].aio);
        free(slots);
    } else {
        for (int i = 0; i < SERVER_THREADS; i++)
            pthread_join(servers[i], NULL);
    }
    return (after - before) / SECONDS;
}

static int echo(void *arg, const uint8_t *req, size_t len, int64_t received, uint8_t **out,
                size_t *out_len)
{
    (void)arg;
    (void)received;
    *out = malloc(len ? len : 1);
    if (!*out)
        return -1;
    memcpy(*out, req, len);
    *out_len = len;
    return 0;
}

struct stream_run {
    struct vap_stream_client *c;
    atomic_long done;
    atomic_int stop;
};

static void *stream_caller(void *arg)
{
    struct stream_run *r = arg;
    uint8_t req[200] = {0};
    while (!atomic_load(&r->stop)) {
        uint8_t *reply = NULL;
        size_t len;
        if (vap_stream_call(r->c, req, sizeof(req), vap_now_ms() + 1000, &reply, &len) == 0)
            atomic_fetch_add(&r->done, 1);
        free(reply);
    }
    return NULL;
}

static long measure_stream(int port)
{
    struct stream_run r = {0};
    struct vap_stream_server *srv = NULL;
    pthread_t callers[CALLERS];
    char url[64];
    long before, after;

    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", port);
    if (vap_stream_server_start(&srv, url, echo, NULL) != 0 ||
        vap_stream_client_open(&r.c, url) != 0) {
        fprintf(stderr, "rpc_floor: cannot listen on %s\n", url);
        exit(1);
    }
    for (int i = 0; i < CALLERS; i++)
        pthread_create(&callers[i], NULL, stream_caller, &r);
    sleep(1);
    before = atomic_load(&r.done);
    sleep(SECONDS);
    after = atomic_load(&r.done);
    atomic_store(&r.stop, 1);
    for (int i = 0; i < CALLERS; i++)
        pthread_join(callers[i], NULL);
    vap_stream_client_close(r.c);
    vap_stream_server_stop(srv);
    return (after - before) / SECONDS;
}

int main(void)
{
    static const char *names[] = {"nng, 16 worker threads", "nng, answers in callbacks",
                                  "rpc_stream (tcp://, ipc:// links)"};
    int port = 20000 + (int)(getpid() % 20000);
    printf("| round | transport | requests/s | mean latency at %d callers |\n"
           "|---|---|--:|--:|\n",
           CALLERS);
    for (int round = 1; round <= 2; round++) {
        for (int mode = 0; mode <= 2; mode++) {
            long rps = mode == 2 ? measure_stream(port++) : measure(port++, mode);
            printf("| %d | %s | %ld | %.2f ms |\n", round, names[mode], rps,
                   rps ? 1000.0 * CALLERS / (double)rps : 0.0);
            fflush(stdout);
        }
    }
    return 0;
}
