/*
 * The usage record of a voice session whose worker died: the worker can no longer
 * report it, so the gateway does (usage.session, end_reason worker_lost). Each record is
 * retried for a minute from a thread of its own (a worker carries several sessions, and
 * a frozen vap-usage must not hold one record up behind another); the gateway's stop
 * wakes them for one last try and waits for them, since they use the usage RPC client
 * it then closes. An undelivered record is logged with its session id.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "voice_gw.h"

struct lost_record {
    struct gw_ctx *gw;
    Vap__SessionRecord rec;
    char session_id[160], grant_id[40], agent[64];
};

/* The reporters still running: the gateway's stop waits for them, since they use the
 * usage RPC client it then closes. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t done;
    int running;
    bool stopping;
} Lost = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, false};

static bool deliver_lost_record(struct lost_record *l)
{
    struct vap_rpc_result res;
    int rv;
    bool ok;
    memset(&res, 0, sizeof(res));
    rv = vap_rpc_call(l->gw->usage, "usage.session", l->session_id, &l->rec.base, NULL,
                      vap_now_ms() + 3000, &res);
    ok = rv == 0 && res.status < 500;
    vap_rpc_result_clear(&res);
    return ok;
}

/* Reports the end of a session whose worker died; retried for a minute, or once more
 * when the gateway is stopping. */
static void *lost_record_main(void *arg)
{
    struct lost_record *l = arg;
    int64_t until = vap_now_ms() + 60000;
    int delay_ms = 200;
    bool delivered, last = false;
    for (;;) {
        delivered = deliver_lost_record(l);
        if (delivered || last || vap_now_ms() >= until)
            break;
        pthread_mutex_lock(&Lost.mu);
        if (!Lost.stopping) {
            struct timespec ts;
            int64_t at = vap_wall_ms() + delay_ms;
            ts.tv_sec = at / 1000;
            ts.tv_nsec = (at % 1000) * 1000000L;
            pthread_cond_timedwait(&Lost.done, &Lost.mu, &ts); /* the stop wakes it */
        }
        last = Lost.stopping;
        pthread_mutex_unlock(&Lost.mu);
        delay_ms = delay_ms < 2000 ? delay_ms * 2 : 2000;
    }
    if (!delivered)
        vap_error(NULL, "voice session record not delivered session=%s end_reason=worker_lost",
                  l->session_id);
    free(l);
    pthread_mutex_lock(&Lost.mu);
    Lost.running--;
    pthread_cond_broadcast(&Lost.done);
    pthread_mutex_unlock(&Lost.mu);
    return NULL;
}

void gw_vconn_lost_records_stop(void)
{
    pthread_mutex_lock(&Lost.mu);
    Lost.stopping = true;
    pthread_cond_broadcast(&Lost.done);
    while (Lost.running > 0) /* each makes at most one more call, bounded by its deadline */
        pthread_cond_wait(&Lost.done, &Lost.mu);
    pthread_mutex_unlock(&Lost.mu);
}

void gw_voice_lost_record(struct gw_vconn *c)
{
    struct lost_record *l = calloc(1, sizeof(*l));
    pthread_t t;
    if (!l)
        return;
    l->gw = c->gw;
    snprintf(l->session_id, sizeof(l->session_id), "%s", c->session_id);
    snprintf(l->grant_id, sizeof(l->grant_id), "%s", c->grant_id);
    snprintf(l->agent, sizeof(l->agent), "%s", c->agent);
    vap__session_record__init(&l->rec);
    l->rec.session_id = l->session_id;
    l->rec.grant_id = l->grant_id;
    l->rec.agent_type = l->agent;
    l->rec.otp_id = c->otp_id;
    l->rec.started_at_ms = c->started_wall_ms;
    l->rec.ended_at_ms = vap_wall_ms();
    if (l->rec.ended_at_ms <= l->rec.started_at_ms)
        l->rec.ended_at_ms = l->rec.started_at_ms + 1;
    l->rec.audio_in_seconds = (double)c->audio_in_frames * 0.02;
    l->rec.audio_out_seconds = (double)c->audio_out_frames * 0.02;
    l->rec.end_reason = "worker_lost";
    pthread_mutex_lock(&Lost.mu);
    if (!Lost.stopping && pthread_create(&t, NULL, lost_record_main, l) == 0) {
        Lost.running++;
        pthread_detach(t);
        l = NULL;
    }
    pthread_mutex_unlock(&Lost.mu);
    if (l) {
        vap_error(NULL, "voice session record not delivered session=%s "
                  "end_reason=worker_lost", l->session_id);
        free(l);
    }
}
