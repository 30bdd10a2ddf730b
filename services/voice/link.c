/*
 * The media link. The worker pulls every gateway's frames from one nng pull socket
 * (VOICE_MEDIA_URL); for each gateway it keeps a push socket dialled to the address the
 * gateway gave (reply_url). Push waits when the peer is slow instead of dropping, and a
 * pipe is one ordered TCP stream, so every session's frames keep their order; frames of
 * all sessions share the pipe, each naming its session. The receive thread never waits
 * on a session: it only hands frames to queues. When a gateway's pipe goes away its
 * sessions are detached, to be resumed through any gateway within the resume window.
 */
#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "link.h"
#include "log.h"
#include "voice.h"

#define LINK_MAX_FRAME (256 * 1024)
#define MAX_PEERS 256

struct voice_peer {
    char url[256];
    nng_socket push;
    atomic_int up;
    struct voice_worker *w;
};

static struct voice_peer *peers[MAX_PEERS];
static int n_peers;
static pthread_mutex_t peers_lock = PTHREAD_MUTEX_INITIALIZER;

static void on_peer_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    struct voice_peer *peer = arg;
    (void)p;
    if (ev == NNG_PIPE_EV_ADD_POST) {
        atomic_store(&peer->up, 1);
        return;
    }
    atomic_store(&peer->up, 0);
    if (!atomic_load(&peer->w->stopping))
        voice_sessions_peer_gone(peer->w, peer);
}

struct voice_peer *voice_peer_get(struct voice_worker *w, const char *url)
{
    struct voice_peer *peer = NULL;
    if (!url[0] || strlen(url) >= sizeof(peer->url))
        return NULL;
    pthread_mutex_lock(&peers_lock);
    for (int i = 0; i < n_peers; i++)
        if (strcmp(peers[i]->url, url) == 0) {
            peer = peers[i];
            break;
        }
    if (!peer && n_peers < MAX_PEERS && (peer = calloc(1, sizeof(*peer)))) {
        snprintf(peer->url, sizeof(peer->url), "%s", url);
        peer->w = w;
        if (nng_push0_open(&peer->push) != 0) {
            free(peer);
            peer = NULL;
        } else {
            nng_socket_set_ms(peer->push, NNG_OPT_SENDTIMEO, 2000);
            nng_socket_set_int(peer->push, NNG_OPT_SENDBUF, 1024);
            nng_socket_set_ms(peer->push, NNG_OPT_RECONNMINT, 50);
            nng_socket_set_ms(peer->push, NNG_OPT_RECONNMAXT, 500);
            nng_pipe_notify(peer->push, NNG_PIPE_EV_ADD_POST, on_peer_pipe, peer);
            nng_pipe_notify(peer->push, NNG_PIPE_EV_REM_POST, on_peer_pipe, peer);
            /* In the background: a send waits (up to SENDTIMEO) for the pipe to come up. */
            if (vap_link_dial(peer->push, url, NNG_FLAG_NONBLOCK) != 0) {
                vap_warn(NULL, "cannot dial gateway url=%s", url);
                nng_close(peer->push);
                free(peer);
                peer = NULL;
            } else {
                peers[n_peers++] = peer;
            }
        }
    }
    pthread_mutex_unlock(&peers_lock);
    return peer;
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
        } else {
            struct voice_peer *peer = voice_peer_get(w, f->reply_url);
            if (!peer)
                vap_warn(NULL, "media link frame without a usable reply address");
            else if (f->kind == VAP__LINK_FRAME__KIND__OPEN)
                voice_session_open(w, peer, f);
            else
                voice_session_deliver(w, peer, f);
        }
        if (f)
            vap__link_frame__free_unpacked(f, NULL);
        nng_msg_free(m);
    }
    return NULL;
}

/*
 * With a tcp:// (or tls+tcp://) URL ending in ":0" the kernel picks the port; the worker
 * then announces <scheme><VOICE_ADVERTISE_HOST or the listen host>:<port>, so N workers need no
 * per-instance configuration (./portal up, docker-compose --scale).
 */
static void resolve_advertised(struct voice_worker *w, nng_listener listener)
{
    static char url[300];
    const char *u = w->cfg.media_url, *colon = strrchr(u, ':');
    size_t scheme = 0;
    int port = 0;
    if (w->cfg.advertise_url[0] || !vap_link_is_tcp(u, &scheme) || !colon ||
        strcmp(colon, ":0") != 0)
        return;
    if (nng_listener_get_int(listener, NNG_OPT_TCP_BOUND_PORT, &port) != 0)
        return;
    if (w->cfg.advertise_host && w->cfg.advertise_host[0])
        snprintf(url, sizeof(url), "%.*s%s:%d", (int)scheme, u, w->cfg.advertise_host, port);
    else
        snprintf(url, sizeof(url), "%.*s:%d", (int)(colon - u), u, port);
    w->cfg.advertise_url = url;
}

int voice_link_start(struct voice_worker *w)
{
    nng_listener listener;
    int rv = nng_pull0_open(&w->link);
    if (rv != 0)
        return VAP_EINTERNAL;
    nng_socket_set_size(w->link, NNG_OPT_RECVMAXSZ, LINK_MAX_FRAME);
    nng_socket_set_ms(w->link, NNG_OPT_RECVTIMEO, 200);
    nng_socket_set_int(w->link, NNG_OPT_RECVBUF, 1024);
    rv = vap_link_listen(w->link, w->cfg.media_url, &listener);
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
    pthread_mutex_lock(&peers_lock);
    for (int i = 0; i < n_peers; i++) {
        nng_close(peers[i]->push);
        free(peers[i]);
    }
    n_peers = 0;
    pthread_mutex_unlock(&peers_lock);
}

int voice_link_send(struct voice_worker *w, struct voice_peer *peer, const Vap__LinkFrame *f)
{
    size_t len = vap__link_frame__get_packed_size(f);
    nng_msg *m;
    int rv;
    (void)w;
    if (!peer)
        return VAP_EUNAVAIL;
    if (nng_msg_alloc(&m, len) != 0)
        return VAP_ENOMEM;
    vap__link_frame__pack(f, nng_msg_body(m));
    rv = nng_sendmsg(peer->push, m, 0);
    if (rv != 0) {
        nng_msg_free(m);
        return rv == NNG_ETIMEDOUT ? VAP_ETIMEDOUT : VAP_EUNAVAIL;
    }
    return 0;
}
