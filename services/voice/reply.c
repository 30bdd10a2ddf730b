/*
 * A session's reply thread: the agent's side. It speaks the cached greeting, then for
 * each visitor turn asks the dialog engine for a reply, streams the text to the client
 * as it comes (agent.text), and hands each complete sentence to TTS at once, so the
 * first sentence is heard while the rest is still being written. A new turn or a
 * barge-in cancels the reply in flight (LLM stream and TTS stop); the history then
 * keeps only what the visitor heard. A failed reply (timeout, 429, 5xx, broken stream)
 * becomes an `error` event and a spoken apology: the session stays alive.
 */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "session.h"

#define APOLOGY "I'm sorry, I'm having trouble answering right now. Could you say that again?"
#define REPLY_TEXT_MAX 8192

struct turn_ctx {
    struct voice_session *s;
    int turn;
    int64_t started_ms;
    char text[REPLY_TEXT_MAX];
    size_t len;    /* text received */
    size_t spoken; /* text handed to TTS */
    size_t samples;
    bool first_piece;
    bool first_audio;
    bool cut;      /* the playout refused our audio: interrupted */
};

static int tts_sink(void *user, const int16_t *pcm, size_t n)
{
    struct turn_ctx *t = user;
    struct voice_session *s = t->s;
    if (atomic_load(&s->cancel) || atomic_load(&s->ended))
        return 1;
    if (!t->first_audio) {
        t->first_audio = true;
        pthread_mutex_lock(&s->play_lock);
        if (s->play_turn == t->turn)
            s->tts_first_audio_ms = vap_now_ms() - t->started_ms;
        pthread_mutex_unlock(&s->play_lock);
    }
    if (!playout_append(s, t->turn, pcm, n)) {
        t->cut = true;
        return 1;
    }
    t->samples += n;
    return 0;
}

static int speak(struct turn_ctx *t, const char *sentence)
{
    size_t start = t->samples;
    int rv = tts_speak(t->s->rt->tts, sentence, tts_sink, t);
    if (rv != 0 && rv != VAP_ECANCELED)
        voice_metrics_error(VOICE_STAGE_TTS);
    if (t->samples > start)
        playout_mark(t->s, t->turn, sentence, start, t->samples);
    return rv;
}

/* Speaks every complete sentence not yet spoken (all the rest if final). */
static int speak_ready(struct turn_ctx *t, bool final)
{
    while (t->spoken < t->len && !t->cut) {
        char sentence[REPLY_TEXT_MAX];
        size_t n = tts_sentence_end(t->text + t->spoken, t->len - t->spoken, final);
        int rv;
        if (n == 0)
            break;
        memcpy(sentence, t->text + t->spoken, n);
        sentence[n] = '\0';
        t->spoken += n;
        rv = speak(t, sentence);
        if (rv == VAP_ECANCELED)
            return 1;
    }
    return t->cut || atomic_load(&t->s->cancel) ? 1 : 0;
}

static int on_piece(void *user, const char *piece, size_t len)
{
    struct turn_ctx *t = user;
    struct voice_session *s = t->s;
    char buf[1024];
    if (atomic_load(&s->cancel) || atomic_load(&s->ended))
        return 1;
    if (!t->first_piece) {
        t->first_piece = true;
        pthread_mutex_lock(&s->play_lock);
        if (s->play_turn == t->turn)
            s->llm_first_token_ms = vap_now_ms() - t->started_ms;
        pthread_mutex_unlock(&s->play_lock);
    }
    if (len > REPLY_TEXT_MAX - 1 - t->len)
        len = REPLY_TEXT_MAX - 1 - t->len;
    memcpy(t->text + t->len, piece, len);
    t->len += len;
    t->text[t->len] = '\0';
    if (len) {
        size_t n = len < sizeof(buf) - 1 ? len : sizeof(buf) - 1;
        memcpy(buf, piece, n);
        buf[n] = '\0';
        session_send_event(s, ev_agent_text(t->turn, buf, false));
    }
    return speak_ready(t, false);
}

static void apply_truncation(struct voice_session *s)
{
    char *heard = NULL;
    bool pending;
    pthread_mutex_lock(&s->play_lock);
    pending = s->truncate_pending;
    heard = s->heard_truncate;
    s->truncate_pending = false;
    s->heard_truncate = NULL;
    pthread_mutex_unlock(&s->play_lock);
    if (pending)
        dialog_truncate_last(s->dialog, heard ? heard : "");
    free(heard);
}

static void run_turn(struct voice_session *s, struct reply_job *job)
{
    struct turn_ctx *t = calloc(1, sizeof(*t));
    struct dialog_result res;
    int rv;

    if (!t)
        return;
    memset(&res, 0, sizeof(res));
    t->s = s;
    t->turn = job->turn_id;
    t->started_ms = vap_now_ms();
    playout_begin(s, job->turn_id);
    pthread_mutex_lock(&s->play_lock);
    s->voice_end_ms = job->voice_end_ms;
    s->eot_ms = job->eot_ms;
    s->stt_ms = job->stt_ms;
    pthread_mutex_unlock(&s->play_lock);

    rv = dialog_reply(s->dialog, job->text, on_piece, t, &s->cancel, &res);
    atomic_fetch_add(&s->tokens_in, res.tokens_in);
    atomic_fetch_add(&s->tokens_out, res.tokens_out);
    if (rv == 0 && !t->cut && !atomic_load(&s->cancel))
        speak_ready(t, true);
    if (rv != 0 && rv != VAP_ECANCELED && !atomic_load(&s->cancel)) {
        vap_warn(s->request_id, "reply failed session=%s turn=%d engine=%s error=\"%s\"", s->id,
                 t->turn, dialog_engine_name(s->rt->dialog), res.error[0] ? res.error : vap_strerror(rv));
        voice_metrics_error(VOICE_STAGE_LLM);
        session_send_error(s, rv == VAP_ETIMEDOUT ? "llm_timeout" : "llm_error",
                           res.error[0] ? res.error : "The language model did not answer");
        /* Speak what was said so far, then the apology. */
        speak_ready(t, true);
        if (!t->cut) {
            size_t room = REPLY_TEXT_MAX - 1 - t->len;
            const char *sep = t->len ? " " : "";
            if (strlen(APOLOGY) + 1 < room) {
                strcat(t->text, sep);
                strcat(t->text, APOLOGY);
                t->len = strlen(t->text);
            }
            session_send_event(s, ev_agent_text(t->turn, APOLOGY, false));
            speak(t, APOLOGY);
        }
    }
    session_send_event(s, ev_agent_text(t->turn, t->text, true));
    playout_finish(s, t->turn);
    apply_truncation(s);
    free(t);
}

void session_submit_turn(struct voice_session *s, int turn_id, const char *text,
                         int64_t voice_end_ms, int64_t eot_ms, int64_t stt_ms)
{
    char *copy = strdup(text);
    if (!copy)
        return;
    if (playout_active(s))
        session_interrupt(s);
    pthread_mutex_lock(&s->rlock);
    atomic_store(&s->cancel, 1); /* under rlock: the reply thread cannot clear it in between */
    free(s->job.text);
    s->job.text = copy;
    s->job.turn_id = turn_id;
    s->job.voice_end_ms = voice_end_ms;
    s->job.eot_ms = eot_ms;
    s->job.stt_ms = stt_ms;
    pthread_cond_signal(&s->rcond);
    pthread_mutex_unlock(&s->rlock);
}

void session_interrupt(struct voice_session *s)
{
    int turn = -1;
    char *heard = NULL;
    int64_t played;

    atomic_store(&s->cancel, 1);
    played = playout_cut(s, &turn, &heard);
    if (played < 0)
        return;
    session_send_event(s, ev_interrupted(turn, played));
    session_send_event(s, ev_turn("agent.audio.end", turn));
    pthread_mutex_lock(&s->play_lock);
    free(s->heard_truncate);
    s->heard_truncate = heard;
    s->truncate_pending = true;
    pthread_mutex_unlock(&s->play_lock);
    vap_info(s->request_id, "barge-in session=%s turn=%d played_ms=%lld", s->id, turn,
             (long long)played);
}

static void speak_greeting(struct voice_session *s)
{
    const struct voice_agent_rt *rt = s->rt;
    const char *text = rt->agent->startup_message;
    if (!text || !text[0])
        return;
    dialog_add_greeting(s->dialog, text);
    playout_begin(s, 0);
    pthread_mutex_lock(&s->play_lock);
    s->voice_end_ms = 0;
    pthread_mutex_unlock(&s->play_lock);
    session_send_event(s, ev_agent_text(0, text, true));
    if (rt->greeting_samples && playout_append(s, 0, rt->greeting, rt->greeting_samples))
        playout_mark(s, 0, text, 0, rt->greeting_samples);
    playout_finish(s, 0);
}

void *session_reply_main(void *arg)
{
    struct voice_session *s = arg;
    speak_greeting(s);
    while (!atomic_load(&s->ended)) {
        struct reply_job job;
        pthread_mutex_lock(&s->rlock);
        while (!s->job.text && !atomic_load(&s->ended))
            pthread_cond_wait(&s->rcond, &s->rlock);
        job = s->job;
        s->job.text = NULL;
        if (job.text)
            atomic_store(&s->cancel, 0); /* a newer turn clears the previous cancel */
        pthread_mutex_unlock(&s->rlock);
        if (!job.text)
            continue;
        apply_truncation(s);
        if (!atomic_load(&s->ended))
            run_turn(s, &job);
        free(job.text);
    }
    atomic_store(&s->reply_exited, 1);
    return NULL;
}
