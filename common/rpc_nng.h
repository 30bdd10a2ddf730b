/*
 * The transport under rpc.c for tls+tcp:// URLs (mutual TLS, link.h): nng's req0/rep0.
 * A client dials RPC_NNG_CONNECTIONS connections and runs each call on an nng context of
 * its own; a server keeps many rep0 contexts receiving (the intake: their callbacks only
 * timestamp a request and queue it) and a fixed set of worker threads that serve the
 * queue. Plain links (tcp://, ipc://) use rpc_stream.h, which costs a sixth of the thread
 * wake-ups per call; TLS keeps nng until the stream transport has a TLS option.
 *
 * Bytes only, as rpc_stream.h: rpc.c encodes and decodes the envelopes.
 */
#ifndef VAP_RPC_NNG_H
#define VAP_RPC_NNG_H

#include <stddef.h>
#include <stdint.h>

struct vap_nng_client;

/* Dials url (connecting in the background, redialling forever). 0, VAP_EINVAL,
 * VAP_ENOMEM or VAP_EINTERNAL. */
int vap_nng_client_open(struct vap_nng_client **out, const char *url);
void vap_nng_client_close(struct vap_nng_client *client);

/*
 * Sends req and waits for its reply until deadline_ms; *reply is malloc'd. Waits up to
 * a second for a connection first. nng resends on a connection that broke. 0,
 * VAP_ETIMEDOUT, VAP_EUNAVAIL or VAP_ENOMEM.
 */
int vap_nng_call(struct vap_nng_client *client, const uint8_t *req, size_t len,
                 int64_t deadline_ms, uint8_t **reply, size_t *reply_len);

/* As vap_stream_serve_fn: answers req (arrived at received_ms) in *out (malloc'd);
 * nonzero drops it unanswered. Called on the server's worker threads. */
typedef int (*vap_nng_serve_fn)(void *arg, const uint8_t *req, size_t len,
                                int64_t received_ms, uint8_t **out, size_t *out_len);

struct vap_nng_server;

/* Listens on url and serves with nworkers threads. 0, VAP_ENOMEM, VAP_EUNAVAIL (cannot
 * listen) or VAP_EINTERNAL. */
int vap_nng_server_start(struct vap_nng_server **out, const char *url, int nworkers,
                         vap_nng_serve_fn serve, void *arg);

/* Answers every request already received, takes no new one, and frees the server. */
void vap_nng_server_stop(struct vap_nng_server *server);

#endif
