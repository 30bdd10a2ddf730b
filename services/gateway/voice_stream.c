/*
 * GET /api/voice-agents/stream: the WebSocket endpoint of voice sessions. After the
 * handshake the gateway authenticates the token (Authorization header or ?token=,
 * never logged), checks the agent and options, claims the token's access grant for
 * that agent from vap-auth (no grant: 4403), places the session on a worker and relays
 * frames both ways. Refusals close with a code and a reason (4401, 4403, 4404, 4429,
 * 1013, 1008). Each client has its own writer thread and a bounded queue: a client that
 * stops reading is dropped (1008, "slow consumer") and never stalls the others.
 * A dropped socket leaves the session resumable (?resume=<session_id>) for a while.
 * protocol=twilio streams are translated to and from this relay by voice_twilio.c.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "revocations.h"
#include "voice_gw.h"

#define VOICE_PATH "/api/voice-agents/stream"
/* Twilio drops a <Stream> URL's query string, so protocol=twilio has a path of its own. */
#define VOICE_TWILIO_PATH "/api/voice-agents/stream/twilio"
#define OPEN_WAIT_MS 5000
#define MAX_PLACEMENTS 3 /* workers tried for one new session */
#define CLOSE_DRAIN_MS 2000 /* frames read (and dropped) after our close, waiting for the client's */

static struct gw_ctx *G;

/* ---- the client's writer ---- */

/*
 * Called under c->lock when the writer is told to stop: the connection's read loop has
 * ended (the client closed, or a client still sending after our close frame was cut
 * off), and a close frame may still be queued behind other frames. It is sent anyway,
 * so the client learns the code and reason; the frames before it are dropped.
 */
static void send_queued_close_locked(struct gw_vconn *c)
{
    char payload[125];
    size_t len = 0;
    bool found = false;
    for (struct gw_out *o = c->head; o && !found; o = o->next)
        if (o->opcode == MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE && o->len <= sizeof(payload)) {
            memcpy(payload, o->data, o->len);
            len = o->len;
            found = true;
        }
    if (!found)
        return;
    pthread_mutex_unlock(&c->lock);
    mg_websocket_write(c->conn, MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE, payload, len);
    pthread_mutex_lock(&c->lock);
}

static void *writer_main(void *arg)
{
    struct gw_vconn *c = arg;
    for (;;) {
        struct gw_out *o;
        bool tell_worker;
        pthread_mutex_lock(&c->lock);
        while (!c->head && !c->stop_writer)
            pthread_cond_wait(&c->cond, &c->lock);
        if (c->stop_writer) {
            send_queued_close_locked(c);
            pthread_mutex_unlock(&c->lock);
            break;
        }
        o = c->head;
        c->head = o->next;
        if (!c->head)
            c->tail = NULL;
        c->queued_bytes -= o->len;
        tell_worker = o->opcode == MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE && c->slow_consumer;
        pthread_mutex_unlock(&c->lock);
        if (tell_worker) /* here, not where it was noticed: that thread holds V.lock */
            gw_voice_forward(c, VAP__LINK_FRAME__KIND__CLOSE, NULL, 0, 1008, "slow_consumer");
        if (c->twilio && o->opcode != MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE)
            gw_twilio_write(c, o->opcode, o->data, o->len);
        else
            mg_websocket_write(c->conn, o->opcode, o->data, o->len);
        free(o);
    }
    return NULL;
}

/* Appends under c->lock. */
static void push_locked(struct gw_vconn *c, int opcode, const void *data, size_t len)
{
    struct gw_out *o = malloc(sizeof(*o) + len);
    if (!o)
        return;
    o->next = NULL;
    o->opcode = opcode;
    o->len = len;
    memcpy(o->data, data, len);
    if (c->tail)
        c->tail->next = o;
    else
        c->head = o;
    c->tail = o;
    c->queued_bytes += len;
    pthread_cond_signal(&c->cond);
}

static void drop_queue_locked(struct gw_vconn *c)
{
    while (c->head) {
        struct gw_out *o = c->head;
        c->head = o->next;
        free(o);
    }
    c->tail = NULL;
    c->queued_bytes = 0;
}

static void close_payload(int code, const char *reason, char *out, size_t *len)
{
    size_t n = reason ? strlen(reason) : 0;
    if (n > 123)
        n = 123;
    out[0] = (char)((code >> 8) & 0xff);
    out[1] = (char)(code & 0xff);
    if (n)
        memcpy(out + 2, reason, n);
    *len = 2 + n;
}

void gw_vconn_close(struct gw_vconn *c, int code, const char *reason)
{
    char payload[125];
    size_t len;
    close_payload(code, reason, payload, &len);
    pthread_mutex_lock(&c->lock);
    if (!c->closing) {
        c->closing = true;
        c->closing_since_ms = vap_now_ms();
        push_locked(c, MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE, payload, len);
    }
    pthread_mutex_unlock(&c->lock);
}

void gw_vconn_push(struct gw_vconn *c, int opcode, const void *data, size_t len)
{
    bool slow = false;
    /* Called by the media receive thread with V.lock held: must not call into
     * voice_workers.c (the writer tells the worker when it sends the close). */
    pthread_mutex_lock(&c->lock);
    if (c->closing) {
        pthread_mutex_unlock(&c->lock);
        return;
    }
    if (c->queued_bytes + len > (size_t)G->cfg.voice_client_queue_bytes) {
        char payload[125];
        size_t plen;
        drop_queue_locked(c);
        close_payload(1008, "slow consumer: the client is not reading", payload, &plen);
        c->closing = true;
        c->closing_since_ms = vap_now_ms();
        push_locked(c, MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE, payload, plen);
        slow = c->state == VC_OPEN;
        c->slow_consumer = slow;
        c->state = VC_ENDED;
    } else {
        push_locked(c, opcode, data, len);
    }
    pthread_mutex_unlock(&c->lock);
    if (slow)
        vap_warn(c->request_id, "voice client dropped: slow consumer session=%s", c->session_id);
}

/* ---- a lost worker ---- */

void gw_vconn_worker_lost(struct gw_vconn *c)
{
    char ev[512];
    bool was_open;
    pthread_mutex_lock(&c->lock);
    if (c->state == VC_OPENING) {
        c->refused_code = 1013;
        snprintf(c->refused_reason, sizeof(c->refused_reason), "Voice worker lost; try again");
        c->state = VC_ENDED;
        pthread_cond_broadcast(&c->cond);
        pthread_mutex_unlock(&c->lock);
        return;
    }
    was_open = c->state == VC_OPEN;
    c->state = VC_ENDED;
    pthread_mutex_unlock(&c->lock);
    if (!was_open)
        return;
    vap_warn(c->request_id, "voice session lost with its worker session=%s worker=%s",
             c->session_id, c->worker_id);
    snprintf(ev, sizeof(ev),
             "{\"type\":\"error\",\"code\":\"worker_lost\",\"message\":\"The voice worker "
             "handling this session stopped; start a new session\"}");
    gw_vconn_push(c, MG_WEBSOCKET_OPCODE_TEXT, ev, strlen(ev));
    snprintf(ev, sizeof(ev), "{\"type\":\"session.ended\",\"session_id\":\"%s\",\"reason\":"
             "\"worker_lost\"}", c->session_id);
    gw_vconn_push(c, MG_WEBSOCKET_OPCODE_TEXT, ev, strlen(ev));
    gw_vconn_close(c, 1011, "voice worker lost");
    gw_voice_lost_record(c);
}

/* ---- the WebSocket handlers ---- */

void gw_vconn_refuse(struct mg_connection *conn, struct gw_vconn *c, int code,
                     const char *reason)
{
    char payload[125];
    size_t len;
    close_payload(code, reason, payload, &len);
    mg_websocket_write(conn, MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE, payload, len);
    vap_info(c->request_id, "voice stream refused code=%d reason=\"%s\" agent=%s", code, reason,
             c->agent);
    pthread_mutex_lock(&c->lock);
    c->state = VC_ENDED;
    c->closing = true;
    pthread_mutex_unlock(&c->lock);
}

static int query_var(const struct mg_request_info *ri, const char *name, char *buf, size_t size)
{
    const char *q = ri->query_string;
    buf[0] = '\0';
    if (!q)
        return -1;
    return mg_get_var(q, strlen(q), name, buf, size) >= 0 ? 0 : -1;
}

/* Gives back a claimed grant when the session could not start, so no use is lost. */
static void release_grant(struct gw_vconn *c)
{
    Vap__GrantClaimReply in = VAP__GRANT_CLAIM_REPLY__INIT;
    struct vap_rpc_result res;
    if (!c->grant_id[0])
        return;
    memset(&res, 0, sizeof(res));
    in.grant_id = c->grant_id;
    vap_rpc_call(G->auth, "auth.grant_release", c->request_id, &in.base, NULL,
                 vap_now_ms() + 2000, &res);
    vap_rpc_result_clear(&res);
    c->grant_id[0] = '\0';
}

/*
 * Authenticates, claims the grant, places the session and waits for the worker's answer.
 * On any refusal the socket is closed with a code and a reason; returns 0 once open.
 * Native streams call it from the ready handler, Twilio streams on their `start`.
 */
/* Waits for the worker's answer to OPEN: 0 when open, -1 when refused or silent. */
static int wait_opened(struct gw_vconn *c)
{
    bool gave_up = false;
    struct timespec ts;
    int64_t until = vap_wall_ms() + OPEN_WAIT_MS;
    ts.tv_sec = until / 1000;
    ts.tv_nsec = (until % 1000) * 1000000L;
    pthread_mutex_lock(&c->lock);
    while (c->state == VC_OPENING) {
        if (pthread_cond_timedwait(&c->cond, &c->lock, &ts) != 0)
            break;
    }
    if (c->state == VC_OPENING) {
        c->state = VC_ENDED;
        c->refused_code = 1013;
        snprintf(c->refused_reason, sizeof(c->refused_reason),
                 "Voice worker did not answer; try again");
        gave_up = true;
    }
    pthread_mutex_unlock(&c->lock);
    if (gave_up)
        gw_voice_give_up(c);
    return c->state == VC_OPEN ? 0 : -1;
}

int gw_vconn_start(struct mg_connection *conn, struct gw_vconn *c,
                   const struct gw_stream_options *o)
{
    struct vap_token_claims claims;
    Vap__SessionOpen open = VAP__SESSION_OPEN__INIT;
    enum gw_token_state st;
    int64_t deadline;
    int rv_open;
    const char *resume = o->resume;
    char tried[MAX_PLACEMENTS][GW_WORKER_ID_MAX];

    if (!o->token[0] ||
        vap_token_verify_keys(&G->token_keys, o->token, vap_wall_ms() / 1000, &claims) != 0) {
        gw_vconn_refuse(conn, c, 4401, "Unauthorized: a valid token is required");
        return -1;
    }
    st = gw_revocations_check(G->revocations, &claims);
    if (st == GW_TOKEN_REVOKED) {
        gw_vconn_refuse(conn, c, 4401, "Unauthorized: token has been revoked");
        return -1;
    }
    if (st == GW_TOKEN_UNKNOWN) {
        gw_vconn_refuse(conn, c, 1013, "Authorization service unavailable; try again");
        return -1;
    }
    if (!c->agent[0] || !gw_agent_exists(c->agent)) {
        gw_vconn_refuse(conn, c, 4404, "Unknown agent");
        return -1;
    }
    snprintf(c->token_jti, sizeof(c->token_jti), "%s", claims.jti);
    c->otp_id = claims.role == VAP_ROLE_OTP ? claims.otp_id : 0;
    if (gw_voice_token_sessions(c->token_jti) >= G->cfg.voice_max_per_token) {
        gw_vconn_refuse(conn, c, 4429, "Too many sessions for this token");
        return -1;
    }
    deadline = vap_now_ms() + G->cfg.rpc_timeout_ms;
    if (!resume[0]) {
        Vap__GrantClaimRequest in = VAP__GRANT_CLAIM_REQUEST__INIT;
        struct vap_rpc_result res;
        int rv;
        memset(&res, 0, sizeof(res));
        in.token_jti = c->token_jti;
        in.agent_type = c->agent;
        rv = vap_rpc_call(G->auth, "auth.grant_claim", c->request_id, &in.base,
                          &vap__grant_claim_reply__descriptor, deadline, &res);
        if (rv != 0 || res.status >= 500) {
            vap_rpc_result_clear(&res);
            gw_vconn_refuse(conn, c, 1013, "Authorization service unavailable; try again");
            return -1;
        }
        if (res.status != 200) {
            vap_rpc_result_clear(&res);
            gw_vconn_refuse(conn, c, 4403, "No access grant for this agent: call "
                                           "/api/agents/access first (or the code is exhausted)");
            return -1;
        }
        snprintf(c->grant_id, sizeof(c->grant_id), "%s",
                 ((Vap__GrantClaimReply *)res.reply)->grant_id);
        vap_rpc_result_clear(&res);
    }

    open.agent_type = c->agent;
    open.codec = (char *)o->codec;
    open.sample_rate = o->sample_rate;
    open.protocol = (char *)o->protocol;
    open.otp_id = c->otp_id;
    open.subject = claims.sub;
    open.token_jti = c->token_jti;
    open.grant_id = c->grant_id;
    open.resume_session_id = (char *)resume;
    open.request_id = c->request_id;
    c->started_wall_ms = vap_wall_ms();
    /* A worker that refuses (full by the time the OPEN reached it: heartbeats lag a
     * burst, and other gateways place sessions too) holds no session: try another. */
    for (int attempt = 0;; attempt++) {
        rv_open = gw_voice_open(c, &open, resume, (int)G->cfg.voice_max_per_token, tried,
                                attempt);
        if (rv_open != 0) {
            release_grant(c);
            if (rv_open == VAP_ETOOBIG)
                gw_vconn_refuse(conn, c, 4429, "Too many sessions for this token");
            else if (resume[0])
                gw_vconn_refuse(conn, c, 4404, "No such session to resume");
            else if (attempt > 0)
                gw_vconn_refuse(conn, c, 1013, "Every voice worker is full; try again");
            else
                gw_vconn_refuse(conn, c, 1013, "No voice worker available; try again");
            return -1;
        }
        if (wait_opened(c) == 0)
            break;
        if (!resume[0] && c->refused_by_worker && c->refused_code == 1013 &&
            attempt + 1 < MAX_PLACEMENTS) {
            snprintf(tried[attempt], sizeof(tried[attempt]), "%s", c->worker_id);
            gw_voice_unregister(c);
            pthread_mutex_lock(&c->lock);
            c->state = VC_OPENING;
            c->refused_by_worker = false;
            c->refused_code = 0;
            pthread_mutex_unlock(&c->lock);
            continue;
        }
        {
            char reason[124];
            int code = c->refused_code;
            snprintf(reason, sizeof(reason), "%s", c->refused_reason);
            gw_voice_unregister(c);
            if (!resume[0])
                release_grant(c);
            gw_vconn_refuse(conn, c, code, reason);
            return -1;
        }
    }
    vap_info(c->request_id, "voice session open session=%s worker=%s agent=%s protocol=%s "
             "resumed=%d", c->session_id, c->worker_id, c->agent, o->protocol, resume[0] != 0);
    if (pthread_create(&c->writer, NULL, writer_main, c) == 0) {
        c->writer_started = true;
    } else {
        gw_voice_forward(c, VAP__LINK_FRAME__KIND__CLOSE, NULL, 0, 1011, "internal_error");
        gw_vconn_refuse(conn, c, 1011, "Internal error");
        return -1;
    }
    return 0;
}

static void ready_handler(struct mg_connection *conn, void *cbdata)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    struct gw_vconn *c = calloc(1, sizeof(*c));
    struct gw_stream_options *o = calloc(1, sizeof(*o));
    char rate[16], protocol[16];
    const char *h = mg_get_header(conn, "Authorization");
    (void)cbdata;

    if (!c || !o) {
        free(c);
        free(o);
        mg_websocket_write(conn, MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE, "\x03\xf3", 2);
        return;
    }
    c->gw = G;
    c->conn = conn;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    c->state = VC_OPENING;
    snprintf(c->request_id, sizeof(c->request_id), "%s-%llx", G->request_id_prefix,
             (unsigned long long)atomic_fetch_add(&G->request_counter, 1));
    mg_set_user_connection_data(conn, c);
    if (atomic_fetch_add(&G->voice_streams, 1) >= G->cfg.voice_max_streams) {
        /* Threads are kept for REST: the client may retry or use another gateway. */
        gw_vconn_refuse(conn, c, 1013, "This gateway has all the voice streams it can hold; "
                                       "try again");
        free(o);
        return;
    }

    query_var(ri, "agent_type", c->agent, sizeof(c->agent));
    query_var(ri, "codec", o->codec, sizeof(o->codec));
    query_var(ri, "sample_rate", rate, sizeof(rate));
    query_var(ri, "protocol", protocol, sizeof(protocol));
    query_var(ri, "resume", o->resume, sizeof(o->resume));
    if (h && strncasecmp(h, "Bearer ", 7) == 0)
        snprintf(o->token, sizeof(o->token), "%s", h + 7);
    else
        query_var(ri, "token", o->token, sizeof(o->token));

    if (strcmp(protocol, "twilio") == 0 ||
        (ri->local_uri && strcmp(ri->local_uri, VOICE_TWILIO_PATH) == 0)) {
        /* Nothing happens until the bridge's `start` (which may carry the token). */
        if (gw_twilio_accept(c, o) != 0)
            gw_vconn_refuse(conn, c, 1011, "Internal error");
        sodium_memzero(o->token, sizeof(o->token));
        free(o);
        return;
    }
    if (protocol[0] && strcmp(protocol, "native") != 0) {
        gw_vconn_refuse(conn, c, 1008, "protocol must be native or twilio");
    } else if (o->codec[0] && strcmp(o->codec, "opus") != 0 && strcmp(o->codec, "pcm16") != 0) {
        gw_vconn_refuse(conn, c, 1008, "codec must be opus or pcm16");
    } else if (rate[0] && strcmp(rate, "16000") != 0 && strcmp(rate, "48000") != 0) {
        gw_vconn_refuse(conn, c, 1008, "sample_rate must be 16000 or 48000");
    } else {
        if (!o->codec[0])
            snprintf(o->codec, sizeof(o->codec), "opus");
        o->sample_rate = rate[0] ? atoi(rate) : 16000;
        o->protocol = "native";
        gw_vconn_start(conn, c, o);
    }
    sodium_memzero(o->token, sizeof(o->token));
    free(o);
}

/* After our close frame, as RFC 6455 asks, read on (discarding) until the client's
 * close answers it: closing the socket with frames still unread makes the kernel reset
 * the connection, and the reset can destroy our close frame before the client has read
 * it (it then sees no code or reason). True while c is closing; *keep_reading says
 * whether to go on (a client still sending past CLOSE_DRAIN_MS is cut off). */
static bool draining_after_close(struct gw_vconn *c, int *keep_reading)
{
    bool closing;
    int64_t since;
    pthread_mutex_lock(&c->lock);
    closing = c->closing;
    since = c->closing_since_ms;
    pthread_mutex_unlock(&c->lock);
    if (closing)
        *keep_reading = vap_now_ms() - since < CLOSE_DRAIN_MS;
    return closing;
}

static int data_handler(struct mg_connection *conn, int bits, char *data, size_t len,
                        void *cbdata)
{
    struct gw_vconn *c = mg_get_user_connection_data(conn);
    int op = bits & 0x0f, keep = 1;
    bool open;
    (void)cbdata;

    if (op == MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE)
        return 0;
    if (op == MG_WEBSOCKET_OPCODE_PING) {
        mg_websocket_write(conn, MG_WEBSOCKET_OPCODE_PONG, data, len);
        return 1;
    }
    if (!c || op == MG_WEBSOCKET_OPCODE_PONG)
        return 1;
    if (draining_after_close(c, &keep))
        return keep;
    if (c->twilio)
        return gw_twilio_client_frame(conn, c, op, data, len);
    pthread_mutex_lock(&c->lock);
    open = c->state == VC_OPEN && !c->closing;
    pthread_mutex_unlock(&c->lock);
    if (!open)
        return 1;
    if (len > GW_VOICE_FRAME_MAX) {
        gw_voice_forward(c, VAP__LINK_FRAME__KIND__CLOSE, NULL, 0, 1009, "frame_too_large");
        gw_vconn_close(c, 1009, "Frame too large (64 KiB at most)");
        return 1;
    }
    if (op == MG_WEBSOCKET_OPCODE_TEXT) {
        char *text = malloc(len + 1);
        if (!text)
            return 1;
        memcpy(text, data, len);
        text[len] = '\0';
        if (strlen(text) != len) {
            const char *ev = "{\"type\":\"error\",\"code\":\"invalid_json\",\"message\":"
                             "\"Text frames must be JSON without NUL bytes\"}";
            gw_vconn_push(c, MG_WEBSOCKET_OPCODE_TEXT, ev, strlen(ev));
        } else {
            gw_voice_forward(c, VAP__LINK_FRAME__KIND__EVENT, text, len, 0, NULL);
        }
        free(text);
    } else if (op == MG_WEBSOCKET_OPCODE_BINARY) {
        c->audio_in_frames++;
        gw_voice_forward(c, VAP__LINK_FRAME__KIND__AUDIO, data, len, 0, NULL);
    } else {
        gw_vconn_close(c, 1003, "Fragmented messages are not supported");
    }
    return 1;
}

static void close_handler(const struct mg_connection *conn, void *cbdata)
{
    struct gw_vconn *c = mg_get_user_connection_data(conn);
    bool was_open;
    (void)cbdata;
    if (!c)
        return;
    atomic_fetch_sub(&G->voice_streams, 1);
    pthread_mutex_lock(&c->lock);
    was_open = c->state == VC_OPEN;
    c->state = VC_ENDED;
    c->stop_writer = true;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
    if (c->writer_started)
        pthread_join(c->writer, NULL);
    gw_voice_unregister(c);
    if (was_open) /* the client dropped: the session waits for a resume */
        gw_voice_forward(c, VAP__LINK_FRAME__KIND__DETACH, NULL, 0, 0, NULL);
    else if (c->slow_consumer) /* the writer may have stopped before telling the worker */
        gw_voice_forward(c, VAP__LINK_FRAME__KIND__CLOSE, NULL, 0, 1008, "slow_consumer");
    drop_queue_locked(c);
    gw_twilio_free(c->twilio);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->cond);
    free(c);
}

int gw_is_voice_upgrade(struct mg_connection *conn)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    const char *up = mg_get_header(conn, "Upgrade");
    return ri->local_uri &&
           (strcmp(ri->local_uri, VOICE_PATH) == 0 || strcmp(ri->local_uri, VOICE_TWILIO_PATH) == 0) &&
           up &&
           strcasecmp(up, "websocket") == 0 && strcmp(ri->request_method, "GET") == 0;
}

void gw_route_voice_stream_http(struct gw_req *r)
{
    gw_add_header(r, "Upgrade", "websocket");
    gw_reply_error(r, 426, "This endpoint is a WebSocket: connect with Upgrade: websocket");
}

void gw_voice_install(struct mg_context *mg, struct gw_ctx *gw)
{
    G = gw;
    mg_set_websocket_handler(mg, VOICE_PATH, NULL, ready_handler, data_handler, close_handler,
                             gw);
    mg_set_websocket_handler(mg, VOICE_TWILIO_PATH, NULL, ready_handler, data_handler,
                             close_handler, gw);
}
