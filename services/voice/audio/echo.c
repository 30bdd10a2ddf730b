/*
 * Keeps the agent's own voice, played by the visitor's speaker and picked up again by
 * the microphone, from reaching the VAD as if the visitor spoke (it would barge in on
 * itself). Two stages, both only while the agent was audible in the last ECHO_TAIL_MS:
 *
 * 1. speexdsp's adaptive echo canceller (MDF, 20 ms frames, ECHO_TAIL_MS tail) removes
 *    the linear echo, and its preprocessor suppresses what is left (residual echo
 *    suppression needs the preprocessor's denoiser on; it is set mild).
 * 2. A residual-echo gate: the echo left in a frame is predicted as the loudest recent
 *    playback frame, plus the echo path's gain (a high percentile of microphone minus
 *    playback energy), minus what the canceller removes (a high percentile of its input
 *    minus output energy). A frame not clearly above that is attenuated by 40 dB. Both
 *    estimates err towards gating: double talk raises the first and barely moves the
 *    second. This covers the canceller's first seconds, before it has converged (the
 *    visitor cannot barge in then unless clearly louder than the echo), and non-linear
 *    echo; with headphones the path's gain falls to the noise floor and nothing is gated.
 *
 * Playback frames are queued as they are sent; each microphone frame takes the oldest as
 * its reference, so the queue's depth stands for the client's playout buffer and the
 * canceller's tail only has to cover the rest of the round trip. Without recent playback
 * the microphone passes through untouched (the recogniser gets the visitor's real voice).
 * Not thread-safe: the worker holds its playout lock around both calls.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <speex/speex_echo.h>
#include <speex/speex_preprocess.h>

#include "audio.h"
#include "clock.h"
#include "err.h"

#define ECHO_MAX_LAG_MS 500 /* playback older than this no longer echoes */
#define ECHO_TAIL_MS 300 /* echo path the canceller models beyond the queue */
#define QUEUE_FRAMES 50  /* 1 s of playback not yet matched by microphone frames */
#define TAIL_FRAMES (ECHO_TAIL_MS / AUDIO_FRAME_MS)
#define SILENT_DB -60.0f      /* playback quieter than this makes no audible echo */
#define NOISE_SUPPRESS_DB -12 /* mild: the recogniser prefers a little noise to artefacts */
#define ECHO_SUPPRESS_DB -40
#define ECHO_SUPPRESS_ACTIVE_DB -15
#define GATE_MARGIN_DB 3.0f         /* near-end speech beats the predicted residual echo by this */
#define COUPLING_INIT_DB -6.0f      /* a loud speakerphone's loss, until measured */
#define COUPLING_UP_DB 2.7f         /* a 90th-percentile tracker of the coupling: up fast, */
#define COUPLING_DOWN_DB 0.5f       /* down slowly (headphones: -40 dB within 1.5 s) */
#define COUPLING_OUTLIER_DB 10.0f   /* a frame this far above the estimate... */
#define COUPLING_UP_OUTLIER_DB 0.1f /* ...raises it only this much */
#define COUPLING_MIN_PLAY_DB -35.0f /* playback loud enough to measure the path against */
#define COUPLING_MIN_DB -80.0f
#define COUPLING_MAX_DB 12.0f /* a speaker pressed to the microphone */
#define ERLE_UP_DB 0.6f       /* a 75th-percentile tracker of the cancellation: double */
#define ERLE_DOWN_DB 0.2f     /* talk (nothing removed) pulls it down slowly */
#define GATE_ATTEN 0.01f      /* -40 dB on frames judged echo only */
#define ECHO_MIN_DB -50.0f    /* microphone frames quieter than this say nothing */

struct echo_filter {
    SpeexEchoState *aec;
    SpeexPreprocessState *pre;
    int16_t queue[QUEUE_FRAMES][AUDIO_FRAME_SAMPLES];
    int64_t queued_at[QUEUE_FRAMES]; /* monotonic ms when each reference was played */
    int q_head, q_len;
    float ref_db[TAIL_FRAMES]; /* energies of the last references, newest last */
    int ref_pos;
    int quiet_frames;  /* captures since the last audible reference */
    float coupling_db; /* microphone minus playback energy, 90th percentile */
    float erle_db;     /* what the canceller removes (echo return loss
                          enhancement), 75th percentile over frames with playback */
};

static float energy_db(const int16_t *x)
{
    double sum = 0;
    for (int i = 0; i < AUDIO_FRAME_SAMPLES; i++)
        sum += (double)x[i] * x[i];
    return (float)(10.0 * log10(sum / AUDIO_FRAME_SAMPLES / (32768.0 * 32768.0) + 1e-10));
}

int echo_filter_new(struct echo_filter **out)
{
    struct echo_filter *f;
    spx_int32_t rate = AUDIO_RATE, on = 1, v;

    *out = NULL;
    f = calloc(1, sizeof(*f));
    if (!f)
        return VAP_ENOMEM;
    f->aec = speex_echo_state_init(AUDIO_FRAME_SAMPLES, AUDIO_RATE * ECHO_TAIL_MS / 1000);
    f->pre = speex_preprocess_state_init(AUDIO_FRAME_SAMPLES, AUDIO_RATE);
    if (!f->aec || !f->pre) {
        echo_filter_free(f);
        return VAP_ENOMEM;
    }
    speex_echo_ctl(f->aec, SPEEX_ECHO_SET_SAMPLING_RATE, &rate);
    speex_preprocess_ctl(f->pre, SPEEX_PREPROCESS_SET_ECHO_STATE, f->aec);
    speex_preprocess_ctl(f->pre, SPEEX_PREPROCESS_SET_DENOISE, &on);
    v = NOISE_SUPPRESS_DB;
    speex_preprocess_ctl(f->pre, SPEEX_PREPROCESS_SET_NOISE_SUPPRESS, &v);
    v = ECHO_SUPPRESS_DB;
    speex_preprocess_ctl(f->pre, SPEEX_PREPROCESS_SET_ECHO_SUPPRESS, &v);
    v = ECHO_SUPPRESS_ACTIVE_DB;
    speex_preprocess_ctl(f->pre, SPEEX_PREPROCESS_SET_ECHO_SUPPRESS_ACTIVE, &v);
    for (int i = 0; i < TAIL_FRAMES; i++)
        f->ref_db[i] = -100.0f;
    f->quiet_frames = TAIL_FRAMES;
    f->coupling_db = COUPLING_INIT_DB;
    *out = f;
    return 0;
}

void echo_filter_free(struct echo_filter *f)
{
    if (!f)
        return;
    if (f->pre)
        speex_preprocess_state_destroy(f->pre);
    if (f->aec)
        speex_echo_state_destroy(f->aec);
    free(f);
}

void echo_filter_playback(struct echo_filter *f, const int16_t *frame)
{
    int slot;
    if (f->q_len == QUEUE_FRAMES) {
        /* Nobody is capturing: keep the newest second, the older one can no longer echo. */
        f->q_head = (f->q_head + 1) % QUEUE_FRAMES;
        f->q_len--;
    }
    slot = (f->q_head + f->q_len) % QUEUE_FRAMES;
    memcpy(f->queue[slot], frame, sizeof(f->queue[slot]));
    f->queued_at[slot] = vap_now_ms();
    f->q_len++;
}

void echo_filter_capture(struct echo_filter *f, const int16_t *in, int16_t *out)
{
    int16_t ref[AUDIO_FRAME_SAMPLES];
    float ref_e, in_e, out_e, peak = -100.0f, predicted;
    int64_t now = vap_now_ms();

    /* References older than the longest plausible client playout delay cannot be in this
     * microphone frame: a client that sent no audio while the agent spoke (muted, or a
     * text-only turn) would otherwise have its first words matched against old playback. */
    while (f->q_len > 0 && now - f->queued_at[f->q_head] > ECHO_MAX_LAG_MS) {
        f->q_head = (f->q_head + 1) % QUEUE_FRAMES;
        f->q_len--;
    }
    if (f->q_len > 0) {
        memcpy(ref, f->queue[f->q_head], sizeof(ref));
        f->q_head = (f->q_head + 1) % QUEUE_FRAMES;
        f->q_len--;
    } else {
        memset(ref, 0, sizeof(ref));
    }
    ref_e = energy_db(ref);
    f->ref_db[f->ref_pos] = ref_e;
    f->ref_pos = (f->ref_pos + 1) % TAIL_FRAMES;
    f->quiet_frames = ref_e > SILENT_DB ? 0 : f->quiet_frames + 1;
    if (f->quiet_frames > TAIL_FRAMES) {
        /* No echo possible: pass the visitor through and let the preprocessor track noise. */
        memcpy(out, in, AUDIO_FRAME_SAMPLES * sizeof(int16_t));
        speex_preprocess_estimate_update(f->pre, out);
        return;
    }
    for (int i = 0; i < TAIL_FRAMES; i++)
        if (f->ref_db[i] > peak)
            peak = f->ref_db[i];

    speex_echo_cancellation(f->aec, in, ref, out);
    speex_preprocess_run(f->pre, out);
    in_e = energy_db(in);
    out_e = energy_db(out);

    /*
     * The echo path's gain: a high percentile of microphone minus recent playback energy,
     * measured while the playback is loud enough to stand out of the room's noise. A
     * frame far above the estimate (the visitor, most likely) moves it up only slowly,
     * so the visitor's voice cannot gate itself, while a louder echo path (headphones
     * unplugged) is still adopted within seconds.
     */
    if (peak > COUPLING_MIN_PLAY_DB) {
        bool outlier = in_e - peak > f->coupling_db + COUPLING_OUTLIER_DB;
        float up = outlier ? COUPLING_UP_OUTLIER_DB : COUPLING_UP_DB;
        f->coupling_db += in_e - peak > f->coupling_db ? up : -COUPLING_DOWN_DB;
        if (f->coupling_db < COUPLING_MIN_DB)
            f->coupling_db = COUPLING_MIN_DB;
        else if (f->coupling_db > COUPLING_MAX_DB)
            f->coupling_db = COUPLING_MAX_DB;
    }
    /* How much the canceller removes: a high percentile, so double talk (nothing
     * removed) must last most of the time to move it. */
    if (in_e > ECHO_MIN_DB) {
        f->erle_db += in_e - out_e > f->erle_db ? ERLE_UP_DB : -ERLE_DOWN_DB;
        if (f->erle_db < 0)
            f->erle_db = 0;
    }
    /* What echo may be left in this frame; anything not clearly above it is gated. */
    predicted = peak + f->coupling_db - f->erle_db;
    if (out_e < predicted + GATE_MARGIN_DB) {
        for (int i = 0; i < AUDIO_FRAME_SAMPLES; i++)
            out[i] = (int16_t)lrintf(out[i] * GATE_ATTEN);
    }
}
