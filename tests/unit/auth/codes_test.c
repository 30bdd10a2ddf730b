/* Unit tests for services/auth/codes.c: code format, hashing, encryption at rest, and
 * the key rotation helpers (decrypt with current else previous key, re-key one code). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "codes.h"
#include "err.h"

static struct auth_codes codes;

static void test_generated_codes_are_six_digits_and_vary(void **state)
{
    char a[7], b[7];
    int differ = 0;
    (void)state;
    for (int i = 0; i < 50; i++) {
        auth_codes_generate(a);
        auth_codes_generate(b);
        assert_true(auth_codes_valid(a));
        differ |= strcmp(a, b) != 0;
    }
    assert_true(differ);
}

static void test_validation_of_code_text(void **state)
{
    (void)state;
    assert_true(auth_codes_valid("000123"));
    assert_false(auth_codes_valid("12345"));
    assert_false(auth_codes_valid("1234567"));
    assert_false(auth_codes_valid("12a456"));
    assert_false(auth_codes_valid("' OR 1"));
    assert_false(auth_codes_valid(NULL));
}

static void test_hash_is_keyed_and_stable(void **state)
{
    struct auth_codes other;
    uint8_t h1[AUTH_CODE_HASH_LEN], h2[AUTH_CODE_HASH_LEN], h3[AUTH_CODE_HASH_LEN];
    (void)state;
    auth_codes_init(&other, (const uint8_t *)"another-secret-key", 18);
    auth_codes_hash(&codes, "123456", h1);
    auth_codes_hash(&codes, "123456", h2);
    auth_codes_hash(&other, "123456", h3);
    assert_memory_equal(h1, h2, sizeof(h1));
    assert_memory_not_equal(h1, h3, sizeof(h1));
}

static void test_encryption_round_trips_and_rejects_other_key(void **state)
{
    struct auth_codes other;
    uint8_t enc[AUTH_CODE_ENC_LEN];
    char out[7];
    (void)state;
    auth_codes_init(&other, (const uint8_t *)"another-secret-key", 18);
    auth_codes_encrypt(&codes, "654321", enc);
    assert_null(memmem(enc, sizeof(enc), "654321", 6));
    assert_int_equal(auth_codes_decrypt(&codes, enc, sizeof(enc), out), 0);
    assert_string_equal(out, "654321");
    assert_int_equal(auth_codes_decrypt(&other, enc, sizeof(enc), out), VAP_EINVAL);
    enc[30] ^= 1;
    assert_int_equal(auth_codes_decrypt(&codes, enc, sizeof(enc), out), VAP_EINVAL);
    assert_int_equal(auth_codes_decrypt(&codes, enc, 5, out), VAP_EINVAL);
}

static void test_bytea_hex_round_trip(void **state)
{
    uint8_t in[3] = {0x00, 0xab, 0xff}, out[8];
    char hex[2 * 3 + 3];
    (void)state;
    auth_bytea_hex(in, 3, hex);
    assert_string_equal(hex, "\\x00abff");
    assert_int_equal(auth_bytea_parse(hex, out, sizeof(out)), 3);
    assert_memory_equal(in, out, 3);
    assert_int_equal(auth_bytea_parse("00ab", out, sizeof(out)), -1);
    assert_int_equal(auth_bytea_parse("\\xzz", out, sizeof(out)), -1);
}

static void test_decrypt_either_tries_current_then_previous(void **state)
{
    struct auth_codes prev, other;
    uint8_t under_cur[AUTH_CODE_ENC_LEN], under_prev[AUTH_CODE_ENC_LEN];
    uint8_t under_other[AUTH_CODE_ENC_LEN];
    char out[7];
    (void)state;
    auth_codes_init(&prev, (const uint8_t *)"the-previous-secret-key", 23);
    auth_codes_init(&other, (const uint8_t *)"another-secret-key", 18);
    auth_codes_encrypt(&codes, "111111", under_cur);
    auth_codes_encrypt(&prev, "222222", under_prev);
    auth_codes_encrypt(&other, "333333", under_other);
    assert_int_equal(auth_codes_decrypt_either(&codes, &prev, under_cur, AUTH_CODE_ENC_LEN, out),
                     AUTH_CODE_KEY_CURRENT);
    assert_string_equal(out, "111111");
    assert_int_equal(auth_codes_decrypt_either(&codes, &prev, under_prev, AUTH_CODE_ENC_LEN, out),
                     AUTH_CODE_KEY_PREVIOUS);
    assert_string_equal(out, "222222");
    assert_int_equal(
        auth_codes_decrypt_either(&codes, &prev, under_other, AUTH_CODE_ENC_LEN, out),
        VAP_EINVAL);
    /* without a previous key only the current one opens */
    assert_int_equal(auth_codes_decrypt_either(&codes, NULL, under_prev, AUTH_CODE_ENC_LEN, out),
                     VAP_EINVAL);
}

static void test_rekey_rewrites_a_previous_key_code_under_the_current_key(void **state)
{
    struct auth_codes prev;
    uint8_t old[AUTH_CODE_ENC_LEN], enc[AUTH_CODE_ENC_LEN];
    uint8_t hash[AUTH_CODE_HASH_LEN], want[AUTH_CODE_HASH_LEN];
    char out[7];
    (void)state;
    auth_codes_init(&prev, (const uint8_t *)"the-previous-secret-key", 23);
    auth_codes_encrypt(&prev, "424242", old);
    assert_int_equal(auth_codes_rekey(&codes, &prev, old, sizeof(old), hash, enc),
                     AUTH_REKEY_DONE);
    auth_codes_hash(&codes, "424242", want);
    assert_memory_equal(hash, want, sizeof(hash));
    assert_int_equal(auth_codes_decrypt(&codes, enc, sizeof(enc), out), 0);
    assert_string_equal(out, "424242");
    assert_int_equal(auth_codes_decrypt(&prev, enc, sizeof(enc), out), VAP_EINVAL);
}

static void test_rekey_is_idempotent_and_leaves_current_codes_alone(void **state)
{
    struct auth_codes prev;
    uint8_t cur[AUTH_CODE_ENC_LEN], enc[AUTH_CODE_ENC_LEN], hash[AUTH_CODE_HASH_LEN];
    uint8_t again[AUTH_CODE_ENC_LEN];
    (void)state;
    auth_codes_init(&prev, (const uint8_t *)"the-previous-secret-key", 23);
    auth_codes_encrypt(&codes, "135790", cur);
    assert_int_equal(auth_codes_rekey(&codes, &prev, cur, sizeof(cur), hash, enc),
                     AUTH_REKEY_CURRENT);
    /* a code re-keyed once is current the second time */
    auth_codes_encrypt(&prev, "135790", cur);
    assert_int_equal(auth_codes_rekey(&codes, &prev, cur, sizeof(cur), hash, enc),
                     AUTH_REKEY_DONE);
    assert_int_equal(auth_codes_rekey(&codes, &prev, enc, sizeof(enc), hash, again),
                     AUTH_REKEY_CURRENT);
}

static void test_rekey_reports_unreadable_codes(void **state)
{
    struct auth_codes prev, other;
    uint8_t enc[AUTH_CODE_ENC_LEN], out_enc[AUTH_CODE_ENC_LEN], hash[AUTH_CODE_HASH_LEN];
    (void)state;
    auth_codes_init(&prev, (const uint8_t *)"the-previous-secret-key", 23);
    auth_codes_init(&other, (const uint8_t *)"another-secret-key", 18);
    auth_codes_encrypt(&other, "000001", enc);
    assert_int_equal(auth_codes_rekey(&codes, &prev, enc, sizeof(enc), hash, out_enc),
                     AUTH_REKEY_UNREADABLE);
    assert_int_equal(auth_codes_rekey(&codes, NULL, enc, sizeof(enc), hash, out_enc),
                     AUTH_REKEY_UNREADABLE);
    assert_int_equal(auth_codes_rekey(&codes, &prev, enc, 3, hash, out_enc),
                     AUTH_REKEY_UNREADABLE);
}

static void test_bytea_array_items_are_quoted_and_comma_separated(void **state)
{
    const uint8_t a[2] = {0x01, 0xfe}, b[1] = {0x00};
    char buf[64] = "{";
    size_t pos = 1;
    (void)state;
    auth_bytea_array_append(buf, &pos, a, sizeof(a));
    auth_bytea_array_append(buf, &pos, b, sizeof(b));
    buf[pos++] = '}';
    buf[pos] = '\0';
    assert_string_equal(buf, "{\"\\\\x01fe\",\"\\\\x00\"}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generated_codes_are_six_digits_and_vary),
        cmocka_unit_test(test_validation_of_code_text),
        cmocka_unit_test(test_hash_is_keyed_and_stable),
        cmocka_unit_test(test_encryption_round_trips_and_rejects_other_key),
        cmocka_unit_test(test_bytea_hex_round_trip),
        cmocka_unit_test(test_decrypt_either_tries_current_then_previous),
        cmocka_unit_test(test_rekey_rewrites_a_previous_key_code_under_the_current_key),
        cmocka_unit_test(test_rekey_is_idempotent_and_leaves_current_codes_alone),
        cmocka_unit_test(test_rekey_reports_unreadable_codes),
        cmocka_unit_test(test_bytea_array_items_are_quoted_and_comma_separated),
    };
    if (sodium_init() < 0)
        return 1;
    auth_codes_init(&codes, (const uint8_t *)"unit-test-secret-key", 20);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
