/*
 * The OpenAI-compatible engine: POST {LLM_BASE_URL}/chat/completions with stream: true,
 * as OpenAI, vLLM, llama.cpp's server, Ollama and most gateways accept it. The answer
 * is SSE "data: {chunk}" lines; choices[0].delta.content carries the text, a last chunk
 * with empty choices carries usage (stream_options.include_usage), and "data: [DONE]"
 * ends the stream. Servers that report no usage get an estimate (4 bytes a token). The
 * API key (optional: local servers need none) lives only in the header line built here.
 */
#include "llm_http.h"

#include "agents.h"
#include "clock.h"
#include "err.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static int openai_create(const struct vap_agent *agent, const struct dialog_config *cfg,
                         void **state, char *err, size_t err_size)
{
    const char *base = cfg->llm_base_url;
    const char *key = cfg->llm_api_key;
    struct llm_engine_state *o;
    size_t n;

    if (!base || !base[0]) {
        snprintf(err, err_size, "LLM_BASE_URL: not set (the openai engine needs it)");
        return VAP_EINVAL;
    }
    if (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0) {
        snprintf(err, err_size, "LLM_BASE_URL: \"%s\" does not start with http:// or https://",
                 base);
        return VAP_EINVAL;
    }
    if (key && strpbrk(key, "\r\n")) {
        snprintf(err, err_size, "LLM_API_KEY: contains a line break");
        return VAP_EINVAL;
    }
    o = calloc(1, sizeof(*o));
    if (!o)
        return VAP_ENOMEM;
    n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    o->url = malloc(n + sizeof("/chat/completions"));
    if (o->url) {
        memcpy(o->url, base, n);
        memcpy(o->url + n, "/chat/completions", sizeof("/chat/completions"));
    }
    if (key && key[0]) {
        size_t klen = strlen(key);
        o->auth_header = malloc(klen + sizeof("Authorization: Bearer "));
        if (o->auth_header) {
            memcpy(o->auth_header, "Authorization: Bearer ", 22);
            memcpy(o->auth_header + 22, key, klen + 1);
        }
    }
    o->model = strdup(cfg->llm_model && cfg->llm_model[0] ? cfg->llm_model : "gpt-4o-mini");
    o->system = strdup(agent && agent->system_prompt ? agent->system_prompt : "");
    o->share = llm_share_new();
    if (!o->url || (key && key[0] && !o->auth_header) || !o->model || !o->system || !o->share) {
        llm_engine_state_free(o);
        return VAP_ENOMEM;
    }
    o->max_tokens = cfg->max_tokens > 0 ? cfg->max_tokens : 300;
    o->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 15000;
    o->first_token_ms = cfg->first_token_timeout_ms > 0 ? cfg->first_token_timeout_ms : 5000;
    *state = o;
    return 0;
}

static void *openai_session_new(void *state)
{
    return llm_http_new(((struct llm_engine_state *)state)->share);
}

static void openai_session_free(void *session_state)
{
    llm_http_free(session_state);
}

static int openai_event(void *user, const char *event, const char *data, size_t len)
{
    struct llm_stream *st = user;
    json_t *doc, *choices, *usage, *err;
    int stop = 0;

    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        st->done = 1;
        return 0;
    }
    doc = json_loadb(data, len, 0, NULL);
    if (!doc || !json_is_object(doc)) {
        json_decref(doc);
        return llm_stream_fail(st, VAP_EPROTO, "the language model sent a malformed event");
    }
    err = json_object_get(doc, "error");
    if (err) {
        char ident[64];
        const char *id = json_string_value(json_object_get(err, "code"));
        llm_safe_ident(id ? id : json_string_value(json_object_get(err, "type")), ident,
                       sizeof(ident));
        vap_warn(NULL, "llm stream error engine=openai error_type=%s", ident[0] ? ident : "-");
        json_decref(doc);
        return llm_stream_fail(st, VAP_EUNAVAIL, "the language model failed mid-reply (%s)",
                               ident[0] ? ident : "error");
    }
    choices = json_object_get(doc, "choices");
    if (json_is_array(choices) && json_array_size(choices) > 0) {
        json_t *c0 = json_array_get(choices, 0);
        json_t *content = json_object_get(json_object_get(c0, "delta"), "content");
        if (json_is_string(content))
            stop = llm_stream_emit(st, json_string_value(content), json_string_length(content));
    }
    usage = json_object_get(doc, "usage");
    if (json_is_object(usage)) {
        json_t *pi = json_object_get(usage, "prompt_tokens");
        json_t *co = json_object_get(usage, "completion_tokens");
        if (json_is_integer(pi))
            st->res->tokens_in = (int64_t)json_integer_value(pi);
        if (json_is_integer(co))
            st->res->tokens_out = (int64_t)json_integer_value(co);
        st->usage_seen = json_is_integer(pi) || json_is_integer(co);
    }
    json_decref(doc);
    return stop;
}

static int openai_reply(void *state, void *session_state, const struct dialog_history *history,
                        const char *user_text, dialog_emit_fn emit, void *user,
                        const atomic_int *cancel, struct dialog_result *res)
{
    struct llm_engine_state *o = state;
    struct llm_stream st;
    struct llm_stream_timing t = {vap_now_ms(), o->timeout_ms, o->first_token_ms};
    const char *headers[] = {o->auth_header, NULL};
    json_t *req = NULL, *messages;
    char *body = NULL;
    int rv;

    if (!session_state) {
        snprintf(res->error, sizeof(res->error), "out of memory");
        return VAP_ENOMEM;
    }
    messages = llm_messages_json(history, user_text);
    if (messages && o->system[0]) {
        json_t *sys = json_pack("{s:s, s:s}", "role", "system", "content", o->system);
        if (!sys || json_array_insert_new(messages, 0, sys) != 0) {
            json_decref(messages);
            messages = NULL;
        }
    }
    if (messages)
        req = json_pack("{s:s, s:o, s:b, s:{s:b}, s:i}", "model", o->model, "messages", messages,
                        "stream", 1, "stream_options", "include_usage", 1, "max_tokens",
                        o->max_tokens);
    if (req)
        body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (!body) {
        snprintf(res->error, sizeof(res->error), "cannot build the request (invalid text?)");
        return VAP_ENOMEM;
    }
    memset(&st, 0, sizeof(st));
    st.engine = "openai";
    st.emit = emit;
    st.user = user;
    st.cancel = cancel;
    st.res = res;
    rv = llm_stream_run(session_state, o->url, headers, body, openai_event, &st, &t);
    if (!st.usage_seen) {
        res->tokens_in = (int64_t)(strlen(body) / 4);
        res->tokens_out = (int64_t)((st.out_bytes + 3) / 4);
    }
    free(body);
    return rv;
}

const struct dialog_engine_ops dialog_openai_ops = {
    .name = "openai",
    .create = openai_create,
    .destroy = llm_engine_state_free,
    .session_new = openai_session_new,
    .session_free = openai_session_free,
    .reply = openai_reply,
};
