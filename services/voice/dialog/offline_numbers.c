/*
 * Numbers for the offline dialog engine, both ways. In: the speech recogniser writes
 * numbers as words ("four hundred thousand", "half a million", "twenty five hundred",
 * sometimes "for hundred" or "to bedroom"), or now and then as digits; the scanner turns
 * each run into one value. "nine thirty" stays two numbers (an hour and minutes), and a
 * lone "one" after "the first" or "that" is a pronoun, not a number. Out: prices, counts,
 * ordinals and times written the way a speech synthesiser reads them well.
 */
#include "offline_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum num_kind { K_NONE, K_UNIT, K_TEEN, K_TENS, K_HUNDRED, K_MAG, K_AND, K_DIGITS };

static const char *const units[] = {"zero", "one", "two",   "three", "four",
                                    "five", "six", "seven", "eight", "nine"};
static const char *const teens[] = {"ten",     "eleven",  "twelve",    "thirteen", "fourteen",
                                    "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"};
static const char *const tens[] = {"",      "",      "twenty",  "thirty", "forty",
                                   "fifty", "sixty", "seventy", "eighty", "ninety"};

/* Words after which a misheard "for" / "to" is surely a number. */
static int counts_something(const char *w)
{
    static const char *const nouns[] = {"hundred", "thousand", "million", "bedroom", "bedrooms",
                                        "bed",     "beds",     "k",       "grand",   NULL};
    for (const char *const *p = nouns; *p; p++)
        if (strcmp(w, *p) == 0)
            return 1;
    return 0;
}

static int all_digits(const char *w, size_t len)
{
    if (len == 0 || len > 12)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (w[i] < '0' || w[i] > '9')
            return 0;
    return 1;
}

/* What words[j] is as part of a number; next is the following word or "". */
static enum num_kind classify(const char *w, const char *next, long long *v)
{
    static const struct {
        const char *word;
        int value;
    } homophones[] = {{"for", 4}, {"fore", 4}, {"to", 2}, {"too", 2},
                      {"won", 1}, {"ate", 8},  {"tree", 3}, {"a", 1}};
    size_t len = strlen(w);
    for (int i = 0; i < 10; i++) {
        if (strcmp(w, units[i]) == 0) {
            *v = i;
            return K_UNIT;
        }
        if (strcmp(w, teens[i]) == 0) {
            *v = 10 + i;
            return K_TEEN;
        }
        if (i >= 2 && strcmp(w, tens[i]) == 0) {
            *v = 10 * i;
            return K_TENS;
        }
    }
    if (strcmp(w, "hundred") == 0) {
        *v = 100;
        return K_HUNDRED;
    }
    if (strcmp(w, "thousand") == 0 || strcmp(w, "k") == 0 || strcmp(w, "grand") == 0) {
        *v = 1000;
        return K_MAG;
    }
    if (strcmp(w, "million") == 0) {
        *v = 1000000;
        return K_MAG;
    }
    if (strcmp(w, "and") == 0) {
        *v = 0;
        return K_AND;
    }
    if (all_digits(w, len)) {
        *v = strtoll(w, NULL, 10);
        return K_DIGITS;
    }
    if (len >= 2 && w[len - 1] == 'k' && all_digits(w, len - 1)) {
        *v = strtoll(w, NULL, 10) * 1000;
        return K_DIGITS;
    }
    for (size_t i = 0; i < sizeof(homophones) / sizeof(homophones[0]); i++)
        if (strcmp(w, homophones[i].word) == 0 && counts_something(next) &&
            (w[0] != 'a' || strcmp(next, "bedroom") != 0)) {
            *v = homophones[i].value;
            return K_UNIT;
        }
    return K_NONE;
}

static const char *word_or_empty(const struct off_input *in, size_t j)
{
    return j < in->n ? in->words[j] : "";
}

/* Parses the number starting at word i; returns the words it spans (0 = none). */
static size_t parse_number(const struct off_input *in, size_t i, long long *value)
{
    long long total = 0, cur = 0, v, last_mag = 0;
    enum num_kind last = K_NONE, kind;
    size_t j = i;

    /* "half a million" */
    if (strcmp(in->words[i], "half") == 0 && strcmp(word_or_empty(in, i + 1), "a") == 0 &&
        classify(word_or_empty(in, i + 2), "", &v) == K_MAG) {
        *value = v / 2;
        return 3;
    }
    for (; j < in->n; j++) {
        kind = classify(in->words[j], word_or_empty(in, j + 1), &v);
        if (last != K_NONE && strcmp(in->words[j], "a") == 0)
            break; /* "a" counts only in front: "a hundred", "a million" */
        int after_start = last == K_NONE || last == K_HUNDRED || last == K_MAG || last == K_AND;
        if (kind == K_UNIT && (after_start || (last == K_TENS && cur % 10 == 0))) {
            cur += v;
        } else if ((kind == K_TEEN || kind == K_TENS) && after_start) {
            cur += v;
        } else if (kind == K_DIGITS && last == K_NONE) {
            cur = v;
        } else if (kind == K_HUNDRED && last != K_HUNDRED && last != K_AND && cur % 100 != 0) {
            cur *= 100;
        } else if (kind == K_HUNDRED && last == K_NONE) {
            cur = 100;
        } else if (kind == K_MAG && last != K_NONE && last != K_AND && last != K_MAG &&
                   (last_mag == 0 || v < last_mag) && cur > 0) {
            total += cur * v;
            cur = 0;
            last_mag = v;
        } else if (kind == K_AND && (last == K_HUNDRED || last == K_MAG)) {
            long long nv;
            enum num_kind nk = classify(word_or_empty(in, j + 1), word_or_empty(in, j + 2), &nv);
            if (nk != K_UNIT && nk != K_TEEN && nk != K_TENS)
                break;
        } else if (strcmp(in->words[j], "point") == 0 && last != K_NONE && cur > 0 && cur < 1000) {
            /* "one point five million" */
            long long d, mag;
            if (classify(word_or_empty(in, j + 1), "", &d) != K_UNIT ||
                classify(word_or_empty(in, j + 2), "", &mag) != K_MAG)
                break;
            total += cur * mag + d * mag / 10;
            cur = 0;
            j += 3;
            last = K_MAG;
            break;
        } else {
            break;
        }
        last = kind;
    }
    if (last == K_AND)
        j--;
    *value = total + cur;
    return j - i;
}

/* A lone "one" in "the first one", "that one", "which one" is a pronoun. */
static int lone_one_is_pronoun(const struct off_input *in, size_t i)
{
    static const char *const num_before[] = {"at", "number", "option", "under", "over", "only",
                                             "just", NULL};
    static const char *const num_after[] = {"bedroom", "bedrooms", "bed", "beds", "bath",
                                            "bathroom", "bathrooms", "am", "pm", "oclock", "o",
                                            "thirty", "fifteen", "forty", "fourty", "room",
                                            "rooms", "p", "a", NULL};
    const char *next = word_or_empty(in, i + 1);
    if (i > 0)
        for (const char *const *p = num_before; *p; p++)
            if (strcmp(in->words[i - 1], *p) == 0)
                return 0;
    for (const char *const *p = num_after; *p; p++)
        if (strcmp(next, *p) == 0)
            return 0;
    return 1;
}

void off_numbers_scan(struct off_input *in)
{
    for (size_t i = 0; i < in->n; i++) {
        in->num[i] = -1;
        in->num_len[i] = 0;
    }
    for (size_t i = 0; i < in->n;) {
        long long v = 0;
        size_t len = parse_number(in, i, &v);
        if (len == 1 && strcmp(in->words[i], "one") == 0 && lone_one_is_pronoun(in, i))
            len = 0;
        if (len == 1 && strcmp(in->words[i], "a") == 0)
            len = 0;
        if (len == 0) {
            i++;
            continue;
        }
        in->num[i] = v;
        in->num_len[i] = (unsigned char)len;
        i += len;
    }
}

int off_ordinal(const struct off_input *in)
{
    static const char *const words[] = {"first",   "second", "third", "fourth", "fifth",
                                        "sixth",   "seventh", "eighth", "ninth", "tenth"};
    static const char *const digits[] = {"1st", "2nd", "3rd", "4th", "5th",
                                         "6th", "7th", "8th", "9th", "10th"};
    for (size_t i = 0; i < in->n; i++) {
        const char *w = in->words[i];
        for (int k = 0; k < 10; k++)
            if (strcmp(w, words[k]) == 0 || strcmp(w, digits[k]) == 0)
                return k;
        if (strcmp(w, "last") == 0 || strcmp(w, "latter") == 0)
            return OFF_LAST;
        if (strcmp(w, "former") == 0)
            return 0;
        if ((strcmp(w, "number") == 0 || strcmp(w, "option") == 0) && i + 1 < in->n &&
            in->num[i + 1] >= 1 && in->num[i + 1] <= 10)
            return (int)in->num[i + 1] - 1;
    }
    return -1;
}

void off_fmt_money(long long value, char *buf, size_t n)
{
    char digits[32], grouped[48];
    size_t len, o = 0;
    if (value < 0)
        value = 0;
    snprintf(digits, sizeof(digits), "%lld", value);
    len = strlen(digits);
    for (size_t i = 0; i < len; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            grouped[o++] = ',';
        grouped[o++] = digits[i];
    }
    grouped[o] = '\0';
    snprintf(buf, n, "%s dollars", grouped);
}

void off_fmt_count(long long value, char *buf, size_t n)
{
    if (value < 0 || value > 99)
        snprintf(buf, n, "%lld", value);
    else if (value < 10)
        snprintf(buf, n, "%s", units[value]);
    else if (value < 20)
        snprintf(buf, n, "%s", teens[value - 10]);
    else if (value % 10 == 0)
        snprintf(buf, n, "%s", tens[value / 10]);
    else
        snprintf(buf, n, "%s %s", tens[value / 10], units[value % 10]);
}

void off_fmt_ordinal(int value, char *buf, size_t n)
{
    static const char *const words[] = {
        "zeroth",     "first",      "second",     "third",       "fourth",
        "fifth",      "sixth",      "seventh",    "eighth",      "ninth",
        "tenth",      "eleventh",   "twelfth",    "thirteenth",  "fourteenth",
        "fifteenth",  "sixteenth",  "seventeenth", "eighteenth", "nineteenth",
        "twentieth"};
    if (value >= 0 && value <= 20) {
        snprintf(buf, n, "%s", words[value]);
        return;
    }
    const char *suffix = "th";
    if (value % 100 < 11 || value % 100 > 13)
        suffix = value % 10 == 1 ? "st" : value % 10 == 2 ? "nd" : value % 10 == 3 ? "rd" : "th";
    snprintf(buf, n, "%d%s", value, suffix);
}

void off_fmt_time(int minutes, char *buf, size_t n)
{
    int h = minutes / 60 % 24, m = minutes % 60;
    char hw[24], mw[24] = "";
    const char *part;
    if (m == 0 && h == 12) {
        snprintf(buf, n, "noon");
        return;
    }
    if (m == 0 && h == 0) {
        snprintf(buf, n, "midnight");
        return;
    }
    off_fmt_count(h % 12 == 0 ? 12 : h % 12, hw, sizeof(hw));
    if (m > 0 && m < 10) {
        snprintf(mw, sizeof(mw), " oh %s", units[m]);
    } else if (m >= 10) {
        mw[0] = ' ';
        off_fmt_count(m, mw + 1, sizeof(mw) - 1);
    }
    part = h < 12 ? "in the morning" : h < 17 ? "in the afternoon" : "in the evening";
    snprintf(buf, n, "%s%s %s", hw, mw, part);
}
