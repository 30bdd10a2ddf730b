/*
 * English text normalisation for speech (tts_normalize): rewrites the tokens that
 * flite's own normaliser reads wrongly or awkwardly, and leaves the rest to it.
 *
 * Checked against flite 2.2 (see tts_test.c's table): flite reads "14:00" as
 * "fourteen", "Apt" as the word "apt", "e.g." as "e g", "Ave."/"vs."/"etc." as
 * "ave"/"vs"/"etc", "#5" as "# five" and "&" not at all. It does read plain numbers,
 * ordinals, years, "50%", "Dr. Patel", "Main St." and "$1,800" well; money and times
 * are still spelled out here so the result does not depend on the engine (espeak-ng
 * English voices get the same text).
 *
 * Work is token by token (white space separated). Each token is split into leading
 * punctuation, a core and trailing punctuation; rules look at the core and sometimes
 * at the neighbouring tokens ("Dr." before a name, "St." after one, "9:30 pm").
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "tts_internal.h"

/* A growing output string with a ceiling. */
struct sbuf {
    char *p;
    size_t len, cap, max;
    int err;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->err)
        return;
    if (b->len + n + 1 > b->max) {
        b->err = VAP_ETOOBIG;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *p;
        while (cap < b->len + n + 1)
            cap *= 2;
        p = realloc(b->p, cap);
        if (!p) {
            b->err = VAP_ENOMEM;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* Appends a word, with a space first unless the output is empty or ends in a space. */
static void sb_word(struct sbuf *b, const char *w)
{
    if (b->len > 0 && !isspace((unsigned char)b->p[b->len - 1]) &&
        !strchr("\"'([{", b->p[b->len - 1]))
        sb_add(b, " ", 1);
    sb_str(b, w);
}

/* --- numbers --- */

static const char *const ones[] = {
    "zero",     "one",     "two",     "three",     "four",     "five",     "six",
    "seven",    "eight",   "nine",    "ten",       "eleven",   "twelve",   "thirteen",
    "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
};
static const char *const tens[] = {
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
};

static void spell_below_1000(struct sbuf *b, unsigned n)
{
    if (n >= 100) {
        sb_word(b, ones[n / 100]);
        sb_word(b, "hundred");
        n %= 100;
        if (n == 0)
            return;
    }
    if (n < 20) {
        sb_word(b, ones[n]);
        return;
    }
    sb_word(b, tens[n / 10]);
    if (n % 10)
        sb_word(b, ones[n % 10]);
}

#define SPELL_MAX 999999999999999ULL /* up to "nine hundred ... trillion" */

/* Spells n (at most SPELL_MAX) in words: 350000 -> "three hundred fifty thousand". */
static void spell_int(struct sbuf *b, uint64_t n)
{
    static const struct {
        uint64_t value;
        const char *name;
    } scales[] = {
        {1000000000000ULL, "trillion"},
        {1000000000ULL, "billion"},
        {1000000ULL, "million"},
        {1000ULL, "thousand"},
    };

    if (n == 0) {
        sb_word(b, "zero");
        return;
    }
    for (size_t i = 0; i < sizeof scales / sizeof scales[0]; i++) {
        if (n >= scales[i].value) {
            spell_below_1000(b, (unsigned)(n / scales[i].value));
            sb_word(b, scales[i].name);
            n %= scales[i].value;
        }
    }
    if (n > 0)
        spell_below_1000(b, (unsigned)n);
}

static void spell_digits(struct sbuf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sb_word(b, ones[s[i] - '0']);
}

/*
 * Reads "1,800" / "350000" from s[0..n): digits with optional thousands commas.
 * Returns the number of characters used (0 if none) and the value in *v.
 */
static size_t read_int(const char *s, size_t n, uint64_t *v)
{
    size_t i = 0;
    uint64_t x = 0;

    while (i < n && (isdigit((unsigned char)s[i]) ||
                     (s[i] == ',' && i > 0 && i + 3 < n + 1 && i + 3 <= n &&
                      isdigit((unsigned char)s[i + 1]) && isdigit((unsigned char)s[i + 2]) &&
                      isdigit((unsigned char)s[i + 3])))) {
        if (s[i] != ',') {
            if (x > SPELL_MAX / 10)
                return 0;
            x = x * 10 + (uint64_t)(s[i] - '0');
        }
        i++;
    }
    *v = x;
    return i;
}

/* --- tokens --- */

struct tok {
    const char *lead, *core, *trail, *end; /* lead <= core <= trail <= end */
};

static bool is_lead(char c)
{
    return c == '"' || c == '\'' || c == '(' || c == '[' || c == '{';
}

static bool is_trail(char c)
{
    return strchr(".,;:!?)]}\"'", c) != NULL && c != '\0';
}

/* The token starting at s (not white space); returns false at end of text. */
static bool tok_at(const char *s, struct tok *t)
{
    const char *e;

    while (*s && isspace((unsigned char)*s))
        s++;
    if (!*s)
        return false;
    e = s;
    while (*e && !isspace((unsigned char)*e))
        e++;
    t->lead = s;
    t->end = e;
    while (s < e && is_lead(*s))
        s++;
    t->core = s;
    while (e > s && is_trail(e[-1]))
        e--;
    t->trail = e;
    return true;
}

static size_t core_len(const struct tok *t)
{
    return (size_t)(t->trail - t->core);
}

static bool core_is(const struct tok *t, const char *w, bool nocase)
{
    size_t n = strlen(w);
    if (core_len(t) != n)
        return false;
    return nocase ? strncasecmp(t->core, w, n) == 0 : strncmp(t->core, w, n) == 0;
}

/* The core plus its first trailing '.' equals w ("Dr" + "." = "Dr."). */
static bool dotted_is(const struct tok *t, const char *w, bool nocase)
{
    size_t n = core_len(t);
    if (t->trail >= t->end || *t->trail != '.' || strlen(w) != n + 1 || w[n] != '.')
        return false;
    return nocase ? strncasecmp(t->core, w, n) == 0 : strncmp(t->core, w, n) == 0;
}

static bool starts_upper(const struct tok *t)
{
    return t && core_len(t) > 0 && isupper((unsigned char)t->core[0]);
}

static bool starts_digit(const struct tok *t)
{
    return t && core_len(t) > 0 && isdigit((unsigned char)t->core[0]);
}

/* --- rules --- */

enum prev_kind { PREV_NONE, PREV_CAPITAL, PREV_NUMBER, PREV_OTHER };

/* "am", "PM", "a.m", "p.m" (the last '.' is in the trail). 1 = am, 2 = pm, 0 = neither. */
static int meridiem(const char *s, size_t n)
{
    if (n == 2 && strncasecmp(s, "am", 2) == 0)
        return 1;
    if (n == 2 && strncasecmp(s, "pm", 2) == 0)
        return 2;
    if (n == 3 && strncasecmp(s, "a.m", 3) == 0)
        return 1;
    if (n == 3 && strncasecmp(s, "p.m", 3) == 0)
        return 2;
    return 0;
}

/*
 * "9:30", "14:00", "09:05pm" in s[0..n) -> words. mer is the meridiem of the next token
 * (1 am, 2 pm, 0 none); an attached one wins. A 24-hour time gets "a m"/"p m". Returns
 * false, having written nothing, if s is not a clock time.
 */
static bool say_time(struct sbuf *b, const char *s, size_t n, int mer)
{
    unsigned h, m;
    size_t hl = 0;
    int attached;
    bool leading_zero;

    while (hl < n && hl < 3 && isdigit((unsigned char)s[hl]))
        hl++;
    if (hl < 1 || hl > 2 || hl + 3 > n || s[hl] != ':' || !isdigit((unsigned char)s[hl + 1]) ||
        !isdigit((unsigned char)s[hl + 2]))
        return false;
    attached = meridiem(s + hl + 3, n - hl - 3);
    if (hl + 3 < n && !attached)
        return false;
    if (attached)
        mer = attached;
    h = hl == 2 ? (unsigned)((s[0] - '0') * 10 + (s[1] - '0')) : (unsigned)(s[0] - '0');
    m = (unsigned)((s[hl + 1] - '0') * 10 + (s[hl + 2] - '0'));
    if (h > 23 || m > 59)
        return false;
    leading_zero = hl == 2 && s[0] == '0';
    if (!mer && (h >= 13 || h == 0 || (leading_zero && h > 0)))
        mer = h >= 12 ? 2 : 1; /* 24-hour clock: "14:00" is two p m */
    spell_below_1000(b, h % 12 == 0 ? 12 : h % 12);
    if (m == 0 && !mer)
        sb_word(b, "o'clock");
    else if (m > 0 && m < 10) {
        sb_word(b, "oh");
        spell_below_1000(b, m);
    } else if (m > 0) {
        spell_below_1000(b, m);
    }
    if (mer)
        sb_word(b, mer == 1 ? "a m" : "p m");
    return true;
}

static const struct scale_word {
    const char *word;
    const char *suffix;
} scale_words[] = {
    {"thousand", "k"},
    {"million", "m"},
    {"billion", "b"},
    {"trillion", "t"},
};

static const char *scale_from_word(const struct tok *t)
{
    for (size_t i = 0; t && i < sizeof scale_words / sizeof scale_words[0]; i++)
        if (core_is(t, scale_words[i].word, true))
            return scale_words[i].word;
    return NULL;
}

/*
 * "$350,000", "$3.50", "$2.5 million", "$5k" -> words. next is the following token
 * (may be NULL); *used_next is set when its scale word was consumed.
 */
static bool say_money(struct sbuf *b, const struct tok *t, const struct tok *next, bool *used_next)
{
    const char *s = t->core + 1;
    size_t n = core_len(t) - 1;
    const char *frac = NULL;
    size_t frac_len = 0, i;
    const char *scale = NULL;
    uint64_t whole;

    if (core_len(t) < 2 || t->core[0] != '$')
        return false;
    i = read_int(s, n, &whole);
    if (i == 0)
        return false;
    if (i < n && s[i] == '.' && i + 1 < n && isdigit((unsigned char)s[i + 1])) {
        frac = s + i + 1;
        while (i + 1 + frac_len < n && isdigit((unsigned char)frac[frac_len]))
            frac_len++;
        i += 1 + frac_len;
    }
    if (i < n) {
        /* "$5k", "$2M", "$1.5bn" */
        size_t rest = n - i;
        for (size_t k = 0; k < sizeof scale_words / sizeof scale_words[0]; k++) {
            const char *suf = scale_words[k].suffix;
            if ((rest == 1 && tolower((unsigned char)s[i]) == suf[0]) ||
                (rest == 2 && k == 2 && strncasecmp(s + i, "bn", 2) == 0) ||
                (rest == 2 && k == 1 && strncasecmp(s + i, "mm", 2) == 0))
                scale = scale_words[k].word;
        }
        if (!scale)
            return false;
    } else if ((scale = scale_from_word(next)) != NULL) {
        *used_next = true;
    }
    if (scale) {
        spell_int(b, whole);
        if (frac) {
            sb_word(b, "point");
            spell_digits(b, frac, frac_len);
        }
        sb_word(b, scale);
        sb_word(b, "dollars");
        return true;
    }
    if (frac && frac_len > 2) {
        spell_int(b, whole);
        sb_word(b, "point");
        spell_digits(b, frac, frac_len);
        sb_word(b, "dollars");
        return true;
    }
    {
        unsigned cents = 0;
        if (frac)
            cents = frac_len == 1 ? (unsigned)(frac[0] - '0') * 10
                                  : (unsigned)((frac[0] - '0') * 10 + (frac[1] - '0'));
        if (whole > 0 || cents == 0) {
            spell_int(b, whole);
            sb_word(b, whole == 1 ? "dollar" : "dollars");
        }
        if (cents > 0) {
            if (whole > 0)
                sb_word(b, "and");
            spell_below_1000(b, cents);
            sb_word(b, cents == 1 ? "cent" : "cents");
        }
    }
    return true;
}

/* Abbreviations read as words. ctx entries are decided by the neighbouring words. */
enum abbr_ctx { ABBR_PLAIN, ABBR_DR, ABBR_ST, ABBR_NUMBER, ABBR_MONTH };

static const struct abbr {
    const char *text; /* with its '.' when it has one */
    const char *say;
    bool nocase;
    enum abbr_ctx ctx;
} abbrs[] = {
    {"Dr.", "Doctor", false, ABBR_DR},         {"St.", "Saint", false, ABBR_ST},
    {"Mr.", "Mister", false, ABBR_PLAIN},      {"Mrs.", "Missus", false, ABBR_PLAIN},
    {"Ms.", "Miz", false, ABBR_PLAIN},         {"Prof.", "Professor", false, ABBR_PLAIN},
    {"Jr.", "Junior", false, ABBR_PLAIN},      {"Sr.", "Senior", false, ABBR_PLAIN},
    {"Apt.", "Apartment", true, ABBR_PLAIN},   {"Apt", "Apartment", false, ABBR_PLAIN},
    {"Ave.", "Avenue", false, ABBR_PLAIN},     {"Blvd.", "Boulevard", false, ABBR_PLAIN},
    {"Blvd", "Boulevard", false, ABBR_PLAIN},  {"Rd.", "Road", false, ABBR_PLAIN},
    {"Ln.", "Lane", false, ABBR_PLAIN},        {"Ste.", "Suite", false, ABBR_PLAIN},
    {"Mt.", "Mount", false, ABBR_PLAIN},       {"Dept.", "Department", true, ABBR_PLAIN},
    {"e.g.", "for example", true, ABBR_PLAIN}, {"i.e.", "that is", true, ABBR_PLAIN},
    {"etc.", "et cetera", true, ABBR_PLAIN},   {"vs.", "versus", true, ABBR_PLAIN},
    {"vs", "versus", false, ABBR_PLAIN},       {"approx.", "approximately", true, ABBR_PLAIN},
    {"No.", "number", true, ABBR_NUMBER},      {"&", "and", false, ABBR_PLAIN},
    {"w/", "with", false, ABBR_PLAIN},         {"Jan", "January", false, ABBR_MONTH},
    {"Feb", "February", false, ABBR_MONTH},    {"Mar", "March", false, ABBR_MONTH},
    {"Apr", "April", false, ABBR_MONTH},       {"Jun", "June", false, ABBR_MONTH},
    {"Jul", "July", false, ABBR_MONTH},        {"Aug", "August", false, ABBR_MONTH},
    {"Sep", "September", false, ABBR_MONTH},   {"Sept", "September", false, ABBR_MONTH},
    {"Oct", "October", false, ABBR_MONTH},     {"Nov", "November", false, ABBR_MONTH},
    {"Dec", "December", false, ABBR_MONTH},
};

/*
 * Abbreviation at t? Returns its replacement (NULL if none) and sets *dot when the
 * token's first trailing '.' belonged to the abbreviation.
 */
static const char *say_abbr(const struct tok *t, const struct tok *next, enum prev_kind prev,
                            bool *dot)
{
    for (size_t i = 0; i < sizeof abbrs / sizeof abbrs[0]; i++) {
        const struct abbr *a = &abbrs[i];
        bool with_dot = a->text[strlen(a->text) - 1] == '.';

        *dot = false;
        if (with_dot && dotted_is(t, a->text, a->nocase))
            *dot = true;
        else if (!core_is(t, a->text, a->nocase))
            continue;
        else if (a->ctx == ABBR_MONTH && t->trail < t->end && *t->trail == '.')
            *dot = true; /* "Jan." */
        switch (a->ctx) {
        case ABBR_PLAIN:
            return a->say;
        case ABBR_DR:
            /* "Dr. Patel" is a doctor; "Mulholland Dr." a drive. */
            if (!starts_upper(next) && prev == PREV_CAPITAL)
                return "Drive";
            return "Doctor";
        case ABBR_ST:
            /* "Main St.", "5th St." are streets; "St. Mary" a saint. */
            if (prev == PREV_CAPITAL || prev == PREV_NUMBER || !starts_upper(next))
                return "Street";
            return "Saint";
        case ABBR_NUMBER:
            if (starts_digit(next))
                return a->say;
            break;
        case ABBR_MONTH:
            /* "Jan 5", "Dec. 24th": only before a day number ("Jan" is also a name). */
            if (starts_digit(next) || *dot)
                return a->say;
            break;
        }
        *dot = false;
        return NULL;
    }
    *dot = false;
    return NULL;
}

/* "#5" -> "number 5" */
static bool say_hash_number(struct sbuf *b, const struct tok *t)
{
    if (core_len(t) < 2 || t->core[0] != '#' || !isdigit((unsigned char)t->core[1]))
        return false;
    sb_word(b, "number");
    sb_add(b, " ", 1);
    sb_add(b, t->core + 1, core_len(t) - 1);
    return true;
}

/* "9:00-17:00" -> both times joined by "to". */
static bool say_time_range(struct sbuf *b, const struct tok *t)
{
    const char *dash = memchr(t->core, '-', core_len(t));
    size_t mark = b->len;

    if (!dash)
        return false;
    if (!say_time(b, t->core, (size_t)(dash - t->core), 0)) {
        b->len = mark;
        if (b->p)
            b->p[mark] = '\0';
        return false;
    }
    sb_word(b, "to");
    if (!say_time(b, dash + 1, (size_t)(t->trail - dash - 1), 0)) {
        b->len = mark;
        if (b->p)
            b->p[mark] = '\0';
        return false;
    }
    return true;
}

static enum prev_kind kind_of(const struct tok *t)
{
    bool sentence_end = false;

    for (const char *p = t->trail; p < t->end; p++)
        if (*p == '.' || *p == '!' || *p == '?')
            sentence_end = true;
    if (sentence_end || core_len(t) == 0)
        return PREV_NONE;
    if (isdigit((unsigned char)t->core[0]))
        return PREV_NUMBER;
    if (isupper((unsigned char)t->core[0]))
        return PREV_CAPITAL;
    return PREV_OTHER;
}

/* Writes trailing punctuation, minus a '.' the rule consumed (kept at the very end). */
static void emit_trail(struct sbuf *b, const struct tok *t, bool dot_used, bool last)
{
    const char *p = t->trail;

    if (dot_used && p < t->end && *p == '.') {
        p++;
        if (last && p == t->end) {
            sb_add(b, ".", 1);
            return;
        }
    }
    sb_add(b, p, (size_t)(t->end - p));
}

int tts_normalize(const char *text, char **out)
{
    struct sbuf b = {.max = 8 * TTS_MAX_TEXT};
    enum prev_kind prev = PREV_NONE;
    const char *p = text;
    struct tok t, n;
    bool have_t;

    *out = NULL;
    if (!text)
        return VAP_EINVAL;
    if (strlen(text) > TTS_MAX_TEXT)
        return VAP_ETOOBIG;
    sb_add(&b, "", 0);
    have_t = tok_at(p, &t);
    while (have_t && !b.err) {
        bool have_n = tok_at(t.end, &n);
        const struct tok *next = have_n ? &n : NULL;
        const struct tok *last_tok = &t; /* whose trail ends this output piece */
        bool used_next = false, dot = false;
        const char *word;
        int mer = 0;

        sb_add(&b, p, (size_t)(t.lead - p)); /* the white space before the token */
        sb_add(&b, t.lead, (size_t)(t.core - t.lead));
        if (next && core_len(&t) > 0 && t.trail == t.end)
            mer = meridiem(n.core, core_len(&n));
        if (mer && n.lead == n.core && say_time(&b, t.core, core_len(&t), mer)) {
            used_next = true; /* "9:30 pm" */
            dot = n.trail < n.end && n.trail[0] == '.' && core_len(&n) == 3;
        } else if (say_time(&b, t.core, core_len(&t), 0) || say_time_range(&b, &t) ||
                   say_money(&b, &t, next, &used_next) || say_hash_number(&b, &t)) {
            /* spelled out */
        } else if ((word = say_abbr(&t, next, prev, &dot)) != NULL) {
            sb_str(&b, word);
        } else {
            sb_add(&b, t.core, core_len(&t));
        }
        if (used_next)
            last_tok = &n;
        {
            struct tok after;
            bool is_last = !tok_at(last_tok->end, &after);
            bool lower_next = !is_last && !starts_upper(&after);
            /* "a.m." mid-sentence: the dot was the abbreviation's. */
            emit_trail(&b, last_tok, dot && (is_last || lower_next || last_tok == &t), is_last);
        }
        prev = kind_of(last_tok);
        p = last_tok->end;
        have_t = tok_at(p, &t);
    }
    sb_add(&b, p, strlen(p)); /* trailing white space */
    if (b.err) {
        free(b.p);
        return b.err;
    }
    *out = b.p;
    return 0;
}
