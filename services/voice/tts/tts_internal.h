/*
 * Internal interface between the tts dispatcher (tts.c) and its engines (tts_flite.c,
 * tts_espeak.c). Not for use outside services/voice/tts/.
 *
 * Engines synthesise one sentence at a time and hand PCM at their own rate to
 * tts_out_push(), which resamples to 16 kHz when needed and calls the caller's sink.
 * Once the sink asks to stop, tts_out_push() returns nonzero and keeps doing so.
 */
#ifndef VAP_VOICE_TTS_INTERNAL_H
#define VAP_VOICE_TTS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tts.h"

#define TTS_RATE 16000
#define TTS_MAX_TEXT (64 * 1024) /* ceiling on one tts_speak call's text */

enum tts_engine {
    TTS_ENGINE_FLITE,
    TTS_ENGINE_ESPEAK,
};

/* Where synthesised audio goes: one per tts_speak call, owned by the caller's stack. */
struct tts_out {
    tts_sink_fn sink;
    void *user;
    int in_rate;     /* rate of the engine's samples */
    void *resampler; /* SpeexResamplerState when in_rate != TTS_RATE */
    bool canceled;
    size_t samples; /* 16 kHz samples delivered so far */
};

int tts_out_init(struct tts_out *o, int in_rate, tts_sink_fn sink, void *user);
/* Delivers n samples at o->in_rate. Returns nonzero once the sink has asked to stop. */
int tts_out_push(struct tts_out *o, const int16_t *pcm, size_t n);
/* Drains the resampler at the end of a sentence; returns nonzero if canceled. */
int tts_out_flush(struct tts_out *o);
void tts_out_fini(struct tts_out *o);

/* flite: voice names "slt", "kal16", "awb", "rms". Returns an opaque shared voice or NULL. */
void *tts_flite_voice(const char *name);
/* Speaks one sentence (already normalised) with a voice from tts_flite_voice. */
int tts_flite_speak(void *voice, const char *text, tts_sink_fn sink, void *user);

/* espeak-ng: checks that the voice exists (0, VAP_EINVAL or VAP_EUNAVAIL). */
int tts_espeak_check(const char *voice);
int tts_espeak_speak(const char *voice, const char *text, tts_sink_fn sink, void *user);

#endif
