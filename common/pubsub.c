/* nng pub/sub of protobuf-c messages (see pubsub.h). */
#include "pubsub.h"

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "err.h"
#include "log.h"

#define PUBSUB_MAX_MSG (1024 * 1024)

struct vap_pub {
    nng_socket sock;
};

struct vap_sub {
    nng_socket sock;
    pthread_t thread;
    atomic_int stopping;
    vap_sub_fn on_message;
    vap_sub_idle_fn on_idle;
    int idle_ms;
    void *user;
};

int vap_pub_open(struct vap_pub **out, const char *url)
{
    struct vap_pub *p = calloc(1, sizeof(*p));
    int rv;
    if (!p)
        return VAP_ENOMEM;
    rv = nng_pub0_open(&p->sock);
    if (rv == 0) {
        rv = nng_listen(p->sock, url, NULL, 0);
        if (rv != 0)
            nng_close(p->sock);
    }
    if (rv != 0) {
        vap_error(NULL, "pub listen failed url=%s error=\"%s\"", url, nng_strerror(rv));
        free(p);
        return VAP_EUNAVAIL;
    }
    *out = p;
    return 0;
}

void vap_pub_close(struct vap_pub *pub)
{
    if (!pub)
        return;
    nng_close(pub->sock);
    free(pub);
}

int vap_pub_send(struct vap_pub *pub, const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    nng_msg *m;
    if (nng_msg_alloc(&m, len) != 0)
        return VAP_ENOMEM;
    protobuf_c_message_pack(msg, nng_msg_body(m));
    if (nng_sendmsg(pub->sock, m, NNG_FLAG_NONBLOCK) != 0) {
        nng_msg_free(m);
        return VAP_EUNAVAIL;
    }
    return 0;
}

static void *sub_thread(void *arg)
{
    struct vap_sub *s = arg;
    while (!atomic_load(&s->stopping)) {
        nng_msg *m = NULL;
        int rv = nng_recvmsg(s->sock, &m, 0);
        if (rv == NNG_ETIMEDOUT) {
            if (s->on_idle)
                s->on_idle(s->user);
            continue;
        }
        if (rv != 0)
            break;
        s->on_message(s->user, nng_msg_body(m), nng_msg_len(m));
        nng_msg_free(m);
    }
    return NULL;
}

int vap_sub_open(struct vap_sub **out, const char *url, vap_sub_fn on_message,
                 vap_sub_idle_fn on_idle, int idle_ms, void *user)
{
    struct vap_sub *s = calloc(1, sizeof(*s));
    int rv;
    if (!s)
        return VAP_ENOMEM;
    s->on_message = on_message;
    s->on_idle = on_idle;
    s->idle_ms = idle_ms > 0 ? idle_ms : 1000;
    s->user = user;
    rv = nng_sub0_open(&s->sock);
    if (rv != 0) {
        free(s);
        return VAP_EINTERNAL;
    }
    nng_socket_set(s->sock, NNG_OPT_SUB_SUBSCRIBE, "", 0);
    nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, PUBSUB_MAX_MSG);
    nng_socket_set_ms(s->sock, NNG_OPT_RECVTIMEO, s->idle_ms);
    nng_socket_set_ms(s->sock, NNG_OPT_RECONNMINT, 50);
    nng_socket_set_ms(s->sock, NNG_OPT_RECONNMAXT, 500);
    rv = nng_dial(s->sock, url, NULL, NNG_FLAG_NONBLOCK);
    if (rv != 0) {
        vap_error(NULL, "sub dial failed url=%s error=\"%s\"", url, nng_strerror(rv));
        nng_close(s->sock);
        free(s);
        return VAP_EINVAL;
    }
    if (pthread_create(&s->thread, NULL, sub_thread, s) != 0) {
        nng_close(s->sock);
        free(s);
        return VAP_EINTERNAL;
    }
    *out = s;
    return 0;
}

void vap_sub_close(struct vap_sub *sub)
{
    if (!sub)
        return;
    atomic_store(&sub->stopping, 1);
    pthread_join(sub->thread, NULL);
    nng_close(sub->sock);
    free(sub);
}
