/*
 * Voice workers as the gateway sees them. Workers announce themselves by heartbeat
 * (pub/sub; the gateway listens on GW_VOICE_HEARTBEAT_URL and workers dial in, so
 * workers on other hosts need only know the gateways). For each worker the gateway
 * keeps a push socket dialled to the address in the heartbeat; workers push their
 * frames back to the gateway's one pull socket (GW_VOICE_MEDIA_URL, announced in every
 * frame as reply_url). Push waits instead of dropping, one pipe keeps a session's
 * frames in order, and the receive thread only hands frames to the client
 * connections' queues: it never waits on a client. A worker is lost when its link's pipe drops (killed:
 * at once) or its heartbeats stop (host cut off: GW_VOICE_WORKER_TIMEOUT_MS); its
 * clients are told at once, and new sessions go to the others.
 */
#include <inttypes.h>
#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "err.h"
#include "link.h"
#include "log.h"
#include "pubsub.h"
#include "voice_gw.h"

#define WORKER_MAX_AGENTS 32
#define LINK_MAX_FRAME (256 * 1024)
#define CONN_BUCKETS 1024

struct gw_worker {
    struct gw_worker *next;
    char id[96];
    char url[256];
    int capacity, active, placed; /* placed: by this gateway since the last heartbeat */
    uint64_t epoch;               /* heartbeats seen: which ones `placed` counts */
    bool draining;
    int64_t last_seen_ms;
    char agents[WORKER_MAX_AGENTS][64];
    int n_agents;
    nng_socket sock; /* push, dialled to the worker */
    atomic_int link_up;
    atomic_int stopping;
    int refs;  /* under V.lock: the table's, plus senders' */
    bool dead; /* removed from the table */
};

/*
 * Sessions this gateway gave up when their worker went silent (a cut link, not a dead
 * process). The worker may not know: once it is heard from again, it is told to end
 * them (CLOSE), every heartbeat until a send succeeds or GRAVE_KEEP_MS has passed.
 */
#define GRAVES 256
#define GRAVE_KEEP_MS 120000
struct grave {
    char worker_id[96];
    char session_id[160]; /* empty until known (no OPENED came) */
    uint64_t conn_id;
    int64_t until_ms; /* 0 = free slot */
    int64_t sent_ms;  /* last CLOSE sent for it */
};

static struct {
    struct gw_ctx *gw;
    pthread_mutex_t lock; /* workers, connection table, graves */
    struct gw_worker *workers;
    struct gw_vconn *conns[CONN_BUCKETS];
    int n_conns;
    uint64_t next_conn_id;
    struct vap_sub *hb;
    nng_socket pull; /* every worker's frames to this gateway */
    pthread_t rx;
    char reply_url[300];
    pthread_t reaper;
    atomic_int stopping;
    long timeout_ms;
    struct grave graves[GRAVES];
} V = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Drops a reference; the last one closes the link (outside V.lock: closing runs the
 * pipe callbacks, which take it) and frees. The receive thread was joined by whoever
 * removed the worker from the table. */
static void worker_put(struct gw_worker *w)
{
    bool last;
    pthread_mutex_lock(&V.lock);
    last = --w->refs == 0;
    pthread_mutex_unlock(&V.lock);
    if (last) {
        nng_close(w->sock);
        free(w);
    }
}

/* Under V.lock. */
static struct gw_vconn *conn_find_locked(uint64_t id)
{
    for (struct gw_vconn *c = V.conns[id % CONN_BUCKETS]; c; c = c->next_in_table)
        if (c->id == id)
            return c;
    return NULL;
}

/* Remembers a given-up session (see struct grave). Under V.lock. */
static void bury_locked(const struct gw_vconn *c)
{
    int64_t now = vap_now_ms();
    struct grave *slot = &V.graves[0];
    for (int i = 0; i < GRAVES; i++) {
        if (V.graves[i].until_ms < now) {
            slot = &V.graves[i];
            break;
        }
        if (V.graves[i].until_ms < slot->until_ms)
            slot = &V.graves[i]; /* full: the oldest goes */
    }
    snprintf(slot->worker_id, sizeof(slot->worker_id), "%s", c->worker_id);
    snprintf(slot->session_id, sizeof(slot->session_id), "%s", c->session_id);
    slot->conn_id = c->id;
    slot->until_ms = now + GRAVE_KEEP_MS;
    slot->sent_ms = 0;
}

/* Tells every client of worker id that it is gone. Under V.lock. */
static void fail_sessions_locked(const char *id)
{
    for (int b = 0; b < CONN_BUCKETS; b++)
        for (struct gw_vconn *c = V.conns[b]; c; c = c->next_in_table)
            if (strcmp(c->worker_id, id) == 0) {
                bury_locked(c);
                gw_vconn_worker_lost(c);
            }
}

static void close_orphan(const Vap__LinkFrame *f);
static struct gw_worker *worker_get_locked(const char *id);

static void route_frame(const Vap__LinkFrame *f)
{
    struct gw_vconn *c;
    pthread_mutex_lock(&V.lock);
    c = conn_find_locked(f->conn_id);
    if (!c) {
        pthread_mutex_unlock(&V.lock);
        close_orphan(f);
        return;
    }
    if (c->session_id[0] && f->session_id[0] && strcmp(c->session_id, f->session_id)) {
        pthread_mutex_unlock(&V.lock);
        return;
    }
    switch (f->kind) {
    case VAP__LINK_FRAME__KIND__OPENED:
        pthread_mutex_lock(&c->lock);
        snprintf(c->session_id, sizeof(c->session_id), "%s", f->session_id);
        if (c->state == VC_OPENING)
            c->state = VC_OPEN;
        pthread_cond_broadcast(&c->cond);
        pthread_mutex_unlock(&c->lock);
        break;
    case VAP__LINK_FRAME__KIND__REFUSED:
        pthread_mutex_lock(&c->lock);
        c->refused_code = f->close_code ? f->close_code : 1011;
        c->refused_by_worker = true;
        snprintf(c->refused_reason, sizeof(c->refused_reason), "%s", f->reason);
        c->state = VC_ENDED;
        pthread_cond_broadcast(&c->cond);
        pthread_mutex_unlock(&c->lock);
        break;
    case VAP__LINK_FRAME__KIND__EVENT:
        gw_vconn_push(c, MG_WEBSOCKET_OPCODE_TEXT, f->event, strlen(f->event));
        break;
    case VAP__LINK_FRAME__KIND__AUDIO:
        c->audio_out_frames++;
        gw_vconn_push(c, MG_WEBSOCKET_OPCODE_BINARY, f->audio.data, f->audio.len);
        break;
    case VAP__LINK_FRAME__KIND__CLOSE:
        pthread_mutex_lock(&c->lock);
        c->state = VC_ENDED;
        pthread_mutex_unlock(&c->lock);
        gw_vconn_close(c, f->close_code ? f->close_code : 1000, f->reason);
        break;
    default:
        break;
    }
    pthread_mutex_unlock(&V.lock);
}

/*
 * Tells worker w to end a session this gateway gave up, without waiting (the callers
 * are the media receive and heartbeat threads, which every session depends on).
 * Returns 0 when the frame was queued.
 */
static int send_close_nowait(struct gw_worker *w, uint64_t conn_id, const char *session_id)
{
    Vap__LinkFrame out = VAP__LINK_FRAME__INIT;
    size_t len;
    nng_msg *m;
    out.kind = VAP__LINK_FRAME__KIND__CLOSE;
    out.conn_id = conn_id;
    out.session_id = (char *)session_id;
    out.reply_url = V.reply_url;
    out.close_code = 1001;
    out.reason = "gateway_gave_up";
    len = vap__link_frame__get_packed_size(&out);
    if (nng_msg_alloc(&m, len) != 0)
        return VAP_ENOMEM;
    vap__link_frame__pack(&out, nng_msg_body(m));
    if (nng_sendmsg(w->sock, m, NNG_FLAG_NONBLOCK) != 0) {
        nng_msg_free(m);
        return VAP_EUNAVAIL;
    }
    vap_info(NULL, "voice session the gateway gave up is closed on its worker session=%s",
             session_id);
    return 0;
}

/*
 * A frame for a connection this gateway no longer has. Usually harmless: a client that
 * dropped leaves frames in flight, and its session waits on the worker for a resume.
 * But when the connection is buried (the gateway gave its session up: worker lost, or
 * no OPENED in time) the worker never heard, and the session would run on, holding a
 * slot: tell the worker to end it, at most once a second (audio comes 50 times a
 * second). The session id is "<worker id>.<random>". Media receive thread only.
 */
static void close_orphan(const Vap__LinkFrame *f)
{
    const char *dot = f->session_id ? strrchr(f->session_id, '.') : NULL;
    char worker_id[96];
    struct gw_worker *w = NULL;
    size_t n;
    int64_t now = vap_now_ms();
    bool due = false;

    if (!dot || f->kind == VAP__LINK_FRAME__KIND__CLOSE ||
        f->kind == VAP__LINK_FRAME__KIND__REFUSED)
        return;
    n = (size_t)(dot - f->session_id);
    if (n == 0 || n >= sizeof(worker_id))
        return;
    memcpy(worker_id, f->session_id, n);
    worker_id[n] = '\0';
    pthread_mutex_lock(&V.lock);
    for (int i = 0; i < GRAVES; i++) {
        struct grave *g = &V.graves[i];
        if (g->until_ms >= now && g->conn_id == f->conn_id &&
            strcmp(g->worker_id, worker_id) == 0 && now - g->sent_ms >= 1000) {
            g->sent_ms = now;
            snprintf(g->session_id, sizeof(g->session_id), "%s", f->session_id);
            due = true;
        }
    }
    if (due)
        w = worker_get_locked(worker_id);
    pthread_mutex_unlock(&V.lock);
    if (!w)
        return;
    send_close_nowait(w, f->conn_id, f->session_id);
    worker_put(w);
}

static void *media_rx(void *arg)
{
    (void)arg;
    while (!atomic_load(&V.stopping)) {
        nng_msg *m = NULL;
        Vap__LinkFrame *f;
        int rv = nng_recvmsg(V.pull, &m, 0);
        if (rv == NNG_ETIMEDOUT)
            continue;
        if (rv != 0)
            break;
        f = vap__link_frame__unpack(NULL, nng_msg_len(m), nng_msg_body(m));
        if (f) {
            route_frame(f);
            vap__link_frame__free_unpacked(f, NULL);
        }
        nng_msg_free(m);
    }
    return NULL;
}

static void on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    struct gw_worker *w = arg;
    (void)p;
    if (ev == NNG_PIPE_EV_ADD_POST) {
        atomic_store(&w->link_up, 1);
        vap_info(NULL, "voice worker link up worker=%s", w->id);
        return;
    }
    atomic_store(&w->link_up, 0);
    if (atomic_load(&w->stopping))
        return;
    vap_warn(NULL, "voice worker link lost worker=%s", w->id);
    pthread_mutex_lock(&V.lock);
    fail_sessions_locked(w->id);
    pthread_mutex_unlock(&V.lock);
}

/* Under V.lock. */
static struct gw_worker *worker_create_locked(const Vap__WorkerHeartbeat *hb)
{
    struct gw_worker *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    snprintf(w->id, sizeof(w->id), "%s", hb->worker_id);
    snprintf(w->url, sizeof(w->url), "%s", hb->media_url);
    w->refs = 1;
    if (nng_push0_open(&w->sock) != 0) {
        free(w);
        return NULL;
    }
    nng_socket_set_ms(w->sock, NNG_OPT_SENDTIMEO, 500);
    nng_socket_set_int(w->sock, NNG_OPT_SENDBUF, 1024);
    nng_socket_set_ms(w->sock, NNG_OPT_RECONNMINT, 50);
    nng_socket_set_ms(w->sock, NNG_OPT_RECONNMAXT, 500);
    nng_pipe_notify(w->sock, NNG_PIPE_EV_ADD_POST, on_pipe, w);
    nng_pipe_notify(w->sock, NNG_PIPE_EV_REM_POST, on_pipe, w);
    if (vap_link_dial(w->sock, w->url, NNG_FLAG_NONBLOCK) != 0) {
        vap_error(NULL, "cannot link to voice worker worker=%s url=%s", w->id, w->url);
        nng_close(w->sock);
        free(w);
        return NULL;
    }
    w->next = V.workers;
    V.workers = w;
    vap_info(NULL, "voice worker joined worker=%s url=%s capacity=%d", w->id, w->url,
             hb->capacity);
    return w;
}

/* The worker is heard from: tell it to end the sessions given up on it (struct grave). */
static void close_graves(struct gw_worker *w)
{
    struct grave due[16];
    int n = 0;
    int64_t now = vap_now_ms();
    pthread_mutex_lock(&V.lock);
    for (int i = 0; i < GRAVES && n < 16; i++)
        if (V.graves[i].until_ms >= now && V.graves[i].session_id[0] &&
            strcmp(V.graves[i].worker_id, w->id) == 0)
            due[n++] = V.graves[i];
    pthread_mutex_unlock(&V.lock);
    for (int i = 0; i < n; i++) {
        if (send_close_nowait(w, due[i].conn_id, due[i].session_id) != 0)
            continue;
        pthread_mutex_lock(&V.lock);
        for (int g = 0; g < GRAVES; g++)
            if (V.graves[g].conn_id == due[i].conn_id &&
                strcmp(V.graves[g].session_id, due[i].session_id) == 0)
                V.graves[g].until_ms = 0;
        pthread_mutex_unlock(&V.lock);
    }
}

static void on_heartbeat(void *user, const uint8_t *data, size_t len)
{
    Vap__WorkerHeartbeat *hb = vap__worker_heartbeat__unpack(NULL, len, data);
    struct gw_worker *w;
    (void)user;
    if (!hb)
        return;
    if (!hb->worker_id[0] || !hb->media_url[0] || strlen(hb->worker_id) >= sizeof(w->id)) {
        vap__worker_heartbeat__free_unpacked(hb, NULL);
        return;
    }
    pthread_mutex_lock(&V.lock);
    for (w = V.workers; w; w = w->next)
        if (strcmp(w->id, hb->worker_id) == 0)
            break;
    if (!w && !atomic_load(&V.stopping))
        w = worker_create_locked(hb);
    if (w) {
        w->capacity = hb->capacity;
        w->active = hb->active;
        w->placed = 0;
        w->epoch++;
        w->draining = hb->draining;
        w->last_seen_ms = vap_now_ms();
        w->n_agents = 0;
        for (size_t i = 0; i < hb->n_agents && i < WORKER_MAX_AGENTS; i++)
            snprintf(w->agents[w->n_agents++], sizeof(w->agents[0]), "%s", hb->agents[i]);
        w->refs++; /* for close_graves, after the lock */
    }
    pthread_mutex_unlock(&V.lock);
    vap__worker_heartbeat__free_unpacked(hb, NULL);
    if (w) {
        close_graves(w);
        worker_put(w);
    }
}

/* Removes workers whose heartbeats stopped; their clients are told. */
static void *reaper_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&V.stopping)) {
        struct gw_worker *gone = NULL, **pp;
        struct timespec ts = {0, 200000000L};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&V.lock);
        for (pp = &V.workers; *pp;) {
            struct gw_worker *w = *pp;
            if (vap_now_ms() - w->last_seen_ms > V.timeout_ms) {
                *pp = w->next;
                w->dead = true;
                w->next = gone;
                gone = w;
                vap_warn(NULL, "voice worker silent, removed worker=%s", w->id);
                fail_sessions_locked(w->id);
                continue;
            }
            pp = &w->next;
        }
        pthread_mutex_unlock(&V.lock);
        while (gone) {
            struct gw_worker *w = gone;
            gone = w->next;
            atomic_store(&w->stopping, 1);
            worker_put(w);
        }
    }
    return NULL;
}

/* Listens for workers' frames; a tcp URL ending in ":0" gets a kernel-picked port. */
static int media_listen(const char *url, const char *advertise_host)
{
    nng_listener l;
    const char *colon = strrchr(url, ':');
    size_t scheme = 0;
    int port = 0;
    if (nng_pull0_open(&V.pull) != 0)
        return VAP_EINTERNAL;
    nng_socket_set_size(V.pull, NNG_OPT_RECVMAXSZ, LINK_MAX_FRAME);
    nng_socket_set_ms(V.pull, NNG_OPT_RECVTIMEO, 200);
    nng_socket_set_int(V.pull, NNG_OPT_RECVBUF, 1024);
    if (vap_link_listen(V.pull, url, &l) != 0) {
        vap_error(NULL, "cannot listen for voice media url=%s", url);
        return VAP_EUNAVAIL;
    }
    snprintf(V.reply_url, sizeof(V.reply_url), "%s", url);
    if (vap_link_is_tcp(url, &scheme) && colon && strcmp(colon, ":0") == 0 &&
        nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port) == 0) {
        if (advertise_host && advertise_host[0])
            snprintf(V.reply_url, sizeof(V.reply_url), "%.*s%s:%d", (int)scheme, url,
                     advertise_host, port);
        else
            snprintf(V.reply_url, sizeof(V.reply_url), "%.*s:%d", (int)(colon - url), url, port);
    }
    return pthread_create(&V.rx, NULL, media_rx, NULL) == 0 ? 0 : VAP_EINTERNAL;
}

int gw_voice_start(struct gw_ctx *gw, const char *heartbeat_url)
{
    V.gw = gw;
    V.timeout_ms = gw->cfg.voice_worker_timeout_ms;
    V.next_conn_id = ((uint64_t)vap_wall_ms() << 16);
    if (media_listen(gw->cfg.voice_media_url, gw->cfg.voice_advertise_host) != 0)
        return VAP_EUNAVAIL;
    vap_info(NULL, "voice media link listening url=%s", V.reply_url);
    if (vap_sub_open_listen(&V.hb, heartbeat_url, on_heartbeat, NULL, 1000, NULL) != 0)
        return VAP_EUNAVAIL;
    if (pthread_create(&V.reaper, NULL, reaper_main, NULL) != 0)
        return VAP_EINTERNAL;
    return 0;
}

void gw_voice_stop(void)
{
    struct gw_worker *w;
    atomic_store(&V.stopping, 1);
    vap_sub_close(V.hb);
    pthread_join(V.reaper, NULL);
    pthread_join(V.rx, NULL);
    nng_close(V.pull);
    pthread_mutex_lock(&V.lock);
    w = V.workers;
    V.workers = NULL;
    pthread_mutex_unlock(&V.lock);
    while (w) {
        struct gw_worker *next = w->next;
        atomic_store(&w->stopping, 1);
        w->dead = true;
        worker_put(w);
        w = next;
    }
}

static bool usable_locked(const struct gw_worker *w, const char *agent)
{
    if (w->draining || !atomic_load(&w->link_up) ||
        vap_now_ms() - w->last_seen_ms > V.timeout_ms)
        return false;
    for (int i = 0; i < w->n_agents; i++)
        if (strcmp(w->agents[i], agent) == 0)
            return true;
    return false;
}

int gw_voice_live_workers(void)
{
    int n = 0;
    pthread_mutex_lock(&V.lock);
    for (struct gw_worker *w = V.workers; w; w = w->next)
        if (!w->draining && atomic_load(&w->link_up))
            n++;
    pthread_mutex_unlock(&V.lock);
    return n;
}

void gw_voice_close_all_resumable(void)
{
    int n = 0;
    pthread_mutex_lock(&V.lock);
    for (int b = 0; b < CONN_BUCKETS; b++)
        for (struct gw_vconn *c = V.conns[b]; c; c = c->next_in_table) {
            bool open;
            pthread_mutex_lock(&c->lock);
            open = c->state == VC_OPEN;
            pthread_mutex_unlock(&c->lock);
            if (open) {
                /* The client's close then detaches the session (close_handler). */
                gw_vconn_close(c, 1012, "Gateway restarting: reconnect with ?resume=<session_id>");
                n++;
            }
        }
    pthread_mutex_unlock(&V.lock);
    if (n)
        vap_info(NULL, "voice streams closed for a resume elsewhere count=%d", n);
}

int gw_voice_sessions(void)
{
    int n;
    pthread_mutex_lock(&V.lock);
    n = V.n_conns;
    pthread_mutex_unlock(&V.lock);
    return n;
}

static int send_locked_ref(struct gw_worker *w, const Vap__LinkFrame *f)
{
    size_t len = vap__link_frame__get_packed_size(f);
    nng_msg *m;
    int rv;
    if (nng_msg_alloc(&m, len) != 0)
        return VAP_ENOMEM;
    vap__link_frame__pack(f, nng_msg_body(m));
    rv = nng_sendmsg(w->sock, m, 0);
    if (rv != 0) {
        nng_msg_free(m);
        return VAP_EUNAVAIL;
    }
    return 0;
}

/* Finds worker id and takes a reference. Under V.lock. */
static struct gw_worker *worker_get_locked(const char *id)
{
    for (struct gw_worker *w = V.workers; w; w = w->next)
        if (strcmp(w->id, id) == 0) {
            w->refs++;
            return w;
        }
    return NULL;
}

/* Under V.lock. */
static int token_sessions_locked(const char *jti)
{
    int n = 0;
    for (int b = 0; b < CONN_BUCKETS; b++)
        for (struct gw_vconn *c = V.conns[b]; c; c = c->next_in_table)
            if (strcmp(c->token_jti, jti) == 0)
                n++;
    return n;
}

int gw_voice_token_sessions(const char *jti)
{
    int n;
    pthread_mutex_lock(&V.lock);
    n = token_sessions_locked(jti);
    pthread_mutex_unlock(&V.lock);
    return n;
}

static bool avoided(const struct gw_worker *w, const char (*avoid)[GW_WORKER_ID_MAX],
                    int n_avoid)
{
    for (int i = 0; i < n_avoid; i++)
        if (strcmp(w->id, avoid[i]) == 0)
            return true;
    return false;
}

int gw_voice_open(struct gw_vconn *c, const Vap__SessionOpen *open, const char *resume_id,
                  int max_per_token, const char (*avoid)[GW_WORKER_ID_MAX], int n_avoid)
{
    Vap__LinkFrame f = VAP__LINK_FRAME__INIT;
    struct gw_worker *best = NULL;
    double best_load = 2.0;
    int rv;

    pthread_mutex_lock(&V.lock);
    if (token_sessions_locked(c->token_jti) >= max_per_token) {
        pthread_mutex_unlock(&V.lock);
        return VAP_ETOOBIG;
    }
    if (resume_id && resume_id[0]) {
        const char *dot = strrchr(resume_id, '.');
        size_t n = dot ? (size_t)(dot - resume_id) : 0;
        for (struct gw_worker *w = V.workers; w; w = w->next)
            if (n && strlen(w->id) == n && strncmp(w->id, resume_id, n) == 0 &&
                atomic_load(&w->link_up))
                best = w;
    } else {
        for (struct gw_worker *w = V.workers; w; w = w->next) {
            double load;
            if (!usable_locked(w, open->agent_type) || w->capacity <= 0 ||
                avoided(w, avoid, n_avoid))
                continue;
            if (w->active + w->placed >= w->capacity)
                continue;
            load = (double)(w->active + w->placed) / w->capacity;
            if (load < best_load) {
                best_load = load;
                best = w;
            }
        }
    }
    if (!best) {
        pthread_mutex_unlock(&V.lock);
        return VAP_EUNAVAIL;
    }
    best->refs++;
    best->placed++;
    c->placed_epoch = best->epoch;
    c->id = ++V.next_conn_id;
    snprintf(c->worker_id, sizeof(c->worker_id), "%s", best->id);
    c->next_in_table = V.conns[c->id % CONN_BUCKETS];
    V.conns[c->id % CONN_BUCKETS] = c;
    V.n_conns++;
    pthread_mutex_unlock(&V.lock);

    f.kind = VAP__LINK_FRAME__KIND__OPEN;
    f.conn_id = c->id;
    f.reply_url = V.reply_url;
    f.open = (Vap__SessionOpen *)open;
    rv = send_locked_ref(best, &f);
    worker_put(best);
    return rv;
}

int gw_voice_forward(struct gw_vconn *c, int kind, const void *data, size_t len,
                     int close_code, const char *reason)
{
    Vap__LinkFrame f = VAP__LINK_FRAME__INIT;
    struct gw_worker *w;
    int rv;
    pthread_mutex_lock(&V.lock);
    w = worker_get_locked(c->worker_id);
    pthread_mutex_unlock(&V.lock);
    if (!w)
        return VAP_EUNAVAIL;
    f.kind = kind;
    f.conn_id = c->id;
    f.reply_url = V.reply_url;
    f.session_id = c->session_id;
    if (kind == VAP__LINK_FRAME__KIND__AUDIO) {
        f.audio.data = (uint8_t *)data;
        f.audio.len = len;
    } else if (kind == VAP__LINK_FRAME__KIND__EVENT) {
        f.event = (char *)data;
    }
    f.close_code = close_code;
    f.reason = (char *)(reason ? reason : "");
    rv = send_locked_ref(w, &f);
    worker_put(w);
    return rv;
}

void gw_voice_give_up(struct gw_vconn *c)
{
    pthread_mutex_lock(&V.lock);
    bury_locked(c);
    pthread_mutex_unlock(&V.lock);
}

void gw_voice_unregister(struct gw_vconn *c)
{
    struct gw_vconn **pp;
    pthread_mutex_lock(&V.lock);
    /* A session that ends before its worker's next heartbeat no longer takes a place:
     * a burst of short sessions used to fill the worker's `placed` until the heartbeat
     * and get "No voice worker available" with the worker nearly empty. */
    for (struct gw_worker *w = V.workers; w; w = w->next)
        if (c->placed_epoch && w->epoch == c->placed_epoch && w->placed > 0 &&
            strcmp(w->id, c->worker_id) == 0)
            w->placed--;
    c->placed_epoch = 0;
    for (pp = &V.conns[c->id % CONN_BUCKETS]; *pp; pp = &(*pp)->next_in_table)
        if (*pp == c) {
            *pp = c->next_in_table;
            V.n_conns--;
            break;
        }
    pthread_mutex_unlock(&V.lock);
}
