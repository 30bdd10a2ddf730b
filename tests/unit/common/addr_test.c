/* Unit tests for common/addr.c: address parsing, prefixes, throttling networks. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "addr.h"
#include "err.h"

static struct vap_ip ip_of(const char *s)
{
    struct vap_ip ip;
    assert_true(vap_ip_parse(s, strlen(s), &ip));
    return ip;
}

static void test_parsing_takes_a_length_and_unmaps_ipv4(void **state)
{
    struct vap_ip ip;
    (void)state;
    assert_true(vap_ip_parse("10.1.2.3, 8.8.8.8", 8, &ip)); /* "10.1.2.3" */
    assert_int_equal(ip.family, AF_INET);
    ip = ip_of("::ffff:10.1.2.3");
    assert_int_equal(ip.family, AF_INET);
    assert_memory_equal(ip.b, "\x0a\x01\x02\x03", 4);
    assert_int_equal(ip_of("2001:db8::1").family, AF_INET6);
    assert_false(vap_ip_parse("", 0, &ip));
    assert_false(vap_ip_parse("10.1.2", 6, &ip));
    assert_false(vap_ip_parse("host.example", 12, &ip));
    assert_false(vap_ip_parse("1111:2222:3333:4444:5555:6666:7777:8888:9999", 44, &ip));
}

static void test_prefixes_match_bit_by_bit_within_one_family(void **state)
{
    struct vap_ip net = ip_of("10.0.0.0"), v6 = ip_of("fd00::");
    (void)state;
    assert_true(vap_ip_in_prefix(&(struct vap_ip){0}, &(struct vap_ip){0}, 0));
    struct vap_ip a = ip_of("10.255.1.1"), b = ip_of("11.0.0.1"), c = ip_of("fdff::1");
    assert_true(vap_ip_in_prefix(&a, &net, 8));
    assert_false(vap_ip_in_prefix(&b, &net, 8));
    assert_true(vap_ip_in_prefix(&b, &net, 7)); /* 0000101x */
    assert_true(vap_ip_in_prefix(&c, &v6, 8));
    assert_false(vap_ip_in_prefix(&c, &v6, 9));
    assert_false(vap_ip_in_prefix(&a, &v6, 0)); /* another family never matches */
}

static void test_network_of_an_address(void **state)
{
    char net[64];
    (void)state;
    assert_int_equal(vap_ip_network("203.0.113.77", net, sizeof(net)), 0);
    assert_string_equal(net, "203.0.113.0/24");
    assert_int_equal(vap_ip_network("2001:db8:1:2:aaaa:bbbb:cccc:dddd", net, sizeof(net)), 0);
    assert_string_equal(net, "2001:db8:1:2::/64");
    assert_int_equal(vap_ip_network("::ffff:198.51.100.9", net, sizeof(net)), 0);
    assert_string_equal(net, "198.51.100.0/24"); /* IPv4-mapped: the IPv4 network */
    assert_int_equal(vap_ip_network("not an address", net, sizeof(net)), VAP_EINVAL);
    assert_string_equal(net, "not an address");
    assert_int_equal(vap_ip_network("1.2.3.4", net, 8), 0); /* truncated, terminated */
    assert_int_equal(strlen(net), 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parsing_takes_a_length_and_unmaps_ipv4),
        cmocka_unit_test(test_prefixes_match_bit_by_bit_within_one_family),
        cmocka_unit_test(test_network_of_an_address),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
