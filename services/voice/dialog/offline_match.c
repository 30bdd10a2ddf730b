/*
 * Words and names for the offline dialog engine: splits what the speech recogniser heard
 * into lowercase words and finds names from the agent's data in it despite recognition
 * errors. A name matches exactly, as a plural, within a small edit distance (longer
 * words only, so "rest" never becomes "rent"), by sound (a metaphone-like key), or split
 * or joined differently ("port land", "townhouse"). It does not guess meaning: skills
 * decide what a matched word is for.
 */
#include "offline_internal.h"

#include <string.h>

#define NAME_WORDS_MAX 6

void off_normalise(const char *s, char *out, size_t n)
{
    size_t o = 0;
    int space = 1; /* no leading space */
    if (n == 0)
        return;
    for (; *s && o + 1 < n; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
            out[o++] = (char)c;
            space = 0;
        } else if (c == '\'' || (c == ',' && o > 0 && out[o - 1] >= '0' && out[o - 1] <= '9' &&
                                 s[1] >= '0' && s[1] <= '9')) {
            /* "what's" -> "whats", "350,000" -> "350000" */
        } else if (!space) {
            out[o++] = ' ';
            space = 1;
        }
    }
    while (o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
}

/* Splits normalised text into at most max words of at most OFF_WORD_LEN-1 characters. */
static size_t split_words(const char *norm, char words[][OFF_WORD_LEN], size_t max)
{
    size_t n = 0;
    while (*norm && n < max) {
        size_t len = strcspn(norm, " ");
        size_t keep = len < OFF_WORD_LEN - 1 ? len : OFF_WORD_LEN - 1;
        memcpy(words[n], norm, keep);
        words[n][keep] = '\0';
        n++;
        norm += len;
        while (*norm == ' ')
            norm++;
    }
    return n;
}

void off_input_parse(const char *text, struct off_input *in)
{
    char norm[OFF_WORDS_MAX * OFF_WORD_LEN];
    memset(in, 0, sizeof(*in));
    off_normalise(text ? text : "", norm, sizeof(norm));
    in->n = split_words(norm, in->words, OFF_WORDS_MAX);
    off_numbers_scan(in);
}

int off_word_at(const struct off_input *in, const char *word, size_t from)
{
    for (size_t i = from; i < in->n; i++)
        if (strcmp(in->words[i], word) == 0)
            return (int)i;
    return -1;
}

/* heard is word, or its plural / possessive ("knees", "patels", "churches"). */
static int same_or_plural(const char *heard, const char *word)
{
    size_t hl = strlen(heard), wl = strlen(word);
    if (strcmp(heard, word) == 0)
        return 1;
    if (hl == wl + 1 && heard[wl] == 's' && strncmp(heard, word, wl) == 0)
        return 1;
    if (hl == wl + 2 && strcmp(heard + wl, "es") == 0 && strncmp(heard, word, wl) == 0)
        return 1;
    /* the data has the plural, the visitor said the singular */
    return wl == hl + 1 && word[hl] == 's' && strncmp(heard, word, hl) == 0;
}

int off_has_any(const struct off_input *in, const char *const *words)
{
    for (size_t i = 0; i < in->n; i++)
        for (const char *const *w = words; *w; w++)
            if (same_or_plural(in->words[i], *w))
                return 1;
    return 0;
}

int off_has_phrase(const struct off_input *in, const char *phrase)
{
    char norm[256], words[NAME_WORDS_MAX][OFF_WORD_LEN];
    size_t k;
    off_normalise(phrase, norm, sizeof(norm));
    k = split_words(norm, words, NAME_WORDS_MAX);
    if (k == 0 || k > in->n)
        return 0;
    for (size_t i = 0; i + k <= in->n; i++) {
        size_t j = 0;
        while (j < k && (j + 1 < k ? strcmp(in->words[i + j], words[j]) == 0
                                   : same_or_plural(in->words[i + j], words[j])))
            j++;
        if (j == k)
            return 1;
    }
    return 0;
}

size_t off_edit_distance(const char *a, const char *b)
{
    size_t la = strnlen(a, 255), lb = strnlen(b, 255);
    size_t prev[256], cur[256];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (lb + 1) * sizeof(prev[0]));
    }
    return prev[lb];
}

static int is_vowel(char c)
{
    return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u' || c == 'y';
}

void off_phonetic(const char *w, char *out, size_t n)
{
    size_t o = 0, len = strlen(w);
    size_t i = 0;
    if (n == 0)
        return;
    if (len >= 2 && (strncmp(w, "kn", 2) == 0 || strncmp(w, "gn", 2) == 0 ||
                     strncmp(w, "pn", 2) == 0 || strncmp(w, "wr", 2) == 0))
        i = 1;
    for (; i < len && o + 1 < n; i++) {
        char c = w[i], next = w[i + 1], k = 0;
        if (is_vowel(c)) {
            if (i == 0)
                k = 'a';
        } else {
            switch (c) {
            case 'c':
                k = (next == 'e' || next == 'i' || next == 'y') ? 's' : 'k';
                if (next == 'h') {
                    k = (i > 0 && w[i - 1] == 's') ? 'k' : 'x';
                    i++;
                }
                break;
            case 'g': k = (next == 'e' || next == 'i' || next == 'y') ? 'j' : 'k'; break;
            case 'd': k = 't'; break;
            case 'h': k = (i == 0 && is_vowel(next)) ? 'h' : 0; break;
            case 'p':
                k = next == 'h' ? 'f' : 'p';
                i += next == 'h';
                break;
            case 's':
                k = next == 'h' ? 'x' : 's';
                i += next == 'h';
                break;
            case 't':
                k = next == 'h' ? '0' : 't';
                i += next == 'h';
                break;
            case 'q': k = 'k'; break;
            case 'v': k = 'f'; break;
            case 'w': k = is_vowel(next) ? 'w' : 0; break;
            case 'z': k = 's'; break;
            case 'x':
                if (o + 2 < n && (o == 0 || out[o - 1] != 'k'))
                    out[o++] = 'k';
                k = 's';
                break;
            default: k = (c >= 'a' && c <= 'z') ? c : 0; break;
            }
        }
        if (k && (o == 0 || out[o - 1] != k))
            out[o++] = k;
    }
    out[o] = '\0';
}

/* 2 = the same word (or its plural), 1 = close enough for a name, 0 = different. */
static int word_like(const char *heard, const char *target)
{
    size_t tl = strlen(target), hl = strlen(heard);
    char kh[OFF_WORD_LEN * 2], kt[OFF_WORD_LEN * 2];
    if (same_or_plural(heard, target))
        return 2;
    if (tl < 5 || hl < 4)
        return 0;
    if (off_edit_distance(heard, target) <= (tl >= 8 ? 2u : 1u))
        return 1;
    off_phonetic(heard, kh, sizeof(kh));
    off_phonetic(target, kt, sizeof(kt));
    return strlen(kt) >= 3 && strcmp(kh, kt) == 0;
}

/* The words from..from+k of the utterance joined without spaces. */
static void join_words(const struct off_input *in, size_t from, size_t k, char *out, size_t n)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = from; i < from + k && i < in->n; i++) {
        size_t l = strlen(in->words[i]);
        if (o + l + 1 > n)
            break;
        memcpy(out + o, in->words[i], l + 1);
        o += l;
    }
}

int off_find_name(const struct off_input *in, const char *name, size_t *at)
{
    char norm[256], joined_name[256], joined[256];
    char words[NAME_WORDS_MAX][OFF_WORD_LEN];
    size_t k, o = 0;
    int best = 0;
    size_t best_at = 0;

    off_normalise(name, norm, sizeof(norm));
    k = split_words(norm, words, NAME_WORDS_MAX);
    if (k == 0)
        return 0;
    for (size_t j = 0; j < k; j++) {
        size_t l = strlen(words[j]);
        memcpy(joined_name + o, words[j], l + 1);
        o += l;
    }
    for (size_t i = 0; i < in->n && best < 2; i++) {
        int q = 2;
        /* word by word */
        for (size_t j = 0; j < k && q > 0; j++) {
            int m = i + j < in->n ? word_like(in->words[i + j], words[j]) : 0;
            q = m < q ? m : q;
        }
        if (q > best) {
            best = q;
            best_at = i;
        }
        /* split or joined differently: one word more or fewer than the name has */
        for (size_t kk = k > 1 ? k - 1 : 1; kk <= k + 1 && best < 1; kk++) {
            if (kk == k || i + kk > in->n)
                continue;
            join_words(in, i, kk, joined, sizeof(joined));
            if (strcmp(joined, joined_name) == 0 ||
                (strlen(joined_name) >= 6 && off_edit_distance(joined, joined_name) <= 1)) {
                best = 1;
                best_at = i;
            }
        }
    }
    if (best && at)
        *at = best_at;
    return best;
}
