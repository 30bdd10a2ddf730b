/*
 * fuzz_agent_config: an agent file (config/agents/<id>.json) -> vap_agents_load()
 * (common/agents.c: read, JSON parse, validation, the secret-key scan, the public view)
 * as the gateway and the worker load it at start and on SIGHUP; then, for a file that
 * is accepted, -> what the worker builds from it: the dialog engine (dialog_engine_new:
 * the "dialog" pin, and the offline engine's skills from the "offline" data: listings,
 * departments, doctors, slots, visiting hours, FAQ) and a short conversation with it
 * (dialog_reply); the recogniser's training corpus (stt/corpus.c: vocabulary,
 * "speech.phrases" templates with "speech.slots" values and "@offline.a.*.b|last"
 * paths, stt/textnorm.c) and the language model built from it (stt/lm_build.c, ARPA
 * text to /dev/null); and the public config as GET /api/agents/config/{id} serialises
 * it. Not covered: pronunciations (stt/lexicon.c needs flite's lexicon), pocketsphinx
 * loading the model, and the TTS voice (tts_voice_load).
 *
 * Input: the file's bytes. It is written to a private directory and loaded from there,
 * the real path, file I/O included.
 * Checks: a refusal comes with one message naming the file; an accepted agent has its
 * required strings, and its public config serialises and leaves "offline" out.
 */
#include "fuzz.h"

#include <fcntl.h>
#include <unistd.h>

#include "agents.h"
#include "dialog.h"
#include "stt_internal.h"
#include "err.h"
#include "log.h"

static char dir[256], path[300];
static int refusals;
static FILE *devnull;

/* What a visitor might say first: greetings, the skills' questions, confirmations. */
static const char *const utterances[] = {
    "hello",
    "three bedroom house in springfield under four hundred thousand",
    "tell me more about the second one",
    "book the first one",
    "my child has a fever",
    "is doctor patel free on monday morning",
    "yes please",
    "what are the visiting hours",
    "i want to cancel my appointment",
    "can you repeat that",
    "no thanks, goodbye",
};

static void on_error(void *user, const char *message)
{
    (void)user;
    FUZZ_CHECK(strncmp(message, "agent.json", 10) == 0, "a refusal that does not name the file");
    refusals++;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *tmp = getenv("TMPDIR");
    (void)argc;
    (void)argv;
    vap_log_init("fuzz", VAP_LOG_DEBUG);
    /* /dev/shm when there is one: a file is written per input. */
    if (access("/dev/shm", W_OK) == 0)
        tmp = "/dev/shm";
    snprintf(dir, sizeof(dir), "%s/vap-fuzz-agents-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(dir))
        abort();
    snprintf(path, sizeof(path), "%s/agent.json", dir);
    devnull = fopen("/dev/null", "w");
    if (!devnull)
        abort();
    return 0;
}

static void write_file(const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    FUZZ_CHECK(fd >= 0, "cannot write the agent file");
    while (size > 0) {
        ssize_t n = write(fd, data, size);
        FUZZ_CHECK(n > 0, "cannot write the agent file");
        data += n;
        size -= (size_t)n;
    }
    close(fd);
}

static int emit(void *user, const char *piece, size_t len)
{
    (void)user;
    FUZZ_CHECK(piece != NULL && len > 0, "an empty reply piece");
    return 0;
}

static void converse(const struct vap_agent *a)
{
    struct dialog_config cfg;
    struct dialog_engine *e = NULL;
    struct dialog_session *s;
    atomic_int cancel = 0;
    char err[256];

    memset(&cfg, 0, sizeof(cfg)); /* no LLM: an agent pinned to one fails to create */
    err[0] = '\0';
    if (dialog_engine_new(a, &cfg, &e, err, sizeof(err)) != 0) {
        FUZZ_CHECK(err[0] != '\0', "an engine refused without saying why");
        return;
    }
    s = dialog_session_new(e);
    FUZZ_CHECK(s != NULL, "dialog_session_new");
    if (a->startup_message)
        dialog_add_greeting(s, a->startup_message);
    for (size_t i = 0; i < sizeof(utterances) / sizeof(utterances[0]); i++) {
        struct dialog_result res;
        int rv = dialog_reply(s, utterances[i], emit, NULL, &cancel, &res);
        FUZZ_CHECK(rv == 0, "the offline engine failed a reply");
    }
    dialog_session_free(s);
    dialog_engine_free(e);
}

static int add_sentence(void *user, const char *words)
{
    FUZZ_CHECK(words[0] != '\0' && words[0] != ' ', "an empty or unnormalised sentence");
    return lm_builder_add_sentence(user, words);
}

/* What stt_model_load builds first (model_files.c: build), short of pocketsphinx. */
static void language_model(const struct vap_agent *a)
{
    struct lm_builder *b = NULL;
    char err[256];
    int rv;

    FUZZ_CHECK(lm_builder_new(&b) == 0, "lm_builder_new");
    err[0] = '\0';
    rv = stt_corpus_build(a->json, a->id, add_sentence, b, err, sizeof(err));
    if (rv == 0)
        FUZZ_CHECK(lm_builder_write_arpa(b, devnull) == 0, "the language model does not write");
    else
        FUZZ_CHECK(rv == VAP_EINVAL && err[0] != '\0', "a corpus refused without saying why");
    lm_builder_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vap_agents *set = NULL;
    const struct vap_agent *a;
    json_t *copy;
    char *text;

    write_file(data, size);
    refusals = 0;
    FUZZ_CHECK(vap_agents_load(dir, on_error, NULL, &set) == 0, "the directory did not load");
    FUZZ_CHECK(vap_agents_count(set) + (size_t)refusals == 1, "one file, not one outcome");
    a = vap_agents_at(set, 0);
    if (a) {
        FUZZ_CHECK(a->id && a->name && a->description && a->startup_message && a->system_prompt &&
                       a->language && a->voice,
                   "an accepted agent lacks a required string");
        FUZZ_CHECK(vap_agents_find(set, a->id) == a, "an agent cannot be found by its id");
        FUZZ_CHECK(json_object_get(a->public_json, "offline") == NULL,
                   "offline data in the public config");
        copy = json_deep_copy(a->public_json); /* as routes_agents.c replies with it */
        text = json_dumps(copy, JSON_COMPACT);
        FUZZ_CHECK(text != NULL, "the public config does not serialise");
        free(text);
        json_decref(copy);
        converse(a);
        language_model(a);
    }
    vap_agents_unref(set);
    return 0;
}
