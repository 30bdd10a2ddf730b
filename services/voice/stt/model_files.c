/*
 * The files behind an agent's recogniser, built once and cached: an ARPA trigram model
 * of the agent's corpus (corpus.c + lm_build.c) and a pronunciation dictionary holding
 * the corpus words plus the most likely words of the generic en-us model (so the
 * generic model, interpolated at decode time, can still recognise everyday speech).
 * Files are named <agent>-<hash>.{lm,dict} in the cache directory, where the hash covers
 * the agent file's content, the model directory and the builder's version; they are
 * written under a temporary name and renamed, so concurrent builders never see halves.
 */
#include "stt_files.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <sphinxbase/err.h>
#include <sphinxbase/logmath.h>
#include <sphinxbase/ngram_model.h>

#include "common/err.h"
#include "stt_internal.h"

#define BUILD_VERSION "stt-files-1"

static int add_sentence(void *user, const char *words)
{
    return lm_builder_add_sentence(user, words);
}

struct ranked {
    const char *word;
    int32_t prob;
};

static int by_prob_desc(const void *pa, const void *pb)
{
    const struct ranked *a = pa, *b = pb;
    return (a->prob < b->prob) - (a->prob > b->prob);
}

/* Appends the n_generic likeliest words of the generic model that are not yet in
 * written (sorted by strcmp) to the dictionary. */
static int write_generic_words(const struct stt_lexicon *lx, const char *generic_lm,
                               const struct lm_builder *b, size_t n_generic, FILE *f)
{
    logmath_t *lmath = logmath_init(1.0001, 0, 0);
    ngram_model_t *lm = lmath ? ngram_model_read(NULL, generic_lm, NGRAM_AUTO, lmath) : NULL;
    struct ranked *r = NULL;
    size_t n = 0, written = 0;
    int rv = VAP_EINVAL;
    if (!lm)
        goto out;
    {
        int32_t count = (int32_t)ngram_model_get_counts(lm)[0];
        r = malloc((size_t)count * sizeof(*r));
        if (!r) {
            rv = VAP_ENOMEM;
            goto out;
        }
        for (int32_t wid = 0; wid < count; wid++) {
            const char *w = ngram_word(lm, wid);
            int32_t used;
            if (!w || w[0] == '<')
                continue;
            r[n].word = w;
            r[n].prob = ngram_ng_prob(lm, wid, NULL, 0, &used);
            n++;
        }
    }
    qsort(r, n, sizeof(*r), by_prob_desc);
    rv = 0;
    for (size_t i = 0; i < n && written < n_generic && rv == 0; i++) {
        int in_domain = 0;
        for (size_t j = 2; j < lm_builder_vocab_size(b) && !in_domain; j++)
            in_domain = strcmp(lm_builder_word(b, j), r[i].word) == 0;
        if (in_domain || !stt_lexicon_has(lx, r[i].word))
            continue;
        rv = stt_lexicon_write(lx, r[i].word, f);
        if (rv > 0) {
            written++;
            rv = 0;
        }
    }
out:
    free(r);
    if (lm)
        ngram_model_free(lm);
    if (lmath)
        logmath_free(lmath);
    return rv;
}

static int build(const struct vap_agent *agent, const struct stt_build_options *o,
                 const char *lm_path, const char *dict_path, char *err, size_t err_size)
{
    struct lm_builder *b = NULL;
    struct stt_lexicon *lx = NULL;
    char tmp_lm[PATH_MAX + 32], tmp_dict[PATH_MAX + 32], cmudict[PATH_MAX];
    FILE *f = NULL;
    int rv;

    snprintf(tmp_lm, sizeof(tmp_lm), "%s.%ld.tmp", lm_path, (long)getpid());
    snprintf(tmp_dict, sizeof(tmp_dict), "%s.%ld.tmp", dict_path, (long)getpid());
    snprintf(cmudict, sizeof(cmudict), "%s/cmudict-en-us.dict", o->model_root);
    rv = lm_builder_new(&b);
    if (rv != 0)
        goto out;
    rv = stt_corpus_build(agent->json, agent->id, add_sentence, b, err, err_size);
    if (rv != 0)
        goto out;
    rv = VAP_EINVAL;
    f = fopen(tmp_lm, "w");
    if (!f || lm_builder_write_arpa(b, f) != 0 || fclose(f) != 0) {
        f = NULL;
        snprintf(err, err_size, "%s: cannot write %s: %s", agent->id, tmp_lm, strerror(errno));
        goto out;
    }
    f = NULL;
    rv = stt_lexicon_open(cmudict, &lx);
    if (rv != 0) {
        snprintf(err, err_size, "%s: cannot read %s", agent->id, cmudict);
        goto out;
    }
    f = fopen(tmp_dict, "w");
    if (!f) {
        snprintf(err, err_size, "%s: cannot write %s: %s", agent->id, tmp_dict, strerror(errno));
        rv = VAP_EINVAL;
        goto out;
    }
    for (size_t i = 2; i < lm_builder_vocab_size(b) && rv >= 0; i++)
        rv = stt_lexicon_write(lx, lm_builder_word(b, i), f);
    if (rv >= 0 && o->generic_lm && o->generic_words > 0)
        rv = write_generic_words(lx, o->generic_lm, b, o->generic_words, f);
    if (fclose(f) != 0 || rv < 0) {
        f = NULL;
        snprintf(err, err_size, "%s: cannot write the dictionary %s", agent->id, tmp_dict);
        rv = rv < 0 ? rv : VAP_EINVAL;
        goto out;
    }
    f = NULL;
    if (rename(tmp_lm, lm_path) != 0 || rename(tmp_dict, dict_path) != 0) {
        snprintf(err, err_size, "%s: cannot store the model in the cache: %s", agent->id,
                 strerror(errno));
        rv = VAP_EINVAL;
        goto out;
    }
    rv = 0;
out:
    if (f)
        fclose(f);
    if (rv != 0) {
        unlink(tmp_lm);
        unlink(tmp_dict);
    }
    stt_lexicon_close(lx);
    lm_builder_free(b);
    return rv;
}

int stt_files_build(const struct vap_agent *agent, const struct stt_build_options *o,
                    struct stt_files *out, char *err, size_t err_size)
{
    unsigned char hash[16];
    char hex[sizeof(hash) * 2 + 1], extra[64];
    crypto_generichash_state st;
    char *doc = json_dumps(agent->json, JSON_SORT_KEYS | JSON_COMPACT);
    struct stat sb;
    if (!doc)
        return VAP_ENOMEM;
    if (sodium_init() < 0) {
        free(doc);
        return VAP_EINTERNAL;
    }
    snprintf(extra, sizeof(extra), "|%zu|", o->generic_words);
    crypto_generichash_init(&st, NULL, 0, sizeof(hash));
    crypto_generichash_update(&st, (const unsigned char *)BUILD_VERSION, strlen(BUILD_VERSION));
    crypto_generichash_update(&st, (const unsigned char *)o->model_root, strlen(o->model_root));
    crypto_generichash_update(&st, (const unsigned char *)extra, strlen(extra));
    crypto_generichash_update(&st, (const unsigned char *)doc, strlen(doc));
    crypto_generichash_final(&st, hash, sizeof(hash));
    free(doc);
    sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));

    if (mkdir(o->cache_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, err_size, "%s: cannot create the cache directory %s: %s", agent->id,
                 o->cache_dir, strerror(errno));
        return VAP_EINVAL;
    }
    if (snprintf(out->lm, sizeof(out->lm), "%s/%s-%s.lm", o->cache_dir, agent->id, hex) >=
            (int)sizeof(out->lm) ||
        snprintf(out->dict, sizeof(out->dict), "%s/%s-%s.dict", o->cache_dir, agent->id, hex) >=
            (int)sizeof(out->dict)) {
        snprintf(err, err_size, "%s: cache directory path too long", agent->id);
        return VAP_EINVAL;
    }
    out->from_cache = stat(out->lm, &sb) == 0 && stat(out->dict, &sb) == 0;
    if (out->from_cache)
        return 0;
    return build(agent, o, out->lm, out->dict, err, err_size);
}
