/*
 * The voice worker's Prometheus metrics (common/prometheus.h serves them at /metrics on
 * METRICS_ADDR): sessions open now, per-stage latency of each answered turn (end of
 * turn detection, STT, LLM first token, TTS first audio, voice to voice), errors by
 * stage, and ended sessions by reason. The series are found once, at start.
 */
#include <stdio.h>

#include "prometheus.h"
#include "voice.h"

static const char *STAGES[] = {"end_of_turn", "stt", "llm_first_token", "tts_first_audio",
                               "voice_to_voice"};
#define N_STAGES (sizeof(STAGES) / sizeof(STAGES[0]))
static struct vap_histogram *stage[N_STAGES];
static struct vap_counter *errors[3];

static double sessions_now(void *user)
{
    return voice_sessions_active(user);
}

void voice_metrics_register(struct voice_worker *w)
{
    static const char *ERROR_STAGES[] = {"stt", "llm", "tts"};
    char labels[64];
    vap_gauge("vap_voice_sessions_active", "Voice sessions open on this worker.", "",
              sessions_now, w);
    for (size_t i = 0; i < N_STAGES; i++) {
        snprintf(labels, sizeof(labels), "stage=\"%s\"", STAGES[i]);
        stage[i] = vap_histogram("vap_voice_stage_seconds",
                                 "Latency of each answered turn by pipeline stage.", labels);
    }
    for (size_t i = 0; i < 3; i++) {
        snprintf(labels, sizeof(labels), "stage=\"%s\"", ERROR_STAGES[i]);
        errors[i] = vap_counter("vap_voice_errors_total",
                                "Failures of the speech recogniser, the LLM or the synthesiser.",
                                labels);
    }
}

void voice_metrics_turn(int64_t eot_ms, int64_t stt_ms, int64_t llm_ms, int64_t tts_ms,
                        int64_t v2v_ms)
{
    int64_t v[N_STAGES] = {eot_ms, stt_ms, llm_ms, tts_ms, v2v_ms};
    for (size_t i = 0; i < N_STAGES; i++)
        vap_histogram_observe(stage[i], (double)v[i] / 1000.0);
}

void voice_metrics_error(enum voice_stage s)
{
    vap_counter_add(errors[s], 1);
}

void voice_metrics_session_ended(const char *reason)
{
    char labels[96];
    snprintf(labels, sizeof(labels), "reason=\"%s\"", reason);
    vap_counter_add(vap_counter("vap_voice_sessions_ended_total",
                                "Voice sessions ended, by reason.", labels),
                    1);
}
