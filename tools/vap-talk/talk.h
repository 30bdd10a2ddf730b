/*
 * vap-talk, the command-line voice client: what its files share. main.c parses the
 * options and runs the sessions; http.c logs in and takes access grants; wav.c reads the
 * visitor's speech and writes the agent's; mic.c paces the microphone; play.c is the
 * make-believe loudspeaker that decides how much of the agent's audio has been "played";
 * ws.c is the WebSocket; native.c and twilio.c speak the two stream protocols; stats.c
 * does the percentiles; say.c prints. Everything inside is 16 kHz mono PCM16 in 20 ms
 * frames, like the voice worker (services/voice/audio/audio.h).
 */
#ifndef VAP_TALK_H
#define VAP_TALK_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audio.h"

#define TALK_RATE AUDIO_RATE
#define TALK_FRAME_MS AUDIO_FRAME_MS
#define TALK_FRAME_SAMPLES AUDIO_FRAME_SAMPLES
#define TALK_MAX_SESSIONS 64
#define TALK_MAX_TURNS 64 /* latencies kept per session */
#define TALK_GRACE_MS 500 /* after the agent's reply has played, before the next step */

/* Set by SIGINT/SIGTERM: every session ends properly at its next tick. */
extern volatile sig_atomic_t talk_stop_requested;

/* A session's (and the program's) outcome; main maps it to the exit code. */
enum talk_status {
    TALK_OK = 0,     /* exit 0 */
    TALK_FAILED = 1, /* exit 1: network, timeout, server error, nothing heard */
    TALK_USAGE = 2,  /* exit 2: bad options or input file */
    TALK_REFUSED = 3 /* exit 3: the server said no (login, access or stream refused) */
};

enum talk_protocol { TALK_NATIVE = 0, TALK_TWILIO = 1 };

struct talk_options {
    const char *base;  /* http(s)://host[:port][/prefix] */
    const char *code;  /* one-time code, or NULL with token */
    const char *token; /* a token to use instead of logging in */
    const char *agent;
    const char *wav_path;
    const char *out_path;
    const char *text;
    enum talk_protocol protocol;
    enum audio_codec codec; /* native only: PCM16 or OPUS */
    int rate;               /* native only: 16000 or 48000 */
    int sessions;
    int per_login; /* sessions sharing one login (the gateway's per-token stream limit) */
    int timeout_s; /* longest wait for one reply */
    bool barge_in; /* speak at once, over the greeting */
    bool json;
    bool quiet;
};

/* 16 kHz mono PCM16 with a ceiling; grows on append. */
struct talk_pcm {
    int16_t *s;
    size_t n, cap, max;
};

/* The visitor's speech, read once and shared read-only by every session. */
struct talk_speech {
    struct talk_pcm pcm;
    int64_t speech_end_ms; /* end of the last voiced frame, from the start of the file */
};

/* What one session measured; filled by the session, read by main after it ended. */
struct talk_result {
    enum talk_status status;
    char message[256];              /* why it failed or was refused, in words */
    int close_code;                 /* the stream's close code, 0 if none */
    int turns;                      /* replies heard to completion */
    int64_t v2v_ms[TALK_MAX_TURNS]; /* server's voice_to_voice_ms (native) */
    int n_v2v;
    int64_t first_audio_ms[TALK_MAX_TURNS]; /* end of speech / text sent -> first agent audio */
    int n_first;
    struct talk_pcm out; /* the agent's audio as played (for --out), 16 kHz */
};

/* One session's identity for printing: its number and the time it began. */
struct talk_who {
    int index;     /* 1-based */
    int64_t t0_ms; /* vap_now_ms() at start */
};

/* A session to run: the options, the speech (NULL without --wav), a token, the result. */
struct talk_session {
    const struct talk_options *o;
    const struct talk_speech *speech;
    char token[2048];
    struct talk_who who;
    struct talk_result res;
};

/* ---- http.c: REST calls (libcurl) ---------------------------------------------------- */

/* Once, before any thread starts (curl_global_init). Returns 0 or VAP_EINTERNAL. */
int talk_http_init(void);
void talk_http_cleanup(void);
/* POST /api/auth/login/otp; the token goes into token. Returns a talk_status; msg says
 * why when it is not TALK_OK. Blocks up to 15 s. Thread-safe. */
enum talk_status talk_http_login(const char *base, const char *code, char *token, size_t size,
                                 char *msg, size_t msg_size);
/* POST /api/agents/access for agent with token: one voice session within 5 minutes. */
enum talk_status talk_http_access(const char *base, const char *token, const char *agent, char *msg,
                                  size_t msg_size);

/* ---- wav.c: WAV files and PCM buffers ------------------------------------------------ */

/* Sets an empty buffer that may hold up to max samples. */
void talk_pcm_init(struct talk_pcm *p, size_t max);
/* Appends n samples; VAP_ETOOBIG past the ceiling (nothing appended), VAP_ENOMEM. */
int talk_pcm_append(struct talk_pcm *p, const int16_t *s, size_t n);
void talk_pcm_free(struct talk_pcm *p);
/* Reads a PCM16 WAV of any rate (8-192 kHz) and channel count into 16 kHz mono (the
 * channels averaged, speexdsp resampling). On failure returns a vap_err and err says why. */
int talk_wav_read(const char *path, struct talk_speech *out, char *err, size_t err_size);
/* Writes 16 kHz mono PCM16 as a WAV file. Returns 0 or VAP_EUNAVAIL (err says why). */
int talk_wav_write(const char *path, const struct talk_pcm *p, char *err, size_t err_size);
/* Milliseconds from the start to the end of the last 20 ms frame that holds speech. */
int64_t talk_speech_end_ms(const int16_t *s, size_t n);

/* ---- mic.c: the microphone, one 20 ms frame per tick in real time -------------------- */

struct talk_mic {
    const int16_t *pcm; /* what is being "said" (not owned), NULL for silence */
    size_t n, pos;
    int64_t speech_end_sample;
    int64_t speech_end_at_ms; /* when the frame holding the end of speech left, 0 before */
    int64_t next_ns;          /* monotonic time of the next tick */
};

void talk_mic_start(struct talk_mic *m);
/* Starts saying speech (16 kHz) from the next frame on; silence after it. */
void talk_mic_say(struct talk_mic *m, const struct talk_speech *speech);
/* The next frame: speech or silence. Returns true while speech remains after it. */
bool talk_mic_next(struct talk_mic *m, int16_t frame[TALK_FRAME_SAMPLES], int64_t now_ms);
bool talk_mic_speaking(const struct talk_mic *m);
/* Sleeps until the next tick (20 ms after the last). Falls back into step when late. */
void talk_mic_wait(struct talk_mic *m);

/* ---- play.c: the loudspeaker that is not there --------------------------------------- */

/* The agent's audio "plays" in real time from the moment it arrives: a frame that arrives
 * while earlier audio is still playing waits its turn, as in a jitter buffer. */
struct talk_player {
    int64_t until_ms;    /* when everything received so far will have played */
    int64_t received_ms; /* audio received for the current reply */
};

void talk_player_reset(struct talk_player *p, int64_t now_ms);
/* A new reply begins: its played_ms counts from 0. */
void talk_player_begin(struct talk_player *p, int64_t now_ms);
void talk_player_push(struct talk_player *p, int64_t now_ms, int64_t ms);
/* Milliseconds of the current reply played by now. */
int64_t talk_player_played(const struct talk_player *p, int64_t now_ms);
int64_t talk_player_unplayed(const struct talk_player *p, int64_t now_ms);
/* Nothing left to play, since how long (0 while playing). */
int64_t talk_player_idle_ms(const struct talk_player *p, int64_t now_ms);
/* Drops what has not played yet; returns the milliseconds dropped. */
int64_t talk_player_clear(struct talk_player *p, int64_t now_ms);

/* ---- ws.c: the WebSocket (civetweb's client) ----------------------------------------- */

struct talk_ws;

/* Called on civetweb's reader thread: one whole text or binary message. */
typedef void (*talk_ws_message_fn)(void *user, bool text, const char *data, size_t len);
/* Called once, on the reader thread, when the socket closed (code 1006 if no close frame). */
typedef void (*talk_ws_closed_fn)(void *user, int code, const char *reason);

/* Once, before any thread starts: civetweb's library (with TLS for an https base).
 * Returns 0, or VAP_EUNAVAIL when TLS was asked for and civetweb has none. */
int talk_ws_init(const char *base);
void talk_ws_cleanup(void);
/* Opens base + path_query as a WebSocket. On failure returns a vap_err with err filled.
 * The callbacks may run before this returns. */
int talk_ws_open(const char *base, const char *path_query, talk_ws_message_fn on_message,
                 talk_ws_closed_fn on_closed, void *user, struct talk_ws **out, char *err,
                 size_t err_size);
/* Thread-safe sends; 0, or VAP_EUNAVAIL once the socket is closed. */
int talk_ws_send_text(struct talk_ws *ws, const char *text);
int talk_ws_send_binary(struct talk_ws *ws, const void *data, size_t len);
/* Sends a close frame (once). */
void talk_ws_close(struct talk_ws *ws, int code, const char *reason);
/* Joins the reader thread and frees everything (may wait up to ~2 s if the peer has not
 * closed yet). */
void talk_ws_free(struct talk_ws *ws);
/* Percent-encodes in for a query string. Returns 0 or VAP_ETOOBIG. */
int talk_url_escape(const char *in, char *out, size_t size);
/* A close code in words ("unknown agent (or no such session to resume)"). */
const char *talk_close_words(int code);

/* ---- native.c / twilio.c: one session each ------------------------------------------- */

/* Runs one session to its end on the calling thread; fills s->res. */
void talk_native_run(struct talk_session *s);
void talk_twilio_run(struct talk_session *s);

/* ---- stats.c ------------------------------------------------------------------------- */

/* The p-th percentile (0..100, nearest rank) of n values; values are not changed. */
int64_t talk_percentile(const int64_t *v, size_t n, double p);
/* Prints the per-session table and the percentiles (human) or one JSON summary line. */
void talk_print_summary(const struct talk_options *o, const struct talk_session *s, int n);

/* ---- say.c: output ------------------------------------------------------------------- */

void talk_say_init(const struct talk_options *o);
/* One human line on stdout, "[1.23s] ..." ("[#2 1.23s] ..." with several sessions); not
 * printed with --json or --quiet. Thread-safe. */
void talk_say(const struct talk_who *who, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* One line on stderr, always. */
void talk_warn(const struct talk_who *who, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* With --json: {"t":..,"session":n,"event":<raw>} on stdout. raw must be a JSON text
 * (the caller has parsed it); it is printed as is unless it spans lines. */
void talk_say_event(const struct talk_who *who, const char *raw, size_t len);
/* With --json: one line with the given JSON object text, as is. */
void talk_say_json(const char *line);
/* Seconds since the session began. */
double talk_elapsed(const struct talk_who *who);

/* Records a failure or refusal once (the first reason wins). */
void talk_fail(struct talk_result *r, enum talk_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
