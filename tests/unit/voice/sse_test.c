/*
 * Unit tests for services/voice/dialog/sse.c: the same events whatever the chunking,
 * CRLF/CR/LF line ends, comments, multi-line data, unterminated events, ceilings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "sse.h"

/* Events collected as "name|data\n" lines. */
struct collected {
    char text[8192];
    size_t len;
    int stop_after; /* return nonzero after this many events (0 = never) */
    int n;
};

static int collect(void *user, const char *event, const char *data, size_t data_len)
{
    struct collected *c = user;
    int k = snprintf(c->text + c->len, sizeof(c->text) - c->len, "%s|%.*s\n", event,
                     (int)data_len, data);
    assert_true(k > 0 && (size_t)k < sizeof(c->text) - c->len);
    c->len += (size_t)k;
    c->n++;
    return c->stop_after && c->n >= c->stop_after ? 42 : 0;
}

static void parse_whole(const char *stream, size_t len, struct collected *c)
{
    struct sse_parser *p = sse_parser_new(1024, 4096, collect, c);
    assert_non_null(p);
    assert_int_equal(sse_feed(p, stream, len), 0);
    sse_parser_free(p);
}

static const char anthropic_stream[] =
    "event: message_start\r\n"
    "data: {\"type\":\"message_start\"}\r\n"
    "\r\n"
    ": a comment line\r\n"
    "event: ping\n"
    "data: {\"type\": \"ping\"}\n"
    "\n"
    "event: content_block_delta\r"
    "data: line one\r"
    "data:line two\r"
    "data:\r"
    "id: 7\r"
    "retry: 100\r"
    "\r"
    "data: [DONE]\n\n";

static const char anthropic_expect[] = "message_start|{\"type\":\"message_start\"}\n"
                                       "ping|{\"type\": \"ping\"}\n"
                                       "content_block_delta|line one\nline two\n\n"
                                       "message|[DONE]\n";

static void test_events_are_parsed_with_crlf_cr_lf_comments_and_multiline_data(void **state)
{
    struct collected c = {0};
    (void)state;
    parse_whole(anthropic_stream, sizeof(anthropic_stream) - 1, &c);
    assert_string_equal(c.text, anthropic_expect);
}

static void test_every_split_point_gives_the_same_events(void **state)
{
    size_t n = sizeof(anthropic_stream) - 1;
    (void)state;
    for (size_t cut = 0; cut <= n; cut++) {
        for (size_t cut2 = cut; cut2 <= n; cut2 += 7) {
            struct collected c = {0};
            struct sse_parser *p = sse_parser_new(1024, 4096, collect, &c);
            assert_int_equal(sse_feed(p, anthropic_stream, cut), 0);
            assert_int_equal(sse_feed(p, anthropic_stream + cut, cut2 - cut), 0);
            assert_int_equal(sse_feed(p, anthropic_stream + cut2, n - cut2), 0);
            assert_true(sse_idle(p));
            assert_string_equal(c.text, anthropic_expect);
            sse_parser_free(p);
        }
    }
}

static void test_byte_at_a_time_gives_the_same_events(void **state)
{
    struct collected c = {0};
    struct sse_parser *p = sse_parser_new(1024, 4096, collect, &c);
    (void)state;
    for (size_t i = 0; i < sizeof(anthropic_stream) - 1; i++)
        assert_int_equal(sse_feed(p, anthropic_stream + i, 1), 0);
    assert_string_equal(c.text, anthropic_expect);
    assert_int_equal(sse_events(p), 4);
    sse_parser_free(p);
}

static void test_unterminated_event_is_not_dispatched(void **state)
{
    struct collected c = {0};
    struct sse_parser *p = sse_parser_new(1024, 4096, collect, &c);
    const char s[] = "data: one\n\ndata: two\n";
    (void)state;
    assert_int_equal(sse_feed(p, s, sizeof(s) - 1), 0);
    assert_string_equal(c.text, "message|one\n");
    assert_false(sse_idle(p));
    sse_parser_free(p);
}

static void test_bom_field_without_colon_and_empty_event_are_handled(void **state)
{
    struct collected c = {0};
    const char s[] = "\xEF\xBB\xBF"
                     "data\n\n"       /* a field with no colon: empty data, dispatched */
                     "event: x\n\n"   /* no data: nothing dispatched, name reset */
                     "data:  two spaces\n\n"
                     "unknown: y\ndata: z\n\n";
    (void)state;
    parse_whole(s, sizeof(s) - 1, &c);
    assert_string_equal(c.text, "message|\nmessage| two spaces\nmessage|z\n");
}

static void test_long_line_passes_the_ceiling(void **state)
{
    struct collected c = {0};
    struct sse_parser *p = sse_parser_new(16, 4096, collect, &c);
    const char s[] = "data: 0123456789abcdef\n\n";
    (void)state;
    assert_int_equal(sse_feed(p, s, 10), 0);
    assert_int_equal(sse_feed(p, s + 10, sizeof(s) - 11), VAP_ETOOBIG);
    assert_int_equal(sse_feed(p, "\n", 1), VAP_ETOOBIG);
    assert_int_equal(c.n, 0);
    sse_parser_free(p);
}

static void test_joined_data_passes_the_ceiling(void **state)
{
    struct collected c = {0};
    struct sse_parser *p = sse_parser_new(64, 10, collect, &c);
    const char s[] = "data: 12345\ndata: 67890\n\n";
    (void)state;
    assert_int_equal(sse_feed(p, s, sizeof(s) - 1), VAP_ETOOBIG);
    assert_int_equal(c.n, 0);
    sse_parser_free(p);
}

static void test_callback_result_stops_the_parser(void **state)
{
    struct collected c = {0};
    struct sse_parser *p = sse_parser_new(64, 64, collect, &c);
    const char s[] = "data: a\n\ndata: b\n\ndata: c\n\n";
    (void)state;
    c.stop_after = 2;
    assert_int_equal(sse_feed(p, s, sizeof(s) - 1), 42);
    assert_int_equal(sse_feed(p, s, sizeof(s) - 1), 42);
    assert_string_equal(c.text, "message|a\nmessage|b\n");
    sse_parser_free(p);
}

static void test_empty_input_and_bad_limits(void **state)
{
    struct collected c = {0};
    struct sse_parser *p = sse_parser_new(64, 64, collect, &c);
    (void)state;
    assert_int_equal(sse_feed(p, "", 0), 0);
    assert_true(sse_idle(p));
    sse_parser_free(p);
    assert_null(sse_parser_new(0, 64, collect, &c));
    assert_null(sse_parser_new(64, 0, collect, &c));
    sse_parser_free(NULL);
}

static void test_random_bytes_do_not_crash(void **state)
{
    unsigned seed = 12345;
    char buf[4096];
    (void)state;
    for (int round = 0; round < 200; round++) {
        struct collected c = {0};
        struct sse_parser *p = sse_parser_new(512, 512, collect, &c);
        for (size_t i = 0; i < sizeof(buf); i++) {
            static const char alphabet[] = "data: event\r\n:\n\nxyz\0\xff";
            seed = seed * 1103515245u + 12345u;
            buf[i] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
        }
        c.len = 0;
        for (size_t off = 0; off < sizeof(buf);) {
            size_t k = 1 + (size_t)(round * 13 + off) % 97;
            if (k > sizeof(buf) - off)
                k = sizeof(buf) - off;
            if (sse_feed(p, buf + off, k) != 0)
                break;
            off += k;
            if (c.len > sizeof(c.text) - 1024)
                c.len = 0;
        }
        sse_parser_free(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_events_are_parsed_with_crlf_cr_lf_comments_and_multiline_data),
        cmocka_unit_test(test_every_split_point_gives_the_same_events),
        cmocka_unit_test(test_byte_at_a_time_gives_the_same_events),
        cmocka_unit_test(test_unterminated_event_is_not_dispatched),
        cmocka_unit_test(test_bom_field_without_colon_and_empty_event_are_handled),
        cmocka_unit_test(test_long_line_passes_the_ceiling),
        cmocka_unit_test(test_joined_data_passes_the_ceiling),
        cmocka_unit_test(test_callback_result_stops_the_parser),
        cmocka_unit_test(test_empty_input_and_bad_limits),
        cmocka_unit_test(test_random_bytes_do_not_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
