/*
 * Tests common/prometheus.c: series are found again by name and labels, counters and
 * histograms render in the Prometheus text format (cumulative buckets, +Inf = count,
 * sum), series of one name share one HELP/TYPE, gauges are read at render time and an
 * unregistered gauge is no longer called, and the HTTP endpoint serves /metrics.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prometheus.h"

static int count_of(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_counters_are_found_again_and_render(void **state)
{
    struct vap_counter *a, *b, *c;
    char *text;
    (void)state;
    a = vap_counter("t_requests_total", "Requests.", "method=\"x\"");
    b = vap_counter("t_requests_total", "Requests.", "method=\"x\"");
    c = vap_counter("t_requests_total", "Requests.", "method=\"y\"");
    assert_non_null(a);
    assert_ptr_equal(a, b);
    assert_ptr_not_equal(a, c);
    vap_counter_add(a, 2);
    vap_counter_add(b, 3);
    vap_counter_add(c, 1);
    text = vap_metrics_render(NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, "t_requests_total{method=\"x\"} 5\n"));
    assert_non_null(strstr(text, "t_requests_total{method=\"y\"} 1\n"));
    assert_int_equal(count_of(text, "# TYPE t_requests_total counter\n"), 1);
    /* A name keeps its kind: asking for a histogram of a counter's name fails. */
    assert_null(vap_histogram("t_requests_total", "Requests.", "method=\"x\""));
    free(text);
}

static void test_histogram_buckets_are_cumulative(void **state)
{
    struct vap_histogram *h = vap_histogram("t_seconds", "Latency.", "");
    char *text;
    (void)state;
    vap_histogram_observe(h, 0.0005); /* le 0.001 */
    vap_histogram_observe(h, 0.003);  /* le 0.005 */
    vap_histogram_observe(h, 100);    /* only +Inf */
    text = vap_metrics_render(NULL);
    assert_non_null(strstr(text, "# TYPE t_seconds histogram\n"));
    assert_non_null(strstr(text, "t_seconds_bucket{le=\"0.001\"} 1\n"));
    assert_non_null(strstr(text, "t_seconds_bucket{le=\"0.0025\"} 1\n"));
    assert_non_null(strstr(text, "t_seconds_bucket{le=\"0.005\"} 2\n"));
    assert_non_null(strstr(text, "t_seconds_bucket{le=\"30\"} 2\n"));
    assert_non_null(strstr(text, "t_seconds_bucket{le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(text, "t_seconds_count 3\n"));
    assert_non_null(strstr(text, "t_seconds_sum 100.0035"));
    free(text);
}

static int calls;
static double forty_two(void *user)
{
    calls++;
    return *(double *)user;
}

static void test_gauges_are_read_at_render_and_can_be_removed(void **state)
{
    static double v = 42;
    char *text;
    (void)state;
    assert_int_equal(vap_gauge("t_open", "Open things.", "pool=\"p\"", forty_two, &v), 0);
    text = vap_metrics_render(NULL);
    assert_non_null(strstr(text, "t_open{pool=\"p\"} 42\n"));
    free(text);
    v = 7;
    text = vap_metrics_render(NULL);
    assert_non_null(strstr(text, "t_open{pool=\"p\"} 7\n"));
    free(text);
    assert_int_equal(vap_gauge("t_open", "Open things.", "pool=\"p\"", NULL, NULL), 0);
    calls = 0;
    text = vap_metrics_render(NULL);
    assert_int_equal(calls, 0);
    assert_non_null(strstr(text, "t_open{pool=\"p\"} 0\n"));
    free(text);
}

static void test_endpoint_is_off_unless_configured(void **state)
{
    (void)state;
    unsetenv("METRICS_ADDR");
    unsetenv("VAP_SERVICE_NAME");
    assert_int_equal(vap_metrics_serve_from_env(), 0);
    setenv("METRICS_ADDR", "no-port-here", 1);
    assert_int_not_equal(vap_metrics_serve_from_env(), 0);
    /* The per-service variable wins: METRICS_ADDR_<NAME>. */
    setenv("VAP_SERVICE_NAME", "voice2", 1);
    setenv("METRICS_ADDR_VOICE2", "127.0.0.1:0", 1);
    assert_int_equal(vap_metrics_serve_from_env(), 0);
    vap_metrics_stop();
    unsetenv("METRICS_ADDR");
    unsetenv("METRICS_ADDR_VOICE2");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counters_are_found_again_and_render),
        cmocka_unit_test(test_histogram_buckets_are_cumulative),
        cmocka_unit_test(test_gauges_are_read_at_render_and_can_be_removed),
        cmocka_unit_test(test_endpoint_is_off_unless_configured),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
