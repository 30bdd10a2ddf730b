/*
 * fuzz_seeds: writes the seeds that cannot be typed by hand into tests/fuzz/corpus/:
 * packed protobufs of every message type and RPC envelopes of every method (protobuf),
 * JWTs signed with the fuzz test keys (jwt), Opus packets from libopus in several encoder
 * modes, PCM16 and mu-law frames (audio), Twilio media with base64 mu-law (twilio), and
 * HTTP requests whose backend replies are packed protobufs (http). The files are
 * committed; run this only when a format changes:
 *   cmake --build build-fuzz --target fuzz_seeds && build-fuzz/bin/fuzz_seeds tests/fuzz/corpus
 * Deterministic: the same build writes the same bytes (fixed clock, no random jti).
 */
#include <errno.h>
#include <math.h>
#include <opus/opus.h>
#include <sodium.h>
#include <sys/stat.h>

#include "fuzz.h"

#include "audio.h"
#include "fuzz_descriptors.h"
#include "rpc.pb-c.h"
#include "token.h"

/* One-shot program: what it allocates lives until exit. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "detect_leaks=0";
}

static const char *root;

static void write_seed(const char *target, const char *name, const void *data, size_t len)
{
    char path[1024];
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s", root, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        perror(path);
        exit(1);
    }
    snprintf(path, sizeof(path), "%s/%s/%s", root, target, name);
    f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* ---- protobuf: every message, filled through its descriptor ---- */

/* A plausible value for a string field, by its name. */
static const char *string_for(const char *field)
{
    static const struct {
        const char *part, *value;
    } by_name[] = {
        {"username", "cawadmin"},
        {"password", "adminc@w"},
        {"client_addr", "203.0.113.7"},
        {"code", "K7QX2M9P"},
        {"access_token", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.c2ln"},
        {"agent", "hospital"},
        {"jti", "5f0c3a9e2b7d4e1f8a6c0b9d3e2f1a7c"},
        {"idempotency_key", "0f1e2d3c4b5a69788796a5b4c3d2e1f0"},
        {"grant_id", "g-4b1d2c3e"},
        {"session_id", "s-8e7d6c5b4a39281706f5e4d3c2b1a09"},
        {"instance", "auth-1a2b3c4d"},
        {"type", "usage.access"},
        {"method", "auth.otp_list"},
        {"request_id", "fuzz0000-1"},
        {"detail", "Invalid credentials"},
        {"field", "max_uses"},
        {"worker_id", "voice-host-4242-abcd"},
        {"media_url", "tcp://127.0.0.1:7301"},
        {"codec", "opus"},
        {"protocol", "native"},
        {"subject", "otp:7"},
        {"reason", "client_ended"},
        {"event", "{\"type\":\"input_text\",\"text\":\"hello\"}"},
        {"url", "tcp://127.0.0.1:7301"},
    };
    for (size_t i = 0; i < sizeof(by_name) / sizeof(by_name[0]); i++)
        if (strstr(field, by_name[i].part))
            return by_name[i].value;
    return "hospital";
}

static int64_t int_for(const char *field)
{
    if (strstr(field, "_ms"))
        return 1800000000000LL;
    if (strstr(field, "rate"))
        return 16000;
    if (strstr(field, "status"))
        return 200;
    if (strstr(field, "limit") || strstr(field, "capacity"))
        return 100;
    return 7;
}

static void fill(ProtobufCMessage *m, int depth);

static void set_value(const ProtobufCFieldDescriptor *f, void *at, int depth, int variant)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        *(int32_t *)at = (int32_t)int_for(f->name) + variant;
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *e = f->descriptor;
        *(int *)at = e->values[(unsigned)variant % e->n_values].value;
        break;
    }
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        *(int64_t *)at = int_for(f->name) + variant;
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        *(float *)at = 12.5f;
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        *(double *)at = 93.25;
        break;
    case PROTOBUF_C_TYPE_BOOL:
        *(protobuf_c_boolean *)at = 1;
        break;
    case PROTOBUF_C_TYPE_STRING:
        *(const char **)at = string_for(f->name);
        break;
    case PROTOBUF_C_TYPE_BYTES: {
        static const uint8_t bytes[] = {0x0a, 0x08, 'K', '7', 'Q', 'X', '2', 'M', '9', 'P'};
        ProtobufCBinaryData *b = at;
        b->data = (uint8_t *)bytes;
        b->len = sizeof(bytes);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *d = f->descriptor;
        ProtobufCMessage *sub = calloc(1, d->sizeof_message);
        protobuf_c_message_init(d, sub);
        fill(sub, depth + 1);
        *(ProtobufCMessage **)at = sub;
        break;
    }
    }
}

static size_t value_size(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    default:
        return 4;
    }
}

/* Gives every field a value (two elements to repeated ones), nested messages too. */
static void fill(ProtobufCMessage *m, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        char *at = (char *)m + f->offset;
        if (f->type == PROTOBUF_C_TYPE_MESSAGE && depth > 3)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = 2, sz = value_size(f->type);
            char *arr = calloc(n, sz);
            for (size_t k = 0; k < n; k++)
                set_value(f, arr + k * sz, depth, (int)k);
            *(size_t *)((char *)m + f->quantifier_offset) = n;
            *(void **)at = arr;
        } else {
            if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset)
                *(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
            set_value(f, at, depth, 0);
        }
    }
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    uint8_t *buf;
    *len = protobuf_c_message_get_packed_size(m);
    buf = malloc(*len + 1);
    protobuf_c_message_pack(m, buf);
    return buf;
}

static ProtobufCMessage *filled(const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = calloc(1, d->sizeof_message);
    protobuf_c_message_init(d, m);
    fill(m, 0);
    return m;
}

/* "name\n" + bytes, as fuzz_protobuf reads it. */
static void write_named(const char *target, const char *file, const char *name,
                        const uint8_t *bytes, size_t len)
{
    size_t n = strlen(name);
    uint8_t *buf = malloc(n + 1 + len);
    memcpy(buf, name, n);
    buf[n] = '\n';
    memcpy(buf + n + 1, bytes, len);
    write_seed(target, file, buf, n + 1 + len);
    free(buf);
}

static void protobuf_seeds(void)
{
    static const struct {
        const char *method;
        const ProtobufCMessageDescriptor *desc;
    } methods[] = {
        {"auth.login_admin", &vap__login_admin_request__descriptor},
        {"auth.login_otp", &vap__login_otp_request__descriptor},
        {"auth.otp_update", &vap__otp_update_request__descriptor},
        {"auth.access", &vap__access_request__descriptor},
        {"auth.outbox", &vap__outbox_request__descriptor},
        {"auth.grant_claim", &vap__grant_claim_request__descriptor},
        {"usage.traffic", &vap__traffic_request__descriptor},
        {"usage.session", &vap__session_record__descriptor},
        {"auth.revocations", NULL},
        {"no.such_method", &vap__otp__descriptor},
    };
    char file[128];

    for (size_t i = 0; i < FUZZ_N_DESCRIPTORS; i++) {
        const ProtobufCMessageDescriptor *d = fuzz_descriptors[i];
        size_t len;
        uint8_t *bytes = pack(filled(d), &len);
        snprintf(file, sizeof(file), "%s", d->short_name);
        write_named("protobuf", file, d->name, bytes, len);
        free(bytes);
    }
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        Vap__RpcRequest env = VAP__RPC_REQUEST__INIT;
        uint8_t *body = NULL, *bytes;
        size_t len;
        env.method = (char *)methods[i].method;
        env.request_id = "fuzz0000-2a";
        env.budget_ms = 3000;
        if (methods[i].desc) {
            body = pack(filled(methods[i].desc), &env.body.len);
            env.body.data = body;
        }
        bytes = pack(&env.base, &len);
        snprintf(file, sizeof(file), "rpc-%s", methods[i].method);
        write_named("protobuf", file, "rpc.serve", bytes, len);
        free(bytes);
        free(body);
    }
}

/* ---- jwt ---- */

static char *b64url(const void *data, size_t len)
{
    size_t n = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = malloc(n);
    sodium_bin2base64(out, n, data, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return out;
}

static void write_token(const char *file, enum vap_role role, const char *key, int64_t exp)
{
    struct vap_token_claims c;
    char *tok = NULL, *seed;
    memset(&c, 0, sizeof(c));
    snprintf(c.sub, sizeof(c.sub), "%s", role == VAP_ROLE_ADMIN ? "cawadmin" : "otp:7");
    snprintf(c.jti, sizeof(c.jti), "5f0c3a9e2b7d4e1f8a6c0b9d3e2f1a7c");
    c.role = role;
    c.iat = FUZZ_NOW - 60;
    c.exp = exp;
    c.otp_id = 7;
    c.pwv = 2;
    if (vap_token_issue((const uint8_t *)key, strlen(key), &c, &tok) != 0)
        exit(1);
    seed = malloc(strlen(tok) + 2);
    seed[0] = 0; /* mode 0: the token as sent */
    memcpy(seed + 1, tok, strlen(tok) + 1);
    write_seed("jwt", file, seed, strlen(tok) + 1);
    free(seed);
    free(tok);
}

static void jwt_seeds(void)
{
    static const struct {
        const char *file, *header, *payload;
    } json[] = {
        {"json-admin", "{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
         "{\"exp\":1800003600,\"iat\":1799999940,\"jti\":\"5f0c3a9e2b7d4e1f\",\"pwv\":2,"
         "\"role\":\"admin\",\"sub\":\"cawadmin\"}"},
        {"json-otp", "{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
         "{\"exp\":1800003600,\"iat\":1799999940,\"jti\":\"a1b2c3\",\"otp_id\":7,"
         "\"role\":\"otp\",\"sub\":\"otp:7\"}"},
        {"json-alg-none", "{\"alg\":\"none\",\"typ\":\"JWT\"}",
         "{\"exp\":1800003600,\"iat\":1,\"jti\":\"x\",\"otp_id\":7,\"role\":\"otp\",\"sub\":\"otp:"
         "7\"}"},
        {"json-expired", "{\"alg\":\"HS256\"}",
         "{\"exp\":1700000000,\"iat\":1699990000,\"jti\":\"x\",\"pwv\":1,\"role\":\"admin\","
         "\"sub\":\"a\"}"},
        {"json-types", "{\"alg\":\"HS256\",\"kid\":[1,{\"a\":null}]}",
         "{\"exp\":1.8e9,\"iat\":\"1\",\"jti\":7,\"otp_id\":\"7\",\"role\":\"root\",\"sub\":null}"},
    };
    char buf[1024];

    write_token("admin", VAP_ROLE_ADMIN, FUZZ_KEY, FUZZ_NOW + 3600);
    write_token("otp", VAP_ROLE_OTP, FUZZ_KEY, FUZZ_NOW + 3600);
    write_token("otp-previous-key", VAP_ROLE_OTP, FUZZ_KEY_PREVIOUS, FUZZ_NOW + 3600);
    write_token("admin-expired", VAP_ROLE_ADMIN, FUZZ_KEY, FUZZ_NOW - 1);
    write_token("admin-other-key", VAP_ROLE_ADMIN, "some-other-key-0123456789", FUZZ_NOW + 60);
    for (size_t i = 0; i < sizeof(json) / sizeof(json[0]); i++) {
        int n = snprintf(buf, sizeof(buf), "%c%s\n%s", 1, json[i].header, json[i].payload);
        char *h = b64url(json[i].header, strlen(json[i].header));
        char *p = b64url(json[i].payload, strlen(json[i].payload));
        write_seed("jwt", json[i].file, buf, (size_t)n);
        n = snprintf(buf, sizeof(buf), "%c%s.%s", 2, h, p);
        snprintf(buf + 512, 64, "b64-%s", json[i].file + 5);
        write_seed("jwt", buf + 512, buf, (size_t)n);
        free(h);
        free(p);
    }
}

/* ---- audio ---- */

/* Something like voiced speech: a gliding pitch with harmonics, an envelope, some noise. */
static void voice_like(int16_t *pcm, size_t n, int rate, int channels, size_t offset)
{
    for (size_t i = 0; i < n; i++) {
        double t = (double)(offset + i) / rate, f0 = 120.0 + 40.0 * sin(2 * M_PI * 1.5 * t);
        double env = 0.5 + 0.5 * sin(2 * M_PI * 3.0 * t), v = 0;
        for (int h = 1; h <= 8; h++)
            v += sin(2 * M_PI * f0 * h * t) / h;
        v = v * env * 6000.0 + (double)((i * 7919) % 401) - 200.0;
        for (int c = 0; c < channels; c++)
            pcm[i * (size_t)channels + (size_t)c] = (int16_t)v;
    }
}

struct frames {
    uint8_t buf[65536];
    size_t len;
};

static void add_frame(struct frames *f, const uint8_t *data, size_t len)
{
    f->buf[f->len++] = (uint8_t)(len & 0xff);
    f->buf[f->len++] = (uint8_t)(len >> 8);
    memcpy(f->buf + f->len, data, len);
    f->len += len;
}

static void opus_seed(const char *file, int format, int rate, int channels, int app, int frame_ms,
                      int bandwidth, int bitrate, int frames)
{
    struct frames f;
    int err, frame = rate * frame_ms / 1000;
    OpusEncoder *e = opus_encoder_create(rate, channels, app, &err);
    int16_t *pcm = malloc(sizeof(int16_t) * (size_t)(frame * channels));
    uint8_t packet[4000];

    if (!e)
        exit(1);
    opus_encoder_ctl(e, OPUS_SET_BITRATE(bitrate));
    opus_encoder_ctl(e, OPUS_SET_MAX_BANDWIDTH(bandwidth));
    if (strstr(file, "fec")) {
        opus_encoder_ctl(e, OPUS_SET_INBAND_FEC(1));
        opus_encoder_ctl(e, OPUS_SET_PACKET_LOSS_PERC(20));
    }
    if (strstr(file, "dtx"))
        opus_encoder_ctl(e, OPUS_SET_DTX(1));
    f.buf[0] = (uint8_t)format;
    f.len = 1;
    for (int i = 0; i < frames; i++) {
        int n;
        voice_like(pcm, (size_t)frame, rate, channels, (size_t)(i * frame));
        if (strstr(file, "dtx") && i % 2)
            memset(pcm, 0, sizeof(int16_t) * (size_t)(frame * channels));
        n = opus_encode(e, pcm, frame, packet, sizeof(packet));
        if (n < 0)
            exit(1);
        add_frame(&f, packet, (size_t)n);
    }
    write_seed("audio", file, f.buf, f.len);
    opus_encoder_destroy(e);
    free(pcm);
}

static void audio_seeds(void)
{
    struct frames f;
    struct audio_encoder *enc;
    int16_t pcm[AUDIO_FRAME_SAMPLES];
    uint8_t out[4000];

    /* The worker's own encoder: what vap-talk and the browser send back-to-back. */
    if (audio_encoder_new(AUDIO_CODEC_OPUS, 16000, &enc) != 0)
        exit(1);
    f.buf[0] = 0;
    f.len = 1;
    for (int i = 0; i < 6; i++) {
        int n;
        voice_like(pcm, AUDIO_FRAME_SAMPLES, 16000, 1, (size_t)(i * AUDIO_FRAME_SAMPLES));
        n = audio_encode(enc, pcm, out, sizeof(out));
        if (n < 0)
            exit(1);
        add_frame(&f, out, (size_t)n);
    }
    write_seed("audio", "opus16-worker-encoder", f.buf, f.len);
    audio_encoder_free(enc);

    opus_seed("opus48-silk-nb-60ms", 1, 48000, 1, OPUS_APPLICATION_VOIP, 60,
              OPUS_BANDWIDTH_NARROWBAND, 12000, 3);
    opus_seed("opus48-hybrid-fb-20ms", 1, 48000, 1, OPUS_APPLICATION_AUDIO, 20,
              OPUS_BANDWIDTH_FULLBAND, 32000, 5);
    opus_seed("opus48-celt-10ms", 1, 48000, 1, OPUS_APPLICATION_RESTRICTED_LOWDELAY, 10,
              OPUS_BANDWIDTH_FULLBAND, 64000, 5);
    opus_seed("opus48-stereo-20ms", 1, 48000, 2, OPUS_APPLICATION_AUDIO, 20,
              OPUS_BANDWIDTH_FULLBAND, 64000, 4);
    opus_seed("opus16-silk-wb-fec", 0, 16000, 1, OPUS_APPLICATION_VOIP, 20, OPUS_BANDWIDTH_WIDEBAND,
              16000, 5);
    opus_seed("opus16-dtx-40ms", 0, 16000, 1, OPUS_APPLICATION_VOIP, 40, OPUS_BANDWIDTH_WIDEBAND,
              16000, 4);
    opus_seed("opus48-celt-120ms", 1, 48000, 1, OPUS_APPLICATION_RESTRICTED_LOWDELAY, 120,
              OPUS_BANDWIDTH_FULLBAND, 48000, 2);
    opus_seed("opus48-celt-5ms", 1, 48000, 1, OPUS_APPLICATION_RESTRICTED_LOWDELAY, 5,
              OPUS_BANDWIDTH_FULLBAND, 64000, 4);

    /* PCM16LE at 16 and 48 kHz, 20 ms frames; mu-law at 8 kHz, 20 ms frames. */
    for (int rate = 16000; rate <= 48000; rate += 32000) {
        int16_t wide[960];
        uint8_t le[1920];
        size_t n = (size_t)rate / 50;
        f.buf[0] = rate == 16000 ? 2 : 3;
        f.len = 1;
        for (int i = 0; i < 3; i++) {
            voice_like(wide, n, rate, 1, (size_t)i * n);
            for (size_t k = 0; k < n; k++) {
                le[2 * k] = (uint8_t)((uint16_t)wide[k] & 0xff);
                le[2 * k + 1] = (uint8_t)((uint16_t)wide[k] >> 8);
            }
            add_frame(&f, le, 2 * n);
        }
        write_seed("audio", rate == 16000 ? "pcm16-16k" : "pcm16-48k", f.buf, f.len);
    }
    {
        int16_t narrow[160];
        uint8_t law[160];
        f.buf[0] = 4;
        f.len = 1;
        for (int i = 0; i < 4; i++) {
            voice_like(narrow, 160, 8000, 1, (size_t)i * 160);
            g711_mulaw_encode_buf(narrow, 160, law);
            add_frame(&f, law, sizeof(law));
        }
        write_seed("audio", "mulaw-8k", f.buf, f.len);
    }
}

/* ---- twilio: a call with real media ---- */

static void twilio_seeds(void)
{
    static char call[16384];
    int16_t narrow[160];
    uint8_t law[160];
    char b64[sodium_base64_ENCODED_LEN(160, sodium_base64_VARIANT_ORIGINAL)];
    size_t len = 0;

    call[len++] = 0; /* the token comes in customParameters */
    len +=
        (size_t)snprintf(call + len, sizeof(call) - len, "%s\n%s\n",
                         "{\"event\":\"connected\",\"protocol\":\"Call\",\"version\":\"1.0.0\"}",
                         "{\"event\":\"start\",\"sequenceNumber\":\"1\",\"start\":{\"accountSid\":"
                         "\"AC0123\",\"streamSid\":\"MZ18ad3ab5a668481ce02b83e7395059f0\","
                         "\"callSid\":\"CA0123\",\"tracks\":[\"inbound\"],\"mediaFormat\":{"
                         "\"encoding\":\"audio/x-mulaw\",\"sampleRate\":8000,\"channels\":1},"
                         "\"customParameters\":{\"token\":\"eyJhbGciOiJIUzI1NiJ9.e30.sig\","
                         "\"agent_type\":\"hospital\"}},\"streamSid\":"
                         "\"MZ18ad3ab5a668481ce02b83e7395059f0\"}");
    for (int i = 0; i < 4; i++) {
        voice_like(narrow, 160, 8000, 1, (size_t)i * 160);
        g711_mulaw_encode_buf(narrow, 160, law);
        sodium_bin2base64(b64, sizeof(b64), law, sizeof(law), sodium_base64_VARIANT_ORIGINAL);
        len += (size_t)snprintf(call + len, sizeof(call) - len,
                                "{\"event\":\"media\",\"sequenceNumber\":\"%d\",\"media\":{"
                                "\"track\":\"inbound\",\"chunk\":\"%d\",\"timestamp\":\"%d\","
                                "\"payload\":\"%s\"},\"streamSid\":"
                                "\"MZ18ad3ab5a668481ce02b83e7395059f0\"}\n",
                                i + 2, i + 1, i * 20, b64);
        if (i == 1) { /* the agent's voice going out: 20 ms of mu-law silence */
            call[len++] = '=';
            memset(call + len, 0xff, 160);
            len += 160;
            call[len++] = '\n';
        }
    }
    len += (size_t)snprintf(
        call + len, sizeof(call) - len, "%s\n%s\n%s\n%s\n%s\n",
        "<{\"type\":\"agent.audio.start\",\"turn_id\":1}",
        "{\"event\":\"mark\",\"sequenceNumber\":\"7\",\"streamSid\":"
        "\"MZ18ad3ab5a668481ce02b83e7395059f0\",\"mark\":{\"name\":\"vap-1-100\"}}",
        "<{\"type\":\"agent.interrupted\",\"turn_id\":1,\"played_ms\":100}",
        "{\"event\":\"dtmf\",\"streamSid\":\"MZ18\",\"dtmf\":{\"track\":\"inbound_track\","
        "\"digit\":\"1\"}}",
        "{\"event\":\"stop\",\"sequenceNumber\":\"9\",\"stop\":{\"accountSid\":\"AC0123\","
        "\"callSid\":\"CA0123\"},\"streamSid\":\"MZ18ad3ab5a668481ce02b83e7395059f0\"}");
    write_seed("twilio", "call-with-media", call, len);
}

/* ---- http: requests whose backend answers with packed replies ---- */

static char *b64_of(const ProtobufCMessage *m)
{
    size_t len, n;
    uint8_t *bytes = pack(m, &len);
    char *out;
    n = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
    out = malloc(n);
    sodium_bin2base64(out, n, bytes, len, sodium_base64_VARIANT_ORIGINAL);
    free(bytes);
    return out;
}

static void http_seed(const char *file, const char *head, const ProtobufCMessage *reply,
                      const char *body)
{
    char buf[8192];
    char *b64 = reply ? b64_of(reply) : NULL;
    int n = snprintf(buf, sizeof(buf), "%sX-Fuzz-Rpc: 200\r\n%s%s%s\r\n%s", head,
                     b64 ? "X-Fuzz-Rpc-Body: " : "", b64 ? b64 : "", b64 ? "\r\n" : "", body);
    write_seed("http", file, buf, (size_t)n);
    free(b64);
}

static void http_seeds(void)
{
    Vap__TokenReply token = VAP__TOKEN_REPLY__INIT;
    Vap__Otp otp1 = VAP__OTP__INIT, otp2 = VAP__OTP__INIT, *otps[] = {&otp1, &otp2};
    Vap__OtpList list = VAP__OTP_LIST__INIT;
    Vap__AccessReply access = VAP__ACCESS_REPLY__INIT;
    Vap__UsageRecord u1 = VAP__USAGE_RECORD__INIT, u2 = VAP__USAGE_RECORD__INIT,
                     *records[] = {&u1, &u2};
    Vap__UsageList usage = VAP__USAGE_LIST__INIT;
    Vap__TrafficRow row = VAP__TRAFFIC_ROW__INIT, *rows[] = {&row};
    Vap__TrafficReply traffic = VAP__TRAFFIC_REPLY__INIT;

    token.access_token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.c2lnbmF0dXJl";
    token.expires_in = 1800;
    otp1.id = 1;
    otp1.code = "K7QX2M9P";
    otp1.max_uses = 5;
    otp1.used_count = 2;
    otp1.is_active = 1;
    otp1.created_at_ms = 1800000000000LL;
    otp1.last_used_at_ms = 1800000360000LL;
    otp2.id = 2;
    otp2.code = "ZZ4T6W8R";
    otp2.max_uses = 1;
    otp2.created_at_ms = 1800000000123LL;
    list.n_otps = 2;
    list.otps = otps;
    access.counted = 1;
    access.remaining_uses = 3;
    access.grant_id = "g-4b1d2c3e";
    u1.id = 10;
    u1.otp_id = 1;
    u1.agent_type = "hospital";
    u1.accessed_at_ms = 1800000000000LL;
    u1.session_id = "s-8e7d6c5b";
    u1.duration_seconds = 93.25;
    u1.has_duration = 1;
    u2.id = 11;
    u2.agent_type = "realestate";
    u2.accessed_at_ms = 1800000100000LL;
    usage.n_records = 2;
    usage.records = records;
    row.agent_type = "hospital";
    row.total_accesses = 12;
    row.unique_users = 4;
    row.total_sessions = 9;
    row.total_session_seconds = 812.5;
    row.last_accessed_ms = 1800000000000LL;
    row.hour_ms = 1799996400000LL;
    traffic.n_rows = 1;
    traffic.rows = rows;

    http_seed("login-admin-form-ok",
              "POST /api/auth/login/admin HTTP/1.1\r\nHost: localhost:8000\r\n"
              "Content-Type: application/x-www-form-urlencoded\r\n",
              &token.base, "grant_type=password&username=cawadmin&password=adminc%40w&scope=");
    http_seed("login-otp-ok",
              "POST /api/auth/login/otp HTTP/1.1\r\nContent-Type: application/json\r\n",
              &token.base, "{\"otp_code\": \"K7QX2M9P\"}");
    http_seed("otps-list-ok",
              "GET /api/otps/?limit=50&offset=0&active=true HTTP/1.1\r\n"
              "Authorization: Bearer @admin\r\n",
              &list.base, "");
    http_seed("otps-create-ok",
              "POST /api/otps HTTP/1.1\r\nAuthorization: Bearer @admin\r\n"
              "Content-Type: application/json; charset=utf-8\r\n",
              &list.base, "{\"count\": 2, \"max_uses\": 5}");
    http_seed("otps-update-ok",
              "PUT /api/otps/1 HTTP/1.1\r\nAuthorization: Bearer @admin\r\n"
              "Content-Type: application/json\r\n",
              &otp1.base, "{\"max_uses\": 10, \"is_active\": false}");
    http_seed("agents-access-ok",
              "POST /api/agents/access HTTP/1.1\r\nAuthorization: Bearer @otp\r\n"
              "Content-Type: application/json\r\n",
              &access.base, "{\"agent_type\": \"hospital\"}");
    http_seed("agents-usage-ok",
              "GET /api/agents/usage?agent_type=hospital&since=2026-11-25T10:00:00.123Z&limit=10"
              "&offset=5 HTTP/1.1\r\nAuthorization: Bearer @admin\r\n",
              &usage.base, "");
    http_seed("agents-traffic-hourly-ok",
              "GET /api/agents/traffic?bucket=hour HTTP/1.1\r\nAuthorization: Bearer @admin\r\n",
              &traffic.base, "");
    http_seed("agents-traffic-since-ok",
              "GET /api/agents/traffic?since=1764064800 HTTP/1.1\r\n"
              "Authorization: Bearer @admin\r\n",
              &traffic.base, "");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s tests/fuzz/corpus\n", argv[0]);
        return 2;
    }
    if (sodium_init() < 0)
        return 1;
    root = argv[1];
    protobuf_seeds();
    jwt_seeds();
    audio_seeds();
    twilio_seeds();
    http_seeds();
    return 0;
}
