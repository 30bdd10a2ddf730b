/* Prometheus counters and histograms for gateway requests (see metrics.h). */
#include "metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "prometheus.h"

static const int statuses[] = {101, 200, 201, 204, 301, 304, 400, 401, 403, 404, 405, 409,
                               413, 415, 422, 429, 500, 501, 503, 504};
#define N_STATUS ((int)(sizeof(statuses) / sizeof(statuses[0])) + 1) /* + other */

static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define N_BOUNDS ((int)(sizeof(bounds) / sizeof(bounds[0])))

struct route_stats {
    atomic_uint_fast64_t by_status[N_STATUS];
    atomic_uint_fast64_t buckets[N_BOUNDS + 1]; /* last: +Inf */
    atomic_uint_fast64_t sum_us;
};

struct gw_metrics {
    const struct gw_metric_route *routes;
    int n;
    struct route_stats *stats;
    atomic_int in_flight;
};

int gw_metrics_create(struct gw_metrics **out, const struct gw_metric_route *routes, int n)
{
    struct gw_metrics *m = calloc(1, sizeof(*m));
    if (!m)
        return VAP_ENOMEM;
    m->stats = calloc((size_t)n, sizeof(*m->stats));
    if (!m->stats) {
        free(m);
        return VAP_ENOMEM;
    }
    m->routes = routes;
    m->n = n;
    *out = m;
    return 0;
}

void gw_metrics_destroy(struct gw_metrics *m)
{
    if (!m)
        return;
    free(m->stats);
    free(m);
}

void gw_metrics_observe(struct gw_metrics *m, int idx, int status, double seconds)
{
    struct route_stats *s;
    int si = N_STATUS - 1, b = N_BOUNDS;
    if (idx < 0 || idx >= m->n)
        return;
    s = &m->stats[idx];
    for (int i = 0; i < N_STATUS - 1; i++)
        if (statuses[i] == status) {
            si = i;
            break;
        }
    for (int i = 0; i < N_BOUNDS; i++)
        if (seconds <= bounds[i]) {
            b = i;
            break;
        }
    atomic_fetch_add_explicit(&s->by_status[si], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->sum_us, (uint64_t)(seconds * 1e6), memory_order_relaxed);
}

void gw_metrics_in_flight(struct gw_metrics *m, int delta)
{
    atomic_fetch_add_explicit(&m->in_flight, delta, memory_order_relaxed);
}

int gw_metrics_in_flight_now(struct gw_metrics *m)
{
    return atomic_load_explicit(&m->in_flight, memory_order_relaxed);
}

struct out_buf {
    char *data;
    size_t len, cap;
    int failed;
};

static void outf(struct out_buf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void outf(struct out_buf *o, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (o->failed)
        return;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(o->data + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = 1;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        char *bigger = realloc(o->data, o->cap * 2 + (size_t)n);
        if (!bigger) {
            o->failed = 1;
            return;
        }
        o->data = bigger;
        o->cap = o->cap * 2 + (size_t)n;
    }
}

char *gw_metrics_render(struct gw_metrics *m, const char *extra, size_t *len)
{
    struct out_buf o = {malloc(16384), 0, 16384, 0};
    if (!o.data)
        return NULL;
    outf(&o, "# HELP vap_http_requests_total HTTP requests by route, method and status.\n"
             "# TYPE vap_http_requests_total counter\n");
    for (int r = 0; r < m->n; r++)
        for (int i = 0; i < N_STATUS; i++) {
            uint64_t v = atomic_load_explicit(&m->stats[r].by_status[i], memory_order_relaxed);
            if (v == 0)
                continue;
            if (i < N_STATUS - 1)
                outf(&o, "vap_http_requests_total{route=\"%s\",method=\"%s\",status=\"%d\"} %llu\n",
                     m->routes[r].route, m->routes[r].method, statuses[i],
                     (unsigned long long)v);
            else
                outf(&o, "vap_http_requests_total{route=\"%s\",method=\"%s\",status=\"other\"} %llu\n",
                     m->routes[r].route, m->routes[r].method, (unsigned long long)v);
        }
    outf(&o, "# HELP vap_http_request_duration_seconds HTTP request latency.\n"
             "# TYPE vap_http_request_duration_seconds histogram\n");
    for (int r = 0; r < m->n; r++) {
        uint64_t cum = 0;
        for (int b = 0; b <= N_BOUNDS; b++)
            cum += atomic_load_explicit(&m->stats[r].buckets[b], memory_order_relaxed);
        if (cum == 0)
            continue;
        cum = 0;
        for (int b = 0; b <= N_BOUNDS; b++) {
            cum += atomic_load_explicit(&m->stats[r].buckets[b], memory_order_relaxed);
            if (b < N_BOUNDS)
                outf(&o,
                     "vap_http_request_duration_seconds_bucket{route=\"%s\",method=\"%s\",le=\"%g\"} %llu\n",
                     m->routes[r].route, m->routes[r].method, bounds[b],
                     (unsigned long long)cum);
            else
                outf(&o,
                     "vap_http_request_duration_seconds_bucket{route=\"%s\",method=\"%s\",le=\"+Inf\"} %llu\n",
                     m->routes[r].route, m->routes[r].method, (unsigned long long)cum);
        }
        outf(&o, "vap_http_request_duration_seconds_sum{route=\"%s\",method=\"%s\"} %.6f\n",
             m->routes[r].route, m->routes[r].method,
             (double)atomic_load_explicit(&m->stats[r].sum_us, memory_order_relaxed) / 1e6);
        outf(&o, "vap_http_request_duration_seconds_count{route=\"%s\",method=\"%s\"} %llu\n",
             m->routes[r].route, m->routes[r].method, (unsigned long long)cum);
    }
    outf(&o, "# HELP vap_http_in_flight Requests being handled now.\n"
             "# TYPE vap_http_in_flight gauge\nvap_http_in_flight %d\n",
         atomic_load(&m->in_flight));
    if (extra)
        outf(&o, "%s", extra);
    {
        /* The shared registry: RPC calls to auth and usage, from common/. */
        size_t n = 0;
        char *shared = vap_metrics_render(&n);
        if (shared)
            outf(&o, "%s", shared);
        else
            o.failed = 1;
        free(shared);
    }
    if (o.failed) {
        free(o.data);
        return NULL;
    }
    *len = o.len;
    return o.data;
}
