/*
 * vap-talk's two REST calls, over libcurl: log in with a one-time code
 * (POST /api/auth/login/otp) and take an access grant for an agent
 * (POST /api/agents/access), as API.md describes them. A refusal from the server (4xx)
 * is told apart from a failure to reach it (network, 5xx), because the first is the
 * visitor's problem (exit 3) and the second the operator's (exit 1). Codes and tokens are
 * never printed.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "talk.h"

#define HTTP_BODY_MAX (64 * 1024)
#define HTTP_TIMEOUT_MS 15000L

struct body {
    char data[HTTP_BODY_MAX + 1];
    size_t len;
    bool too_big;
};

int talk_http_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : VAP_EINTERNAL;
}

void talk_http_cleanup(void)
{
    curl_global_cleanup();
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct body *b = arg;
    size_t n = size * nmemb;
    if (n > HTTP_BODY_MAX - b->len) {
        b->too_big = true;
        return 0; /* makes curl fail the transfer */
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* The server's "detail" in words: a string, or the first validation message. */
static void detail_of(json_t *doc, char *out, size_t size)
{
    json_t *d = json_object_get(doc, "detail");
    if (json_is_string(d)) {
        snprintf(out, size, "%s", json_string_value(d));
    } else if (json_is_array(d) && json_is_object(json_array_get(d, 0))) {
        const char *m = json_string_value(json_object_get(json_array_get(d, 0), "msg"));
        snprintf(out, size, "%s", m ? m : "validation error");
    } else {
        snprintf(out, size, "no detail");
    }
}

/*
 * POSTs body (JSON) to base + path, with token when not NULL. Fills *status and *doc
 * (the parsed reply, owned by the caller; NULL if it is not JSON). Returns TALK_OK when
 * the server answered at all, else TALK_FAILED with msg set.
 */
static enum talk_status post_json(const char *base, const char *path, const char *token,
                                  const char *body_text, long *status, json_t **doc, char *msg,
                                  size_t msg_size)
{
    enum talk_status st = TALK_FAILED;
    struct curl_slist *headers = NULL, *h;
    struct body *b = calloc(1, sizeof(*b));
    char url[2048], auth[2200];
    CURL *curl = NULL;
    CURLcode rc;

    *doc = NULL;
    *status = 0;
    if (!b) {
        snprintf(msg, msg_size, "out of memory");
        return TALK_FAILED;
    }
    if (snprintf(url, sizeof(url), "%s%s", base, path) >= (int)sizeof(url)) {
        snprintf(msg, msg_size, "the base URL is too long");
        goto out;
    }
    curl = curl_easy_init();
    if (!curl) {
        snprintf(msg, msg_size, "libcurl could not start");
        goto out;
    }
    h = curl_slist_append(headers, "Content-Type: application/json");
    if (!h)
        goto out;
    headers = h;
    if (token) {
        if (snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token) >= (int)sizeof(auth))
            goto out;
        h = curl_slist_append(headers, auth);
        if (!h)
            goto out;
        headers = h;
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body_text);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, HTTP_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "vap-talk/" VAP_TALK_VERSION);
    rc = curl_easy_perform(curl);
    if (rc != CURLE_OK) {
        snprintf(msg, msg_size, "POST %s failed: %s", path,
                 b->too_big ? "reply too large" : curl_easy_strerror(rc));
        goto out;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
    *doc = json_loadb(b->data, b->len, 0, NULL);
    st = TALK_OK;
out:
    if (st != TALK_OK && !msg[0])
        snprintf(msg, msg_size, "POST %s: out of memory", path);
    curl_slist_free_all(headers);
    if (curl)
        curl_easy_cleanup(curl);
    free(b);
    return st;
}

/* Maps a non-200 answer to refused (4xx: the server said no) or failed (anything else). */
static enum talk_status refusal(const char *what, long status, json_t *doc, char *msg,
                                size_t msg_size)
{
    char detail[200];
    detail_of(doc, detail, sizeof(detail));
    snprintf(msg, msg_size, "%s refused: HTTP %ld: %s", what, status, detail);
    if (status >= 400 && status < 500)
        return TALK_REFUSED;
    return TALK_FAILED;
}

enum talk_status talk_http_login(const char *base, const char *code, char *token, size_t size,
                                 char *msg, size_t msg_size)
{
    json_t *req = json_pack("{s:s}", "otp_code", code), *doc = NULL;
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    enum talk_status st = TALK_FAILED;
    const char *tok;
    long status;

    msg[0] = '\0';
    token[0] = '\0';
    if (!body) {
        snprintf(msg, msg_size, "out of memory");
        goto out;
    }
    st = post_json(base, "/api/auth/login/otp", NULL, body, &status, &doc, msg, msg_size);
    if (st != TALK_OK)
        goto out;
    if (status != 200) {
        st = refusal("login", status, doc, msg, msg_size);
        goto out;
    }
    tok = json_string_value(json_object_get(doc, "access_token"));
    if (!tok || strlen(tok) >= size) {
        snprintf(msg, msg_size, "login: the reply has no usable access_token");
        st = TALK_FAILED;
        goto out;
    }
    memcpy(token, tok, strlen(tok) + 1);
out:
    json_decref(doc);
    free(body);
    json_decref(req);
    return st;
}

enum talk_status talk_http_access(const char *base, const char *token, const char *agent, char *msg,
                                  size_t msg_size)
{
    json_t *req = json_pack("{s:s}", "agent_type", agent), *doc = NULL;
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    enum talk_status st = TALK_FAILED;
    long status;

    msg[0] = '\0';
    if (!body) {
        snprintf(msg, msg_size, "out of memory");
        goto out;
    }
    st = post_json(base, "/api/agents/access", token, body, &status, &doc, msg, msg_size);
    if (st != TALK_OK)
        goto out;
    if (status != 200)
        st = refusal("access", status, doc, msg, msg_size);
out:
    json_decref(doc);
    free(body);
    json_decref(req);
    return st;
}
