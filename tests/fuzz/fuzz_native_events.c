/*
 * fuzz_native_events: the native voice protocol's client events (WebSocket text frames:
 * input_text, playback, interrupt, end) -> the worker's handle_event()
 * (services/voice/input.c), exactly as its input thread calls it with each EVENT frame
 * the gateway relays; and the text of input_text -> the agent's dialog engine
 * (dialog_reply, the offline engine driven by config/agents/<id>.json), as the reply thread
 * would run it, with barge-in truncation (dialog_truncate_last) on interrupt.
 *
 * input.c is compiled into this target (#include below): handle_event is static and
 * needs a session, not a live worker. What it calls in session.c, reply.c, playout.c
 * and the recogniser is replaced by the functions below; events.c (the server events)
 * is the real one.
 *
 * Input: one byte choosing the agent (in config/agents/, sorted by id), then one event
 * per line (the gateway relays a text frame as a NUL-terminated string; a line with a
 * NUL is cut there, as strlen would). The session ends at an "end" event; events after
 * the 16th are ignored.
 * Checks: every server event built is a JSON object (jansson refuses invalid UTF-8:
 * a NULL event would be a reply lost), error codes are the documented ones, a submitted
 * turn is non-empty text of at most 2000 bytes.
 */
#include "fuzz.h"

#include "../../services/voice/input.c"

#include "agents.h"
#include "err.h"

#define N_AGENTS_MAX 16

static struct vap_agents *agents;
static struct dialog_engine *engines[N_AGENTS_MAX];
static size_t n_engines;

/* The session being fuzzed and what its reply thread would hold. */
static struct dialog_session *dialog;
static char last_reply[4096];
static size_t last_reply_len;
static int expected_turn;

/* ---- session.c, reply.c, playout.c, metrics.c and the recogniser ---- */

void session_end(struct voice_session *s, const char *reason, int close_code)
{
    FUZZ_CHECK(reason && reason[0], "session ended without a reason");
    FUZZ_CHECK(close_code >= 1000 && close_code <= 4999, "invalid close code");
    atomic_store(&s->ended, 1);
}

void session_send_event(struct voice_session *s, json_t *ev)
{
    char *text;
    (void)s;
    FUZZ_CHECK(ev != NULL, "a server event could not be built");
    FUZZ_CHECK(json_is_string(json_object_get(ev, "type")), "a server event without type");
    text = json_dumps(ev, JSON_COMPACT);
    FUZZ_CHECK(text != NULL, "a server event does not serialise");
    free(text);
    json_decref(ev);
}

void session_send_error(struct voice_session *s, const char *code, const char *message)
{
    static const char *const codes[] = {"invalid_json", "invalid_event", "unknown_event",
                                        "bad_audio"};
    int known = 0;
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        known |= strcmp(code, codes[i]) == 0;
    FUZZ_CHECK(known, "an undocumented error code");
    session_send_event(s, ev_error(code, message));
}

static int collect(void *user, const char *piece, size_t len)
{
    (void)user;
    FUZZ_CHECK(len > 0 && piece != NULL, "an empty reply piece");
    if (len > sizeof(last_reply) - 1 - last_reply_len)
        len = sizeof(last_reply) - 1 - last_reply_len;
    memcpy(last_reply + last_reply_len, piece, len);
    last_reply_len += len;
    last_reply[last_reply_len] = '\0';
    return 0;
}

void session_submit_turn(struct voice_session *s, int turn_id, const char *text,
                         int64_t voice_end_ms, int64_t eot_ms, int64_t stt_ms)
{
    struct dialog_result res;
    size_t len = strlen(text);
    int rv;
    (void)voice_end_ms;
    (void)eot_ms;
    (void)stt_ms;

    FUZZ_CHECK(turn_id == expected_turn++, "turn ids are not consecutive");
    FUZZ_CHECK(len > 0 && len <= 2000, "a submitted turn of a bad length");
    FUZZ_CHECK(!isspace((unsigned char)text[0]), "a submitted turn starts with a space");
    memset(&res, 0, sizeof(res));
    last_reply_len = 0;
    last_reply[0] = '\0';
    atomic_store(&s->cancel, 0);
    rv = dialog_reply(dialog, text, collect, NULL, &s->cancel, &res);
    FUZZ_CHECK(rv == 0, "the offline engine failed a reply");
    s->play_turn = turn_id;
    s->client_played_ms = -1;
}

/* Barge-in: the visitor heard the reply up to client_played_ms; at ~15 characters a
 * second of speech, cut there at a word boundary, as playout_cut's sentence marks do. */
void session_interrupt(struct voice_session *s)
{
    size_t cut = last_reply_len;
    if (s->client_played_ms >= 0 && (uint64_t)s->client_played_ms / 66 < cut) {
        cut = (size_t)((uint64_t)s->client_played_ms / 66);
        while (cut > 0 && last_reply[cut] != ' ')
            cut--;
    }
    last_reply[cut] = '\0';
    last_reply_len = cut;
    dialog_truncate_last(dialog, last_reply);
    atomic_store(&s->cancel, 1);
}

bool playout_active(struct voice_session *s)
{
    (void)s;
    return false;
}

void playout_pause(struct voice_session *s, bool paused)
{
    (void)s;
    (void)paused;
}

void voice_metrics_error(enum voice_stage stage)
{
    (void)stage;
}

int stt_begin(struct stt_stream *s)
{
    (void)s;
    return 0;
}

int stt_feed(struct stt_stream *s, const int16_t *pcm, size_t n)
{
    (void)s;
    (void)pcm;
    (void)n;
    return 0;
}

size_t stt_partial(struct stt_stream *s, char *out, size_t max)
{
    (void)s;
    if (max)
        out[0] = '\0';
    return 0;
}

int stt_end(struct stt_stream *s, char *out, size_t max)
{
    (void)s;
    if (max)
        out[0] = '\0';
    return 0;
}

void stt_abort(struct stt_stream *s)
{
    (void)s;
}

/* ---- the harness ---- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct dialog_config cfg;
    char err[256];
    (void)argc;
    (void)argv;
    vap_log_init("fuzz", VAP_LOG_DEBUG);
    memset(&cfg, 0, sizeof(cfg)); /* no LLM configured: the offline engine */
    if (vap_agents_load(VAP_SOURCE_DIR "/config/agents", NULL, NULL, &agents) != 0)
        abort();
    for (size_t i = 0; i < vap_agents_count(agents) && n_engines < N_AGENTS_MAX; i++) {
        if (dialog_engine_new(vap_agents_at(agents, i), &cfg, &engines[n_engines], err,
                              sizeof(err)) != 0) {
            fprintf(stderr, "fuzz_native_events: %s\n", err);
            abort();
        }
        n_engines++;
    }
    if (n_engines == 0)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    size_t a = fuzz_byte(&in) % n_engines;
    const struct vap_agent *agent = vap_agents_at(agents, a);
    struct voice_session *s = calloc(1, sizeof(*s));
    const uint8_t *line;
    size_t len;

    pthread_mutex_init(&s->play_lock, NULL);
    s->play_turn = -1;
    s->client_played_ms = -1;
    snprintf(s->request_id, sizeof(s->request_id), "fuzz-1");
    dialog = dialog_session_new(engines[a]);
    FUZZ_CHECK(dialog != NULL, "dialog_session_new");
    if (agent->startup_message && agent->startup_message[0])
        dialog_add_greeting(dialog, agent->startup_message);
    expected_turn = 0;
    last_reply_len = 0;
    last_reply[0] = '\0';

    /* At most 16 events: the offline engine's fuzzy matching costs ~1 ms a reply here. */
    for (int i = 0; i < 16 && !atomic_load(&s->ended) && fuzz_line(&in, &line, &len); i++) {
        char *text = fuzz_strndup(line, len);
        handle_event(s, text);
        free(text);
    }
    dialog_session_free(dialog);
    dialog = NULL;
    pthread_mutex_destroy(&s->play_lock);
    free(s);
    return 0;
}
