/*
 * protocol=twilio on the voice stream: the Twilio Media Streams WebSocket protocol, so a
 * phone call (a TwiML <Connect><Stream>) or any compatible bridge talks to an agent.
 * The gateway translates at the edge; the worker runs the same pipeline as for native
 * clients, with the G.711 mu-law codec at 8 kHz.
 *
 * From the bridge: `connected`, then `start` (streamSid, mediaFormat, customParameters —
 * the token may come there, since a bridge cannot set headers), `media` (base64 mu-law,
 * usually 20 ms), `mark` (echoed back once the audio before it has played), `dtmf`,
 * `stop`. To the bridge: `media` (the agent's voice, 20 ms each), a `mark` every
 * MARK_EVERY_MS of it and at the end of each reply, and `clear` when the caller barges
 * in. An echoed mark becomes a native `playback` event, so the worker truncates the
 * agent's reply at exactly what the caller heard; the other native events have no
 * Twilio form and are not sent. Malformed input closes the stream with 1008 (1003 for
 * binary frames, 1009 for oversize ones) and a reason; other sessions are not touched.
 * A bridge that does not send `start` within START_WAIT_MS is closed (1008): until then
 * the stream is not authenticated, and must not hold a gateway thread for long.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "clock.h"
#include "log.h"
#include "voice_gw.h"

#define MARK_EVERY_MS 100
#define START_WAIT_MS 10000 /* a bridge sends `start` right after `connected` */
#define MEDIA_MAX_BYTES 960 /* 120 ms of 8 kHz mu-law: the worker's largest frame */
#define MULAW_FRAME_BYTES 160
#define STREAM_SID_MAX 64

struct gw_twilio {
    struct gw_stream_options query; /* the URL's token and options, until `start` */
    bool started, stopped;
    char stream_sid[STREAM_SID_MAX + 1];

    /* The writer thread's own: the reply whose audio is going out. */
    int turn;
    int64_t sent_ms;
    int since_mark_ms;

    /* Shared with the bridge's thread. */
    pthread_mutex_t lock;
    int cleared_turn; /* marks of this turn or older are stale (the caller barged in) */

    /* The start watchdog: closes a stream still without `start` at START_WAIT_MS. */
    pthread_t watchdog;
    bool watchdog_started, watchdog_stop, timed_out;
    pthread_cond_t cond; /* with lock: `start` came, or the stream is gone */
    struct gw_vconn *c;
};

static void *watchdog_main(void *arg)
{
    struct gw_twilio *t = arg;
    struct timespec ts;
    int64_t until = vap_wall_ms() + START_WAIT_MS;
    bool late;
    ts.tv_sec = until / 1000;
    ts.tv_nsec = (until % 1000) * 1000000L;
    pthread_mutex_lock(&t->lock);
    while (!t->started && !t->watchdog_stop) {
        if (pthread_cond_timedwait(&t->cond, &t->lock, &ts) != 0)
            break;
    }
    late = !t->started && !t->watchdog_stop;
    t->timed_out = late; /* a `start` from now on is too late */
    pthread_mutex_unlock(&t->lock);
    if (late)
        gw_vconn_refuse(t->c->conn, t->c, 1008, "Twilio protocol: no start event within 10 s");
    return NULL;
}

int gw_twilio_accept(struct gw_vconn *c, const struct gw_stream_options *query)
{
    struct gw_twilio *t = calloc(1, sizeof(*t));
    if (!t)
        return -1;
    t->query = *query;
    t->turn = -1;
    t->cleared_turn = -1;
    t->c = c;
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->cond, NULL);
    c->twilio = t;
    t->watchdog_started = pthread_create(&t->watchdog, NULL, watchdog_main, t) == 0;
    vap_info(c->request_id, "voice stream (twilio) connected; waiting for start");
    return 0;
}

void gw_twilio_free(struct gw_twilio *t)
{
    if (!t)
        return;
    if (t->watchdog_started) {
        pthread_mutex_lock(&t->lock);
        t->watchdog_stop = true;
        pthread_cond_broadcast(&t->cond);
        pthread_mutex_unlock(&t->lock);
        pthread_join(t->watchdog, NULL);
    }
    sodium_memzero(t->query.token, sizeof(t->query.token));
    pthread_cond_destroy(&t->cond);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

/* Ends the stream with code and reason, telling the worker if the session is open. */
static void fail(struct mg_connection *conn, struct gw_vconn *c, int code, const char *reason)
{
    bool open;
    pthread_mutex_lock(&c->lock);
    open = c->state == VC_OPEN;
    pthread_mutex_unlock(&c->lock);
    vap_info(c->request_id, "voice stream (twilio) closed code=%d reason=\"%s\"", code, reason);
    if (open) {
        gw_voice_forward(c, VAP__LINK_FRAME__KIND__CLOSE, NULL, 0, code, "protocol_error");
        gw_vconn_close(c, code, reason);
    } else if (c->writer_started) {
        gw_vconn_close(c, code, reason);
    } else {
        gw_vconn_refuse(conn, c, code, reason);
    }
}

static bool sid_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > STREAM_SID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

static const char *str_at(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void on_start(struct mg_connection *conn, struct gw_vconn *c, json_t *msg)
{
    struct gw_twilio *t = c->twilio;
    struct gw_stream_options o;
    json_t *start = json_object_get(msg, "start");
    json_t *params, *format;
    const char *sid, *v;

    if (t->started) {
        fail(conn, c, 1008, "Twilio protocol: a second start");
        return;
    }
    pthread_mutex_lock(&t->lock);
    if (t->timed_out) { /* the watchdog is closing the stream */
        pthread_mutex_unlock(&t->lock);
        return;
    }
    t->started = true;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
    if (!json_is_object(start)) {
        fail(conn, c, 1008, "Twilio protocol: start needs a start object");
        return;
    }
    sid = str_at(msg, "streamSid");
    if (!sid)
        sid = str_at(start, "streamSid");
    if (!sid || !sid_ok(sid)) {
        fail(conn, c, 1008, "Twilio protocol: start needs a streamSid (letters, digits, _ -)");
        return;
    }
    snprintf(t->stream_sid, sizeof(t->stream_sid), "%s", sid);
    format = json_object_get(start, "mediaFormat");
    if (format) {
        const char *enc = str_at(format, "encoding");
        json_t *rate = json_object_get(format, "sampleRate");
        json_t *ch = json_object_get(format, "channels");
        if (!enc || strcmp(enc, "audio/x-mulaw") != 0 || !json_is_integer(rate) ||
            json_integer_value(rate) != 8000 || (ch && json_integer_value(ch) != 1)) {
            fail(conn, c, 1008, "Twilio protocol: only audio/x-mulaw at 8000 Hz mono is served");
            return;
        }
    }
    o = t->query;
    sodium_memzero(t->query.token, sizeof(t->query.token));
    params = json_object_get(start, "customParameters");
    if (json_is_object(params)) {
        if (!o.token[0] && (v = str_at(params, "token")) != NULL) {
            if (strlen(v) >= sizeof(o.token)) {
                sodium_memzero(&o, sizeof(o));
                fail(conn, c, 4401, "Unauthorized: token too long");
                return;
            }
            snprintf(o.token, sizeof(o.token), "%s", v);
        }
        if (!c->agent[0] && (v = str_at(params, "agent_type")) != NULL)
            snprintf(c->agent, sizeof(c->agent), "%s", v);
    }
    snprintf(o.codec, sizeof(o.codec), "mulaw");
    o.sample_rate = 8000;
    o.resume[0] = '\0';
    o.protocol = "twilio";
    vap_info(c->request_id, "voice stream (twilio) start streamSid=%s callSid=%s", t->stream_sid,
             str_at(start, "callSid") ? str_at(start, "callSid") : "-");
    gw_vconn_start(conn, c, &o);
    sodium_memzero(&o, sizeof(o));
}

static void on_media(struct mg_connection *conn, struct gw_vconn *c, json_t *msg)
{
    json_t *media = json_object_get(msg, "media");
    const char *payload = json_is_object(media) ? str_at(media, "payload") : NULL;
    const char *track = json_is_object(media) ? str_at(media, "track") : NULL;
    uint8_t bytes[MEDIA_MAX_BYTES];
    size_t n = 0, plen;

    if (!c->twilio->started) {
        fail(conn, c, 1008, "Twilio protocol: media before start");
        return;
    }
    if (track && strcmp(track, "inbound") != 0)
        return; /* only the caller's side is heard */
    if (!payload) {
        fail(conn, c, 1008, "Twilio protocol: media needs media.payload");
        return;
    }
    plen = strlen(payload);
    if (plen > (MEDIA_MAX_BYTES + 2) / 3 * 4) {
        fail(conn, c, 1009, "Twilio protocol: media payload over 120 ms");
        return;
    }
    if (sodium_base642bin(bytes, sizeof(bytes), payload, plen, NULL, &n, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0) {
        fail(conn, c, 1008, "Twilio protocol: media payload is not base64");
        return;
    }
    if (n == 0)
        return;
    c->audio_in_frames += (int64_t)((n + MULAW_FRAME_BYTES - 1) / MULAW_FRAME_BYTES);
    gw_voice_forward(c, VAP__LINK_FRAME__KIND__AUDIO, bytes, n, 0, NULL);
}

/* An echoed mark "vap-<turn>-<ms>": the caller has heard ms of that turn's reply. */
static void on_mark(struct gw_vconn *c, json_t *msg)
{
    struct gw_twilio *t = c->twilio;
    json_t *mark = json_object_get(msg, "mark");
    const char *name = json_is_object(mark) ? str_at(mark, "name") : NULL;
    int turn, used = 0;
    long long ms;
    bool stale;
    char ev[128];

    if (!name || sscanf(name, "vap-%d-%lld%n", &turn, &ms, &used) != 2 ||
        name[used] != '\0' || turn < 0 || ms < 0)
        return; /* not one of ours */
    pthread_mutex_lock(&t->lock);
    stale = turn <= t->cleared_turn;
    pthread_mutex_unlock(&t->lock);
    if (stale)
        return; /* echoed by a clear: those were never heard */
    snprintf(ev, sizeof(ev), "{\"type\":\"playback\",\"turn_id\":%d,\"played_ms\":%lld}", turn, ms);
    gw_voice_forward(c, VAP__LINK_FRAME__KIND__EVENT, ev, strlen(ev), 0, NULL);
}

int gw_twilio_client_frame(struct mg_connection *conn, struct gw_vconn *c, int opcode,
                           const char *data, size_t len)
{
    json_error_t jerr;
    json_t *msg;
    const char *event;
    bool ended;

    /* (after our close frame, voice_stream.c drains the client's frames) */
    pthread_mutex_lock(&c->lock);
    ended = c->state == VC_ENDED;
    pthread_mutex_unlock(&c->lock);
    if (ended)
        return 0;
    if (c->twilio->stopped)
        return 1;
    if (opcode == MG_WEBSOCKET_OPCODE_BINARY) {
        fail(conn, c, 1003, "Twilio protocol: messages are JSON text frames");
        return 1;
    }
    if (opcode != MG_WEBSOCKET_OPCODE_TEXT) {
        fail(conn, c, 1003, "Fragmented messages are not supported");
        return 1;
    }
    if (len > GW_VOICE_FRAME_MAX) {
        fail(conn, c, 1009, "Frame too large (64 KiB at most)");
        return 1;
    }
    msg = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    event = msg ? str_at(msg, "event") : NULL;
    if (!event) {
        json_decref(msg);
        fail(conn, c, 1008, "Twilio protocol: each message is a JSON object with an event");
        return 1;
    }
    if (strcmp(event, "media") == 0) {
        on_media(conn, c, msg);
    } else if (strcmp(event, "mark") == 0) {
        on_mark(c, msg);
    } else if (strcmp(event, "start") == 0) {
        on_start(conn, c, msg);
    } else if (strcmp(event, "connected") == 0) {
        if (c->twilio->started)
            fail(conn, c, 1008, "Twilio protocol: connected after start");
    } else if (strcmp(event, "stop") == 0) {
        const char *end = "{\"type\":\"end\"}";
        c->twilio->stopped = true;
        if (c->twilio->started)
            gw_voice_forward(c, VAP__LINK_FRAME__KIND__EVENT, end, strlen(end), 0, NULL);
        else
            fail(conn, c, 1000, "stopped before start");
    } else {
        vap_debug(c->request_id, "voice stream (twilio) ignores event=%.32s", event);
    }
    json_decref(msg);
    return 1;
}

/* ---- to the bridge (on c's writer thread) ---- */

static void send_text(struct gw_vconn *c, const char *text)
{
    mg_websocket_write(c->conn, MG_WEBSOCKET_OPCODE_TEXT, text, strlen(text));
}

static void send_mark(struct gw_vconn *c)
{
    struct gw_twilio *t = c->twilio;
    char msg[STREAM_SID_MAX + 128];
    snprintf(msg, sizeof(msg),
             "{\"event\":\"mark\",\"streamSid\":\"%s\",\"mark\":{\"name\":\"vap-%d-%" PRId64
             "\"}}",
             t->stream_sid, t->turn, t->sent_ms);
    send_text(c, msg);
    t->since_mark_ms = 0;
}

static void send_media(struct gw_vconn *c, const char *data, size_t len)
{
    struct gw_twilio *t = c->twilio;
    char b64[sodium_base64_ENCODED_LEN(MEDIA_MAX_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    char msg[sizeof(b64) + STREAM_SID_MAX + 64];
    int ms;

    if (len == 0 || len > MEDIA_MAX_BYTES)
        return;
    sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)data, len,
                      sodium_base64_VARIANT_ORIGINAL);
    snprintf(msg, sizeof(msg),
             "{\"event\":\"media\",\"streamSid\":\"%s\",\"media\":{\"payload\":\"%s\"}}",
             t->stream_sid, b64);
    send_text(c, msg);
    ms = (int)(len * 1000 / 8000);
    t->sent_ms += ms;
    t->since_mark_ms += ms;
    if (t->turn >= 0 && t->since_mark_ms >= MARK_EVERY_MS)
        send_mark(c);
}

static void on_worker_event(struct gw_vconn *c, const char *data, size_t len)
{
    struct gw_twilio *t = c->twilio;
    json_t *ev = json_loadb(data, len, 0, NULL);
    const char *type = ev ? str_at(ev, "type") : NULL;
    json_t *turn_v = ev ? json_object_get(ev, "turn_id") : NULL;
    int turn = json_is_integer(turn_v) ? (int)json_integer_value(turn_v) : -1;

    if (!type) {
        json_decref(ev);
        return;
    }
    if (strcmp(type, "agent.audio.start") == 0) {
        char pb[96];
        t->turn = turn;
        t->sent_ms = 0;
        t->since_mark_ms = 0;
        /* Nothing heard yet: until the first mark comes back, a barge-in keeps nothing. */
        snprintf(pb, sizeof(pb), "{\"type\":\"playback\",\"turn_id\":%d,\"played_ms\":0}", turn);
        gw_voice_forward(c, VAP__LINK_FRAME__KIND__EVENT, pb, strlen(pb), 0, NULL);
    } else if (strcmp(type, "agent.audio.end") == 0) {
        if (t->turn >= 0 && t->turn == turn)
            send_mark(c);
        t->turn = -1;
    } else if (strcmp(type, "agent.interrupted") == 0) {
        char msg[STREAM_SID_MAX + 48];
        pthread_mutex_lock(&t->lock);
        if (turn > t->cleared_turn)
            t->cleared_turn = turn;
        pthread_mutex_unlock(&t->lock);
        t->turn = -1;
        snprintf(msg, sizeof(msg), "{\"event\":\"clear\",\"streamSid\":\"%s\"}", t->stream_sid);
        send_text(c, msg);
    } else if (strcmp(type, "error") == 0 || strcmp(type, "session.ended") == 0) {
        const char *code = str_at(ev, "code"), *reason = str_at(ev, "reason");
        vap_info(c->request_id, "voice stream (twilio) %s %s", type,
                 code ? code : reason ? reason : "");
    }
    json_decref(ev);
}

void gw_twilio_write(struct gw_vconn *c, int opcode, const char *data, size_t len)
{
    if (opcode == MG_WEBSOCKET_OPCODE_BINARY)
        send_media(c, data, len);
    else if (opcode == MG_WEBSOCKET_OPCODE_TEXT)
        on_worker_event(c, data, len);
}
