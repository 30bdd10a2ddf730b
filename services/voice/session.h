/*
 * One voice session inside a worker, shared by the files that run it: session.c
 * (lifecycle, the table, resume), input.c (audio and client events in: decode, echo,
 * VAD, STT, turn-taking, barge-in), reply.c (dialog and TTS), playout.c (pacing audio
 * out) and events.c (the native protocol's JSON events). Who may touch what is noted
 * on each field group.
 */
#ifndef VAP_VOICE_SESSION_H
#define VAP_VOICE_SESSION_H

#include "voice.h"

#include <jansson.h>

#include "agents.h"

#define SESSION_ID_LEN 40

/* A frame from the gateway waiting for the input thread. */
struct session_item {
    struct session_item *next;
    int kind; /* VAP__LINK_FRAME__KIND__AUDIO / EVENT / DETACH */
    size_t len;
    uint8_t data[]; /* audio bytes, or the event's JSON text (NUL-terminated) */
};

/* A sentence being played: which samples of the reply carry which text. */
struct play_mark {
    size_t start, end;
    char *text;
};

/* A visitor turn for the reply thread. */
struct reply_job {
    int turn_id;
    char *text;
    int64_t voice_end_ms; /* when the visitor's last voiced frame arrived */
    int64_t eot_ms;       /* from then until the turn was declared over */
    int64_t stt_ms;
};

struct voice_session {
    struct voice_session *next; /* worker list, under w->lock */
    struct voice_worker *w;
    struct voice_agent_rt *rt;
    char id[SESSION_ID_LEN];
    char token_jti[64];
    char grant_id[40];
    char request_id[48];
    int64_t otp_id;
    int64_t started_ms;      /* wall clock, for the record */
    int64_t started_mono_ms;

    /* attachment: under w->lock */
    struct voice_peer *peer;
    uint64_t conn_id;
    bool attached;
    int64_t detached_at_ms;

    /* codecs: decoder used by the input thread, encoder by the playout thread */
    enum audio_codec codec;
    int sample_rate;
    struct audio_decoder *dec;
    struct audio_encoder *enc;

    /* input queue: link thread -> input thread */
    pthread_mutex_t qlock;
    pthread_cond_t qcond;
    struct session_item *qhead, *qtail;
    size_t qlen;

    /* input thread only */
    struct vad *vad;
    struct echo_filter *echo;
    struct stt_stream *stt;
    int16_t frame[AUDIO_FRAME_SAMPLES];
    size_t frame_fill;
    bool utterance;          /* STT is decoding an utterance */
    bool barged;             /* this utterance already cancelled the reply */
    bool paused_reply;       /* this utterance paused the agent's audio */
    int64_t last_voice_ms;   /* arrival of the last voiced frame */
    int64_t last_partial_ms;
    char partial[512];
    int next_turn;

    /* reply: input thread -> reply thread */
    pthread_mutex_t rlock;
    pthread_cond_t rcond;
    struct reply_job job;    /* text == NULL: none */
    atomic_int cancel;       /* the reply in flight must stop */
    struct dialog_session *dialog; /* reply thread only */

    /* playout: under play_lock (reply thread appends, playout thread consumes) */
    pthread_mutex_t play_lock;
    int16_t *pcm;
    size_t pcm_len, pcm_cap, pcm_pos;
    int play_turn;           /* turn being spoken, -1 = none */
    bool play_started;       /* agent.audio.start sent */
    bool play_complete;      /* the reply has no more audio coming */
    bool play_paused;        /* the visitor started speaking over it */
    struct play_mark *marks;
    size_t n_marks, cap_marks;
    int64_t client_played_ms; /* from playback events for play_turn; -1 = none yet */
    char *heard_truncate;    /* set on barge-in; reply thread applies to the history */
    bool truncate_pending;
    /* per-turn timing for the metrics event, under play_lock */
    int64_t voice_end_ms, eot_ms, stt_ms, llm_first_token_ms, tts_first_audio_ms;

    /* totals (atomic: several threads add) */
    atomic_llong audio_in_ms;
    atomic_llong audio_out_ms;
    atomic_llong tokens_in, tokens_out;
    atomic_int turns;

    /* lifecycle */
    pthread_t input_thread, reply_thread;
    bool input_started, reply_started;
    atomic_int ended;
    atomic_int end_done;     /* session_end has finished with s: the reaper may free it */
    atomic_int input_exited, reply_exited;
    char end_reason[64];
};

/* ---- session.c ---- */
/* Ends the session once: session.ended + close to the client, record to usage. */
void session_end(struct voice_session *s, const char *reason, int close_code);
/* Sends a JSON event (takes the reference) / an audio frame to the client if attached. */
void session_send_event(struct voice_session *s, json_t *ev);
void session_send_audio(struct voice_session *s, const uint8_t *data, size_t len);
void session_send_error(struct voice_session *s, const char *code, const char *message);

/* ---- input.c ---- */
void *session_input_main(void *arg);

/* ---- reply.c ---- */
void *session_reply_main(void *arg);
/* Queues a visitor turn (replacing any unstarted one) and cancels the reply in flight. */
void session_submit_turn(struct voice_session *s, int turn_id, const char *text,
                         int64_t voice_end_ms, int64_t eot_ms, int64_t stt_ms);
/* Stops the agent's current reply because the visitor spoke over it or asked. */
void session_interrupt(struct voice_session *s);

/* ---- playout.c ---- */
/* Appends reply audio for turn (called by the reply thread). Returns false if that turn
 * was interrupted meanwhile (the caller stops). */
bool playout_append(struct voice_session *s, int turn, const int16_t *pcm, size_t n);
/* Starts a reply's audio for turn: resets the buffer and marks. */
void playout_begin(struct voice_session *s, int turn);
/* Records which text the next samples carry (for truncation on barge-in). */
void playout_mark(struct voice_session *s, int turn, const char *text, size_t start, size_t end);
/* The reply for turn has no more audio. */
void playout_finish(struct voice_session *s, int turn);
/* Whether the agent is audible (has audio queued or playing). */
bool playout_active(struct voice_session *s);
void playout_pause(struct voice_session *s, bool paused);
/* Stops the audio now; returns the ms played and the heard text (malloc'd) or -1. */
int64_t playout_cut(struct voice_session *s, int *turn, char **heard);
size_t playout_length(struct voice_session *s);

/* ---- events.c: the native protocol's server events ---- */
json_t *ev_session_started(const struct voice_session *s, bool resumed);
json_t *ev_simple(const char *type);
json_t *ev_transcript(const char *type, int turn_id, const char *text);
json_t *ev_agent_text(int turn_id, const char *text, bool final);
json_t *ev_turn(const char *type, int turn_id);
json_t *ev_interrupted(int turn_id, int64_t played_ms);
json_t *ev_metrics(int turn_id, int64_t eot_ms, int64_t stt_ms, int64_t llm_ms, int64_t tts_ms,
                   int64_t v2v_ms);
json_t *ev_error(const char *code, const char *message);
json_t *ev_session_ended(const struct voice_session *s);
/* Fills a usage record with the session's totals (strings point into s). */
void session_record(struct voice_session *s, Vap__SessionRecord *rec, bool ended);

#endif
