/*
 * The end of a run: per-session results and latency percentiles, as a table for people
 * or as one JSON line (--json) for scripts and the voice benchmark. Percentiles are
 * nearest-rank (the p-th percentile is a value that was measured, never interpolated),
 * which is what a handful of sessions can honestly support.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "talk.h"

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int64_t talk_percentile(const int64_t *v, size_t n, double p)
{
    int64_t *sorted, out;
    size_t rank;
    if (n == 0)
        return -1;
    sorted = malloc(n * sizeof(*sorted));
    if (!sorted)
        return -1;
    memcpy(sorted, v, n * sizeof(*sorted));
    qsort(sorted, n, sizeof(*sorted), cmp_i64);
    rank = (size_t)ceil(p / 100.0 * (double)n);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    out = sorted[rank - 1];
    free(sorted);
    return out;
}

static const char *status_name(enum talk_status st)
{
    switch (st) {
    case TALK_OK:
        return "ok";
    case TALK_REFUSED:
        return "refused";
    case TALK_USAGE:
        return "usage";
    default:
        return "failed";
    }
}

static int64_t mean(const int64_t *v, int n)
{
    int64_t sum = 0;
    if (n == 0)
        return -1;
    for (int i = 0; i < n; i++)
        sum += v[i];
    return sum / n;
}

/* All sessions' values of one measure, gathered. Caller frees; *n gets the count. */
static int64_t *gather(const struct talk_session *s, int count, bool v2v, size_t *n)
{
    int64_t *all = malloc(sizeof(int64_t) * TALK_MAX_TURNS * (size_t)(count ? count : 1));
    *n = 0;
    if (!all)
        return NULL;
    for (int i = 0; i < count; i++) {
        const struct talk_result *r = &s[i].res;
        int k = v2v ? r->n_v2v : r->n_first;
        memcpy(all + *n, v2v ? r->v2v_ms : r->first_audio_ms, sizeof(int64_t) * (size_t)k);
        *n += (size_t)k;
    }
    return all;
}

static json_t *percentiles_json(const int64_t *v, size_t n)
{
    if (n == 0)
        return json_pack("{s:i}", "n", 0);
    return json_pack(
        "{s:I, s:I, s:I, s:I}", "n", (json_int_t)n, "p50", (json_int_t)talk_percentile(v, n, 50),
        "p95", (json_int_t)talk_percentile(v, n, 95), "p99", (json_int_t)talk_percentile(v, n, 99));
}

static void print_json(const struct talk_session *s, int count, const int64_t *v2v, size_t n_v2v,
                       const int64_t *first, size_t n_first, const int by_status[4])
{
    json_t *per = json_array(), *doc;
    char *text;
    int turns = 0;
    for (int i = 0; i < count; i++) {
        const struct talk_result *r = &s[i].res;
        turns += r->turns;
        json_array_append_new(
            per,
            json_pack("{s:i, s:s, s:i, s:i, s:I, s:I, s:s}", "session", s[i].who.index, "status",
                      status_name(r->status), "turns", r->turns, "close_code", r->close_code,
                      "voice_to_voice_ms", (json_int_t)mean(r->v2v_ms, r->n_v2v), "first_audio_ms",
                      (json_int_t)mean(r->first_audio_ms, r->n_first), "message", r->message));
    }
    doc = json_pack("{s:{s:i, s:i, s:i, s:i, s:i, s:o, s:o, s:o}}", "summary", "sessions", count,
                    "ok", by_status[TALK_OK], "refused", by_status[TALK_REFUSED], "failed",
                    by_status[TALK_FAILED], "turns", turns, "voice_to_voice_ms",
                    percentiles_json(v2v, n_v2v), "first_audio_ms",
                    percentiles_json(first, n_first), "per_session", per);
    text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    if (text)
        talk_say_json(text);
    free(text);
    json_decref(doc);
}

static void print_line(const char *label, const int64_t *v, size_t n, const char *what)
{
    if (n == 0) {
        printf("%-18s n=0  (%s)\n", label, what);
        return;
    }
    printf("%-18s n=%-3zu p50=%-6lld p95=%-6lld p99=%-6lld (%s)\n", label, n,
           (long long)talk_percentile(v, n, 50), (long long)talk_percentile(v, n, 95),
           (long long)talk_percentile(v, n, 99), what);
}

void talk_print_summary(const struct talk_options *o, const struct talk_session *s, int count)
{
    size_t n_v2v = 0, n_first = 0;
    int64_t *v2v = gather(s, count, true, &n_v2v), *first = gather(s, count, false, &n_first);
    int by_status[4] = {0, 0, 0, 0};

    for (int i = 0; i < count; i++)
        by_status[s[i].res.status]++;
    if (!v2v || !first)
        goto out;
    if (o->json) {
        print_json(s, count, v2v, n_v2v, first, n_first, by_status);
        goto out;
    }
    if (count == 1) {
        const struct talk_result *r = &s[0].res;
        printf("result: %s, %d turn(s)", status_name(r->status), r->turns);
        const char *avg = r->n_first > 1 || r->n_v2v > 1 ? "mean " : "";
        if (r->n_v2v)
            printf(", %svoice-to-voice %lld ms", avg, (long long)mean(r->v2v_ms, r->n_v2v));
        if (r->n_first)
            printf(", %sfirst agent audio %lld ms after the end of your turn", avg,
                   (long long)mean(r->first_audio_ms, r->n_first));
        printf("\n");
        goto out;
    }
    printf("\nsession  status   turns  v2v_ms  first_audio_ms  note\n");
    for (int i = 0; i < count; i++) {
        const struct talk_result *r = &s[i].res;
        char a[24] = "-", b[24] = "-";
        if (r->n_v2v)
            snprintf(a, sizeof(a), "%lld", (long long)mean(r->v2v_ms, r->n_v2v));
        if (r->n_first)
            snprintf(b, sizeof(b), "%lld", (long long)mean(r->first_audio_ms, r->n_first));
        printf("%7d  %-7s  %5d  %6s  %14s  %s\n", s[i].who.index, status_name(r->status), r->turns,
               a, b, r->message);
    }
    printf("sessions: %d ok, %d refused, %d failed (of %d)\n", by_status[TALK_OK],
           by_status[TALK_REFUSED], by_status[TALK_FAILED], count);
    print_line("voice_to_voice_ms", v2v, n_v2v,
               o->protocol == TALK_TWILIO ? "no metrics in the Twilio protocol"
                                          : "server's metrics, per turn");
    print_line("first_audio_ms", first, n_first,
               "client: end of speech or text sent -> first agent audio");
out:
    fflush(stdout);
    free(v2v);
    free(first);
}
