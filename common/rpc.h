/*
 * Request/reply calls between services: a protobuf-c envelope (proto/rpc.proto) around
 * each method's own message. This is the one place that encodes, sends, waits with a
 * deadline, receives and decodes; no service hand-rolls it.
 *
 * The URL picks the transport: tcp:// and ipc:// go over plain stream sockets
 * (rpc_stream.h: a pooled connection per call, a thread per server connection, two
 * thread wake-ups a call); tls+tcp:// goes over nng req0/rep0 with mutual TLS (link.h).
 * Callers see no difference.
 *
 * Delivery is at-least-once: a request whose connection broke (e.g. the server was
 * restarted) is sent again while its deadline allows, so methods that change state
 * must be idempotent on the request id, or harmless to repeat.
 */
#ifndef VAP_RPC_H
#define VAP_RPC_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#define VAP_RPC_DETAIL_MAX 256
#define VAP_RPC_FIELD_MAX 64

/* ---- client ---- */

struct vap_rpc_client;

/* The outcome of a call that got an answer (whatever its status). */
struct vap_rpc_result {
    int status;                    /* HTTP-like: 200, 201, 4xx, 5xx */
    char detail[VAP_RPC_DETAIL_MAX];
    char field[VAP_RPC_FIELD_MAX]; /* with 422: which body field */
    uint32_t retry_after;          /* with 429 */
    ProtobufCMessage *reply;       /* decoded body when 2xx and a descriptor was given;
                                      free with vap_rpc_result_clear() */
};

/*
 * Opens a client for url (tcp://host:port, ipc://path or tls+tcp://host:port). It
 * connects when needed (nng: dials in the background and keeps reconnecting) and never
 * blocks on the peer here. *out is owned by the caller.
 */
int vap_rpc_client_open(struct vap_rpc_client **out, const char *url);

/* Closes the client; calls in progress fail. */
void vap_rpc_client_close(struct vap_rpc_client *client);

/*
 * Calls method with request (may be NULL for an empty body) and waits until
 * deadline_ms (monotonic) at most. reply_desc says how to decode a 2xx body (NULL:
 * ignore it). Returns 0 when an answer arrived (see res->status), VAP_ETIMEDOUT when
 * none came in time, VAP_EUNAVAIL when the socket failed, VAP_EPROTO for an answer that
 * does not decode. Thread-safe; blocks the calling thread only.
 */
int vap_rpc_call(struct vap_rpc_client *client, const char *method, const char *request_id,
                 const ProtobufCMessage *request, const ProtobufCMessageDescriptor *reply_desc,
                 int64_t deadline_ms, struct vap_rpc_result *res);

/* Frees res->reply (safe to call twice). */
void vap_rpc_result_clear(struct vap_rpc_result *res);

/* ---- server ---- */

/* What a handler fills in. Start: status 200, no body. */
struct vap_rpc_response {
    int status;
    char detail[VAP_RPC_DETAIL_MAX];
    char field[VAP_RPC_FIELD_MAX];
    uint32_t retry_after;
    uint8_t *body; /* owned by the server loop; set with vap_rpc_response_body() */
    size_t body_len;
};

/* The request a handler sees; valid only during the handler call. */
struct vap_rpc_request {
    const char *method;
    const char *request_id;
    int64_t deadline_ms;           /* monotonic, computed from the caller's budget */
    const ProtobufCMessage *body;  /* decoded with the method's descriptor */
};

typedef void (*vap_rpc_handler_fn)(void *user, const struct vap_rpc_request *req,
                                   struct vap_rpc_response *resp);

struct vap_rpc_method {
    const char *name;
    const ProtobufCMessageDescriptor *request_desc;
    vap_rpc_handler_fn handler;
    /* Nonzero for a handler that mostly waits rather than computes (e.g. a spend waiting
     * to be grouped into a batch's commit): it does not count against the server's
     * limit of handlers running at once, so many can wait while that limit stays near
     * the number of cores for the handlers that compute. */
    int waits;
};

/* Packs msg as the reply body (copies it; the caller still owns msg). 0 or VAP_ENOMEM. */
int vap_rpc_response_body(struct vap_rpc_response *resp, const ProtobufCMessage *msg);

/* Sets an error status with a printf-formatted detail. */
void vap_rpc_response_error(struct vap_rpc_response *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

struct vap_rpc_server;

/*
 * Listens on url and serves each request with its method's handler on a thread that may
 * block (e.g. on the database); at most nthreads handlers run at once, not counting the
 * methods marked waits. tcp:// and ipc://: each connection has its own thread, admitted
 * to a handler when fewer than nthreads run (a waiting method's at once). tls+tcp://:
 * many nng contexts receive (their callbacks only timestamp and queue a request) and
 * nthreads worker threads serve the queue (64 more when a method waits). Either way the
 * deadline runs
 * from arrival, so waiting to be served counts; a request whose budget has run out by
 * then is dropped unanswered, its handler not run. methods ends with a { NULL } entry
 * and must outlive the server.
 */
int vap_rpc_server_start(struct vap_rpc_server **out, const char *url,
                         const struct vap_rpc_method *methods, void *user, int nthreads);

/* Stops taking requests, answers every one already received, and frees the server. */
void vap_rpc_server_stop(struct vap_rpc_server *server);

#endif
