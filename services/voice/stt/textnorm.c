/*
 * Text normalisation for speech recognition: turns written text (agent data, phrase
 * templates, reference transcripts) into the words a person says, in the form the
 * recogniser outputs them: lowercase, no punctuation, numbers, prices and clock times
 * spelled out. The corpus and the word-error-rate scorer both go through here so a
 * reference and a hypothesis are compared in the same form.
 */
#include "stt_internal.h"

#include <ctype.h>
#include <string.h>

#include "common/err.h"

struct outbuf {
    char *p;
    size_t len, max;
    int err;
};

static void put_word(struct outbuf *o, const char *w, size_t n)
{
    if (n == 0 || o->err)
        return;
    if (o->len + (o->len ? 1 : 0) + n + 1 > o->max) {
        o->err = VAP_ETOOBIG;
        return;
    }
    if (o->len)
        o->p[o->len++] = ' ';
    memcpy(o->p + o->len, w, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static void put_str(struct outbuf *o, const char *s)
{
    put_word(o, s, strlen(s));
}

static const char *const ones[] = {"zero",    "one",     "two",       "three",    "four",
                                   "five",    "six",     "seven",     "eight",    "nine",
                                   "ten",     "eleven",  "twelve",    "thirteen", "fourteen",
                                   "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"};
static const char *const tens[] = {"",      "",      "twenty",  "thirty", "forty",
                                   "fifty", "sixty", "seventy", "eighty", "ninety"};

static void put_below_thousand(struct outbuf *o, int n)
{
    if (n >= 100) {
        put_str(o, ones[n / 100]);
        put_str(o, "hundred");
        n %= 100;
        if (n == 0)
            return;
    }
    if (n >= 20) {
        put_str(o, tens[n / 10]);
        if (n % 10)
            put_str(o, ones[n % 10]);
    } else {
        put_str(o, ones[n]);
    }
}

static void put_number(struct outbuf *o, long long n)
{
    static const struct {
        long long scale;
        const char *name;
    } scales[] = {{1000000000LL, "billion"}, {1000000LL, "million"}, {1000LL, "thousand"}};
    if (n == 0) {
        put_str(o, "zero");
        return;
    }
    for (size_t i = 0; i < sizeof(scales) / sizeof(scales[0]); i++)
        if (n >= scales[i].scale) {
            put_below_thousand(o, (int)(n / scales[i].scale));
            put_str(o, scales[i].name);
            n %= scales[i].scale;
        }
    if (n)
        put_below_thousand(o, (int)n);
}

int stt_number_words(long long n, char *out, size_t max)
{
    struct outbuf o = {out, 0, max, 0};
    if (n < 0 || n >= 1000000000000LL || max == 0)
        return VAP_EINVAL;
    out[0] = '\0';
    put_number(&o, n);
    return o.err ? o.err : (int)o.len;
}

/* "9:30" -> "nine thirty", "14:00" -> "two o'clock", "9:05" -> "nine oh five". */
static void put_time(struct outbuf *o, int h, int m)
{
    h %= 12;
    put_below_thousand(o, h == 0 ? 12 : h);
    if (m == 0) {
        put_str(o, "o'clock");
    } else {
        if (m < 10)
            put_str(o, "oh");
        put_below_thousand(o, m);
    }
}

/* Reads digits (with thousands separators) at s; returns the count of bytes used. */
static size_t scan_number(const char *s, long long *value)
{
    size_t i = 0;
    long long v = 0;
    while (isdigit((unsigned char)s[i]) ||
           (s[i] == ',' && i > 0 && isdigit((unsigned char)s[i + 1]))) {
        if (s[i] != ',' && v < 100000000000LL)
            v = v * 10 + (s[i] - '0');
        i++;
    }
    *value = v;
    return i;
}

int stt_norm_text(const char *in, char *out, size_t max)
{
    struct outbuf o = {out, 0, max, 0};
    const char *s = in;
    if (max == 0)
        return VAP_ETOOBIG;
    out[0] = '\0';
    while (*s && !o.err) {
        unsigned char c = (unsigned char)*s;
        if (isdigit(c) || (c == '$' && isdigit((unsigned char)s[1]))) {
            int dollars = c == '$';
            long long v, m;
            size_t n;
            if (dollars)
                s++;
            n = scan_number(s, &v);
            s += n;
            if (*s == ':' && isdigit((unsigned char)s[1]) && isdigit((unsigned char)s[2]) &&
                !isdigit((unsigned char)s[3]) && v < 24) {
                scan_number(s + 1, &m);
                s += 3;
                put_time(&o, (int)v, (int)m);
                continue;
            }
            put_number(&o, v);
            if (dollars)
                put_str(&o, "dollars");
            continue;
        }
        if (isalpha(c)) {
            char w[STT_MAX_WORD];
            size_t n = 0;
            while (isalpha((unsigned char)*s) ||
                   (*s == '\'' && n > 0 && isalpha((unsigned char)s[1]))) {
                if (n < sizeof(w) - 1)
                    w[n++] = (char)tolower((unsigned char)*s);
                s++;
            }
            put_word(&o, w, n);
            continue;
        }
        s++;
    }
    return o.err ? o.err : (int)o.len;
}
