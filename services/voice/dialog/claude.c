/*
 * The Claude engine: Anthropic's Messages API with streaming. One POST per reply to
 * {CLAUDE_BASE_URL}/v1/messages carrying the agent's system prompt and the history as
 * alternating user/assistant messages; the answer is a stream of SSE events
 * (message_start, content_block_delta, message_delta, message_stop, ping, error) whose
 * text deltas go to emit as they arrive. Unknown event types are ignored, as Anthropic's
 * versioning policy asks. The API key lives only in the header line built at create
 * time and is never logged.
 */
#include "llm_http.h"

#include "agents.h"
#include "clock.h"
#include "err.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static char *join_url(const char *base, const char *path)
{
    size_t n = strlen(base);
    char *out;
    while (n > 0 && base[n - 1] == '/')
        n--;
    out = malloc(n + strlen(path) + 1);
    if (!out)
        return NULL;
    memcpy(out, base, n);
    memcpy(out + n, path, strlen(path) + 1);
    return out;
}

static int claude_create(const struct vap_agent *agent, const struct dialog_config *cfg,
                         void **state, char *err, size_t err_size)
{
    const char *base = cfg->claude_base_url && cfg->claude_base_url[0]
                           ? cfg->claude_base_url
                           : "https://api.anthropic.com";
    struct llm_engine_state *c;
    size_t klen;

    if (!cfg->claude_api_key || !cfg->claude_api_key[0]) {
        snprintf(err, err_size, "CLAUDE_API_KEY: not set (the claude engine needs it)");
        return VAP_EINVAL;
    }
    if (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0) {
        snprintf(err, err_size, "CLAUDE_BASE_URL: \"%s\" does not start with http:// or https://",
                 base);
        return VAP_EINVAL;
    }
    if (strpbrk(cfg->claude_api_key, "\r\n")) {
        snprintf(err, err_size, "CLAUDE_API_KEY: contains a line break");
        return VAP_EINVAL;
    }
    c = calloc(1, sizeof(*c));
    if (!c)
        return VAP_ENOMEM;
    klen = strlen(cfg->claude_api_key);
    c->url = join_url(base, "/v1/messages");
    c->auth_header = malloc(klen + sizeof("x-api-key: "));
    c->model = strdup(cfg->claude_model && cfg->claude_model[0] ? cfg->claude_model
                                                                : "claude-sonnet-4-5");
    c->system = strdup(agent && agent->system_prompt ? agent->system_prompt : "");
    c->share = llm_share_new();
    if (!c->url || !c->auth_header || !c->model || !c->system || !c->share) {
        llm_engine_state_free(c);
        return VAP_ENOMEM;
    }
    memcpy(c->auth_header, "x-api-key: ", 11);
    memcpy(c->auth_header + 11, cfg->claude_api_key, klen + 1);
    c->max_tokens = cfg->max_tokens > 0 ? cfg->max_tokens : 300;
    c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 15000;
    c->first_token_ms = cfg->first_token_timeout_ms > 0 ? cfg->first_token_timeout_ms : 5000;
    *state = c;
    return 0;
}

static void *claude_session_new(void *state)
{
    return llm_http_new(((struct llm_engine_state *)state)->share);
}

static void claude_session_free(void *session_state)
{
    llm_http_free(session_state);
}

static int64_t usage_int(json_t *usage, const char *key)
{
    json_t *v = json_object_get(usage, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

/* One SSE event of the Messages stream. */
static int claude_event(void *user, const char *event, const char *data, size_t len)
{
    struct llm_stream *st = user;
    json_t *doc = json_loadb(data, len, 0, NULL);
    const char *type;
    int stop = 0;

    if (!doc || !json_is_object(doc)) {
        char name[64];
        json_decref(doc);
        llm_safe_ident(event, name, sizeof(name)); /* the server's bytes: maybe not UTF-8 */
        return llm_stream_fail(st, VAP_EPROTO, "the language model sent a malformed event (%s)",
                               name);
    }
    type = json_string_value(json_object_get(doc, "type"));
    if (!type)
        type = event;
    if (strcmp(type, "content_block_delta") == 0) {
        json_t *delta = json_object_get(doc, "delta");
        const char *dt = json_string_value(json_object_get(delta, "type"));
        json_t *text = json_object_get(delta, "text");
        if (dt && strcmp(dt, "text_delta") == 0 && json_is_string(text))
            stop = llm_stream_emit(st, json_string_value(text), json_string_length(text));
    } else if (strcmp(type, "message_start") == 0) {
        json_t *usage = json_object_get(json_object_get(doc, "message"), "usage");
        st->res->tokens_in = usage_int(usage, "input_tokens") +
                             usage_int(usage, "cache_creation_input_tokens") +
                             usage_int(usage, "cache_read_input_tokens");
        st->res->tokens_out = usage_int(usage, "output_tokens");
        st->usage_seen = usage != NULL;
    } else if (strcmp(type, "message_delta") == 0) {
        json_t *usage = json_object_get(doc, "usage");
        if (json_is_integer(json_object_get(usage, "output_tokens")))
            st->res->tokens_out = usage_int(usage, "output_tokens");
        if (json_is_integer(json_object_get(usage, "input_tokens")))
            st->res->tokens_in = usage_int(usage, "input_tokens");
    } else if (strcmp(type, "message_stop") == 0) {
        st->done = 1;
    } else if (strcmp(type, "error") == 0) {
        char ident[64];
        llm_safe_ident(json_string_value(json_object_get(json_object_get(doc, "error"), "type")),
                       ident, sizeof(ident));
        vap_warn(NULL, "llm stream error engine=claude error_type=%s", ident[0] ? ident : "-");
        if (strcmp(ident, "overloaded_error") == 0)
            stop = llm_stream_fail(st, VAP_EUNAVAIL,
                                   "the language model became overloaded mid-reply (%s)", ident);
        else
            stop = llm_stream_fail(st, VAP_EUNAVAIL, "the language model failed mid-reply (%s)",
                                   ident[0] ? ident : "error");
    }
    /* ping, content_block_start/stop and future event types: nothing to do. */
    json_decref(doc);
    return stop;
}

static int claude_reply(void *state, void *session_state, const struct dialog_history *history,
                        const char *user_text, dialog_emit_fn emit, void *user,
                        const atomic_int *cancel, struct dialog_result *res)
{
    struct llm_engine_state *c = state;
    struct llm_stream st;
    struct llm_stream_timing t = {vap_now_ms(), c->timeout_ms, c->first_token_ms};
    const char *headers[] = {c->auth_header, "anthropic-version: 2023-06-01", NULL};
    json_t *req = NULL, *messages;
    char *body = NULL;
    int rv;

    if (!session_state) {
        snprintf(res->error, sizeof(res->error), "out of memory");
        return VAP_ENOMEM;
    }
    messages = llm_messages_json(history, user_text);
    if (messages)
        req = json_pack("{s:s, s:i, s:o, s:b}", "model", c->model, "max_tokens", c->max_tokens,
                        "messages", messages, "stream", 1);
    if (req && c->system[0] && json_object_set_new(req, "system", json_string(c->system)) != 0)
        json_object_del(req, "system");
    if (req)
        body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (!body) {
        snprintf(res->error, sizeof(res->error), "cannot build the request (invalid text?)");
        return VAP_ENOMEM;
    }
    memset(&st, 0, sizeof(st));
    st.engine = "claude";
    st.emit = emit;
    st.user = user;
    st.cancel = cancel;
    st.res = res;
    rv = llm_stream_run(session_state, c->url, headers, body, claude_event, &st, &t);
    free(body);
    return rv;
}

const struct dialog_engine_ops dialog_claude_ops = {
    .name = "claude",
    .create = claude_create,
    .destroy = llm_engine_state_free,
    .session_new = claude_session_new,
    .session_free = claude_session_free,
    .reply = claude_reply,
};
