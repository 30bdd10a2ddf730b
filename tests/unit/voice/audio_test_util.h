/*
 * Helpers shared by the audio unit tests: real speech synthesised with libflite (the
 * cmu_us_kal16 voice, 16 kHz) at test time, so no audio is committed, plus deterministic
 * noise and a growable 16 kHz track to build scenes on ("0.5 s of room noise, a word, a
 * 300 ms pause, ..."). Header-only: each test is one executable.
 */
#ifndef VAP_AUDIO_TEST_UTIL_H
#define VAP_AUDIO_TEST_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <flite/flite.h>

#include "audio.h"

cst_voice *register_cmu_us_kal16(const char *voxdir);

struct track {
    int16_t *pcm;
    size_t len, cap;
};

static cst_voice *test_voice;

static __attribute__((unused)) void speech_init(void)
{
    if (test_voice)
        return;
    flite_init();
    test_voice = register_cmu_us_kal16(NULL);
}

static __attribute__((unused)) void track_reserve(struct track *t, size_t n)
{
    if (t->len + n <= t->cap)
        return;
    t->cap = (t->len + n) * 2;
    t->pcm = realloc(t->pcm, t->cap * sizeof(int16_t));
    if (!t->pcm)
        abort();
}

static __attribute__((unused)) void track_free(struct track *t)
{
    free(t->pcm);
    memset(t, 0, sizeof(*t));
}

static uint32_t noise_seed = 12345;

static __attribute__((unused)) float noise_sample(void)
{
    /* Sum of 4 uniforms: close enough to Gaussian, unit variance. */
    float s = 0;
    for (int i = 0; i < 4; i++) {
        noise_seed = noise_seed * 1664525u + 1013904223u;
        s += (float)(noise_seed >> 8) / 16777216.0f - 0.5f;
    }
    return s * 1.7320508f;
}

static __attribute__((unused)) int16_t clip16(float x)
{
    if (x > 32767.0f)
        return 32767;
    if (x < -32768.0f)
        return -32768;
    return (int16_t)lrintf(x);
}

/* Amplitude for an RMS level in dBFS. */
static __attribute__((unused)) float dbfs(float db)
{
    return 32768.0f * powf(10.0f, db / 20.0f);
}

static __attribute__((unused)) float rms_db(const int16_t *x, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)x[i] * x[i];
    return (float)(10.0 * log10(s / (double)(n ? n : 1) / (32768.0 * 32768.0) + 1e-10));
}

/* Appends ms of white noise at level_db dBFS RMS (below -120: digital silence). */
static __attribute__((unused)) void track_noise(struct track *t, int ms, float level_db)
{
    size_t n = (size_t)ms * AUDIO_RATE / 1000;
    float a = level_db < -120 ? 0 : dbfs(level_db);
    track_reserve(t, n);
    for (size_t i = 0; i < n; i++)
        t->pcm[t->len++] = clip16(a * noise_sample());
}

/* RMS in dBFS of the 10 ms block at i (for trimming). */
static __attribute__((unused)) float block_db(const short *x, size_t i)
{
    int16_t b[160];
    for (int k = 0; k < 160; k++)
        b[k] = x[i + (size_t)k];
    return rms_db(b, 160);
}

/*
 * Appends the synthesised text scaled to level_db dBFS RMS, trimmed to the 10 ms blocks
 * within 20 dB of that level (flite pads with silence and sometimes a faint click), so
 * the returned offset, where the speech starts, is the first syllable.
 */
static __attribute__((unused)) size_t track_say(struct track *t, const char *text, float level_db)
{
    cst_wave *w;
    size_t first = 0, last, n, at = t->len;
    float gain, ref;

    speech_init();
    w = flite_text_to_wave(text, test_voice);
    if (!w || w->sample_rate != AUDIO_RATE)
        abort();
    n = (size_t)w->num_samples / 160 * 160;
    ref = rms_db(w->samples, n);
    while (first + 160 <= n && block_db(w->samples, first) < ref - 20)
        first += 160;
    last = n;
    while (last >= first + 160 && block_db(w->samples, last - 160) < ref - 20)
        last -= 160;
    gain = dbfs(level_db) / dbfs(rms_db(w->samples + first, last - first));
    track_reserve(t, last - first);
    for (size_t i = first; i < last; i++)
        t->pcm[t->len++] = clip16(w->samples[i] * gain);
    delete_wave(w);
    return at;
}

/* Adds (mixes) a noise floor at level_db over the whole track. */
static __attribute__((unused)) void track_add_noise(struct track *t, float level_db)
{
    float a = dbfs(level_db);
    for (size_t i = 0; i < t->len; i++)
        t->pcm[i] = clip16(t->pcm[i] + a * noise_sample());
}

/* Pads the track with digital silence to a whole number of 20 ms frames. */
static __attribute__((unused)) void track_pad_frames(struct track *t)
{
    size_t rem = t->len % AUDIO_FRAME_SAMPLES;
    if (rem) {
        size_t n = AUDIO_FRAME_SAMPLES - rem;
        track_reserve(t, n);
        memset(t->pcm + t->len, 0, n * sizeof(int16_t));
        t->len += n;
    }
}

static __attribute__((unused)) double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
