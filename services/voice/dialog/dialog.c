/*
 * Dialog core: picks an engine per agent, keeps each session's history and dispatches
 * replies (see dialog.h). It wraps the caller's emit so that, whatever the engine, the
 * first piece is timed and everything emitted is recorded: the history gets the
 * visitor's turn and the reply as it was streamed, even when the reply failed or was
 * cancelled halfway. History text is always valid UTF-8 (invalid bytes are dropped),
 * and the history is capped so a long call cannot grow a request without bound.
 */
#include "dialog_internal.h"
#include "llm_http.h"

#include "agents.h"
#include "clock.h"
#include "err.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HISTORY_MAX_TURNS 40
#define HISTORY_MAX_BYTES 8000
#define REPLY_CAPTURE_MAX (16 * 1024)

struct dialog_engine {
    const struct dialog_engine_ops *ops;
    void *state;
};

struct dialog_session {
    struct dialog_engine *engine;
    void *state;
    struct dialog_history history;
    size_t history_bytes;
};

int dialog_global_init(void)
{
    return llm_http_global_init();
}

/* Which engine: the agent's pin, or auto. err names the field on failure. */
static int pick_engine(const struct vap_agent *agent, const struct dialog_config *cfg,
                       const struct dialog_engine_ops **out, char *err, size_t err_size)
{
    json_t *d = agent ? json_object_get(agent->json, "dialog") : NULL;
    json_t *e = json_object_get(d, "engine");
    const char *name = "auto";
    const char *id = agent && agent->id ? agent->id : "?";

    if (e && !json_is_string(e)) {
        snprintf(err, err_size, "agent %s: dialog.engine: not a string", id);
        return VAP_EINVAL;
    }
    if (e)
        name = json_string_value(e);
    if (strcmp(name, "auto") == 0) {
        if (cfg->claude_api_key && cfg->claude_api_key[0])
            *out = &dialog_claude_ops;
        else if (cfg->llm_base_url && cfg->llm_base_url[0])
            *out = &dialog_openai_ops;
        else
            *out = &dialog_offline_ops;
    } else if (strcmp(name, "claude") == 0) {
        *out = &dialog_claude_ops;
    } else if (strcmp(name, "openai") == 0) {
        *out = &dialog_openai_ops;
    } else if (strcmp(name, "offline") == 0) {
        *out = &dialog_offline_ops;
    } else {
        snprintf(err, err_size,
                 "agent %s: dialog.engine: unknown engine \"%.32s\" (offline, claude, openai, "
                 "auto)",
                 id, name);
        return VAP_EINVAL;
    }
    return 0;
}

int dialog_engine_new(const struct vap_agent *agent, const struct dialog_config *cfg,
                      struct dialog_engine **out, char *err, size_t err_size)
{
    static const struct dialog_config none;
    const struct dialog_engine_ops *ops = NULL;
    struct dialog_engine *e;
    char why[200];
    int rv;

    if (!cfg)
        cfg = &none;
    *out = NULL;
    rv = pick_engine(agent, cfg, &ops, err, err_size);
    if (rv != 0)
        return rv;
    e = calloc(1, sizeof(*e));
    if (!e)
        return VAP_ENOMEM;
    e->ops = ops;
    why[0] = '\0';
    rv = ops->create(agent, cfg, &e->state, why, sizeof(why));
    if (rv != 0) {
        snprintf(err, err_size, "agent %s: dialog engine %s: %s",
                 agent && agent->id ? agent->id : "?", ops->name,
                 why[0] ? why : vap_strerror(rv));
        free(e);
        return rv;
    }
    *out = e;
    return 0;
}

void dialog_engine_free(struct dialog_engine *e)
{
    if (!e)
        return;
    e->ops->destroy(e->state);
    free(e);
}

const char *dialog_engine_name(const struct dialog_engine *e)
{
    return e ? e->ops->name : "none";
}

struct dialog_session *dialog_session_new(struct dialog_engine *e)
{
    struct dialog_session *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->engine = e;
    s->state = e->ops->session_new(e->state);
    return s;
}

void dialog_session_free(struct dialog_session *s)
{
    if (!s)
        return;
    s->engine->ops->session_free(s->state);
    for (size_t i = 0; i < s->history.count; i++)
        free(s->history.turns[i].text);
    free(s->history.turns);
    free(s);
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 when invalid. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    size_t len;
    unsigned min, cp;
    if (p[0] < 0x80)
        return p[0] ? 1 : 0;
    if ((p[0] & 0xE0) == 0xC0) {
        len = 2, min = 0x80, cp = p[0] & 0x1F;
    } else if ((p[0] & 0xF0) == 0xE0) {
        len = 3, min = 0x800, cp = p[0] & 0x0F;
    } else if ((p[0] & 0xF8) == 0xF0) {
        len = 4, min = 0x10000, cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

/* A copy of text[0..n) keeping only valid UTF-8 (NUL bytes dropped too). Caller frees. */
static char *utf8_clean(const char *text, size_t n)
{
    char *out = malloc(n + 1);
    size_t o = 0, i = 0;
    if (!out)
        return NULL;
    while (i < n) {
        size_t k = utf8_seq((const unsigned char *)text + i, n - i);
        if (k == 0) {
            i++;
            continue;
        }
        memcpy(out + o, text + i, k);
        o += k;
        i += k;
    }
    out[o] = '\0';
    return out;
}

static void history_trim(struct dialog_session *s)
{
    struct dialog_history *h = &s->history;
    size_t drop = 0;
    while (h->count - drop > 1 &&
           (h->count - drop > HISTORY_MAX_TURNS || s->history_bytes > HISTORY_MAX_BYTES)) {
        s->history_bytes -= strlen(h->turns[drop].text);
        free(h->turns[drop].text);
        drop++;
    }
    if (drop) {
        memmove(h->turns, h->turns + drop, (h->count - drop) * sizeof(h->turns[0]));
        h->count -= drop;
    }
}

/* Appends a turn (text copied and cleaned). Returns 0 or VAP_ENOMEM. */
static int history_add(struct dialog_session *s, enum dialog_role role, const char *text,
                       size_t len)
{
    struct dialog_history *h = &s->history;
    char *copy;
    if (h->count == h->cap) {
        size_t ncap = h->cap ? h->cap * 2 : 16;
        struct dialog_turn *nt = realloc(h->turns, ncap * sizeof(*nt));
        if (!nt)
            return VAP_ENOMEM;
        h->turns = nt;
        h->cap = ncap;
    }
    copy = utf8_clean(text, len);
    if (!copy)
        return VAP_ENOMEM;
    h->turns[h->count].role = role;
    h->turns[h->count].text = copy;
    h->count++;
    s->history_bytes += strlen(copy);
    history_trim(s);
    return 0;
}

void dialog_add_greeting(struct dialog_session *s, const char *text)
{
    if (!s || !text || !text[0])
        return;
    if (history_add(s, DIALOG_AGENT, text, strlen(text)) != 0)
        vap_warn(NULL, "dialog history: out of memory, greeting not recorded");
}

/* What dialog_reply puts between the engine and the caller's emit. */
struct capture {
    dialog_emit_fn emit;
    void *user;
    int64_t start_ms;
    struct dialog_result *res;
    int got_first;
    int stopped;
    char *text;
    size_t len;
};

static int capture_emit(void *user, const char *piece, size_t len)
{
    struct capture *c = user;
    size_t room;
    if (len == 0)
        return 0;
    if (!c->got_first) {
        c->got_first = 1;
        c->res->first_token_ms = vap_now_ms() - c->start_ms;
    }
    room = REPLY_CAPTURE_MAX - c->len;
    if (c->text && room > 0) {
        size_t k = len < room ? len : room;
        memcpy(c->text + c->len, piece, k);
        c->len += k;
        c->text[c->len] = '\0';
    }
    if (c->emit && c->emit(c->user, piece, len) != 0) {
        c->stopped = 1;
        return 1;
    }
    return 0;
}

int dialog_reply(struct dialog_session *s, const char *user_text, dialog_emit_fn emit,
                 void *user, const atomic_int *cancel, struct dialog_result *res)
{
    struct capture cap;
    char *clean;
    int rv;

    memset(res, 0, sizeof(*res));
    if (!s || !user_text) {
        snprintf(res->error, sizeof(res->error), "no session or no text");
        return VAP_EINVAL;
    }
    clean = utf8_clean(user_text, strlen(user_text));
    memset(&cap, 0, sizeof(cap));
    cap.emit = emit;
    cap.user = user;
    cap.start_ms = vap_now_ms();
    cap.res = res;
    cap.text = malloc(REPLY_CAPTURE_MAX + 1);
    if (!clean || !cap.text) {
        free(clean);
        free(cap.text);
        snprintf(res->error, sizeof(res->error), "out of memory");
        return VAP_ENOMEM;
    }
    cap.text[0] = '\0';
    if (cancel && atomic_load(cancel))
        rv = VAP_ECANCELED;
    else
        rv = s->engine->ops->reply(s->engine->state, s->state, &s->history, clean,
                                   capture_emit, &cap, cancel, res);
    if (rv == 0 && (cap.stopped || (cancel && atomic_load(cancel) && !cap.got_first)))
        rv = VAP_ECANCELED;
    if (rv != 0 && cap.stopped)
        rv = VAP_ECANCELED;
    if (rv == VAP_ECANCELED)
        res->error[0] = '\0';
    else if (rv != 0 && !res->error[0])
        snprintf(res->error, sizeof(res->error), "the reply failed (%s)", vap_strerror(rv));
    if (history_add(s, DIALOG_USER, clean, strlen(clean)) != 0 ||
        history_add(s, DIALOG_AGENT, cap.text, cap.len) != 0)
        vap_warn(NULL, "dialog history: out of memory, turn not recorded");
    vap_debug(NULL,
              "dialog reply engine=%s rv=%s first_token_ms=%lld tokens_in=%lld tokens_out=%lld "
              "reply_bytes=%zu history_turns=%zu",
              s->engine->ops->name, vap_strerror(rv), (long long)res->first_token_ms,
              (long long)res->tokens_in, (long long)res->tokens_out, cap.len,
              s->history.count);
    free(clean);
    free(cap.text);
    return rv;
}

void dialog_truncate_last(struct dialog_session *s, const char *heard_text)
{
    struct dialog_history *h;
    struct dialog_turn *t;
    char *copy;
    if (!s)
        return;
    h = &s->history;
    if (h->count == 0 || h->turns[h->count - 1].role != DIALOG_AGENT)
        return;
    t = &h->turns[h->count - 1];
    copy = utf8_clean(heard_text ? heard_text : "", heard_text ? strlen(heard_text) : 0);
    if (!copy)
        return;
    s->history_bytes -= strlen(t->text);
    s->history_bytes += strlen(copy);
    free(t->text);
    t->text = copy;
}
