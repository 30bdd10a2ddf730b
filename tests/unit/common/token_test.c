/* Unit tests for common/token.c: issuing, verifying, and every way a token is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "token.h"

static const uint8_t key[] = "0123456789abcdef0123456789abcdef";
#define KEYLEN (sizeof(key) - 1)
#define NOW 1800000000

static char *issue(enum vap_role role, int64_t exp)
{
    struct vap_token_claims c;
    char *tok = NULL;
    memset(&c, 0, sizeof(c));
    snprintf(c.sub, sizeof(c.sub), "%s", role == VAP_ROLE_ADMIN ? "cawadmin" : "otp:7");
    c.role = role;
    c.iat = NOW;
    c.exp = exp;
    c.otp_id = 7;
    c.pwv = 3;
    assert_int_equal(vap_token_issue(key, KEYLEN, &c, &tok), 0);
    return tok;
}

static char *b64(const char *s)
{
    size_t n = sodium_base64_ENCODED_LEN(strlen(s), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = malloc(n);
    sodium_bin2base64(out, n, (const unsigned char *)s, strlen(s),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return out;
}

static void test_issued_token_verifies_with_its_claims(void **state)
{
    struct vap_token_claims c;
    char *tok = issue(VAP_ROLE_OTP, NOW + 60);
    (void)state;
    assert_int_equal(vap_token_verify(key, KEYLEN, tok, NOW, &c), 0);
    assert_int_equal(c.role, VAP_ROLE_OTP);
    assert_int_equal(c.otp_id, 7);
    assert_string_equal(c.sub, "otp:7");
    assert_int_equal(c.exp, NOW + 60);
    assert_int_equal(strlen(c.jti), 32);
    free(tok);
}

static void test_admin_token_carries_password_version(void **state)
{
    struct vap_token_claims c;
    char *tok = issue(VAP_ROLE_ADMIN, NOW + 60);
    (void)state;
    assert_int_equal(vap_token_verify(key, KEYLEN, tok, NOW, &c), 0);
    assert_int_equal(c.role, VAP_ROLE_ADMIN);
    assert_int_equal(c.pwv, 3);
    free(tok);
}

static void test_expired_token_is_refused(void **state)
{
    struct vap_token_claims c;
    char *tok = issue(VAP_ROLE_OTP, NOW);
    (void)state;
    assert_int_equal(vap_token_verify(key, KEYLEN, tok, NOW, &c), VAP_EAUTH);
    free(tok);
}

static void test_wrong_key_is_refused(void **state)
{
    struct vap_token_claims c;
    const uint8_t other[] = "another-key-another-key-another!!";
    char *tok = issue(VAP_ROLE_OTP, NOW + 60);
    (void)state;
    assert_int_equal(vap_token_verify(other, sizeof(other) - 1, tok, NOW, &c), VAP_EAUTH);
    free(tok);
}

static void test_alg_none_is_refused(void **state)
{
    struct vap_token_claims c;
    char *tok = issue(VAP_ROLE_ADMIN, NOW + 60);
    char *hdr = b64("{\"alg\":\"none\",\"typ\":\"JWT\"}");
    char forged[2048];
    const char *dot1 = strchr(tok, '.');
    const char *dot2 = strrchr(tok, '.');
    (void)state;
    /* none header + real payload, with and without the original signature */
    snprintf(forged, sizeof(forged), "%s%.*s.", hdr, (int)(dot2 - dot1), dot1);
    assert_int_equal(vap_token_verify(key, KEYLEN, forged, NOW, &c), VAP_EAUTH);
    snprintf(forged, sizeof(forged), "%s%s", hdr, dot1);
    assert_int_equal(vap_token_verify(key, KEYLEN, forged, NOW, &c), VAP_EAUTH);
    free(hdr);
    free(tok);
}

static void test_other_hmac_alg_is_refused(void **state)
{
    struct vap_token_claims c;
    char *tok = issue(VAP_ROLE_ADMIN, NOW + 60);
    char *hdr = b64("{\"alg\":\"HS512\",\"typ\":\"JWT\"}");
    char forged[2048];
    (void)state;
    snprintf(forged, sizeof(forged), "%s%s", hdr, strchr(tok, '.'));
    assert_int_equal(vap_token_verify(key, KEYLEN, forged, NOW, &c), VAP_EAUTH);
    free(hdr);
    free(tok);
}

static void test_tampered_payload_is_refused(void **state)
{
    struct vap_token_claims c;
    char *tok = issue(VAP_ROLE_OTP, NOW + 60);
    char *dot = strchr(tok, '.');
    (void)state;
    dot[3] = dot[3] == 'A' ? 'B' : 'A';
    assert_int_equal(vap_token_verify(key, KEYLEN, tok, NOW, &c), VAP_EAUTH);
    free(tok);
}

static void test_garbage_and_edges_are_refused(void **state)
{
    struct vap_token_claims c;
    char big[VAP_TOKEN_MAX + 10];
    (void)state;
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(vap_token_verify(key, KEYLEN, NULL, NOW, &c), VAP_EAUTH);
    assert_int_equal(vap_token_verify(key, KEYLEN, "", NOW, &c), VAP_EAUTH);
    assert_int_equal(vap_token_verify(key, KEYLEN, "a.b", NOW, &c), VAP_EAUTH);
    assert_int_equal(vap_token_verify(key, KEYLEN, "a.b.c.d", NOW, &c), VAP_EAUTH);
    assert_int_equal(vap_token_verify(key, KEYLEN, "...", NOW, &c), VAP_EAUTH);
    assert_int_equal(vap_token_verify(key, KEYLEN, big, NOW, &c), VAP_EAUTH);
}

static const uint8_t old_key[] = "the-previous-key-the-previous-key";
#define OLD_KEYLEN (sizeof(old_key) - 1)

static char *issue_with(const uint8_t *k, size_t k_len, enum vap_role role, int64_t exp)
{
    struct vap_token_claims c;
    char *tok = NULL;
    memset(&c, 0, sizeof(c));
    snprintf(c.sub, sizeof(c.sub), "%s", "otp:9");
    c.role = role;
    c.iat = NOW;
    c.exp = exp;
    c.otp_id = 9;
    assert_int_equal(vap_token_issue(k, k_len, &c, &tok), 0);
    return tok;
}

static void test_keys_accept_current_and_previous_key(void **state)
{
    struct vap_token_keys keys = {key, KEYLEN, old_key, OLD_KEYLEN};
    struct vap_token_claims c;
    char *cur = issue(VAP_ROLE_OTP, NOW + 60);
    char *prev = issue_with(old_key, OLD_KEYLEN, VAP_ROLE_OTP, NOW + 60);
    (void)state;
    assert_int_equal(vap_token_verify_keys(&keys, cur, NOW, &c), 0);
    assert_int_equal(c.otp_id, 7);
    assert_int_equal(vap_token_verify_keys(&keys, prev, NOW, &c), 0);
    assert_int_equal(c.otp_id, 9);
    free(cur);
    free(prev);
}

static void test_keys_without_previous_refuse_the_old_key(void **state)
{
    struct vap_token_keys keys = {key, KEYLEN, NULL, 0};
    struct vap_token_claims c;
    char *prev = issue_with(old_key, OLD_KEYLEN, VAP_ROLE_OTP, NOW + 60);
    (void)state;
    assert_int_equal(vap_token_verify_keys(&keys, prev, NOW, &c), VAP_EAUTH);
    free(prev);
}

static void test_keys_refuse_a_third_key(void **state)
{
    const uint8_t other[] = "another-key-another-key-another!!";
    struct vap_token_keys keys = {key, KEYLEN, old_key, OLD_KEYLEN};
    struct vap_token_claims c;
    char *tok = issue_with(other, sizeof(other) - 1, VAP_ROLE_OTP, NOW + 60);
    (void)state;
    assert_int_equal(vap_token_verify_keys(&keys, tok, NOW, &c), VAP_EAUTH);
    free(tok);
}

static void test_keys_still_check_expiry_and_alg_with_previous_key(void **state)
{
    struct vap_token_keys keys = {key, KEYLEN, old_key, OLD_KEYLEN};
    struct vap_token_claims c;
    char *expired = issue_with(old_key, OLD_KEYLEN, VAP_ROLE_OTP, NOW - 1);
    char *tok = issue_with(old_key, OLD_KEYLEN, VAP_ROLE_ADMIN, NOW + 60);
    char *hdr = b64("{\"alg\":\"none\",\"typ\":\"JWT\"}");
    char forged[2048];
    (void)state;
    assert_int_equal(vap_token_verify_keys(&keys, expired, NOW, &c), VAP_EAUTH);
    snprintf(forged, sizeof(forged), "%s%s", hdr, strchr(tok, '.'));
    assert_int_equal(vap_token_verify_keys(&keys, forged, NOW, &c), VAP_EAUTH);
    assert_int_equal(vap_token_verify_keys(&keys, NULL, NOW, &c), VAP_EAUTH);
    free(hdr);
    free(tok);
    free(expired);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_issued_token_verifies_with_its_claims),
        cmocka_unit_test(test_admin_token_carries_password_version),
        cmocka_unit_test(test_expired_token_is_refused),
        cmocka_unit_test(test_wrong_key_is_refused),
        cmocka_unit_test(test_alg_none_is_refused),
        cmocka_unit_test(test_other_hmac_alg_is_refused),
        cmocka_unit_test(test_tampered_payload_is_refused),
        cmocka_unit_test(test_garbage_and_edges_are_refused),
        cmocka_unit_test(test_keys_accept_current_and_previous_key),
        cmocka_unit_test(test_keys_without_previous_refuse_the_old_key),
        cmocka_unit_test(test_keys_refuse_a_third_key),
        cmocka_unit_test(test_keys_still_check_expiry_and_alg_with_previous_key),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
