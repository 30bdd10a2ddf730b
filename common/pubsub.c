/* nng pub/sub of protobuf-c messages (see pubsub.h). */
#include "pubsub.h"

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "link.h"
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

/*
 * Listens on url, or dials each of the comma-separated urls (redialling forever).
 * Returns 0 or an nng error (logged).
 */
static int attach(nng_socket sock, const char *urls, int dial, const char *what)
{
    char one[512];
    const char *p = urls;
    if (!dial) {
        int rv = vap_link_listen(sock, urls, NULL);
        if (rv != 0)
            vap_error(NULL, "%s listen failed url=%s error=\"%s\"", what, urls, nng_strerror(rv));
        return rv;
    }
    nng_socket_set_ms(sock, NNG_OPT_RECONNMINT, 50);
    nng_socket_set_ms(sock, NNG_OPT_RECONNMAXT, 500);
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n > 0 && n < sizeof(one)) {
            int rv;
            memcpy(one, p, n);
            one[n] = '\0';
            rv = vap_link_dial(sock, one, NNG_FLAG_NONBLOCK);
            if (rv != 0) {
                vap_error(NULL, "%s dial failed url=%s error=\"%s\"", what, one, nng_strerror(rv));
                return rv;
            }
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

static int pub_open(struct vap_pub **out, const char *url, int dial)
{
    struct vap_pub *p = calloc(1, sizeof(*p));
    int rv;
    if (!p)
        return VAP_ENOMEM;
    rv = nng_pub0_open(&p->sock);
    if (rv == 0) {
        rv = attach(p->sock, url, dial, "pub");
        if (rv != 0)
            nng_close(p->sock);
    }
    if (rv != 0) {
        free(p);
        return VAP_EUNAVAIL;
    }
    *out = p;
    return 0;
}

int vap_pub_open(struct vap_pub **out, const char *url)
{
    return pub_open(out, url, 0);
}

int vap_pub_open_dial(struct vap_pub **out, const char *urls)
{
    return pub_open(out, urls, 1);
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

static int sub_open(struct vap_sub **out, const char *url, int dial, vap_sub_fn on_message,
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
    rv = attach(s->sock, url, dial, "sub");
    if (rv != 0) {
        nng_close(s->sock);
        free(s);
        return dial ? VAP_EINVAL : VAP_EUNAVAIL;
    }
    if (pthread_create(&s->thread, NULL, sub_thread, s) != 0) {
        nng_close(s->sock);
        free(s);
        return VAP_EINTERNAL;
    }
    *out = s;
    return 0;
}

int vap_sub_open(struct vap_sub **out, const char *url, vap_sub_fn on_message,
                 vap_sub_idle_fn on_idle, int idle_ms, void *user)
{
    return sub_open(out, url, 1, on_message, on_idle, idle_ms, user);
}

int vap_sub_open_listen(struct vap_sub **out, const char *url, vap_sub_fn on_message,
                        vap_sub_idle_fn on_idle, int idle_ms, void *user)
{
    return sub_open(out, url, 0, on_message, on_idle, idle_ms, user);
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
