/*
 * Word error rate: the word-level edit distance (substitutions, insertions, deletions)
 * between a reference transcript and a recogniser's hypothesis, after both went through
 * stt_norm_text. Used by vap-stt-eval and the tests.
 */
#include "stt_internal.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"

#define WER_MAX_WORDS 256

/* Splits s (modified in place) at spaces into at most WER_MAX_WORDS words. */
static size_t split(char *s, char **w)
{
    size_t n = 0;
    char *save = NULL;
    for (char *p = strtok_r(s, " ", &save); p && n < WER_MAX_WORDS;
         p = strtok_r(NULL, " ", &save))
        w[n++] = p;
    return n;
}

int stt_wer(const char *ref, const char *hyp, size_t *errors, size_t *ref_words)
{
    char r[STT_MAX_SENTENCE * 2], h[STT_MAX_SENTENCE * 2];
    char *rw[WER_MAX_WORDS], *hw[WER_MAX_WORDS];
    size_t nr, nh, *prev, *cur;
    if (stt_norm_text(ref, r, sizeof(r)) < 0 || stt_norm_text(hyp, h, sizeof(h)) < 0)
        return VAP_ETOOBIG;
    nr = split(r, rw);
    nh = split(h, hw);
    prev = malloc((nh + 1) * sizeof(*prev));
    cur = malloc((nh + 1) * sizeof(*cur));
    if (!prev || !cur) {
        free(prev);
        free(cur);
        return VAP_ENOMEM;
    }
    for (size_t j = 0; j <= nh; j++)
        prev[j] = j;
    for (size_t i = 1; i <= nr; i++) {
        size_t *t;
        cur[0] = i;
        for (size_t j = 1; j <= nh; j++) {
            size_t sub = prev[j - 1] + (strcmp(rw[i - 1], hw[j - 1]) != 0);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        t = prev, prev = cur, cur = t;
    }
    *errors = prev[nh];
    *ref_words = nr;
    free(prev);
    free(cur);
    return 0;
}
