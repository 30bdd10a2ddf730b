/*
 * Unit tests of vapvoice_stt (services/voice/stt/): text normalisation, the ARPA
 * builder (distributions sum to one, backoff as specified, read back by sphinxbase),
 * pronunciations of words the CMU dictionary lacks, the corpus made from agent data,
 * and one end-to-end decode of speech synthesised here with libflite's slt voice.
 * VAP_SOURCE_DIR (set by ctest) locates config/agents.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <flite/flite.h>
#include <sphinxbase/logmath.h>
#include <sphinxbase/ngram_model.h>
#include <sphinxbase/err.h>

#include "common/agents.h"
#include "common/err.h"
#include "stt.h"
#include "stt_internal.h"

cst_voice *register_cmu_us_slt(const char *voxdir);

static char tmpdir[] = "/tmp/stt_test.XXXXXX";

static int setup_all(void **state)
{
    (void)state;
    err_set_logfp(NULL);
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_all(void **state)
{
    char cmd[256];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void expect_norm(const char *in, const char *want)
{
    char out[256];
    int n = stt_norm_text(in, out, sizeof(out));
    assert_int_equal(n, (int)strlen(want));
    assert_string_equal(out, want);
}

static void test_text_is_spoken_as_words(void **state)
{
    char small[8];
    (void)state;
    expect_norm("I'm looking for a 3-bedroom house!", "i'm looking for a three bedroom house");
    expect_norm("$1,800 a month", "one thousand eight hundred dollars a month");
    expect_norm("350000", "three hundred fifty thousand");
    expect_norm("Monday 9:30, Tuesday 14:00", "monday nine thirty tuesday two o'clock");
    expect_norm("48 River Road, Apt 5", "forty eight river road apt five");
    expect_norm("", "");
    assert_int_equal(stt_norm_text("a much longer text", small, sizeof(small)), VAP_ETOOBIG);
}

/* Builds an ARPA file from sentences and loads it with sphinxbase. */
static ngram_model_t *build_lm(const char *const *sentences, size_t n, logmath_t *lmath)
{
    struct lm_builder *b;
    char path[256];
    FILE *f;
    ngram_model_t *lm;
    assert_int_equal(lm_builder_new(&b), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(lm_builder_add_sentence(b, sentences[i]), 0);
    snprintf(path, sizeof(path), "%s/test.lm", tmpdir);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(lm_builder_write_arpa(b, f), 0);
    fclose(f);
    lm_builder_free(b);
    lm = ngram_model_read(NULL, path, NGRAM_ARPA, lmath);
    assert_non_null(lm);
    return lm;
}

static double p(ngram_model_t *lm, logmath_t *lmath, const char *w, const char *h1,
                const char *h2)
{
    return logmath_exp(lmath, ngram_probv(lm, w, h1, h2, NULL));
}

static void test_arpa_distributions_sum_to_one(void **state)
{
    static const char *const corpus[] = {
        "i want a house", "i want a flat in springfield", "a house in oakwood please",
        "i want to rent a flat", "book the monday slot", "the monday slot please"};
    static const char *const contexts[][2] = {
        {NULL, NULL}, {"want", NULL}, {"a", "want"}, {"monday", "the"}, {"slot", "house"},
        {"please", "springfield"}};
    logmath_t *lmath = logmath_init(1.0001, 0, 0);
    ngram_model_t *lm = build_lm(corpus, sizeof(corpus) / sizeof(corpus[0]), lmath);
    int32 n = (int32)ngram_model_get_counts(lm)[0];
    (void)state;
    for (size_t c = 0; c < sizeof(contexts) / sizeof(contexts[0]); c++) {
        double sum = 0;
        for (int32 wid = 0; wid < n; wid++) {
            const char *w = ngram_word(lm, wid);
            if (strcmp(w, "<s>") == 0)
                continue;
            sum += p(lm, lmath, w, contexts[c][0], contexts[c][1]);
        }
        assert_true(sum > 0.995 && sum < 1.005);
    }
    ngram_model_free(lm);
    logmath_free(lmath);
}

static void test_arpa_witten_bell_and_backoff(void **state)
{
    /* unigrams: a 2, b 2, c 1, d 1, </s> 2 -> N = 8, T = 5, V = 5 predictable words */
    static const char *const corpus[] = {"a b c", "a b d"};
    logmath_t *lmath = logmath_init(1.0001, 0, 0);
    ngram_model_t *lm = build_lm(corpus, 2, lmath);
    (void)state;
    assert_true(fabs(p(lm, lmath, "a", NULL, NULL) - 3.0 / 13) < 1e-3);
    /* P(c|b) = (1 + T(b) P(c)) / (c(b) + T(b)) = (1 + 2 * 2/13) / 4 */
    assert_true(fabs(p(lm, lmath, "c", "b", NULL) - 17.0 / 52) < 1e-3);
    /* P(c|a b) = (1 + 2 P(c|b)) / 4 */
    assert_true(fabs(p(lm, lmath, "c", "b", "a") - (1 + 2 * 17.0 / 52) / 4) < 1e-3);
    /* unseen: P(a|a b) = bow(a b) * bow(b) * P(a) = 1/2 * 1/2 * 3/13 */
    assert_true(fabs(p(lm, lmath, "a", "b", "a") - 0.25 * 3 / 13) < 1e-3);
    /* <s> is never predicted */
    assert_true(p(lm, lmath, "<s>", NULL, NULL) < 1e-6);
    ngram_model_free(lm);
    logmath_free(lmath);
}

static void test_words_missing_from_cmudict_get_en_us_phones(void **state)
{
    static const char *const phones = " AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L "
                                      "M N NG OW OY P R S SH T TH UH UW V W Y Z ZH ";
    static const char *const names[] = {"okafor", "nguyen", "hillcrest", "zylberstein"};
    struct stt_lexicon *lx;
    char out[256], path[256];
    FILE *f;
    (void)state;
    assert_int_equal(stt_lexicon_guess("okafor", out, sizeof(out)), (int)strlen("OW K AH F ER"));
    assert_string_equal(out, "OW K AH F ER");
    assert_int_equal(stt_lexicon_open("/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict",
                                      &lx),
                     0);
    assert_false(stt_lexicon_has(lx, "okafor"));
    assert_true(stt_lexicon_has(lx, "hillcrest"));
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char *save = NULL, *ph;
        assert_true(stt_lexicon_guess(names[i], out, sizeof(out)) > 0);
        for (ph = strtok_r(out, " ", &save); ph; ph = strtok_r(NULL, " ", &save)) {
            char key[8];
            snprintf(key, sizeof(key), " %s ", ph);
            assert_non_null(strstr(phones, key));
        }
    }
    /* known words keep every cmudict variant */
    snprintf(path, sizeof(path), "%s/read.dict", tmpdir);
    f = fopen(path, "w+");
    assert_int_equal(stt_lexicon_write(lx, "read", f), 2);
    assert_int_equal(stt_lexicon_write(lx, "okafor", f), 1);
    rewind(f);
    assert_non_null(fgets(out, sizeof(out), f));
    assert_string_equal(out, "read R EH D\n");
    fclose(f);
    stt_lexicon_close(lx);
}

struct sentences {
    int found;
    size_t n;
};

static int find_sentence(void *user, const char *words)
{
    struct sentences *s = user;
    s->n++;
    if (strcmp(words, "is doctor patel available on monday morning") == 0 ||
        strcmp(words, "can i see doctor okafor on thursday four o'clock") == 0)
        s->found++;
    return 0;
}

static struct vap_agents *load_agents(void)
{
    const char *src = getenv("VAP_SOURCE_DIR");
    char dir[512];
    struct vap_agents *agents = NULL;
    snprintf(dir, sizeof(dir), "%s/config/agents", src ? src : ".");
    assert_int_equal(vap_agents_load(dir, NULL, NULL, &agents), 0);
    return agents;
}

static void test_corpus_fills_templates_from_agent_data(void **state)
{
    struct vap_agents *agents = load_agents();
    const struct vap_agent *a = vap_agents_find(agents, "hospital");
    struct sentences s = {0, 0};
    char err[256];
    json_t *bad;
    (void)state;
    assert_non_null(a);
    assert_int_equal(stt_corpus_build(a->json, a->id, find_sentence, &s, err, sizeof(err)), 0);
    assert_int_equal(s.found, 2);
    assert_true(s.n > 100);

    bad = json_pack("{s:{s:[s]}}", "speech", "phrases", "see {nobody}");
    assert_int_equal(stt_corpus_build(bad, "x", find_sentence, &s, err, sizeof(err)), VAP_EINVAL);
    assert_non_null(strstr(err, "x: speech.phrases[0]"));
    json_decref(bad);
    vap_agents_unref(agents);
}

static void test_decodes_synthesised_speech_in_20ms_chunks(void **state)
{
    static const char text[] = "I'm looking for a three bedroom house in Springfield";
    struct vap_agents *agents = load_agents();
    const struct vap_agent *a = vap_agents_find(agents, "realestate");
    struct stt_options opt = {NULL, tmpdir, 1};
    struct stt_model *m = NULL;
    struct stt_stream *s = NULL, *s2 = NULL;
    cst_voice *v;
    cst_wave *w;
    char err[256], hyp[256], partial[256];
    size_t errors = 99, words = 0, partial_len = 0;
    int16_t silence[320] = {0};
    (void)state;
    assert_non_null(a);
    assert_int_equal(stt_model_load(a, &opt, &m, err, sizeof(err)), 0);
    /* Streams are cheap: both open although the model allows one decoder at a time. */
    assert_int_equal(stt_stream_open(m, &s), 0);
    assert_int_equal(stt_stream_open(m, &s2), 0);
    assert_int_equal(stt_feed(s, silence, 320), VAP_EINVAL); /* no utterance begun */

    flite_init();
    v = register_cmu_us_slt(NULL);
    w = flite_text_to_wave(text, v);
    assert_non_null(w);
    assert_int_equal(cst_wave_sample_rate(w), 16000);
    assert_int_equal(stt_begin(s), 0);
    /* The one decoder is lent to s: s2's speech is kept until one is free. */
    assert_int_equal(stt_begin(s2), 0);
    assert_int_equal(stt_feed(s2, silence, 320), 0);
    for (int off = 0; off < cst_wave_num_samples(w); off += 320) {
        int n = cst_wave_num_samples(w) - off < 320 ? cst_wave_num_samples(w) - off : 320;
        assert_int_equal(stt_feed(s, cst_wave_samples(w) + off, (size_t)n), 0);
        partial_len = stt_partial(s, partial, sizeof(partial));
    }
    assert_true(partial_len > 0);
    assert_true(stt_end(s, hyp, sizeof(hyp)) > 0);
    assert_int_equal(stt_wer(text, hyp, &errors, &words), 0);
    print_message("hyp: %s (%zu/%zu errors)\n", hyp, errors, words);
    assert_true(errors <= 1);
    assert_non_null(strstr(hyp, "springfield"));
    assert_null(strchr(hyp, '<'));
    delete_wave(w);

    /* The decoder went back to the pool at stt_end: s2's kept speech is decoded now. */
    assert_true(stt_end(s2, hyp, sizeof(hyp)) >= 0);
    assert_int_equal(stt_begin(s2), 0);
    assert_int_equal(stt_feed(s2, silence, 320), 0);
    stt_stream_close(s2); /* mid-utterance: the decoder is taken back */
    assert_int_equal(stt_begin(s), 0);
    stt_abort(s);
    stt_stream_close(s);
    stt_model_free(m);
    vap_agents_unref(agents);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_is_spoken_as_words),
        cmocka_unit_test(test_arpa_distributions_sum_to_one),
        cmocka_unit_test(test_arpa_witten_bell_and_backoff),
        cmocka_unit_test(test_words_missing_from_cmudict_get_en_us_phones),
        cmocka_unit_test(test_corpus_fills_templates_from_agent_data),
        cmocka_unit_test(test_decodes_synthesised_speech_in_20ms_chunks),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
