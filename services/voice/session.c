/*
 * Session lifecycle inside a worker: open (capacity, draining; a speech decoder is lent
 * per utterance by stt.c), resume after a dropped socket (same token, within the resume
 * window), delivery of the gateway's frames to the session's input queue, detach when a gateway goes away, and
 * the single end of every session (session.ended with totals, close, usage record).
 * The session list is guarded by w->lock; the playout thread reaps ended sessions.
 */
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "session.h"

#define SESSION_QUEUE_MAX 500 /* 10 s of 20 ms frames */

static void send_frame(struct voice_session *s, Vap__LinkFrame *f)
{
    struct voice_peer *p;
    bool attached;
    pthread_mutex_lock(&s->w->lock);
    p = s->peer;
    attached = s->attached;
    f->conn_id = s->conn_id;
    pthread_mutex_unlock(&s->w->lock);
    if (!attached)
        return;
    f->session_id = s->id;
    voice_link_send(s->w, p, f);
}

void session_send_event(struct voice_session *s, json_t *ev)
{
    Vap__LinkFrame f = VAP__LINK_FRAME__INIT;
    char *text;
    if (!ev)
        return;
    text = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    if (!text)
        return;
    f.kind = VAP__LINK_FRAME__KIND__EVENT;
    f.event = text;
    send_frame(s, &f);
    free(text);
}

void session_send_audio(struct voice_session *s, const uint8_t *data, size_t len)
{
    Vap__LinkFrame f = VAP__LINK_FRAME__INIT;
    f.kind = VAP__LINK_FRAME__KIND__AUDIO;
    f.audio.data = (uint8_t *)data;
    f.audio.len = len;
    send_frame(s, &f);
}

void session_send_error(struct voice_session *s, const char *code, const char *message)
{
    session_send_event(s, ev_error(code, message));
}

static void refuse(struct voice_worker *w, struct voice_peer *p, uint64_t conn_id, int code,
                   const char *reason)
{
    Vap__LinkFrame f = VAP__LINK_FRAME__INIT;
    f.kind = VAP__LINK_FRAME__KIND__REFUSED;
    f.conn_id = conn_id;
    f.close_code = code;
    f.reason = (char *)reason;
    voice_link_send(w, p, &f);
}

static void wake_threads(struct voice_session *s)
{
    pthread_mutex_lock(&s->qlock);
    pthread_cond_broadcast(&s->qcond);
    pthread_mutex_unlock(&s->qlock);
    pthread_mutex_lock(&s->rlock);
    pthread_cond_broadcast(&s->rcond);
    pthread_mutex_unlock(&s->rlock);
}

void session_end(struct voice_session *s, const char *reason, int close_code)
{
    Vap__LinkFrame f = VAP__LINK_FRAME__INIT;
    Vap__SessionRecord rec;
    if (atomic_exchange(&s->ended, 1))
        return;
    snprintf(s->end_reason, sizeof(s->end_reason), "%s", reason);
    atomic_store(&s->cancel, 1);
    session_send_event(s, ev_session_ended(s));
    f.kind = VAP__LINK_FRAME__KIND__CLOSE;
    f.close_code = close_code;
    f.reason = (char *)reason;
    send_frame(s, &f);
    session_record(s, &rec, true);
    voice_report(s->w, &rec);
    voice_metrics_session_ended(reason);
    vap_info(s->request_id, "session ended id=%s agent=%s reason=%s turns=%d audio_in_ms=%lld",
             s->id, s->rt->agent->id, reason, atomic_load(&s->turns),
             (long long)atomic_load(&s->audio_in_ms));
    wake_threads(s);
    atomic_store(&s->end_done, 1); /* last touch of s by this thread */
}

static void session_free(struct voice_session *s)
{
    struct session_item *it = s->qhead;
    while (it) {
        struct session_item *next = it->next;
        free(it);
        it = next;
    }
    free(s->job.text);
    for (size_t i = 0; i < s->n_marks; i++)
        free(s->marks[i].text);
    free(s->marks);
    free(s->pcm);
    free(s->heard_truncate);
    if (s->dialog)
        dialog_session_free(s->dialog);
    if (s->stt)
        stt_stream_close(s->stt);
    vad_free(s->vad);
    echo_filter_free(s->echo);
    audio_decoder_free(s->dec);
    audio_encoder_free(s->enc);
    pthread_mutex_destroy(&s->qlock);
    pthread_cond_destroy(&s->qcond);
    pthread_mutex_destroy(&s->rlock);
    pthread_cond_destroy(&s->rcond);
    pthread_mutex_destroy(&s->play_lock);
    free(s);
}

/* Under w->lock. */
static struct voice_session *find_locked(struct voice_worker *w, const char *id)
{
    for (struct voice_session *s = w->sessions; s; s = s->next)
        if (strcmp(s->id, id) == 0)
            return s;
    return NULL;
}

static int parse_codec(const char *name, enum audio_codec *out)
{
    if (!name[0] || strcmp(name, "opus") == 0)
        *out = AUDIO_CODEC_OPUS;
    else if (strcmp(name, "pcm16") == 0)
        *out = AUDIO_CODEC_PCM16;
    else if (strcmp(name, "mulaw") == 0)
        *out = AUDIO_CODEC_MULAW;
    else
        return VAP_EINVAL;
    return 0;
}

/* A session's id: the worker id (so any gateway can find the worker) and 96 random bits. */
static void make_id(struct voice_worker *w, char *out, size_t size)
{
    uint8_t rnd[12];
    char hex[25];
    randombytes_buf(rnd, sizeof(rnd));
    sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
    snprintf(out, size, "%s.%s", w->cfg.worker_id, hex);
}

static int session_build(struct voice_worker *w, struct voice_agent_rt *rt,
                         const Vap__SessionOpen *o, struct voice_session **out)
{
    struct voice_session *s = calloc(1, sizeof(*s));
    struct vad_config vc;
    int rv;
    if (!s)
        return VAP_ENOMEM;
    s->w = w;
    s->rt = rt;
    s->play_turn = -1;
    pthread_mutex_init(&s->qlock, NULL);
    pthread_cond_init(&s->qcond, NULL);
    pthread_mutex_init(&s->rlock, NULL);
    pthread_cond_init(&s->rcond, NULL);
    pthread_mutex_init(&s->play_lock, NULL);
    make_id(w, s->id, sizeof(s->id));
    snprintf(s->token_jti, sizeof(s->token_jti), "%s", o->token_jti);
    snprintf(s->grant_id, sizeof(s->grant_id), "%s", o->grant_id);
    snprintf(s->request_id, sizeof(s->request_id), "%s", o->request_id);
    s->otp_id = o->otp_id;
    s->started_ms = vap_wall_ms();
    s->started_mono_ms = vap_now_ms();
    s->sample_rate = o->sample_rate ? o->sample_rate : 16000;
    s->next_turn = 1;
    vc.start_ms = 100;
    vc.barge_in_ms = (int)w->cfg.barge_in_ms;
    vc.end_silence_ms = rt->end_silence_ms;
    vc.pre_roll_ms = 300;
    rv = parse_codec(o->codec, &s->codec);
    if (rv == 0)
        rv = audio_decoder_new(s->codec, s->sample_rate, &s->dec);
    if (rv == 0)
        rv = audio_encoder_new(s->codec, s->sample_rate, &s->enc);
    if (rv == 0)
        rv = vad_new(&vc, &s->vad);
    if (rv == 0)
        rv = echo_filter_new(&s->echo);
    if (rv == 0)
        rv = stt_stream_open(rt->stt, &s->stt);
    if (rv == 0) {
        s->dialog = dialog_session_new(rt->dialog);
        if (!s->dialog)
            rv = VAP_ENOMEM;
    }
    if (rv != 0) {
        session_free(s);
        return rv;
    }
    *out = s;
    return 0;
}

static void opened(struct voice_worker *w, struct voice_peer *p, uint64_t conn_id, const char *id)
{
    Vap__LinkFrame f = VAP__LINK_FRAME__INIT;
    f.kind = VAP__LINK_FRAME__KIND__OPENED;
    f.conn_id = conn_id;
    f.session_id = (char *)id;
    voice_link_send(w, p, &f);
}

static void resume(struct voice_worker *w, struct voice_peer *p, const Vap__LinkFrame *f)
{
    const Vap__SessionOpen *o = f->open;
    struct voice_session *s;
    pthread_mutex_lock(&w->lock);
    s = find_locked(w, o->resume_session_id);
    if (!s || atomic_load(&s->ended) || strcmp(s->token_jti, o->token_jti) != 0 ||
        strcmp(s->rt->agent->id, o->agent_type) != 0) {
        pthread_mutex_unlock(&w->lock);
        refuse(w, p, f->conn_id, 4404, "No such session to resume (ended or expired)");
        return;
    }
    s->peer = p;
    s->conn_id = f->conn_id;
    s->attached = true;
    pthread_mutex_unlock(&w->lock);
    opened(w, p, f->conn_id, s->id);
    vap_info(o->request_id, "session resumed id=%s", s->id);
    session_send_event(s, ev_session_started(s, true));
}

/* A new session is built on its own thread: creating a recogniser can take a few hundred
 * milliseconds, and the link thread must never keep other sessions' frames waiting. */
struct opener {
    struct voice_worker *w;
    struct voice_peer *p;
    Vap__LinkFrame *f; /* unpacked copy, owned */
};

static void open_new(struct voice_worker *w, struct voice_peer *p, const Vap__LinkFrame *f);

static void *opener_main(void *arg)
{
    struct opener *op = arg;
    open_new(op->w, op->p, op->f);
    vap__link_frame__free_unpacked(op->f, NULL);
    atomic_fetch_sub(&op->w->opening, 1);
    free(op);
    return NULL;
}

void voice_session_open(struct voice_worker *w, struct voice_peer *p, const Vap__LinkFrame *f)
{
    struct opener *op;
    uint8_t *buf;
    size_t len;
    pthread_t t;

    if (!f->open) {
        refuse(w, p, f->conn_id, 1008, "open without session parameters");
        return;
    }
    if (f->open->resume_session_id[0]) {
        resume(w, p, f);
        return;
    }
    len = vap__link_frame__get_packed_size(f);
    buf = malloc(len ? len : 1);
    op = calloc(1, sizeof(*op));
    if (buf && op) {
        vap__link_frame__pack(f, buf);
        op->f = vap__link_frame__unpack(NULL, len, buf);
    }
    free(buf);
    if (!op || !op->f) {
        free(op);
        refuse(w, p, f->conn_id, 1013, "Voice worker out of memory; try again");
        return;
    }
    op->w = w;
    op->p = p;
    atomic_fetch_add(&w->opening, 1);
    if (pthread_create(&t, NULL, opener_main, op) != 0) {
        atomic_fetch_sub(&w->opening, 1);
        vap__link_frame__free_unpacked(op->f, NULL);
        free(op);
        refuse(w, p, f->conn_id, 1013, "Voice worker is busy; try again");
        return;
    }
    pthread_detach(t);
}

static void open_new(struct voice_worker *w, struct voice_peer *p, const Vap__LinkFrame *f)
{
    const Vap__SessionOpen *o = f->open;
    struct voice_agent_rt *rt;
    struct voice_session *s = NULL;
    Vap__SessionRecord rec;
    int rv;

    rt = voice_agent_rt_find(w, o->agent_type);
    if (!rt) {
        refuse(w, p, f->conn_id, 4404, "Unknown agent on this worker");
        return;
    }
    if (atomic_load(&w->draining) ||
        voice_sessions_active(w) + atomic_load(&w->opening) > w->cfg.capacity) {
        refuse(w, p, f->conn_id, 1013, "Voice worker is full or draining; try again");
        return;
    }
    rv = session_build(w, rt, o, &s);
    if (rv != 0) {
        refuse(w, p, f->conn_id, rv == VAP_EINVAL ? 1008 : 1013,
               rv == VAP_EINVAL ? "Unsupported codec or sample rate"
                                : "Voice worker has no free recogniser; try again");
        return;
    }
    s->peer = p;
    s->conn_id = f->conn_id;
    s->attached = true;
    pthread_mutex_lock(&w->lock);
    s->next = w->sessions;
    w->sessions = s;
    w->n_sessions++;
    pthread_mutex_unlock(&w->lock);
    opened(w, p, f->conn_id, s->id);
    vap_info(o->request_id, "session started id=%s agent=%s codec=%s rate=%d", s->id,
             rt->agent->id, o->codec[0] ? o->codec : "opus", s->sample_rate);
    session_record(s, &rec, false);
    voice_report(w, &rec);
    session_send_event(s, ev_session_started(s, false));
    pthread_mutex_lock(&w->lock); /* the reaper reads the *_started flags under it */
    s->reply_started = pthread_create(&s->reply_thread, NULL, session_reply_main, s) == 0;
    s->input_started =
        s->reply_started && pthread_create(&s->input_thread, NULL, session_input_main, s) == 0;
    pthread_mutex_unlock(&w->lock);
    if (!s->reply_started)
        atomic_store(&s->reply_exited, 1);
    if (!s->input_started) {
        atomic_store(&s->input_exited, 1);
        session_end(s, "internal_error", 1011);
    }
}

void voice_session_deliver(struct voice_worker *w, struct voice_peer *p, Vap__LinkFrame *f)
{
    struct voice_session *s;
    struct session_item *it;
    size_t len;
    const void *src;

    if (f->kind == VAP__LINK_FRAME__KIND__AUDIO) {
        len = f->audio.len;
        src = f->audio.data;
    } else if (f->kind == VAP__LINK_FRAME__KIND__EVENT) {
        len = strlen(f->event) + 1;
        src = f->event;
    } else if (f->kind == VAP__LINK_FRAME__KIND__DETACH ||
               f->kind == VAP__LINK_FRAME__KIND__CLOSE) {
        len = 0;
        src = NULL;
    } else {
        return;
    }
    pthread_mutex_lock(&w->lock);
    s = find_locked(w, f->session_id);
    if (!s || s->peer != p || s->conn_id != f->conn_id) {
        pthread_mutex_unlock(&w->lock);
        return; /* a frame from a connection that no longer owns the session */
    }
    if (f->kind == VAP__LINK_FRAME__KIND__DETACH) {
        s->attached = false;
        s->detached_at_ms = vap_now_ms();
        pthread_mutex_unlock(&w->lock);
        vap_info(s->request_id, "session detached id=%s (resumable)", s->id);
        return;
    }
    if (f->kind == VAP__LINK_FRAME__KIND__CLOSE) {
        /* The gateway dropped the client (slow consumer, oversize frame): end it. */
        s->attached = false;
        pthread_mutex_unlock(&w->lock);
        session_end(s, f->reason[0] ? f->reason : "closed_by_gateway", 1008);
        return;
    }
    it = malloc(sizeof(*it) + len);
    if (it) {
        it->next = NULL;
        it->kind = f->kind;
        it->len = len;
        if (len)
            memcpy(it->data, src, len);
        pthread_mutex_lock(&s->qlock);
        if (s->qlen >= SESSION_QUEUE_MAX) {
            free(it); /* the session cannot keep up: drop, never block the link or grow */
        } else {
            if (s->qtail)
                s->qtail->next = it;
            else
                s->qhead = it;
            s->qtail = it;
            s->qlen++;
            pthread_cond_signal(&s->qcond);
        }
        pthread_mutex_unlock(&s->qlock);
    }
    pthread_mutex_unlock(&w->lock);
}

void voice_sessions_peer_gone(struct voice_worker *w, struct voice_peer *p)
{
    int64_t now = vap_now_ms();
    pthread_mutex_lock(&w->lock);
    for (struct voice_session *s = w->sessions; s; s = s->next) {
        if (s->attached && s->peer == p) {
            s->attached = false;
            s->detached_at_ms = now;
        }
    }
    pthread_mutex_unlock(&w->lock);
}

void voice_sessions_expire(struct voice_worker *w)
{
    int64_t now = vap_now_ms();
    struct voice_session **pp, *expired[64];
    int n_expired = 0;

    pthread_mutex_lock(&w->lock);
    for (struct voice_session *s = w->sessions; s; s = s->next)
        if (!s->attached && !atomic_load(&s->ended) &&
            now - s->detached_at_ms > w->cfg.resume_window_ms && n_expired < 64)
            expired[n_expired++] = s;
    pthread_mutex_unlock(&w->lock);
    for (int i = 0; i < n_expired; i++)
        session_end(expired[i], "disconnected", 1001);

    /* Reap sessions whose threads have finished. */
    pthread_mutex_lock(&w->lock);
    pp = &w->sessions;
    while (*pp) {
        struct voice_session *s = *pp;
        if (atomic_load(&s->ended) && atomic_load(&s->end_done) &&
            atomic_load(&s->input_exited) &&
            atomic_load(&s->reply_exited)) {
            *pp = s->next;
            w->n_sessions--;
            pthread_mutex_unlock(&w->lock);
            if (s->input_started)
                pthread_join(s->input_thread, NULL);
            if (s->reply_started)
                pthread_join(s->reply_thread, NULL);
            session_free(s);
            pthread_mutex_lock(&w->lock);
            pp = &w->sessions;
            continue;
        }
        pp = &s->next;
    }
    pthread_mutex_unlock(&w->lock);
}

void voice_sessions_end_all(struct voice_worker *w, const char *reason)
{
    for (;;) {
        struct voice_session *victim = NULL;
        pthread_mutex_lock(&w->lock);
        for (struct voice_session *s = w->sessions; s; s = s->next)
            if (!atomic_load(&s->ended)) {
                victim = s;
                break;
            }
        pthread_mutex_unlock(&w->lock);
        if (!victim)
            break;
        session_end(victim, reason, 1001);
    }
}

int voice_sessions_active(struct voice_worker *w)
{
    int n = 0;
    pthread_mutex_lock(&w->lock);
    for (struct voice_session *s = w->sessions; s; s = s->next)
        if (!atomic_load(&s->ended))
            n++;
    pthread_mutex_unlock(&w->lock);
    return n;
}
