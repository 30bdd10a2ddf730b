/*
 * One session of the native voice protocol (API.md, "Voice stream"), as a visitor with
 * a microphone and a loudspeaker would run it: wait for the agent's greeting to finish,
 * say the WAV in real time, keep the microphone open (silence) until the reply has been
 * heard, then type the --text turn if there is one, then `end` and wait for
 * session.ended and its totals.
 *
 * Two threads touch a session: civetweb's reader (on_message/on_closed: events and the
 * agent's audio) and the session's own thread (run: one microphone frame per 20 ms tick,
 * and every decision about what to do next). Everything they share is under n->lock;
 * the session thread never sends while holding it.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "talk.h"

#define CONNECT_WAIT_MS 15000
#define NO_GREETING_MS 3000   /* no greeting audio this long after start: the agent has none */
#define NO_TURN_MS 6000       /* after the WAV: this long without a final transcript */
#define END_WAIT_MS 5000      /* for session.ended after `end` */
#define PLAYBACK_EVERY_MS 200 /* playback reports while the agent's audio plays */

enum phase {
    PH_CONNECTING,
    PH_GREETING,   /* listening to the startup message */
    PH_SPEAKING,   /* the WAV goes out */
    PH_AWAIT_WAV,  /* silence until the spoken turn's reply has played */
    PH_TEXT,       /* send input_text */
    PH_AWAIT_TEXT, /* until the typed turn's reply has played */
    PH_ENDING,     /* `end` sent, waiting for session.ended */
    PH_DONE
};

struct native {
    struct talk_session *s;
    struct talk_result *r;
    const struct talk_options *o;
    struct audio_decoder *dec;
    pthread_mutex_t lock;
    pthread_cond_t cond;

    /* under lock */
    enum phase phase;
    bool started, ended, closed;
    int close_code;
    char close_reason[128];
    int next_turn;       /* the turn id the server gives the next turn */
    int last_final_turn; /* highest transcript.final */
    int last_end_turn;   /* highest agent.audio.end */
    bool greeting_heard; /* agent.audio.start of turn 0 seen */
    bool in_speech;      /* between speech.started and speech.stopped */
    struct talk_player player;
    int play_turn;            /* the reply whose audio is playing, -1 */
    bool play_turn_ended;     /* its agent.audio.end arrived */
    int64_t play_reported_ms; /* last played_ms sent */
    int64_t play_report_at;
    bool play_final_sent;
    int measure_turn;    /* first-audio latency: a reply to this turn or later, -1 when off */
    int64_t measure_ref; /* ... counted from here (end of speech, or the text sent) */
    bool measure_armed;  /* its agent.audio.start arrived; the next frame stops the clock */
};

/* ---- from the server (civetweb's thread) -------------------------------------------- */

static int int_field(json_t *ev, const char *name, int dflt)
{
    json_t *v = json_object_get(ev, name);
    return json_is_integer(v) ? (int)json_integer_value(v) : dflt;
}

static const char *str_field(json_t *ev, const char *name)
{
    const char *v = json_string_value(json_object_get(ev, name));
    return v ? v : "";
}

static void on_session_ended(struct native *n, json_t *ev)
{
    json_t *t = json_object_get(ev, "totals");
    const char *reason = str_field(ev, "reason");
    n->ended = true;
    talk_say(&n->s->who,
             "session ended: %s (turns %d, audio in %.1f s, out %.1f s, llm tokens %d in / "
             "%d out, %.1f s)",
             reason, int_field(t, "turns", 0),
             json_number_value(json_object_get(t, "audio_in_seconds")),
             json_number_value(json_object_get(t, "audio_out_seconds")),
             int_field(t, "llm_tokens_in", 0), int_field(t, "llm_tokens_out", 0),
             json_number_value(json_object_get(t, "duration_seconds")));
    if (strcmp(reason, "client_ended") != 0)
        talk_fail(n->r, TALK_FAILED, "the server ended the session: %s", reason);
}

static void on_metrics(struct native *n, json_t *ev)
{
    int turn = int_field(ev, "turn_id", -1);
    int v2v = int_field(ev, "voice_to_voice_ms", -1);
    talk_say(&n->s->who, "metrics turn=%d eot=%d stt=%d llm=%d tts=%d v2v=%dms", turn,
             int_field(ev, "end_of_turn_ms", -1), int_field(ev, "stt_ms", -1),
             int_field(ev, "llm_first_token_ms", -1), int_field(ev, "tts_first_audio_ms", -1), v2v);
    if (turn >= 1 && v2v >= 0 && n->r->n_v2v < TALK_MAX_TURNS)
        n->r->v2v_ms[n->r->n_v2v++] = v2v;
}

static void on_event(struct native *n, json_t *ev)
{
    const char *type = str_field(ev, "type");
    const struct talk_who *who = &n->s->who;
    int turn = int_field(ev, "turn_id", -1);
    int64_t now = vap_now_ms();

    if (strcmp(type, "session.started") == 0) {
        json_t *a = json_object_get(ev, "audio");
        n->started = true;
        talk_say(who, "session %s started: agent %s, %s at %d Hz%s", str_field(ev, "session_id"),
                 str_field(ev, "agent_type"), str_field(a, "codec"), int_field(a, "sample_rate", 0),
                 json_is_true(json_object_get(ev, "resumed")) ? " (resumed)" : "");
    } else if (strcmp(type, "speech.started") == 0) {
        n->in_speech = true;
        talk_say(who, "(speech started)");
    } else if (strcmp(type, "speech.stopped") == 0) {
        n->in_speech = false;
        talk_say(who, "(speech stopped)");
    } else if (strcmp(type, "transcript.partial") == 0) {
        talk_say(who, "you (partial): %s", str_field(ev, "text"));
    } else if (strcmp(type, "transcript.final") == 0) {
        if (turn > n->last_final_turn)
            n->last_final_turn = turn;
        if (turn >= n->next_turn)
            n->next_turn = turn + 1;
        talk_say(who, "you: %s", str_field(ev, "text"));
    } else if (strcmp(type, "agent.text") == 0) {
        if (json_is_true(json_object_get(ev, "final")))
            talk_say(who, "agent: %s", str_field(ev, "text"));
    } else if (strcmp(type, "agent.audio.start") == 0) {
        if (turn == 0)
            n->greeting_heard = true;
        talk_player_begin(&n->player, now);
        n->play_turn = turn;
        n->play_turn_ended = false;
        n->play_reported_ms = 0;
        n->play_report_at = now;
        n->play_final_sent = false;
        if (n->measure_turn >= 0 && turn >= n->measure_turn)
            n->measure_armed = true;
    } else if (strcmp(type, "agent.audio.end") == 0) {
        if (turn > n->last_end_turn)
            n->last_end_turn = turn;
        if (turn == n->play_turn)
            n->play_turn_ended = true;
        if (turn >= 1)
            n->r->turns++;
        talk_say(who, "agent audio turn=%d: %.2f s", turn, (double)n->player.received_ms / 1000.0);
    } else if (strcmp(type, "agent.interrupted") == 0) {
        talk_say(who, "agent interrupted: turn=%d played_ms=%d", turn,
                 int_field(ev, "played_ms", -1));
    } else if (strcmp(type, "metrics") == 0) {
        on_metrics(n, ev);
    } else if (strcmp(type, "error") == 0) {
        talk_warn(who, "server error %s: %s", str_field(ev, "code"), str_field(ev, "message"));
    } else if (strcmp(type, "session.ended") == 0) {
        on_session_ended(n, ev);
    }
}

static void on_audio(struct native *n, const char *data, size_t len)
{
    int16_t pcm[TALK_RATE * 120 / 1000];
    int64_t now = vap_now_ms();
    int got = audio_decode(n->dec, (const uint8_t *)data, len, pcm, sizeof(pcm) / sizeof(pcm[0]));

    if (got < 0) {
        talk_warn(&n->s->who, "an agent audio frame did not decode (%s)", vap_strerror(got));
        return;
    }
    if (n->measure_armed) {
        int64_t ms = now - n->measure_ref;
        n->measure_armed = false;
        n->measure_turn = -1;
        if (n->r->n_first < TALK_MAX_TURNS)
            n->r->first_audio_ms[n->r->n_first++] = ms;
        talk_say(&n->s->who, "agent audio turn=%d: first frame %lld ms after you finished",
                 n->play_turn, (long long)ms);
    }
    talk_player_push(&n->player, now, got * 1000 / TALK_RATE);
    if (n->o->out_path && talk_pcm_append(&n->r->out, pcm, (size_t)got) == VAP_ENOMEM)
        talk_warn(&n->s->who, "out of memory keeping the agent's audio");
}

static void on_message(void *user, bool text, const char *data, size_t len)
{
    struct native *n = user;
    pthread_mutex_lock(&n->lock);
    if (text) {
        json_t *ev = json_loadb(data, len, 0, NULL);
        if (!json_is_object(ev)) {
            talk_warn(&n->s->who, "the server sent an event that is not a JSON object");
        } else {
            talk_say_event(&n->s->who, data, len);
            on_event(n, ev);
        }
        json_decref(ev);
    } else {
        on_audio(n, data, len);
    }
    pthread_cond_broadcast(&n->cond);
    pthread_mutex_unlock(&n->lock);
}

static void on_closed(void *user, int code, const char *reason)
{
    struct native *n = user;
    pthread_mutex_lock(&n->lock);
    n->closed = true;
    n->close_code = code;
    snprintf(n->close_reason, sizeof(n->close_reason), "%s", reason);
    n->r->close_code = code;
    if (!n->started) {
        talk_fail(n->r, TALK_REFUSED, "the voice stream was refused: close %d, %s%s%s%s", code,
                  talk_close_words(code), reason[0] ? " (server: \"" : "", reason,
                  reason[0] ? "\")" : "");
    } else if (!n->ended && n->phase < PH_ENDING) {
        talk_fail(n->r, TALK_FAILED, "the voice stream closed mid-session: close %d, %s%s%s%s",
                  code, talk_close_words(code), reason[0] ? " (server: \"" : "", reason,
                  reason[0] ? "\")" : "");
    }
    pthread_cond_broadcast(&n->cond);
    pthread_mutex_unlock(&n->lock);
}

/* ---- the session thread -------------------------------------------------------------- */

/* What the session thread sends after a tick's decisions (outside the lock). */
struct actions {
    char playback[128];
    char text[4200];
    bool end;
};

static void report_playback(struct native *n, int64_t now, struct actions *a)
{
    int64_t played;
    bool done;
    if (n->play_turn < 0 || n->play_final_sent)
        return;
    played = talk_player_played(&n->player, now);
    done = n->play_turn_ended && talk_player_unplayed(&n->player, now) == 0;
    if (!done && (now - n->play_report_at < PLAYBACK_EVERY_MS || played == n->play_reported_ms))
        return;
    snprintf(a->playback, sizeof(a->playback),
             "{\"type\":\"playback\",\"turn_id\":%d,\"played_ms\":%lld}", n->play_turn,
             (long long)played);
    n->play_reported_ms = played;
    n->play_report_at = now;
    n->play_final_sent = done;
}

/* The reply to turn `target` (or a later one) has been heard, plus a grace period. */
static bool reply_heard(struct native *n, int target, int64_t now)
{
    return n->last_end_turn >= target && talk_player_idle_ms(&n->player, now) >= TALK_GRACE_MS;
}

/* One tick's decisions. Returns the phase to be in next. */
static enum phase step(struct native *n, struct talk_mic *mic, int64_t now, int64_t *since,
                       int *target, struct actions *a)
{
    const struct talk_options *o = n->o;
    const struct talk_who *who = &n->s->who;

    if (talk_stop_requested && n->phase < PH_ENDING) {
        talk_fail(n->r, TALK_FAILED, "interrupted (Ctrl-C)");
        return PH_ENDING;
    }
    switch (n->phase) {
    case PH_GREETING:
        if ((!n->greeting_heard && now - *since > NO_GREETING_MS) || reply_heard(n, 0, now))
            return PH_SPEAKING;
        if (now - *since > (int64_t)o->timeout_s * 1000) {
            talk_warn(who, "the greeting did not finish within %d s; speaking anyway",
                      o->timeout_s);
            return PH_SPEAKING;
        }
        return PH_GREETING;
    case PH_SPEAKING:
        if (!n->s->speech)
            return PH_TEXT;
        if (!mic->pcm) {
            talk_mic_say(mic, n->s->speech);
            talk_say(who, "speaking %s (%.2f s)", o->wav_path,
                     (double)n->s->speech->pcm.n / TALK_RATE);
            return PH_SPEAKING;
        }
        if (mic->speech_end_at_ms && n->measure_turn < 0 && n->measure_ref == 0) {
            n->measure_turn = n->next_turn;
            n->measure_ref = mic->speech_end_at_ms;
        }
        if (talk_mic_speaking(mic))
            return PH_SPEAKING;
        *target = n->next_turn;
        return PH_AWAIT_WAV;
    case PH_AWAIT_WAV:
        if (now - *since > (int64_t)o->timeout_s * 1000) {
            talk_fail(n->r, TALK_FAILED, "no reply to the spoken turn within %d s", o->timeout_s);
            return PH_ENDING;
        }
        if (n->in_speech)
            return PH_AWAIT_WAV;
        if (n->last_final_turn >= *target)
            return reply_heard(n, n->last_final_turn, now) ? PH_TEXT : PH_AWAIT_WAV;
        if (now - *since > NO_TURN_MS) {
            talk_fail(n->r, TALK_FAILED,
                      "the server heard no turn in the WAV (no transcript.final within %d s)",
                      NO_TURN_MS / 1000);
            return PH_ENDING;
        }
        return PH_AWAIT_WAV;
    case PH_TEXT: {
        json_t *ev;
        char *s;
        if (!o->text)
            return PH_ENDING;
        ev = json_pack("{s:s, s:s}", "type", "input_text", "text", o->text);
        s = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
        json_decref(ev);
        if (!s || strlen(s) >= sizeof(a->text)) {
            free(s);
            talk_fail(n->r, TALK_FAILED, "--text is too long");
            return PH_ENDING;
        }
        memcpy(a->text, s, strlen(s) + 1);
        free(s);
        *target = n->next_turn++;
        n->measure_turn = *target;
        n->measure_ref = now;
        n->measure_armed = false;
        talk_say(who, "you (typed): %s", o->text);
        return PH_AWAIT_TEXT;
    }
    case PH_AWAIT_TEXT:
        if (reply_heard(n, *target, now))
            return PH_ENDING;
        if (now - *since > (int64_t)o->timeout_s * 1000) {
            talk_fail(n->r, TALK_FAILED, "no reply to the typed turn within %d s", o->timeout_s);
            return PH_ENDING;
        }
        return PH_AWAIT_TEXT;
    case PH_ENDING:
        if (n->ended || n->closed || now - *since > END_WAIT_MS) {
            if (!n->ended && !n->closed)
                talk_warn(who, "no session.ended within %d s of `end`", END_WAIT_MS / 1000);
            return PH_DONE;
        }
        return PH_ENDING;
    default:
        return n->phase;
    }
}

static void run_session(struct native *n, struct talk_ws *ws)
{
    struct audio_encoder *enc = NULL;
    struct talk_mic mic;
    int64_t since = vap_now_ms();
    int target = -1;
    uint8_t wire[4000];
    int rv;

    rv = audio_encoder_new(n->o->codec, n->o->rate, &enc);
    if (rv != 0) {
        talk_fail(n->r, TALK_FAILED, "audio encoder: %s", vap_strerror(rv));
        return;
    }
    talk_mic_start(&mic);
    pthread_mutex_lock(&n->lock);
    talk_player_reset(&n->player, vap_now_ms());
    n->phase = n->o->barge_in ? PH_SPEAKING : PH_GREETING;
    pthread_mutex_unlock(&n->lock);

    for (;;) {
        struct actions a = {.playback = "", .text = "", .end = false};
        int16_t frame[TALK_FRAME_SAMPLES];
        int64_t now = vap_now_ms();
        enum phase was, next;
        bool send_audio, closed;

        pthread_mutex_lock(&n->lock);
        was = n->phase;
        report_playback(n, now, &a);
        next = step(n, &mic, now, &since, &target, &a);
        if (next != was) {
            since = now;
            n->phase = next;
            if (next == PH_ENDING)
                a.end = true;
        }
        closed = n->closed;
        send_audio = n->phase < PH_ENDING;
        if (send_audio)
            talk_mic_next(&mic, frame, now);
        pthread_mutex_unlock(&n->lock);

        if (closed || next == PH_DONE)
            break;
        if (a.playback[0])
            talk_ws_send_text(ws, a.playback);
        if (a.text[0])
            talk_ws_send_text(ws, a.text);
        if (send_audio) {
            int len = audio_encode(enc, frame, wire, sizeof(wire));
            if (len > 0)
                talk_ws_send_binary(ws, wire, (size_t)len);
        }
        if (a.end)
            talk_ws_send_text(ws, "{\"type\":\"end\"}");
        talk_mic_wait(&mic);
    }
    audio_encoder_free(enc);
}

void talk_native_run(struct talk_session *s)
{
    const struct talk_options *o = s->o;
    struct native *n = calloc(1, sizeof(*n));
    struct talk_ws *ws = NULL;
    char agent[256], token[4096], path[4600], err[512];
    int64_t deadline;
    int rv;

    if (!n) {
        talk_fail(&s->res, TALK_FAILED, "out of memory");
        return;
    }
    n->s = s;
    n->r = &s->res;
    n->o = o;
    n->phase = PH_CONNECTING;
    n->next_turn = 1; /* the greeting is turn 0 */
    n->last_final_turn = -1;
    n->last_end_turn = -1;
    n->play_turn = -1;
    n->measure_turn = -1;
    pthread_mutex_init(&n->lock, NULL);
    pthread_cond_init(&n->cond, NULL);

    rv = audio_decoder_new(o->codec, o->rate, &n->dec);
    if (rv != 0) {
        talk_fail(n->r, TALK_FAILED, "audio decoder: %s", vap_strerror(rv));
        goto out;
    }
    if (talk_url_escape(o->agent, agent, sizeof(agent)) != 0 ||
        talk_url_escape(s->token, token, sizeof(token)) != 0 ||
        snprintf(path, sizeof(path),
                 "/api/voice-agents/stream?agent_type=%s&codec=%s&sample_rate=%d&token=%s", agent,
                 o->codec == AUDIO_CODEC_OPUS ? "opus" : "pcm16", o->rate,
                 token) >= (int)sizeof(path)) {
        talk_fail(n->r, TALK_USAGE, "the agent name or token is too long");
        goto out;
    }
    rv = talk_ws_open(o->base, path, on_message, on_closed, n, &ws, err, sizeof(err));
    if (rv != 0) {
        talk_fail(n->r, TALK_FAILED, "%s", err);
        goto out;
    }

    deadline = vap_now_ms() + CONNECT_WAIT_MS;
    pthread_mutex_lock(&n->lock);
    while (!n->started && !n->closed && vap_ms_left(deadline) > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&n->cond, &n->lock, &ts);
    }
    if (!n->started && !n->closed)
        talk_fail(n->r, TALK_FAILED, "no session.started within %d s", CONNECT_WAIT_MS / 1000);
    pthread_mutex_unlock(&n->lock);

    if (n->r->status == TALK_OK)
        run_session(n, ws);
    talk_ws_close(ws, 1000, "done");
out:
    talk_ws_free(ws); /* joins civetweb's reader: no callback after this */
    audio_decoder_free(n->dec);
    pthread_cond_destroy(&n->cond);
    pthread_mutex_destroy(&n->lock);
    free(n);
}
