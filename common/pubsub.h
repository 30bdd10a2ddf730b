/*
 * Publish/subscribe of protobuf-c messages over nng pub0/sub0: facts that many
 * processes want (an OTP revoked, a password changed, a worker's heartbeat).
 * Delivery is best effort: a slow or disconnected subscriber misses messages, so
 * every fact published here must also be recoverable by a req/rep query.
 */
#ifndef VAP_PUBSUB_H
#define VAP_PUBSUB_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

struct vap_pub;
struct vap_sub;

/* Listens on url for subscribers. */
int vap_pub_open(struct vap_pub **out, const char *url);

/*
 * Dials each of the comma-separated urls (subscribers that listen), redialling forever:
 * for many publishers and few subscribers, e.g. voice workers' heartbeats to gateways.
 */
int vap_pub_open_dial(struct vap_pub **out, const char *urls);
void vap_pub_close(struct vap_pub *pub);

/* Publishes msg to every connected subscriber. Never blocks. Thread-safe. */
int vap_pub_send(struct vap_pub *pub, const ProtobufCMessage *msg);

/* Called on the subscriber's thread with each message's bytes (valid during the call). */
typedef void (*vap_sub_fn)(void *user, const uint8_t *data, size_t len);

/* Called on the subscriber's thread when no message came for idle_ms (may be NULL). */
typedef void (*vap_sub_idle_fn)(void *user);

/*
 * Dials url (reconnecting forever) and starts a thread that calls on_message for each
 * message, and on_idle every idle_ms without one.
 */
int vap_sub_open(struct vap_sub **out, const char *url, vap_sub_fn on_message,
                 vap_sub_idle_fn on_idle, int idle_ms, void *user);

/* The same, but listening on url for publishers that dial in (vap_pub_open_dial). */
int vap_sub_open_listen(struct vap_sub **out, const char *url, vap_sub_fn on_message,
                        vap_sub_idle_fn on_idle, int idle_ms, void *user);

/* Stops the thread and closes the socket. */
void vap_sub_close(struct vap_sub *sub);

#endif
