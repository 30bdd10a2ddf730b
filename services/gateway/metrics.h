/*
 * Request metrics in Prometheus text format: a counter of requests by route, method
 * and status, and a latency histogram by route and method. Routes are fixed at start
 * (the router's table), so recording is a few relaxed atomic adds and never allocates.
 */
#ifndef VAP_GW_METRICS_H
#define VAP_GW_METRICS_H

#include <stddef.h>

struct gw_metrics;

struct gw_metric_route {
    const char *method;
    const char *route;
};

/* routes must outlive the metrics. */
int gw_metrics_create(struct gw_metrics **out, const struct gw_metric_route *routes, int n);
void gw_metrics_destroy(struct gw_metrics *m);

/* Records one request of route index idx. Thread-safe, lock-free. */
void gw_metrics_observe(struct gw_metrics *m, int idx, int status, double seconds);

/* Adjusts the in-flight gauge by delta. */
void gw_metrics_in_flight(struct gw_metrics *m, int delta);

/* Requests being handled right now. */
int gw_metrics_in_flight_now(struct gw_metrics *m);

/*
 * Renders everything, plus the extra text (other gauges, may be NULL), as a heap
 * string the caller frees. Returns NULL when out of memory.
 */
char *gw_metrics_render(struct gw_metrics *m, const char *extra, size_t *len);

#endif
