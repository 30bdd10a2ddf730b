/*
 * WAV files in and out, and the growable PCM buffer behind them. Reading takes any
 * 16-bit PCM WAV (WAVE_FORMAT_PCM or EXTENSIBLE with a PCM subformat, 1-8 channels,
 * 8-192 kHz), averages the channels and resamples to the 16 kHz the voice stream speaks,
 * with the worker's own speexdsp resampler. Writing makes the plain 44-byte-header
 * 16 kHz mono file. Other encodings (8/24/32-bit, float, compressed) are refused with a
 * hint rather than guessed at.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "talk.h"

#define WAV_MAX_BYTES (512L * 1024 * 1024)
#define WAV_MAX_SECONDS 600
#define WAVE_FORMAT_PCM 1
#define WAVE_FORMAT_EXTENSIBLE 0xFFFE

void talk_pcm_init(struct talk_pcm *p, size_t max)
{
    p->s = NULL;
    p->n = p->cap = 0;
    p->max = max;
}

int talk_pcm_append(struct talk_pcm *p, const int16_t *s, size_t n)
{
    if (n > p->max - p->n)
        return VAP_ETOOBIG;
    if (p->n + n > p->cap) {
        size_t cap = p->cap ? p->cap : TALK_RATE;
        int16_t *grown;
        while (cap < p->n + n)
            cap *= 2;
        if (cap > p->max)
            cap = p->max;
        grown = realloc(p->s, cap * sizeof(int16_t));
        if (!grown)
            return VAP_ENOMEM;
        p->s = grown;
        p->cap = cap;
    }
    memcpy(p->s + p->n, s, n * sizeof(int16_t));
    p->n += n;
    return 0;
}

void talk_pcm_free(struct talk_pcm *p)
{
    free(p->s);
    p->s = NULL;
    p->n = p->cap = 0;
}

static uint32_t le32(const uint8_t *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint16_t le16(const uint8_t *b)
{
    return (uint16_t)(b[0] | b[1] << 8);
}

static int read_file(const char *path, uint8_t **data, size_t *len, char *err, size_t err_size)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long size;
    int rv = VAP_EINVAL;

    if (!f) {
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        return VAP_ENOTFOUND;
    }
    size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        snprintf(err, err_size, "%s: cannot read it", path);
        goto out;
    }
    if (size > WAV_MAX_BYTES) {
        snprintf(err, err_size, "%s: larger than %ld MiB", path, WAV_MAX_BYTES >> 20);
        rv = VAP_ETOOBIG;
        goto out;
    }
    buf = malloc((size_t)size + 1);
    if (!buf) {
        rv = VAP_ENOMEM;
        snprintf(err, err_size, "%s: out of memory", path);
        goto out;
    }
    if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
        snprintf(err, err_size, "%s: short read", path);
        free(buf);
        buf = NULL;
        goto out;
    }
    *data = buf;
    *len = (size_t)size;
    rv = 0;
out:
    fclose(f);
    return rv;
}

struct wav_format {
    int channels, rate, bits;
    const uint8_t *data;
    size_t data_len;
};

static int parse_wav(const uint8_t *b, size_t len, struct wav_format *w, char *err, size_t err_size)
{
    size_t pos = 12;
    bool have_fmt = false;
    int tag = 0;

    memset(w, 0, sizeof(*w));
    if (len < 12 || memcmp(b, "RIFF", 4) != 0 || memcmp(b + 8, "WAVE", 4) != 0) {
        snprintf(err, err_size, "not a RIFF/WAVE file");
        return VAP_EINVAL;
    }
    while (pos + 8 <= len) {
        const uint8_t *id = b + pos;
        size_t size = le32(b + pos + 4), body = pos + 8;
        if (memcmp(id, "data", 4) == 0) {
            /* Streaming writers put 0 or 0xFFFFFFFF here: take what is in the file. */
            if (size == 0 || size > len - body)
                size = len - body;
            w->data = b + body;
            w->data_len = size;
            break;
        }
        if (size > len - body) {
            snprintf(err, err_size, "truncated \"%.4s\" chunk", (const char *)id);
            return VAP_EINVAL;
        }
        if (memcmp(id, "fmt ", 4) == 0 && size >= 16) {
            tag = le16(b + body);
            w->channels = le16(b + body + 2);
            w->rate = (int)le32(b + body + 4);
            w->bits = le16(b + body + 14);
            if (tag == WAVE_FORMAT_EXTENSIBLE && size >= 26)
                tag = le16(b + body + 24); /* the subformat GUID starts with the tag */
            have_fmt = true;
        }
        pos = body + size + (size & 1);
    }
    if (!have_fmt || !w->data) {
        snprintf(err, err_size, "no %s chunk", have_fmt ? "data" : "fmt");
        return VAP_EINVAL;
    }
    if (tag != WAVE_FORMAT_PCM || w->bits != 16) {
        snprintf(err, err_size,
                 "only 16-bit PCM is read (this is format %d, %d bits); convert it with "
                 "`sox in.wav -b 16 -e signed out.wav`",
                 tag, w->bits);
        return VAP_EINVAL;
    }
    if (w->channels < 1 || w->channels > 8 || w->rate < 8000 || w->rate > 192000) {
        snprintf(err, err_size, "unsupported layout: %d channels at %d Hz", w->channels, w->rate);
        return VAP_EINVAL;
    }
    if (w->data_len / (size_t)(2 * w->channels) > (size_t)w->rate * WAV_MAX_SECONDS) {
        snprintf(err, err_size, "longer than %d s", WAV_MAX_SECONDS);
        return VAP_ETOOBIG;
    }
    return 0;
}

/* Mono samples of the interleaved data, channels averaged. Caller frees. */
static int16_t *downmix(const struct wav_format *w, size_t *n_out)
{
    size_t frames = w->data_len / (size_t)(2 * w->channels);
    int16_t *mono = malloc((frames ? frames : 1) * sizeof(int16_t));
    if (!mono)
        return NULL;
    for (size_t i = 0; i < frames; i++) {
        int32_t sum = 0;
        for (int c = 0; c < w->channels; c++)
            sum += (int16_t)le16(w->data + 2 * (i * (size_t)w->channels + (size_t)c));
        mono[i] = (int16_t)(sum / w->channels);
    }
    *n_out = frames;
    return mono;
}

int talk_wav_read(const char *path, struct talk_speech *out, char *err, size_t err_size)
{
    uint8_t *file = NULL;
    int16_t *mono = NULL, *res = NULL;
    struct audio_resampler *rs = NULL;
    struct wav_format w;
    size_t len = 0, n = 0;
    int rv;

    err[0] = '\0';
    talk_pcm_init(&out->pcm, (size_t)TALK_RATE * WAV_MAX_SECONDS + TALK_RATE);
    out->speech_end_ms = 0;
    rv = read_file(path, &file, &len, err, err_size);
    if (rv != 0)
        return rv;
    rv = parse_wav(file, len, &w, err, err_size);
    if (rv != 0) {
        char why[200];
        snprintf(why, sizeof(why), "%s", err);
        snprintf(err, err_size, "%s: %s", path, why);
        goto out;
    }
    rv = VAP_ENOMEM;
    mono = downmix(&w, &n);
    if (!mono)
        goto out;
    if (w.rate == TALK_RATE) {
        rv = talk_pcm_append(&out->pcm, mono, n);
    } else {
        /* 10 ms of zeros at the end push the resampler's delay line out. */
        size_t flush = (size_t)w.rate / 100, total = n + flush;
        size_t max = (size_t)((double)total * TALK_RATE / w.rate) + 64;
        int16_t *in = realloc(mono, total * sizeof(int16_t));
        int made;
        if (!in)
            goto out;
        mono = in;
        memset(mono + n, 0, flush * sizeof(int16_t));
        res = malloc(max * sizeof(int16_t));
        if (!res)
            goto out;
        rv = audio_resampler_new(w.rate, TALK_RATE, &rs);
        if (rv != 0)
            goto out;
        made = audio_resample(rs, mono, total, res, max);
        if (made < 0) {
            rv = made;
            goto out;
        }
        rv = talk_pcm_append(&out->pcm, res, (size_t)made);
    }
    if (rv != 0)
        goto out;
    out->speech_end_ms = talk_speech_end_ms(out->pcm.s, out->pcm.n);
out:
    if (rv != 0 && !err[0])
        snprintf(err, err_size, "%s: %s", path, vap_strerror(rv));
    if (rv != 0)
        talk_pcm_free(&out->pcm);
    audio_resampler_free(rs);
    free(res);
    free(mono);
    free(file);
    return rv;
}

static void put16(uint8_t *b, uint16_t v)
{
    b[0] = (uint8_t)(v & 0xff);
    b[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *b, uint32_t v)
{
    put16(b, (uint16_t)(v & 0xffff));
    put16(b + 2, (uint16_t)(v >> 16));
}

int talk_wav_write(const char *path, const struct talk_pcm *p, char *err, size_t err_size)
{
    uint8_t h[44], chunk[4096];
    uint32_t bytes = (uint32_t)(p->n * 2);
    FILE *f = fopen(path, "wb");
    bool ok;

    if (!f) {
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        return VAP_EUNAVAIL;
    }
    memcpy(h, "RIFF", 4);
    put32(h + 4, 36 + bytes);
    memcpy(h + 8, "WAVEfmt ", 8);
    put32(h + 16, 16);
    put16(h + 20, WAVE_FORMAT_PCM);
    put16(h + 22, 1);
    put32(h + 24, TALK_RATE);
    put32(h + 28, TALK_RATE * 2);
    put16(h + 32, 2);
    put16(h + 34, 16);
    memcpy(h + 36, "data", 4);
    put32(h + 40, bytes);
    ok = fwrite(h, 1, sizeof(h), f) == sizeof(h);
    for (size_t i = 0; ok && i < p->n;) {
        size_t k = 0;
        for (; k < sizeof(chunk) / 2 && i < p->n; k++, i++)
            put16(chunk + 2 * k, (uint16_t)p->s[i]);
        ok = fwrite(chunk, 2, k, f) == k;
    }
    if (fclose(f) != 0)
        ok = false;
    if (!ok) {
        snprintf(err, err_size, "%s: write failed: %s", path, strerror(errno));
        return VAP_EUNAVAIL;
    }
    return 0;
}

int64_t talk_speech_end_ms(const int16_t *s, size_t n)
{
    size_t frames = n / TALK_FRAME_SAMPLES;
    double peak = 0.0, threshold;
    int64_t end = 0;

    for (int pass = 0; pass < 2; pass++) {
        /* pass 0 finds the loudest frame; pass 1 the last one within 26 dB of it (and
         * above a floor that background hiss does not reach). */
        threshold = peak * 0.05 > 200.0 ? peak * 0.05 : 200.0;
        for (size_t f = 0; f < frames; f++) {
            double sum = 0.0, rms;
            for (size_t i = 0; i < TALK_FRAME_SAMPLES; i++) {
                double v = s[f * TALK_FRAME_SAMPLES + i];
                sum += v * v;
            }
            rms = sqrt(sum / TALK_FRAME_SAMPLES);
            if (pass == 0 && rms > peak)
                peak = rms;
            if (pass == 1 && rms >= threshold)
                end = (int64_t)(f + 1) * TALK_FRAME_MS;
        }
    }
    return end;
}
