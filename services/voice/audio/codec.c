/*
 * The client's audio frames to and from the pipeline's 16 kHz PCM: Opus (libopus) or raw
 * PCM16LE, at a client rate of 16 or 48 kHz. This is the one place that reads bytes sent
 * by a visitor's browser, so every length is checked before it is used and any byte
 * string is either decoded or refused with VAP_EPROTO (it is fuzzed).
 *
 * Opus packets carry no sample rate: a decoder may decode any packet at any of Opus's
 * rates. So the decoder always decodes at 16 kHz, whatever the client encoded at (libopus
 * then skips the band above 8 kHz: cheaper than decoding at 48 kHz and resampling, and no
 * resampler delay), and the encoder is fed 16 kHz (the agent's voice has nothing above
 * 8 kHz) and produces packets the client decodes at 48 kHz as well as at 16 kHz. Only
 * PCM16 at 48 kHz needs the resampler, in both directions.
 *
 * G.711 mu-law is for telephone bridges: 8 kHz only, one byte per sample, converted to
 * and from 16 kHz by the exact half-band filter of g711.c.
 */
#include <stdlib.h>
#include <string.h>

#include <opus/opus.h>

#include "audio.h"
#include "err.h"

#define MAX_FRAME_MS 120
#define OPUS_MAX_PACKET 8000 /* 120 ms at Opus's top rate (510 kbit/s) is 7650 bytes */
#define OPUS_BITRATE 24000   /* wideband speech is transparent from ~20 kbit/s */
#define OPUS_COMPLEXITY 5    /* measured: about half the encode time of 10, same clarity */
#define MAX_SAMPLES_48K (48000 * MAX_FRAME_MS / 1000)
#define MAX_SAMPLES_16K (AUDIO_RATE * MAX_FRAME_MS / 1000)

struct audio_decoder {
    enum audio_codec codec;
    int rate;
    OpusDecoder *opus;            /* AUDIO_CODEC_OPUS */
    struct audio_resampler *down; /* AUDIO_CODEC_PCM16 at 48 kHz */
    struct g711_rate up8k;        /* AUDIO_CODEC_MULAW */
};

struct audio_encoder {
    enum audio_codec codec;
    int rate;
    OpusEncoder *opus;
    struct audio_resampler *up;
    struct g711_rate down8k; /* AUDIO_CODEC_MULAW */
};

const char *audio_codec_name(enum audio_codec codec)
{
    return codec == AUDIO_CODEC_OPUS ? "opus" : codec == AUDIO_CODEC_MULAW ? "mulaw" : "pcm16";
}

static bool client_format_ok(enum audio_codec codec, int rate)
{
    if (codec == AUDIO_CODEC_MULAW)
        return rate == 8000;
    return (codec == AUDIO_CODEC_OPUS || codec == AUDIO_CODEC_PCM16) &&
           (rate == 16000 || rate == 48000);
}

int audio_decoder_new(enum audio_codec codec, int sample_rate, struct audio_decoder **out)
{
    struct audio_decoder *d;
    int err = 0, rv = 0;

    *out = NULL;
    if (!client_format_ok(codec, sample_rate))
        return VAP_EINVAL;
    d = calloc(1, sizeof(*d));
    if (!d)
        return VAP_ENOMEM;
    d->codec = codec;
    d->rate = sample_rate;
    g711_rate_init(&d->up8k);
    if (codec == AUDIO_CODEC_MULAW) {
        /* no allocation: the filter state lives in the decoder */
    } else if (codec == AUDIO_CODEC_OPUS) {
        d->opus = opus_decoder_create(AUDIO_RATE, 1, &err);
        if (!d->opus)
            rv = err == OPUS_ALLOC_FAIL ? VAP_ENOMEM : VAP_EINTERNAL;
    } else if (sample_rate != AUDIO_RATE) {
        rv = audio_resampler_new(sample_rate, AUDIO_RATE, &d->down);
    }
    if (rv != 0) {
        audio_decoder_free(d);
        return rv;
    }
    *out = d;
    return 0;
}

void audio_decoder_free(struct audio_decoder *d)
{
    if (!d)
        return;
    if (d->opus)
        opus_decoder_destroy(d->opus);
    audio_resampler_free(d->down);
    free(d);
}

static int decode_opus(struct audio_decoder *d, const uint8_t *frame, size_t len, int16_t *out,
                       size_t max)
{
    int16_t pcm[MAX_SAMPLES_16K];
    int n;

    if (len > OPUS_MAX_PACKET)
        return VAP_EPROTO;
    /* Counts the samples from the TOC and frame count alone; refuses a bad header. */
    n = opus_decoder_get_nb_samples(d->opus, frame, (opus_int32)len);
    if (n <= 0 || n > MAX_SAMPLES_16K)
        return VAP_EPROTO;
    if ((size_t)n > max)
        return VAP_ETOOBIG;
    n = opus_decode(d->opus, frame, (opus_int32)len, pcm, MAX_SAMPLES_16K, 0);
    if (n < 0)
        return VAP_EPROTO;
    memcpy(out, pcm, (size_t)n * sizeof(int16_t));
    return n;
}

static int decode_pcm(struct audio_decoder *d, const uint8_t *frame, size_t len, int16_t *out,
                      size_t max)
{
    int16_t pcm[MAX_SAMPLES_48K];
    int16_t res[MAX_SAMPLES_16K + 8];
    size_t n = len / 2;
    int made;

    if (len % 2 != 0 || n > (size_t)d->rate * MAX_FRAME_MS / 1000)
        return VAP_EPROTO;
    for (size_t i = 0; i < n; i++)
        pcm[i] = (int16_t)(uint16_t)(frame[2 * i] | (uint16_t)frame[2 * i + 1] << 8);
    if (!d->down) {
        if (n > max)
            return VAP_ETOOBIG;
        memcpy(out, pcm, n * sizeof(int16_t));
        return (int)n;
    }
    made = audio_resample(d->down, pcm, n, res, sizeof(res) / sizeof(res[0]));
    if (made < 0)
        return made;
    if ((size_t)made > max)
        return VAP_ETOOBIG;
    memcpy(out, res, (size_t)made * sizeof(int16_t));
    return made;
}

static int decode_mulaw(struct audio_decoder *d, const uint8_t *frame, size_t len,
                        int16_t *out, size_t max)
{
    int16_t pcm[8000 * MAX_FRAME_MS / 1000];

    if (len > sizeof(pcm) / sizeof(pcm[0]))
        return VAP_EPROTO;
    g711_mulaw_decode_buf(frame, len, pcm);
    return g711_upsample_8k_to_16k(&d->up8k, pcm, len, out, max);
}

int audio_decode(struct audio_decoder *d, const uint8_t *frame, size_t len, int16_t *out,
                 size_t max)
{
    /* An empty frame is malformed in both codecs (for Opus it would mean "conceal a loss"). */
    if (!frame || len == 0)
        return VAP_EPROTO;
    if (d->codec == AUDIO_CODEC_OPUS)
        return decode_opus(d, frame, len, out, max);
    if (d->codec == AUDIO_CODEC_MULAW)
        return decode_mulaw(d, frame, len, out, max);
    return decode_pcm(d, frame, len, out, max);
}

int audio_encoder_new(enum audio_codec codec, int sample_rate, struct audio_encoder **out)
{
    struct audio_encoder *e;
    int err = 0, rv = 0;

    *out = NULL;
    if (!client_format_ok(codec, sample_rate))
        return VAP_EINVAL;
    e = calloc(1, sizeof(*e));
    if (!e)
        return VAP_ENOMEM;
    e->codec = codec;
    e->rate = sample_rate;
    g711_rate_init(&e->down8k);
    if (codec == AUDIO_CODEC_MULAW) {
        /* no allocation: the filter state lives in the encoder */
    } else if (codec == AUDIO_CODEC_OPUS) {
        e->opus = opus_encoder_create(AUDIO_RATE, 1, OPUS_APPLICATION_VOIP, &err);
        if (!e->opus) {
            rv = err == OPUS_ALLOC_FAIL ? VAP_ENOMEM : VAP_EINTERNAL;
        } else if (opus_encoder_ctl(e->opus, OPUS_SET_BITRATE(OPUS_BITRATE)) != OPUS_OK ||
                   opus_encoder_ctl(e->opus, OPUS_SET_COMPLEXITY(OPUS_COMPLEXITY)) != OPUS_OK ||
                   opus_encoder_ctl(e->opus, OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE)) != OPUS_OK ||
                   opus_encoder_ctl(e->opus, OPUS_SET_MAX_BANDWIDTH(OPUS_BANDWIDTH_WIDEBAND)) !=
                       OPUS_OK) {
            rv = VAP_EINTERNAL;
        }
    } else if (sample_rate != AUDIO_RATE) {
        rv = audio_resampler_new(AUDIO_RATE, sample_rate, &e->up);
    }
    if (rv != 0) {
        audio_encoder_free(e);
        return rv;
    }
    *out = e;
    return 0;
}

void audio_encoder_free(struct audio_encoder *e)
{
    if (!e)
        return;
    if (e->opus)
        opus_encoder_destroy(e->opus);
    audio_resampler_free(e->up);
    free(e);
}

static void put_le16(const int16_t *pcm, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        uint16_t u = (uint16_t)pcm[i];
        out[2 * i] = (uint8_t)(u & 0xff);
        out[2 * i + 1] = (uint8_t)(u >> 8);
    }
}

int audio_encode(struct audio_encoder *e, const int16_t *pcm, uint8_t *out, size_t max)
{
    size_t want;

    if (e->codec == AUDIO_CODEC_OPUS) {
        int n = opus_encode(e->opus, pcm, AUDIO_FRAME_SAMPLES, out,
                            (opus_int32)(max > OPUS_MAX_PACKET ? OPUS_MAX_PACKET : max));
        if (n == OPUS_BUFFER_TOO_SMALL)
            return VAP_ETOOBIG;
        return n < 0 ? VAP_EINTERNAL : n;
    }
    want = (size_t)e->rate * AUDIO_FRAME_MS / 1000;
    if (e->codec == AUDIO_CODEC_MULAW) {
        int16_t down[8000 * AUDIO_FRAME_MS / 1000];
        int made;
        if (max < want)
            return VAP_ETOOBIG;
        made = g711_downsample_16k_to_8k(&e->down8k, pcm, AUDIO_FRAME_SAMPLES, down, want);
        if (made < 0)
            return made;
        g711_mulaw_encode_buf(down, (size_t)made, out);
        return made;
    }
    if (max < want * 2)
        return VAP_ETOOBIG;
    if (!e->up) {
        put_le16(pcm, want, out);
    } else {
        int16_t up[48000 * AUDIO_FRAME_MS / 1000];
        int made = audio_resample(e->up, pcm, AUDIO_FRAME_SAMPLES, up, want);
        if (made < 0)
            return made;
        /* An integer ratio gives exactly 3x; pad defensively so a frame is always 20 ms. */
        if ((size_t)made < want)
            memset(up + made, 0, (want - (size_t)made) * sizeof(int16_t));
        put_le16(up, want, out);
    }
    return (int)(want * 2);
}
