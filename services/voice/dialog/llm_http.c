/*
 * Streaming HTTP POST for the LLM engines (see llm_http.h). One easy handle and one
 * multi handle per session; the multi handle owns the connection cache, so a second
 * reply in the same call reuses the open (TLS) connection. The loop below is the whole
 * point of using the multi interface: it wakes every LLM_HTTP_TICK_MS to look at the
 * cancel flag and the two deadlines, so a barge-in stops a reply within a tick.
 */
#include "llm_http.h"

#include "clock.h"
#include "err.h"
#include "log.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct llm_http {
    CURLM *multi;
    CURL *easy;
    struct llm_share *share;
};

struct llm_share {
    CURLSH *sh;
    pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
};

struct xfer {
    const struct llm_http_req *req;
    struct llm_http_resp *resp;
    CURL *easy;
    int too_big;
};

int llm_http_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : VAP_EINTERNAL;
}

static void share_lock(CURL *handle, curl_lock_data data, curl_lock_access access, void *userp)
{
    struct llm_share *s = userp;
    pthread_mutex_lock(&s->locks[data]);
}

static void share_unlock(CURL *handle, curl_lock_data data, void *userp)
{
    struct llm_share *s = userp;
    pthread_mutex_unlock(&s->locks[data]);
}

struct llm_share *llm_share_new(void)
{
    struct llm_share *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->sh = curl_share_init();
    if (!s->sh) {
        free(s);
        return NULL;
    }
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&s->locks[i], NULL);
    curl_share_setopt(s->sh, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(s->sh, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(s->sh, CURLSHOPT_USERDATA, s);
    curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    return s;
}

void llm_share_free(struct llm_share *s)
{
    if (!s)
        return;
    curl_share_cleanup(s->sh);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&s->locks[i]);
    free(s);
}

struct llm_http *llm_http_new(struct llm_share *share)
{
    struct llm_http *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->share = share;
    h->multi = curl_multi_init();
    h->easy = curl_easy_init();
    if (!h->multi || !h->easy) {
        llm_http_free(h);
        return NULL;
    }
    return h;
}

void llm_http_free(struct llm_http *h)
{
    if (!h)
        return;
    if (h->easy)
        curl_easy_cleanup(h->easy);
    if (h->multi)
        curl_multi_cleanup(h->multi);
    free(h);
}

static size_t on_header(char *buf, size_t size, size_t n, void *userp)
{
    struct xfer *x = userp;
    size_t len = size * n;
    static const char name[] = "retry-after:";

    if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        x->resp->retry_after_s = -1; /* a new response (after 100 Continue) starts */
    } else if (len > sizeof(name) - 1 && strncasecmp(buf, name, sizeof(name) - 1) == 0) {
        char tmp[32];
        size_t vlen = len - (sizeof(name) - 1);
        char *end;
        long v;
        if (vlen >= sizeof(tmp))
            vlen = sizeof(tmp) - 1;
        memcpy(tmp, buf + sizeof(name) - 1, vlen);
        tmp[vlen] = '\0';
        v = strtol(tmp, &end, 10);
        while (*end == ' ' || *end == '\r' || *end == '\n')
            end++;
        if (end != tmp && *end == '\0' && v >= 0 && v < 86400)
            x->resp->retry_after_s = (int)v;
    }
    return len;
}

static size_t on_write(char *buf, size_t size, size_t n, void *userp)
{
    struct xfer *x = userp;
    struct llm_http_resp *resp = x->resp;
    size_t len = size * n;

    if (resp->status == 0)
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &resp->status);
    if (len > LLM_HTTP_MAX_BODY - resp->bytes) {
        x->too_big = 1;
        return 0;
    }
    resp->bytes += len;
    if (resp->status < 200 || resp->status > 299) {
        size_t room = LLM_HTTP_ERRBODY_MAX - resp->errbody_len;
        size_t k = len < room ? len : room;
        memcpy(resp->errbody + resp->errbody_len, buf, k);
        resp->errbody_len += k;
        resp->errbody[resp->errbody_len] = '\0';
        return len;
    }
    if (x->req->on_data(x->req->user, buf, len) != 0) {
        resp->stopped = 1;
        return 0;
    }
    return len;
}

static struct curl_slist *build_headers(const char *const *lines)
{
    struct curl_slist *list = NULL, *t;
    static const char *const fixed[] = {"Content-Type: application/json",
                                        "Accept: text/event-stream", "Expect:", NULL};
    for (int pass = 0; pass < 2; pass++) {
        const char *const *src = pass == 0 ? fixed : lines;
        for (size_t i = 0; src && src[i]; i++) {
            t = curl_slist_append(list, src[i]);
            if (!t) {
                curl_slist_free_all(list);
                return NULL;
            }
            list = t;
        }
    }
    return list;
}

static int set_options(CURL *e, CURLSH *share, const struct llm_http_req *req,
                       struct curl_slist *hdrs, struct xfer *x, char *errbuf)
{
    int64_t total = vap_ms_left(req->deadline_ms);
    int64_t connect = vap_ms_left(req->first_deadline_ms);
    CURLcode c = CURLE_OK;

    if (connect > total)
        connect = total;
    if (connect < 1)
        connect = 1;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (c == CURLE_OK)                                                                         \
            c = curl_easy_setopt(e, opt, val);                                                     \
    } while (0)
    SET(CURLOPT_URL, req->url);
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_POSTFIELDS, req->body);
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(req->body));
    SET(CURLOPT_HTTPHEADER, hdrs);
    SET(CURLOPT_WRITEFUNCTION, on_write);
    SET(CURLOPT_WRITEDATA, x);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, x);
    SET(CURLOPT_ERRORBUFFER, errbuf);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_NOPROGRESS, 1L);
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)connect);
    /* A backstop only: the loop enforces the deadlines itself. */
    SET(CURLOPT_TIMEOUT_MS, (long)(total + 1000));
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_TCP_NODELAY, 1L);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_USERAGENT, "vap-voice/0.1");
    if (share)
        SET(CURLOPT_SHARE, share);
#if LIBCURL_VERSION_NUM >= 0x075500
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
#endif
#undef SET
    return c == CURLE_OK ? 0 : VAP_EINTERNAL;
}

/* Maps a finished transfer's curl result to a VAP_E* code and words. */
static int map_result(CURLcode c, const struct xfer *x, const char *errbuf, char *msg,
                      size_t msg_size)
{
    const struct llm_http_resp *resp = x->resp;
    const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(c);

    if (c == CURLE_OK)
        return 0;
    if (c == CURLE_WRITE_ERROR && x->too_big) {
        snprintf(msg, msg_size, "the language model's answer passed %d bytes",
                 LLM_HTTP_MAX_BODY);
        return VAP_EPROTO;
    }
    if (c == CURLE_WRITE_ERROR && resp->stopped)
        return VAP_ECANCELED;
    if (c == CURLE_OPERATION_TIMEDOUT) {
        snprintf(msg, msg_size, "the language model did not answer in time");
        return VAP_ETIMEDOUT;
    }
    if (resp->status != 0 || resp->bytes > 0) {
        snprintf(msg, msg_size, "the language model closed the stream mid-reply (%s)", detail);
        return VAP_EPROTO;
    }
    switch (c) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        snprintf(msg, msg_size, "the language model's host cannot be resolved");
        break;
    case CURLE_COULDNT_CONNECT:
        snprintf(msg, msg_size, "the language model cannot be reached (connection refused)");
        break;
    case CURLE_GOT_NOTHING:
        snprintf(msg, msg_size, "the language model closed the connection without answering");
        break;
    default:
        snprintf(msg, msg_size, "the language model cannot be reached (%s)", detail);
        break;
    }
    return VAP_EUNAVAIL;
}

int llm_http_post_stream(struct llm_http *h, const struct llm_http_req *req,
                         struct llm_http_resp *resp, char *msg, size_t msg_size)
{
    char errbuf[CURL_ERROR_SIZE];
    struct curl_slist *hdrs = NULL;
    struct xfer x;
    CURLcode result = CURLE_OK;
    int rv = 0, done = 0, running = 0;

    memset(resp, 0, sizeof(*resp));
    resp->retry_after_s = -1;
    msg[0] = '\0';
    errbuf[0] = '\0';
    memset(&x, 0, sizeof(x));
    x.req = req;
    x.resp = resp;
    x.easy = h->easy;

    curl_easy_reset(h->easy);
    hdrs = build_headers(req->headers);
    if (!hdrs)
        return VAP_ENOMEM;
    if (set_options(h->easy, h->share ? h->share->sh : NULL, req, hdrs, &x, errbuf) != 0) {
        snprintf(msg, msg_size, "the HTTP client refused an option");
        curl_slist_free_all(hdrs);
        return VAP_EINTERNAL;
    }
    if (curl_multi_add_handle(h->multi, h->easy) != CURLM_OK) {
        curl_slist_free_all(hdrs);
        snprintf(msg, msg_size, "the HTTP client cannot start a transfer");
        return VAP_EINTERNAL;
    }
    for (;;) {
        CURLMsg *m;
        int left_msgs;
        int64_t now, wait;

        if (curl_multi_perform(h->multi, &running) != CURLM_OK) {
            snprintf(msg, msg_size, "the HTTP client failed");
            rv = VAP_EINTERNAL;
            break;
        }
        while ((m = curl_multi_info_read(h->multi, &left_msgs)) != NULL) {
            if (m->msg == CURLMSG_DONE && m->easy_handle == h->easy) {
                result = m->data.result;
                done = 1;
            }
        }
        if (done || running == 0) {
            rv = map_result(result, &x, errbuf, msg, msg_size);
            break;
        }
        if (req->cancel && atomic_load(req->cancel)) {
            rv = VAP_ECANCELED;
            break;
        }
        now = vap_now_ms();
        if (now >= req->deadline_ms) {
            snprintf(msg, msg_size, "the language model did not finish its reply in time");
            rv = VAP_ETIMEDOUT;
            break;
        }
        if (!(req->first_seen && *req->first_seen) && now >= req->first_deadline_ms) {
            snprintf(msg, msg_size, "the language model did not start answering in time");
            rv = VAP_ETIMEDOUT;
            break;
        }
        wait = req->deadline_ms - now;
        if (wait > LLM_HTTP_TICK_MS)
            wait = LLM_HTTP_TICK_MS;
        curl_multi_poll(h->multi, NULL, 0, (int)wait, NULL);
    }
    if (resp->status == 0)
        curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &resp->status);
    curl_multi_remove_handle(h->multi, h->easy);
    curl_slist_free_all(hdrs);
    return rv;
}

/* One message being built: role and growing content. */
struct msg_acc {
    json_t *arr;
    int last_role; /* -1 none */
    char *content;
    size_t len;
};

static int acc_flush(struct msg_acc *a)
{
    json_t *m;
    if (a->last_role < 0 || !a->content)
        return 0;
    m = json_pack("{s:s, s:s%}", "role", a->last_role == DIALOG_USER ? "user" : "assistant",
                  "content", a->content, a->len);
    free(a->content);
    a->content = NULL;
    a->len = 0;
    if (!m || json_array_append_new(a->arr, m) != 0)
        return VAP_ENOMEM;
    return 0;
}

static int acc_add(struct msg_acc *a, int role, const char *text)
{
    size_t n = strlen(text);
    char *nc;
    if (n == 0)
        return 0;
    if (a->last_role < 0 && role == DIALOG_AGENT) {
        if (acc_add(a, DIALOG_USER, "(call connected)") != 0)
            return VAP_ENOMEM;
    }
    if (a->last_role != role) {
        if (acc_flush(a) != 0)
            return VAP_ENOMEM;
        a->last_role = role;
    }
    nc = realloc(a->content, a->len + n + 2);
    if (!nc)
        return VAP_ENOMEM;
    if (a->len > 0)
        nc[a->len++] = '\n';
    memcpy(nc + a->len, text, n);
    a->len += n;
    nc[a->len] = '\0';
    a->content = nc;
    return 0;
}

json_t *llm_messages_json(const struct dialog_history *h, const char *user_text)
{
    struct msg_acc a = {json_array(), -1, NULL, 0};
    int rv = 0;

    if (!a.arr)
        return NULL;
    for (size_t i = 0; rv == 0 && h && i < h->count; i++)
        rv = acc_add(&a, (int)h->turns[i].role, h->turns[i].text ? h->turns[i].text : "");
    if (rv == 0)
        rv = acc_add(&a, DIALOG_USER, user_text && user_text[0] ? user_text : "(silence)");
    if (rv == 0)
        rv = acc_flush(&a);
    free(a.content);
    if (rv != 0) {
        json_decref(a.arr);
        return NULL;
    }
    return a.arr;
}

int llm_sleep_cancellable(int64_t ms, const atomic_int *cancel)
{
    int64_t until = vap_now_ms() + ms;
    while (vap_now_ms() < until) {
        struct timespec ts = {0, LLM_HTTP_TICK_MS * 1000000L};
        if (cancel && atomic_load(cancel))
            return 1;
        nanosleep(&ts, NULL);
    }
    return cancel && atomic_load(cancel) ? 1 : 0;
}

void llm_safe_ident(const char *s, char *out, size_t out_size)
{
    size_t n = 0;
    out[0] = '\0';
    if (!s || out_size == 0)
        return;
    for (; s[n]; n++) {
        unsigned char ch = (unsigned char)s[n];
        if (n >= 48 || n + 1 >= out_size || !(isalnum(ch) || ch == '_' || ch == '.' || ch == '-'))
            return;
    }
    memcpy(out, s, n);
    out[n] = '\0';
}

int llm_stream_emit(struct llm_stream *st, const char *text, size_t len)
{
    if (len == 0)
        return 0;
    st->first_seen = 1;
    st->out_bytes += len;
    if (st->emit(st->user, text, len) != 0) {
        st->emit_stopped = 1;
        return 1;
    }
    return st->cancel && atomic_load(st->cancel) ? 1 : 0;
}

int llm_stream_fail(struct llm_stream *st, int code, const char *fmt, ...)
{
    va_list ap;
    if (st->fail)
        return 1;
    st->fail = code;
    va_start(ap, fmt);
    vsnprintf(st->res->error, sizeof(st->res->error), fmt, ap);
    va_end(ap);
    return 1;
}

struct run_ctx {
    struct sse_parser *sse;
    struct llm_stream *st;
};

static int feed_sse(void *user, const char *data, size_t len)
{
    struct run_ctx *c = user;
    int rv = sse_feed(c->sse, data, len);
    if (rv == VAP_ETOOBIG)
        llm_stream_fail(c->st, VAP_EPROTO, "the language model sent an oversized event");
    else if (rv == VAP_ENOMEM)
        llm_stream_fail(c->st, VAP_ENOMEM, "out of memory while reading the reply");
    if (rv != 0)
        return 1;
    return c->st->cancel && atomic_load(c->st->cancel) ? 1 : 0;
}

/* The error type (Anthropic) or code (OpenAI) of a non-2xx body, if it has one. */
static void error_ident(const struct llm_http_resp *resp, char *out, size_t out_size)
{
    json_t *doc = json_loadb(resp->errbody, resp->errbody_len, 0, NULL);
    json_t *e = json_object_get(doc, "error");
    const char *id = json_string_value(json_object_get(e, "code"));
    if (!id)
        id = json_string_value(json_object_get(e, "type"));
    llm_safe_ident(id, out, out_size);
    json_decref(doc);
}

static int status_error(long status, const char *ident, char *msg, size_t msg_size)
{
    const char *sep = ident[0] ? " " : "";
    if (status == 429) {
        snprintf(msg, msg_size, "the language model is busy (429%s%s)", sep, ident);
        return VAP_EUNAVAIL;
    }
    if (status == 529 || status == 503) {
        snprintf(msg, msg_size, "the language model is overloaded (%ld%s%s)", status, sep, ident);
        return VAP_EUNAVAIL;
    }
    if (status >= 500) {
        snprintf(msg, msg_size, "the language model failed (%ld%s%s)", status, sep, ident);
        return VAP_EUNAVAIL;
    }
    if (status == 401 || status == 403) {
        snprintf(msg, msg_size, "the language model refused the API key (%ld%s%s)", status, sep,
                 ident);
        return VAP_EUNAVAIL;
    }
    if (status == 404) {
        snprintf(msg, msg_size, "the language model endpoint or model was not found (404%s%s)",
                 sep, ident);
        return VAP_EUNAVAIL;
    }
    snprintf(msg, msg_size, "the language model rejected the request (%ld%s%s)", status, sep,
             ident);
    return VAP_EPROTO;
}

int llm_stream_run(struct llm_http *h, const char *url, const char *const *headers,
                   const char *body, sse_event_fn on_event, struct llm_stream *st,
                   const struct llm_stream_timing *t)
{
    struct llm_http_resp *resp = malloc(sizeof(*resp));
    struct llm_http_req req;
    struct run_ctx ctx = {NULL, st};
    char msg[160], ident[64];
    int rv = 0;

    if (!resp) {
        snprintf(st->res->error, sizeof(st->res->error), "out of memory");
        return VAP_ENOMEM;
    }
    memset(&req, 0, sizeof(req));
    req.url = url;
    req.headers = headers;
    req.body = body;
    req.deadline_ms = t->start_ms + t->timeout_ms;
    req.first_deadline_ms = t->start_ms + t->first_token_ms;
    if (req.first_deadline_ms > req.deadline_ms)
        req.first_deadline_ms = req.deadline_ms;
    req.first_seen = &st->first_seen;
    req.cancel = st->cancel;
    req.on_data = feed_sse;
    req.user = &ctx;

    for (int attempt = 0; attempt < 2; attempt++) {
        int64_t wait;
        ctx.sse = sse_parser_new(LLM_SSE_MAX_LINE, LLM_SSE_MAX_DATA, on_event, st);
        if (!ctx.sse) {
            rv = VAP_ENOMEM;
            snprintf(st->res->error, sizeof(st->res->error), "out of memory");
            break;
        }
        rv = llm_http_post_stream(h, &req, resp, msg, sizeof(msg));
        sse_parser_free(ctx.sse);
        ctx.sse = NULL;
        if (st->fail) {
            rv = st->fail;
            break;
        }
        if (rv == VAP_ECANCELED || st->emit_stopped ||
            (rv == 0 && !st->done && st->cancel && atomic_load(st->cancel))) {
            rv = VAP_ECANCELED;
            break;
        }
        if (rv == VAP_ETIMEDOUT) {
            if (!st->first_seen)
                snprintf(st->res->error, sizeof(st->res->error),
                         "the language model did not start answering within %d ms",
                         t->first_token_ms);
            else
                snprintf(st->res->error, sizeof(st->res->error),
                         "the language model did not finish its reply within %d ms",
                         t->timeout_ms);
            break;
        }
        if (rv != 0) {
            snprintf(st->res->error, sizeof(st->res->error), "%s", msg);
            break;
        }
        if (resp->status < 200 || resp->status > 299) {
            error_ident(resp, ident, sizeof(ident));
            rv = status_error(resp->status, ident, st->res->error, sizeof(st->res->error));
            wait = resp->retry_after_s < 0 ? 250 : (int64_t)resp->retry_after_s * 1000;
            vap_warn(NULL, "llm request refused engine=%s status=%ld error_type=%s retry_after=%d",
                     st->engine, resp->status, ident[0] ? ident : "-", resp->retry_after_s);
            if (attempt == 0 &&
                (resp->status == 429 || resp->status == 503 || resp->status == 529) &&
                wait <= 1000 && vap_now_ms() + wait + 500 < req.first_deadline_ms) {
                if (llm_sleep_cancellable(wait, st->cancel)) {
                    rv = VAP_ECANCELED;
                    break;
                }
                st->res->error[0] = '\0';
                continue;
            }
            break;
        }
        if (!st->done) {
            snprintf(st->res->error, sizeof(st->res->error),
                     "the language model closed the stream mid-reply");
            rv = VAP_EPROTO;
            break;
        }
        rv = 0;
        break;
    }
    if (rv == VAP_ECANCELED)
        st->res->error[0] = '\0';
    free(resp);
    return rv;
}

void llm_engine_state_free(void *state)
{
    struct llm_engine_state *e = state;
    if (!e)
        return;
    if (e->auth_header) {
        memset(e->auth_header, 0, strlen(e->auth_header));
        free(e->auth_header);
    }
    llm_share_free(e->share);
    free(e->url);
    free(e->model);
    free(e->system);
    free(e);
}
