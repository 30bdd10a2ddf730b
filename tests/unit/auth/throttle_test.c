/* Unit tests for services/auth/throttle.c: windows, blocks, clearing, bounded memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "throttle.h"

static struct auth_throttle *make(int max, size_t capacity)
{
    struct auth_throttle *t = NULL;
    struct auth_throttle_limits lim = {max, 60000, 30000, capacity};
    assert_int_equal(auth_throttle_create(&t, &lim), 0);
    return t;
}

static void test_blocks_after_max_failures_with_retry_after(void **state)
{
    struct auth_throttle *t = make(3, 64);
    (void)state;
    assert_int_equal(auth_throttle_fail(t, "a", 1000), 0);
    assert_int_equal(auth_throttle_fail(t, "a", 1001), 0);
    assert_int_equal(auth_throttle_check(t, "a", 1002), 0);
    assert_int_equal(auth_throttle_fail(t, "a", 1002), 30);
    assert_int_equal(auth_throttle_check(t, "a", 1003), 30);
    assert_int_equal(auth_throttle_check(t, "a", 30000), 2);
    assert_int_equal(auth_throttle_check(t, "a", 31002), 0);
    auth_throttle_destroy(t);
}

/* Three failures at now; returns the block they earned, in seconds. */
static uint32_t burst(struct auth_throttle *t, int64_t now)
{
    auth_throttle_fail(t, "a", now);
    auth_throttle_fail(t, "a", now);
    return auth_throttle_fail(t, "a", now);
}

static void test_repeated_blocks_double_until_a_quiet_day(void **state)
{
    struct auth_throttle *t = make(3, 64); /* 30 s blocks */
    int64_t now = 1000;
    uint32_t expect = 30;
    (void)state;
    for (int i = 0; i < 10; i++) {
        uint32_t block = burst(t, now);
        assert_int_equal(block, expect);
        now += (int64_t)block * 1000;
        assert_int_equal(auth_throttle_check(t, "a", now), 0);
        if (i < 8)
            expect *= 2; /* 30 s .. 7680 s, then it stays there */
    }
    assert_int_equal(expect, 30 * 256);
    now += 24 * 3600 * 1000LL; /* a quiet day: forgiven */
    assert_int_equal(burst(t, now), 30);
    auth_throttle_destroy(t);
}

static void test_blocks_never_pass_a_day(void **state)
{
    struct auth_throttle *t = NULL;
    struct auth_throttle_limits lim = {1, 60000, 3600 * 1000, 64}; /* 1 h blocks */
    int64_t now = 0;
    uint32_t block = 0;
    (void)state;
    assert_int_equal(auth_throttle_create(&t, &lim), 0);
    for (int i = 0; i < 12; i++) {
        block = auth_throttle_fail(t, "a", now);
        assert_true(block > 0 && block <= 24 * 3600);
        now += (int64_t)block * 1000;
    }
    assert_int_equal(block, 24 * 3600);
    auth_throttle_destroy(t);
}

static void test_other_keys_are_not_affected(void **state)
{
    struct auth_throttle *t = make(2, 64);
    (void)state;
    auth_throttle_fail(t, "addr:1", 0);
    auth_throttle_fail(t, "addr:1", 0);
    assert_true(auth_throttle_check(t, "addr:1", 1) > 0);
    assert_int_equal(auth_throttle_check(t, "addr:2", 1), 0);
    auth_throttle_destroy(t);
}

static void test_window_expiry_forgets_old_failures(void **state)
{
    struct auth_throttle *t = make(3, 64);
    (void)state;
    auth_throttle_fail(t, "a", 0);
    auth_throttle_fail(t, "a", 1);
    assert_int_equal(auth_throttle_fail(t, "a", 60001), 0); /* new window: 1 failure */
    assert_int_equal(auth_throttle_fail(t, "a", 60002), 0);
    assert_true(auth_throttle_fail(t, "a", 60003) > 0);
    auth_throttle_destroy(t);
}

static void test_success_clears_failures(void **state)
{
    struct auth_throttle *t = make(3, 64);
    (void)state;
    auth_throttle_fail(t, "a", 0);
    auth_throttle_fail(t, "a", 1);
    auth_throttle_clear(t, "a");
    assert_int_equal(auth_throttle_fail(t, "a", 2), 0);
    assert_int_equal(auth_throttle_fail(t, "a", 3), 0);
    auth_throttle_destroy(t);
}

static void test_memory_is_bounded_under_many_keys(void **state)
{
    struct auth_throttle *t = make(2, 64);
    char key[32];
    (void)state;
    /* Far more keys than capacity: nothing crashes, the newest key is still tracked. */
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        auth_throttle_fail(t, key, i);
    }
    assert_true(auth_throttle_fail(t, "k9999", 10001) > 0);
    auth_throttle_destroy(t);
}

static void test_rejects_bad_limits(void **state)
{
    struct auth_throttle *t = NULL;
    struct auth_throttle_limits lim = {0, 1, 1, 64};
    (void)state;
    assert_int_not_equal(auth_throttle_create(&t, &lim), 0);
    lim.max_failures = 1;
    lim.capacity = 1;
    assert_int_not_equal(auth_throttle_create(&t, &lim), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocks_after_max_failures_with_retry_after),
        cmocka_unit_test(test_repeated_blocks_double_until_a_quiet_day),
        cmocka_unit_test(test_blocks_never_pass_a_day),
        cmocka_unit_test(test_other_keys_are_not_affected),
        cmocka_unit_test(test_window_expiry_forgets_old_failures),
        cmocka_unit_test(test_success_clears_failures),
        cmocka_unit_test(test_memory_is_bounded_under_many_keys),
        cmocka_unit_test(test_rejects_bad_limits),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
