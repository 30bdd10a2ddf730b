/*
 * Text-to-speech for the agents' replies: libflite voices (slt, kal16, awb, rms - natural
 * enough for English) and espeak-ng through its C library for other languages. The voice
 * comes from the agent's "tts" config ({"engine":"flite","voice":"slt"}) and language.
 * Output is always 16 kHz mono PCM16, delivered in chunks so the first audio can be sent
 * before the sentence is fully synthesised. Replies are spoken sentence by sentence:
 * tts_sentence_end finds where the next complete sentence of streamed text ends.
 */
#ifndef VAP_VOICE_TTS_H
#define VAP_VOICE_TTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tts_voice;

/*
 * tts is the agent's "tts" object (may be NULL: flite slt for English, espeak-ng for
 * other languages); language like "en-US", "de-DE". Returns 0 or VAP_EINVAL (err names
 * the unknown engine/voice).
 */
int tts_voice_load(const json_t *tts, const char *language, struct tts_voice **out, char *err,
                   size_t err_size);
void tts_voice_free(struct tts_voice *v);

/* Called with successive chunks of 16 kHz PCM; return nonzero to stop (cancel). */
typedef int (*tts_sink_fn)(void *user, const int16_t *pcm, size_t n);

/*
 * Speaks text (numbers, "$350,000", "9:30", abbreviations read naturally). Thread-safe.
 * Returns 0, VAP_ECANCELED if the sink asked to stop, or another negative vap_err.
 */
int tts_speak(struct tts_voice *v, const char *text, tts_sink_fn sink, void *user);

/*
 * Length of the first complete sentence in text[0..len) (through its terminator and
 * trailing spaces), or 0 if none is complete yet. With final, the rest counts as one.
 * "Dr. Patel", "3.5", "$1,800" and "e.g." do not end a sentence.
 */
size_t tts_sentence_end(const char *text, size_t len, bool final);

/*
 * Rewrites English text so a synthesiser reads it naturally: money ("$350,000" ->
 * "three hundred fifty thousand dollars"), clock times ("9:30" -> "nine thirty",
 * "14:00" -> "two p m"), abbreviations ("Dr. Patel" -> "Doctor Patel", "Main St." ->
 * "Main Street", "Apt 5" -> "Apartment 5", "e.g." -> "for example"), "#5", "&". Plain
 * numbers are left to the engine, which reads them well. *out is malloc'd and owned by
 * the caller. Returns 0, VAP_ENOMEM or VAP_ETOOBIG (text over 64 KiB). Thread-safe.
 */
int tts_normalize(const char *text, char **out);

/*
 * Seconds of speech in 16 kHz pcm: from the first to the last sample louder than a
 * silence threshold (engines pad sentences with silence). 0 for silence. Thread-safe.
 */
double tts_speech_seconds(const int16_t *pcm, size_t n);

/*
 * Checks that `seconds` of speech is plausible for text: 0.25 to 0.8 s per spoken word
 * (counted after tts_normalize), with a little slack for one-word texts. Returns 0 or
 * VAP_EINVAL with err saying what is off. For tests and for a debug check in the worker.
 */
int tts_duration_check(const char *text, double seconds, char *err, size_t err_size);

#endif
