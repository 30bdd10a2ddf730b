/*
 * fuzz_twilio: a phone bridge's Twilio Media Streams messages -> gw_twilio_client_frame()
 * (services/gateway/voice_twilio.c): JSON parsing of connected/start/media/mark/stop,
 * the streamSid and media format checks, customParameters (token, agent_type), base64
 * media payloads, and echoed marks turned into native playback events; then the audio
 * it forwards -> the worker's mu-law decoder (audio_decode, AUDIO_CODEC_MULAW at 8 kHz).
 * The other direction runs too: worker events and audio -> gw_twilio_write(), which
 * builds the media/mark/clear messages sent to the bridge.
 *
 * The functions voice_twilio.c calls in voice_stream.c / voice_workers.c (forward to the
 * worker, close, refuse, start the session) and civetweb's mg_websocket_write are
 * replaced here (GNU ld --wrap): the stream opens on `start` when it has a token, as the
 * real gw_vconn_start does once the grant is claimed.
 *
 * Input: one byte of options (bit 0: the URL's query already carried a token), then one
 * frame per line:
 *   <text>      a text frame from the bridge (a line starting with none of the below)
 *   !<bytes>    a binary frame from the bridge
 *   ~<bytes>    a frame with another opcode (continuation)
 *   <<text>     an event from the worker, to be written to the bridge
 *   =<bytes>    audio from the worker (mu-law), to be written to the bridge
 * Checks: forwarded audio is at most 120 ms and decodes; forwarded events are JSON
 * playback/end events; what goes to the bridge is JSON with an event; close codes are
 * valid and reasons fit a close frame.
 */
#include "fuzz.h"

#include <jansson.h>
#include <sodium.h>

#include "audio.h"
#include "err.h"
#include "log.h"
#include "voice_gw.h"

#define MEDIA_MAX_BYTES 960 /* voice_twilio.c */

static struct audio_decoder *dec;
static int16_t pcm[5760];
static char fake_conn;

/* ---- what voice_twilio.c calls ---- */

static void check_close(int code, const char *reason)
{
    FUZZ_CHECK((code >= 1000 && code <= 1011) || (code >= 4000 && code <= 4999),
               "invalid close code");
    FUZZ_CHECK(reason != NULL && strlen(reason) <= 123, "close reason does not fit a frame");
}

int __wrap_gw_voice_forward(struct gw_vconn *c, int kind, const void *data, size_t len,
                            int close_code, const char *reason)
{
    if (kind == VAP__LINK_FRAME__KIND__AUDIO) {
        int n;
        FUZZ_CHECK(c->state == VC_OPEN, "audio forwarded on a session that is not open");
        FUZZ_CHECK(len > 0 && len <= MEDIA_MAX_BYTES, "forwarded audio of a bad size");
        n = audio_decode(dec, data, len, pcm, sizeof(pcm) / sizeof(pcm[0]));
        FUZZ_CHECK(n == (int)(2 * len), "forwarded mu-law does not decode");
    } else if (kind == VAP__LINK_FRAME__KIND__EVENT) {
        json_t *ev = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
        const char *type = json_string_value(json_object_get(ev, "type"));
        FUZZ_CHECK(ev != NULL, "a forwarded event is not JSON");
        FUZZ_CHECK(type && (strcmp(type, "playback") == 0 || strcmp(type, "end") == 0),
                   "a forwarded event of an unexpected type");
        if (strcmp(type, "playback") == 0)
            FUZZ_CHECK(json_is_integer(json_object_get(ev, "turn_id")) &&
                           json_integer_value(json_object_get(ev, "played_ms")) >= 0,
                       "a playback event without turn_id or with negative played_ms");
        json_decref(ev);
    } else if (kind == VAP__LINK_FRAME__KIND__CLOSE) {
        check_close(close_code, reason ? reason : "");
    } else {
        FUZZ_CHECK(0, "an unexpected frame kind forwarded");
    }
    /* The real one finds no worker for a session not yet placed (an echoed mark may come
     * before start): the frame goes nowhere. */
    return c->state == VC_OPEN ? 0 : VAP_EUNAVAIL;
}

void __wrap_gw_vconn_close(struct gw_vconn *c, int code, const char *reason)
{
    check_close(code, reason);
    pthread_mutex_lock(&c->lock);
    c->closing = true;
    pthread_mutex_unlock(&c->lock);
}

void __wrap_gw_vconn_refuse(struct mg_connection *conn, struct gw_vconn *c, int code,
                            const char *reason)
{
    (void)conn;
    check_close(code, reason);
    FUZZ_CHECK(!c->writer_started, "refused after the writer started");
    pthread_mutex_lock(&c->lock);
    c->state = VC_ENDED;
    pthread_mutex_unlock(&c->lock);
}

int __wrap_gw_vconn_start(struct mg_connection *conn, struct gw_vconn *c,
                          const struct gw_stream_options *o)
{
    FUZZ_CHECK(memchr(o->token, '\0', sizeof(o->token)) != NULL, "token not terminated");
    FUZZ_CHECK(strcmp(o->codec, "mulaw") == 0 && o->sample_rate == 8000,
               "a twilio stream not at 8 kHz mu-law");
    FUZZ_CHECK(strcmp(o->protocol, "twilio") == 0, "protocol is not twilio");
    FUZZ_CHECK(memchr(c->agent, '\0', sizeof(c->agent)) != NULL, "agent not terminated");
    if (!o->token[0]) {
        __wrap_gw_vconn_refuse(conn, c, 4401, "Unauthorized: no token");
        return -1;
    }
    pthread_mutex_lock(&c->lock);
    c->state = VC_OPEN;
    pthread_mutex_unlock(&c->lock);
    c->writer_started = true;
    return 0;
}

int __wrap_mg_websocket_write(struct mg_connection *conn, int opcode, const char *data, size_t len)
{
    json_t *msg;
    (void)conn;
    FUZZ_CHECK(opcode == MG_WEBSOCKET_OPCODE_TEXT, "a non-text frame to the bridge");
    msg = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
    FUZZ_CHECK(msg != NULL, "a message to the bridge is not JSON");
    FUZZ_CHECK(json_is_string(json_object_get(msg, "event")), "a message without an event");
    json_decref(msg);
    return (int)len;
}

/* ---- the harness ---- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (sodium_init() < 0)
        abort();
    vap_log_init("fuzz", VAP_LOG_DEBUG);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint8_t options = fuzz_byte(&in);
    struct gw_stream_options query;
    struct gw_vconn c;
    const uint8_t *line;
    size_t len;

    memset(&query, 0, sizeof(query));
    if (options & 1)
        snprintf(query.token, sizeof(query.token), "eyJhbGciOiJIUzI1NiJ9.e30.sig");
    memset(&c, 0, sizeof(c));
    pthread_mutex_init(&c.lock, NULL);
    pthread_cond_init(&c.cond, NULL);
    c.state = VC_OPENING;
    c.conn = (struct mg_connection *)&fake_conn;
    snprintf(c.request_id, sizeof(c.request_id), "fuzz-1");
    FUZZ_CHECK(audio_decoder_new(AUDIO_CODEC_MULAW, 8000, &dec) == 0, "decoder_new");
    FUZZ_CHECK(gw_twilio_accept(&c, &query) == 0, "accept failed");

    while (c.state != VC_ENDED && fuzz_line(&in, &line, &len)) {
        char *frame;
        if (len > 0 && (line[0] == '<' || line[0] == '=')) {
            /* The writer thread runs only once the session is open, until its close. */
            if (!c.writer_started || c.closing)
                continue;
            frame = fuzz_strndup(line + 1, len - 1);
            gw_twilio_write(&c,
                            line[0] == '<' ? MG_WEBSOCKET_OPCODE_TEXT : MG_WEBSOCKET_OPCODE_BINARY,
                            frame, len - 1);
        } else if (len > 0 && (line[0] == '!' || line[0] == '~')) {
            /* Dropping the connection is right only once we have said why (closing). */
            bool closed_before = c.closing || c.state == VC_ENDED;
            frame = fuzz_strndup(line + 1, len - 1);
            FUZZ_CHECK(gw_twilio_client_frame((struct mg_connection *)&fake_conn, &c,
                                              line[0] == '!' ? MG_WEBSOCKET_OPCODE_BINARY
                                                             : MG_WEBSOCKET_OPCODE_CONTINUATION,
                                              frame, len - 1) == 1 || closed_before,
                       "client_frame dropped a connection it had not closed");
        } else {
            bool closed_before = c.closing || c.state == VC_ENDED;
            frame = fuzz_strndup(line, len);
            FUZZ_CHECK(gw_twilio_client_frame((struct mg_connection *)&fake_conn, &c,
                                              MG_WEBSOCKET_OPCODE_TEXT, frame, len) == 1 ||
                           closed_before,
                       "client_frame dropped a connection it had not closed");
        }
        free(frame);
    }
    gw_twilio_free(c.twilio);
    audio_decoder_free(dec);
    pthread_mutex_destroy(&c.lock);
    pthread_cond_destroy(&c.cond);
    return 0;
}
