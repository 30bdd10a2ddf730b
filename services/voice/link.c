/*
 * The media link: one nng pair1 socket in polyamorous mode listening on VOICE_MEDIA_URL.
 * Each gateway dials it once; frames of all its sessions share that pipe, each frame
 * naming its session, so per-session order is kept (one pipe is one ordered stream) and
 * the receive thread never waits on a session: it only hands frames to queues.
 * When a gateway's pipe goes away its sessions are detached, to be resumed through any
 * gateway within the resume window.
 */
#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "log.h"
#include "voice.h"

#define LINK_MAX_FRAME (256 * 1024)

static void on_pipe_removed(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    (void)ev;
    voice_sessions_pipe_gone(arg, p);
}

static void *link_main(void *arg)
{
    struct voice_worker *w = arg;
    while (!atomic_load(&w->stopping)) {
        nng_msg *m = NULL;
        Vap__LinkFrame *f;
        int rv = nng_recvmsg(w->link, &m, 0);
        if (rv == NNG_ETIMEDOUT)
            continue;
        if (rv != 0)
            break;
        f = vap__link_frame__unpack(NULL, nng_msg_len(m), nng_msg_body(m));
        if (!f) {
            vap_warn(NULL, "media link frame does not decode len=%zu", nng_msg_len(m));
        } else if (f->kind == VAP__LINK_FRAME__KIND__OPEN) {
            voice_session_open(w, nng_msg_get_pipe(m), f);
        } else {
            voice_session_deliver(w, nng_msg_get_pipe(m), f);
        }
        if (f)
            vap__link_frame__free_unpacked(f, NULL);
        nng_msg_free(m);
    }
    return NULL;
}

/*
 * With a tcp URL ending in ":0" the kernel picks the port; the worker then announces
 * tcp://<VOICE_ADVERTISE_HOST or the listen host>:<port>, so N workers need no
 * per-instance configuration (./portal up, docker-compose --scale).
 */
static void resolve_advertised(struct voice_worker *w, nng_listener listener)
{
    static char url[300];
    const char *u = w->cfg.media_url, *colon = strrchr(u, ':');
    int port = 0;
    if (w->cfg.advertise_url[0] || strncmp(u, "tcp://", 6) != 0 || !colon ||
        strcmp(colon, ":0") != 0)
        return;
    if (nng_listener_get_int(listener, NNG_OPT_TCP_BOUND_PORT, &port) != 0)
        return;
    if (w->cfg.advertise_host && w->cfg.advertise_host[0])
        snprintf(url, sizeof(url), "tcp://%s:%d", w->cfg.advertise_host, port);
    else
        snprintf(url, sizeof(url), "%.*s:%d", (int)(colon - u), u, port);
    w->cfg.advertise_url = url;
}

int voice_link_start(struct voice_worker *w)
{
    nng_listener listener;
    int rv = nng_pair1_open_poly(&w->link);
    if (rv != 0)
        return VAP_EINTERNAL;
    nng_socket_set_size(w->link, NNG_OPT_RECVMAXSZ, LINK_MAX_FRAME);
    nng_socket_set_ms(w->link, NNG_OPT_RECVTIMEO, 200);
    nng_socket_set_ms(w->link, NNG_OPT_SENDTIMEO, 2000);
    nng_socket_set_int(w->link, NNG_OPT_SENDBUF, 1024);
    nng_socket_set_int(w->link, NNG_OPT_RECVBUF, 1024);
    nng_pipe_notify(w->link, NNG_PIPE_EV_REM_POST, on_pipe_removed, w);
    rv = nng_listen(w->link, w->cfg.media_url, &listener, 0);
    if (rv != 0) {
        vap_error(NULL, "media link listen failed url=%s error=\"%s\"", w->cfg.media_url,
                  nng_strerror(rv));
        nng_close(w->link);
        return VAP_EUNAVAIL;
    }
    resolve_advertised(w, listener);
    if (pthread_create(&w->link_thread, NULL, link_main, w) != 0) {
        nng_close(w->link);
        return VAP_EINTERNAL;
    }
    return 0;
}

void voice_link_stop(struct voice_worker *w)
{
    struct timespec ts = {0, 100000000L}; /* let the last close frames leave */
    nanosleep(&ts, NULL);
    pthread_join(w->link_thread, NULL);
    nng_close(w->link);
}

int voice_link_send(struct voice_worker *w, nng_pipe p, const Vap__LinkFrame *f)
{
    size_t len = vap__link_frame__get_packed_size(f);
    nng_msg *m;
    int rv;
    if (nng_pipe_id(p) <= 0)
        return VAP_EUNAVAIL;
    if (nng_msg_alloc(&m, len) != 0)
        return VAP_ENOMEM;
    vap__link_frame__pack(f, nng_msg_body(m));
    nng_msg_set_pipe(m, p);
    rv = nng_sendmsg(w->link, m, 0);
    if (rv != 0) {
        nng_msg_free(m);
        return rv == NNG_ETIMEDOUT ? VAP_ETIMEDOUT : VAP_EUNAVAIL;
    }
    return 0;
}
