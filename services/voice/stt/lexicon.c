/*
 * Pronunciations for an agent's dictionary. Words come from the CMU dictionary that
 * ships with the en-us acoustic model; words it lacks (names such as "Okafor", places
 * such as "Hillcrest") are guessed by flite's CMU lexicon and letter-to-sound rules,
 * whose phones are the CMU set with stress digits and "ax"/"axr", mapped here to the
 * acoustic model's 39 phones. Only used while building a model, never while decoding.
 */
#include "stt_internal.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <flite/flite.h>

#include "common/err.h"

cst_lexicon *cmu_lex_init(void); /* libflite_cmulex has no header of its own */

struct stt_lexicon {
    char *text;     /* the whole file, lines NUL-terminated */
    char **lines;   /* "word(2) PH PH" */
    size_t n_lines;
    int32_t *first; /* hash of base word -> first line index, -1 empty */
    int32_t *next;  /* next line with the same base word, -1 end */
    size_t cap;
};

/* flite's lexicon and letter-to-sound rules are process-wide and not documented as
 * thread-safe; models are built rarely, so one lock is enough. */
static pthread_mutex_t flite_lock = PTHREAD_MUTEX_INITIALIZER;
static cst_lexicon *flite_lex;

static uint64_t hash_word(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

/* Length of the base word of a dictionary line ("read(2) R IY D" -> 4). */
static size_t base_len(const char *line)
{
    size_t n = strcspn(line, " \t(");
    return n;
}

static int32_t find_first(const struct stt_lexicon *lx, const char *w, size_t n)
{
    size_t i = hash_word(w, n) & (lx->cap - 1);
    while (lx->first[i] >= 0) {
        const char *l = lx->lines[lx->first[i]];
        if (base_len(l) == n && memcmp(l, w, n) == 0)
            return lx->first[i];
        i = (i + 1) & (lx->cap - 1);
    }
    return -1;
}

int stt_lexicon_open(const char *dict_path, struct stt_lexicon **out)
{
    struct stt_lexicon *lx = calloc(1, sizeof(*lx));
    FILE *f = fopen(dict_path, "rb");
    long size;
    size_t n = 0;
    int32_t *last;
    int rv = VAP_ENOMEM;
    if (!f) {
        free(lx);
        return VAP_ENOTFOUND;
    }
    if (!lx || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto fail;
    lx->text = malloc((size_t)size + 1);
    if (!lx->text || fread(lx->text, 1, (size_t)size, f) != (size_t)size)
        goto fail;
    lx->text[size] = '\0';
    for (long i = 0; i < size; i++)
        n += lx->text[i] == '\n';
    lx->lines = malloc((n + 1) * sizeof(*lx->lines));
    for (lx->cap = 1024; lx->cap < 2 * (n + 1);)
        lx->cap *= 2;
    lx->first = malloc(lx->cap * sizeof(*lx->first));
    lx->next = malloc((n + 1) * sizeof(*lx->next));
    last = malloc((n + 1) * sizeof(*last));
    if (!lx->lines || !lx->first || !lx->next || !last) {
        free(last);
        goto fail;
    }
    memset(lx->first, 0xff, lx->cap * sizeof(*lx->first));
    for (char *p = lx->text; *p;) {
        char *end = strchr(p, '\n');
        size_t bl;
        if (end)
            *end = '\0';
        bl = base_len(p);
        if (bl > 0 && p[bl] != '\0') {
            int32_t idx = (int32_t)lx->n_lines++;
            size_t h = hash_word(p, bl) & (lx->cap - 1);
            lx->lines[idx] = p;
            lx->next[idx] = -1;
            while (lx->first[h] >= 0 && !(base_len(lx->lines[lx->first[h]]) == bl &&
                                          memcmp(lx->lines[lx->first[h]], p, bl) == 0))
                h = (h + 1) & (lx->cap - 1);
            if (lx->first[h] < 0)
                lx->first[h] = idx;
            else
                lx->next[last[lx->first[h]]] = idx;
            last[lx->first[h]] = idx;
        }
        if (!end)
            break;
        p = end + 1;
    }
    free(last);
    fclose(f);
    *out = lx;
    return 0;
fail:
    fclose(f);
    stt_lexicon_close(lx);
    return rv;
}

void stt_lexicon_close(struct stt_lexicon *lx)
{
    if (!lx)
        return;
    free(lx->text);
    free(lx->lines);
    free(lx->first);
    free(lx->next);
    free(lx);
}

int stt_lexicon_has(const struct stt_lexicon *lx, const char *word)
{
    return find_first(lx, word, strlen(word)) >= 0;
}

/* One flite phone ("ax0", "eh1", "pau") as an en-us phone, or NULL to skip it. */
static const char *map_phone(const char *ph, char *buf, size_t max)
{
    size_t n = 0;
    if (strcmp(ph, "pau") == 0)
        return NULL;
    if (strncmp(ph, "axr", 3) == 0)
        return "ER";
    if (strncmp(ph, "ax", 2) == 0)
        return "AH";
    for (; ph[n] && !isdigit((unsigned char)ph[n]) && n + 1 < max; n++)
        buf[n] = (char)toupper((unsigned char)ph[n]);
    buf[n] = '\0';
    return n ? buf : NULL;
}

int stt_lexicon_guess(const char *word, char *out, size_t max)
{
    cst_val *phones;
    size_t len = 0;
    int rv = 0;
    if (max == 0)
        return VAP_ETOOBIG;
    out[0] = '\0';
    pthread_mutex_lock(&flite_lock);
    if (!flite_lex)
        flite_lex = cmu_lex_init();
    phones = flite_lex ? lex_lookup(flite_lex, word, NULL, NULL) : NULL;
    for (const cst_val *p = phones; p && rv == 0; p = val_cdr(p)) {
        char buf[8];
        const char *ph = map_phone(val_string(val_car(p)), buf, sizeof(buf));
        size_t n;
        if (!ph)
            continue;
        n = strlen(ph);
        if (len + (len ? 1 : 0) + n + 1 > max) {
            rv = VAP_ETOOBIG;
            break;
        }
        if (len)
            out[len++] = ' ';
        memcpy(out + len, ph, n + 1);
        len += n;
    }
    if (phones)
        delete_val(phones);
    pthread_mutex_unlock(&flite_lock);
    return rv ? rv : (int)len;
}

int stt_lexicon_write(const struct stt_lexicon *lx, const char *word, FILE *f)
{
    int32_t i = lx ? find_first(lx, word, strlen(word)) : -1;
    int written = 0;
    if (i >= 0) {
        for (; i >= 0; i = lx->next[i], written++)
            if (fprintf(f, "%s\n", lx->lines[i]) < 0)
                return VAP_EINTERNAL;
        return written;
    }
    {
        char phones[512];
        int rv = stt_lexicon_guess(word, phones, sizeof(phones));
        if (rv <= 0)
            return 0;
        if (fprintf(f, "%s %s\n", word, phones) < 0)
            return VAP_EINTERNAL;
        return 1;
    }
}
