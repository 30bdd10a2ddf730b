/* Unit tests for common/rpc.c's server: how many handlers run at once (nthreads), that a
 * method marked waits is not counted against that, and that a request not admitted
 * before its deadline is dropped unserved. A real server and client in one process, on
 * an ipc:// link (the stream transport). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "auth.pb-c.h"
#include "clock.h"
#include "err.h"
#include "rpc.h"

/* "t.hold" runs until released; "t.quick" and "t.wait" answer at once. */
static atomic_int holding, release_hold, quick_served;

static void hold(void *user, const struct vap_rpc_request *req, struct vap_rpc_response *resp)
{
    (void)user;
    (void)req;
    (void)resp;
    atomic_fetch_add(&holding, 1);
    while (!atomic_load(&release_hold))
        usleep(1000);
    atomic_fetch_sub(&holding, 1);
}

static void quick(void *user, const struct vap_rpc_request *req, struct vap_rpc_response *resp)
{
    (void)user;
    (void)req;
    atomic_fetch_add(&quick_served, 1);
    resp->status = 201;
}

static const struct vap_rpc_method methods[] = {
    {"t.hold", &vap__empty__descriptor, hold, 0},
    {"t.quick", &vap__empty__descriptor, quick, 0},
    {"t.wait", &vap__empty__descriptor, quick, .waits = 1},
    {NULL, NULL, NULL, 0},
};

struct call_args {
    struct vap_rpc_client *client;
    const char *method;
    int64_t budget_ms;
    int rv, status;
};

static void *call_thread(void *arg)
{
    struct call_args *a = arg;
    struct vap_rpc_result res;
    a->rv = vap_rpc_call(a->client, a->method, "test", NULL, NULL, vap_now_ms() + a->budget_ms,
                         &res);
    a->status = res.status;
    vap_rpc_result_clear(&res);
    return NULL;
}

static int call(struct vap_rpc_client *c, const char *method, int64_t budget_ms, int *status)
{
    struct call_args a = {.client = c, .method = method, .budget_ms = budget_ms};
    call_thread(&a);
    *status = a.status;
    return a.rv;
}

static void wait_holding(int n)
{
    int64_t until = vap_now_ms() + 5000;
    while (atomic_load(&holding) != n && vap_now_ms() < until)
        usleep(1000);
    assert_int_equal(atomic_load(&holding), n);
}

static void test_waiting_methods_are_not_counted_against_nthreads(void **state)
{
    struct vap_rpc_server *srv;
    struct vap_rpc_client *c;
    struct call_args held = {.method = "t.hold", .budget_ms = 10000};
    pthread_t th;
    char url[96];
    int status = 0;
    (void)state;
    snprintf(url, sizeof(url), "ipc:///tmp/vap-rpc-server-test-%d.sock", (int)getpid());
    assert_int_equal(vap_rpc_server_start(&srv, url, methods, NULL, 1), 0);
    assert_int_equal(vap_rpc_client_open(&c, url), 0);
    held.client = c;

    /* The one place is taken by a handler that runs until released. */
    assert_int_equal(pthread_create(&th, NULL, call_thread, &held), 0);
    wait_holding(1);

    /* A waiting method is served meanwhile... */
    assert_int_equal(call(c, "t.wait", 2000, &status), 0);
    assert_int_equal(status, 201);
    /* ...a counted one is not: it waits for the place until its caller gives up, and
     * is then dropped without running (its handler would act for a caller told no). */
    assert_int_equal(call(c, "t.quick", 300, &status), VAP_ETIMEDOUT);
    assert_int_equal(atomic_load(&quick_served), 1);

    /* Once the place is free, counted methods run again. */
    atomic_store(&release_hold, 1);
    pthread_join(th, NULL);
    assert_int_equal(held.rv, 0);
    assert_int_equal(held.status, 200);
    assert_int_equal(call(c, "t.quick", 2000, &status), 0);
    assert_int_equal(status, 201);
    assert_int_equal(atomic_load(&quick_served), 2);

    vap_rpc_client_close(c);
    vap_rpc_server_stop(srv);
}

/* With two places, two counted handlers run at once and a third waits its turn (it is
 * admitted, and answered, when one ends within its deadline). */
static void test_a_counted_request_waits_for_a_place_within_its_deadline(void **state)
{
    struct vap_rpc_server *srv;
    struct vap_rpc_client *c;
    struct call_args held[2] = {{.method = "t.hold", .budget_ms = 10000},
                                {.method = "t.hold", .budget_ms = 10000}};
    struct call_args third = {.method = "t.quick", .budget_ms = 5000};
    pthread_t th[3];
    char url[96];
    (void)state;
    atomic_store(&release_hold, 0);
    atomic_store(&quick_served, 0);
    snprintf(url, sizeof(url), "ipc:///tmp/vap-rpc-server-test2-%d.sock", (int)getpid());
    assert_int_equal(vap_rpc_server_start(&srv, url, methods, NULL, 2), 0);
    assert_int_equal(vap_rpc_client_open(&c, url), 0);
    for (int i = 0; i < 2; i++) {
        held[i].client = c;
        assert_int_equal(pthread_create(&th[i], NULL, call_thread, &held[i]), 0);
    }
    wait_holding(2);
    third.client = c;
    assert_int_equal(pthread_create(&th[2], NULL, call_thread, &third), 0);
    usleep(200 * 1000);
    assert_int_equal(atomic_load(&quick_served), 0); /* no place yet */
    atomic_store(&release_hold, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(third.rv, 0);
    assert_int_equal(third.status, 201);
    assert_int_equal(atomic_load(&quick_served), 1);
    vap_rpc_client_close(c);
    vap_rpc_server_stop(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_waiting_methods_are_not_counted_against_nthreads),
        cmocka_unit_test(test_a_counted_request_waits_for_a_place_within_its_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
