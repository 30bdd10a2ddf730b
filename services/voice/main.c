/*
 * vap-voice: a stateless voice worker. It loads every agent's speech model, voice and
 * dialog engine, listens for gateways on its media link (VOICE_MEDIA_URL), and
 * announces itself every second by heartbeat (id, address, capacity, active sessions,
 * draining) to the gateways listed in VOICE_HEARTBEAT_URLS; gateways place sessions on
 * the least-loaded live worker. SIGTERM drains: no new sessions, current ones finish
 * (up to VOICE_DRAIN_MS), then the worker exits. Workers may run on other hosts: the
 * gateways learn the address from the heartbeat (VOICE_ADVERTISE_URL).
 */
#include <nng/nng.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agents.h"
#include "alloc.h"
#include "clock.h"
#include "config.h"
#include "err.h"
#include "log.h"
#include "prometheus.h"
#include "pubsub.h"
#include "signals.h"
#include "voice.h"

static struct voice_worker worker;
static long drain_ms, llm_timeout_ms, llm_first_token_ms, llm_max_tokens;

static const struct vap_config_item config_table[] = {
    {"VOICE_WORKER_ID", VAP_CONFIG_STRING, "", 0, 0, 0, &worker.cfg.worker_id,
     "unique id (default host-pid)"},
    {"VOICE_MEDIA_URL", VAP_CONFIG_STRING, "tcp://127.0.0.1:0", 0, 0, 0,
     &worker.cfg.media_url, "where gateways dial the media link"},
    {"VOICE_ADVERTISE_URL", VAP_CONFIG_STRING, "", 0, 0, 0, &worker.cfg.advertise_url,
     "address announced to gateways (default VOICE_MEDIA_URL)"},
    {"VOICE_ADVERTISE_HOST", VAP_CONFIG_STRING, "", 0, 0, 0, &worker.cfg.advertise_host,
     "host announced with a kernel-picked port (VOICE_MEDIA_URL tcp://...:0)"},
    {"VOICE_HEARTBEAT_URLS", VAP_CONFIG_STRING, "tcp://127.0.0.1:7302", 0, 0, 0,
     &worker.cfg.heartbeat_urls, "gateways' heartbeat listeners, comma-separated"},
    {"USAGE_RPC_URL", VAP_CONFIG_STRING, "tcp://127.0.0.1:7201", 0, 0, 0,
     &worker.cfg.usage_rpc_url, NULL},
    {"AGENTS_DIR", VAP_CONFIG_STRING, VAP_DEFAULT_AGENTS_DIR, 0, 0, 0, &worker.cfg.agents_dir,
     NULL},
    {"VOICE_CACHE_DIR", VAP_CONFIG_STRING, "", 0, 0, 0, &worker.cfg.cache_dir,
     "built language models (default: a temporary directory)"},
    {"LOG_LEVEL", VAP_CONFIG_STRING, "info", 0, 0, 0, &worker.cfg.log_level, NULL},
    {"VOICE_CAPACITY", VAP_CONFIG_INT, "16", 1, 1024, 0, &worker.cfg.capacity, NULL},
    {"VOICE_RESUME_WINDOW_MS", VAP_CONFIG_INT, "30000", 0, 600000, 0,
     &worker.cfg.resume_window_ms, NULL},
    {"VOICE_MIN_TURN_SILENCE_MS", VAP_CONFIG_INT, "300", 100, 5000, 0,
     &worker.cfg.min_turn_silence_ms, "pause that ends a complete-sounding turn"},
    {"VOICE_BARGE_IN_MS", VAP_CONFIG_INT, "300", 60, 3000, 0, &worker.cfg.barge_in_ms,
     "speech over the agent that cancels its reply"},
    {"VOICE_DRAIN_MS", VAP_CONFIG_INT, "300000", 0, 3600000, 0, &drain_ms, NULL},
    {"CLAUDE_API_KEY", VAP_CONFIG_STRING, "", 0, 0, 1, &worker.cfg.dialog.claude_api_key, NULL},
    {"CLAUDE_BASE_URL", VAP_CONFIG_STRING, "https://api.anthropic.com", 0, 0, 0,
     &worker.cfg.dialog.claude_base_url, NULL},
    {"CLAUDE_MODEL", VAP_CONFIG_STRING, "claude-sonnet-4-5", 0, 0, 0,
     &worker.cfg.dialog.claude_model, NULL},
    {"LLM_BASE_URL", VAP_CONFIG_STRING, "", 0, 0, 0, &worker.cfg.dialog.llm_base_url,
     "OpenAI-compatible endpoint, e.g. http://host:8080/v1"},
    {"LLM_API_KEY", VAP_CONFIG_STRING, "", 0, 0, 1, &worker.cfg.dialog.llm_api_key, NULL},
    {"LLM_MODEL", VAP_CONFIG_STRING, "gpt-4o-mini", 0, 0, 0, &worker.cfg.dialog.llm_model,
     NULL},
    {"LLM_TIMEOUT_MS", VAP_CONFIG_INT, "15000", 500, 120000, 0, &llm_timeout_ms, NULL},
    {"LLM_FIRST_TOKEN_TIMEOUT_MS", VAP_CONFIG_INT, "5000", 200, 60000, 0, &llm_first_token_ms,
     NULL},
    {"LLM_MAX_TOKENS", VAP_CONFIG_INT, "300", 16, 4096, 0, &llm_max_tokens, NULL},
};
#define N_CONFIG (sizeof(config_table) / sizeof(config_table[0]))

static void send_heartbeat(struct voice_worker *w, uint64_t seq)
{
    Vap__WorkerHeartbeat hb = VAP__WORKER_HEARTBEAT__INIT;
    char *agents[64];
    hb.worker_id = (char *)w->cfg.worker_id;
    hb.media_url = (char *)(w->cfg.advertise_url[0] ? w->cfg.advertise_url : w->cfg.media_url);
    hb.capacity = (int32_t)w->cfg.capacity;
    /* Sessions being opened count: a gateway placing a burst must see them. */
    hb.active = voice_sessions_active(w) + atomic_load(&w->opening);
    hb.draining = atomic_load(&w->draining) != 0;
    hb.seq = seq;
    for (size_t i = 0; i < w->n_rts && i < 64; i++)
        agents[i] = (char *)w->rts[i].agent->id;
    hb.n_agents = w->n_rts < 64 ? w->n_rts : 64;
    hb.agents = agents;
    vap_pub_send(w->heartbeat, &hb.base);
}

int main(void)
{
    static char id_buf[96];
    struct voice_worker *w = &worker;
    enum vap_log_level level = VAP_LOG_INFO;
    int64_t drain_until = 0, next_beat = 0;
    uint64_t seq = 0;
    char err[256];

    vap_signals_block();
    vap_log_init("voice", VAP_LOG_INFO);
    if (sodium_init() < 0 || dialog_global_init() != 0) {
        vap_error(NULL, "library initialisation failed");
        return 1;
    }
    if (vap_config_load(config_table, N_CONFIG, err, sizeof(err)) != 0) {
        vap_error(NULL, "configuration error: %s", err);
        return 2;
    }
    if (vap_log_parse_level(w->cfg.log_level, &level) != 0) {
        vap_error(NULL, "configuration error: LOG_LEVEL: unknown level \"%s\"", w->cfg.log_level);
        return 2;
    }
    vap_log_init("voice", level);
    vap_config_log(config_table, N_CONFIG);
    if (!w->cfg.worker_id[0]) {
        char host[64] = "worker";
        gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = '\0';
        for (char *p = host; *p; p++)
            if (*p == '.')
                *p = '-';
        snprintf(id_buf, sizeof(id_buf), "%s-%ld", host, (long)getpid());
        w->cfg.worker_id = id_buf;
    }
    if (!w->cfg.cache_dir[0])
        w->cfg.cache_dir = NULL;
    w->cfg.dialog.timeout_ms = (int)llm_timeout_ms;
    w->cfg.dialog.first_token_timeout_ms = (int)llm_first_token_ms;
    w->cfg.dialog.max_tokens = (int)llm_max_tokens;
    pthread_mutex_init(&w->lock, NULL);

    if (voice_agents_load(w) != 0) {
        vap_error(NULL, "no agent can be served");
        return 1;
    }
    if (voice_reporter_start(w) != 0 || voice_link_start(w) != 0 ||
        vap_pub_open_dial(&w->heartbeat, w->cfg.heartbeat_urls) != 0 ||
        voice_playout_start(w) != 0) {
        vap_error(NULL, "cannot start");
        return 1;
    }
    voice_metrics_register(w);
    if (vap_metrics_serve_from_env() != 0)
        return 1;
    vap_info(NULL, "vap-voice ready id=%s media=%s agents=%zu capacity=%ld", w->cfg.worker_id,
             w->cfg.advertise_url[0] ? w->cfg.advertise_url : w->cfg.media_url, w->n_rts,
             w->cfg.capacity);

    for (;;) {
        int64_t now = vap_now_ms();
        int sig;
        if (now >= next_beat) {
            send_heartbeat(w, ++seq);
            next_beat = now + 1000;
            if (seq % 30 == 0)
                vap_alloc_trim(); /* decoders' utterance memory freed between turns */
        }
        if (drain_until && (voice_sessions_active(w) == 0 || now >= drain_until))
            break;
        sig = vap_signals_wait((int)(next_beat - now > 0 ? next_beat - now : 1));
        if (sig == SIGINT)
            break;
        if (sig == SIGTERM && !drain_until) {
            atomic_store(&w->draining, 1);
            drain_until = vap_now_ms() + drain_ms;
            vap_info(NULL, "draining sessions=%d max_ms=%ld", voice_sessions_active(w),
                     drain_ms);
            send_heartbeat(w, ++seq);
        } else if (sig == SIGTERM) {
            break; /* a second SIGTERM: stop now */
        }
    }
    vap_info(NULL, "vap-voice stopping sessions=%d", voice_sessions_active(w));
    atomic_store(&w->draining, 1);
    send_heartbeat(w, ++seq);
    for (int i = 0; i < 500 && atomic_load(&w->opening) > 0; i++) /* let openers finish */
        vap_signals_wait(10);
    voice_sessions_end_all(w, "worker_shutdown");
    vap_metrics_stop();
    atomic_store(&w->stopping, 1);
    voice_playout_stop(w);
    voice_link_stop(w);
    voice_reporter_stop(w);
    vap_pub_close(w->heartbeat);
    voice_agents_free(w);
    /* Every socket is closed: free nng's global state too, so a frame that arrived on
     * the media link as it closed is not reported as leaked (the worker now exits by
     * itself on a second SIGTERM instead of being SIGKILLed). */
    nng_fini();
    vap_info(NULL, "vap-voice stopped");
    return 0;
}
