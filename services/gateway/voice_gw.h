/*
 * The gateway's side of voice sessions. voice_workers.c keeps the table of workers
 * (fed by their heartbeats), one media link per worker (nng pair1, frames of every
 * session multiplexed and tagged), placement (least loaded, live, not draining), and
 * tells clients at once when a worker is lost. voice_stream.c is the WebSocket
 * endpoint: authentication, grant claim, placement, and the relay, with one writer
 * thread and a bounded queue per client so a slow client never stalls another.
 * voice_twilio.c translates protocol=twilio (Twilio Media Streams) to that relay.
 */
#ifndef VAP_GATEWAY_VOICE_H
#define VAP_GATEWAY_VOICE_H

#include <civetweb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "gateway.h"
#include "voice.pb-c.h"

struct gw_worker;
struct gw_twilio;

#define GW_VOICE_FRAME_MAX (64 * 1024) /* largest client frame (1009 beyond) */
#define GW_WORKER_ID_MAX 96

/* How a stream asked to be served: query string, Authorization header, Twilio start. */
struct gw_stream_options {
    char token[2048];
    char codec[16];  /* opus | pcm16 | mulaw */
    int sample_rate; /* 16000 | 48000 (8000 for mulaw) */
    char resume[160];
    const char *protocol; /* "native" | "twilio" */
};

/* An item for a client's writer thread. */
struct gw_out {
    struct gw_out *next;
    int opcode; /* MG_WEBSOCKET_OPCODE_* */
    size_t len;
    char data[];
};

enum gw_vconn_state { VC_OPENING, VC_OPEN, VC_ENDED };

/* One client WebSocket carrying a voice session. */
struct gw_vconn {
    struct gw_vconn *next_in_table;
    uint64_t id;
    struct gw_ctx *gw;
    struct mg_connection *conn;
    struct gw_worker *worker; /* where the session lives (not owned) */
    char worker_id[GW_WORKER_ID_MAX];
    uint64_t placed_epoch; /* the worker's heartbeat count when placed there (0: none) */
    char session_id[160];
    char agent[64];
    char token_jti[48];
    char grant_id[40];
    char request_id[40];
    int64_t otp_id;
    int64_t started_wall_ms;
    int64_t audio_in_frames, audio_out_frames;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    enum gw_vconn_state state;
    int refused_code;        /* REFUSED from the worker while opening */
    char refused_reason[124];
    bool refused_by_worker; /* the worker answered REFUSED: it holds no session */
    struct gw_out *head, *tail;
    size_t queued_bytes;
    bool closing;            /* a close frame is queued: nothing after it */
    int64_t closing_since_ms; /* when it was queued (monotonic) */
    bool slow_consumer;      /* closed for not reading: the writer tells the worker */
    bool stop_writer;
    pthread_t writer;
    bool writer_started;
    struct gw_twilio *twilio; /* protocol=twilio: the translation's state (else NULL) */
};

/* ---- voice_workers.c ---- */
int gw_voice_start(struct gw_ctx *gw, const char *heartbeat_url);
void gw_voice_stop(void);
/* Live workers (for /readyz and metrics). */
int gw_voice_live_workers(void);
int gw_voice_sessions(void);
/*
 * The gateway is stopping: closes every open stream with 1012 and a reason, so clients
 * know to resume (the sessions stay on their workers for VOICE_RESUME_WINDOW_MS).
 */
void gw_voice_close_all_resumable(void);

/*
 * Places a new session (least loaded live worker serving agent, other than the n_avoid
 * workers in avoid) or finds the worker of session_id for a resume, registers c, and
 * sends OPEN. Returns 0, VAP_ETOOBIG when the token has max_per_token sessions already,
 * or VAP_EUNAVAIL when no worker can take it.
 */
int gw_voice_open(struct gw_vconn *c, const Vap__SessionOpen *open, const char *resume_id,
                  int max_per_token, const char (*avoid)[GW_WORKER_ID_MAX], int n_avoid);
/* Sessions of this token open through this gateway (VAP_ETOOBIG / 4429 past the limit). */
int gw_voice_token_sessions(const char *jti);
/* Sends a client frame to the session's worker (AUDIO / EVENT / DETACH / CLOSE). */
int gw_voice_forward(struct gw_vconn *c, int kind, const void *data, size_t len,
                     int close_code, const char *reason);
/* Removes c from the table (no more frames are routed to it). */
void gw_voice_unregister(struct gw_vconn *c);
/*
 * The gateway gives c's session up without the worker knowing (no OPENED in time):
 * if the worker opens it anyway, it is told to end it.
 */
void gw_voice_give_up(struct gw_vconn *c);

/* ---- voice_stream.c ---- */
/* Whether the request is a WebSocket upgrade on the voice stream path. */
int gw_is_voice_upgrade(struct mg_connection *conn);
/* The stream path without an upgrade: 426. */
void gw_route_voice_stream_http(struct gw_req *r);
void gw_voice_install(struct mg_context *mg, struct gw_ctx *gw);
/* Queues a frame for the client (drops the client if it cannot keep up). */
void gw_vconn_push(struct gw_vconn *c, int opcode, const void *data, size_t len);
/* Queues a close frame with code and reason; later frames are dropped. */
void gw_vconn_close(struct gw_vconn *c, int code, const char *reason);
/* The worker went away: error + session.ended to the client, close, usage record. */
void gw_vconn_worker_lost(struct gw_vconn *c);
/* voice_lost.c: reports a lost session's usage record to vap-usage in the background. */
void gw_voice_lost_record(struct gw_vconn *c);
/* At stop, before the usage client closes: lost sessions' records get one last try. */
void gw_vconn_lost_records_stop(void);
/*
 * Authenticates o's token, claims the grant, places the session and waits for the
 * worker; starts c's writer. Refuses (closes the socket) on failure: returns -1.
 */
int gw_vconn_start(struct mg_connection *conn, struct gw_vconn *c,
                   const struct gw_stream_options *o);
/* Closes the socket at once with code and reason (before c's writer exists). */
void gw_vconn_refuse(struct mg_connection *conn, struct gw_vconn *c, int code,
                     const char *reason);

/* ---- voice_twilio.c: protocol=twilio (Twilio Media Streams) ---- */
/* Keeps the query's options; the session starts on the bridge's `start`. */
int gw_twilio_accept(struct gw_vconn *c, const struct gw_stream_options *query);
/* A frame from the bridge (any state). Returns 1 (keep the connection). */
int gw_twilio_client_frame(struct mg_connection *conn, struct gw_vconn *c, int opcode,
                           const char *data, size_t len);
/* On c's writer thread: sends a worker frame to the bridge in Twilio's form. */
void gw_twilio_write(struct gw_vconn *c, int opcode, const char *data, size_t len);
void gw_twilio_free(struct gw_twilio *t);

#endif
