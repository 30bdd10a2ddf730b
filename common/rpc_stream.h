/*
 * The transport under rpc.c for tcp:// and ipc:// URLs: one request and its reply at a
 * time on a plain stream socket, each framed as a 4-byte big-endian length and that many
 * bytes. A client keeps a pool of connections (a calling thread takes one, writes, waits
 * for the reply with its deadline, and gives it back); a server serves each connection
 * on its own thread. So a call costs two thread wake-ups, where nng's req0/rep0 cost
 * about a dozen (its poller and task threads sit between caller, socket and handler),
 * and that hand-off, not the work, was what bounded the routes that cross services
 * (docs/ARCHITECTURE.md, "Performance"). tls+tcp:// links stay on nng (link.h).
 *
 * Bytes only: rpc.c encodes and decodes the envelopes.
 */
#ifndef VAP_RPC_STREAM_H
#define VAP_RPC_STREAM_H

#include <stddef.h>
#include <stdint.h>

/* Whether url is one this transport carries (tcp:// or ipc://). */
int vap_stream_handles(const char *url);

struct vap_stream_client;

/* Checks url; connects lazily, on the first call. 0, VAP_EINVAL or VAP_ENOMEM. */
int vap_stream_client_open(struct vap_stream_client **out, const char *url);

/* Closes idle connections and frees the client; no call may be in progress. */
void vap_stream_client_close(struct vap_stream_client *client);

/*
 * Sends req[0..len) and waits until deadline_ms (monotonic) for the reply, returned in
 * *reply (malloc'd, *reply_len bytes). A connection that breaks before the reply is
 * retried on a fresh one while time is left (delivery is at-least-once, as rpc.h
 * says); a server that refuses connections is retried for a short grace, to ride over
 * its restart. 0, VAP_ETIMEDOUT, VAP_EUNAVAIL, VAP_EPROTO (oversized reply) or
 * VAP_ENOMEM. Thread-safe.
 */
int vap_stream_call(struct vap_stream_client *client, const uint8_t *req, size_t len,
                    int64_t deadline_ms, uint8_t **reply, size_t *reply_len);

/*
 * What the server does with one request received at received_ms: 0 with *out (malloc'd,
 * freed by the server) to answer, or nonzero to answer nothing and close the connection
 * (the caller has already given up, or the request is garbage).
 */
typedef int (*vap_stream_serve_fn)(void *arg, const uint8_t *req, size_t len,
                                   int64_t received_ms, uint8_t **out, size_t *out_len);

struct vap_stream_server;

/* Listens on url and serves each connection on its own thread. 0 or a VAP_E* code. */
int vap_stream_server_start(struct vap_stream_server **out, const char *url,
                            vap_stream_serve_fn serve, void *arg);

/* Stops accepting, lets every request being served finish and be answered, closes the
 * connections and frees the server. */
void vap_stream_server_stop(struct vap_stream_server *server);

#endif
