/*
 * The native protocol's server -> client events (API.md, "Voice stream"), built as
 * jansson objects with "type" first. Clients of the earlier backend read
 * session.started's "message" and agent.text's "text"; both are kept.
 */
#include "session.h"

#include "clock.h"

json_t *ev_simple(const char *type)
{
    return json_pack("{s:s}", "type", type);
}

json_t *ev_session_started(const struct voice_session *s, bool resumed)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:b, s:{s:s, s:i, s:i}}", "type", "session.started",
                     "session_id", s->id, "agent_type", s->rt->agent->id, "message",
                     s->rt->agent->startup_message, "resumed", resumed, "audio", "codec",
                     audio_codec_name(s->codec), "sample_rate",
                     s->sample_rate, "frame_ms", AUDIO_FRAME_MS);
}

json_t *ev_transcript(const char *type, int turn_id, const char *text)
{
    return json_pack("{s:s, s:i, s:s}", "type", type, "turn_id", turn_id, "text", text);
}

json_t *ev_agent_text(int turn_id, const char *text, bool final)
{
    return json_pack("{s:s, s:i, s:s, s:b}", "type", "agent.text", "turn_id", turn_id, "text",
                     text, "final", final);
}

json_t *ev_turn(const char *type, int turn_id)
{
    return json_pack("{s:s, s:i}", "type", type, "turn_id", turn_id);
}

json_t *ev_interrupted(int turn_id, int64_t played_ms)
{
    return json_pack("{s:s, s:i, s:I}", "type", "agent.interrupted", "turn_id", turn_id,
                     "played_ms", (json_int_t)played_ms);
}

json_t *ev_metrics(int turn_id, int64_t eot_ms, int64_t stt_ms, int64_t llm_ms, int64_t tts_ms,
                   int64_t v2v_ms)
{
    return json_pack("{s:s, s:i, s:I, s:I, s:I, s:I, s:I}", "type", "metrics", "turn_id", turn_id,
                     "end_of_turn_ms", (json_int_t)eot_ms, "stt_ms", (json_int_t)stt_ms, "llm_first_token_ms", (json_int_t)llm_ms,
                     "tts_first_audio_ms", (json_int_t)tts_ms, "voice_to_voice_ms",
                     (json_int_t)v2v_ms);
}

json_t *ev_error(const char *code, const char *message)
{
    return json_pack("{s:s, s:s, s:s}", "type", "error", "code", code, "message", message);
}

json_t *ev_session_ended(const struct voice_session *s)
{
    return json_pack("{s:s, s:s, s:s, s:{s:f, s:f, s:I, s:I, s:i, s:f}}", "type",
                     "session.ended", "session_id", s->id, "reason", s->end_reason, "totals",
                     "audio_in_seconds", (double)atomic_load(&s->audio_in_ms) / 1000.0,
                     "audio_out_seconds", (double)atomic_load(&s->audio_out_ms) / 1000.0,
                     "llm_tokens_in", (json_int_t)atomic_load(&s->tokens_in), "llm_tokens_out",
                     (json_int_t)atomic_load(&s->tokens_out), "turns", atomic_load(&s->turns),
                     "duration_seconds",
                     (double)(vap_now_ms() - s->started_mono_ms) / 1000.0);
}

void session_record(struct voice_session *s, Vap__SessionRecord *rec, bool ended)
{
    vap__session_record__init(rec);
    rec->session_id = s->id;
    rec->grant_id = s->grant_id;
    rec->otp_id = s->otp_id;
    rec->agent_type = (char *)s->rt->agent->id;
    rec->started_at_ms = s->started_ms;
    rec->ended_at_ms = ended ? s->started_ms + (vap_now_ms() - s->started_mono_ms) : 0;
    if (ended && rec->ended_at_ms <= rec->started_at_ms)
        rec->ended_at_ms = rec->started_at_ms + 1;
    rec->audio_in_seconds = (double)atomic_load(&s->audio_in_ms) / 1000.0;
    rec->audio_out_seconds = (double)atomic_load(&s->audio_out_ms) / 1000.0;
    rec->llm_tokens_in = atomic_load(&s->tokens_in);
    rec->llm_tokens_out = atomic_load(&s->tokens_out);
    rec->turns = atomic_load(&s->turns);
    rec->end_reason = ended ? s->end_reason : "";
}
