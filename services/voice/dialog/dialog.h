/*
 * Dialog engines behind one interface. An engine is chosen per agent and configuration:
 * Claude (Anthropic Messages API, streaming SSE) when CLAUDE_API_KEY is set, any
 * OpenAI-compatible chat-completions endpoint when LLM_BASE_URL is set, otherwise the
 * offline engine driven by the agent's own data (listings, departments, doctors, slots).
 * The agent file may pin one: "dialog": {"engine": "offline" | "claude" | "openai"}.
 *
 * A dialog_session is one visitor's conversation: its history (what the visitor said,
 * what the agent said and was actually heard) and engine state (e.g. a booking in
 * progress). Sessions are never shared; engines are shared and thread-safe.
 */
#ifndef VAP_VOICE_DIALOG_H
#define VAP_VOICE_DIALOG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct vap_agent;
struct dialog_engine;
struct dialog_session;

struct dialog_config {
    const char *claude_api_key; /* CLAUDE_API_KEY, NULL/"" = unset */
    const char *claude_base_url; /* default https://api.anthropic.com (tests: a mock) */
    const char *claude_model;    /* default claude-sonnet-4-5 */
    const char *llm_base_url;    /* LLM_BASE_URL (OpenAI-compatible), NULL/"" = unset */
    const char *llm_api_key;     /* LLM_API_KEY */
    const char *llm_model;       /* LLM_MODEL */
    int timeout_ms;              /* whole reply deadline (default 15000) */
    int first_token_timeout_ms;  /* no first token by then = failure (default 5000) */
    int max_tokens;              /* reply cap (default 300) */
};

/* Streamed reply text goes here piece by piece; return nonzero to cancel the reply. */
typedef int (*dialog_emit_fn)(void *user, const char *piece, size_t len);

struct dialog_result {
    int64_t tokens_in;      /* as reported by the LLM (estimated for offline) */
    int64_t tokens_out;
    int64_t first_token_ms; /* from the call to the first piece */
    char error[160];        /* set when the reply failed: said in words, no secrets */
};

/*
 * Once per process, from main before any other thread starts: initialises libcurl
 * (curl_global_init). Returns 0 or VAP_EINTERNAL.
 */
int dialog_global_init(void);

/*
 * Creates the engine an agent uses: its "dialog": {"engine": ...} pin, or by default
 * ("auto") claude when cfg->claude_api_key is set, else openai when cfg->llm_base_url is
 * set, else offline. The engine copies what it needs from cfg (the agent must outlive
 * it). Returns 0 or VAP_EINVAL (err says which setting is wrong), VAP_ENOMEM.
 */
int dialog_engine_new(const struct vap_agent *agent, const struct dialog_config *cfg,
                      struct dialog_engine **out, char *err, size_t err_size);
void dialog_engine_free(struct dialog_engine *e);
const char *dialog_engine_name(const struct dialog_engine *e); /* "offline", "claude"... */

struct dialog_session *dialog_session_new(struct dialog_engine *e);
void dialog_session_free(struct dialog_session *s);

/* Records the agent's startup message as its first turn in the history. */
void dialog_add_greeting(struct dialog_session *s, const char *text);

/*
 * Answers the visitor's text, streaming the reply through emit. Blocks until the reply
 * is complete, cancelled (*cancel becomes nonzero or emit returns nonzero:
 * VAP_ECANCELED) or failed (VAP_ETIMEDOUT / VAP_EUNAVAIL / VAP_EPROTO, res->error says
 * why; the caller speaks an apology). The visitor's turn and the full reply are added to
 * the history; after a barge-in call dialog_truncate_last.
 */
int dialog_reply(struct dialog_session *s, const char *user_text, dialog_emit_fn emit,
                 void *user, const atomic_int *cancel, struct dialog_result *res);

/* The visitor heard only heard_text of the last reply: the history keeps just that. */
void dialog_truncate_last(struct dialog_session *s, const char *heard_text);

#endif
