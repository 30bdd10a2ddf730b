/*
 * What the two LLM engines (claude.c, openai.c) share: one streaming HTTP POST driven by
 * libcurl's multi interface, and the conversion of the history into chat messages.
 *
 * The transfer loop polls curl every few milliseconds (LLM_HTTP_TICK_MS) so a
 * cancellation (*cancel set by another thread) or a passed deadline aborts it promptly,
 * instead of waiting for curl's once-a-second progress callback. A struct llm_http keeps
 * its connection open between replies (keep-alive, TLS session), so it belongs to one
 * dialog session and one thread at a time. Nothing here logs a header or a body: request
 * headers carry API keys.
 */
#ifndef VAP_VOICE_LLM_HTTP_H
#define VAP_VOICE_LLM_HTTP_H

#include "dialog_internal.h"
#include "sse.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define LLM_HTTP_TICK_MS 10
#define LLM_HTTP_MAX_BODY (1024 * 1024) /* a streamed reply larger than this is refused */
#define LLM_HTTP_ERRBODY_MAX 4096      /* kept of a non-2xx answer's body */
#define LLM_SSE_MAX_LINE (256 * 1024)  /* one SSE line */
#define LLM_SSE_MAX_DATA (256 * 1024)  /* one SSE event's data */

struct llm_http;

/* Returns 0 to go on; nonzero stops the transfer (the caller knows why). */
typedef int (*llm_http_data_fn)(void *user, const char *data, size_t len);

struct llm_http_req {
    const char *url;
    const char *const *headers; /* "Name: value" lines, NULL-terminated; may hold keys */
    const char *body;           /* JSON text */
    int64_t deadline_ms;        /* absolute monotonic: the whole reply */
    int64_t first_deadline_ms;  /* absolute monotonic: until *first_seen is nonzero */
    const int *first_seen;      /* set by the caller's on_data once a token is out */
    const atomic_int *cancel;   /* may be NULL */
    llm_http_data_fn on_data;   /* body bytes of a 2xx answer, as they arrive */
    void *user;
};

struct llm_http_resp {
    long status;           /* HTTP status, 0 when none was received */
    int retry_after_s;     /* Retry-After in seconds, -1 when absent */
    int stopped;           /* on_data returned nonzero */
    size_t bytes;          /* body bytes received */
    char errbody[LLM_HTTP_ERRBODY_MAX + 1]; /* start of a non-2xx body, NUL-terminated */
    size_t errbody_len;
};

/* Once per process, before any thread starts: curl_global_init. Returns 0 or VAP_EINTERNAL. */
int llm_http_global_init(void);

/*
 * What the sessions of one engine share, across threads: the DNS cache and TLS session
 * tickets (so a new call's first request skips the lookup and resumes TLS). Owned by the
 * engine; must outlive every llm_http made with it. NULL when out of memory.
 */
struct llm_share;

/* What both LLM engines keep per agent: endpoint, auth header (wiped on free), model,
 * system prompt, limits and the shared connection cache. */
struct llm_engine_state {
    char *url;
    char *auth_header; /* "x-api-key: ..." / "Authorization: Bearer ..." or NULL */
    char *model;
    char *system;
    int max_tokens, timeout_ms, first_token_ms;
    struct llm_share *share;
};

/* Frees an engine state (NULL is fine); the auth header is zeroed first. */
void llm_engine_state_free(void *state);
struct llm_share *llm_share_new(void);
void llm_share_free(struct llm_share *s);

/* A connection holder for one session; share may be NULL. NULL when out of memory. */
struct llm_http *llm_http_new(struct llm_share *share);
void llm_http_free(struct llm_http *h);

/*
 * POSTs req->body and streams the answer. Blocks until the transfer ends. Returns:
 * 0 when the answer arrived in full (any status: check resp->status);
 * VAP_ECANCELED when *cancel was set or on_data stopped it (resp->stopped);
 * VAP_ETIMEDOUT when a deadline passed (msg says which);
 * VAP_EUNAVAIL when the server cannot be reached or sent nothing;
 * VAP_EPROTO when the answer broke off after it began, or passed LLM_HTTP_MAX_BODY.
 * msg gets a short reason in words (no URL query, no header, no body).
 */
int llm_http_post_stream(struct llm_http *h, const struct llm_http_req *req,
                         struct llm_http_resp *resp, char *msg, size_t msg_size);

/*
 * The chat messages for history + user_text as a JSON array of {"role","content"}:
 * roles alternate starting with "user" (Anthropic requires it; chat templates of local
 * models often do too). Consecutive turns of one role are joined by a newline, empty
 * turns are dropped, and a greeting that opens the call follows a synthetic user turn
 * "(call connected)". Returns a new reference or NULL when out of memory.
 */
json_t *llm_messages_json(const struct dialog_history *h, const char *user_text);

/*
 * One streamed reply as the engines see it: llm_stream_run posts the request, feeds the
 * answer through an SSE parser to the engine's on_event, and turns HTTP statuses,
 * transport failures and deadlines into the dialog_reply contract. on_event parses one
 * event and calls llm_stream_emit for text, sets done at the stream's proper end, or
 * calls llm_stream_fail; it returns nonzero to stop the transfer.
 */
struct llm_stream {
    const char *engine;         /* "claude", "openai": for logs */
    dialog_emit_fn emit;
    void *user;
    const atomic_int *cancel;
    struct dialog_result *res;
    int first_seen;   /* a text piece went to emit */
    int done;         /* the stream ended properly (message_stop, [DONE]) */
    int emit_stopped; /* emit returned nonzero */
    int fail;         /* VAP_E* set by llm_stream_fail */
    size_t out_bytes; /* text emitted */
    int usage_seen;   /* the server reported token counts */
};

struct llm_stream_timing {
    int64_t start_ms;      /* when the reply was asked for (monotonic) */
    int timeout_ms;        /* whole reply */
    int first_token_ms;    /* until the first piece */
};

/* Passes a text piece to emit. Returns nonzero when the reply must stop. */
int llm_stream_emit(struct llm_stream *st, const char *text, size_t len);

/* Records a failure (the first one wins) with words for res->error. Returns 1. */
int llm_stream_fail(struct llm_stream *st, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Runs one reply: POST body to url with headers, parse the SSE answer with on_event
 * (called with st as user). Retries once, quickly, on 429/503/529 when the server asks
 * for at most a second's pause and the first-token deadline allows it. Returns 0 or the
 * dialog_reply error codes, with st->res->error set on failure.
 */
int llm_stream_run(struct llm_http *h, const char *url, const char *const *headers,
                   const char *body, sse_event_fn on_event, struct llm_stream *st,
                   const struct llm_stream_timing *t);

/* Sleeps up to ms, waking early when *cancel is set. Returns 1 when cancelled. */
int llm_sleep_cancellable(int64_t ms, const atomic_int *cancel);

/*
 * Copies a short identifier (an error "type" or "code" from an API error body) into out
 * when it looks like one ([A-Za-z0-9_.-], at most 48 bytes); otherwise out is "". API
 * error messages are never copied: some quote part of the key.
 */
void llm_safe_ident(const char *s, char *out, size_t out_size);

#endif
