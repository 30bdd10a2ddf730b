/*
 * nng req0/rep0 under rpc.c, for tls+tcp:// links (see rpc_nng.h). Client: a shared req0
 * socket dialled RPC_NNG_CONNECTIONS times, a context per call. Server: RPC_INTAKE_SLOTS
 * rep0 contexts receiving, whose callbacks timestamp each request and queue it, and
 * worker threads that serve the queue in arrival order and send each answer on the
 * context it came from.
 */
#include "rpc_nng.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "link.h"
#include "log.h"

/* Largest message either side accepts; OTP lists of 1000 entries fit easily. */
#define RPC_NNG_MAX_MSG (4 * 1024 * 1024)

/* How long a call waits for a connection to appear before answering "unavailable":
 * long enough to ride over a restart of the peer, short enough that a client sees 503
 * quickly when the peer is down. */
#define RPC_NNG_CONNECT_GRACE_MS 1000

/* Connections each client keeps to its server. nng's req0 sends one request at a time
 * on a connection (the next waits until the previous left), and rep0 likewise its
 * replies, so a single connection serialised every caller of a busy client (the
 * gateway's civetweb threads) behind it. Requests go to whichever is free. */
#define RPC_NNG_CONNECTIONS 4

/* Requests received and not yet answered, at most: beyond that nng stops reading
 * (requests then wait in the connection, unseen, but are far past any deadline). */
#define RPC_INTAKE_SLOTS 512

/* ---- client ---- */

struct vap_nng_client {
    nng_socket sock;
    atomic_int pipes; /* connections up right now */
};

static void on_pipe_event(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
    struct vap_nng_client *c = arg;
    (void)pipe;
    if (ev == NNG_PIPE_EV_ADD_POST)
        atomic_fetch_add(&c->pipes, 1);
    else if (ev == NNG_PIPE_EV_REM_POST)
        atomic_fetch_sub(&c->pipes, 1);
}

/* Waits (polling) until a connection is up or the grace/deadline passes. */
static int wait_connected(struct vap_nng_client *c, int64_t deadline_ms)
{
    int64_t until = vap_now_ms() + RPC_NNG_CONNECT_GRACE_MS;
    if (until > deadline_ms)
        until = deadline_ms;
    while (atomic_load(&c->pipes) <= 0) {
        if (vap_now_ms() >= until)
            return VAP_EUNAVAIL;
        nng_msleep(10);
    }
    return 0;
}

int vap_nng_client_open(struct vap_nng_client **out, const char *url)
{
    struct vap_nng_client *c = calloc(1, sizeof(*c));
    int rv;
    if (!c)
        return VAP_ENOMEM;
    rv = nng_req0_open(&c->sock);
    if (rv != 0) {
        free(c);
        return VAP_EINTERNAL;
    }
    nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, RPC_NNG_MAX_MSG);
    nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_POST, on_pipe_event, c);
    nng_pipe_notify(c->sock, NNG_PIPE_EV_REM_POST, on_pipe_event, c);
    nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, 50);
    nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, 500);
    /* Callers bound every call with a deadline; a resend timer shorter than that would
     * only duplicate work. Resends still happen when a connection breaks. */
    nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    for (int i = 0; i < RPC_NNG_CONNECTIONS && rv == 0; i++)
        rv = vap_link_dial(c->sock, url, NNG_FLAG_NONBLOCK);
    if (rv != 0) {
        vap_error(NULL, "rpc dial failed url=%s error=\"%s\"", url, nng_strerror(rv));
        nng_close(c->sock);
        free(c);
        return VAP_EINVAL;
    }
    *out = c;
    return 0;
}

void vap_nng_client_close(struct vap_nng_client *client)
{
    if (!client)
        return;
    nng_close(client->sock);
    free(client);
}

/* Synchronous send/receive on a context with a timeout, on the caller's aio (nng 1.5
 * has no nng_ctx_sendmsg). On a failed send the caller still owns msg. Returns an nng
 * error. */
static int ctx_send(nng_ctx ctx, nng_aio *aio, nng_msg *msg, nng_duration timeout)
{
    nng_aio_set_msg(aio, msg);
    nng_aio_set_timeout(aio, timeout);
    nng_ctx_send(ctx, aio);
    nng_aio_wait(aio);
    return nng_aio_result(aio);
}

static int ctx_recv(nng_ctx ctx, nng_aio *aio, nng_msg **msg, nng_duration timeout)
{
    int rv;
    nng_aio_set_timeout(aio, timeout);
    nng_ctx_recv(ctx, aio);
    nng_aio_wait(aio);
    rv = nng_aio_result(aio);
    if (rv == 0)
        *msg = nng_aio_get_msg(aio);
    return rv;
}

/* Copies req into a message, sends it on a context of its own, and copies the reply
 * out. */
int vap_nng_call(struct vap_nng_client *client, const uint8_t *req, size_t len,
                 int64_t deadline_ms, uint8_t **reply, size_t *reply_len)
{
    nng_msg *msg = NULL;
    nng_aio *aio = NULL;
    nng_ctx ctx;
    int64_t left;
    int nrv;

    if (wait_connected(client, deadline_ms) != 0)
        return VAP_EUNAVAIL;
    left = vap_ms_left(deadline_ms);
    if (left <= 0)
        return VAP_ETIMEDOUT;
    if (nng_msg_alloc(&msg, len) != 0)
        return VAP_ENOMEM;
    memcpy(nng_msg_body(msg), req, len);
    if (nng_aio_alloc(&aio, NULL, NULL) != 0) {
        nng_msg_free(msg);
        return VAP_ENOMEM;
    }
    nrv = nng_ctx_open(&ctx, client->sock);
    if (nrv != 0) {
        nng_msg_free(msg);
        nng_aio_free(aio);
        return VAP_EUNAVAIL;
    }
    nrv = ctx_send(ctx, aio, msg, (nng_duration)left);
    if (nrv != 0) {
        nng_msg_free(msg); /* ownership passes to nng only on success */
        nng_ctx_close(ctx);
        nng_aio_free(aio);
        return nrv == NNG_ETIMEDOUT ? VAP_ETIMEDOUT : VAP_EUNAVAIL;
    }
    left = vap_ms_left(deadline_ms);
    nrv = ctx_recv(ctx, aio, &msg, (nng_duration)(left > 0 ? left : 1));
    nng_ctx_close(ctx);
    nng_aio_free(aio);
    if (nrv != 0)
        return nrv == NNG_ETIMEDOUT ? VAP_ETIMEDOUT : VAP_EUNAVAIL;
    *reply_len = nng_msg_len(msg);
    *reply = malloc(*reply_len ? *reply_len : 1);
    if (*reply)
        memcpy(*reply, nng_msg_body(msg), *reply_len);
    nng_msg_free(msg);
    return *reply ? 0 : VAP_ENOMEM;
}

/* ---- server ---- */

/* One rep0 context of the intake, and the request it holds while queued or served. */
struct intake_slot {
    struct vap_nng_server *srv;
    nng_ctx ctx;
    nng_aio *aio; /* receives; its callback runs on an nng task thread */
    nng_msg *msg;
    int64_t received_ms;
    struct intake_slot *next;
};

struct vap_nng_server {
    nng_socket sock;
    vap_nng_serve_fn serve;
    void *arg;
    int nthreads;
    pthread_t *threads;
    struct intake_slot *slots;
    int nslots;
    pthread_mutex_t lock;
    pthread_cond_t ready;
    struct intake_slot *head, *tail; /* received, oldest first */
    atomic_int stopping;
};

/* A request arrived (or the socket closed): timestamp it and queue it for a worker. */
static void intake_cb(void *arg)
{
    struct intake_slot *slot = arg;
    struct vap_nng_server *srv = slot->srv;
    int rv = nng_aio_result(slot->aio);

    if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
        return;
    if (rv != 0) {
        if (!atomic_load(&srv->stopping))
            nng_ctx_recv(slot->ctx, slot->aio);
        return;
    }
    slot->msg = nng_aio_get_msg(slot->aio);
    slot->received_ms = vap_now_ms();
    slot->next = NULL;
    pthread_mutex_lock(&srv->lock);
    if (srv->tail)
        srv->tail->next = slot;
    else
        srv->head = slot;
    srv->tail = slot;
    pthread_cond_signal(&srv->ready);
    pthread_mutex_unlock(&srv->lock);
}

/* Serves queued requests until stopping and none is left. */
static void *server_thread(void *arg)
{
    struct vap_nng_server *srv = arg;
    nng_aio *aio = NULL;

    if (nng_aio_alloc(&aio, NULL, NULL) != 0) {
        vap_error(NULL, "rpc server: cannot allocate an aio");
        return NULL;
    }
    for (;;) {
        struct intake_slot *slot;
        nng_msg *out;
        uint8_t *buf;
        size_t len;

        pthread_mutex_lock(&srv->lock);
        while (!srv->head && !atomic_load(&srv->stopping))
            pthread_cond_wait(&srv->ready, &srv->lock);
        slot = srv->head;
        if (slot) {
            srv->head = slot->next;
            if (!srv->head)
                srv->tail = NULL;
        }
        pthread_mutex_unlock(&srv->lock);
        if (!slot)
            break;
        out = NULL;
        if (srv->serve(srv->arg, nng_msg_body(slot->msg), nng_msg_len(slot->msg),
                       slot->received_ms, &buf, &len) == 0) {
            if (nng_msg_alloc(&out, len) == 0)
                memcpy(nng_msg_body(out), buf, len);
            free(buf);
        }
        nng_msg_free(slot->msg);
        slot->msg = NULL;
        if (out && ctx_send(slot->ctx, aio, out, 1000) != 0)
            nng_msg_free(out);
        if (!atomic_load(&srv->stopping)) /* stopping: take no new request */
            nng_ctx_recv(slot->ctx, slot->aio);
    }
    nng_aio_free(aio);
    return NULL;
}

/* Frees what start_intake made; the socket must be closed first. */
static void free_intake(struct vap_nng_server *srv)
{
    for (int i = 0; i < srv->nslots; i++) {
        nng_aio_free(srv->slots[i].aio); /* waits for a callback in progress */
        if (srv->slots[i].msg)           /* received after the workers left */
            nng_msg_free(srv->slots[i].msg);
    }
    free(srv->slots);
    srv->slots = NULL;
    srv->nslots = 0;
}

static int start_intake(struct vap_nng_server *srv)
{
    srv->slots = calloc(RPC_INTAKE_SLOTS, sizeof(*srv->slots));
    if (!srv->slots)
        return VAP_ENOMEM;
    for (int i = 0; i < RPC_INTAKE_SLOTS; i++) {
        struct intake_slot *slot = &srv->slots[i];
        slot->srv = srv;
        if (nng_aio_alloc(&slot->aio, intake_cb, slot) != 0)
            return VAP_ENOMEM;
        srv->nslots++;
        if (nng_ctx_open(&slot->ctx, srv->sock) != 0)
            return VAP_EINTERNAL;
        nng_ctx_recv(slot->ctx, slot->aio);
    }
    return 0;
}

static void destroy(struct vap_nng_server *srv)
{
    pthread_mutex_destroy(&srv->lock);
    pthread_cond_destroy(&srv->ready);
    free(srv->threads);
    free(srv);
}

int vap_nng_server_start(struct vap_nng_server **out, const char *url, int nworkers,
                         vap_nng_serve_fn serve, void *arg)
{
    struct vap_nng_server *srv = calloc(1, sizeof(*srv));
    int rv;

    if (!srv)
        return VAP_ENOMEM;
    srv->serve = serve;
    srv->arg = arg;
    srv->threads = calloc((size_t)(nworkers > 0 ? nworkers : 1), sizeof(pthread_t));
    if (!srv->threads) {
        free(srv);
        return VAP_ENOMEM;
    }
    pthread_mutex_init(&srv->lock, NULL);
    pthread_cond_init(&srv->ready, NULL);
    rv = nng_rep0_open(&srv->sock);
    if (rv == 0) {
        nng_socket_set_size(srv->sock, NNG_OPT_RECVMAXSZ, RPC_NNG_MAX_MSG);
        rv = vap_link_listen(srv->sock, url, NULL);
        if (rv != 0)
            nng_close(srv->sock);
    }
    if (rv != 0) {
        vap_error(NULL, "rpc listen failed url=%s error=\"%s\"", url, nng_strerror(rv));
        destroy(srv);
        return VAP_EUNAVAIL;
    }
    for (int i = 0; i < nworkers; i++) {
        if (pthread_create(&srv->threads[i], NULL, server_thread, srv) != 0)
            break;
        srv->nthreads++;
    }
    rv = start_intake(srv);
    if (rv != 0 || srv->nthreads == 0) {
        vap_error(NULL, "rpc server: cannot start url=%s threads=%d", url, srv->nthreads);
        vap_nng_server_stop(srv);
        return rv != 0 ? rv : VAP_EINTERNAL;
    }
    *out = srv;
    return 0;
}

void vap_nng_server_stop(struct vap_nng_server *srv)
{
    if (!srv)
        return;
    /* Workers answer every request already received, then leave; no new one is taken. */
    pthread_mutex_lock(&srv->lock);
    atomic_store(&srv->stopping, 1);
    pthread_cond_broadcast(&srv->ready);
    pthread_mutex_unlock(&srv->lock);
    for (int i = 0; i < srv->nthreads; i++)
        pthread_join(srv->threads[i], NULL);
    nng_close(srv->sock);
    free_intake(srv);
    destroy(srv);
}
