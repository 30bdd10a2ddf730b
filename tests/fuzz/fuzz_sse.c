/*
 * fuzz_sse: an LLM server's streamed answer -> the worker's reading of it, from libcurl's
 * callbacks down: response headers -> on_header (Retry-After), body bytes in arbitrary
 * chunks -> on_write -> feed_sse -> the server-sent events parser (sse.c) -> the Claude
 * (claude.c: claude_event) or OpenAI-compatible (openai.c: openai_event) event decoder ->
 * llm_stream_emit / llm_stream_fail; for a non-2xx answer, its body -> error_ident and
 * status_error (the words a caller hears).
 *
 * llm_http.c, claude.c and openai.c are compiled into this target (#include below): the
 * callbacks and decoders are static, and the network is not wanted. The transfer itself
 * (llm_http_post_stream: curl, deadlines, retries) is what is not covered.
 *
 * Input: one byte of options (bit 0: Claude or OpenAI; bits 1-3: the HTTP status, from
 * 200 400 401 404 429 500 503 529), one byte of chunk size (0: the whole body at once),
 * then the response as it arrives: header lines, an empty line, the body (the stream
 * tests/mock_llm/mock_llm.py sends).
 * Checks: a failure always has words for the caller, in valid UTF-8 (they become the
 * client's error event); emitted text adds up.
 * VAP_FUZZ_DUMP=1 in the environment prints what each stream gave.
 */
#include "fuzz.h"

#include "../../services/voice/dialog/llm_http.c"
#include "../../services/voice/dialog/claude.c"
#include "../../services/voice/dialog/openai.c"

static const long statuses[] = {200, 400, 401, 404, 429, 500, 503, 529};

static size_t emitted;

static int emit(void *user, const char *piece, size_t len)
{
    (void)user;
    FUZZ_CHECK(piece != NULL && len > 0, "an empty piece emitted");
    emitted += len;
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    vap_log_init("fuzz", VAP_LOG_DEBUG);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint8_t options = fuzz_byte(&in), chunk = fuzz_byte(&in);
    int claude = (options & 1) == 0;
    struct llm_http_resp *resp = calloc(1, sizeof(*resp));
    struct dialog_result res;
    struct llm_stream st;
    struct llm_http_req req;
    struct run_ctx ctx;
    struct xfer x;
    const uint8_t *line;
    size_t len;

    memset(&res, 0, sizeof(res));
    memset(&st, 0, sizeof(st));
    st.engine = claude ? "claude" : "openai";
    st.emit = emit;
    st.res = &res;
    emitted = 0;
    memset(&req, 0, sizeof(req));
    req.on_data = feed_sse;
    req.user = &ctx;
    req.first_seen = &st.first_seen;
    ctx.st = &st;
    ctx.sse = sse_parser_new(LLM_SSE_MAX_LINE, LLM_SSE_MAX_DATA,
                             claude ? claude_event : openai_event, &st);
    FUZZ_CHECK(ctx.sse != NULL, "sse_parser_new");
    memset(&x, 0, sizeof(x));
    x.req = &req;
    x.resp = resp;
    resp->retry_after_s = -1;

    /* The head, one line at a time as curl hands them over (with their line end). */
    while (in.n > 0) {
        const uint8_t *start = in.p;
        char *copy;
        fuzz_line(&in, &line, &len);
        len = (size_t)(in.p - start);
        copy = fuzz_strndup(start, len);
        FUZZ_CHECK(on_header(copy, 1, len, &x) == len, "on_header refused a line");
        free(copy);
        if (in.p - start <= 2 && (start[0] == '\n' || start[0] == '\r'))
            break; /* the empty line: the body follows */
    }
    FUZZ_CHECK(resp->retry_after_s >= -1 && resp->retry_after_s < 86400, "bad Retry-After");
    /* curl learns the status from the status line; here the options byte chose it. */
    resp->status = statuses[(options >> 1) & 7];

    while (in.n > 0) {
        size_t n = chunk && chunk < in.n ? chunk : in.n;
        char *copy = fuzz_strndup(in.p, n);
        size_t took = on_write(copy, 1, n, &x);
        free(copy);
        in.p += n;
        in.n -= n;
        if (took != n)
            break; /* curl aborts the transfer */
    }

    FUZZ_CHECK(memchr(res.error, '\0', sizeof(res.error)) != NULL, "error not terminated");
    if (getenv("VAP_FUZZ_DUMP")) /* for writing seeds: what the stream gave */
        fprintf(stderr,
                "---- status=%ld emitted=%zu events=%zu done=%d fail=%d error=\"%s\" "
                "tokens=%lld/%lld retry_after=%d\n",
                resp->status, emitted, sse_events(ctx.sse), st.done, st.fail, res.error,
                (long long)res.tokens_in, (long long)res.tokens_out, resp->retry_after_s);
    if (resp->status < 200 || resp->status > 299) {
        char ident[64], msg[160];
        FUZZ_CHECK(emitted == 0 && st.out_bytes == 0, "text from an error answer");
        error_ident(resp, ident, sizeof(ident));
        FUZZ_CHECK(strlen(ident) <= 48, "an error identifier longer than 48");
        for (const char *p = ident; *p; p++)
            FUZZ_CHECK(isalnum((unsigned char)*p) || *p == '_' || *p == '.' || *p == '-',
                       "an error identifier with other characters");
        status_error(resp->status, ident, msg, sizeof(msg));
        FUZZ_CHECK(msg[0] != '\0', "no words for a refused request");
    } else {
        FUZZ_CHECK(emitted == st.out_bytes, "emitted text does not add up");
        if (st.fail) {
            /* reply.c sends these words to the client in an "error" event (ev_error). */
            json_t *ev = json_pack("{s:s}", "message", res.error);
            FUZZ_CHECK(res.error[0] != '\0', "a failed stream without words");
            FUZZ_CHECK(ev != NULL,
                       "a failure's words are not valid UTF-8: the error event is lost");
            json_decref(ev);
        }
    }
    sse_parser_free(ctx.sse);
    free(resp);
    return 0;
}
