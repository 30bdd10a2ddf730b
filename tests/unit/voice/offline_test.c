/*
 * Tests for the offline dialog engine (services/voice/dialog/offline*.c): numbers spoken
 * as words, fuzzy names, multi-turn conversations with the shipped real-estate and
 * hospital agents (read from $VAP_SOURCE_DIR/config/agents), bookings that stay inside
 * one session, a third agent that only has FAQ data, re-prompts that vary, cancellation,
 * and many sessions on one engine from several threads.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agents.h"
#include "dialog_internal.h"
#include "err.h"
#include "offline_internal.h"

/* --- helpers --- */

struct capture {
    char text[2048];
    size_t len, pieces;
    size_t stop_after; /* nonzero: ask to stop after this many pieces */
};

static int capture_emit(void *user, const char *piece, size_t len)
{
    struct capture *c = user;
    if (c->len + len < sizeof(c->text)) {
        memcpy(c->text + c->len, piece, len);
        c->len += len;
        c->text[c->len] = '\0';
    }
    c->pieces++;
    return c->stop_after && c->pieces >= c->stop_after;
}

struct chat {
    void *engine, *session;
    struct vap_agents *agents;
    struct capture last;
};

static struct vap_agents *load_shipped(void)
{
    const char *root = getenv("VAP_SOURCE_DIR");
    char dir[4096];
    struct vap_agents *set = NULL;
    snprintf(dir, sizeof(dir), "%s/config/agents", root ? root : ".");
    assert_int_equal(vap_agents_load(dir, NULL, NULL, &set), 0);
    return set;
}

static void chat_open(struct chat *c, const char *agent_id)
{
    char err[256] = "";
    memset(c, 0, sizeof(*c));
    c->agents = load_shipped();
    const struct vap_agent *a = vap_agents_find(c->agents, agent_id);
    assert_non_null(a);
    assert_int_equal(dialog_offline_ops.create(a, NULL, &c->engine, err, sizeof(err)), 0);
    c->session = dialog_offline_ops.session_new(c->engine);
    assert_non_null(c->session);
}

static void chat_close(struct chat *c)
{
    dialog_offline_ops.session_free(c->session);
    dialog_offline_ops.destroy(c->engine);
    vap_agents_unref(c->agents);
}

/* One turn on a given session; returns the whole reply (valid until the next turn). */
static const char *say_in(struct chat *c, void *session, const char *text)
{
    struct dialog_result res;
    struct dialog_history h = {0};
    atomic_int cancel = 0;
    memset(&c->last, 0, sizeof(c->last));
    assert_int_equal(dialog_offline_ops.reply(c->engine, session, &h, text, capture_emit,
                                              &c->last, &cancel, &res),
                     0);
    assert_true(c->last.len > 0);
    assert_true(res.tokens_out > 0);
    assert_true(res.first_token_ms >= 0);
    assert_null(strchr(c->last.text, '*')); /* spoken: no markdown */
    print_message("  > %s\n  < %s\n", text, c->last.text);
    return c->last.text;
}

static const char *say(struct chat *c, const char *text)
{
    return say_in(c, c->session, text);
}

#define assert_has(hay, needle)                                                                \
    do {                                                                                       \
        if (!strstr((hay), (needle)))                                                          \
            fail_msg("expected \"%s\" in \"%s\"", (needle), (hay));                           \
    } while (0)
#define assert_lacks(hay, needle)                                                              \
    do {                                                                                       \
        if (strstr((hay), (needle)))                                                           \
            fail_msg("did not expect \"%s\" in \"%s\"", (needle), (hay));                     \
    } while (0)

static long long first_number(const char *text)
{
    struct off_input in;
    off_input_parse(text, &in);
    for (size_t i = 0; i < in.n; i++)
        if (in.num_len[i])
            return in.num[i];
    return -1;
}

/* --- numbers and names --- */

static void test_numbers_spoken_as_words_are_parsed(void **state)
{
    struct off_input in;
    (void)state;
    assert_int_equal(first_number("under four hundred thousand"), 400000);
    assert_int_equal(first_number("three hundred and fifty thousand dollars"), 350000);
    assert_int_equal(first_number("half a million"), 500000);
    assert_int_equal(first_number("twenty five hundred a month"), 2500);
    assert_int_equal(first_number("one point five million"), 1500000);
    assert_int_equal(first_number("a million"), 1000000);
    assert_int_equal(first_number("budget is 350,000"), 350000);
    assert_int_equal(first_number("under for hundred thousand"), 400000); /* misheard */
    assert_int_equal(first_number("looking for sale"), -1);
    assert_int_equal(first_number("twenty one"), 21);

    off_input_parse("nine thirty", &in); /* an hour and minutes, not 39 */
    assert_int_equal(in.num[0], 9);
    assert_int_equal(in.num[1], 30);

    off_input_parse("book the first one", &in); /* "one" is a pronoun here */
    assert_int_equal(first_number("book the first one"), -1);
    assert_int_equal(off_ordinal(&in), 0);
    off_input_parse("tell me more about the second one", &in);
    assert_int_equal(off_ordinal(&in), 1);
    off_input_parse("number three please", &in);
    assert_int_equal(off_ordinal(&in), 2);
    off_input_parse("the last one", &in);
    assert_int_equal(off_ordinal(&in), OFF_LAST);
    assert_int_equal(first_number("one bedroom flat"), 1);
}

static void test_numbers_are_said_back_for_speech(void **state)
{
    char buf[64];
    (void)state;
    off_fmt_money(350000, buf, sizeof(buf));
    assert_string_equal(buf, "350,000 dollars");
    off_fmt_money(1800, buf, sizeof(buf));
    assert_string_equal(buf, "1,800 dollars");
    off_fmt_time(9 * 60 + 30, buf, sizeof(buf));
    assert_string_equal(buf, "nine thirty in the morning");
    off_fmt_time(14 * 60, buf, sizeof(buf));
    assert_string_equal(buf, "two in the afternoon");
    off_fmt_time(12 * 60, buf, sizeof(buf));
    assert_string_equal(buf, "noon");
    off_fmt_ordinal(3, buf, sizeof(buf));
    assert_string_equal(buf, "third");
    off_fmt_count(42, buf, sizeof(buf));
    assert_string_equal(buf, "forty two");
}

static void test_misrecognised_names_match_fuzzily(void **state)
{
    struct off_input in;
    (void)state;
    off_input_parse("is doctor pattel free", &in);
    assert_int_equal(off_find_name(&in, "Patel", NULL), 1);
    off_input_parse("is doctor patel free", &in);
    assert_int_equal(off_find_name(&in, "Patel", NULL), 2);
    off_input_parse("a flat in port land", &in);
    assert_int_equal(off_find_name(&in, "Portland", NULL), 1);
    off_input_parse("houses in springfeld", &in);
    assert_int_equal(off_find_name(&in, "Springfield", NULL), 1);
    off_input_parse("doctor garsia", &in);
    assert_true(off_find_name(&in, "Garcia", NULL) > 0); /* sounds the same */
    off_input_parse("i need some rest", &in);
    assert_int_equal(off_find_name(&in, "rent", NULL), 0); /* short words: exact only */
    off_input_parse("my knees hurt", &in);
    assert_int_equal(off_find_name(&in, "knee", NULL), 2);
    assert_int_equal(off_edit_distance("nguyen", "nguyen"), 0);
    assert_int_equal(off_edit_distance("patel", "petal"), 2);
}

/* --- the shipped agents --- */

static void test_realestate_search_follow_up_cheaper_details(void **state)
{
    struct chat c;
    const char *r;
    (void)state;
    chat_open(&c, "realestate");
    r = say(&c, "three bedroom house in springfield under four hundred thousand");
    assert_has(r, "12 Maple Street");
    assert_has(r, "350,000 dollars");

    r = say(&c, "what about port land"); /* filters kept, city changed, misheard */
    assert_has(r, "91 Elm Close");       /* nearest: a townhouse just over budget */
    assert_has(r, "over your budget");

    r = say(&c, "start over");
    r = say(&c, "i want to rent something in springfield");
    assert_has(r, "5 Market Square");
    assert_has(r, "48 River Road");
    assert_true(strstr(r, "5 Market Square") < strstr(r, "48 River Road")); /* cheapest first */

    r = say(&c, "tell me more about the second one");
    assert_has(r, "48 River Road");
    assert_has(r, "1,800 dollars a month");
    assert_has(r, "balcony");

    r = say(&c, "anything cheaper");
    assert_has(r, "5 Market Square");
    assert_lacks(r, "48 River Road");

    r = say(&c, "how much is it");
    assert_has(r, "1,100 dollars a month");

    r = say(&c, "can i see it");
    assert_has(r, "viewing");
    r = say(&c, "yes please");
    assert_has(r, "requested a viewing of 5 Market Square");

    r = say(&c, "what about portland");
    assert_has(r, "230 Hill Avenue");
    r = say(&c, "does it have a balcony");
    assert_has(r, "Yes");
    chat_close(&c);
}

static void test_realestate_bigger_and_budget_on_the_way(void **state)
{
    struct chat c;
    const char *r;
    (void)state;
    chat_open(&c, "realestate");
    r = say(&c, "do you have any houses for sale in springfield");
    assert_has(r, "12 Maple Street");
    r = say(&c, "anything bigger");
    assert_has(r, "four bedroom house for sale in Springfield"); /* none: says so */
    assert_has(r, "7 Harbor View");                               /* and the nearest */
    assert_lacks(r, "12 Maple Street");
    r = say(&c, "show me everything under half a million");
    assert_has(r, "12 Maple Street");
    assert_has(r, "91 Elm Close");
    assert_lacks(r, "7 Harbor View");
    r = say(&c, "tell me about elm close");
    assert_has(r, "91 Elm Close is a three bedroom townhouse");
    chat_close(&c);
}

static void test_hospital_symptom_to_booking_confirmed(void **state)
{
    struct chat c;
    void *other;
    const char *r;
    (void)state;
    chat_open(&c, "hospital");
    other = dialog_offline_ops.session_new(c.engine);
    assert_non_null(other);

    r = say(&c, "my child has a fever");
    assert_has(r, "Pediatrics");
    assert_has(r, "third floor");
    assert_has(r, "Tuesday at nine thirty in the morning");

    r = say(&c, "book the first one");
    assert_has(r, "Doctor Nguyen on Tuesday at nine thirty in the morning");
    assert_has(r, "Shall I book it?");
    r = say(&c, "yes please");
    assert_has(r, "booked with Doctor Nguyen on Tuesday at nine thirty");

    /* gone for this session ... */
    r = say(&c, "when is doctor nguyen available");
    assert_lacks(r, "Tuesday");
    assert_has(r, "Thursday at eleven in the morning");
    /* ... but not for another one: engine data is shared and read-only */
    r = say_in(&c, other, "when is doctor when available"); /* "Nguyen" as often heard */
    assert_has(r, "Tuesday at nine thirty in the morning");

    r = say(&c, "is doctor patel free on monday morning");
    assert_has(r, "Doctor Patel is free on Monday at nine in the morning");
    r = say(&c, "yes");
    assert_has(r, "booked with Doctor Patel on Monday at nine");
    r = say(&c, "is doctor patel free on monday morning");
    assert_lacks(r, "Monday at nine");

    r = say(&c, "i want to cancel my appointment");
    assert_has(r, "cancelled your appointment with Doctor Patel");
    r = say(&c, "is doctor patel free on monday morning");
    assert_has(r, "Monday at nine in the morning");
    r = say(&c, "no");
    assert_lacks(r, "Monday at nine");

    dialog_offline_ops.session_free(other);
    chat_close(&c);
}

static void test_hospital_questions_and_faq(void **state)
{
    struct chat c;
    const char *r;
    (void)state;
    chat_open(&c, "hospital");
    assert_has(say(&c, "what are the visiting hours"), "Visiting hours are from ten");
    assert_has(say(&c, "can i visit my mother this evening"), "Visiting hours");
    assert_has(say(&c, "where is the cardiology department"), "Cardiology is on the second floor");
    assert_has(say(&c, "does doctor schmidt work in neurology"), "Yes, Doctor Schmidt");
    assert_has(say(&c, "i hurt my knee"), "Orthopedics");
    r = say(&c, "this is an emergency");
    assert_has(r, "emergency number");
    chat_close(&c);
}

static void test_social_turns_and_varying_reprompts(void **state)
{
    struct chat c;
    char first[1024];
    const char *r;
    (void)state;
    chat_open(&c, "realestate");
    r = say(&c, "hello");
    assert_has(r, "Hello");
    assert_has(r, "Springfield"); /* what it can do comes from the data */
    r = say(&c, "what can you do");
    assert_has(r, "buy or rent");
    r = say(&c, "purple monkey dishwasher");
    snprintf(first, sizeof(first), "%s", r);
    assert_has(r, "Springfield or Portland"); /* specific: asks for what is missing */
    r = say(&c, "purple monkey dishwasher");
    assert_string_not_equal(r, first);
    r = say(&c, "repeat that");
    assert_has(r, "Of course");
    r = say(&c, "thank you");
    assert_has(r, "anything else");
    r = say(&c, "no thank you");
    assert_has(r, "Goodbye");
    chat_close(&c);
}

/* --- a third agent with only FAQ data --- */

static void test_agent_with_only_faq_data(void **state)
{
    static const char *doc =
        "{\"id\": \"library\", \"name\": \"Library\", \"offline\": {\"faq\": ["
        "{\"topic\": \"opening hours\", \"keywords\": [\"open\", \"opening hours\", \"close\"],"
        " \"answer\": \"We are open from nine to five, Monday to Saturday.\"},"
        "{\"topic\": \"library cards\", \"keywords\": [\"card\", \"membership\", \"join\"],"
        " \"answer\": \"A library card is free; bring a photo ID to the front desk.\"}]}}";
    struct vap_agent agent = {.id = "library"};
    struct capture cap = {0};
    struct dialog_result res;
    struct dialog_history h = {0};
    atomic_int cancel = 0;
    char err[256];
    void *engine, *session;
    (void)state;
    agent.json = json_loads(doc, 0, NULL);
    assert_non_null(agent.json);
    assert_int_equal(dialog_offline_ops.create(&agent, NULL, &engine, err, sizeof(err)), 0);
    session = dialog_offline_ops.session_new(engine);

    assert_int_equal(dialog_offline_ops.reply(engine, session, &h, "when do you open on saturday",
                                              capture_emit, &cap, &cancel, &res),
                     0);
    assert_has(cap.text, "nine to five");
    memset(&cap, 0, sizeof(cap));
    dialog_offline_ops.reply(engine, session, &h, "how do i get a membership card", capture_emit,
                             &cap, &cancel, &res);
    assert_has(cap.text, "library card is free");
    memset(&cap, 0, sizeof(cap));
    dialog_offline_ops.reply(engine, session, &h, "help", capture_emit, &cap, &cancel, &res);
    assert_has(cap.text, "opening hours and library cards");
    memset(&cap, 0, sizeof(cap));
    dialog_offline_ops.reply(engine, session, &h, "three bedroom house", capture_emit, &cap,
                             &cancel, &res);
    assert_has(cap.text, "opening hours"); /* no listings here: re-prompts with its topics */

    dialog_offline_ops.session_free(session);
    dialog_offline_ops.destroy(engine);
    json_decref(agent.json);
}

static void test_malformed_offline_data_is_refused_naming_the_field(void **state)
{
    struct vap_agent agent = {.id = "bad"};
    char err[256] = "";
    void *engine = NULL;
    (void)state;
    agent.json = json_loads("{\"offline\": {\"departments\": [{\"name\": \"X\", \"id\": \"x\"}],"
                            " \"doctors\": [{\"name\": \"Doctor Y\", \"department\": \"x\","
                            " \"slots\": [\"Someday 25:00\"]}]}}",
                            0, NULL);
    assert_int_equal(dialog_offline_ops.create(&agent, NULL, &engine, err, sizeof(err)),
                     VAP_EINVAL);
    assert_has(err, "offline.doctors[0].slots[0]");
    json_decref(agent.json);
}

/* --- cancellation --- */

static void test_cancellation_stops_the_reply(void **state)
{
    struct chat c;
    struct capture cap = {0};
    struct dialog_result res;
    struct dialog_history h = {0};
    atomic_int cancel = 1;
    (void)state;
    chat_open(&c, "realestate");
    /* cancelled before it starts: nothing said */
    assert_int_equal(dialog_offline_ops.reply(c.engine, c.session, &h, "houses in portland",
                                              capture_emit, &cap, &cancel, &res),
                     VAP_ECANCELED);
    assert_int_equal(cap.pieces, 0);
    /* the listener stops it after the first sentence */
    atomic_store(&cancel, 0);
    cap.stop_after = 1;
    assert_int_equal(dialog_offline_ops.reply(c.engine, c.session, &h, "houses in portland",
                                              capture_emit, &cap, &cancel, &res),
                     VAP_ECANCELED);
    assert_int_equal(cap.pieces, 1);
    /* and a whole reply comes in several pieces */
    memset(&cap, 0, sizeof(cap));
    assert_int_equal(dialog_offline_ops.reply(c.engine, c.session, &h, "houses in portland",
                                              capture_emit, &cap, &cancel, &res),
                     0);
    assert_true(cap.pieces >= 2);
    chat_close(&c);
}

/* --- threads --- */

struct worker {
    void *engine;
    int ok;
};

static void *run_worker(void *p)
{
    struct worker *w = p;
    struct dialog_history h = {0};
    atomic_int cancel = 0;
    struct dialog_result res;
    w->ok = 1;
    for (int round = 0; round < 20; round++) {
        void *s = dialog_offline_ops.session_new(w->engine);
        const char *turns[] = {"my child has a fever", "book the first one", "yes please"};
        struct capture cap = {0};
        for (size_t i = 0; i < 3; i++) {
            memset(&cap, 0, sizeof(cap));
            if (dialog_offline_ops.reply(w->engine, s, &h, turns[i], capture_emit, &cap, &cancel,
                                         &res) != 0)
                w->ok = 0;
        }
        /* every session books the same slot: none sees another's booking */
        if (!strstr(cap.text, "booked with Doctor Nguyen on Tuesday at nine thirty"))
            w->ok = 0;
        dialog_offline_ops.session_free(s);
    }
    return NULL;
}

static void test_many_sessions_share_one_engine_across_threads(void **state)
{
    struct chat c;
    pthread_t t[4];
    struct worker w[4];
    (void)state;
    chat_open(&c, "hospital");
    for (int i = 0; i < 4; i++) {
        w[i].engine = c.engine;
        assert_int_equal(pthread_create(&t[i], NULL, run_worker, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_true(w[i].ok);
    }
    chat_close(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers_spoken_as_words_are_parsed),
        cmocka_unit_test(test_numbers_are_said_back_for_speech),
        cmocka_unit_test(test_misrecognised_names_match_fuzzily),
        cmocka_unit_test(test_realestate_search_follow_up_cheaper_details),
        cmocka_unit_test(test_realestate_bigger_and_budget_on_the_way),
        cmocka_unit_test(test_hospital_symptom_to_booking_confirmed),
        cmocka_unit_test(test_hospital_questions_and_faq),
        cmocka_unit_test(test_social_turns_and_varying_reprompts),
        cmocka_unit_test(test_agent_with_only_faq_data),
        cmocka_unit_test(test_malformed_offline_data_is_refused_naming_the_field),
        cmocka_unit_test(test_cancellation_stops_the_reply),
        cmocka_unit_test(test_many_sessions_share_one_engine_across_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
