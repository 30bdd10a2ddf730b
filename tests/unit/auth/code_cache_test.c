/* Unit tests for services/auth/code_cache.c: what is believed, and when it is not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "code_cache.h"

static void hash_of(uint8_t h[AUTH_CODE_HASH_LEN], uint8_t fill)
{
    memset(h, fill, AUTH_CODE_HASH_LEN);
}

static void test_a_code_is_found_until_anything_changes(void **state)
{
    struct auth_code_cache *c;
    uint8_t h[AUTH_CODE_HASH_LEN], other[AUTH_CODE_HASH_LEN];
    struct auth_code_facts f = {.otp_id = 7, .active = true, .has_uses = true}, got;
    (void)state;
    assert_int_equal(auth_code_cache_create(&c, 60000), 0);
    hash_of(h, 1);
    hash_of(other, 2);
    assert_false(auth_code_cache_find(c, h, &got));
    auth_code_cache_put(c, h, auth_code_cache_generation(c), &f);
    assert_true(auth_code_cache_find(c, h, &got));
    assert_int_equal(got.otp_id, 7);
    assert_true(got.active && got.has_uses);
    assert_false(auth_code_cache_find(c, other, &got));
    auth_code_cache_changed(c);
    assert_false(auth_code_cache_find(c, h, &got));
    auth_code_cache_destroy(c);
}

static void test_an_answer_read_while_a_change_committed_is_not_believed(void **state)
{
    struct auth_code_cache *c;
    uint8_t h[AUTH_CODE_HASH_LEN];
    struct auth_code_facts f = {.otp_id = 1, .active = true, .has_uses = true}, got;
    uint64_t gen;
    (void)state;
    assert_int_equal(auth_code_cache_create(&c, 60000), 0);
    hash_of(h, 3);
    gen = auth_code_cache_generation(c); /* the reader starts ... */
    auth_code_cache_changed(c);          /* ... a change commits ... */
    auth_code_cache_put(c, h, gen, &f);  /* ... the reader stores what it read */
    assert_false(auth_code_cache_find(c, h, &got));
    auth_code_cache_destroy(c);
}

static void test_answers_age_out_and_a_zero_ttl_keeps_nothing(void **state)
{
    struct auth_code_cache *c;
    uint8_t h[AUTH_CODE_HASH_LEN];
    struct auth_code_facts f = {.otp_id = 1, .active = false, .has_uses = true}, got;
    struct timespec pause = {0, 30 * 1000 * 1000};
    (void)state;
    hash_of(h, 4);
    assert_int_equal(auth_code_cache_create(&c, 10), 0);
    auth_code_cache_put(c, h, auth_code_cache_generation(c), &f);
    nanosleep(&pause, NULL);
    assert_false(auth_code_cache_find(c, h, &got));
    auth_code_cache_destroy(c);
    assert_int_equal(auth_code_cache_create(&c, 0), 0);
    auth_code_cache_put(c, h, auth_code_cache_generation(c), &f);
    assert_false(auth_code_cache_find(c, h, &got));
    auth_code_cache_destroy(c);
}

static void nap_ms(long ms)
{
    struct timespec pause = {ms / 1000, (ms % 1000) * 1000 * 1000};
    nanosleep(&pause, NULL);
}

/* Past half its ttl an answer is refreshed by one reader while the others keep it, so
 * it never expires for everyone at once; nothing is believed past the ttl. */
static void test_aging_answers_are_refreshed_ahead_by_one_reader(void **state)
{
    struct auth_code_cache *c;
    uint8_t h[AUTH_CODE_HASH_LEN], *packed = NULL;
    struct auth_code_facts f = {.otp_id = 5, .active = true, .has_uses = true}, got;
    size_t len = 0;
    (void)state;
    hash_of(h, 5);
    assert_int_equal(auth_code_cache_create(&c, 400), 0);
    auth_code_cache_put(c, h, auth_code_cache_generation(c), &f);
    auth_code_cache_list_put(c, 20, 0, 0, auth_code_cache_generation(c),
                             (const uint8_t *)"list", 4);
    assert_true(auth_code_cache_find(c, h, &got));
    nap_ms(250);
    assert_false(auth_code_cache_find(c, h, &got)); /* the one who refreshes */
    assert_true(auth_code_cache_find(c, h, &got));  /* everyone else, meanwhile */
    assert_true(auth_code_cache_find(c, h, &got));
    assert_int_equal(got.otp_id, 5);
    assert_false(auth_code_cache_list_find(c, 20, 0, 0, &packed, &len));
    assert_true(auth_code_cache_list_find(c, 20, 0, 0, &packed, &len));
    free(packed);
    /* the refresher's answer arrives: fresh again, for everyone */
    auth_code_cache_put(c, h, auth_code_cache_generation(c), &f);
    assert_true(auth_code_cache_find(c, h, &got));
    assert_true(auth_code_cache_find(c, h, &got));
    /* a refresher that never answers: the list still ages out at its ttl */
    nap_ms(200);
    assert_false(auth_code_cache_list_find(c, 20, 0, 0, &packed, &len));
    /* the new answer ages in turn: past half its ttl, one reader is chosen again */
    assert_false(auth_code_cache_find(c, h, &got));
    assert_true(auth_code_cache_find(c, h, &got));
    nap_ms(250);
    assert_false(auth_code_cache_find(c, h, &got)); /* expired: a miss for everyone */
    assert_false(auth_code_cache_find(c, h, &got));
    auth_code_cache_destroy(c);
}

static void test_lists_are_kept_per_query_and_dropped_on_change(void **state)
{
    struct auth_code_cache *c;
    uint8_t *out = NULL, *big;
    size_t len = 0;
    (void)state;
    assert_int_equal(auth_code_cache_create(&c, 60000), 0);
    auth_code_cache_list_put(c, 100, 0, 0, auth_code_cache_generation(c),
                             (const uint8_t *)"abc", 3);
    assert_false(auth_code_cache_list_find(c, 100, 0, 1, &out, &len)); /* other filter */
    assert_false(auth_code_cache_list_find(c, 100, 10, 0, &out, &len)); /* other page */
    assert_true(auth_code_cache_list_find(c, 100, 0, 0, &out, &len));
    assert_int_equal(len, 3);
    assert_memory_equal(out, "abc", 3);
    free(out);
    auth_code_cache_changed(c);
    assert_false(auth_code_cache_list_find(c, 100, 0, 0, &out, &len));
    /* a list read before a change is not kept */
    {
        uint64_t gen = auth_code_cache_generation(c);
        auth_code_cache_changed(c);
        auth_code_cache_list_put(c, 100, 0, 0, gen, (const uint8_t *)"old", 3);
        assert_false(auth_code_cache_list_find(c, 100, 0, 0, &out, &len));
    }
    big = calloc(1, 70000);
    assert_non_null(big);
    auth_code_cache_list_put(c, 10000, 0, 0, auth_code_cache_generation(c), big, 70000);
    assert_false(auth_code_cache_list_find(c, 10000, 0, 0, &out, &len));
    free(big);
    auth_code_cache_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_code_is_found_until_anything_changes),
        cmocka_unit_test(test_an_answer_read_while_a_change_committed_is_not_believed),
        cmocka_unit_test(test_answers_age_out_and_a_zero_ttl_keeps_nothing),
        cmocka_unit_test(test_aging_answers_are_refreshed_ahead_by_one_reader),
        cmocka_unit_test(test_lists_are_kept_per_query_and_dropped_on_change),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
