/*
 * Sentence boundaries in streamed text (tts_sentence_end). LLM replies arrive a few
 * characters at a time; the worker speaks each sentence as soon as it is complete, so
 * the question here is "is there a whole sentence at the front yet?".
 *
 * "?" and "!" end a sentence, and so does a newline. A "." ends one only when it is not
 * part of a number ("3.5"), an abbreviation ("Dr. Patel", "e.g.", "J. Smith") or a list
 * number at the start of a line ("1. Call us"). A terminator needs to be followed by
 * white space: "3." at the very end of the streamed text may still become "3.5", so
 * without final nothing is complete until the next character has arrived.
 */
#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "tts.h"

/* Words that are abbreviations when followed by "." and never end a sentence there. */
static const char *const never_end[] = {
    "mr",   "mrs",    "ms",   "dr",  "prof", "st",   "mt",  "apt",  "vs",  "e.g", "i.e",
    "cf",   "approx", "dept", "ave", "blvd", "rd",   "ste", "tel",  "fig", "jan", "feb",
    "apr",  "jun",    "jul",  "aug", "sep",  "sept", "oct", "nov",  "sr",  "ft",  "gen",
    "capt", "lt",     "sgt",  "rev", "hon",  "u.s",  "u.k", "ph.d",
};
/* Abbreviations that end a sentence when the next word starts with a capital. */
static const char *const end_if_capital[] = {
    "etc", "inc", "ltd", "co",  "corp", "a.m", "p.m", "am",  "pm",
    "no",  "jr",  "ln",  "min", "hr",   "est", "mar", "dec", "col",
};

static bool in_list(const char *w, size_t n, const char *const *list, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (strlen(list[i]) == n && strncasecmp(w, list[i], n) == 0)
            return true;
    return false;
}

static bool is_closer(char c)
{
    return c == '"' || c == '\'' || c == ')' || c == ']' || c == '}';
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/*
 * The '.' at text[i] with the word before it in text[w..i): does it end the sentence,
 * given that next is the first non-space character after it (0 at end of text)?
 */
static bool period_ends(const char *text, size_t start, size_t w, size_t i, char next)
{
    size_t n = i - w;
    bool all_digits = n > 0;

    if (n == 0)
        return true; /* "..." or ". " after a space */
    for (size_t k = w; k < i; k++)
        if (!isdigit((unsigned char)text[k]))
            all_digits = false;
    /* "1. Call us": a bare number opening the line is a list marker. */
    if (all_digits && n <= 2) {
        size_t k = w;
        while (k > start && (text[k - 1] == ' ' || text[k - 1] == '\t'))
            k--;
        if (k == start || text[k - 1] == '\n')
            return false;
    }
    if (in_list(text + w, n, never_end, sizeof never_end / sizeof never_end[0]))
        return false;
    /* A single letter is an initial ("J. Smith"), except the pronoun at the end. */
    if (n == 1 && isupper((unsigned char)text[w]) && text[w] != 'I')
        return false;
    if (in_list(text + w, n, end_if_capital, sizeof end_if_capital / sizeof end_if_capital[0]))
        return next == 0 || isupper((unsigned char)next);
    /* Other dotted abbreviations ("U.S.A.") end only before a capital. */
    if (memchr(text + w, '.', n) && !all_digits)
        return next == 0 || isupper((unsigned char)next);
    /* "Call now. then" is rare; "approx. ten" style lower-case words follow abbreviations. */
    return true;
}

size_t tts_sentence_end(const char *text, size_t len, bool final)
{
    size_t start = 0;
    size_t word = 0; /* where the current word (letters, digits, inner dots) begins */

    if (!text || len == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        bool terminal = false;
        size_t j;

        if (c == '\n') {
            j = i + 1;
            while (j < len && is_space(text[j]))
                j++;
            return j;
        }
        if (c != '.' && c != '!' && c != '?') {
            if (!isalnum((unsigned char)c) && (unsigned char)c < 0x80)
                word = i + 1;
            continue;
        }
        /* A run of terminators counts as one ("?!", "..."), then closing quotes. */
        j = i;
        while (j < len && (text[j] == '.' || text[j] == '!' || text[j] == '?'))
            j++;
        while (j < len && is_closer(text[j]))
            j++;
        if (j == len && !final)
            return 0; /* the next character decides */
        if (j < len && !is_space(text[j])) {
            /* "3.5", "e.g", "example.com": inside a word; the word keeps growing. */
            if (c == '.')
                continue;
            i = j - 1;
            word = j;
            continue;
        }
        if (c == '.' && j == i + 1) {
            size_t k = j;
            while (k < len && is_space(text[k]) && text[k] != '\n')
                k++;
            if (k == len && !final)
                return 0; /* whether "Dr." ends depends on the next word */
            terminal = period_ends(text, start, word, i, k < len ? text[k] : 0);
        } else {
            terminal = true;
        }
        if (!terminal) {
            word = i + 1;
            continue;
        }
        while (j < len && is_space(text[j]) && text[j] != '\n')
            j++;
        if (j < len && text[j] == '\n') {
            j++;
            while (j < len && is_space(text[j]))
                j++;
        }
        return j;
    }
    return final ? len : 0;
}
