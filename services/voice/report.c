/*
 * Session records to vap-usage. Reports (at a session's start and end) are queued and
 * sent by one thread with req/rep, retried with backoff until vap-usage stores them:
 * vap-usage being down or restarting delays records but loses none while this worker
 * lives. The upsert on the other side is idempotent, so a resend changes nothing.
 * If the worker itself dies, the gateway that held its sessions reports their end.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "rpc.h"
#include "voice.h"

#define REPORT_QUEUE_MAX 20000

struct report_item {
    struct report_item *next;
    size_t len;
    uint8_t data[];
};

struct voice_reporter {
    struct vap_rpc_client *usage;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct report_item *head, *tail;
    size_t len;
    bool stopping;
};

static int send_one(struct voice_reporter *r, const struct report_item *it)
{
    Vap__SessionRecord *rec = vap__session_record__unpack(NULL, it->len, it->data);
    struct vap_rpc_result res;
    int rv;
    if (!rec)
        return 0; /* cannot happen: we packed it */
    memset(&res, 0, sizeof(res));
    rv = vap_rpc_call(r->usage, "usage.session", rec->session_id, &rec->base, NULL,
                      vap_now_ms() + 3000, &res);
    if (rv == 0 && res.status >= 500)
        rv = -1;
    if (rv == 0 && res.status >= 400)
        vap_warn(rec->session_id, "session record refused status=%d detail=\"%s\"", res.status,
                 res.detail ? res.detail : "");
    vap_rpc_result_clear(&res);
    vap__session_record__free_unpacked(rec, NULL);
    return rv;
}

static void *report_main(void *arg)
{
    struct voice_reporter *r = arg;
    int backoff_ms = 100;
    for (;;) {
        struct report_item *it;
        pthread_mutex_lock(&r->lock);
        while (!r->head && !r->stopping)
            pthread_cond_wait(&r->cond, &r->lock);
        it = r->head;
        pthread_mutex_unlock(&r->lock);
        if (!it)
            break; /* stopping with nothing left */
        if (send_one(r, it) != 0) {
            struct timespec ts;
            bool stop;
            pthread_mutex_lock(&r->lock);
            stop = r->stopping;
            pthread_mutex_unlock(&r->lock);
            if (stop) {
                vap_warn(NULL, "exiting with %zu session records not delivered", r->len);
                break;
            }
            ts.tv_sec = backoff_ms / 1000;
            ts.tv_nsec = (backoff_ms % 1000) * 1000000L;
            nanosleep(&ts, NULL);
            backoff_ms = backoff_ms < 2000 ? backoff_ms * 2 : 2000;
            continue;
        }
        backoff_ms = 100;
        pthread_mutex_lock(&r->lock);
        r->head = it->next;
        if (!r->head)
            r->tail = NULL;
        r->len--;
        pthread_mutex_unlock(&r->lock);
        free(it);
    }
    return NULL;
}

int voice_reporter_start(struct voice_worker *w)
{
    struct voice_reporter *r = calloc(1, sizeof(*r));
    if (!r)
        return -1;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    if (vap_rpc_client_open(&r->usage, w->cfg.usage_rpc_url) != 0) {
        free(r);
        return -1;
    }
    if (pthread_create(&r->thread, NULL, report_main, r) != 0) {
        vap_rpc_client_close(r->usage);
        free(r);
        return -1;
    }
    w->reporter = r;
    return 0;
}

/* Lets queued records go out for up to 5 s, then stops. */
void voice_reporter_stop(struct voice_worker *w)
{
    struct voice_reporter *r = w->reporter;
    int64_t until = vap_now_ms() + 5000;
    struct report_item *it;
    if (!r)
        return;
    for (;;) {
        size_t left;
        pthread_mutex_lock(&r->lock);
        left = r->len;
        pthread_mutex_unlock(&r->lock);
        if (!left || vap_now_ms() > until)
            break;
        {
            struct timespec ts = {0, 20000000L};
            nanosleep(&ts, NULL);
        }
    }
    pthread_mutex_lock(&r->lock);
    r->stopping = true;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    vap_rpc_client_close(r->usage);
    while ((it = r->head)) {
        r->head = it->next;
        free(it);
    }
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    free(r);
    w->reporter = NULL;
}

void voice_report(struct voice_worker *w, const Vap__SessionRecord *rec)
{
    struct voice_reporter *r = w->reporter;
    size_t len = vap__session_record__get_packed_size(rec);
    struct report_item *it;
    if (!r)
        return;
    it = malloc(sizeof(*it) + len);
    if (!it)
        return;
    it->next = NULL;
    it->len = len;
    vap__session_record__pack(rec, it->data);
    pthread_mutex_lock(&r->lock);
    if (r->len >= REPORT_QUEUE_MAX) {
        pthread_mutex_unlock(&r->lock);
        vap_error(rec->session_id, "session record queue full: record dropped");
        free(it);
        return;
    }
    if (r->tail)
        r->tail->next = it;
    else
        r->head = it;
    r->tail = it;
    r->len++;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
}
