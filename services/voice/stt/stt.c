/*
 * The recogniser behind stt.h: pocketsphinx decoders kept in a pool per model, and the
 * streaming calls a voice session makes (begin, feed every 20 ms, partial, end).
 *
 * An agent model decodes with two language models interpolated (an ngram_model_set):
 * the agent's own trigram model (model_files.c) and Debian's generic en-us model, over a
 * dictionary of the agent's words plus the generic model's likeliest words. The agent
 * model wins on what visitors usually say, the generic one keeps everyday speech
 * recognisable. sphinxbase's LM objects cache the last history inside (lm_trie) and
 * are not safe to share between threads, so each decoder loads its own copies; the
 * pool keeps decoders alive because creating one costs ~0.1-0.3 s. A session borrows a
 * decoder only for the length of an utterance, so idle sessions cost no decoder memory
 * and the pool grows to the most utterances ever in progress at once.
 */
#include "stt.h"

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <pocketsphinx.h>
#include <sphinxbase/cmn.h>
#include <sphinxbase/err.h>
#include <sphinxbase/feat.h>
#include <sphinxbase/ngram_model.h>

#include "common/agents.h"
#include "common/err.h"
#include "common/log.h"
#include "stt_files.h"

#define DEFAULT_MODEL_DIR "/usr/share/pocketsphinx/model/en-us"
#define GENERIC_WORDS 20000            /* generic words added to an agent's dictionary */
#define MAX_UTTERANCE_SAMPLES (16000 * 30) /* 30 s: longer is not one visitor turn */
/* The agent model's share in the interpolation, in probability space. Measured with
 * vap-stt-eval: 0.08 keeps out-of-domain WER equal to the generic model's while the
 * agent model still fixes most in-domain errors; at 0.5 the agent model's unigrams
 * ("the", "that") displace the generic model's trigrams in everyday speech. */
#define AGENT_LAMBDA 0.08

enum stt_state { STT_IDLE, STT_IN_UTTERANCE };

#define MAX_CEPSTRA 32
#define NOT_YET 1 /* lend_decoder: none free yet, one is being made */

/* A pocketsphinx decoder: pooled per model, lent to a stream for one utterance. */
struct stt_decoder {
    ps_decoder_t *ps;
    mfcc_t cmn_initial[MAX_CEPSTRA]; /* the model's -cmninit, where a new visitor starts */
    int n_cepstra;
};

/* One visitor's utterances. Holds a decoder only while the visitor speaks, so an idle
 * session costs no decoder memory; the visitor's live cepstral mean (which adapts to
 * their voice and channel over utterances) is kept here between utterances. */
struct stt_stream {
    struct stt_model *m;
    struct stt_decoder *d;
    enum stt_state state;
    size_t samples;
    mfcc_t cmn_live[MAX_CEPSTRA];
    bool have_cmn;
    bool asked;       /* a decoder is being made for this stream's utterance */
    int16_t *pending; /* the utterance so far, while no decoder was free */
    size_t n_pending, cap_pending;
};

struct stt_model {
    char id[64];
    char hmm[PATH_MAX];
    char dict[PATH_MAX];
    char lm[PATH_MAX]; /* the agent's model; empty for the generic model */
    char generic_lm[PATH_MAX];
    pthread_mutex_t mu;
    struct stt_decoder **idle; /* decoders ready for an utterance */
    int n_idle;
    int n_created; /* idle + lent (+ being created) */
    int creating;  /* being made in the background */
    pthread_cond_t changed; /* a decoder was made or given back */
    int max;
};

static pthread_once_t quiet_once = PTHREAD_ONCE_INIT;
/* ps_init and LM loading touch sphinxbase globals (log level, log file): one at a time. */
static pthread_mutex_t create_lock = PTHREAD_MUTEX_INITIALIZER;

static void quiet(void)
{
    err_set_logfp(NULL);
}

static cmd_ln_t *decoder_config(const struct stt_model *m)
{
    if (m->lm[0])
        return cmd_ln_init(NULL, ps_args(), TRUE, "-hmm", m->hmm, "-dict", m->dict, NULL);
    return cmd_ln_init(NULL, ps_args(), TRUE, "-hmm", m->hmm, "-dict", m->dict, "-lm",
                       m->generic_lm, NULL);
}

/* Gives ps the agent's interpolated language model as its search. */
static int attach_agent_lm(const struct stt_model *m, ps_decoder_t *ps, cmd_ln_t *cfg)
{
    logmath_t *lmath = ps_get_logmath(ps);
    ngram_model_t *lms[2] = {NULL, NULL}, *set = NULL;
    const char *names[2] = {"agent", "generic"};
    /* The set adds lw-scaled scores, lambda * p^lw, so a weight acts in probability space
     * only once raised to lw: (lambda_agent / lambda_generic)^lw. */
    float32 weights[2] = {
        (float32)pow(AGENT_LAMBDA / (1.0 - AGENT_LAMBDA), cmd_ln_float32_r(cfg, "-lw")), 1.0f};
    int rv = VAP_EINVAL;
    lms[0] = ngram_model_read(cfg, m->lm, NGRAM_ARPA, lmath);
    lms[1] = lms[0] ? ngram_model_read(cfg, m->generic_lm, NGRAM_AUTO, lmath) : NULL;
    if (lms[1])
        set = ngram_model_set_init(cfg, lms, (char **)names, weights, 2);
    if (set && ps_set_lm(ps, "agent", set) == 0 && ps_set_search(ps, "agent") == 0)
        rv = 0;
    if (set)
        ngram_model_free(set); /* the search holds its own reference */
    for (int i = 0; i < 2; i++)
        if (lms[i])
            ngram_model_free(lms[i]);
    return rv;
}

static int decoder_new(struct stt_model *m, struct stt_decoder **out)
{
    struct stt_decoder *d = calloc(1, sizeof(*d));
    cmd_ln_t *cfg = NULL;
    int rv = VAP_EINVAL;
    if (!d)
        return VAP_ENOMEM;
    pthread_once(&quiet_once, quiet);
    pthread_mutex_lock(&create_lock);
    cfg = decoder_config(m);
    d->ps = cfg ? ps_init(cfg) : NULL;
    if (d->ps && (!m->lm[0] || attach_agent_lm(m, d->ps, cfg) == 0))
        rv = 0;
    if (cfg)
        cmd_ln_free_r(cfg);
    pthread_mutex_unlock(&create_lock);
    if (rv != 0) {
        if (d->ps)
            ps_free(d->ps);
        free(d);
        return rv;
    }
    {
        cmn_t *cmn = ps_get_feat(d->ps)->cmn_struct;
        d->n_cepstra = cmn && cmn->veclen <= MAX_CEPSTRA ? cmn->veclen : 0;
        if (d->n_cepstra)
            memcpy(d->cmn_initial, cmn->cmn_mean, (size_t)d->n_cepstra * sizeof(mfcc_t));
    }
    *out = d;
    return 0;
}

static void decoder_free(struct stt_decoder *d)
{
    if (!d)
        return;
    ps_free(d->ps);
    free(d);
}

static int model_new(const char *id, const struct stt_options *opt, struct stt_model **out)
{
    struct stt_model *m = calloc(1, sizeof(*m));
    const char *root = opt && opt->model_dir ? opt->model_dir : DEFAULT_MODEL_DIR;
    if (!m)
        return VAP_ENOMEM;
    m->max = opt && opt->max_streams > 0 ? opt->max_streams : 1;
    m->idle = calloc((size_t)m->max, sizeof(*m->idle));
    if (!m->idle) {
        free(m);
        return VAP_ENOMEM;
    }
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->changed, NULL);
    snprintf(m->id, sizeof(m->id), "%s", id);
    snprintf(m->hmm, sizeof(m->hmm), "%s/en-us", root);
    snprintf(m->dict, sizeof(m->dict), "%s/cmudict-en-us.dict", root);
    snprintf(m->generic_lm, sizeof(m->generic_lm), "%s/en-us.lm.bin", root);
    *out = m;
    return 0;
}

/* Creates the first decoder now, so a broken model fails at load rather than later. */
static int model_warm(struct stt_model *m, char *err, size_t err_size)
{
    struct stt_decoder *d;
    int rv = decoder_new(m, &d);
    if (rv != 0) {
        snprintf(err, err_size, "%s: pocketsphinx refused the model (%s, %s)", m->id, m->hmm,
                 m->dict);
        return rv;
    }
    m->idle[m->n_idle++] = d;
    m->n_created = 1;
    return 0;
}

int stt_model_load(const struct vap_agent *agent, const struct stt_options *opt,
                   struct stt_model **out, char *err, size_t err_size)
{
    struct stt_model *m = NULL;
    struct stt_build_options bo;
    struct stt_files files;
    char cache[PATH_MAX];
    int rv;
    if (!agent || !agent->json || !agent->id || !out) {
        snprintf(err, err_size, "stt: no agent");
        return VAP_EINVAL;
    }
    rv = model_new(agent->id, opt, &m);
    if (rv != 0)
        return rv;
    pthread_once(&quiet_once, quiet);
    if (opt && opt->cache_dir) {
        snprintf(cache, sizeof(cache), "%s", opt->cache_dir);
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(cache, sizeof(cache), "%s/vap-stt-%ld", tmp && *tmp ? tmp : "/tmp",
                 (long)getuid());
    }
    bo.model_root = opt && opt->model_dir ? opt->model_dir : DEFAULT_MODEL_DIR;
    bo.cache_dir = cache;
    bo.generic_lm = m->generic_lm;
    bo.generic_words = GENERIC_WORDS;
    rv = stt_files_build(agent, &bo, &files, err, err_size);
    if (rv == 0) {
        snprintf(m->lm, sizeof(m->lm), "%s", files.lm);
        snprintf(m->dict, sizeof(m->dict), "%s", files.dict);
        rv = model_warm(m, err, err_size);
    }
    if (rv != 0) {
        stt_model_free(m);
        return rv;
    }
    vap_info(NULL, "stt model loaded agent=%s lm=%s cached=%d", agent->id, files.lm,
             files.from_cache);
    *out = m;
    return 0;
}

int stt_model_load_generic(const struct stt_options *opt, struct stt_model **out, char *err,
                           size_t err_size)
{
    struct stt_model *m = NULL;
    int rv = model_new("generic", opt, &m);
    if (rv != 0)
        return rv;
    rv = model_warm(m, err, err_size);
    if (rv != 0) {
        stt_model_free(m);
        return rv;
    }
    *out = m;
    return 0;
}

void stt_model_free(struct stt_model *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    while (m->creating > 0) /* background makers push into m->idle */
        pthread_cond_wait(&m->changed, &m->mu);
    pthread_mutex_unlock(&m->mu);
    for (int i = 0; i < m->n_idle; i++)
        decoder_free(m->idle[i]);
    free(m->idle);
    pthread_cond_destroy(&m->changed);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

int stt_stream_open(struct stt_model *m, struct stt_stream **out)
{
    struct stt_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return VAP_ENOMEM;
    s->m = m;
    s->state = STT_IDLE;
    *out = s;
    return 0;
}

/* Makes one decoder in the background and puts it in the pool. */
static void *maker_main(void *arg)
{
    struct stt_model *m = arg;
    struct stt_decoder *d = NULL;
    int rv = decoder_new(m, &d);
    pthread_mutex_lock(&m->mu);
    m->creating--;
    if (rv == 0)
        m->idle[m->n_idle++] = d;
    else
        m->n_created--;
    pthread_cond_broadcast(&m->changed);
    pthread_mutex_unlock(&m->mu);
    if (rv != 0)
        vap_warn(NULL, "stt decoder creation failed agent=%s", m->id);
    return NULL;
}

/*
 * Lends the stream a decoder for its utterance, with the visitor's cepstral mean. With
 * none free, one is made in the background (creating one takes 0.1-0.3 s, and the
 * visitor must not wait at the start of speech: the audio is kept meanwhile); wait
 * says whether to wait for one (at the end of the utterance). NOT_YET: not yet.
 */
static int lend_decoder(struct stt_stream *s, bool wait)
{
    struct stt_model *m = s->m;
    struct stt_decoder *d = NULL;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&m->mu);
    for (;;) {
        if (m->n_idle > 0) {
            d = m->idle[--m->n_idle];
            break;
        }
        if ((!s->asked || m->creating == 0) && m->n_created < m->max) {
            pthread_t t;
            m->n_created++;
            m->creating++;
            if (pthread_create(&t, NULL, maker_main, m) != 0) {
                m->n_created--;
                m->creating--;
                pthread_mutex_unlock(&m->mu);
                return VAP_ENOMEM;
            }
            pthread_detach(t);
            s->asked = true;
        }
        if (!wait) {
            pthread_mutex_unlock(&m->mu);
            return NOT_YET;
        }
        if (pthread_cond_timedwait(&m->changed, &m->mu, &until) != 0) {
            /* every decoder lent and none given back in time, or making one hung */
            int rv = m->n_created >= m->max ? VAP_ETOOBIG : VAP_ETIMEDOUT;
            pthread_mutex_unlock(&m->mu);
            return rv;
        }
    }
    s->asked = false;
    pthread_mutex_unlock(&m->mu);
    if (d->n_cepstra)
        cmn_live_set(ps_get_feat(d->ps)->cmn_struct, s->have_cmn ? s->cmn_live : d->cmn_initial);
    s->d = d;
    return 0;
}

/* Takes the decoder back after an utterance, keeping what its CMN learnt of the visitor. */
static void return_decoder(struct stt_stream *s)
{
    struct stt_model *m = s->m;
    struct stt_decoder *d = s->d;
    if (!d)
        return;
    if (d->n_cepstra) {
        memcpy(s->cmn_live, ps_get_feat(d->ps)->cmn_struct->cmn_mean,
               (size_t)d->n_cepstra * sizeof(mfcc_t));
        s->have_cmn = true;
    }
    s->d = NULL;
    pthread_mutex_lock(&m->mu);
    m->idle[m->n_idle++] = d;
    pthread_cond_broadcast(&m->changed);
    pthread_mutex_unlock(&m->mu);
}

/* Starts the utterance on the decoder just lent and decodes what was kept meanwhile. */
static int start_on_decoder(struct stt_stream *s)
{
    int rv = 0;
    if (ps_start_utt(s->d->ps) < 0) {
        return_decoder(s);
        return VAP_EINTERNAL;
    }
    if (s->n_pending > 0 && ps_process_raw(s->d->ps, s->pending, s->n_pending, FALSE, FALSE) < 0)
        rv = VAP_EINTERNAL;
    free(s->pending);
    s->pending = NULL;
    s->n_pending = s->cap_pending = 0;
    return rv;
}

/* Keeps audio while the utterance waits for a decoder. */
static int keep_pending(struct stt_stream *s, const int16_t *pcm, size_t n)
{
    if (s->n_pending + n > s->cap_pending) {
        size_t cap = s->cap_pending ? s->cap_pending * 2 : 16000;
        int16_t *p;
        while (cap < s->n_pending + n)
            cap *= 2;
        if (cap > MAX_UTTERANCE_SAMPLES)
            cap = MAX_UTTERANCE_SAMPLES;
        p = realloc(s->pending, cap * sizeof(*p));
        if (!p)
            return VAP_ENOMEM;
        s->pending = p;
        s->cap_pending = cap;
    }
    memcpy(s->pending + s->n_pending, pcm, n * sizeof(*pcm));
    s->n_pending += n;
    return 0;
}

void stt_stream_close(struct stt_stream *s)
{
    if (!s)
        return;
    stt_abort(s);
    return_decoder(s);
    free(s->pending);
    free(s);
}

int stt_begin(struct stt_stream *s)
{
    int rv;
    if (s->state == STT_IN_UTTERANCE)
        stt_abort(s);
    s->state = STT_IN_UTTERANCE;
    s->samples = 0;
    s->n_pending = 0;
    if (!s->d) {
        rv = lend_decoder(s, false);
        if (rv == NOT_YET)
            return 0; /* the audio is kept until a decoder is free */
        if (rv != 0) {
            s->state = STT_IDLE;
            return rv;
        }
    }
    rv = start_on_decoder(s);
    if (rv != 0)
        s->state = STT_IDLE;
    return rv;
}

int stt_feed(struct stt_stream *s, const int16_t *pcm, size_t n)
{
    if (s->state != STT_IN_UTTERANCE)
        return VAP_EINVAL;
    if (s->samples + n > MAX_UTTERANCE_SAMPLES)
        return VAP_ETOOBIG;
    s->samples += n;
    if (!s->d) {
        if (lend_decoder(s, false) != 0)
            return keep_pending(s, pcm, n);
        if (start_on_decoder(s) != 0)
            return VAP_EINTERNAL;
    }
    if (n > 0 && ps_process_raw(s->d->ps, pcm, n, FALSE, FALSE) < 0)
        return VAP_EINTERNAL;
    return 0;
}

/* Copies hyp to out as lowercase words, without fillers or "(2)" variant marks. */
static size_t clean_hyp(const char *hyp, char *out, size_t max)
{
    size_t len = 0;
    if (max == 0)
        return 0;
    out[0] = '\0';
    while (hyp && *hyp) {
        size_t n;
        while (*hyp == ' ')
            hyp++;
        n = strcspn(hyp, " ");
        if (n > 0 && hyp[0] != '<' && hyp[0] != '[' && hyp[0] != '+') {
            size_t w = strcspn(hyp, "( ");
            if (len + (len ? 1 : 0) + w + 1 > max)
                break;
            if (len)
                out[len++] = ' ';
            for (size_t i = 0; i < w; i++)
                out[len++] = (char)tolower((unsigned char)hyp[i]);
            out[len] = '\0';
        }
        hyp += n;
    }
    return len;
}

size_t stt_partial(struct stt_stream *s, char *out, size_t max)
{
    if (s->state != STT_IN_UTTERANCE || !s->d) {
        if (max)
            out[0] = '\0';
        return 0;
    }
    return clean_hyp(ps_get_hyp(s->d->ps, NULL), out, max);
}

int stt_end(struct stt_stream *s, char *out, size_t max)
{
    int rv;
    if (s->state != STT_IN_UTTERANCE)
        return VAP_EINVAL;
    s->state = STT_IDLE;
    if (!s->d) { /* still waiting: now the visitor has finished, wait for one */
        rv = lend_decoder(s, true);
        if (rv == 0)
            rv = start_on_decoder(s);
        if (rv != 0) {
            free(s->pending);
            s->pending = NULL;
            s->n_pending = s->cap_pending = 0;
            return rv;
        }
    }
    if (ps_end_utt(s->d->ps) < 0)
        rv = VAP_EINTERNAL;
    else
        rv = (int)clean_hyp(ps_get_hyp(s->d->ps, NULL), out, max);
    return_decoder(s);
    return rv;
}

void stt_abort(struct stt_stream *s)
{
    if (!s || s->state != STT_IN_UTTERANCE)
        return;
    s->state = STT_IDLE;
    free(s->pending);
    s->pending = NULL;
    s->n_pending = s->cap_pending = 0;
    if (!s->d)
        return;
    ps_end_utt(s->d->ps);
    return_decoder(s);
}
