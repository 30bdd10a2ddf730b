/*
 * Server-sent events parser (see sse.h). It keeps the current line, the current event's
 * name and its data, each with a ceiling; bytes are scanned once and copied in spans.
 * The one subtle case is a CR line end split from its LF across two feeds: skip_lf
 * remembers that the next byte, if it is LF, belongs to the line already ended.
 */
#include "sse.h"

#include "err.h"

#include <stdlib.h>
#include <string.h>

#define SSE_EVENT_NAME_MAX 64

struct sse_parser {
    sse_event_fn fn;
    void *user;
    size_t max_line, max_data;
    char *line;
    size_t line_len, line_cap;
    char *data;
    size_t data_len, data_cap;
    int has_data;
    char event[SSE_EVENT_NAME_MAX + 1];
    int skip_lf;
    int first_line_done; /* a UTF-8 BOM may open the stream, before the first line */
    int stuck;           /* sticky nonzero result */
    size_t events;
};

struct sse_parser *sse_parser_new(size_t max_line, size_t max_data, sse_event_fn fn,
                                  void *user)
{
    struct sse_parser *p;
    if (max_line == 0 || max_data == 0 || !fn)
        return NULL;
    p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->fn = fn;
    p->user = user;
    p->max_line = max_line;
    p->max_data = max_data;
    return p;
}

void sse_parser_free(struct sse_parser *p)
{
    if (!p)
        return;
    free(p->line);
    free(p->data);
    free(p);
}

/* Makes room for need more bytes plus a NUL, within limit; 0 or a VAP_E* code. */
static int reserve(char **buf, size_t *cap, size_t len, size_t need, size_t limit)
{
    size_t want, ncap;
    char *nb;
    if (need > limit || len > limit - need)
        return VAP_ETOOBIG;
    want = len + need + 1;
    if (want <= *cap)
        return 0;
    ncap = *cap ? *cap : 256;
    while (ncap < want)
        ncap *= 2;
    if (ncap > limit + 1)
        ncap = limit + 1;
    nb = realloc(*buf, ncap);
    if (!nb)
        return VAP_ENOMEM;
    *buf = nb;
    *cap = ncap;
    return 0;
}

static int dispatch(struct sse_parser *p)
{
    int rv = 0;
    if (p->has_data) {
        size_t n = p->data_len;
        if (n > 0 && p->data[n - 1] == '\n')
            n--;
        p->data[n] = '\0';
        p->events++;
        rv = p->fn(p->user, p->event[0] ? p->event : "message", p->data, n);
    }
    p->data_len = 0;
    p->has_data = 0;
    p->event[0] = '\0';
    return rv;
}

static int process_line(struct sse_parser *p, const char *line, size_t len)
{
    const char *colon, *value;
    size_t flen, vlen;
    int rv;

    if (!p->first_line_done) {
        p->first_line_done = 1;
        if (len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
            line += 3;
            len -= 3;
        }
    }
    if (len == 0)
        return dispatch(p);
    if (line[0] == ':')
        return 0;
    colon = memchr(line, ':', len);
    flen = colon ? (size_t)(colon - line) : len;
    value = colon ? colon + 1 : line + len;
    vlen = len - (size_t)(value - line);
    if (vlen > 0 && value[0] == ' ') {
        value++;
        vlen--;
    }
    if (flen == 4 && memcmp(line, "data", 4) == 0) {
        rv = reserve(&p->data, &p->data_cap, p->data_len, vlen + 1, p->max_data + 1);
        if (rv != 0)
            return rv;
        memcpy(p->data + p->data_len, value, vlen);
        p->data_len += vlen;
        p->data[p->data_len++] = '\n';
        p->has_data = 1;
    } else if (flen == 5 && memcmp(line, "event", 5) == 0) {
        if (vlen > SSE_EVENT_NAME_MAX)
            return VAP_ETOOBIG;
        memcpy(p->event, value, vlen);
        p->event[vlen] = '\0';
    }
    /* id, retry and unknown fields are ignored. */
    return 0;
}

int sse_feed(struct sse_parser *p, const char *buf, size_t len)
{
    size_t i = 0;
    int rv;

    if (p->stuck)
        return p->stuck;
    while (i < len) {
        size_t start, n;
        if (p->skip_lf) {
            p->skip_lf = 0;
            if (buf[i] == '\n') {
                i++;
                continue;
            }
        }
        start = i;
        while (i < len && buf[i] != '\n' && buf[i] != '\r')
            i++;
        n = i - start;
        if (n > 0) {
            rv = reserve(&p->line, &p->line_cap, p->line_len, n, p->max_line);
            if (rv != 0) {
                p->stuck = rv;
                return rv;
            }
            memcpy(p->line + p->line_len, buf + start, n);
            p->line_len += n;
        }
        if (i == len)
            break;
        if (buf[i] == '\r')
            p->skip_lf = 1;
        i++;
        rv = process_line(p, p->line ? p->line : "", p->line_len);
        p->line_len = 0;
        if (rv != 0) {
            p->stuck = rv;
            return rv;
        }
    }
    return 0;
}

int sse_idle(const struct sse_parser *p)
{
    return p->line_len == 0 && !p->has_data;
}

size_t sse_events(const struct sse_parser *p)
{
    return p->events;
}
