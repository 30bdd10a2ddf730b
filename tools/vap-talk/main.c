/*
 * vap-talk: talk to a voice agent of the portal from the command line. This file parses
 * the options (and holds --help, the one place they are all described), reads the WAV,
 * logs in and takes one access grant per session, runs the sessions (one on this thread,
 * or N on N threads), saves the agent's audio and prints the summary. The protocols
 * themselves are in native.c and twilio.c.
 *
 * Exit codes: 0 every session ended well; 1 a failure (network, timeout, nothing heard,
 * server error); 2 a usage error (options, unreadable WAV); 3 refused (login, access or
 * the stream itself said no; the reason is printed in words).
 */
#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "json.h"
#include "talk.h"

#define DEFAULT_BASE "http://localhost:8000"
#define DEFAULT_TIMEOUT_S 30
#define DEFAULT_PER_LOGIN 3 /* the gateway's GW_VOICE_MAX_PER_TOKEN */
#define OUT_MAX_SAMPLES ((size_t)TALK_RATE * 1800)

volatile sig_atomic_t talk_stop_requested;

static const char USAGE[] =
    "Usage: vap-talk --code CODE --agent ID (--wav FILE | --text TEXT) [options]\n"
    "\n"
    "Talks to a voice agent of the Voice Agent Portal like a visitor would: logs in with a\n"
    "one-time code, takes access to the agent, opens the voice stream, waits for the agent's\n"
    "greeting, streams the WAV in real time (20 ms frames, then silence, as a microphone\n"
    "does) and prints transcripts, the agent's text and per-turn metrics as they arrive.\n"
    "The agent's audio is \"played\" in real time as it arrives (playback events report\n"
    "how much); --out saves it. After the reply to the last turn has played, it sends\n"
    "`end` and prints the session's totals.\n"
    "\n"
    "Connection:\n"
    "  -b, --base URL        gateway base URL (default " DEFAULT_BASE ")\n"
    "  -c, --code CODE       one-time code to log in with (POST /api/auth/login/otp);\n"
    "                        every session takes one use of it (POST /api/agents/access)\n"
    "  -T, --token JWT       use this token instead of logging in with --code (an admin\n"
    "                        token works and spends no use)\n"
    "  -a, --agent ID        the agent to talk to, e.g. hospital (required)\n"
    "  -p, --protocol P      native (default) or twilio: the Twilio Media Streams protocol\n"
    "                        on the same endpoint (8 kHz mu-law media, marks echoed when\n"
    "                        played, clear honoured; the token goes in the start event's\n"
    "                        customParameters). Twilio has no transcripts or metrics:\n"
    "                        timing and audio/mark/clear counts are printed instead\n"
    "      --codec C         native: pcm16 (default) or opus, for audio both ways\n"
    "      --rate HZ         native: 16000 (default) or 48000\n"
    "\n"
    "What to say:\n"
    "  -w, --wav FILE        speech to stream: 16-bit PCM WAV, any sample rate (8-192 kHz)\n"
    "                        and channel count (mixed to mono, resampled to 16 kHz)\n"
    "  -t, --text TEXT       a typed turn (input_text), sent after the WAV's reply, or alone\n"
    "                        without --wav (native protocol only)\n"
    "      --barge-in        start speaking at once, over the greeting, instead of waiting\n"
    "                        for it to finish\n"
    "      --timeout S       seconds to wait for each reply (default 30)\n"
    "\n"
    "Output:\n"
    "  -o, --out FILE        save the agent's audio as played (every turn, the greeting\n"
    "                        included) as a 16 kHz mono 16-bit WAV; with --sessions, session\n"
    "                        1's\n"
    "  -j, --json            print events as JSON lines instead of text:\n"
    "                        {\"t\":seconds,\"session\":n,\"event\":{...as received...}}\n"
    "                        (Twilio media events are not printed), then one line\n"
    "                        {\"summary\":{...}} with the results and percentiles\n"
    "  -q, --quiet           print only errors and the summary\n"
    "\n"
    "Load:\n"
    "  -n, --sessions N      run N sessions at once (1-64), each streaming the same WAV, and\n"
    "                        print a table: per-session turns and latencies, then p50/p95/p99\n"
    "                        of voice_to_voice_ms and of the first-audio latency, and counts\n"
    "                        of failures. Each session takes its own access grant, so the\n"
    "                        code needs at least N uses left\n"
    "      --per-login K     sessions per login with --code (default 3, the gateway's\n"
    "                        GW_VOICE_MAX_PER_TOKEN): N sessions log in ceil(N/K) times\n"
    "                        first (a login spends no use). With --token all sessions share\n"
    "                        the one token, so at most GW_VOICE_MAX_PER_TOKEN of them start\n"
    "\n"
    "  -h, --help            this text\n"
    "  -V, --version         the version\n"
    "\n"
    "Latencies: voice_to_voice_ms is the server's figure (metrics event: end of the\n"
    "visitor's speech to the first audio of the reply); first_audio_ms is measured here,\n"
    "from the moment the last voiced frame of the WAV (or the --text) was sent to the\n"
    "first agent audio frame of the reply, network included.\n"
    "\n"
    "Ctrl-C ends the session(s) properly (`end`, or `stop` in Twilio mode); a second one\n"
    "quits at once.\n"
    "\n"
    "Exit status: 0 done; 1 failure (network, timeout, no turn heard, server error);\n"
    "2 usage error (options, unreadable WAV); 3 refused (login, access or the stream:\n"
    "close 4401 unauthorized, 4403 no grant or code exhausted, 4404 unknown agent,\n"
    "4429 too many sessions, 1013 no voice worker; printed in words).\n"
    "\n"
    "Example:\n"
    "  flite -voice kal16 -t \"Is Doctor Patel available on Monday morning\" -o q.wav\n"
    "  vap-talk --base http://localhost:8000 --code 123456 --agent hospital --wav q.wav \\\n"
    "           --out reply.wav\n";

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("vap-talk: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'vap-talk --help'.\n", stderr);
    return TALK_USAGE;
}

static int int_arg(const char *name, const char *text, int64_t min, int64_t max, int *out)
{
    int64_t v;
    if (vap_parse_int64(text, min, max, &v) != 0) {
        fprintf(stderr, "vap-talk: %s must be a whole number from %lld to %lld (got \"%s\")\n",
                name, (long long)min, (long long)max, text);
        fputs("Try 'vap-talk --help'.\n", stderr);
        return TALK_USAGE;
    }
    *out = (int)v;
    return 0;
}

/* Fills o from argv. Returns 0, TALK_USAGE (message printed), or -1 when --help or
 * --version was answered. */
static int parse_options(int argc, char **argv, struct talk_options *o)
{
    enum { OPT_CODEC = 256, OPT_RATE, OPT_BARGE_IN, OPT_TIMEOUT, OPT_PER_LOGIN };
    static const struct option longopts[] = {
        {"base", required_argument, NULL, 'b'},
        {"code", required_argument, NULL, 'c'},
        {"token", required_argument, NULL, 'T'},
        {"agent", required_argument, NULL, 'a'},
        {"protocol", required_argument, NULL, 'p'},
        {"codec", required_argument, NULL, OPT_CODEC},
        {"rate", required_argument, NULL, OPT_RATE},
        {"wav", required_argument, NULL, 'w'},
        {"text", required_argument, NULL, 't'},
        {"barge-in", no_argument, NULL, OPT_BARGE_IN},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"out", required_argument, NULL, 'o'},
        {"json", no_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'q'},
        {"sessions", required_argument, NULL, 'n'},
        {"per-login", required_argument, NULL, OPT_PER_LOGIN},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int c, rv;

    memset(o, 0, sizeof(*o));
    o->base = DEFAULT_BASE;
    o->protocol = TALK_NATIVE;
    o->codec = AUDIO_CODEC_PCM16;
    o->rate = TALK_RATE;
    o->sessions = 1;
    o->per_login = DEFAULT_PER_LOGIN;
    o->timeout_s = DEFAULT_TIMEOUT_S;
    opterr = 0;
    for (;;) {
        c = getopt_long(argc, argv, ":b:c:T:a:p:w:t:o:jqn:hV", longopts, NULL);
        if (c == -1)
            break;
        rv = 0;
        switch (c) {
        case 'b':
            o->base = optarg;
            break;
        case 'c':
            o->code = optarg;
            break;
        case 'T':
            o->token = optarg;
            break;
        case 'a':
            o->agent = optarg;
            break;
        case 'p':
            if (strcmp(optarg, "native") == 0)
                o->protocol = TALK_NATIVE;
            else if (strcmp(optarg, "twilio") == 0)
                o->protocol = TALK_TWILIO;
            else
                return usage_error("--protocol must be native or twilio (got \"%s\")", optarg);
            break;
        case OPT_CODEC:
            if (strcmp(optarg, "pcm16") == 0)
                o->codec = AUDIO_CODEC_PCM16;
            else if (strcmp(optarg, "opus") == 0)
                o->codec = AUDIO_CODEC_OPUS;
            else
                return usage_error("--codec must be pcm16 or opus (got \"%s\")", optarg);
            break;
        case OPT_RATE:
            rv = int_arg("--rate", optarg, 16000, 48000, &o->rate);
            if (rv == 0 && o->rate != 16000 && o->rate != 48000)
                return usage_error("--rate must be 16000 or 48000 (got \"%s\")", optarg);
            break;
        case 'w':
            o->wav_path = optarg;
            break;
        case 't':
            o->text = optarg;
            break;
        case OPT_BARGE_IN:
            o->barge_in = true;
            break;
        case OPT_TIMEOUT:
            rv = int_arg("--timeout", optarg, 1, 3600, &o->timeout_s);
            break;
        case 'o':
            o->out_path = optarg;
            break;
        case 'j':
            o->json = true;
            break;
        case 'q':
            o->quiet = true;
            break;
        case 'n':
            rv = int_arg("--sessions", optarg, 1, TALK_MAX_SESSIONS, &o->sessions);
            break;
        case OPT_PER_LOGIN:
            rv = int_arg("--per-login", optarg, 1, 1000, &o->per_login);
            break;
        case 'h':
            fputs(USAGE, stdout);
            return -1;
        case 'V':
            printf("vap-talk %s\n", VAP_TALK_VERSION);
            return -1;
        case ':':
            return usage_error("%s needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option %s", argv[optind - 1]);
        }
        if (rv != 0)
            return rv;
    }
    if (optind < argc)
        return usage_error("unexpected argument \"%s\"", argv[optind]);
    if (!o->code == !o->token)
        return usage_error("%s", o->code ? "give --code or --token, not both"
                                         : "--code (or --token) is required");
    if (!o->agent || !o->agent[0])
        return usage_error("%s", "--agent is required");
    if (!o->wav_path && !o->text)
        return usage_error("%s", "say something: --wav FILE and/or --text TEXT");
    if (o->protocol == TALK_TWILIO) {
        if (o->text)
            return usage_error("%s", "--text is not possible with --protocol twilio (the "
                                     "Twilio protocol carries audio only)");
        if (!o->wav_path)
            return usage_error("%s", "--protocol twilio needs --wav");
        if (o->codec != AUDIO_CODEC_PCM16 || o->rate != TALK_RATE)
            return usage_error("%s", "--codec and --rate are for the native protocol (Twilio "
                                     "is 8 kHz mu-law)");
    }
    return 0;
}

static void on_sigint(int sig)
{
    (void)sig;
    talk_stop_requested = 1;
}

static void *session_thread(void *arg)
{
    struct talk_session *s = arg;
    s->who.t0_ms = vap_now_ms();
    if (s->o->protocol == TALK_TWILIO)
        talk_twilio_run(s);
    else
        talk_native_run(s);
    return NULL;
}

/* Logs in once per per_login sessions (all logins first: a login spends no use, and a code
 * whose uses run out during the accesses still logs in), then takes one grant per session.
 * A session whose login or access fails gets that status and does not run. */
static void prepare_sessions(const struct talk_options *o, struct talk_session *s, int n)
{
    char msg[300];
    for (int i = 0; i < n; i++) {
        enum talk_status st;
        if (o->token) {
            snprintf(s[i].token, sizeof(s[i].token), "%s", o->token);
            continue;
        }
        if (i % o->per_login != 0) {
            memcpy(s[i].token, s[i - 1].token, sizeof(s[i].token));
            s[i].res.status = s[i - 1].res.status;
            memcpy(s[i].res.message, s[i - 1].res.message, sizeof(s[i].res.message));
            continue;
        }
        st = talk_http_login(o->base, o->code, s[i].token, sizeof(s[i].token), msg, sizeof(msg));
        if (st != TALK_OK)
            talk_fail(&s[i].res, st, "%s", msg);
    }
    for (int i = 0; i < n; i++) {
        enum talk_status st;
        if (s[i].res.status != TALK_OK)
            continue;
        st = talk_http_access(o->base, s[i].token, o->agent, msg, sizeof(msg));
        if (st != TALK_OK)
            talk_fail(&s[i].res, st, "%s", msg);
    }
    if (n == 1 && s[0].res.status == TALK_OK)
        talk_say(NULL, "logged in; access to %s granted", o->agent);
    else if (n > 1)
        talk_say(NULL, "%d session(s), %d login(s); starting", n,
                 o->token ? 0 : (n + o->per_login - 1) / o->per_login);
}

static void run_sessions(struct talk_session *s, int n)
{
    pthread_t *threads = calloc((size_t)n, sizeof(*threads));
    bool *started = calloc((size_t)n, sizeof(*started));
    if (!threads || !started) {
        for (int i = 0; i < n; i++)
            talk_fail(&s[i].res, TALK_FAILED, "out of memory");
        goto out;
    }
    if (n == 1) {
        if (s[0].res.status == TALK_OK)
            session_thread(&s[0]);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        if (s[i].res.status != TALK_OK)
            continue;
        if (pthread_create(&threads[i], NULL, session_thread, &s[i]) != 0)
            talk_fail(&s[i].res, TALK_FAILED, "cannot start a thread");
        else
            started[i] = true;
    }
    for (int i = 0; i < n; i++)
        if (started[i])
            pthread_join(threads[i], NULL);
out:
    free(started);
    free(threads);
}

int main(int argc, char **argv)
{
    struct talk_options o;
    struct talk_speech speech = {.pcm = {NULL, 0, 0, 0}, .speech_end_ms = 0};
    struct talk_session *sessions = NULL;
    struct sigaction sa;
    int rv, exit_code = TALK_OK;
    bool any[4] = {false, false, false, false};
    char err[512];

    rv = parse_options(argc, argv, &o);
    if (rv != 0)
        return rv < 0 ? 0 : rv;
    talk_say_init(&o);
    if (o.wav_path) {
        if (talk_wav_read(o.wav_path, &speech, err, sizeof(err)) != 0) {
            fprintf(stderr, "vap-talk: %s\n", err);
            return TALK_USAGE;
        }
        if (speech.pcm.n < TALK_FRAME_SAMPLES) {
            fprintf(stderr, "vap-talk: %s: holds no audio\n", o.wav_path);
            talk_pcm_free(&speech.pcm);
            return TALK_USAGE;
        }
        if (speech.speech_end_ms == 0)
            talk_warn(NULL, "%s sounds silent; the agent may hear nothing", o.wav_path);
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C quits at once */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if (sodium_init() < 0 || talk_http_init() != 0) {
        fprintf(stderr, "vap-talk: cannot initialise libsodium or libcurl\n");
        talk_pcm_free(&speech.pcm);
        return TALK_FAILED;
    }
    if (talk_ws_init(o.base) != 0) {
        fprintf(stderr, "vap-talk: https needs civetweb with TLS, which this one lacks\n");
        talk_http_cleanup();
        talk_pcm_free(&speech.pcm);
        return TALK_FAILED;
    }
    sessions = calloc((size_t)o.sessions, sizeof(*sessions));
    if (!sessions) {
        fprintf(stderr, "vap-talk: out of memory\n");
        exit_code = TALK_FAILED;
        goto out;
    }
    for (int i = 0; i < o.sessions; i++) {
        sessions[i].o = &o;
        sessions[i].speech = o.wav_path ? &speech : NULL;
        sessions[i].who.index = i + 1;
        sessions[i].who.t0_ms = vap_now_ms();
        talk_pcm_init(&sessions[i].res.out, i == 0 && o.out_path ? OUT_MAX_SAMPLES : 0);
    }
    if (o.token && o.sessions > DEFAULT_PER_LOGIN)
        talk_warn(NULL,
                  "%d sessions share one --token; the gateway allows %d per token by "
                  "default (GW_VOICE_MAX_PER_TOKEN)",
                  o.sessions, DEFAULT_PER_LOGIN);

    prepare_sessions(&o, sessions, o.sessions);
    run_sessions(sessions, o.sessions);

    if (o.out_path) {
        const struct talk_pcm *out = &sessions[0].res.out;
        if (talk_wav_write(o.out_path, out, err, sizeof(err)) != 0) {
            talk_warn(NULL, "%s", err);
            any[TALK_FAILED] = true;
        } else {
            talk_say(NULL, "saved %.2f s of agent audio to %s", (double)out->n / TALK_RATE,
                     o.out_path);
        }
    }
    for (int i = 0; i < o.sessions; i++) {
        const struct talk_result *r = &sessions[i].res;
        any[r->status] = true;
        if (r->status != TALK_OK)
            talk_warn(o.sessions > 1 ? &sessions[i].who : NULL, "%s: %s",
                      r->status == TALK_REFUSED ? "refused" : "failed", r->message);
    }
    talk_print_summary(&o, sessions, o.sessions);
    exit_code = any[TALK_FAILED]    ? TALK_FAILED
                : any[TALK_REFUSED] ? TALK_REFUSED
                : any[TALK_USAGE]   ? TALK_USAGE
                                    : TALK_OK;
out:
    for (int i = 0; sessions && i < o.sessions; i++)
        talk_pcm_free(&sessions[i].res.out);
    free(sessions);
    talk_ws_cleanup();
    talk_http_cleanup();
    talk_pcm_free(&speech.pcm);
    return exit_code;
}
