/* Unit tests for common/rpc_stream.c: framing, the client's pool and retries, deadlines,
 * and the server's stop, with a real server and client in one process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"
#include "err.h"
#include "rpc_stream.h"

/* What the test server does: echo the request back with a prefix, after sleeping
 * delay_ms, or answer nothing when the request is "drop". */
struct echo {
    atomic_int served;
    int delay_ms;
};

static int echo_serve(void *arg, const uint8_t *req, size_t len, int64_t received,
                      uint8_t **out, size_t *out_len)
{
    struct echo *e = arg;
    (void)received;
    atomic_fetch_add(&e->served, 1);
    if (e->delay_ms)
        usleep((useconds_t)e->delay_ms * 1000);
    if (len == 4 && memcmp(req, "drop", 4) == 0)
        return -1;
    *out = malloc(len + 3);
    if (!*out)
        return -1;
    memcpy(*out, "re:", 3);
    memcpy(*out + 3, req, len);
    *out_len = len + 3;
    return 0;
}

static void ipc_path(char *path, size_t size, const char *name)
{
    snprintf(path, size, "/tmp/vap-rpc-stream-test-%d-%s.sock", (int)getpid(), name);
}

static void ipc_url(char *url, size_t size, const char *name)
{
    char path[80];
    ipc_path(path, sizeof(path), name);
    snprintf(url, size, "ipc://%s", path);
}

/* A TCP port nothing listens on right now. */
static int free_port(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

/* One call; returns its code and checks an answer is "re:" + what was sent. */
static int call_text(struct vap_stream_client *c, const char *text, int64_t budget_ms)
{
    uint8_t *reply = NULL;
    size_t len = 0;
    int rv = vap_stream_call(c, (const uint8_t *)text, strlen(text), vap_now_ms() + budget_ms,
                             &reply, &len);
    if (rv == 0) {
        assert_int_equal(len, strlen(text) + 3);
        assert_memory_equal(reply, "re:", 3);
        assert_memory_equal(reply + 3, text, strlen(text));
        free(reply);
    }
    return rv;
}

static void test_tcp_and_ipc_calls_are_answered(void **state)
{
    char tcp[64], ipc[128];
    (void)state;
    snprintf(tcp, sizeof(tcp), "tcp://127.0.0.1:%d", free_port());
    ipc_url(ipc, sizeof(ipc), "basic");
    const char *urls[] = {tcp, ipc};
    for (int i = 0; i < 2; i++) {
        struct echo e = {0};
        struct vap_stream_server *srv = NULL;
        struct vap_stream_client *c = NULL;
        assert_int_equal(vap_stream_server_start(&srv, urls[i], echo_serve, &e), 0);
        assert_int_equal(vap_stream_client_open(&c, urls[i]), 0);
        assert_int_equal(call_text(c, "hello", 2000), 0);
        assert_int_equal(call_text(c, "", 2000), 0); /* an empty body is a frame too */
        assert_int_equal(call_text(c, "again", 2000), 0);
        assert_int_equal(atomic_load(&e.served), 3);
        vap_stream_client_close(c);
        vap_stream_server_stop(srv);
    }
}

static void test_large_frames_cross_whole(void **state)
{
    char url[128];
    struct echo e = {0};
    struct vap_stream_server *srv = NULL;
    struct vap_stream_client *c = NULL;
    size_t n = 1024 * 1024;
    char *big = malloc(n + 1);
    (void)state;
    assert_non_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    big[n] = '\0';
    ipc_url(url, sizeof(url), "large");
    assert_int_equal(vap_stream_server_start(&srv, url, echo_serve, &e), 0);
    assert_int_equal(vap_stream_client_open(&c, url), 0);
    assert_int_equal(call_text(c, big, 5000), 0);
    vap_stream_client_close(c);
    vap_stream_server_stop(srv);
    free(big);
}

struct caller {
    struct vap_stream_client *c;
    int id;
    int calls; /* 0: 200 */
    int failures;
};

static void *caller_thread(void *arg)
{
    struct caller *k = arg;
    for (int i = 0; i < (k->calls ? k->calls : 200); i++) {
        char text[32];
        snprintf(text, sizeof(text), "caller %d call %d", k->id, i);
        if (call_text(k->c, text, 5000) != 0)
            k->failures++;
    }
    return NULL;
}

/* Many threads share one client: every answer goes to the call that asked for it. */
static void test_concurrent_callers_get_their_own_answers(void **state)
{
    char url[128];
    struct echo e = {0};
    struct vap_stream_server *srv = NULL;
    struct vap_stream_client *c = NULL;
    pthread_t th[16];
    struct caller k[16];
    (void)state;
    ipc_url(url, sizeof(url), "concurrent");
    assert_int_equal(vap_stream_server_start(&srv, url, echo_serve, &e), 0);
    assert_int_equal(vap_stream_client_open(&c, url), 0);
    for (int i = 0; i < 16; i++) {
        k[i] = (struct caller){.c = c, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, caller_thread, &k[i]), 0);
    }
    for (int i = 0; i < 16; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(k[i].failures, 0);
    }
    assert_int_equal(atomic_load(&e.served), 16 * 200);
    vap_stream_client_close(c);
    vap_stream_server_stop(srv);
}

static int open_fds(void)
{
    char path[64];
    int n = 0;
    for (int fd = 0; fd < 1024; fd++) {
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        n += access(path, F_OK) == 0;
    }
    return n;
}

/* After a burst the pool shrinks: connections idle for 5 s are closed the next time
 * one is given back, and the server's threads for them end. */
static void test_pool_shrinks_after_a_burst(void **state)
{
    char url[128];
    struct echo e = {.delay_ms = 100};
    struct vap_stream_server *srv = NULL;
    struct vap_stream_client *c = NULL;
    pthread_t th[8];
    struct caller k[8];
    int base, burst;
    (void)state;
    ipc_url(url, sizeof(url), "shrink");
    assert_int_equal(vap_stream_server_start(&srv, url, echo_serve, &e), 0);
    assert_int_equal(vap_stream_client_open(&c, url), 0);
    assert_int_equal(call_text(c, "one", 2000), 0);
    base = open_fds();
    for (int i = 0; i < 8; i++) {
        k[i] = (struct caller){.c = c, .id = i, .calls = 2};
        assert_int_equal(pthread_create(&th[i], NULL, caller_thread, &k[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(k[i].failures, 0);
    }
    burst = open_fds();
    assert_true(burst >= base + 2 * 6); /* each side of ~7 more connections */
    e.delay_ms = 0;
    usleep(5200 * 1000);
    assert_int_equal(call_text(c, "after", 2000), 0);
    for (int i = 0; i < 100 && open_fds() > base; i++)
        usleep(10 * 1000); /* the server's threads notice the closes */
    assert_true(open_fds() <= base);
    vap_stream_client_close(c);
    vap_stream_server_stop(srv);
}

/* A call past its deadline fails at the deadline, and its late answer never reaches the
 * next call on that client. */
static void test_deadline_and_late_answer_discarded(void **state)
{
    char url[128];
    struct echo e = {.delay_ms = 300};
    struct vap_stream_server *srv = NULL;
    struct vap_stream_client *c = NULL;
    int64_t t0;
    (void)state;
    ipc_url(url, sizeof(url), "deadline");
    assert_int_equal(vap_stream_server_start(&srv, url, echo_serve, &e), 0);
    assert_int_equal(vap_stream_client_open(&c, url), 0);
    t0 = vap_now_ms();
    assert_int_equal(call_text(c, "slow", 100), VAP_ETIMEDOUT);
    assert_in_range(vap_now_ms() - t0, 90, 250);
    e.delay_ms = 0;
    assert_int_equal(call_text(c, "next", 2000), 0); /* checks it is "re:next" */
    vap_stream_client_close(c);
    vap_stream_server_stop(srv);
}

/* Nothing listening: unavailable after the grace (about 1 s), or timed out by a shorter
 * deadline; never a hang. */
static void test_no_server_is_unavailable_in_time(void **state)
{
    char url[64];
    struct vap_stream_client *c = NULL;
    int64_t t0;
    int rv;
    (void)state;
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", free_port());
    assert_int_equal(vap_stream_client_open(&c, url), 0);
    t0 = vap_now_ms();
    assert_int_equal(call_text(c, "anyone?", 5000), VAP_EUNAVAIL);
    assert_in_range(vap_now_ms() - t0, 900, 1500);
    t0 = vap_now_ms();
    rv = call_text(c, "anyone?", 200);
    assert_true(rv == VAP_EUNAVAIL || rv == VAP_ETIMEDOUT);
    assert_in_range(vap_now_ms() - t0, 150, 400);
    vap_stream_client_close(c);
}

struct later {
    const char *url;
    struct echo *e;
    struct vap_stream_server *srv;
};

static void *start_later(void *arg)
{
    struct later *l = arg;
    usleep(300 * 1000);
    assert_int_equal(vap_stream_server_start(&l->srv, l->url, echo_serve, l->e), 0);
    return NULL;
}

/* The server restarts: pooled connections to the old one are dropped and the call is
 * made on a fresh connection; a server coming up within the grace is waited for. */
static void test_rides_over_a_server_restart(void **state)
{
    char url[64];
    struct echo e = {0};
    struct vap_stream_server *srv = NULL;
    struct vap_stream_client *c = NULL;
    struct later l = {.e = &e};
    pthread_t th;
    (void)state;
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", free_port());
    l.url = url;
    assert_int_equal(vap_stream_server_start(&srv, url, echo_serve, &e), 0);
    assert_int_equal(vap_stream_client_open(&c, url), 0);
    assert_int_equal(call_text(c, "before", 2000), 0);
    vap_stream_server_stop(srv);
    assert_int_equal(vap_stream_server_start(&srv, url, echo_serve, &e), 0);
    assert_int_equal(call_text(c, "after", 2000), 0);
    vap_stream_server_stop(srv);
    assert_int_equal(pthread_create(&th, NULL, start_later, &l), 0);
    assert_int_equal(call_text(c, "while down", 3000), 0);
    pthread_join(th, NULL);
    vap_stream_client_close(c);
    vap_stream_server_stop(l.srv);
}

/* A request the server drops (the caller gave up, or it is garbage) is not answered:
 * the caller gets no answer, a bounded number of resends, and the next call works. */
static void test_dropped_request_is_not_answered(void **state)
{
    char url[128];
    struct echo e = {0};
    struct vap_stream_server *srv = NULL;
    struct vap_stream_client *c = NULL;
    int rv;
    (void)state;
    ipc_url(url, sizeof(url), "drop");
    assert_int_equal(vap_stream_server_start(&srv, url, echo_serve, &e), 0);
    assert_int_equal(vap_stream_client_open(&c, url), 0);
    rv = call_text(c, "drop", 500);
    assert_true(rv == VAP_EUNAVAIL || rv == VAP_ETIMEDOUT);
    assert_in_range(atomic_load(&e.served), 1, 4);
    assert_int_equal(call_text(c, "fine", 2000), 0);
    vap_stream_client_close(c);
    vap_stream_server_stop(srv);
}

struct inflight {
    struct vap_stream_client *c;
    int rv;
};

static void *call_slow(void *arg)
{
    struct inflight *f = arg;
    f->rv = call_text(f->c, "in flight", 3000);
    return NULL;
}

/* Stopping the server answers the request being served first. */
static void test_stop_answers_the_request_in_flight(void **state)
{
    char url[128];
    struct echo e = {.delay_ms = 300};
    struct vap_stream_server *srv = NULL;
    struct inflight f = {0};
    pthread_t th;
    (void)state;
    ipc_url(url, sizeof(url), "stop");
    assert_int_equal(vap_stream_server_start(&srv, url, echo_serve, &e), 0);
    assert_int_equal(vap_stream_client_open(&f.c, url), 0);
    assert_int_equal(pthread_create(&th, NULL, call_slow, &f), 0);
    while (atomic_load(&e.served) == 0)
        usleep(1000);
    vap_stream_server_stop(srv);
    pthread_join(th, NULL);
    assert_int_equal(f.rv, 0);
    vap_stream_client_close(f.c);
}

/* A frame longer than the limit is refused by closing the connection, unread. */
static void test_oversized_frame_closes_the_connection(void **state)
{
    char url[128];
    struct echo e = {0};
    struct vap_stream_server *srv = NULL;
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    uint8_t head[4] = {0x01, 0x00, 0x00, 0x00}; /* 16 MiB */
    char buf[16];
    int fd;
    (void)state;
    ipc_url(url, sizeof(url), "oversized");
    assert_int_equal(vap_stream_server_start(&srv, url, echo_serve, &e), 0);
    ipc_path(un.sun_path, sizeof(un.sun_path), "oversized");
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&un, sizeof(un)), 0);
    assert_int_equal(write(fd, head, 4), 4);
    assert_int_equal(read(fd, buf, sizeof(buf)), 0);
    close(fd);
    assert_int_equal(atomic_load(&e.served), 0);
    vap_stream_server_stop(srv);
}

/* A socket file left by a process that died does not stop a new server. */
static void test_stale_ipc_socket_is_replaced(void **state)
{
    char url[128];
    struct echo e = {0};
    struct vap_stream_server *srv = NULL;
    struct vap_stream_client *c = NULL;
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    int fd;
    (void)state;
    ipc_url(url, sizeof(url), "stale");
    ipc_path(un.sun_path, sizeof(un.sun_path), "stale");
    unlink(un.sun_path);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&un, sizeof(un)), 0);
    close(fd); /* the file stays, nobody listens */
    assert_int_equal(vap_stream_server_start(&srv, url, echo_serve, &e), 0);
    assert_int_equal(vap_stream_client_open(&c, url), 0);
    assert_int_equal(call_text(c, "hi", 2000), 0);
    /* ...but a live one is not taken over. */
    {
        struct vap_stream_server *second = NULL;
        assert_int_not_equal(vap_stream_server_start(&second, url, echo_serve, &e), 0);
    }
    vap_stream_client_close(c);
    vap_stream_server_stop(srv);
}

static void test_bad_urls_are_refused(void **state)
{
    const char *bad[] = {"http://127.0.0.1:1", "tcp://127.0.0.1", "tcp://127.0.0.1:",
                         "tcp://127.0.0.1:80x", "tcp://[::1:80", "ipc://", "tcp://:7000"};
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct vap_stream_client *c = NULL;
        assert_int_equal(vap_stream_client_open(&c, bad[i]), VAP_EINVAL);
    }
    assert_true(vap_stream_handles("tcp://a:1"));
    assert_true(vap_stream_handles("ipc:///x"));
    assert_false(vap_stream_handles("tls+tcp://a:1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_and_ipc_calls_are_answered),
        cmocka_unit_test(test_large_frames_cross_whole),
        cmocka_unit_test(test_concurrent_callers_get_their_own_answers),
        cmocka_unit_test(test_pool_shrinks_after_a_burst),
        cmocka_unit_test(test_deadline_and_late_answer_discarded),
        cmocka_unit_test(test_no_server_is_unavailable_in_time),
        cmocka_unit_test(test_rides_over_a_server_restart),
        cmocka_unit_test(test_dropped_request_is_not_answered),
        cmocka_unit_test(test_stop_answers_the_request_in_flight),
        cmocka_unit_test(test_oversized_frame_closes_the_connection),
        cmocka_unit_test(test_stale_ipc_socket_is_replaced),
        cmocka_unit_test(test_bad_urls_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
