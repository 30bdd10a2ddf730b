/*
 * A small ARPA n-gram language model builder (Debian has no LM toolkit). It counts the
 * unigrams, bigrams and trigrams of the sentences it is given and writes a backoff
 * model with interpolated Witten-Bell smoothing:
 *
 *   P(w|h) = (c(h,w) + T(h) * P(w|h')) / (c(h) + T(h))   for seen (h,w)
 *   bow(h) = T(h) / (c(h) + T(h))                        so unseen w get bow(h)*P(w|h')
 *
 * where c(h) counts the words after h, T(h) the distinct ones and h' drops h's oldest
 * word; unigrams interpolate with a uniform distribution the same way. Written this way,
 * every context's distribution sums to one, which the unit test checks through
 * sphinxbase. Sizes are those of a generated per-agent corpus (thousands of sentences).
 */
#include "stt_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

#define LM_ORDER 3
#define LM_MAX_ENTRIES (1u << 24) /* ceiling on distinct n-grams */

struct ngram {
    uint32_t w[LM_ORDER];
    uint8_t n;         /* order; 0 = empty slot */
    uint32_t count;    /* times the n-gram occurs */
    uint32_t ctx_count; /* words seen after it (as a context) */
    uint32_t ctx_types; /* distinct words seen after it */
};

struct lm_builder {
    char **words; /* vocabulary, id = index */
    size_t n_words, cap_words;
    uint32_t *word_slots; /* open addressing: word id + 1, 0 = empty */
    size_t word_slots_cap;
    struct ngram *grams;
    size_t n_grams, grams_cap;
    uint64_t total; /* unigram tokens predicted (all but <s>) */
    uint32_t types; /* distinct unigrams predicted */
};

enum { WORD_BOS = 0, WORD_EOS = 1 };

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static uint64_t hash_gram(const uint32_t *w, int n)
{
    uint64_t h = (uint64_t)n * 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < n; i++)
        h = (h ^ w[i]) * 0xBF58476D1CE4E5B9ULL, h ^= h >> 31;
    return h;
}

static int word_rehash(struct lm_builder *b, size_t cap)
{
    uint32_t *slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return VAP_ENOMEM;
    for (size_t id = 0; id < b->n_words; id++) {
        size_t i = hash_bytes(b->words[id], strlen(b->words[id])) & (cap - 1);
        while (slots[i])
            i = (i + 1) & (cap - 1);
        slots[i] = (uint32_t)id + 1;
    }
    free(b->word_slots);
    b->word_slots = slots;
    b->word_slots_cap = cap;
    return 0;
}

/* The id of the word s[0..n), added to the vocabulary if new. */
static int word_id(struct lm_builder *b, const char *s, size_t n, uint32_t *id)
{
    size_t i;
    int rv;
    if ((b->n_words + 1) * 2 > b->word_slots_cap) {
        rv = word_rehash(b, b->word_slots_cap ? b->word_slots_cap * 2 : 1024);
        if (rv != 0)
            return rv;
    }
    i = hash_bytes(s, n) & (b->word_slots_cap - 1);
    while (b->word_slots[i]) {
        const char *w = b->words[b->word_slots[i] - 1];
        if (strlen(w) == n && memcmp(w, s, n) == 0) {
            *id = b->word_slots[i] - 1;
            return 0;
        }
        i = (i + 1) & (b->word_slots_cap - 1);
    }
    if (b->n_words == b->cap_words) {
        size_t cap = b->cap_words ? b->cap_words * 2 : 256;
        char **words = realloc(b->words, cap * sizeof(*words));
        if (!words)
            return VAP_ENOMEM;
        b->words = words;
        b->cap_words = cap;
    }
    b->words[b->n_words] = strndup(s, n);
    if (!b->words[b->n_words])
        return VAP_ENOMEM;
    b->word_slots[i] = (uint32_t)b->n_words + 1;
    *id = (uint32_t)b->n_words++;
    return 0;
}

static struct ngram *gram_find(const struct lm_builder *b, const uint32_t *w, int n)
{
    size_t i = hash_gram(w, n) & (b->grams_cap - 1);
    while (b->grams[i].n) {
        if (b->grams[i].n == n && memcmp(b->grams[i].w, w, (size_t)n * sizeof(*w)) == 0)
            return &b->grams[i];
        i = (i + 1) & (b->grams_cap - 1);
    }
    return &b->grams[i]; /* the empty slot where it belongs */
}

static int grams_grow(struct lm_builder *b)
{
    size_t cap = b->grams_cap ? b->grams_cap * 2 : 4096;
    struct ngram *old = b->grams;
    size_t old_cap = b->grams_cap;
    if (cap > LM_MAX_ENTRIES)
        return VAP_ETOOBIG;
    b->grams = calloc(cap, sizeof(*b->grams));
    if (!b->grams) {
        b->grams = old;
        return VAP_ENOMEM;
    }
    b->grams_cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].n)
            *gram_find(b, old[i].w, old[i].n) = old[i];
    free(old);
    return 0;
}

/* Counts one occurrence of the n-gram w[0..n) and updates its context's statistics. */
static int count_gram(struct lm_builder *b, const uint32_t *w, int n)
{
    struct ngram *g;
    int rv;
    if ((b->n_grams + 1) * 2 > b->grams_cap) {
        rv = grams_grow(b);
        if (rv != 0)
            return rv;
    }
    g = gram_find(b, w, n);
    if (!g->n) {
        memset(g, 0, sizeof(*g));
        memcpy(g->w, w, (size_t)n * sizeof(*w));
        g->n = (uint8_t)n;
        b->n_grams++;
        if (n == 1)
            b->types++;
        else
            gram_find(b, w, n - 1)->ctx_types++; /* the prefix was counted first */
    }
    g->count++;
    if (n == 1)
        b->total++;
    else
        gram_find(b, w, n - 1)->ctx_count++;
    return 0;
}

int lm_builder_new(struct lm_builder **out)
{
    struct lm_builder *b = calloc(1, sizeof(*b));
    uint32_t id;
    int rv;
    if (!b)
        return VAP_ENOMEM;
    rv = word_id(b, "<s>", 3, &id);
    if (rv == 0)
        rv = word_id(b, "</s>", 4, &id);
    if (rv == 0)
        rv = grams_grow(b);
    if (rv != 0) {
        lm_builder_free(b);
        return rv;
    }
    /* <s> is a context of every sentence but never counted as a unigram itself. */
    id = WORD_BOS;
    {
        struct ngram *g = gram_find(b, &id, 1);
        g->w[0] = WORD_BOS;
        g->n = 1;
        b->n_grams++;
    }
    *out = b;
    return 0;
}

void lm_builder_free(struct lm_builder *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n_words; i++)
        free(b->words[i]);
    free(b->words);
    free(b->word_slots);
    free(b->grams);
    free(b);
}

int lm_builder_add_sentence(struct lm_builder *b, const char *words)
{
    uint32_t hist[LM_ORDER] = {WORD_BOS, 0, 0};
    int n_hist = 1; /* <s> is context only, never predicted */
    const char *s = words;
    int rv;
    for (;;) {
        uint32_t id = WORD_EOS;
        size_t len;
        while (*s == ' ')
            s++;
        len = strcspn(s, " ");
        if (len == 0 && n_hist == 1)
            return 0; /* empty sentence */
        if (len > 0) {
            rv = word_id(b, s, len < STT_MAX_WORD ? len : STT_MAX_WORD - 1, &id);
            if (rv != 0)
                return rv;
        }
        /* The n-grams ending in id, shortest first (each prefix exists before). */
        if (n_hist == LM_ORDER) {
            memmove(hist, hist + 1, (LM_ORDER - 1) * sizeof(*hist));
            n_hist--;
        }
        hist[n_hist++] = id;
        for (int n = 1; n <= n_hist; n++) {
            rv = count_gram(b, hist + n_hist - n, n);
            if (rv != 0)
                return rv;
        }
        if (len == 0)
            return 0;
        s += len;
    }
}

size_t lm_builder_vocab_size(const struct lm_builder *b)
{
    return b->n_words;
}

const char *lm_builder_word(const struct lm_builder *b, size_t i)
{
    return i < b->n_words ? b->words[i] : NULL;
}

/* P(w | h) of the model as written, for 0 <= n-1 <= 2 history words h = w[0..n-1). */
static double prob(const struct lm_builder *b, const uint32_t *w, int n)
{
    const struct ngram *g, *ctx;
    double lower;
    if (n == 1) {
        g = gram_find(b, w, 1);
        /* <s> is never predicted; the uniform part spreads over the rest of the words */
        if (w[0] == WORD_BOS)
            return 0.0;
        return ((g->n ? g->count : 0) + b->types / (double)(b->n_words - 1)) /
               (double)(b->total + b->types);
    }
    lower = prob(b, w + 1, n - 1);
    ctx = gram_find(b, w, n - 1);
    if (!ctx->n || ctx->ctx_types == 0)
        return lower; /* bow 1 */
    g = gram_find(b, w, n);
    return ((g->n ? g->count : 0) + ctx->ctx_types * lower) /
           (double)(ctx->ctx_count + ctx->ctx_types);
}

static double bow(const struct ngram *g)
{
    if (g->ctx_types == 0)
        return 1.0;
    return g->ctx_types / (double)(g->ctx_count + g->ctx_types);
}

static int cmp_gram(const void *pa, const void *pb)
{
    const struct ngram *a = *(const struct ngram *const *)pa, *b = *(const struct ngram *const *)pb;
    for (int i = 0; i < a->n; i++)
        if (a->w[i] != b->w[i])
            return a->w[i] < b->w[i] ? -1 : 1;
    return 0;
}

int lm_builder_write_arpa(const struct lm_builder *b, FILE *f)
{
    size_t counts[LM_ORDER + 1] = {0};
    const struct ngram **sorted = malloc((b->n_grams + 1) * sizeof(*sorted));
    int rv = VAP_EINTERNAL;
    if (!sorted)
        return VAP_ENOMEM;
    for (size_t i = 0; i < b->grams_cap; i++)
        if (b->grams[i].n && b->grams[i].n > 1)
            counts[b->grams[i].n]++;
    counts[1] = b->n_words; /* every vocabulary word, <s> included */
    fprintf(f, "\\data\\\n");
    for (int n = 1; n <= LM_ORDER; n++)
        fprintf(f, "ngram %d=%zu\n", n, counts[n]);
    fprintf(f, "\n\\1-grams:\n");
    for (uint32_t id = 0; id < b->n_words; id++) {
        const struct ngram *g = gram_find(b, &id, 1);
        double p = prob(b, &id, 1);
        double bo = g->n ? bow(g) : 1.0;
        fprintf(f, "%.6f\t%s\t%.6f\n", p > 0 ? log10(p) : -99.0, b->words[id], log10(bo));
    }
    for (int n = 2; n <= LM_ORDER; n++) {
        size_t k = 0;
        for (size_t i = 0; i < b->grams_cap; i++)
            if (b->grams[i].n == n)
                sorted[k++] = &b->grams[i];
        qsort(sorted, k, sizeof(*sorted), cmp_gram);
        fprintf(f, "\n\\%d-grams:\n", n);
        for (size_t i = 0; i < k; i++) {
            const struct ngram *g = sorted[i];
            fprintf(f, "%.6f", log10(prob(b, g->w, n)));
            for (int j = 0; j < n; j++)
                fprintf(f, "%s%s", j ? " " : "\t", b->words[g->w[j]]);
            if (n < LM_ORDER)
                fprintf(f, "\t%.6f", log10(bow(g)));
            fputc('\n', f);
        }
    }
    fprintf(f, "\n\\end\\\n");
    if (!ferror(f))
        rv = 0;
    free(sorted);
    return rv;
}
