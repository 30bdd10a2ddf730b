/*
 * Offline speech-to-text with pocketsphinx (Debian's 0.8 and its en-us acoustic model).
 * Each agent gets a model built at start time from its configuration: a dictionary and a
 * language model that know the agent's vocabulary and the phrases visitors use with it
 * (listings, departments, doctors...), so in-domain speech is understood, while
 * out-of-domain speech is still recognised about as well as with the generic model.
 * A model is shared by every session of that agent; a stream is one visitor's
 * utterances, decoded incrementally as audio arrives.
 */
#ifndef VAP_VOICE_STT_H
#define VAP_VOICE_STT_H

#include <stddef.h>
#include <stdint.h>

struct vap_agent;
struct stt_model;
struct stt_stream;

struct stt_options {
    const char *model_dir; /* acoustic model + dict root; NULL = Debian's
                              /usr/share/pocketsphinx/model/en-us */
    const char *cache_dir; /* where built LMs/dictionaries are written; NULL = a temp dir */
    int max_streams;       /* most decoders at once: utterances in progress beyond this
                              fail with VAP_ETOOBIG (set it to the worker's capacity) */
};

/*
 * Builds (or reuses from cache_dir, keyed by the agent file's content) the agent's
 * language model and dictionary and loads them. Slow (seconds): call at start or reload.
 * Returns 0, VAP_EINVAL (err says why, naming the agent) or VAP_ENOMEM.
 */
int stt_model_load(const struct vap_agent *agent, const struct stt_options *opt,
                   struct stt_model **out, char *err, size_t err_size);
/*
 * Loads Debian's generic en-us model (its language model and the whole CMU dictionary)
 * with no agent knowledge: the baseline vap-stt-eval compares agent models with.
 * Costs about 1.4x the CPU and 1.5x the memory per decoder of an agent model.
 */
int stt_model_load_generic(const struct stt_options *opt, struct stt_model **out, char *err,
                           size_t err_size);
/* Frees the model and its idle decoders; every stream must have been closed. */
void stt_model_free(struct stt_model *m);

/* One session's stream. Cheap: a decoder is lent from the model's pool only while an
 * utterance is in progress (stt_begin .. stt_end/stt_abort). Returns 0 or VAP_ENOMEM. */
int stt_stream_open(struct stt_model *m, struct stt_stream **out);
void stt_stream_close(struct stt_stream *s);

/* Starts an utterance (call at speech onset, then feed the VAD's pre-roll first).
 * Returns 0, VAP_ETOOBIG (max_streams utterances in progress) or VAP_ENOMEM. */
int stt_begin(struct stt_stream *s);
/* Feeds 16 kHz mono PCM16. Cheap to call every 20 ms. */
int stt_feed(struct stt_stream *s, const int16_t *pcm, size_t n);
/* The current best hypothesis (lowercase words, may be empty). Returns its length. */
size_t stt_partial(struct stt_stream *s, char *out, size_t max);
/* Ends the utterance; out gets the final text. Returns its length or a negative vap_err. */
int stt_end(struct stt_stream *s, char *out, size_t max);
/* Abandons the current utterance (e.g. it turned out to be a cough). */
void stt_abort(struct stt_stream *s);

#endif
