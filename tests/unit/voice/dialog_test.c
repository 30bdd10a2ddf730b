/*
 * Unit tests for services/voice/dialog: dialog.c with the Claude and OpenAI-compatible
 * engines against tests/mock_llm/mock_llm.py, started here as a subprocess (found via
 * VAP_SOURCE_DIR, run with /usr/bin/python3). Covers the streamed text, token counts,
 * what the requests carry (key header, system prompt, history), every failure mode the
 * mock can play, cancellation latency and history truncation after a barge-in.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agents.h"
#include "clock.h"
#include "dialog.h"
#include "err.h"

#define TEST_KEY "sk-test-key-0123456789"
#define SYSTEM_PROMPT "You are Test Agent, a helpful receptionist."

static pid_t mock_pid;
static int mock_port;
static char claude_url[64], openai_url[64];

/* --- the mock server ----------------------------------------------------------------- */

static int start_mock(void **state)
{
    const char *src = getenv("VAP_SOURCE_DIR");
    char script[1024], line[128];
    size_t len = 0;
    int fds[2];
    (void)state;

    if (!src)
        src = ".";
    snprintf(script, sizeof(script), "%s/tests/mock_llm/mock_llm.py", src);
    if (pipe(fds) != 0)
        return -1;
    setenv("FAULT_TRICKLE_MS", "1", 1);
    mock_pid = fork();
    if (mock_pid < 0)
        return -1;
    if (mock_pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl("/usr/bin/python3", "python3", script, "0", "--api-key", TEST_KEY, "--delay-ms",
              "5", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    for (int64_t until = vap_now_ms() + 10000; vap_now_ms() < until && len < sizeof(line) - 1;) {
        struct pollfd p = {fds[0], POLLIN, 0};
        ssize_t n;
        if (poll(&p, 1, 100) <= 0)
            continue;
        n = read(fds[0], line + len, 1);
        if (n <= 0)
            break;
        len++;
        if (line[len - 1] == '\n')
            break;
    }
    line[len] = '\0';
    close(fds[0]);
    if (sscanf(line, "PORT %d", &mock_port) != 1) {
        fprintf(stderr, "mock_llm.py did not start (%s): \"%s\"\n", script, line);
        kill(mock_pid, SIGTERM);
        return -1;
    }
    snprintf(claude_url, sizeof(claude_url), "http://127.0.0.1:%d", mock_port);
    snprintf(openai_url, sizeof(openai_url), "http://127.0.0.1:%d/v1", mock_port);
    return dialog_global_init();
}

static int stop_mock(void **state)
{
    (void)state;
    if (mock_pid > 0) {
        kill(mock_pid, SIGTERM);
        waitpid(mock_pid, NULL, 0);
    }
    curl_global_cleanup();
    return 0;
}

struct buf {
    char *p;
    size_t len;
};

static size_t buf_write(char *data, size_t size, size_t n, void *user)
{
    struct buf *b = user;
    char *np = realloc(b->p, b->len + size * n + 1);
    assert_non_null(np);
    memcpy(np + b->len, data, size * n);
    b->p = np;
    b->len += size * n;
    b->p[b->len] = '\0';
    return size * n;
}

static json_t *mock_call(const char *method, const char *path)
{
    char url[128];
    struct buf b = {NULL, 0};
    json_t *doc;
    CURL *c = curl_easy_init();
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", mock_port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buf_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_cleanup(c);
    doc = json_loads(b.p ? b.p : "null", 0, NULL);
    free(b.p);
    assert_non_null(doc);
    return doc;
}

static int reset_requests(void **state)
{
    (void)state;
    json_decref(mock_call("DELETE", "/_requests"));
    return 0;
}

/* The n-th last request the mock received (1 = last); caller decrefs. */
static json_t *request_back(size_t n)
{
    json_t *all = mock_call("GET", "/_requests");
    json_t *r;
    assert_true(json_array_size(all) >= n);
    r = json_incref(json_array_get(all, json_array_size(all) - n));
    json_decref(all);
    return r;
}

/* --- fixtures --------------------------------------------------------------------- */

struct fixture {
    struct vap_agent agent;
    struct dialog_config cfg;
    struct dialog_engine *engine;
    struct dialog_session *session;
};

static void fixture_init(struct fixture *f, const char *engine)
{
    memset(f, 0, sizeof(*f));
    f->agent.id = "test";
    f->agent.system_prompt = SYSTEM_PROMPT;
    f->agent.json = json_pack("{s:s, s:{s:s}}", "id", "test", "dialog", "engine", engine);
    f->cfg.claude_api_key = TEST_KEY;
    f->cfg.claude_base_url = claude_url;
    f->cfg.claude_model = "claude-test";
    f->cfg.llm_base_url = openai_url;
    f->cfg.llm_api_key = TEST_KEY;
    f->cfg.llm_model = "gpt-test";
    f->cfg.timeout_ms = 3000;
    f->cfg.first_token_timeout_ms = 1000;
    f->cfg.max_tokens = 123;
}

static void fixture_open(struct fixture *f)
{
    char err[256] = "";
    int rv = dialog_engine_new(&f->agent, &f->cfg, &f->engine, err, sizeof(err));
    if (rv != 0)
        fail_msg("dialog_engine_new: %s", err);
    f->session = dialog_session_new(f->engine);
    assert_non_null(f->session);
}

static void fixture_close(struct fixture *f)
{
    dialog_session_free(f->session);
    dialog_engine_free(f->engine);
    json_decref(f->agent.json);
}

struct sink {
    char text[8192];
    size_t len;
    int pieces;
    int stop_at_piece; /* emit returns nonzero at this piece (0 = never) */
};

static int sink_emit(void *user, const char *piece, size_t len)
{
    struct sink *s = user;
    assert_true(len > 0);
    assert_true(s->len + len < sizeof(s->text));
    memcpy(s->text + s->len, piece, len);
    s->len += len;
    s->text[s->len] = '\0';
    s->pieces++;
    return s->stop_at_piece && s->pieces >= s->stop_at_piece;
}

static int reply(struct fixture *f, const char *text, struct sink *s, struct dialog_result *res,
                 const atomic_int *cancel)
{
    memset(s, 0, sizeof(*s));
    return dialog_reply(f->session, text, sink_emit, s, cancel, res);
}

static const char *msg_role(json_t *msgs, size_t i)
{
    return json_string_value(json_object_get(json_array_get(msgs, i), "role"));
}

static const char *msg_content(json_t *msgs, size_t i)
{
    return json_string_value(json_object_get(json_array_get(msgs, i), "content"));
}

/* --- the happy paths ---------------------------------------------------------------- */

static void test_claude_reply_is_streamed_counted_and_carries_prompt_history_and_key(void **state)
{
    struct fixture f;
    struct sink s;
    struct dialog_result res;
    atomic_int cancel = 0;
    json_t *req, *body, *msgs;
    (void)state;

    fixture_init(&f, "claude");
    fixture_open(&f);
    assert_string_equal(dialog_engine_name(f.engine), "claude");
    dialog_add_greeting(f.session, "Hello, this is Test Agent.");
    assert_int_equal(reply(&f, "what are your opening hours", &s, &res, &cancel), 0);
    assert_string_equal(s.text,
                        "You said: what are your opening hours. Thank you, how else can I help?");
    assert_true(s.pieces > 5);
    assert_true(res.tokens_in > 5);
    assert_int_equal(res.tokens_out, 14);
    assert_true(res.first_token_ms >= 0 && res.first_token_ms < 1000);
    assert_string_equal(res.error, "");
    print_message("claude first_token_ms (new connection) = %lld\n",
                  (long long)res.first_token_ms);

    req = request_back(1);
    assert_string_equal(json_string_value(json_object_get(req, "path")), "/v1/messages");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(req, "headers"), "x-api-key")),
        TEST_KEY);
    assert_string_equal(json_string_value(json_object_get(json_object_get(req, "headers"),
                                                          "anthropic-version")),
                        "2023-06-01");
    body = json_object_get(req, "body");
    assert_string_equal(json_string_value(json_object_get(body, "system")), SYSTEM_PROMPT);
    assert_string_equal(json_string_value(json_object_get(body, "model")), "claude-test");
    assert_int_equal(json_integer_value(json_object_get(body, "max_tokens")), 123);
    assert_true(json_is_true(json_object_get(body, "stream")));
    msgs = json_object_get(body, "messages");
    assert_int_equal(json_array_size(msgs), 3);
    assert_string_equal(msg_role(msgs, 0), "user");
    assert_string_equal(msg_content(msgs, 0), "(call connected)");
    assert_string_equal(msg_role(msgs, 1), "assistant");
    assert_string_equal(msg_content(msgs, 1), "Hello, this is Test Agent.");
    assert_string_equal(msg_role(msgs, 2), "user");
    assert_string_equal(msg_content(msgs, 2), "what are your opening hours");
    json_decref(req);

    /* The second turn carries the first one, and reuses the connection. */
    assert_int_equal(reply(&f, "and on sunday", &s, &res, &cancel), 0);
    print_message("claude first_token_ms (reused connection) = %lld\n",
                  (long long)res.first_token_ms);
    req = request_back(1);
    msgs = json_object_get(json_object_get(req, "body"), "messages");
    assert_int_equal(json_array_size(msgs), 5);
    assert_string_equal(msg_role(msgs, 3), "assistant");
    assert_string_equal(msg_content(msgs, 3),
                        "You said: what are your opening hours. Thank you, how else can I help?");
    assert_string_equal(msg_content(msgs, 4), "and on sunday");
    json_decref(req);
    fixture_close(&f);
}

static void test_openai_reply_is_streamed_counted_and_carries_prompt_history_and_key(void **state)
{
    struct fixture f;
    struct sink s;
    struct dialog_result res;
    json_t *req, *body, *msgs;
    (void)state;

    fixture_init(&f, "openai");
    fixture_open(&f);
    assert_string_equal(dialog_engine_name(f.engine), "openai");
    dialog_add_greeting(f.session, "Hi there.");
    assert_int_equal(reply(&f, "book a table", &s, &res, NULL), 0);
    assert_string_equal(s.text, "You said: book a table. Thank you, how else can I help?");
    assert_true(res.tokens_in > 5);
    assert_int_equal(res.tokens_out, 12);
    print_message("openai first_token_ms (new connection) = %lld\n",
                  (long long)res.first_token_ms);

    req = request_back(1);
    assert_string_equal(json_string_value(json_object_get(req, "path")), "/v1/chat/completions");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(req, "headers"), "authorization")),
        "Bearer " TEST_KEY);
    body = json_object_get(req, "body");
    assert_string_equal(json_string_value(json_object_get(body, "model")), "gpt-test");
    assert_true(json_is_true(json_object_get(body, "stream")));
    assert_true(json_is_true(
        json_object_get(json_object_get(body, "stream_options"), "include_usage")));
    assert_int_equal(json_integer_value(json_object_get(body, "max_tokens")), 123);
    msgs = json_object_get(body, "messages");
    assert_int_equal(json_array_size(msgs), 4);
    assert_string_equal(msg_role(msgs, 0), "system");
    assert_string_equal(msg_content(msgs, 0), SYSTEM_PROMPT);
    assert_string_equal(msg_role(msgs, 2), "assistant");
    assert_string_equal(msg_content(msgs, 2), "Hi there.");
    assert_string_equal(msg_content(msgs, 3), "book a table");
    json_decref(req);

    assert_int_equal(reply(&f, "for two", &s, &res, NULL), 0);
    print_message("openai first_token_ms (reused connection) = %lld\n",
                  (long long)res.first_token_ms);
    fixture_close(&f);
}

static void test_engine_is_chosen_from_the_pin_or_the_configuration(void **state)
{
    struct vap_agent a = {0};
    struct dialog_config cfg = {0};
    struct dialog_engine *e = NULL;
    char err[256];
    int rv;
    (void)state;

    a.id = "pick";
    a.json = json_object();
    cfg.claude_api_key = "k";
    cfg.llm_base_url = "http://127.0.0.1:1/v1";
    assert_int_equal(dialog_engine_new(&a, &cfg, &e, err, sizeof(err)), 0);
    assert_string_equal(dialog_engine_name(e), "claude");
    dialog_engine_free(e);
    cfg.claude_api_key = "";
    assert_int_equal(dialog_engine_new(&a, &cfg, &e, err, sizeof(err)), 0);
    assert_string_equal(dialog_engine_name(e), "openai");
    dialog_engine_free(e);
    cfg.llm_base_url = NULL;
    err[0] = '\0';
    rv = dialog_engine_new(&a, &cfg, &e, err, sizeof(err));
    if (rv == 0) {
        assert_string_equal(dialog_engine_name(e), "offline");
        dialog_engine_free(e);
    } else {
        assert_non_null(strstr(err, "offline")); /* our bare agent may lack offline data */
    }
    /* A pinned engine without its setting is refused, naming the setting. */
    json_object_set_new(a.json, "dialog", json_pack("{s:s}", "engine", "claude"));
    assert_int_equal(dialog_engine_new(&a, &cfg, &e, err, sizeof(err)), VAP_EINVAL);
    assert_non_null(strstr(err, "CLAUDE_API_KEY"));
    json_object_set_new(a.json, "dialog", json_pack("{s:s}", "engine", "gpt9"));
    assert_int_equal(dialog_engine_new(&a, &cfg, &e, err, sizeof(err)), VAP_EINVAL);
    assert_non_null(strstr(err, "dialog.engine"));
    cfg.llm_base_url = "ftp://x";
    json_object_set_new(a.json, "dialog", json_pack("{s:s}", "engine", "openai"));
    assert_int_equal(dialog_engine_new(&a, &cfg, &e, err, sizeof(err)), VAP_EINVAL);
    assert_non_null(strstr(err, "LLM_BASE_URL"));
    json_decref(a.json);
}

/* --- failures ----------------------------------------------------------------------- */

struct fault_case {
    const char *text;
    int rv;
    const char *error_part;
};

static void run_faults(const char *engine)
{
    static const struct fault_case cases[] = {
        {"hello FAULT_429", VAP_EUNAVAIL, "busy (429"},
        {"hello FAULT_500", VAP_EUNAVAIL, "failed (500"},
        {"hello FAULT_529", VAP_EUNAVAIL, "overloaded (529"},
        {"hello FAULT_401", VAP_EUNAVAIL, "refused the API key (401"},
        {"hello FAULT_CLOSE", VAP_EPROTO, "closed the stream mid-reply"},
        {"hello FAULT_MALFORMED", VAP_EPROTO, "malformed"},
        {"hello FAULT_ERROREVENT", VAP_EUNAVAIL, "mid-reply"},
        {"hello FAULT_HANG", VAP_ETIMEDOUT, "did not start answering within 1000 ms"},
        {"hello FAULT_STALL", VAP_ETIMEDOUT, "did not start answering within 1000 ms"},
    };
    struct fixture f;
    struct sink s;
    struct dialog_result res;

    fixture_init(&f, engine);
    fixture_open(&f);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t t0 = vap_now_ms(), took;
        int rv = reply(&f, cases[i].text, &s, &res, NULL);
        took = vap_now_ms() - t0;
        if (rv != cases[i].rv || !strstr(res.error, cases[i].error_part))
            fail_msg("%s \"%s\": rv=%d error=\"%s\"", engine, cases[i].text, rv, res.error);
        assert_null(strstr(res.error, TEST_KEY));
        assert_null(strstr(res.error, "sk-"));
        if (cases[i].rv == VAP_ETIMEDOUT)
            assert_true(took >= 950 && took < 1300);
        else
            assert_true(took < 1000);
        if (cases[i].rv == VAP_EPROTO || strstr(cases[i].text, "ERROREVENT")) {
            /* Two words came before the fault: they were emitted. */
            assert_string_equal(s.text, "You said: ");
        }
    }
    fixture_close(&f);
}

static void test_claude_failures_map_to_error_codes_and_messages(void **state)
{
    (void)state;
    run_faults("claude");
}

static void test_openai_failures_map_to_error_codes_and_messages(void **state)
{
    (void)state;
    run_faults("openai");
}

static void test_a_429_asking_for_no_pause_is_retried_once(void **state)
{
    struct fixture f;
    struct sink s;
    struct dialog_result res;
    json_t *all;
    (void)state;
    fixture_init(&f, "claude");
    fixture_open(&f);
    assert_int_equal(reply(&f, "retry me FAULT_429ONCE", &s, &res, NULL), 0);
    assert_string_equal(s.text,
                        "You said: retry me FAULT_429ONCE. Thank you, how else can I help?");
    all = mock_call("GET", "/_requests");
    assert_int_equal(json_array_size(all), 2);
    json_decref(all);
    fixture_close(&f);
}

static void test_a_slow_stream_fails_at_the_total_deadline(void **state)
{
    struct fixture f;
    struct sink s;
    struct dialog_result res;
    int64_t t0, took;
    int rv;
    (void)state;
    fixture_init(&f, "openai");
    f.cfg.timeout_ms = 1500;
    fixture_open(&f);
    t0 = vap_now_ms();
    rv = reply(&f, "FAULT_TRICKLE please", &s, &res, NULL);
    took = vap_now_ms() - t0;
    assert_int_equal(rv, VAP_ETIMEDOUT);
    assert_non_null(strstr(res.error, "did not finish its reply within 1500 ms"));
    assert_true(s.len > 0);
    assert_true(took >= 1450 && took < 1700);
    fixture_close(&f);
}

static void test_refused_connection_is_unavailable(void **state)
{
    struct fixture f;
    struct sink s;
    struct dialog_result res;
    (void)state;
    fixture_init(&f, "claude");
    f.cfg.claude_base_url = "http://127.0.0.1:1";
    fixture_open(&f);
    assert_int_equal(reply(&f, "anyone there", &s, &res, NULL), VAP_EUNAVAIL);
    assert_non_null(strstr(res.error, "cannot be reached"));
    fixture_close(&f);
}

/* --- cancellation -------------------------------------------------------------------- */

struct canceller {
    atomic_int *flag;
    int after_ms;
    int64_t at_ms;
};

static void *cancel_later(void *arg)
{
    struct canceller *c = arg;
    struct timespec ts = {c->after_ms / 1000, (long)(c->after_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    c->at_ms = vap_now_ms();
    atomic_store(c->flag, 1);
    return NULL;
}

static void cancel_case(const char *engine, const char *text, int after_ms)
{
    struct fixture f;
    struct sink s;
    struct dialog_result res;
    atomic_int cancel = 0;
    struct canceller c = {&cancel, after_ms, 0};
    pthread_t th;
    int64_t latency;
    int rv;

    fixture_init(&f, engine);
    fixture_open(&f);
    assert_int_equal(pthread_create(&th, NULL, cancel_later, &c), 0);
    rv = reply(&f, text, &s, &res, &cancel);
    latency = vap_now_ms() - c.at_ms;
    pthread_join(th, NULL);
    assert_int_equal(rv, VAP_ECANCELED);
    assert_string_equal(res.error, "");
    print_message("%s cancel latency (%s) = %lld ms\n", engine, text, (long long)latency);
    assert_true(latency >= 0 && latency < 100);
    fixture_close(&f);
}

static void test_cancel_mid_stream_returns_within_100_ms(void **state)
{
    (void)state;
    cancel_case("claude", "tell me everything FAULT_SLOW", 400);
    cancel_case("openai", "tell me everything FAULT_SLOW", 400);
}

static void test_cancel_before_the_first_byte_returns_within_100_ms(void **state)
{
    (void)state;
    cancel_case("claude", "wait FAULT_HANG", 300);
    cancel_case("openai", "wait FAULT_HANG", 300);
}

static void test_emit_returning_nonzero_cancels_and_keeps_what_was_emitted(void **state)
{
    struct fixture f;
    struct sink s;
    struct dialog_result res;
    json_t *req, *msgs;
    int64_t t0;
    int rv;
    (void)state;
    fixture_init(&f, "claude");
    fixture_open(&f);
    memset(&s, 0, sizeof(s));
    s.stop_at_piece = 3;
    t0 = vap_now_ms();
    rv = dialog_reply(f.session, "long story FAULT_SLOW", sink_emit, &s, NULL, &res);
    assert_int_equal(rv, VAP_ECANCELED);
    assert_true(vap_now_ms() - t0 < 600);
    assert_string_equal(s.text, "You said: long ");
    assert_int_equal(reply(&f, "next", &s, &res, NULL), 0);
    req = request_back(1);
    msgs = json_object_get(json_object_get(req, "body"), "messages");
    assert_int_equal(json_array_size(msgs), 3);
    assert_string_equal(msg_content(msgs, 1), "You said: long ");
    json_decref(req);
    fixture_close(&f);
}

/* --- sessions of one engine on many threads ------------------------------------------ */

struct worker_arg {
    struct dialog_engine *engine;
    int id, ok;
};

static void *session_thread(void *p)
{
    struct worker_arg *w = p;
    struct dialog_session *s = dialog_session_new(w->engine);
    struct dialog_result res;
    struct sink sk;
    char text[64];
    w->ok = 1;
    for (int i = 0; i < 3 && s; i++) {
        snprintf(text, sizeof(text), "thread %d turn %d", w->id, i);
        memset(&sk, 0, sizeof(sk));
        if (dialog_reply(s, text, sink_emit, &sk, NULL, &res) != 0 || !strstr(sk.text, text))
            w->ok = 0;
    }
    dialog_session_free(s);
    return NULL;
}

static void test_sessions_of_one_engine_reply_concurrently(void **state)
{
    struct fixture f;
    struct worker_arg args[6];
    pthread_t th[6];
    (void)state;
    fixture_init(&f, "claude");
    fixture_open(&f);
    for (int i = 0; i < 6; i++) {
        args[i] = (struct worker_arg){f.engine, i, 0};
        assert_int_equal(pthread_create(&th[i], NULL, session_thread, &args[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        assert_true(args[i].ok);
    }
    fixture_close(&f);
}

/* --- history -------------------------------------------------------------------------- */

static void test_truncation_after_barge_in_shapes_the_next_request(void **state)
{
    struct fixture f;
    struct sink s;
    struct dialog_result res;
    json_t *req, *msgs;
    (void)state;
    fixture_init(&f, "openai");
    fixture_open(&f);
    dialog_add_greeting(f.session, "Welcome to the clinic.");
    dialog_truncate_last(f.session, "Welcome");
    assert_int_equal(reply(&f, "I need a doctor", &s, &res, NULL), 0);
    dialog_truncate_last(f.session, "You said: I need");
    assert_int_equal(reply(&f, "sorry, go on", &s, &res, NULL), 0);
    req = request_back(1);
    msgs = json_object_get(json_object_get(req, "body"), "messages");
    assert_int_equal(json_array_size(msgs), 6);
    assert_string_equal(msg_content(msgs, 2), "Welcome");
    assert_string_equal(msg_content(msgs, 3), "I need a doctor");
    assert_string_equal(msg_role(msgs, 4), "assistant");
    assert_string_equal(msg_content(msgs, 4), "You said: I need");
    assert_string_equal(msg_content(msgs, 5), "sorry, go on");
    json_decref(req);

    /* Nothing heard: the empty turn is dropped and the two user turns are joined. */
    dialog_truncate_last(f.session, "");
    assert_int_equal(reply(&f, "hello?", &s, &res, NULL), 0);
    req = request_back(1);
    msgs = json_object_get(json_object_get(req, "body"), "messages");
    assert_int_equal(json_array_size(msgs), 6);
    assert_string_equal(msg_role(msgs, 5), "user");
    assert_string_equal(msg_content(msgs, 5), "sorry, go on\nhello?");
    json_decref(req);
    fixture_close(&f);
}

static void test_history_is_capped_and_kept_valid_utf8(void **state)
{
    struct fixture f;
    struct sink s;
    struct dialog_result res;
    json_t *req, *msgs;
    char text[600];
    size_t total = 0;
    (void)state;
    fixture_init(&f, "claude");
    fixture_open(&f);
    memset(text, 'a', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    for (int i = 0; i < 30; i++)
        assert_int_equal(reply(&f, i == 0 ? "caf\xC3\xA9 \xC3" : text, &s, &res, NULL), 0);
    req = request_back(1);
    msgs = json_object_get(json_object_get(req, "body"), "messages");
    assert_true(json_array_size(msgs) <= 41);
    for (size_t i = 0; i < json_array_size(msgs); i++)
        total += strlen(msg_content(msgs, i));
    assert_true(total < 8000 + 2 * sizeof(text));
    assert_string_equal(msg_role(msgs, 0), "user");
    json_decref(req);
    fixture_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(
            test_claude_reply_is_streamed_counted_and_carries_prompt_history_and_key,
            reset_requests),
        cmocka_unit_test_setup(
            test_openai_reply_is_streamed_counted_and_carries_prompt_history_and_key,
            reset_requests),
        cmocka_unit_test(test_engine_is_chosen_from_the_pin_or_the_configuration),
        cmocka_unit_test_setup(test_claude_failures_map_to_error_codes_and_messages,
                               reset_requests),
        cmocka_unit_test_setup(test_openai_failures_map_to_error_codes_and_messages,
                               reset_requests),
        cmocka_unit_test_setup(test_a_429_asking_for_no_pause_is_retried_once, reset_requests),
        cmocka_unit_test_setup(test_a_slow_stream_fails_at_the_total_deadline, reset_requests),
        cmocka_unit_test(test_refused_connection_is_unavailable),
        cmocka_unit_test_setup(test_cancel_mid_stream_returns_within_100_ms, reset_requests),
        cmocka_unit_test_setup(test_cancel_before_the_first_byte_returns_within_100_ms,
                               reset_requests),
        cmocka_unit_test_setup(test_emit_returning_nonzero_cancels_and_keeps_what_was_emitted,
                               reset_requests),
        cmocka_unit_test(test_sessions_of_one_engine_reply_concurrently),
        cmocka_unit_test_setup(test_truncation_after_barge_in_shapes_the_next_request,
                               reset_requests),
        cmocka_unit_test_setup(test_history_is_capped_and_kept_valid_utf8, reset_requests),
    };
    return cmocka_run_group_tests(tests, start_mock, stop_mock);
}
