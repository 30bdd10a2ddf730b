/*
 * Revocation view (see revocations.h). OTP ids live in an open-addressing hash map
 * id -> revoked; a snapshot builds a new map and swaps it in, then re-applies the
 * recent events newer than the snapshot so none is lost in the swap.
 */
#include "revocations.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.pb-c.h"
#include "clock.h"
#include "err.h"
#include "events.pb-c.h"
#include "log.h"
#include "pubsub.h"

#define REFRESH_INTERVAL_MS 2000
#define RECENT_EVENTS 128

struct otp_map {
    int64_t *ids; /* 0 = empty slot */
    uint8_t *revoked;
    size_t cap, count;
};

struct admin_version {
    char username[72];
    int32_t version;
};

struct recent_event {
    uint64_t seq;
    int64_t otp_id;
    int revoked;
    char username[72];
    int32_t version;
};

struct gw_revocations {
    pthread_rwlock_t lock;
    struct otp_map otps;
    struct admin_version *admins;
    size_t n_admins;
    char instance[40];
    uint64_t seq;     /* last event applied (or snapshot seq) */
    int64_t synced_ms; /* monotonic time of the last snapshot; 0 = never */
    struct recent_event recent[RECENT_EVENTS];

    struct vap_rpc_client *auth;
    struct vap_sub *sub;
    int64_t max_age_ms;
    pthread_t refresher;
    pthread_mutex_t wake_lock;
    pthread_cond_t wake;
    int wake_now;
    int stopping;
};

static uint64_t mix(int64_t id)
{
    uint64_t x = (uint64_t)id;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static int map_init(struct otp_map *m, size_t want)
{
    size_t cap = 64;
    while (cap < want * 2)
        cap *= 2;
    m->ids = calloc(cap, sizeof(*m->ids));
    m->revoked = calloc(cap, 1);
    if (!m->ids || !m->revoked) {
        free(m->ids);
        free(m->revoked);
        return VAP_ENOMEM;
    }
    m->cap = cap;
    m->count = 0;
    return 0;
}

static void map_free(struct otp_map *m)
{
    free(m->ids);
    free(m->revoked);
    memset(m, 0, sizeof(*m));
}

static void map_put_nogrow(struct otp_map *m, int64_t id, int revoked)
{
    size_t i = mix(id) & (m->cap - 1);
    while (m->ids[i] != 0 && m->ids[i] != id)
        i = (i + 1) & (m->cap - 1);
    if (m->ids[i] == 0) {
        m->ids[i] = id;
        m->count++;
    }
    m->revoked[i] = (uint8_t)revoked;
}

static void map_put(struct otp_map *m, int64_t id, int revoked)
{
    if (id == 0)
        return;
    if ((m->count + 1) * 2 > m->cap) {
        struct otp_map bigger;
        if (map_init(&bigger, m->cap) != 0)
            return; /* keep the old map; the next snapshot retries */
        for (size_t i = 0; i < m->cap; i++)
            if (m->ids[i])
                map_put_nogrow(&bigger, m->ids[i], m->revoked[i]);
        map_free(m);
        *m = bigger;
    }
    map_put_nogrow(m, id, revoked);
}

static int map_revoked(const struct otp_map *m, int64_t id)
{
    size_t i;
    if (m->cap == 0)
        return 0;
    i = mix(id) & (m->cap - 1);
    while (m->ids[i] != 0) {
        if (m->ids[i] == id)
            return m->revoked[i];
        i = (i + 1) & (m->cap - 1);
    }
    return 0;
}

static struct admin_version *find_admin(struct gw_revocations *v, const char *username)
{
    for (size_t i = 0; i < v->n_admins; i++)
        if (strcmp(v->admins[i].username, username) == 0)
            return &v->admins[i];
    return NULL;
}

/* Applies one event's effect; caller holds the write lock. */
static void apply_fact(struct gw_revocations *v, int64_t otp_id, int revoked,
                       const char *username, int32_t version)
{
    if (otp_id)
        map_put(&v->otps, otp_id, revoked);
    if (username && username[0]) {
        struct admin_version *a = find_admin(v, username);
        if (a) {
            if (version > a->version)
                a->version = version;
        } else {
            struct admin_version *grown =
                realloc(v->admins, (v->n_admins + 1) * sizeof(*v->admins));
            if (grown) {
                v->admins = grown;
                memset(&grown[v->n_admins], 0, sizeof(grown[0]));
                snprintf(grown[v->n_admins].username, sizeof(grown[0].username), "%s",
                         username);
                grown[v->n_admins].version = version;
                v->n_admins++;
            }
        }
    }
}

static void request_refresh(struct gw_revocations *v)
{
    pthread_mutex_lock(&v->wake_lock);
    v->wake_now = 1;
    pthread_cond_signal(&v->wake);
    pthread_mutex_unlock(&v->wake_lock);
}

static void on_event(void *user, const uint8_t *data, size_t len)
{
    struct gw_revocations *v = user;
    Vap__Event *ev = vap__event__unpack(NULL, len, data);
    int gap = 0;
    if (!ev) {
        vap_warn(NULL, "revocation event does not decode; refreshing");
        request_refresh(v);
        return;
    }
    pthread_rwlock_wrlock(&v->lock);
    if (strcmp(ev->instance, v->instance) != 0 || ev->seq != v->seq + 1)
        gap = 1;
    apply_fact(v, ev->otp_id, ev->otp_revoked, ev->username, ev->password_version);
    if (!gap)
        v->seq = ev->seq;
    {
        struct recent_event *r = &v->recent[ev->seq % RECENT_EVENTS];
        r->seq = ev->seq;
        r->otp_id = ev->otp_id;
        r->revoked = ev->otp_revoked;
        snprintf(r->username, sizeof(r->username), "%s", ev->username);
        r->version = ev->password_version;
    }
    pthread_rwlock_unlock(&v->lock);
    vap_debug(NULL, "revocation event type=%s seq=%llu gap=%d", ev->type,
              (unsigned long long)ev->seq, gap);
    vap__event__free_unpacked(ev, NULL);
    if (gap)
        request_refresh(v);
}

static int refresh(struct gw_revocations *v)
{
    struct vap_rpc_result res;
    Vap__Empty empty = VAP__EMPTY__INIT;
    Vap__RevocationSnapshot *snap;
    struct otp_map fresh;
    struct admin_version *admins;
    int rv = vap_rpc_call(v->auth, "auth.revocations", NULL, &empty.base,
                          &vap__revocation_snapshot__descriptor, vap_now_ms() + 5000, &res);
    if (rv != 0 || res.status != 200 || !res.reply) {
        vap_rpc_result_clear(&res);
        return rv != 0 ? rv : VAP_EUNAVAIL;
    }
    snap = (Vap__RevocationSnapshot *)res.reply;
    if (map_init(&fresh, snap->n_revoked_otp_ids + 16) != 0) {
        vap_rpc_result_clear(&res);
        return VAP_ENOMEM;
    }
    admins = calloc(snap->n_admins + 1, sizeof(*admins));
    if (!admins) {
        map_free(&fresh);
        vap_rpc_result_clear(&res);
        return VAP_ENOMEM;
    }
    for (size_t i = 0; i < snap->n_revoked_otp_ids; i++)
        map_put(&fresh, snap->revoked_otp_ids[i], 1);
    for (size_t i = 0; i < snap->n_admins; i++) {
        snprintf(admins[i].username, sizeof(admins[i].username), "%s",
                 snap->admins[i]->username);
        admins[i].version = snap->admins[i]->password_version;
    }

    pthread_rwlock_wrlock(&v->lock);
    int same_instance = strcmp(v->instance, snap->instance) == 0;
    map_free(&v->otps);
    v->otps = fresh;
    free(v->admins);
    v->admins = admins;
    v->n_admins = snap->n_admins;
    /* Events newer than the snapshot, already received, must survive the swap. */
    if (same_instance)
        for (int i = 0; i < RECENT_EVENTS; i++) {
            struct recent_event *r = &v->recent[i];
            if (r->seq > snap->seq)
                apply_fact(v, r->otp_id, r->revoked, r->username, r->version);
        }
    if (!same_instance) {
        memset(v->recent, 0, sizeof(v->recent));
        snprintf(v->instance, sizeof(v->instance), "%s", snap->instance);
        v->seq = snap->seq;
    } else if (snap->seq > v->seq) {
        v->seq = snap->seq;
    }
    v->synced_ms = vap_now_ms();
    pthread_rwlock_unlock(&v->lock);
    vap_rpc_result_clear(&res);
    return 0;
}

static void *refresher_thread(void *arg)
{
    struct gw_revocations *v = arg;
    int failing = 0;
    pthread_mutex_lock(&v->wake_lock);
    while (!v->stopping) {
        pthread_mutex_unlock(&v->wake_lock);
        int rv = refresh(v);
        if (rv != 0 && !failing)
            vap_warn(NULL, "revocation snapshot failed: %s", vap_strerror(rv));
        else if (rv == 0 && failing)
            vap_info(NULL, "revocation snapshot recovered");
        failing = rv != 0;
        pthread_mutex_lock(&v->wake_lock);
        if (v->stopping)
            break;
        if (!v->wake_now) {
            struct timespec ts;
            /* Retry fast while failing, so a restarted vap-auth is picked up at once. */
            int64_t wait = failing ? 200 : REFRESH_INTERVAL_MS;
            int64_t until = vap_now_ms() + wait;
            ts.tv_sec = until / 1000;
            ts.tv_nsec = (until % 1000) * 1000000;
            pthread_cond_timedwait(&v->wake, &v->wake_lock, &ts);
        }
        v->wake_now = 0;
    }
    pthread_mutex_unlock(&v->wake_lock);
    return NULL;
}

int gw_revocations_start(struct gw_revocations **out, struct vap_rpc_client *auth,
                         const char *events_url, int64_t max_age_ms)
{
    struct gw_revocations *v = calloc(1, sizeof(*v));
    pthread_condattr_t attr;
    int rv;
    if (!v)
        return VAP_ENOMEM;
    v->auth = auth;
    v->max_age_ms = max_age_ms;
    {
        /* Readers are every request; prefer the rare writer so a refresh is never starved. */
        pthread_rwlockattr_t rwa;
        pthread_rwlockattr_init(&rwa);
        pthread_rwlockattr_setkind_np(&rwa, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
        pthread_rwlock_init(&v->lock, &rwa);
        pthread_rwlockattr_destroy(&rwa);
    }
    pthread_mutex_init(&v->wake_lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&v->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (map_init(&v->otps, 16) != 0) {
        free(v);
        return VAP_ENOMEM;
    }
    rv = vap_sub_open(&v->sub, events_url, on_event, NULL, 1000, v);
    if (rv != 0) {
        map_free(&v->otps);
        free(v);
        return rv;
    }
    if (pthread_create(&v->refresher, NULL, refresher_thread, v) != 0) {
        vap_sub_close(v->sub);
        map_free(&v->otps);
        free(v);
        return VAP_EINTERNAL;
    }
    *out = v;
    return 0;
}

void gw_revocations_stop(struct gw_revocations *v)
{
    if (!v)
        return;
    pthread_mutex_lock(&v->wake_lock);
    v->stopping = 1;
    pthread_cond_signal(&v->wake);
    pthread_mutex_unlock(&v->wake_lock);
    pthread_join(v->refresher, NULL);
    vap_sub_close(v->sub);
    map_free(&v->otps);
    free(v->admins);
    pthread_rwlock_destroy(&v->lock);
    free(v);
}

enum gw_token_state gw_revocations_check(struct gw_revocations *v,
                                         const struct vap_token_claims *claims)
{
    enum gw_token_state st = GW_TOKEN_OK;
    pthread_rwlock_rdlock(&v->lock);
    if (v->synced_ms == 0 || vap_now_ms() - v->synced_ms > v->max_age_ms) {
        st = GW_TOKEN_UNKNOWN;
    } else if (claims->role == VAP_ROLE_OTP) {
        if (map_revoked(&v->otps, claims->otp_id))
            st = GW_TOKEN_REVOKED;
    } else {
        struct admin_version *a = find_admin(v, claims->sub);
        if (!a || claims->pwv < a->version)
            st = GW_TOKEN_REVOKED;
    }
    pthread_rwlock_unlock(&v->lock);
    return st;
}

int64_t gw_revocations_age_ms(struct gw_revocations *v)
{
    int64_t age;
    pthread_rwlock_rdlock(&v->lock);
    age = v->synced_ms == 0 ? -1 : vap_now_ms() - v->synced_ms;
    pthread_rwlock_unlock(&v->lock);
    return age;
}
