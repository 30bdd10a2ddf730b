/*
 * Per-agent runtime of a worker, built once at start from config/agents/: the speech
 * model (language model and dictionary from the agent's data), the TTS voice, the
 * dialog engine, and the greeting (startup message) synthesised once so every session
 * starts speaking at once. An agent whose parts fail to load is left out with a log
 * line saying why; the others are served.
 */
#include <stdlib.h>
#include <string.h>

#include "agents.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "voice.h"

struct pcm_buf {
    int16_t *pcm;
    size_t n, cap;
};

static int collect(void *user, const int16_t *pcm, size_t n)
{
    struct pcm_buf *b = user;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : AUDIO_RATE * 8;
        int16_t *p;
        while (cap < b->n + n)
            cap *= 2;
        p = realloc(b->pcm, cap * sizeof(int16_t));
        if (!p)
            return 1;
        b->pcm = p;
        b->cap = cap;
    }
    memcpy(b->pcm + b->n, pcm, n * sizeof(int16_t));
    b->n += n;
    return 0;
}

static void on_agent_error(void *user, const char *message)
{
    (void)user;
    vap_error(NULL, "agent refused: %s", message);
}

static int load_one(struct voice_worker *w, const struct vap_agent *a, struct voice_agent_rt *rt)
{
    struct stt_options so = {.model_dir = NULL,
                             .cache_dir = w->cfg.cache_dir,
                             .max_streams = (int)w->cfg.capacity};
    struct pcm_buf greeting = {0};
    char err[256];
    int64_t t0 = vap_now_ms();
    int rv;

    memset(rt, 0, sizeof(*rt));
    rt->agent = a;
    rt->end_silence_ms = a->end_of_turn_silence_ms > 0 ? a->end_of_turn_silence_ms : 800;
    err[0] = '\0';
    rv = stt_model_load(a, &so, &rt->stt, err, sizeof(err));
    if (rv == 0)
        rv = tts_voice_load(json_object_get(a->json, "tts"), a->language, &rt->tts, err,
                            sizeof(err));
    if (rv == 0)
        rv = dialog_engine_new(a, &w->cfg.dialog, &rt->dialog, err, sizeof(err));
    if (rv == 0 && a->startup_message && a->startup_message[0]) {
        rv = tts_speak(rt->tts, a->startup_message, collect, &greeting);
        rt->greeting = greeting.pcm;
        rt->greeting_samples = greeting.n;
        if (rv != 0)
            snprintf(err, sizeof(err), "greeting synthesis failed: %s", vap_strerror(rv));
    }
    if (rv != 0) {
        vap_error(NULL, "agent not served agent=%s error=\"%s\"", a->id,
                  err[0] ? err : vap_strerror(rv));
        return rv;
    }
    vap_info(NULL, "agent ready agent=%s dialog=%s greeting_ms=%zu load_ms=%lld", a->id,
             dialog_engine_name(rt->dialog), rt->greeting_samples / (AUDIO_RATE / 1000),
             (long long)(vap_now_ms() - t0));
    return 0;
}

static void free_rt(struct voice_agent_rt *rt)
{
    if (rt->dialog)
        dialog_engine_free(rt->dialog);
    if (rt->tts)
        tts_voice_free(rt->tts);
    if (rt->stt)
        stt_model_free(rt->stt);
    free(rt->greeting);
    memset(rt, 0, sizeof(*rt));
}

int voice_agents_load(struct voice_worker *w)
{
    size_t n;
    int rv = vap_agents_load(w->cfg.agents_dir, on_agent_error, NULL, &w->agents);
    if (rv != 0) {
        vap_error(NULL, "cannot read agents dir=%s error=\"%s\"", w->cfg.agents_dir,
                  vap_strerror(rv));
        return rv;
    }
    n = vap_agents_count(w->agents);
    w->rts = calloc(n ? n : 1, sizeof(*w->rts));
    if (!w->rts)
        return VAP_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        struct voice_agent_rt *rt = &w->rts[w->n_rts];
        if (load_one(w, vap_agents_at(w->agents, i), rt) == 0)
            w->n_rts++;
        else
            free_rt(rt);
    }
    return w->n_rts ? 0 : VAP_EINVAL;
}

void voice_agents_free(struct voice_worker *w)
{
    for (size_t i = 0; i < w->n_rts; i++)
        free_rt(&w->rts[i]);
    free(w->rts);
    w->rts = NULL;
    w->n_rts = 0;
    if (w->agents)
        vap_agents_unref(w->agents);
    w->agents = NULL;
}

struct voice_agent_rt *voice_agent_rt_find(struct voice_worker *w, const char *id)
{
    for (size_t i = 0; i < w->n_rts; i++)
        if (strcmp(w->rts[i].agent->id, id) == 0)
            return &w->rts[i];
    return NULL;
}
