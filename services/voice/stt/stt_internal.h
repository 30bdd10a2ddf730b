/*
 * Internal interfaces of vapvoice_stt, shared by its files and its unit test: text
 * normalisation (what words a piece of text is spoken as), the training corpus made from
 * an agent's configuration, the ARPA n-gram builder, the pronunciation lexicon, WAV
 * reading and word error rate. Nothing outside services/voice/stt/ and its tests uses
 * this header; the worker uses stt.h only.
 */
#ifndef VAP_VOICE_STT_INTERNAL_H
#define VAP_VOICE_STT_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define STT_MAX_WORD 64        /* longest word kept, in bytes */
#define STT_MAX_SENTENCE 1024  /* longest normalised sentence, in bytes */

/* textnorm.c */

/*
 * Writes text as the lowercase, space-separated words it is spoken as: punctuation
 * dropped, hyphens split words, apostrophes inside words kept ("i'm"), numbers and
 * prices spelled out ("$1,800" -> "one thousand eight hundred dollars"), clock times
 * spelled out ("9:30" -> "nine thirty", "14:00" -> "two o'clock"). Returns the length
 * of out or VAP_ETOOBIG. Thread-safe.
 */
int stt_norm_text(const char *in, char *out, size_t max);

/* Spells out 0 <= n < 10^12 ("three hundred fifty thousand"). Returns length or error. */
int stt_number_words(long long n, char *out, size_t max);

/* corpus.c */

/* Receives one normalised sentence (words separated by single spaces). */
typedef int (*stt_sentence_fn)(void *user, const char *words);

/*
 * Produces the sentences a visitor may say to this agent, from its JSON: each
 * "vocabulary" word, each value of each slot, and every "speech.phrases" template with
 * its {slot}s filled from "speech.slots" (literal strings, or "@a.b.*.c" paths into the
 * agent document). Returns 0, the first non-zero value returned by fn, or VAP_EINVAL
 * with err naming the agent and the field.
 */
int stt_corpus_build(json_t *agent, const char *agent_id, stt_sentence_fn fn, void *user,
                     char *err, size_t err_size);

/* lm_build.c */

struct lm_builder;

int lm_builder_new(struct lm_builder **out);
void lm_builder_free(struct lm_builder *b);
/* Counts the n-grams (up to trigrams) of one normalised sentence, with <s> and </s>. */
int lm_builder_add_sentence(struct lm_builder *b, const char *words);
/*
 * Writes a trigram backoff model in ARPA text form: interpolated Witten-Bell
 * smoothing, so every context's distribution sums to one. Returns 0 or VAP_EINTERNAL.
 */
int lm_builder_write_arpa(const struct lm_builder *b, FILE *f);
/* The vocabulary, including <s> and </s>; words are owned by the builder. */
size_t lm_builder_vocab_size(const struct lm_builder *b);
const char *lm_builder_word(const struct lm_builder *b, size_t i);

/* lexicon.c */

struct stt_lexicon;

/* Loads a CMU-format dictionary (word PH PH..., variants as word(2)). */
int stt_lexicon_open(const char *dict_path, struct stt_lexicon **out);
void stt_lexicon_close(struct stt_lexicon *lx);
/* Whether the dictionary has the word. */
int stt_lexicon_has(const struct stt_lexicon *lx, const char *word);
/*
 * Appends every pronunciation of word to f as dictionary lines: from the dictionary,
 * or else guessed by flite's CMU lexicon and letter-to-sound rules, mapped to the en-us
 * acoustic model's phone set. Returns the number of lines written (0: no guess) or
 * VAP_EINTERNAL on a write error.
 */
int stt_lexicon_write(const struct stt_lexicon *lx, const char *word, FILE *f);
/* Flite's guess for word as en-us phones ("OW K AH F ER"). Returns length or error. */
int stt_lexicon_guess(const char *word, char *out, size_t max);

/* wav.c */

/*
 * Reads a RIFF/WAVE file of 16-bit PCM, mono. *pcm is malloc'd (caller frees).
 * Returns 0, VAP_ENOTFOUND, VAP_EINVAL (not 16-bit mono PCM) or VAP_ENOMEM.
 */
int stt_wav_read(const char *path, int16_t **pcm, size_t *n, int *rate);

/* wer.c */

/*
 * Word-level edit distance between a reference and a hypothesis, both normalised with
 * stt_norm_text first. Returns 0 or an error.
 */
int stt_wer(const char *ref, const char *hyp, size_t *errors, size_t *ref_words);

#endif
