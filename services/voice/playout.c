/*
 * Real-time pacing of the agent's audio. Reply threads append 16 kHz PCM as TTS makes
 * it; one playout thread for the whole worker wakes every 20 ms and sends each
 * session's next frame (encoded for the client), so audio leaves at the speed it is
 * played, never faster: barge-in can stop it within a frame, and `played_ms` means what
 * it says. A small lead (PLAYOUT_LEAD_FRAMES) is sent at the start of each reply to
 * fill the client's jitter buffer. The first frame of a reply also yields the turn's
 * `metrics` event (voice-to-voice measured at the moment it is sent). The same thread
 * expires detached sessions and reaps ended ones.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "session.h"

#define PLAYOUT_LEAD_FRAMES 3
#define PLAYOUT_MAX_SESSIONS 1024
#define PLAYOUT_MAX_SAMPLES (AUDIO_RATE * 600) /* a reply longer than 10 min is cut */

void playout_begin(struct voice_session *s, int turn)
{
    pthread_mutex_lock(&s->play_lock);
    s->pcm_len = s->pcm_pos = 0;
    for (size_t i = 0; i < s->n_marks; i++)
        free(s->marks[i].text);
    s->n_marks = 0;
    s->play_turn = turn;
    s->play_started = false;
    s->play_complete = false;
    s->play_paused = false;
    s->client_played_ms = -1; /* no playback report yet */
    s->llm_first_token_ms = s->tts_first_audio_ms = 0;
    pthread_mutex_unlock(&s->play_lock);
}

bool playout_append(struct voice_session *s, int turn, const int16_t *pcm, size_t n)
{
    bool ok = true;
    pthread_mutex_lock(&s->play_lock);
    if (s->play_turn != turn) {
        ok = false;
    } else if (s->pcm_len + n > PLAYOUT_MAX_SAMPLES) {
        ok = false;
    } else {
        if (s->pcm_len + n > s->pcm_cap) {
            size_t cap = s->pcm_cap ? s->pcm_cap * 2 : AUDIO_RATE * 4;
            int16_t *p;
            while (cap < s->pcm_len + n)
                cap *= 2;
            p = realloc(s->pcm, cap * sizeof(int16_t));
            if (!p) {
                pthread_mutex_unlock(&s->play_lock);
                return false;
            }
            s->pcm = p;
            s->pcm_cap = cap;
        }
        memcpy(s->pcm + s->pcm_len, pcm, n * sizeof(int16_t));
        s->pcm_len += n;
    }
    pthread_mutex_unlock(&s->play_lock);
    return ok;
}

void playout_mark(struct voice_session *s, int turn, const char *text, size_t start, size_t end)
{
    pthread_mutex_lock(&s->play_lock);
    if (s->play_turn == turn) {
        if (s->n_marks == s->cap_marks) {
            size_t cap = s->cap_marks ? s->cap_marks * 2 : 8;
            struct play_mark *m = realloc(s->marks, cap * sizeof(*m));
            if (m) {
                s->marks = m;
                s->cap_marks = cap;
            }
        }
        if (s->n_marks < s->cap_marks) {
            char *copy = strdup(text);
            if (copy) {
                s->marks[s->n_marks].start = start;
                s->marks[s->n_marks].end = end;
                s->marks[s->n_marks].text = copy;
                s->n_marks++;
            }
        }
    }
    pthread_mutex_unlock(&s->play_lock);
}

void playout_finish(struct voice_session *s, int turn)
{
    pthread_mutex_lock(&s->play_lock);
    if (s->play_turn == turn)
        s->play_complete = true;
    pthread_mutex_unlock(&s->play_lock);
}

bool playout_active(struct voice_session *s)
{
    bool active;
    pthread_mutex_lock(&s->play_lock);
    active = s->play_turn >= 0 && s->pcm_pos < s->pcm_len;
    pthread_mutex_unlock(&s->play_lock);
    return active;
}

size_t playout_length(struct voice_session *s)
{
    size_t n;
    pthread_mutex_lock(&s->play_lock);
    n = s->pcm_len;
    pthread_mutex_unlock(&s->play_lock);
    return n;
}

void playout_pause(struct voice_session *s, bool paused)
{
    pthread_mutex_lock(&s->play_lock);
    s->play_paused = paused;
    pthread_mutex_unlock(&s->play_lock);
}

/* The text heard when `played` samples of the reply were played: whole sentences,
 * then the share of words of the sentence cut off. Under play_lock. */
static char *heard_text(struct voice_session *s, size_t played)
{
    size_t cap = 1, len = 0;
    char *out;
    for (size_t i = 0; i < s->n_marks; i++)
        cap += strlen(s->marks[i].text) + 1;
    out = malloc(cap);
    if (!out)
        return NULL;
    out[0] = '\0';
    for (size_t i = 0; i < s->n_marks; i++) {
        const struct play_mark *m = &s->marks[i];
        const char *t = m->text;
        size_t take;
        if (played >= m->end) {
            take = strlen(t);
        } else if (played > m->start) {
            size_t words = 0, want, seen = 0;
            for (const char *p = t; *p; p++)
                if (*p != ' ' && (p == t || p[-1] == ' '))
                    words++;
            want = words * (played - m->start) / (m->end - m->start);
            take = 0;
            for (const char *p = t; *p && want > 0; p++) {
                if (*p != ' ' && (p == t || p[-1] == ' ') && ++seen > want)
                    break;
                take = (size_t)(p - t) + 1;
            }
            while (take && t[take - 1] == ' ')
                take--;
        } else {
            break;
        }
        if (len && take)
            out[len++] = ' ';
        memcpy(out + len, t, take);
        len += take;
        out[len] = '\0';
        if (played < m->end)
            break;
    }
    return out;
}

int64_t playout_cut(struct voice_session *s, int *turn, char **heard)
{
    int64_t played_ms = -1;
    pthread_mutex_lock(&s->play_lock);
    if (s->play_turn >= 0 && (s->play_started || s->pcm_len > 0)) {
        size_t played = s->pcm_pos;
        if (s->client_played_ms >= 0 &&
            (size_t)s->client_played_ms * (AUDIO_RATE / 1000) < played)
            played = (size_t)s->client_played_ms * (AUDIO_RATE / 1000);
        played_ms = (int64_t)(played / (AUDIO_RATE / 1000));
        *turn = s->play_turn;
        *heard = heard_text(s, played);
        s->play_turn = -1;
        s->pcm_len = s->pcm_pos = 0;
        s->play_paused = false;
    }
    pthread_mutex_unlock(&s->play_lock);
    return played_ms;
}

/* What the playout thread does for one session in one tick, decided under the lock. */
struct tick_out {
    int turn;
    bool start, end, metrics;
    int frames;
    uint8_t data[PLAYOUT_LEAD_FRAMES + 1][2048];
    int lens[PLAYOUT_LEAD_FRAMES + 1];
    int64_t eot_ms, stt_ms, llm_ms, tts_ms, v2v_ms;
};

static void tick_session(struct voice_session *s, struct tick_out *o)
{
    int want;
    memset(o, 0, offsetof(struct tick_out, data));
    pthread_mutex_lock(&s->play_lock);
    o->turn = s->play_turn;
    if (s->play_turn < 0 || s->play_paused) {
        pthread_mutex_unlock(&s->play_lock);
        return;
    }
    want = s->play_started ? 1 : PLAYOUT_LEAD_FRAMES;
    while (o->frames < want) {
        int16_t frame[AUDIO_FRAME_SAMPLES];
        size_t avail = s->pcm_len - s->pcm_pos;
        int n;
        if (avail < AUDIO_FRAME_SAMPLES && !(s->play_complete && avail > 0))
            break;
        memset(frame, 0, sizeof(frame));
        memcpy(frame, s->pcm + s->pcm_pos,
               (avail < AUDIO_FRAME_SAMPLES ? avail : AUDIO_FRAME_SAMPLES) * sizeof(int16_t));
        s->pcm_pos += avail < AUDIO_FRAME_SAMPLES ? avail : AUDIO_FRAME_SAMPLES;
        n = audio_encode(s->enc, frame, o->data[o->frames], sizeof(o->data[0]));
        echo_filter_playback(s->echo, frame);
        if (n < 0)
            continue;
        o->lens[o->frames++] = n;
        if (!s->play_started) {
            s->play_started = true;
            o->start = true;
            if (s->voice_end_ms > 0) {
                o->metrics = true;
                o->eot_ms = s->eot_ms;
                o->stt_ms = s->stt_ms;
                o->llm_ms = s->llm_first_token_ms;
                o->tts_ms = s->tts_first_audio_ms;
                o->v2v_ms = vap_now_ms() - s->voice_end_ms;
            }
        }
    }
    if (s->play_complete && s->pcm_pos >= s->pcm_len) {
        o->end = s->play_started;
        s->play_turn = -1;
    }
    pthread_mutex_unlock(&s->play_lock);
}

static void tick(struct voice_worker *w)
{
    static struct voice_session *list[PLAYOUT_MAX_SESSIONS];
    static struct tick_out out;
    int n = 0;
    pthread_mutex_lock(&w->lock);
    for (struct voice_session *s = w->sessions; s && n < PLAYOUT_MAX_SESSIONS; s = s->next)
        if (!atomic_load(&s->ended))
            list[n++] = s;
    pthread_mutex_unlock(&w->lock);
    /* Sessions are freed only by this thread (voice_sessions_expire), so the pointers
       stay valid for the tick. */
    for (int i = 0; i < n; i++) {
        struct voice_session *s = list[i];
        tick_session(s, &out);
        if (out.start)
            session_send_event(s, ev_turn("agent.audio.start", out.turn));
        for (int f = 0; f < out.frames; f++)
            session_send_audio(s, out.data[f], (size_t)out.lens[f]);
        if (out.frames)
            atomic_fetch_add(&s->audio_out_ms, (long long)out.frames * AUDIO_FRAME_MS);
        if (out.metrics) {
            session_send_event(s, ev_metrics(out.turn, out.eot_ms, out.stt_ms, out.llm_ms,
                                             out.tts_ms, out.v2v_ms));
            voice_metrics_turn(out.eot_ms, out.stt_ms, out.llm_ms, out.tts_ms, out.v2v_ms);
        }
        if (out.end)
            session_send_event(s, ev_turn("agent.audio.end", out.turn));
    }
}

static void *playout_main(void *arg)
{
    struct voice_worker *w = arg;
    struct timespec next;
    int64_t last_expire = 0;
    clock_gettime(CLOCK_MONOTONIC, &next);
    while (!atomic_load(&w->stopping)) {
        int64_t now;
        next.tv_nsec += AUDIO_FRAME_MS * 1000000L;
        if (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
            ;
        tick(w);
        now = vap_now_ms();
        if (now - last_expire >= 200) {
            last_expire = now;
            voice_sessions_expire(w);
        }
        /* Fell behind (machine overloaded): skip ahead rather than burst. */
        {
            struct timespec cur;
            clock_gettime(CLOCK_MONOTONIC, &cur);
            if ((cur.tv_sec - next.tv_sec) * 1000 + (cur.tv_nsec - next.tv_nsec) / 1000000 >
                10 * AUDIO_FRAME_MS)
                next = cur;
        }
    }
    return NULL;
}

int voice_playout_start(struct voice_worker *w)
{
    return pthread_create(&w->playout_thread, NULL, playout_main, w) == 0 ? 0 : -1;
}

void voice_playout_stop(struct voice_worker *w)
{
    int64_t until = vap_now_ms() + 5000;
    pthread_join(w->playout_thread, NULL);
    /* Reap every ended session once its threads have noticed. */
    for (;;) {
        int left;
        voice_sessions_expire(w);
        pthread_mutex_lock(&w->lock);
        left = w->n_sessions;
        pthread_mutex_unlock(&w->lock);
        if (!left || vap_now_ms() > until)
            break;
        {
            struct timespec ts = {0, 10000000L};
            nanosleep(&ts, NULL);
        }
    }
}
