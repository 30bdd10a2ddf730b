/* Strict JSON field readers with FastAPI-shaped validation errors (see json.h). */
#include "json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

void vap_verrors_add(struct vap_verrors *v, const char *field, const char *msg,
                     const char *type)
{
    vap_verrors_add_at(v, "body", field, msg, type);
}

void vap_verrors_add_at(struct vap_verrors *v, const char *where, const char *field,
                        const char *msg, const char *type)
{
    json_t *loc;
    if (!v->list)
        v->list = json_array();
    if (!v->list)
        return;
    loc = field ? json_pack("[s,s]", where, field) : json_pack("[s]", where);
    json_array_append_new(v->list, json_pack("{s:o, s:s, s:s}", "loc", loc, "msg", msg,
                                             "type", type));
}

int vap_verrors_any(const struct vap_verrors *v)
{
    return v->list != NULL && json_array_size(v->list) > 0;
}

void vap_verrors_clear(struct vap_verrors *v)
{
    json_decref(v->list);
    v->list = NULL;
}

/* Deepest nesting a body may have. jansson parses recursively: a body of a few KB of
 * '[' would otherwise exhaust a civetweb worker's stack. */
#define JSON_MAX_DEPTH 32

/* Whether brackets nest deeper than JSON_MAX_DEPTH (strings skipped). */
static int too_deep(const char *body, size_t len)
{
    int depth = 0, in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char c = body[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > JSON_MAX_DEPTH)
                return 1;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return 0;
}

size_t vap_utf8_length(const char *s, size_t bytes)
{
    size_t n = 0;
    for (size_t i = 0; i < bytes; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            n++;
    return n;
}

size_t vap_utf8_prefix(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n <= max)
        return n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--; /* s[n] continues a character that started before the cut */
    return n;
}

int vap_json_parse_object(const char *body, size_t len, json_t **out, struct vap_verrors *v)
{
    json_error_t jerr;
    json_t *root;
    char msg[200];

    if (len > 0 && too_deep(body, len)) {
        vap_verrors_add(v, NULL, "JSON nested too deeply", "value_error.jsondecode");
        return VAP_EINVAL;
    }
    if (len == 0) {
        vap_verrors_add(v, NULL, "field required", "value_error.missing");
        return VAP_EINVAL;
    }
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(msg, sizeof(msg), "invalid JSON: %s (position %d)", jerr.text,
                 jerr.position);
        vap_verrors_add(v, NULL, msg, "value_error.jsondecode");
        return VAP_EINVAL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        vap_verrors_add(v, NULL, "value is not a valid dict", "type_error.dict");
        return VAP_EINVAL;
    }
    *out = root;
    return 0;
}

static int missing(const char *name, int required, int *present, struct vap_verrors *v)
{
    if (present)
        *present = 0;
    if (!required)
        return 0;
    vap_verrors_add(v, name, "field required", "value_error.missing");
    return VAP_EINVAL;
}

int vap_json_int_field(json_t *obj, const char *name, int64_t min, int64_t max, int required,
                       int64_t *out, int *present, struct vap_verrors *v)
{
    json_t *f = json_object_get(obj, name);
    char msg[96];
    int64_t val;

    if (!f || json_is_null(f))
        return missing(name, required, present, v);
    if (present)
        *present = 1;
    if (!json_is_integer(f)) {
        vap_verrors_add(v, name, "value is not a valid integer", "type_error.integer");
        return VAP_EINVAL;
    }
    val = json_integer_value(f);
    if (val < min || val > max) {
        snprintf(msg, sizeof(msg), "must be between %lld and %lld", (long long)min,
                 (long long)max);
        vap_verrors_add(v, name, msg, "value_error.number.not_in_range");
        return VAP_EINVAL;
    }
    *out = val;
    return 0;
}

int vap_json_string_field(json_t *obj, const char *name, size_t min_len, size_t max_len,
                          int required, const char **out, int *present,
                          struct vap_verrors *v)
{
    json_t *f = json_object_get(obj, name);
    char msg[96];
    size_t len;

    if (!f || json_is_null(f))
        return missing(name, required, present, v);
    if (present)
        *present = 1;
    if (!json_is_string(f)) {
        vap_verrors_add(v, name, "str type expected", "type_error.str");
        return VAP_EINVAL;
    }
    len = json_string_length(f);
    if (strlen(json_string_value(f)) != len) {
        vap_verrors_add(v, name, "must not contain NUL characters", "value_error");
        return VAP_EINVAL;
    }
    len = vap_utf8_length(json_string_value(f), len);
    if (len < min_len || len > max_len) {
        snprintf(msg, sizeof(msg), "length must be between %zu and %zu", min_len, max_len);
        vap_verrors_add(v, name, msg, "value_error.any_str.length");
        return VAP_EINVAL;
    }
    *out = json_string_value(f);
    return 0;
}

int vap_json_bool_field(json_t *obj, const char *name, int required, int *out, int *present,
                        struct vap_verrors *v)
{
    json_t *f = json_object_get(obj, name);
    if (!f || json_is_null(f))
        return missing(name, required, present, v);
    if (present)
        *present = 1;
    if (!json_is_boolean(f)) {
        vap_verrors_add(v, name, "value could not be parsed to a boolean", "type_error.bool");
        return VAP_EINVAL;
    }
    *out = json_is_true(f);
    return 0;
}

int vap_parse_int64(const char *text, int64_t min, int64_t max, int64_t *out)
{
    char *end = NULL;
    long long val;
    if (!text || !*text || *text == ' ' || *text == '+')
        return VAP_EINVAL;
    errno = 0;
    val = strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0' || val < min || val > max)
        return VAP_EINVAL;
    *out = val;
    return 0;
}

char *vap_json_array_dumps(size_t n, json_t *(*item)(size_t i, void *ctx), void *ctx)
{
    json_t *arr = json_array();
    char *text = NULL;
    for (size_t i = 0; arr && i < n; i++) {
        if (json_array_append_new(arr, item(i, ctx)) != 0) { /* NULL item fails too */
            json_decref(arr);
            return NULL;
        }
    }
    if (arr)
        text = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return text;
}

/* Makes room for n more bytes; 0, or -1 with the writer marked failed. */
static int jw_reserve(struct vap_jw *w, size_t n)
{
    if (w->failed)
        return -1;
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap ? w->cap : 1024;
        char *buf;
        while (cap < w->len + n + 1)
            cap *= 2;
        if (!(buf = realloc(w->buf, cap))) {
            w->failed = 1;
            return -1;
        }
        w->buf = buf;
        w->cap = cap;
    }
    return 0;
}

static void jw_put(struct vap_jw *w, const char *text, size_t n)
{
    if (jw_reserve(w, n) == 0) {
        memcpy(w->buf + w->len, text, n);
        w->len += n;
    }
}

void vap_jw_raw(struct vap_jw *w, const char *text)
{
    jw_put(w, text, strlen(text));
}

/* The length of the well-formed UTF-8 sequence (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF) that starts at p, a byte >= 0x80; 0 if there is
 * none. */
static size_t utf8_sequence(const unsigned char *p)
{
    size_t n;
    uint32_t cp;
    if (p[0] >= 0xC2 && p[0] <= 0xDF)
        n = 2, cp = p[0] & 0x1Fu;
    else if (p[0] >= 0xE0 && p[0] <= 0xEF)
        n = 3, cp = p[0] & 0x0Fu;
    else if (p[0] >= 0xF0 && p[0] <= 0xF4)
        n = 4, cp = p[0] & 0x07u;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) /* also stops at the terminating NUL */
            return 0;
        cp = cp << 6 | (p[i] & 0x3Fu);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

void vap_jw_str(struct vap_jw *w, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    jw_put(w, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        size_t run = 0, seq;
        for (;;) {
            if (p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
                run++;
            else if (p[run] >= 0x80 && (seq = utf8_sequence(p + run)) > 0)
                run += seq;
            else
                break;
        }
        if (run) { /* bytes that need no escape, as they are (valid UTF-8 passes through) */
            jw_put(w, (const char *)p, run);
            p += run - 1;
            continue;
        }
        if (*p >= 0x80) { /* not UTF-8: JSON cannot carry it (jansson refuses it too) */
            w->failed = 1;
            return;
        }
        if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char)*p};
            jw_put(w, esc, 2);
        } else {
            char esc[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
            jw_put(w, esc, 6);
        }
    }
    jw_put(w, "\"", 1);
}

void vap_jw_int(struct vap_jw *w, int64_t v)
{
    char digits[24], *p = digits + sizeof(digits);
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    jw_put(w, p, (size_t)(digits + sizeof(digits) - p));
}

void vap_jw_bool(struct vap_jw *w, int v)
{
    if (v)
        jw_put(w, "true", 4);
    else
        jw_put(w, "false", 5);
}

char *vap_jw_finish(struct vap_jw *w, size_t *len)
{
    char *text;
    if (jw_reserve(w, 0) != 0) {
        free(w->buf);
        w->buf = NULL;
        return NULL;
    }
    w->buf[w->len] = '\0';
    text = w->buf;
    if (len)
        *len = w->len;
    w->buf = NULL;
    w->len = w->cap = 0;
    return text;
}
