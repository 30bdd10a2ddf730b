/*
 * vap-talk's output: human lines on stdout as things happen ("[1.23s] you: ..."), JSON
 * lines instead with --json, warnings and errors on stderr. Several sessions print from
 * several threads, so every line is written whole under one lock.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "talk.h"

static pthread_mutex_t say_lock = PTHREAD_MUTEX_INITIALIZER;
static bool say_json, say_quiet, say_many;

void talk_say_init(const struct talk_options *o)
{
    say_json = o->json;
    say_quiet = o->quiet;
    say_many = o->sessions > 1;
}

double talk_elapsed(const struct talk_who *who)
{
    return (double)(vap_now_ms() - who->t0_ms) / 1000.0;
}

static void prefix(FILE *f, const struct talk_who *who)
{
    if (!who)
        return;
    if (say_many)
        fprintf(f, "[#%d %.2fs] ", who->index, talk_elapsed(who));
    else
        fprintf(f, "[%.2fs] ", talk_elapsed(who));
}

void talk_say(const struct talk_who *who, const char *fmt, ...)
{
    va_list ap;
    if (say_json || say_quiet)
        return;
    pthread_mutex_lock(&say_lock);
    prefix(stdout, who);
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
    pthread_mutex_unlock(&say_lock);
}

void talk_warn(const struct talk_who *who, const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&say_lock);
    fputs("vap-talk: ", stderr);
    prefix(stderr, who);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    pthread_mutex_unlock(&say_lock);
}

void talk_say_event(const struct talk_who *who, const char *raw, size_t len)
{
    char *compact = NULL;
    if (!say_json)
        return;
    /* As received when it is one line (the gateway's always are), else made one. */
    if (memchr(raw, '\n', len) || memchr(raw, '\r', len)) {
        json_t *ev = json_loadb(raw, len, 0, NULL);
        compact = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
        json_decref(ev);
        if (!compact)
            return;
        raw = compact;
        len = strlen(compact);
    }
    pthread_mutex_lock(&say_lock);
    fprintf(stdout, "{\"t\":%.3f,\"session\":%d,\"event\":%.*s}\n", talk_elapsed(who), who->index,
            (int)len, raw);
    fflush(stdout);
    pthread_mutex_unlock(&say_lock);
    free(compact);
}

void talk_say_json(const char *line)
{
    if (!say_json)
        return;
    pthread_mutex_lock(&say_lock);
    fprintf(stdout, "%s\n", line);
    fflush(stdout);
    pthread_mutex_unlock(&say_lock);
}

void talk_fail(struct talk_result *r, enum talk_status st, const char *fmt, ...)
{
    va_list ap;
    if (r->status != TALK_OK)
        return;
    r->status = st;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof(r->message), fmt, ap);
    va_end(ap);
}
