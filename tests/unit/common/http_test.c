/* Unit tests for common/http.c: the client's address behind trusted reverse proxies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "http.h"

static const char *client(const char *peer, const char *xff, const char *trusted)
{
    static char out[64];
    assert_int_equal(vap_http_client_addr(peer, xff, trusted, out, sizeof(out)), 0);
    return out;
}

static void test_without_trusted_proxies_the_peer_is_the_client(void **state)
{
    (void)state;
    assert_string_equal(client("203.0.113.5", "198.51.100.1", ""), "203.0.113.5");
    assert_string_equal(client("203.0.113.5", "198.51.100.1", NULL), "203.0.113.5");
    assert_string_equal(client("203.0.113.5", NULL, "203.0.113.5"), "203.0.113.5");
}

static void test_a_trusted_proxy_names_the_client(void **state)
{
    (void)state;
    assert_string_equal(client("10.0.0.2", "198.51.100.1", "10.0.0.0/8"), "198.51.100.1");
    /* the rightmost address the trusted hops appended, never one the client planted */
    assert_string_equal(client("10.0.0.2", "1.2.3.4, 198.51.100.1", "10.0.0.0/8"),
                        "198.51.100.1");
    /* trusted hops on the right are skipped */
    assert_string_equal(client("10.0.0.2", "198.51.100.1,10.0.0.7 , 10.1.2.3", "10.0.0.0/8"),
                        "198.51.100.1");
    assert_string_equal(client("::1", "2001:db8::9", "::1, 127.0.0.1"), "2001:db8::9");
    assert_string_equal(client("::ffff:127.0.0.1", "198.51.100.7", "127.0.0.1"),
                        "198.51.100.7");
    assert_string_equal(client("fd00::1", "198.51.100.8", "fd00::/8"), "198.51.100.8");
}

static void test_an_untrusted_peer_or_bad_header_is_not_believed(void **state)
{
    (void)state;
    assert_string_equal(client("203.0.113.5", "198.51.100.1", "10.0.0.0/8"), "203.0.113.5");
    assert_string_equal(client("10.0.0.2", "not-an-address", "10.0.0.0/8"), "10.0.0.2");
    assert_string_equal(client("10.0.0.2", "198.51.100.1, junk", "10.0.0.0/8"), "10.0.0.2");
    assert_string_equal(client("10.0.0.2", "", "10.0.0.0/8"), "10.0.0.2");
    assert_string_equal(client("11.0.0.2", "198.51.100.1", "10.0.0.0/8"), "11.0.0.2");
    assert_string_equal(client("10.0.0.2", "198.51.100.1", "10.0.0.0/31"), "10.0.0.2");
    assert_string_equal(client("10.0.0.1", "198.51.100.1", "10.0.0.0/31"), "198.51.100.1");
}

static void test_bad_trusted_lists_are_refused(void **state)
{
    char out[64];
    (void)state;
    assert_true(vap_http_trusted_valid("10.0.0.0/8, 127.0.0.1 ,fd00::/8"));
    assert_true(vap_http_trusted_valid(""));
    assert_false(vap_http_trusted_valid("10.0.0.0/33"));
    assert_false(vap_http_trusted_valid("example.com"));
    assert_false(vap_http_trusted_valid("10.0.0.0/"));
    assert_false(vap_http_trusted_valid("::/129"));
    assert_int_equal(vap_http_client_addr("10.0.0.2", "198.51.100.1", "10.0.0.0/x", out,
                                          sizeof(out)),
                     VAP_EINVAL);
    assert_string_equal(out, "10.0.0.2");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_without_trusted_proxies_the_peer_is_the_client),
        cmocka_unit_test(test_a_trusted_proxy_names_the_client),
        cmocka_unit_test(test_an_untrusted_peer_or_bad_header_is_not_believed),
        cmocka_unit_test(test_bad_trusted_lists_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
