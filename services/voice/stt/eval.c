/*
 * vap-stt-eval: measures the recogniser on the synthesised test utterances
 * (tests/speech/utterances.json, WAVs made by the stt_speech build target). For one
 * agent it decodes every utterance addressed to that agent, feeding 20 ms chunks as
 * the voice worker does, and prints each hypothesis, the word error rate in and out of
 * the agent's domain (each utterance in a fresh session), CPU seconds per second of audio, model load time, decoder
 * creation time and memory per decoder. --generic measures Debian's generic model
 * instead, the baseline an agent model must not be worse than out of domain.
 * --telephone sends each utterance through a phone line first, as protocol=twilio does
 * (16 kHz -> 8 kHz G.711 mu-law -> 16 kHz, then the recogniser's narrowband widening);
 * --no-widen leaves the widening out, to measure what it is worth.
 *
 *   vap-stt-eval [--generic] [--telephone [--no-widen]] [--agents DIR] [--utterances FILE]
 *                [--wavs DIR] [--cache DIR] [--decoders N] [--quiet] AGENT
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/agents.h"
#include "common/err.h"
#include "common/log.h"
#include "audio.h"
#include "stt.h"
#include "stt_internal.h"

#define CHUNK 320 /* 20 ms at 16 kHz */
#define PARTIAL_EVERY 5 /* chunks between stt_partial calls (100 ms) */

/* How the audio reaches the recogniser. */
static int telephone, widen = 1;

struct totals {
    size_t errors, words, n;
};

static double now_s(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = 0;
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void on_agent_error(void *user, const char *message)
{
    (void)user;
    fprintf(stderr, "agent refused: %s\n", message);
}

static void usage(void)
{
    fprintf(stderr, "usage: vap-stt-eval [--generic] [--telephone [--no-widen]] [--agents DIR] "
                    "[--utterances FILE] [--wavs DIR] [--cache DIR] [--decoders N] [--quiet] "
                    "AGENT\n");
    exit(2);
}

/* Replaces pcm (whole 20 ms frames) by what a phone line and the worker make of it. */
static int through_phone_line(int16_t *pcm, size_t n)
{
    struct audio_encoder *enc = NULL;
    struct audio_decoder *dec = NULL;
    uint8_t line[AUDIO_FRAME_SAMPLES];
    int rv = audio_encoder_new(AUDIO_CODEC_MULAW, 8000, &enc);
    if (rv == 0)
        rv = audio_decoder_new(AUDIO_CODEC_MULAW, 8000, &dec);
    for (size_t off = 0; rv == 0 && off + CHUNK <= n; off += CHUNK) {
        int len = audio_encode(enc, pcm + off, line, sizeof(line));
        int got = len < 0 ? len : audio_decode(dec, line, (size_t)len, pcm + off, CHUNK);
        if (got < 0)
            rv = got;
        else if (widen)
            audio_widen_narrowband(pcm + off, CHUNK);
    }
    audio_encoder_free(enc);
    audio_decoder_free(dec);
    return rv;
}

/* Decodes one WAV through the streaming calls; returns the audio length in seconds. */
static double decode(struct stt_stream *s, const char *wav, char *hyp, size_t max,
                     double *cpu)
{
    int16_t *pcm = NULL;
    size_t n = 0;
    int rate = 0, rv;
    char partial[1024];
    double t0;
    rv = stt_wav_read(wav, &pcm, &n, &rate);
    if (rv != 0 || rate != 16000) {
        fprintf(stderr, "%s: %s\n", wav, rv ? vap_strerror(rv) : "not 16 kHz");
        free(pcm);
        hyp[0] = '\0';
        return -1;
    }
    if (telephone) {
        n -= n % CHUNK;
        if ((rv = through_phone_line(pcm, n)) != 0) {
            fprintf(stderr, "%s: %s\n", wav, vap_strerror(rv));
            free(pcm);
            hyp[0] = '\0';
            return -1;
        }
    }
    t0 = now_s(CLOCK_THREAD_CPUTIME_ID);
    stt_begin(s);
    for (size_t off = 0, k = 0; off < n; off += CHUNK, k++) {
        size_t len = n - off < CHUNK ? n - off : CHUNK;
        stt_feed(s, pcm + off, len);
        if (k % PARTIAL_EVERY == PARTIAL_EVERY - 1)
            stt_partial(s, partial, sizeof(partial));
    }
    if (stt_end(s, hyp, max) < 0)
        hyp[0] = '\0';
    *cpu += now_s(CLOCK_THREAD_CPUTIME_ID) - t0;
    free(pcm);
    return (double)n / 16000.0;
}

int main(int argc, char **argv)
{
    const char *src = getenv("VAP_SOURCE_DIR");
    char agents_dir[4096], utt_path[4096], wav_dir[4096], err[512];
    const char *cache = NULL, *agent_id = NULL;
    int generic = 0, quiet = 0, decoders = 4;
    struct vap_agents *agents = NULL;
    const struct vap_agent *agent = NULL;
    struct stt_model *m = NULL;
    struct stt_stream **streams;
    struct stt_options opt = {0};
    struct totals in = {0}, out = {0};
    json_t *utts;
    json_error_t jerr;
    double audio = 0, cpu = 0, t0, load_s, create_s = 0;
    long rss0, rss1;
    size_t i;
    json_t *u;
    int rv;

    snprintf(agents_dir, sizeof(agents_dir), "%s/config/agents", src ? src : ".");
    snprintf(utt_path, sizeof(utt_path), "%s/tests/speech/utterances.json", src ? src : ".");
    {
        char exe[2048];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        exe[n > 0 ? n : 0] = '\0';
        if (strrchr(exe, '/'))
            *strrchr(exe, '/') = '\0';
        snprintf(wav_dir, sizeof(wav_dir), "%s/../speech", exe);
    }
    for (int a = 1; a < argc; a++) {
        const char *next = a + 1 < argc ? argv[a + 1] : NULL;
        if (strcmp(argv[a], "--generic") == 0)
            generic = 1;
        else if (strcmp(argv[a], "--telephone") == 0)
            telephone = 1;
        else if (strcmp(argv[a], "--no-widen") == 0)
            widen = 0;
        else if (strcmp(argv[a], "--quiet") == 0)
            quiet = 1;
        else if (strcmp(argv[a], "--agents") == 0 && next)
            snprintf(agents_dir, sizeof(agents_dir), "%s", argv[++a]);
        else if (strcmp(argv[a], "--utterances") == 0 && next)
            snprintf(utt_path, sizeof(utt_path), "%s", argv[++a]);
        else if (strcmp(argv[a], "--wavs") == 0 && next)
            snprintf(wav_dir, sizeof(wav_dir), "%s", argv[++a]);
        else if (strcmp(argv[a], "--cache") == 0 && next)
            cache = argv[++a];
        else if (strcmp(argv[a], "--decoders") == 0 && next)
            decoders = (int)strtol(argv[++a], NULL, 10);
        else if (argv[a][0] != '-' && !agent_id)
            agent_id = argv[a];
        else
            usage();
    }
    if (!agent_id || decoders < 1 || decoders > 64)
        usage();
    vap_log_init("vap-stt-eval", VAP_LOG_WARN);
    rv = vap_agents_load(agents_dir, on_agent_error, NULL, &agents);
    if (rv == 0)
        agent = vap_agents_find(agents, agent_id);
    if (!agent) {
        fprintf(stderr, "no agent %s in %s\n", agent_id, agents_dir);
        return 1;
    }
    utts = json_load_file(utt_path, 0, &jerr);
    if (!json_is_array(utts)) {
        fprintf(stderr, "%s: %s\n", utt_path, jerr.text);
        return 1;
    }

    opt.cache_dir = cache;
    opt.max_streams = decoders;
    rss0 = rss_kb();
    t0 = now_s(CLOCK_MONOTONIC);
    rv = generic ? stt_model_load_generic(&opt, &m, err, sizeof(err))
                 : stt_model_load(agent, &opt, &m, err, sizeof(err));
    load_s = now_s(CLOCK_MONOTONIC) - t0;
    if (rv != 0) {
        fprintf(stderr, "model: %s (%s)\n", err, vap_strerror(rv));
        return 1;
    }
    rss1 = rss_kb();
    streams = calloc((size_t)decoders, sizeof(*streams));
    for (int d = 0; d < decoders; d++) {
        t0 = now_s(CLOCK_MONOTONIC);
        rv = stt_stream_open(m, &streams[d]);
        if (d > 0)
            create_s += now_s(CLOCK_MONOTONIC) - t0;
        if (rv != 0) {
            fprintf(stderr, "stream %d: %s\n", d, vap_strerror(rv));
            return 1;
        }
    }

    json_array_foreach(utts, i, u)
    {
        const char *id = json_string_value(json_object_get(u, "id"));
        const char *text = json_string_value(json_object_get(u, "text"));
        const char *domain = json_string_value(json_object_get(u, "domain"));
        const char *who = json_string_value(json_object_get(u, "agent"));
        char wav[4200 + 64], hyp[1024];
        size_t e = 0, w = 0;
        double secs;
        struct totals *t;
        if (!id || !text || !domain || !who || strcmp(who, agent_id) != 0)
            continue;
        snprintf(wav, sizeof(wav), "%s/%s.wav", wav_dir, id);
        /* each utterance as a new visitor's session: the stream starts from the model's
         * initial state, whatever was decoded before */
        stt_stream_close(streams[0]);
        if (stt_stream_open(m, &streams[0]) != 0)
            return 1;
        secs = decode(streams[0], wav, hyp, sizeof(hyp), &cpu);
        if (secs < 0)
            return 1;
        audio += secs;
        stt_wer(text, hyp, &e, &w);
        t = strcmp(domain, "in") == 0 ? &in : &out;
        t->errors += e;
        t->words += w;
        t->n++;
        if (!quiet)
            printf("%-14s %-3s %2zu/%-2zu ref: %s\n%24s hyp: %s\n", id, domain, e, w, text, "",
                   hyp);
    }
    printf("model: %s (%s LM), audio: %s\n", agent_id, generic ? "generic en-us" : "agent+generic",
           !telephone ? "16 kHz" : widen ? "phone line (8 kHz mu-law), widened"
                                         : "phone line (8 kHz mu-law), not widened");
    printf("WER in-domain:  %5.1f %%  (%zu/%zu words, %zu utterances)\n",
           in.words ? 100.0 * in.errors / in.words : 0.0, in.errors, in.words, in.n);
    printf("WER out-domain: %5.1f %%  (%zu/%zu words, %zu utterances)\n",
           out.words ? 100.0 * out.errors / out.words : 0.0, out.errors, out.words, out.n);
    printf("CPU: %.3f s per audio second (%.1f s audio, %.2f s CPU)\n",
           audio > 0 ? cpu / audio : 0.0, audio, cpu);
    printf("model load: %.2f s (first decoder included); next decoders: %.3f s each\n", load_s,
           decoders > 1 ? create_s / (decoders - 1) : 0.0);
    printf("memory: model+first decoder %.1f MB; %d decoders in use: %.1f MB total RSS\n",
           (rss1 - rss0) / 1024.0, decoders, (rss_kb() - rss0) / 1024.0);
    for (int d = 0; d < decoders; d++)
        stt_stream_close(streams[d]);
    free(streams);
    stt_model_free(m);
    json_decref(utts);
    vap_agents_unref(agents);
    return 0;
}
