/*
 * flite engine: the four compiled-in English voices (slt, awb, rms: clustergen; kal16:
 * diphone), registered once per process and then shared by every thread.
 *
 * Why sharing is safe (read from flite 2.2's source, checked by tts_test's concurrent
 * test): synthesis builds a fresh utterance per call; utt_init only links the voice's
 * features into it (feat_link_into stores a pointer, no copy, no refcount); the
 * clustergen and LPC resynthesis keep their state in per-call structures; the regex
 * matcher used by the text rules keeps its state in a per-call cst_regstate. What is
 * not thread-safe is registration (flite_add_voice, cmu_lex_init fill globals), so it
 * runs under a mutex, once per voice. The audio streaming hook is set on the
 * utterance, never on the shared voice, which would race (the usual recipe,
 * feat_set(voice->features, "streaming_info", ...), mutates the voice).
 *
 * flite calls exit() on internal errors (cst_error without cst_errjmp); inputs here are
 * plain text that flite's tokenizer accepts, so that path is not expected.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <flite/flite.h>

#include "err.h"
#include "tts_internal.h"

cst_voice *register_cmu_us_slt(const char *voxdir);
cst_voice *register_cmu_us_kal16(const char *voxdir);
cst_voice *register_cmu_us_awb(const char *voxdir);
cst_voice *register_cmu_us_rms(const char *voxdir);

#define STREAM_MIN_SAMPLES 1600 /* flite hands over audio every ~100 ms at 16 kHz */

struct flite_voice_entry {
    const char *name;
    cst_voice *(*reg)(const char *voxdir);
    cst_voice *voice;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static bool flite_ready;
static struct flite_voice_entry voices[] = {
    {"slt", register_cmu_us_slt, NULL},
    {"kal16", register_cmu_us_kal16, NULL},
    {"awb", register_cmu_us_awb, NULL},
    {"rms", register_cmu_us_rms, NULL},
};

void *tts_flite_voice(const char *name)
{
    cst_voice *v = NULL;

    pthread_mutex_lock(&registry_lock);
    if (!flite_ready) {
        flite_init();
        flite_ready = true;
    }
    for (size_t i = 0; i < sizeof voices / sizeof voices[0]; i++) {
        if (strcmp(voices[i].name, name) != 0)
            continue;
        if (!voices[i].voice)
            voices[i].voice = voices[i].reg(NULL);
        v = voices[i].voice;
        break;
    }
    pthread_mutex_unlock(&registry_lock);
    return v;
}

struct stream_ctx {
    struct tts_out out;
    bool rate_ok;
};

/* flite's streaming hook: called from inside synthesis with each new stretch of wave. */
static int on_audio(const cst_wave *w, int start, int size, int last, cst_audio_streaming_info *asi)
{
    struct stream_ctx *c = asi->userdata;

    (void)last;
    if (w->num_channels != 1) {
        c->rate_ok = false;
        return CST_AUDIO_STREAM_STOP;
    }
    if (w->sample_rate != c->out.in_rate) {
        /* The voice's "sample_rate" feature was missing or wrong: switch before any
         * audio has gone out, or give up. */
        tts_sink_fn sink = c->out.sink;
        void *user = c->out.user;
        if (c->out.samples > 0 || w->sample_rate <= 0) {
            c->rate_ok = false;
            return CST_AUDIO_STREAM_STOP;
        }
        tts_out_fini(&c->out);
        if (tts_out_init(&c->out, w->sample_rate, sink, user) != 0) {
            c->rate_ok = false;
            return CST_AUDIO_STREAM_STOP;
        }
    }
    if (size <= 0)
        return CST_AUDIO_STREAM_CONT;
    if (tts_out_push(&c->out, w->samples + start, (size_t)size) != 0)
        return CST_AUDIO_STREAM_STOP;
    return CST_AUDIO_STREAM_CONT;
}

int tts_flite_speak(void *voice, const char *text, tts_sink_fn sink, void *user)
{
    cst_voice *v = voice;
    cst_utterance *u;
    cst_audio_streaming_info *asi;
    const cst_wave *w;
    struct stream_ctx c;
    int rv;

    memset(&c, 0, sizeof c);
    /* Every voice here synthesises at 16 kHz; a voice that does not is resampled. */
    c.rate_ok = true;
    rv =
        tts_out_init(&c.out, flite_get_param_int(v->features, "sample_rate", TTS_RATE), sink, user);
    if (rv != 0)
        return rv;

    u = new_utterance();
    asi = new_audio_streaming_info();
    if (!u || !asi) {
        delete_utterance(u);
        rv = VAP_ENOMEM;
        goto out;
    }
    asi->min_buffsize = STREAM_MIN_SAMPLES;
    asi->asc = on_audio;
    asi->userdata = &c;
    /* The utterance owns asi from here (deleted with its features). */
    utt_set_feat(u, "streaming_info", audio_streaming_info_val(asi));
    utt_set_input_text(u, text);
    u = flite_do_synth(u, v, utt_synth);
    if (!u) {
        rv = c.out.canceled ? VAP_ECANCELED : VAP_EINTERNAL;
        goto out;
    }
    if (c.out.canceled) {
        rv = VAP_ECANCELED;
        goto out_utt;
    }
    if (!c.rate_ok) {
        rv = VAP_EINTERNAL;
        goto out_utt;
    }
    /*
     * Whatever the streaming hook did not deliver (a voice whose synthesis does not
     * stream, or the tail after the last hook call) goes out now, in chunks.
     */
    w = utt_wave(u);
    if (w && c.out.samples < (size_t)w->num_samples && c.out.in_rate == TTS_RATE) {
        size_t at = c.out.samples;
        while (at < (size_t)w->num_samples) {
            size_t n = (size_t)w->num_samples - at;
            if (n > STREAM_MIN_SAMPLES)
                n = STREAM_MIN_SAMPLES;
            if (tts_out_push(&c.out, w->samples + at, n) != 0) {
                rv = VAP_ECANCELED;
                goto out_utt;
            }
            at += n;
        }
    }
    rv = tts_out_flush(&c.out) != 0 ? VAP_ECANCELED : 0;
out_utt:
    delete_utterance(u);
out:
    tts_out_fini(&c.out);
    return rv;
}
