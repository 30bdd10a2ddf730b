/*
 * One session of the Twilio Media Streams protocol (protocol=twilio), played the way
 * Twilio's side of a phone call plays it: `connected`, then `start` (the token and the
 * agent in customParameters, since a phone bridge cannot set headers), then a `media`
 * event of 20 ms of 8 kHz mu-law every 20 ms, then `stop`. The agent's `media` is
 * "played" in real time as it arrives; each `mark` is echoed once the audio before it
 * has played; a `clear` (barge-in) drops the unplayed audio and echoes every outstanding
 * mark at once.
 *
 * The protocol has no transcripts, turns or metrics, so what is printed is timing: when
 * agent audio starts and stops, marks and clears, and the time from the end of the
 * visitor's speech to the first agent media (an estimate of voice-to-voice latency).
 * Threads and locking as in native.c.
 */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "talk.h"

#define MULAW_RATE 8000
#define MULAW_FRAME_BYTES (MULAW_RATE * TALK_FRAME_MS / 1000) /* 160 */
#define MULAW_MAX_CHUNK 960                                   /* 120 ms: the decoder's limit */
#define PAYLOAD_MAX 65536                                     /* decoded bytes per media event */
#define NO_GREETING_MS 3000
#define QUIET_MS 800 /* no agent media this long: the agent has stopped talking */
#define STOP_WAIT_MS 3000
#define MAX_MARKS 256
#define MARK_NAME_MAX 128

enum phase { PH_GREETING, PH_SPEAKING, PH_AWAIT, PH_ENDING, PH_DONE };

struct mark {
    char name[MARK_NAME_MAX];
    int64_t due_ms;
};

struct twilio {
    struct talk_session *s;
    struct talk_result *r;
    const struct talk_options *o;
    struct audio_decoder *dec;
    char stream_sid[40], account_sid[40], call_sid[40];
    pthread_mutex_t lock;

    /* under lock */
    enum phase phase;
    bool closed, stop_sent;
    struct talk_player player;
    bool talking; /* agent media arrived within QUIET_MS */
    int64_t last_media_at;
    int64_t burst_started_at;
    int bursts; /* separate stretches of agent speech */
    int64_t media_in, media_in_ms, media_out;
    int marks_in, marks_echoed, clears;
    int64_t cleared_ms;
    struct mark marks[MAX_MARKS];
    int n_marks;
    int64_t speech_end_at;              /* when the visitor's last voiced frame left, 0 before */
    bool reply_started;                 /* agent media after speech_end_at */
    unsigned char payload[PAYLOAD_MAX]; /* one media event's audio, decoded from base64 */
};

static void random_sid(char *out, size_t size, const char *prefix)
{
    unsigned char raw[16];
    char hex[33];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(hex, sizeof(hex), raw, sizeof(raw));
    snprintf(out, size, "%s%s", prefix, hex);
}

/* ---- from the server (civetweb's thread) -------------------------------------------- */

static void on_media(struct twilio *t, json_t *ev, int64_t now)
{
    const char *b64 = json_string_value(json_object_get(json_object_get(ev, "media"), "payload"));
    unsigned char *raw = t->payload;
    size_t raw_len = 0;

    if (!b64)
        return;
    if (sodium_base642bin(raw, sizeof(t->payload), b64, strlen(b64), NULL, &raw_len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0) {
        talk_warn(&t->s->who, "agent media: payload is not base64 (or too long)");
        return;
    }
    if (!t->talking) {
        t->talking = true;
        t->burst_started_at = now;
        t->bursts++;
        talk_player_begin(&t->player, now);
        if (t->speech_end_at && !t->reply_started) {
            int64_t ms = now - t->speech_end_at;
            t->reply_started = true;
            if (t->r->n_first < TALK_MAX_TURNS)
                t->r->first_audio_ms[t->r->n_first++] = ms;
            talk_say(&t->s->who, "agent audio started %lld ms after you finished (v2v estimate)",
                     (long long)ms);
        } else {
            talk_say(&t->s->who, "agent audio started");
        }
    }
    t->last_media_at = now;
    t->media_in++;
    for (size_t off = 0; off < raw_len; off += MULAW_MAX_CHUNK) {
        int16_t pcm[MULAW_MAX_CHUNK * 2];
        size_t len = raw_len - off < MULAW_MAX_CHUNK ? raw_len - off : MULAW_MAX_CHUNK;
        int got = audio_decode(t->dec, raw + off, len, pcm, sizeof(pcm) / sizeof(pcm[0]));
        if (got < 0)
            break;
        talk_player_push(&t->player, now, (int64_t)len * 1000 / MULAW_RATE);
        t->media_in_ms += (int64_t)len * 1000 / MULAW_RATE;
        if (t->o->out_path)
            talk_pcm_append(&t->r->out, pcm, (size_t)got);
    }
}

static void on_mark(struct twilio *t, json_t *ev, int64_t now)
{
    const char *name = json_string_value(json_object_get(json_object_get(ev, "mark"), "name"));
    struct mark *m;
    t->marks_in++;
    if (!name) {
        talk_warn(&t->s->who, "a mark without a name");
        return;
    }
    if (t->n_marks == MAX_MARKS) {
        talk_warn(&t->s->who, "more than %d marks outstanding; dropping \"%s\"", MAX_MARKS, name);
        return;
    }
    m = &t->marks[t->n_marks++];
    snprintf(m->name, sizeof(m->name), "%s", name);
    /* Due when everything received before it has played. */
    m->due_ms = now + talk_player_unplayed(&t->player, now);
}

static void on_clear(struct twilio *t, int64_t now)
{
    int64_t dropped = talk_player_clear(&t->player, now);
    size_t samples = (size_t)(dropped * TALK_RATE / 1000);
    t->clears++;
    t->cleared_ms += dropped;
    /* What was never played is not part of what the visitor heard (--out). */
    t->r->out.n = t->r->out.n > samples ? t->r->out.n - samples : 0;
    for (int i = 0; i < t->n_marks; i++)
        t->marks[i].due_ms = now;
    talk_say(&t->s->who, "clear: dropped %lld ms of unplayed agent audio, %d mark(s) to echo",
             (long long)dropped, t->n_marks);
}

static void on_message(void *user, bool text, const char *data, size_t len)
{
    struct twilio *t = user;
    int64_t now = vap_now_ms();
    json_t *ev;
    const char *event;

    if (!text) {
        talk_warn(&t->s->who, "a binary frame in the Twilio protocol (ignored)");
        return;
    }
    ev = json_loadb(data, len, 0, NULL);
    event = json_string_value(json_object_get(ev, "event"));
    pthread_mutex_lock(&t->lock);
    if (!event) {
        talk_warn(&t->s->who, "the server sent a message without \"event\": %.*s",
                  (int)(len > 200 ? 200 : len), data);
    } else {
        if (strcmp(event, "media") != 0)
            talk_say_event(&t->s->who, data, len);
        if (strcmp(event, "media") == 0)
            on_media(t, ev, now);
        else if (strcmp(event, "mark") == 0)
            on_mark(t, ev, now);
        else if (strcmp(event, "clear") == 0)
            on_clear(t, now);
        else
            talk_say(&t->s->who, "server event: %.*s", (int)(len > 300 ? 300 : len), data);
    }
    pthread_mutex_unlock(&t->lock);
    json_decref(ev);
}

static void on_closed(void *user, int code, const char *reason)
{
    struct twilio *t = user;
    char words[300];
    pthread_mutex_lock(&t->lock);
    t->closed = true;
    t->r->close_code = code;
    snprintf(words, sizeof(words), "close %d, %s%s%s%s", code, talk_close_words(code),
             reason[0] ? " (server: \"" : "", reason, reason[0] ? "\")" : "");
    if (!t->stop_sent) {
        bool refused = code >= 4000 || code == 1008 || code == 1013;
        if (t->media_in == 0 && refused)
            talk_fail(t->r, TALK_REFUSED, "the voice stream was refused: %s", words);
        else
            talk_fail(t->r, TALK_FAILED, "the voice stream closed mid-call: %s", words);
    } else {
        talk_say(&t->s->who, "stream closed: %s", words);
    }
    pthread_mutex_unlock(&t->lock);
}

/* ---- the session thread -------------------------------------------------------------- */

static int send_json(struct talk_ws *ws, json_t *msg)
{
    char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    int rv = text ? talk_ws_send_text(ws, text) : VAP_ENOMEM;
    free(text);
    json_decref(msg);
    return rv;
}

static int send_start(struct twilio *t, struct talk_ws *ws)
{
    int rv = send_json(ws, json_pack("{s:s, s:s, s:s}", "event", "connected", "protocol", "Call",
                                     "version", "1.0.0"));
    if (rv != 0)
        return rv;
    return send_json(
        ws, json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:[s], s:{s:s, s:s}, s:{s:s, s:i, s:i}}, "
                      "s:s}",
                      "event", "start", "sequenceNumber", "1", "start", "streamSid", t->stream_sid,
                      "accountSid", t->account_sid, "callSid", t->call_sid, "tracks", "inbound",
                      "customParameters", "token", t->s->token, "agent_type", t->o->agent,
                      "mediaFormat", "encoding", "audio/x-mulaw", "sampleRate", MULAW_RATE,
                      "channels", 1, "streamSid", t->stream_sid));
}

static int send_media(struct twilio *t, struct talk_ws *ws, const uint8_t *mulaw, size_t len,
                      long seq, long chunk, int64_t ts_ms)
{
    char b64[sodium_base64_ENCODED_LEN(MULAW_FRAME_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    char seq_s[24], chunk_s[24], ts_s[24];
    sodium_bin2base64(b64, sizeof(b64), mulaw, len, sodium_base64_VARIANT_ORIGINAL);
    snprintf(seq_s, sizeof(seq_s), "%ld", seq);
    snprintf(chunk_s, sizeof(chunk_s), "%ld", chunk);
    snprintf(ts_s, sizeof(ts_s), "%lld", (long long)ts_ms);
    return send_json(ws, json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s}, s:s}", "event", "media",
                                   "sequenceNumber", seq_s, "media", "track", "inbound", "chunk",
                                   chunk_s, "timestamp", ts_s, "payload", b64, "streamSid",
                                   t->stream_sid));
}

/* Takes the marks that are due (in order) into out; returns how many. */
static int due_marks(struct twilio *t, int64_t now, struct mark *out)
{
    int n = 0, keep = 0;
    for (int i = 0; i < t->n_marks; i++) {
        if (t->marks[i].due_ms <= now)
            out[n++] = t->marks[i];
        else
            t->marks[keep++] = t->marks[i];
    }
    t->n_marks = keep;
    t->marks_echoed += n;
    return n;
}

/* The agent has stopped talking and everything it said has played. */
static bool agent_done(struct twilio *t, int64_t now)
{
    if (t->talking && now - t->last_media_at >= QUIET_MS) {
        t->talking = false;
        talk_say(&t->s->who, "agent audio ended: %.2f s (marks so far: %d received, %d echoed)",
                 (double)t->player.received_ms / 1000.0, t->marks_in, t->marks_echoed);
        if (t->reply_started && t->bursts >= 1)
            t->r->turns++;
    }
    return !t->talking && talk_player_idle_ms(&t->player, now) >= TALK_GRACE_MS;
}

static enum phase step(struct twilio *t, struct talk_mic *mic, int64_t now, int64_t since)
{
    const struct talk_options *o = t->o;
    if (talk_stop_requested && t->phase < PH_ENDING) {
        talk_fail(t->r, TALK_FAILED, "interrupted (Ctrl-C)");
        return PH_ENDING;
    }
    switch (t->phase) {
    case PH_GREETING:
        if (t->bursts == 0 && now - since > NO_GREETING_MS)
            return PH_SPEAKING;
        if (t->bursts > 0 && agent_done(t, now))
            return PH_SPEAKING;
        if (now - since > (int64_t)o->timeout_s * 1000)
            return PH_SPEAKING;
        return PH_GREETING;
    case PH_SPEAKING:
        agent_done(t, now);
        if (!mic->pcm) {
            talk_mic_say(mic, t->s->speech);
            talk_say(&t->s->who, "speaking %s (%.2f s)", o->wav_path,
                     (double)t->s->speech->pcm.n / TALK_RATE);
        }
        if (mic->speech_end_at_ms && !t->speech_end_at)
            t->speech_end_at = mic->speech_end_at_ms;
        return talk_mic_speaking(mic) ? PH_SPEAKING : PH_AWAIT;
    case PH_AWAIT:
        if (agent_done(t, now) && t->reply_started)
            return PH_ENDING;
        if (now - since > (int64_t)o->timeout_s * 1000) {
            talk_fail(t->r, TALK_FAILED, "no agent audio after the WAV within %d s", o->timeout_s);
            return PH_ENDING;
        }
        return PH_AWAIT;
    case PH_ENDING:
        return t->closed || now - since > STOP_WAIT_MS ? PH_DONE : PH_ENDING;
    default:
        return t->phase;
    }
}

static void run_call(struct twilio *t, struct talk_ws *ws)
{
    struct audio_encoder *enc = NULL;
    struct talk_mic mic;
    struct mark *echo = malloc(sizeof(struct mark) * MAX_MARKS);
    int64_t since = vap_now_ms(), stream_t0 = since;
    long seq = 1, chunk = 0;
    int rv;

    if (!echo || audio_encoder_new(AUDIO_CODEC_MULAW, MULAW_RATE, &enc) != 0) {
        talk_fail(t->r, TALK_FAILED, "out of memory");
        goto out;
    }
    rv = send_start(t, ws);
    if (rv != 0) {
        talk_fail(t->r, TALK_FAILED, "could not send start: %s", vap_strerror(rv));
        goto out;
    }
    talk_say(&t->s->who, "call %s started (stream %s)", t->call_sid, t->stream_sid);
    talk_mic_start(&mic);
    for (;;) {
        int16_t frame[TALK_FRAME_SAMPLES];
        uint8_t mulaw[MULAW_FRAME_BYTES * 2];
        int64_t now = vap_now_ms();
        enum phase next;
        bool closed, send_audio, send_stop = false;
        int n_echo;

        pthread_mutex_lock(&t->lock);
        n_echo = due_marks(t, now, echo);
        next = step(t, &mic, now, since);
        if (next != t->phase) {
            since = now;
            t->phase = next;
            if (next == PH_ENDING) {
                send_stop = true;
                t->stop_sent = true;
            }
        }
        closed = t->closed;
        send_audio = t->phase < PH_ENDING;
        if (send_audio)
            talk_mic_next(&mic, frame, now);
        pthread_mutex_unlock(&t->lock);

        for (int i = 0; i < n_echo && !closed; i++) {
            char seq_s[24];
            snprintf(seq_s, sizeof(seq_s), "%ld", ++seq);
            send_json(ws,
                      json_pack("{s:s, s:s, s:s, s:{s:s}}", "event", "mark", "sequenceNumber",
                                seq_s, "streamSid", t->stream_sid, "mark", "name", echo[i].name));
        }
        if (closed || next == PH_DONE)
            break;
        if (send_audio) {
            int len = audio_encode(enc, frame, mulaw, sizeof(mulaw));
            if (len > 0 &&
                send_media(t, ws, mulaw, (size_t)len, ++seq, ++chunk, now - stream_t0) == 0) {
                pthread_mutex_lock(&t->lock);
                t->media_out++;
                pthread_mutex_unlock(&t->lock);
            }
        }
        if (send_stop) {
            char seq_s[24];
            snprintf(seq_s, sizeof(seq_s), "%ld", ++seq);
            send_json(ws, json_pack("{s:s, s:s, s:{s:s, s:s}, s:s}", "event", "stop",
                                    "sequenceNumber", seq_s, "stop", "accountSid", t->account_sid,
                                    "callSid", t->call_sid, "streamSid", t->stream_sid));
        }
        talk_mic_wait(&mic);
    }
out:
    audio_encoder_free(enc);
    free(echo);
}

void talk_twilio_run(struct talk_session *s)
{
    const struct talk_options *o = s->o;
    struct twilio *t = calloc(1, sizeof(*t));
    struct talk_ws *ws = NULL;
    char path[512], err[512];
    int rv;

    if (!t) {
        talk_fail(&s->res, TALK_FAILED, "out of memory");
        return;
    }
    t->s = s;
    t->r = &s->res;
    t->o = o;
    pthread_mutex_init(&t->lock, NULL);
    random_sid(t->stream_sid, sizeof(t->stream_sid), "MZ");
    random_sid(t->account_sid, sizeof(t->account_sid), "AC");
    random_sid(t->call_sid, sizeof(t->call_sid), "CA");
    talk_player_reset(&t->player, vap_now_ms());
    t->phase = o->barge_in ? PH_SPEAKING : PH_GREETING;

    rv = audio_decoder_new(AUDIO_CODEC_MULAW, MULAW_RATE, &t->dec);
    if (rv != 0) {
        talk_fail(t->r, TALK_FAILED, "audio decoder: %s", vap_strerror(rv));
        goto out;
    }
    /* As Twilio connects: its own path, no query string (Twilio drops it); the token and
     * agent_type travel in start.customParameters. */
    snprintf(path, sizeof(path), "/api/voice-agents/stream/twilio");
    rv = talk_ws_open(o->base, path, on_message, on_closed, t, &ws, err, sizeof(err));
    if (rv != 0) {
        talk_fail(t->r, TALK_FAILED, "%s", err);
        goto out;
    }
    run_call(t, ws);
    talk_ws_close(ws, 1000, "done");
    talk_ws_free(ws); /* joins civetweb's reader: no callback after this */
    ws = NULL;
    talk_say(&s->who,
             "twilio: media in %lld (%.2f s), out %lld; marks %d received, %d echoed; "
             "clears %d (%lld ms dropped)",
             (long long)t->media_in, (double)t->media_in_ms / 1000.0, (long long)t->media_out,
             t->marks_in, t->marks_echoed, t->clears, (long long)t->cleared_ms);
out:
    talk_ws_free(ws);
    audio_decoder_free(t->dec);
    pthread_mutex_destroy(&t->lock);
    free(t);
}
