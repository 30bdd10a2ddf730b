/*
 * Voice activity detection on 20 ms frames of 16 kHz audio: when the visitor starts
 * speaking, when a turn ends, and when speech over the agent is sustained enough to
 * cancel its reply. It is an energy detector, not a classifier: a frame is "active" when
 * its energy (after a 100 Hz high-pass) stands a margin above an adaptive noise floor,
 * and "voiced" when it is also periodic (normalised autocorrelation at a pitch lag).
 *
 * - The floor is the minimum frame energy over the last 3 s (minimum statistics): speech
 *   always dips between syllables, so the floor stays at the noise, and a louder steady
 *   noise (a fan switched on) is adopted within 3 s instead of counting as speech.
 * - Onset needs start_ms of voiced frames within one burst of activity; a noise burst (a
 *   cough, a click, a door) is active but not voiced and never starts speech.
 * - In speech, a quieter margin keeps weak consonants in; the turn ends after
 *   end_silence_ms without an active frame, so pauses between words do not end it.
 * - Barge-in: while the agent is audible, BARGE_IN needs barge_in_ms of activity in one
 *   run (pauses up to BARGE_GAP_MS bridged), so a short "mhm" does not cancel the reply.
 * - Pre-roll: every frame goes through a ring; at onset the pre_roll_ms before the first
 *   active frame, and everything since, is copied out for the recogniser.
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "audio.h"
#include "err.h"

#define FLOOR_WINDOW_FRAMES 150 /* 3 s of minimum statistics */
#define FLOOR_MIN_DB -70.0f     /* dBFS: below this, differences are quantisation noise */
#define ABS_MIN_DB -60.0f       /* dBFS: quieter than this is never speech */
#define ONSET_MARGIN_DB 10.0f   /* above the floor to start a burst of activity */
#define CONTINUE_MARGIN_DB 6.0f /* above the floor to stay active (hysteresis) */
#define AGENT_MARGIN_DB 3.0f    /* extra while the agent is audible (residual echo) */
#define VOICED_MIN_CORR 0.45f   /* normalised autocorrelation: speech 0.6-0.95, noise < 0.3 */
#define CAND_GAP_MS 200         /* a burst without onset is dropped after this pause */
#define CAND_MAX_MS 1000        /* ... or when it lasts this long without enough voice */
#define BARGE_GAP_MS 300        /* a pause this long restarts the barge-in count */
#define PRE_ROLL_MAX_MS 2000
#define HPF_POLE 0.9615f /* first-order high-pass at ~100 Hz (1 / (1 + 2*pi*100/16k)) */
#define DEC_FACTOR 4     /* voicing runs at 4 kHz, on the band below 1 kHz */
#define DEC_LEN (AUDIO_FRAME_SAMPLES / DEC_FACTOR)
#define PITCH_LAG_MIN 10 /* 400 Hz at 4 kHz */
#define PITCH_LAG_MAX 50 /* 80 Hz */
/* 2nd-order Butterworth low-pass at 1 kHz for 16 kHz (RBJ cookbook, Q = 1/sqrt(2)). */
#define LP_B0 0.0299545f
#define LP_B1 0.0599090f
#define LP_B2 0.0299545f
#define LP_A1 -1.4542436f
#define LP_A2 0.5740616f

enum vad_state { VAD_IDLE, VAD_CANDIDATE, VAD_SPEAKING };

struct vad {
    struct vad_config cfg;
    enum vad_state state;
    bool agent_speaking;
    bool barge_sent;
    bool barge_pending;

    /* front end */
    float hpf_x1, hpf_y1;
    float lp_x1, lp_x2, lp_y1, lp_y2;
    float dec[2 * DEC_LEN]; /* previous and current frame at 4 kHz, for the voicing lag */
    float floor_ring[FLOOR_WINDOW_FRAMES];
    int floor_n, floor_pos;

    /* counters, in ms */
    int cand_ms, cand_active_ms, cand_voiced_ms, cand_gap_ms;
    int speech_ms, silence_ms;
    int barge_ms, barge_voiced_ms, barge_gap_ms;

    /* pre-roll: a ring of every frame, a snapshot taken at onset */
    int16_t *ring;
    size_t ring_frames;
    uint64_t frame_no;      /* frames processed so far */
    uint64_t cand_start_no; /* frame number of the burst's first active frame */
    int16_t *snap;
    size_t snap_len;
};

int vad_new(const struct vad_config *cfg, struct vad **out)
{
    struct vad *v;
    size_t frames;

    *out = NULL;
    if (!cfg || cfg->start_ms < 0 || cfg->start_ms > 5000 || cfg->barge_in_ms < 0 ||
        cfg->barge_in_ms > 10000 || cfg->end_silence_ms < AUDIO_FRAME_MS ||
        cfg->end_silence_ms > 60000 || cfg->pre_roll_ms < 0 || cfg->pre_roll_ms > PRE_ROLL_MAX_MS)
        return VAP_EINVAL;
    v = calloc(1, sizeof(*v));
    if (!v)
        return VAP_ENOMEM;
    v->cfg = *cfg;
    /* The ring covers the pre-roll plus the longest burst before an onset, and the frame. */
    frames = (size_t)(cfg->pre_roll_ms + CAND_MAX_MS) / AUDIO_FRAME_MS + 2;
    v->ring_frames = frames;
    v->ring = calloc(frames * AUDIO_FRAME_SAMPLES, sizeof(int16_t));
    v->snap = calloc(frames * AUDIO_FRAME_SAMPLES, sizeof(int16_t));
    if (!v->ring || !v->snap) {
        vad_free(v);
        return VAP_ENOMEM;
    }
    /* Until the first window of real audio has passed, assume a quiet room: a client may
     * start sending just as the visitor starts talking (no silence to learn the floor
     * from), and without a prior the first words would become the floor and be lost. */
    for (int i = 0; i < FLOOR_WINDOW_FRAMES; i++)
        v->floor_ring[i] = ABS_MIN_DB;
    v->floor_n = FLOOR_WINDOW_FRAMES;
    *out = v;
    return 0;
}

void vad_free(struct vad *v)
{
    if (!v)
        return;
    free(v->ring);
    free(v->snap);
    free(v);
}

/*
 * High-passes the frame and returns its energy in dBFS; keeps a low-passed 4 kHz copy
 * for voicing (the pitch shows best below 1 kHz, and a quarter of the samples is cheap).
 */
static float frame_energy(struct vad *v, const int16_t *frame)
{
    double sum = 0;
    float x1 = v->hpf_x1, y1 = v->hpf_y1;
    float lx1 = v->lp_x1, lx2 = v->lp_x2, ly1 = v->lp_y1, ly2 = v->lp_y2;

    memmove(v->dec, v->dec + DEC_LEN, DEC_LEN * sizeof(float));
    for (int i = 0; i < AUDIO_FRAME_SAMPLES; i++) {
        float x = frame[i];
        float y = HPF_POLE * (y1 + x - x1);
        float l = LP_B0 * y + LP_B1 * lx1 + LP_B2 * lx2 - LP_A1 * ly1 - LP_A2 * ly2;
        x1 = x;
        y1 = y;
        lx2 = lx1;
        lx1 = y;
        ly2 = ly1;
        ly1 = l;
        sum += (double)y * y;
        if (i % DEC_FACTOR == 0)
            v->dec[DEC_LEN + i / DEC_FACTOR] = l;
    }
    /* Keep the state finite and away from denormals on digital silence. */
    v->hpf_x1 = x1;
    v->hpf_y1 = fabsf(y1) < 1e-6f ? 0 : y1;
    v->lp_x1 = lx1;
    v->lp_x2 = lx2;
    v->lp_y1 = fabsf(ly1) < 1e-6f ? 0 : ly1;
    v->lp_y2 = fabsf(ly2) < 1e-6f ? 0 : ly2;
    return (float)(10.0 * log10(sum / AUDIO_FRAME_SAMPLES / (32768.0 * 32768.0) + 1e-10));
}

/* The best normalised autocorrelation over pitch lags 80-400 Hz, on the last 40 ms. */
static float voicing(const struct vad *v)
{
    const float *x = v->dec;
    const int n = 2 * DEC_LEN;
    float best = 0;

    for (int lag = PITCH_LAG_MIN; lag <= PITCH_LAG_MAX; lag++) {
        float xy = 0, xx = 0, yy = 0;
        for (int i = 0; i + lag < n; i++) {
            xy += x[i] * x[i + lag];
            xx += x[i] * x[i];
            yy += x[i + lag] * x[i + lag];
        }
        if (xx > 0 && yy > 0 && xy > 0) {
            float r = xy / sqrtf(xx * yy);
            if (r > best)
                best = r;
        }
    }
    return best;
}

static float noise_floor(struct vad *v, float e)
{
    float floor_db = e;

    v->floor_ring[v->floor_pos] = e;
    v->floor_pos = (v->floor_pos + 1) % FLOOR_WINDOW_FRAMES;
    if (v->floor_n < FLOOR_WINDOW_FRAMES)
        v->floor_n++;
    for (int i = 0; i < v->floor_n; i++)
        if (v->floor_ring[i] < floor_db)
            floor_db = v->floor_ring[i];
    return floor_db < FLOOR_MIN_DB ? FLOOR_MIN_DB : floor_db;
}

static void ring_push(struct vad *v, const int16_t *frame)
{
    size_t slot = (size_t)(v->frame_no % v->ring_frames);
    memcpy(v->ring + slot * AUDIO_FRAME_SAMPLES, frame, AUDIO_FRAME_SAMPLES * sizeof(int16_t));
}

/* Copies the pre-roll and the burst so far (the current frame included) out of the ring. */
static void take_snapshot(struct vad *v)
{
    uint64_t pre = (uint64_t)v->cfg.pre_roll_ms / AUDIO_FRAME_MS;
    uint64_t first = v->cand_start_no > pre ? v->cand_start_no - pre : 0;
    uint64_t oldest = v->frame_no + 1 > v->ring_frames ? v->frame_no + 1 - v->ring_frames : 0;

    if (first < oldest)
        first = oldest;
    v->snap_len = 0;
    for (uint64_t f = first; f <= v->frame_no; f++) {
        size_t slot = (size_t)(f % v->ring_frames);
        memcpy(v->snap + v->snap_len, v->ring + slot * AUDIO_FRAME_SAMPLES,
               AUDIO_FRAME_SAMPLES * sizeof(int16_t));
        v->snap_len += AUDIO_FRAME_SAMPLES;
    }
}

static void start_candidate(struct vad *v, bool voiced)
{
    v->state = VAD_CANDIDATE;
    v->cand_start_no = v->frame_no;
    v->cand_ms = v->cand_active_ms = AUDIO_FRAME_MS;
    v->cand_voiced_ms = voiced ? AUDIO_FRAME_MS : 0;
    v->cand_gap_ms = 0;
}

static bool barge_due(const struct vad *v)
{
    int voiced_need = v->cfg.start_ms < v->cfg.barge_in_ms ? v->cfg.start_ms : v->cfg.barge_in_ms;
    return v->agent_speaking && !v->barge_sent && v->barge_ms >= v->cfg.barge_in_ms &&
           v->barge_voiced_ms >= voiced_need;
}

enum vad_event vad_process(struct vad *v, const int16_t *frame)
{
    float e = frame_energy(v, frame);
    float floor_db = noise_floor(v, e);
    float extra = v->agent_speaking ? AGENT_MARGIN_DB : 0.0f;
    float margin = (v->state == VAD_IDLE ? ONSET_MARGIN_DB : CONTINUE_MARGIN_DB) + extra;
    bool active = e > floor_db + margin && e > ABS_MIN_DB;
    bool voiced = active && voicing(v) >= VOICED_MIN_CORR;
    enum vad_event ev = VAD_NONE;

    ring_push(v, frame);
    if (active)
        v->silence_ms = 0;
    else if (v->silence_ms < INT_MAX - AUDIO_FRAME_MS)
        v->silence_ms += AUDIO_FRAME_MS;

    switch (v->state) {
    case VAD_IDLE:
        if (active)
            start_candidate(v, voiced);
        break;
    case VAD_CANDIDATE:
        v->cand_ms += AUDIO_FRAME_MS;
        if (active) {
            v->cand_active_ms += AUDIO_FRAME_MS;
            v->cand_gap_ms = 0;
            if (voiced)
                v->cand_voiced_ms += AUDIO_FRAME_MS;
        } else {
            v->cand_gap_ms += AUDIO_FRAME_MS;
        }
        if (v->cand_gap_ms >= CAND_GAP_MS) {
            v->state = VAD_IDLE;
        } else if (v->cand_voiced_ms >= v->cfg.start_ms && v->cand_voiced_ms > 0) {
            v->state = VAD_SPEAKING;
            v->speech_ms = v->cand_active_ms;
            v->barge_ms = v->cand_active_ms;
            v->barge_voiced_ms = v->cand_voiced_ms;
            v->barge_gap_ms = v->cand_gap_ms;
            v->barge_sent = false;
            take_snapshot(v);
            ev = VAD_SPEECH_START;
            v->barge_pending = barge_due(v);
        } else if (v->cand_ms >= CAND_MAX_MS) {
            if (active)
                start_candidate(v, voiced);
            else
                v->state = VAD_IDLE;
        }
        break;
    case VAD_SPEAKING:
        if (active) {
            v->speech_ms += AUDIO_FRAME_MS;
            v->barge_ms += AUDIO_FRAME_MS;
            if (voiced)
                v->barge_voiced_ms += AUDIO_FRAME_MS;
            v->barge_gap_ms = 0;
        } else {
            v->barge_gap_ms += AUDIO_FRAME_MS;
            if (v->barge_gap_ms >= BARGE_GAP_MS)
                v->barge_ms = v->barge_voiced_ms = 0;
        }
        if (v->silence_ms >= v->cfg.end_silence_ms) {
            v->state = VAD_IDLE;
            v->barge_pending = false;
            ev = VAD_SPEECH_END;
        } else if (v->barge_pending || barge_due(v)) {
            v->barge_pending = false;
            if (v->agent_speaking && !v->barge_sent) {
                v->barge_sent = true;
                ev = VAD_BARGE_IN;
            }
        }
        break;
    }
    v->frame_no++;
    return ev;
}

bool vad_in_speech(const struct vad *v)
{
    return v->state == VAD_SPEAKING;
}

void vad_set_agent_speaking(struct vad *v, bool speaking)
{
    v->agent_speaking = speaking;
}

size_t vad_pre_roll(const struct vad *v, int16_t *out, size_t max)
{
    size_t n = v->snap_len < max ? v->snap_len : max;
    memcpy(out, v->snap + (v->snap_len - n), n * sizeof(int16_t));
    return n;
}

int vad_speech_ms(const struct vad *v)
{
    return v->speech_ms;
}

int vad_silence_ms(const struct vad *v)
{
    return v->silence_ms;
}
