/*
 * Process metrics in Prometheus text format (see prometheus.h). One registry per process:
 * a list of series under a mutex (taken to find or add a series, and by a scrape to
 * copy the list), each counter or histogram bucket an atomic updated without the lock.
 * Gauge callbacks run under a separate read lock, never under the registry's mutex: a
 * callback takes its owner's locks, and its owner may look series up while holding them.
 * Unregistering a gauge (fn NULL) waits for a scrape in progress.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <civetweb.h>

#include "config.h"
#include "err.h"
#include "log.h"
#include "prometheus.h"

static const double BUCKETS[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                 0.25,  0.5,    1,     2.5,  5,     10,   30};
#define N_BUCKETS (sizeof(BUCKETS) / sizeof(BUCKETS[0]))

enum kind { COUNTER, HISTOGRAM, GAUGE };

struct vap_counter {
    atomic_uint_least64_t value;
};

struct vap_histogram {
    atomic_uint_least64_t buckets[N_BUCKETS]; /* non-cumulative; summed at render */
    atomic_uint_least64_t count;
    atomic_uint_least64_t sum_us;
};

struct series {
    struct series *next;
    enum kind kind;
    char *name, *help, *labels;
    union {
        struct vap_counter counter;
        struct vap_histogram hist;
    } u;
    vap_gauge_fn fn;
    void *user;
};

static struct {
    pthread_mutex_t lock;
    pthread_rwlock_t gauges; /* fn/user of gauges: read while calling, written to change */
    struct series *head, *tail;
    size_t n;
    struct mg_context *http;
} R = {.lock = PTHREAD_MUTEX_INITIALIZER, .gauges = PTHREAD_RWLOCK_INITIALIZER};

/* Finds or adds name{labels}; NULL when out of memory or the name has another kind. */
static struct series *lookup(enum kind kind, const char *name, const char *help,
                             const char *labels)
{
    struct series *s;
    labels = labels ? labels : "";
    pthread_mutex_lock(&R.lock);
    for (s = R.head; s; s = s->next)
        if (strcmp(s->name, name) == 0 && strcmp(s->labels, labels) == 0)
            break;
    if (s && s->kind != kind)
        s = NULL;
    else if (!s && (s = calloc(1, sizeof(*s))) != NULL) {
        s->kind = kind;
        s->name = strdup(name);
        s->help = strdup(help ? help : "");
        s->labels = strdup(labels);
        if (!s->name || !s->help || !s->labels) {
            free(s->name);
            free(s->help);
            free(s->labels);
            free(s);
            s = NULL;
        } else {
            if (R.tail)
                R.tail->next = s;
            else
                R.head = s;
            R.tail = s;
            R.n++;
        }
    }
    pthread_mutex_unlock(&R.lock);
    return s;
}

struct vap_counter *vap_counter(const char *name, const char *help, const char *labels)
{
    struct series *s = lookup(COUNTER, name, help, labels);
    return s ? &s->u.counter : NULL;
}

void vap_counter_add(struct vap_counter *c, uint64_t n)
{
    if (c)
        atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

struct vap_histogram *vap_histogram(const char *name, const char *help, const char *labels)
{
    struct series *s = lookup(HISTOGRAM, name, help, labels);
    return s ? &s->u.hist : NULL;
}

void vap_histogram_observe(struct vap_histogram *h, double seconds)
{
    size_t i = 0;
    if (!h)
        return;
    if (seconds < 0)
        seconds = 0;
    while (i < N_BUCKETS && seconds > BUCKETS[i])
        i++;
    if (i < N_BUCKETS)
        atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (uint64_t)(seconds * 1e6), memory_order_relaxed);
}

int vap_gauge(const char *name, const char *help, const char *labels, vap_gauge_fn fn,
              void *user)
{
    struct series *s = lookup(GAUGE, name, help, labels);
    if (!s)
        return VAP_ENOMEM;
    pthread_rwlock_wrlock(&R.gauges);
    s->fn = fn;
    s->user = user;
    pthread_rwlock_unlock(&R.gauges);
    return 0;
}

/* A growing text buffer; on failure it keeps failing and render returns NULL. */
struct buf {
    char *data;
    size_t len, cap;
    int failed;
};

__attribute__((format(printf, 2, 3))) static void put(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (b->failed)
        return;
    if (!b->data) {
        b->data = malloc(4096);
        b->cap = b->data ? 4096 : 0;
        if (!b->data) {
            b->failed = 1;
            return;
        }
    }
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        {
            size_t cap = (b->cap + (size_t)n + 1) * 2;
            char *more = realloc(b->data, cap);
            if (!more) {
                b->failed = 1;
                return;
            }
            b->data = more;
            b->cap = cap;
        }
    }
}

/* name{labels} or name{labels,extra} or name{extra} or name, then the value (15
 * significant digits: counts stay exact up to 10^15). */
static void put_series(struct buf *b, const char *name, const char *suffix, const char *labels,
                       const char *extra, double value)
{
    const char *sep = labels[0] && extra[0] ? "," : "";
    if (labels[0] || extra[0])
        put(b, "%s%s{%s%s%s} %.15g\n", name, suffix, labels, sep, extra, value);
    else
        put(b, "%s%s %.15g\n", name, suffix, value);
}

static double load(const atomic_uint_least64_t *v)
{
    return (double)atomic_load_explicit(v, memory_order_relaxed);
}

static void render_one(struct buf *b, const struct series *s)
{
    if (s->kind == COUNTER) {
        put_series(b, s->name, "", s->labels, "", load(&s->u.counter.value));
    } else if (s->kind == GAUGE) {
        put_series(b, s->name, "", s->labels, "", s->fn ? s->fn(s->user) : 0.0);
    } else {
        const struct vap_histogram *h = &s->u.hist;
        double cum = 0;
        char le[48];
        for (size_t i = 0; i < N_BUCKETS; i++) {
            cum += load(&h->buckets[i]);
            snprintf(le, sizeof(le), "le=\"%g\"", BUCKETS[i]);
            put_series(b, s->name, "_bucket", s->labels, le, cum);
        }
        put_series(b, s->name, "_bucket", s->labels, "le=\"+Inf\"", load(&h->count));
        put_series(b, s->name, "_sum", s->labels, "", load(&h->sum_us) / 1e6);
        put_series(b, s->name, "_count", s->labels, "", load(&h->count));
    }
}

char *vap_metrics_render(size_t *len)
{
    static const char *TYPES[] = {"counter", "histogram", "gauge"};
    struct buf b = {0};
    struct series **all;
    size_t n = 0;
    put(&b, "%s", "");
    /* Series are never freed or changed but for their values: copy the list, unlock. */
    pthread_mutex_lock(&R.lock);
    all = malloc((R.n + 1) * sizeof(*all));
    for (struct series *s = R.head; all && s; s = s->next)
        all[n++] = s;
    pthread_mutex_unlock(&R.lock);
    if (!all) {
        free(b.data);
        return NULL;
    }
    pthread_rwlock_rdlock(&R.gauges);
    /* Series of one name are written together, under one HELP and TYPE. */
    for (size_t i = 0; i < n; i++) {
        int first = 1;
        for (size_t j = 0; j < i && first; j++)
            if (strcmp(all[j]->name, all[i]->name) == 0)
                first = 0;
        if (!first)
            continue;
        put(&b, "# HELP %s %s\n# TYPE %s %s\n", all[i]->name, all[i]->help, all[i]->name,
            TYPES[all[i]->kind]);
        for (size_t j = i; j < n; j++)
            if (strcmp(all[j]->name, all[i]->name) == 0)
                render_one(&b, all[j]);
    }
    pthread_rwlock_unlock(&R.gauges);
    free(all);
    if (b.failed) {
        free(b.data);
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.data;
}

static int metrics_handler(struct mg_connection *conn, void *cbdata)
{
    size_t len = 0;
    char *text;
    (void)cbdata;
    text = vap_metrics_render(&len);
    if (!text) {
        mg_send_http_error(conn, 500, "%s", "out of memory");
        return 500;
    }
    mg_printf(conn,
              "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
              "Content-Length: %zu\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
              len);
    mg_write(conn, text, len);
    free(text);
    return 200;
}

static int not_found(struct mg_connection *conn, void *cbdata)
{
    (void)cbdata;
    mg_send_http_error(conn, 404, "%s", "only /metrics here");
    return 404;
}

int vap_metrics_serve_from_env(void)
{
    const char *addr = vap_config_getenv("METRICS_ADDR");
    char port[80];
    const char *options[] = {"listening_ports", port, "num_threads", "2",
                             "request_timeout_ms", "5000", NULL};
    struct mg_callbacks cb;
    struct mg_server_port ports[1];

    if (!addr)
        return 0;
    if (strlen(addr) >= sizeof(port) || !strchr(addr, ':')) {
        vap_error(NULL, "METRICS_ADDR must be host:port, got \"%s\"", addr);
        return VAP_EINVAL;
    }
    snprintf(port, sizeof(port), "%s", addr);
    memset(&cb, 0, sizeof(cb));
    mg_init_library(0);
    R.http = mg_start(&cb, NULL, options);
    if (!R.http) {
        vap_error(NULL, "metrics endpoint cannot listen addr=%s", addr);
        return VAP_EUNAVAIL;
    }
    mg_set_request_handler(R.http, "/metrics", metrics_handler, NULL);
    mg_set_request_handler(R.http, "/", not_found, NULL);
    if (mg_get_server_ports(R.http, 1, ports) == 1)
        vap_info(NULL, "metrics at http://%s/metrics (port %d)", addr, ports[0].port);
    return 0;
}

void vap_metrics_stop(void)
{
    if (R.http) {
        mg_stop(R.http);
        R.http = NULL;
        mg_exit_library();
    }
}
