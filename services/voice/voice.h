/*
 * vap-voice's shared state. A worker holds one runtime per agent (speech model, voice,
 * dialog engine, cached greeting audio), a table of sessions, and the media link (a pull
 * socket every gateway pushes to, and a push socket per gateway back); frames of all
 * sessions travel on it tagged with their session. Per session, an input thread turns audio into turns
 * (decode, echo filter, VAD, STT) and a reply thread turns turns into speech (dialog,
 * TTS); one playout thread for the whole worker paces every session's audio out in
 * real time. Sessions and their records are reported to vap-usage (report.c).
 */
#ifndef VAP_VOICE_H
#define VAP_VOICE_H

#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "audio/audio.h"
#include "dialog/dialog.h"
#include "stt/stt.h"
#include "tts/tts.h"
#include "voice.pb-c.h"

struct vap_agents;
struct vap_agent;
struct vap_pub;
struct vap_rpc_client;
struct voice_reporter;

struct voice_config {
    const char *worker_id;       /* default: hostname-pid */
    const char *media_url;       /* VOICE_MEDIA_URL: where this worker listens */
    const char *advertise_url;   /* VOICE_ADVERTISE_URL: what gateways dial (default media) */
    const char *advertise_host;  /* VOICE_ADVERTISE_HOST: host part when the port is picked */
    const char *heartbeat_urls;  /* VOICE_HEARTBEAT_URLS: gateways' heartbeat listeners */
    const char *usage_rpc_url;
    const char *agents_dir;
    const char *cache_dir;
    const char *log_level;
    long capacity;
    long resume_window_ms;
    long min_turn_silence_ms;
    long barge_in_ms;
    struct dialog_config dialog;
};

/* What one agent needs at run time; built at start, read-only afterwards. */
struct voice_agent_rt {
    const struct vap_agent *agent;
    struct stt_model *stt;
    struct tts_voice *tts;
    struct dialog_engine *dialog;
    int16_t *greeting;        /* the startup message, synthesised once */
    size_t greeting_samples;
    int end_silence_ms;       /* the agent's end-of-turn silence (the longest wait) */
};

struct voice_session;
struct voice_peer; /* a gateway on the media link (link.c) */

struct voice_worker {
    struct voice_config cfg;
    struct vap_agents *agents;
    struct voice_agent_rt *rts;
    size_t n_rts;
    nng_socket link;
    pthread_t link_thread;
    pthread_t playout_thread;
    struct vap_pub *heartbeat;
    struct voice_reporter *reporter;
    atomic_int stopping;
    atomic_int draining;
    atomic_int opening; /* sessions being built on their opener threads */

    pthread_mutex_t lock; /* guards the session list */
    struct voice_session *sessions;
    int n_sessions;
};

/* ---- link.c: the media link to gateways ---- */
int voice_link_start(struct voice_worker *w);
void voice_link_stop(struct voice_worker *w);
/* Sends a frame to a gateway (waits up to 2 s when it is slow). Thread-safe. */
int voice_link_send(struct voice_worker *w, struct voice_peer *peer, const Vap__LinkFrame *f);
/* The gateway that pulls at url (dialled on first use). */
struct voice_peer *voice_peer_get(struct voice_worker *w, const char *url);

/* ---- session.c: lifecycle ---- */
/* Opens (or resumes) a session for an OPEN frame from gateway peer. */
void voice_session_open(struct voice_worker *w, struct voice_peer *peer,
                        const Vap__LinkFrame *f);
/* Hands a frame from the gateway to its session (AUDIO, EVENT, DETACH, CLOSE). */
void voice_session_deliver(struct voice_worker *w, struct voice_peer *peer,
                           Vap__LinkFrame *f);
/* The gateway is gone: its sessions are detached (resumable). */
void voice_sessions_peer_gone(struct voice_worker *w, struct voice_peer *peer);
/* Ends sessions detached longer than the resume window; called every tick. */
void voice_sessions_expire(struct voice_worker *w);
/* Ends every session with reason (shutdown). */
void voice_sessions_end_all(struct voice_worker *w, const char *reason);
int voice_sessions_active(struct voice_worker *w);

/* ---- metrics.c: Prometheus series of the worker ---- */
enum voice_stage { VOICE_STAGE_STT = 0, VOICE_STAGE_LLM = 1, VOICE_STAGE_TTS = 2 };
void voice_metrics_register(struct voice_worker *w);
/* One answered turn's stage latencies (ms), as in its `metrics` event. */
void voice_metrics_turn(int64_t eot_ms, int64_t stt_ms, int64_t llm_ms, int64_t tts_ms,
                        int64_t v2v_ms);
void voice_metrics_error(enum voice_stage stage);
void voice_metrics_session_ended(const char *reason);

/* ---- playout.c: real-time pacing of every session's audio ---- */
int voice_playout_start(struct voice_worker *w);
void voice_playout_stop(struct voice_worker *w);

/* ---- report.c: session records to vap-usage, retried until stored ---- */
int voice_reporter_start(struct voice_worker *w);
void voice_reporter_stop(struct voice_worker *w);
/* Queues a copy of rec; never blocks. */
void voice_report(struct voice_worker *w, const Vap__SessionRecord *rec);

/* ---- agents_rt.c ---- */
int voice_agents_load(struct voice_worker *w);
void voice_agents_free(struct voice_worker *w);
struct voice_agent_rt *voice_agent_rt_find(struct voice_worker *w, const char *id);

#endif
