/*
 * Text-to-speech dispatch: turns an agent's "tts" config into a voice (flite or
 * espeak-ng), and speaks text sentence by sentence through the engine, so the first
 * sentence's audio is on its way before the last one is synthesised. English text is
 * normalised first (normalize.c). Resampling to 16 kHz and the sink bookkeeping shared
 * by the engines (struct tts_out) live here too.
 *
 * A struct tts_voice is immutable after tts_voice_load: one may be used by many threads
 * at once. The engines decide how much they can run in parallel (see tts_flite.c and
 * tts_espeak.c).
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <speex/speex_resampler.h>

#include "err.h"
#include "tts_internal.h"

#define TTS_NAME_MAX 64
#define RESAMPLE_QUALITY 5
#define OUT_CHUNK 1024 /* 16 kHz samples per resampler round */

struct tts_voice {
    enum tts_engine engine;
    void *flite;             /* shared flite voice (TTS_ENGINE_FLITE) */
    char name[TTS_NAME_MAX]; /* voice name as configured or chosen */
    bool english;            /* run tts_normalize before synthesis */
};

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t err_size,
                                                          const char *fmt, ...)
{
    va_list ap;

    if (!err || err_size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

/* "de-DE" -> "de", "en-US" -> "en-us", "pt-BR" -> "pt-br": espeak-ng's voice names. */
static int espeak_name_for_language(const char *language, char *name, size_t size)
{
    size_t i = 0;

    if (!language || !*language)
        language = "en";
    for (; language[i] && i + 1 < size; i++) {
        char c = language[i] == '_' ? '-' : language[i];
        name[i] = (char)tolower((unsigned char)c);
    }
    name[i] = '\0';
    if (language[i])
        return VAP_EINVAL;
    /* espeak-ng knows "de", not "de-de"; keep the region only where it has a voice. */
    if (strncmp(name, "en-", 3) != 0 && strncmp(name, "pt-", 3) != 0 &&
        strncmp(name, "es-", 3) != 0) {
        char *dash = strchr(name, '-');
        if (dash)
            *dash = '\0';
    }
    return 0;
}

static bool language_is_english(const char *language)
{
    return !language || !*language || strncmp(language, "en", 2) == 0 ||
           strncmp(language, "EN", 2) == 0;
}

static int load_flite(struct tts_voice *v, const char *name, char *err, size_t err_size)
{
    v->engine = TTS_ENGINE_FLITE;
    v->english = true;
    if (strlen(name) >= sizeof v->name) {
        set_err(err, err_size, "tts: unknown flite voice \"%.64s\"", name);
        return VAP_EINVAL;
    }
    v->flite = tts_flite_voice(name);
    if (!v->flite) {
        set_err(err, err_size, "tts: unknown flite voice \"%.64s\" (known: slt, kal16, awb, rms)",
                name);
        return VAP_EINVAL;
    }
    memcpy(v->name, name, strlen(name) + 1);
    return 0;
}

static int load_espeak(struct tts_voice *v, const char *name, char *err, size_t err_size)
{
    int rv;

    v->engine = TTS_ENGINE_ESPEAK;
    v->english = strncmp(name, "en", 2) == 0;
    if (strlen(name) >= sizeof v->name) {
        set_err(err, err_size, "tts: unknown espeak-ng voice \"%.64s\"", name);
        return VAP_EINVAL;
    }
    memcpy(v->name, name, strlen(name) + 1);
    rv = tts_espeak_check(name);
    if (rv == VAP_EINVAL)
        set_err(err, err_size, "tts: unknown espeak-ng voice \"%.64s\"", name);
    else if (rv != 0)
        set_err(err, err_size, "tts: espeak-ng cannot start (voice \"%.64s\")", name);
    return rv;
}

int tts_voice_load(const json_t *tts, const char *language, struct tts_voice **out, char *err,
                   size_t err_size)
{
    struct tts_voice *v;
    const char *engine = NULL;
    const char *voice = NULL;
    char lang_voice[TTS_NAME_MAX];
    int rv;

    *out = NULL;
    if (tts && !json_is_object(tts)) {
        set_err(err, err_size, "%s", "tts: \"tts\" must be an object");
        return VAP_EINVAL;
    }
    if (tts) {
        const json_t *e = json_object_get(tts, "engine");
        const json_t *n = json_object_get(tts, "voice");
        if (e && !json_is_string(e)) {
            set_err(err, err_size, "%s", "tts: \"engine\" must be a string");
            return VAP_EINVAL;
        }
        if (n && !json_is_string(n)) {
            set_err(err, err_size, "%s", "tts: \"voice\" must be a string");
            return VAP_EINVAL;
        }
        engine = e ? json_string_value(e) : NULL;
        voice = n ? json_string_value(n) : NULL;
    }
    if (espeak_name_for_language(language, lang_voice, sizeof lang_voice) != 0) {
        set_err(err, err_size, "tts: bad language \"%.64s\"", language);
        return VAP_EINVAL;
    }
    if (!engine)
        engine = language_is_english(language) ? "flite" : "espeak-ng";

    v = calloc(1, sizeof *v);
    if (!v)
        return VAP_ENOMEM;
    if (strcmp(engine, "flite") == 0)
        rv = load_flite(v, voice ? voice : "slt", err, err_size);
    else if (strcmp(engine, "espeak-ng") == 0 || strcmp(engine, "espeak") == 0)
        rv = load_espeak(v, voice ? voice : lang_voice, err, err_size);
    else {
        set_err(err, err_size, "tts: unknown engine \"%.64s\" (known: flite, espeak-ng)", engine);
        rv = VAP_EINVAL;
    }
    if (rv != 0) {
        free(v);
        return rv;
    }
    *out = v;
    return 0;
}

void tts_voice_free(struct tts_voice *v)
{
    free(v); /* engine voices are shared and live for the whole process */
}

static bool is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i]))
            return false;
    return true;
}

static int speak_sentence(struct tts_voice *v, const char *s, tts_sink_fn sink, void *user)
{
    if (v->engine == TTS_ENGINE_FLITE)
        return tts_flite_speak(v->flite, s, sink, user);
    return tts_espeak_speak(v->name, s, sink, user);
}

int tts_speak(struct tts_voice *v, const char *text, tts_sink_fn sink, void *user)
{
    char *norm = NULL;
    char *sentence = NULL;
    const char *p;
    size_t len;
    int rv;

    if (!v || !text || !sink)
        return VAP_EINVAL;
    if (strlen(text) > TTS_MAX_TEXT)
        return VAP_ETOOBIG;
    if (v->english) {
        rv = tts_normalize(text, &norm);
        if (rv != 0)
            return rv;
        p = norm;
    } else {
        p = text;
    }
    len = strlen(p);
    sentence = malloc(len + 1);
    if (!sentence) {
        rv = VAP_ENOMEM;
        goto out;
    }
    rv = 0;
    while (len > 0) {
        size_t n = tts_sentence_end(p, len, true);
        if (n == 0 || n > len)
            n = len;
        if (!is_blank(p, n)) {
            memcpy(sentence, p, n);
            sentence[n] = '\0';
            rv = speak_sentence(v, sentence, sink, user);
            if (rv != 0)
                goto out;
        }
        p += n;
        len -= n;
    }
out:
    free(sentence);
    free(norm);
    return rv;
}

/* --- struct tts_out: resampling and sink calls shared by the engines --- */

int tts_out_init(struct tts_out *o, int in_rate, tts_sink_fn sink, void *user)
{
    int err = 0;

    memset(o, 0, sizeof *o);
    o->sink = sink;
    o->user = user;
    o->in_rate = in_rate;
    if (in_rate == TTS_RATE)
        return 0;
    o->resampler = speex_resampler_init(1, (spx_uint32_t)in_rate, TTS_RATE, RESAMPLE_QUALITY, &err);
    if (!o->resampler)
        return VAP_ENOMEM;
    /* Drop the filter's leading delay so output lines up with input; flush drains it. */
    speex_resampler_skip_zeros(o->resampler);
    return 0;
}

static int deliver(struct tts_out *o, const int16_t *pcm, size_t n)
{
    if (o->canceled)
        return 1;
    if (n == 0)
        return 0;
    if (o->sink(o->user, pcm, n) != 0) {
        o->canceled = true;
        return 1;
    }
    o->samples += n;
    return 0;
}

static int resample(struct tts_out *o, const int16_t *pcm, size_t n)
{
    int16_t buf[OUT_CHUNK];

    while (n > 0 && !o->canceled) {
        spx_uint32_t in_len = n > UINT32_MAX ? UINT32_MAX : (spx_uint32_t)n;
        spx_uint32_t out_len = OUT_CHUNK;
        speex_resampler_process_int(o->resampler, 0, pcm, &in_len, buf, &out_len);
        if (deliver(o, buf, out_len) != 0)
            return 1;
        pcm += in_len;
        n -= in_len;
        if (in_len == 0 && out_len == 0)
            break; /* cannot happen with a sane resampler; avoid spinning */
    }
    return o->canceled ? 1 : 0;
}

int tts_out_push(struct tts_out *o, const int16_t *pcm, size_t n)
{
    if (o->canceled)
        return 1;
    if (!o->resampler)
        return deliver(o, pcm, n);
    return resample(o, pcm, n);
}

int tts_out_flush(struct tts_out *o)
{
    int16_t zeros[256] = {0};
    int left;

    if (o->canceled)
        return 1;
    if (!o->resampler)
        return 0;
    left = speex_resampler_get_input_latency(o->resampler);
    while (left > 0) {
        size_t n = (size_t)left < 256 ? (size_t)left : 256;
        if (resample(o, zeros, n) != 0)
            return 1;
        left -= (int)n;
    }
    return 0;
}

void tts_out_fini(struct tts_out *o)
{
    if (o->resampler)
        speex_resampler_destroy(o->resampler);
    o->resampler = NULL;
}

/* --- duration helpers --- */

#define SILENCE_LEVEL 400 /* |sample| below this is silence (about -38 dBFS) */

double tts_speech_seconds(const int16_t *pcm, size_t n)
{
    size_t first = n, last = 0;

    for (size_t i = 0; i < n; i++) {
        if (pcm[i] > SILENCE_LEVEL || pcm[i] < -SILENCE_LEVEL) {
            if (first == n)
                first = i;
            last = i;
        }
    }
    if (first == n)
        return 0.0;
    return (double)(last - first + 1) / TTS_RATE;
}

static size_t count_words(const char *s)
{
    size_t words = 0;
    bool in_word = false;

    for (; *s; s++) {
        bool w = isalnum((unsigned char)*s) || (unsigned char)*s >= 0x80;
        if (w && !in_word)
            words++;
        in_word = w || (in_word && *s == '\'');
    }
    return words;
}

int tts_duration_check(const char *text, double seconds, char *err, size_t err_size)
{
    char *norm = NULL;
    size_t words;
    double lo, hi;
    int rv;

    rv = tts_normalize(text, &norm);
    if (rv != 0)
        return rv;
    words = count_words(norm);
    free(norm);
    lo = 0.25 * (double)words;
    hi = 0.8 * (double)words + 0.4; /* slack: one-word texts carry a whole breath */
    if (seconds < lo || seconds > hi) {
        if (err && err_size > 0)
            snprintf(err, err_size, "%.2f s of speech for %zu words (expected %.2f..%.2f s)",
                     seconds, words, lo, hi);
        return VAP_EINVAL;
    }
    return 0;
}
