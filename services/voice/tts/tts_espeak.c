/*
 * espeak-ng engine, for languages flite has no voice for. espeak-ng keeps its whole
 * synthesis state in globals (current voice, phoneme lists, output buffer, the one
 * synth callback), so every call into it runs under one process-wide mutex: sessions
 * speaking through espeak-ng take turns, sentence by sentence. espeak-ng is fast (tens
 * of times real time), so a sentence holds the lock for a few tens of milliseconds.
 *
 * The sink is called with that lock held, so it must not block (queue the audio and
 * return). Output is 22050 Hz and resampled to 16 kHz by tts_out.
 */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include <espeak-ng/espeak_ng.h>

#include "err.h"
#include "tts_internal.h"

#define ESPEAK_BUFFER_MS 60 /* the callback gets audio in pieces of about this length */

static pthread_mutex_t espeak_lock = PTHREAD_MUTEX_INITIALIZER;
static int espeak_state; /* 0 not tried, 1 ready, <0 failed (a vap_err) */
static int espeak_rate;
static char current_voice[64];
static struct tts_out *current_out; /* the call being synthesised; under espeak_lock */

/* espeak-ng's synth callback: wav == NULL marks the end. Returning 1 aborts. */
static int on_audio(short *wav, int numsamples, espeak_EVENT *events)
{
    (void)events;
    if (!current_out)
        return 1;
    if (!wav || numsamples <= 0)
        return current_out->canceled ? 1 : 0;
    return tts_out_push(current_out, wav, (size_t)numsamples) != 0 ? 1 : 0;
}

/* Caller holds espeak_lock. */
static int ensure_init(void)
{
    espeak_ng_STATUS st;

    if (espeak_state != 0)
        return espeak_state > 0 ? 0 : espeak_state;
    espeak_state = VAP_EUNAVAIL;
    espeak_ng_InitializePath(NULL);
    st = espeak_ng_Initialize(NULL);
    if (st != ENS_OK)
        return espeak_state;
    st = espeak_ng_InitializeOutput(ENOUTPUT_MODE_SYNCHRONOUS, ESPEAK_BUFFER_MS, NULL);
    if (st != ENS_OK)
        return espeak_state;
    espeak_SetSynthCallback(on_audio);
    espeak_rate = espeak_ng_GetSampleRate();
    if (espeak_rate <= 0)
        return espeak_state;
    espeak_state = 1;
    return 0;
}

/* Caller holds espeak_lock. */
static int select_voice(const char *voice)
{
    if (strlen(voice) >= sizeof current_voice)
        return VAP_EINVAL;
    if (strcmp(current_voice, voice) == 0)
        return 0;
    if (espeak_ng_SetVoiceByName(voice) != ENS_OK) {
        current_voice[0] = '\0'; /* espeak-ng may have half-switched */
        return VAP_EINVAL;
    }
    memcpy(current_voice, voice, strlen(voice) + 1);
    return 0;
}

int tts_espeak_check(const char *voice)
{
    int rv;

    pthread_mutex_lock(&espeak_lock);
    rv = ensure_init();
    if (rv == 0)
        rv = select_voice(voice);
    pthread_mutex_unlock(&espeak_lock);
    return rv;
}

int tts_espeak_speak(const char *voice, const char *text, tts_sink_fn sink, void *user)
{
    struct tts_out out;
    espeak_ng_STATUS st;
    int rv;

    pthread_mutex_lock(&espeak_lock);
    rv = ensure_init();
    if (rv != 0)
        goto unlock;
    rv = select_voice(voice);
    if (rv != 0)
        goto unlock;
    rv = tts_out_init(&out, espeak_rate, sink, user);
    if (rv != 0)
        goto unlock;
    current_out = &out;
    st = espeak_ng_Synthesize(text, strlen(text) + 1, 0, POS_CHARACTER, 0, espeakCHARS_UTF8, NULL,
                              NULL);
    current_out = NULL;
    if (out.canceled)
        rv = VAP_ECANCELED;
    else if (st != ENS_OK)
        rv = VAP_EINTERNAL;
    else
        rv = tts_out_flush(&out) != 0 ? VAP_ECANCELED : 0;
    tts_out_fini(&out);
unlock:
    pthread_mutex_unlock(&espeak_lock);
    return rv;
}
