/*
 * JSON-lines logger (see log.h). The formatted message is JSON-escaped into a stack
 * buffer; lines longer than the buffer are cut and marked, never split.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "clock.h"
#include "err.h"

#define LOG_LINE_MAX 4096

static char log_service[64] = "vap";
static enum vap_log_level log_min = VAP_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void vap_log_init(const char *service, enum vap_log_level min_level)
{
    snprintf(log_service, sizeof(log_service), "%s", service);
    log_min = min_level;
}

int vap_log_parse_level(const char *text, enum vap_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(text, level_names[i]) == 0) {
            *out = (enum vap_log_level)i;
            return 0;
        }
    }
    if (strcasecmp(text, "warning") == 0) {
        *out = VAP_LOG_WARN;
        return 0;
    }
    return VAP_EINVAL;
}

int vap_log_enabled(enum vap_log_level level)
{
    return level >= log_min;
}

/* Appends src JSON-escaped to buf at *pos, stopping short of end. */
static void append_escaped(char *buf, size_t *pos, size_t end, const char *src)
{
    static const char hex[] = "0123456789abcdef";
    for (const unsigned char *p = (const unsigned char *)src; *p && *pos + 6 < end; p++) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            buf[(*pos)++] = '\\';
            buf[(*pos)++] = (char)c;
        } else if (c == '\n') {
            buf[(*pos)++] = '\\';
            buf[(*pos)++] = 'n';
        } else if (c < 0x20) {
            memcpy(buf + *pos, "\\u00", 4);
            *pos += 4;
            buf[(*pos)++] = hex[c >> 4];
            buf[(*pos)++] = hex[c & 15];
        } else {
            buf[(*pos)++] = (char)c;
        }
    }
}

static void append_raw(char *buf, size_t *pos, size_t end, const char *src)
{
    size_t n = strlen(src);
    if (*pos + n >= end)
        n = end - *pos - 1;
    memcpy(buf + *pos, src, n);
    *pos += n;
}

void vap_log(enum vap_log_level level, const char *request_id, const char *fmt, ...)
{
    char msg[LOG_LINE_MAX / 2];
    char line[LOG_LINE_MAX];
    char ts[40];
    size_t pos = 0;
    const size_t end = sizeof(line) - 2; /* room for "}\n" */
    va_list ap;

    if (level < log_min)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (vap_format_iso8601(vap_wall_ms(), 1, ts, sizeof(ts)) != 0)
        ts[0] = '\0';

    append_raw(line, &pos, end, "{\"ts\":\"");
    append_raw(line, &pos, end, ts);
    append_raw(line, &pos, end, "\",\"level\":\"");
    append_raw(line, &pos, end, level_names[level]);
    append_raw(line, &pos, end, "\",\"service\":\"");
    append_escaped(line, &pos, end, log_service);
    if (request_id && request_id[0]) {
        append_raw(line, &pos, end, "\",\"request_id\":\"");
        append_escaped(line, &pos, end, request_id);
    }
    append_raw(line, &pos, end, "\",\"msg\":\"");
    append_escaped(line, &pos, end - 1, msg);
    line[pos++] = '"';
    line[pos++] = '}';
    line[pos++] = '\n';
    /* One write per line keeps lines from different threads whole. */
    ssize_t w = write(STDERR_FILENO, line, pos);
    (void)w;
}
