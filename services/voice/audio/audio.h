/*
 * The voice worker's audio plumbing, all at the pipeline's internal format: 16 kHz mono
 * signed 16-bit PCM, in 20 ms frames (AUDIO_FRAME_SAMPLES). Codecs turn the client's
 * frames (Opus or PCM16LE at 16 or 48 kHz) into that format and back; the VAD decides
 * when the visitor starts and stops speaking; the echo filter keeps the agent's own
 * voice, leaking from the visitor's speaker into the microphone, from counting as speech.
 */
#ifndef VAP_VOICE_AUDIO_H
#define VAP_VOICE_AUDIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUDIO_RATE 16000
#define AUDIO_FRAME_MS 20
#define AUDIO_FRAME_SAMPLES (AUDIO_RATE * AUDIO_FRAME_MS / 1000) /* 320 */

/* MULAW is G.711 mu-law at 8 kHz only (telephone bridges, protocol=twilio). */
enum audio_codec { AUDIO_CODEC_PCM16 = 0, AUDIO_CODEC_OPUS = 1, AUDIO_CODEC_MULAW = 2 };

/* "pcm16", "opus" or "mulaw": the names of the stream's codec= query option. */
const char *audio_codec_name(enum audio_codec codec);

/* ---- client frames -> 16 kHz PCM ------------------------------------------------ */

struct audio_decoder;

/* sample_rate is the client's (16000 or 48000). Returns 0 or VAP_EINVAL / VAP_ENOMEM. */
int audio_decoder_new(enum audio_codec codec, int sample_rate, struct audio_decoder **out);
void audio_decoder_free(struct audio_decoder *d);

/*
 * Decodes one client frame (one Opus packet, or PCM16LE of any whole number of samples
 * up to 120 ms) into 16 kHz samples. Returns the number of samples written (<= max), or
 * VAP_EPROTO for a frame that does not decode (odd PCM length, corrupt Opus, too long).
 */
int audio_decode(struct audio_decoder *d, const uint8_t *frame, size_t len, int16_t *out,
                 size_t max);

/* ---- 16 kHz PCM -> client frames ------------------------------------------------ */

struct audio_encoder;

int audio_encoder_new(enum audio_codec codec, int sample_rate, struct audio_encoder **out);
void audio_encoder_free(struct audio_encoder *e);

/*
 * Encodes exactly AUDIO_FRAME_SAMPLES samples (20 ms at 16 kHz) into one client frame
 * (an Opus packet, or 20 ms of PCM16LE at the client's rate). Returns bytes written or
 * a negative vap_err.
 */
int audio_encode(struct audio_encoder *e, const int16_t *pcm, uint8_t *out, size_t max);

/* ---- resampling (speexdsp) ------------------------------------------------------ */

struct audio_resampler;

int audio_resampler_new(int in_rate, int out_rate, struct audio_resampler **out);
void audio_resampler_free(struct audio_resampler *r);
/* Returns samples written (<= max). Keeps filter state between calls. */
int audio_resample(struct audio_resampler *r, const int16_t *in, size_t n, int16_t *out,
                   size_t max);

/* ---- telephone audio (g711.c): G.711 mu-law and 8 <-> 16 kHz ------------------- */

uint8_t g711_mulaw_encode(int16_t sample);
int16_t g711_mulaw_decode(uint8_t byte);
void g711_mulaw_encode_buf(const int16_t *pcm, size_t n, uint8_t *out);
void g711_mulaw_decode_buf(const uint8_t *in, size_t n, int16_t *out);

#define G711_HISTORY 48 /* samples of filter history kept between calls */

/* One direction's filter state; zero it with g711_rate_init before the first call. */
struct g711_rate {
    int16_t hist[G711_HISTORY];
};

void g711_rate_init(struct g711_rate *r);
/* n samples at 8 kHz in, 2n at 16 kHz out (delayed by 12 input samples). Returns 2n or
 * VAP_ETOOBIG (max < 2n). */
int g711_upsample_8k_to_16k(struct g711_rate *r, const int16_t *in, size_t n, int16_t *out,
                            size_t max);
/* n samples at 16 kHz in, n/2 at 8 kHz out (delayed by 24 input samples). Returns n/2,
 * VAP_EINVAL (n odd: not a whole number of 8 kHz samples) or VAP_ETOOBIG. */
int g711_downsample_16k_to_8k(struct g711_rate *r, const int16_t *in, size_t n, int16_t *out,
                              size_t max);

/*
 * For the recogniser only: fills 4-8 kHz of telephone speech (decoded from 8 kHz) with
 * the mirror image of 0-4 kHz, which the 16 kHz acoustic model needs (g711.c has the
 * measurements). pcm must end on a frame boundary.
 */
void audio_widen_narrowband(int16_t *pcm, size_t n);

/* ---- voice activity detection ---------------------------------------------------- */

struct vad_config {
    int start_ms;       /* voiced audio needed before SPEECH_START (e.g. 100) */
    int barge_in_ms;    /* voiced audio needed while the agent talks before BARGE_IN
                           (a cough, click or "mhm" is shorter; e.g. 300) */
    int end_silence_ms; /* silence that ends a turn (agent config end_of_turn_silence_ms) */
    int pre_roll_ms;    /* audio kept from before the onset for the recogniser (e.g. 300) */
};

enum vad_event {
    VAD_NONE = 0,
    VAD_SPEECH_START, /* the visitor started speaking (after start_ms of voice) */
    VAD_BARGE_IN,     /* sustained speech (barge_in_ms) - cancel the agent's reply */
    VAD_SPEECH_END    /* end of turn: end_silence_ms of silence after speech */
};

struct vad;

int vad_new(const struct vad_config *cfg, struct vad **out);
void vad_free(struct vad *v);
/* One 20 ms frame of (echo-filtered) 16 kHz audio in; at most one event out. */
enum vad_event vad_process(struct vad *v, const int16_t *frame);
bool vad_in_speech(const struct vad *v);
/* Tells the VAD whether the agent is audible right now (raises the barge-in bar). */
void vad_set_agent_speaking(struct vad *v, bool speaking);
/*
 * The pre-roll: copies up to max of the most recent samples that preceded and include
 * the onset (so the recogniser hears the first syllable). Returns samples copied.
 */
size_t vad_pre_roll(const struct vad *v, int16_t *out, size_t max);
/* Milliseconds of speech in the current utterance (for metrics and filters). */
int vad_speech_ms(const struct vad *v);
/*
 * Milliseconds since the last frame that held voice: 0 while the visitor is audible,
 * growing through a pause (the worker ends a complete-sounding turn early on it). Before
 * any voice it counts from the first frame.
 */
int vad_silence_ms(const struct vad *v);

/* ---- echo suppression ------------------------------------------------------------ */

struct echo_filter;

int echo_filter_new(struct echo_filter **out);
void echo_filter_free(struct echo_filter *f);
/* A 20 ms frame the agent is playing (as sent to the client). */
void echo_filter_playback(struct echo_filter *f, const int16_t *frame);
/* A 20 ms microphone frame in; out gets it with the agent's echo removed/suppressed. */
void echo_filter_capture(struct echo_filter *f, const int16_t *in, int16_t *out);

#endif
