/*
 * What the offline dialog engine's files share: the parsed utterance (lowercase words
 * and the numbers spoken in them), the reply buffer, the helpers for numbers and fuzzy
 * matching, and the skill interface. A skill (property search, appointments, FAQ) is
 * switched on by the data an agent file has under "offline", never by the agent's id.
 *
 * Engine and skill state built by create() is read-only afterwards and shared by every
 * session on every thread; anything that changes during a conversation lives in the
 * per-session state. Nothing here keeps mutable static data, so all of it is thread-safe
 * as long as one session is used by one thread at a time.
 */
#ifndef VAP_VOICE_OFFLINE_INTERNAL_H
#define VAP_VOICE_OFFLINE_INTERNAL_H

#include <jansson.h>
#include <stddef.h>

#define OFF_WORDS_MAX 64   /* words of an utterance looked at; the rest is ignored */
#define OFF_WORD_LEN 32    /* longer words are cut (no real word is that long) */
#define OFF_REPLY_MAX 1024 /* a spoken reply is 1-3 sentences; appends past it are cut */
#define OFF_LAST (-2)      /* off_ordinal: "the last one" */

/* One visitor utterance, as the speech recogniser gave it, split and normalised. */
struct off_input {
    size_t n;
    char words[OFF_WORDS_MAX][OFF_WORD_LEN]; /* lowercase a-z0-9 only */
    long long num[OFF_WORDS_MAX];            /* value of a number starting here, or -1 */
    unsigned char num_len[OFF_WORDS_MAX];    /* words that number spans, 0 = none */
    int yes, no;                             /* an affirmative / negative answer */
    int today;                               /* weekday 0 = Monday .. 6, for "tomorrow" */
};

/* A reply under construction; off_say appends a sentence or a fragment. */
struct off_reply {
    char text[OFF_REPLY_MAX];
    size_t len;
};

/* --- offline_match.c: words, phrases and fuzzy names --- */

/* Splits text into lowercase words and finds the numbers in them. Never fails. */
void off_input_parse(const char *text, struct off_input *in);

/* Index of the first occurrence of word (exact) at or after from, or -1. */
int off_word_at(const struct off_input *in, const char *word, size_t from);

/* Whether any word of the NULL-terminated list occurs (exact or a plural of it). */
int off_has_any(const struct off_input *in, const char *const *words);

/* Whether the words of phrase ("blood pressure") occur in a row, exactly. */
int off_has_phrase(const struct off_input *in, const char *phrase);

/*
 * Looks for a name (one or more words, any case) in the utterance, tolerating
 * recognition errors: plurals, small edit distances on longer words, the same sound
 * (a phonetic key), and a name split in two ("port land") or joined. Returns 2 for an
 * exact match, 1 for a fuzzy one, 0 for none; *at (may be NULL) gets the word index.
 */
int off_find_name(const struct off_input *in, const char *name, size_t *at);

/* Levenshtein distance between two lowercase words (capped at 255 characters). */
size_t off_edit_distance(const char *a, const char *b);

/* A simple sound key ("garcia" and "garsia" share one); out gets at most n-1 chars. */
void off_phonetic(const char *word, char *out, size_t n);

/* Lowercase a-z0-9 copy of s with other characters turned into single spaces. */
void off_normalise(const char *s, char *out, size_t n);

/* --- offline_numbers.c: numbers spoken as words, and numbers said back --- */

/* Fills in->num / in->num_len from in->words. Called by off_input_parse. */
void off_numbers_scan(struct off_input *in);

/* "first".."tenth", "last", "number two": 0-based index or OFF_LAST; -1 if none. */
int off_ordinal(const struct off_input *in);

/* "350,000 dollars" into buf. */
void off_fmt_money(long long value, char *buf, size_t n);

/* 0..99 as words ("twenty one"); larger numbers as digits. */
void off_fmt_count(long long value, char *buf, size_t n);

/* 1..20 as ordinal words ("third"); larger as "21st"-style digits. */
void off_fmt_ordinal(int value, char *buf, size_t n);

/* Minutes after midnight as spoken time: "nine thirty in the morning", "noon". */
void off_fmt_time(int minutes, char *buf, size_t n);

/* --- offline.c: replies --- */

/* Appends printf-formatted text, separated from what is there by one space. */
void off_say(struct off_reply *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* --- skills --- */

struct off_skill {
    const char *name;
    /* Reads the skill's data from the agent's "offline" object. *state = NULL when the
       agent has none of it (the skill is off). VAP_EINVAL with err naming the field. */
    int (*create)(json_t *offline, void **state, char *err, size_t err_size);
    void (*destroy)(void *state);
    void *(*session_new)(const void *state); /* NULL = out of memory */
    void (*session_free)(void *ss);
    /* How strongly the utterance is for this skill (0 = not at all). Changes nothing. */
    int (*score)(const void *state, const void *ss, const struct off_input *in);
    /* Answers; returns 0 when it has nothing to say after all. */
    int (*reply)(const void *state, void *ss, const struct off_input *in, struct off_reply *out);
    /* One sentence saying what the skill can do. */
    void (*help)(const void *state, struct off_reply *out);
    /* A specific re-prompt after an utterance nobody understood; variant rotates. */
    void (*hint)(const void *state, const void *ss, unsigned variant, struct off_reply *out);
};

extern const struct off_skill off_realestate_skill;
extern const struct off_skill off_appointments_skill;
extern const struct off_skill off_faq_skill;

#endif
