/*
 * A process's Prometheus metrics, shared by every service: counters and latency
 * histograms found (or made) by name and label set, updated with relaxed atomics;
 * gauges read through callbacks at scrape time. vap_metrics_render writes the text
 * exposition format; vap_metrics_serve_from_env serves it over HTTP at /metrics on
 * METRICS_ADDR (per service: METRICS_ADDR_<VAP_SERVICE_NAME>, e.g. METRICS_ADDR_VOICE2,
 * so one supervisor can give each child its own port). The gateway appends the same
 * text to its own /metrics instead.
 *
 * Labels are a preformatted string, e.g. `method="auth.login"` (the caller escapes
 * values; names come from code, not from clients). Look a series up once where the
 * rate is high and keep the pointer: series are never freed.
 */
#ifndef VAP_PROMETHEUS_H
#define VAP_PROMETHEUS_H

#include <stddef.h>
#include <stdint.h>

struct vap_counter;
struct vap_histogram;

/* The series name{labels}, created on first use. NULL only when out of memory. */
struct vap_counter *vap_counter(const char *name, const char *help, const char *labels);
void vap_counter_add(struct vap_counter *c, uint64_t n);

/* Seconds, with buckets from 1 ms to 30 s. */
struct vap_histogram *vap_histogram(const char *name, const char *help, const char *labels);
void vap_histogram_observe(struct vap_histogram *h, double seconds);

/* A gauge whose value fn(user) is read at each scrape (fn must be thread-safe). */
typedef double (*vap_gauge_fn)(void *user);
int vap_gauge(const char *name, const char *help, const char *labels, vap_gauge_fn fn,
              void *user);

/* Everything, as a heap string the caller frees (NULL when out of memory). */
char *vap_metrics_render(size_t *len);

/*
 * Starts the HTTP endpoint when METRICS_ADDR[_<SERVICE>] is set ("host:port"; port 0
 * picks one, logged). Returns 0 (also when not configured) or VAP_EINVAL /
 * VAP_EUNAVAIL when the address cannot be served.
 */
int vap_metrics_serve_from_env(void);
void vap_metrics_stop(void);

#endif
