/*
 * Following auth's outbox without losing or doubling an event. Live events come over
 * pub/sub and are queued; one applier thread writes them in batches. Every second, and
 * when a sequence gap has stayed open for HOLE_GRACE_MS, it asks vap-auth (req/rep) for
 * outbox rows after the highest seq applied plus the "holes" below it. A hole is a seq
 * not seen yet while a higher one was: usually a transaction that committed later than a
 * newer one (its event arrives live a moment later, hence the grace: under load nearly
 * every batch opens one, and asking at once cost more than the inserts), sometimes an
 * event pub/sub dropped, or one that rolled back (its seq never appears); holes are re-asked until they
 * arrive, or until auth has answered for 60 s without them (an outage of auth or of the
 * database never expires a hole). Inserts are keyed by the outbox seq (ON CONFLICT DO NOTHING),
 * so applying an event twice changes nothing. The cursor stored with each batch is the
 * highest seq below every open hole: a restart re-reads from there.
 * synchronous_commit is off for these transactions: what they write is derived from
 * auth's outbox (committed durably) and is re-read after a crash. Of vap-usage's own: it
 * starts from the stored cursor. Of PostgreSQL's: a crash loses the last commits made
 * this way (rows and cursor together, so the stored cursor never passes a lost row),
 * while this process still believes them applied; so the cursor is only moved while
 * the server is the one the cursor was read from (pg_postmaster_start_time), and a
 * new one makes the applier read the cursor again and fetch from there.
 */
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.pb-c.h"
#include "clock.h"
#include "err.h"
#include "events.pb-c.h"
#include "json.h"
#include "log.h"
#include "prometheus.h"
#include "pubsub.h"
#include "usage.h"

#define PENDING_MAX 100000
#define HOLES_MAX 4096
#define HOLE_TTL_MS 60000
#define CATCHUP_INTERVAL_MS 1000
#define HOLE_GRACE_MS 200 /* a new hole is asked for when still open after this */
/* After a small batch the applier lets events gather for a moment: a transaction per
 * one or two events (four round trips and a commit each) cost vap-usage's database more
 * than the rows themselves under load. Visible in usage at most this much later. */
#define GATHER_BELOW 32
#define GATHER_MS 5
#define BATCH_LIMIT 1000
/* When the PostgreSQL server started, in epoch microseconds (see the top of this file). */
#define SQL_SERVER_STARTED "(extract(epoch FROM pg_postmaster_start_time()) * 1000000)::int8"

/* A batch of access events, $1 = [{seq, otp_id, agent, grant_id, at_ms}, ...]. An access whose
 * session was reported before the access event arrived takes the session's figures
 * (found by grant, one index probe per access). */
#define SQL_INSERT_ACCESSES                                                                \
    "INSERT INTO usage.accesses (outbox_seq, otp_id, agent_type, grant_id, accessed_at,"     \
    " session_id, duration_seconds)"                                                        \
    " SELECT e.seq, nullif(e.otp_id, 0), e.agent, nullif(e.grant_id, '')::uuid,"           \
    "   to_timestamp(e.at_ms / 1000.0), s.session_id, s.duration_seconds"                    \
    " FROM json_to_recordset($1::json)"                                                     \
    "   AS e(seq int8, otp_id int8, agent text, grant_id text, at_ms int8)"                  \
    " LEFT JOIN LATERAL (SELECT t.session_id, t.duration_seconds FROM usage.sessions t"     \
    "   WHERE t.grant_id = nullif(e.grant_id, '')::uuid LIMIT 1) s ON true"                 \
    " ORDER BY e.seq"                                                                       \
    " ON CONFLICT (outbox_seq) DO NOTHING"

struct hole {
    int64_t seq;
    int64_t since_ms;
    int64_t absent_since_ms; /* first successful outbox read that did not return it */
};

struct usage_sync {
    struct usage_ctx *ctx;
    struct vap_sub *sub;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stopping;
    int catchup_now;
    Vap__UsageEvent **pending; /* unpacked, owned */
    size_t n_pending;
    /* applier thread only: */
    int64_t applied_max;
    struct hole holes[HOLES_MAX];
    int n_holes;
    struct hole saved_holes[HOLES_MAX]; /* apply(): the holes before a batch, put back if it fails */
    int overflowed; /* too many holes or dropped events: re-read from the cursor */
    char db_started[24]; /* the server's start (epoch µs) when the cursor was read */
    struct vap_counter *live_messages, *live_events, *fetched_events;
};

static void on_event(void *user, const uint8_t *data, size_t len)
{
    struct usage_sync *s = user;
    Vap__Event *ev = vap__event__unpack(NULL, len, data);
    if (!ev)
        return;
    if (strcmp(ev->type, "usage.access") != 0 || ev->n_usages == 0) {
        vap__event__free_unpacked(ev, NULL);
        return;
    }
    vap_counter_add(s->live_messages, 1);
    vap_counter_add(s->live_events, ev->n_usages);
    pthread_mutex_lock(&s->lock);
    /* Keep only the usage parts; they are repacked nowhere, so detach them all. */
    for (size_t i = 0; i < ev->n_usages; i++) {
        if (s->n_pending < PENDING_MAX) {
            s->pending[s->n_pending++] = ev->usages[i];
        } else {
            vap__usage_event__free_unpacked(ev->usages[i], NULL);
            s->catchup_now = 1; /* dropped here, fetched from the outbox instead */
        }
    }
    ev->n_usages = 0;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    vap__event__free_unpacked(ev, NULL);
}

static int by_seq(const void *a, const void *b)
{
    int64_t x = (*(Vap__UsageEvent *const *)a)->seq, y = (*(Vap__UsageEvent *const *)b)->seq;
    return x < y ? -1 : x > y;
}

static void remove_hole(struct usage_sync *s, int64_t seq)
{
    for (int i = 0; i < s->n_holes; i++)
        if (s->holes[i].seq == seq) {
            s->holes[i] = s->holes[--s->n_holes];
            return;
        }
}

static int64_t safe_cursor(struct usage_sync *s)
{
    int64_t c = s->applied_max;
    for (int i = 0; i < s->n_holes; i++)
        if (s->holes[i].seq - 1 < c)
            c = s->holes[i].seq - 1;
    return c;
}

/* Records the seqs the events (sorted) reveal as missing, and the new maximum. */
static void track(struct usage_sync *s, Vap__UsageEvent **events, size_t n, int64_t now)
{
    for (size_t i = 0; i < n; i++) {
        int64_t seq = events[i]->seq;
        if (seq <= s->applied_max) {
            remove_hole(s, seq);
            continue;
        }
        for (int64_t m = s->applied_max + 1; m < seq; m++) {
            if (s->n_holes == HOLES_MAX) {
                s->overflowed = 1;
                break;
            }
            s->holes[s->n_holes].seq = m;
            s->holes[s->n_holes].since_ms = now;
            s->holes[s->n_holes].absent_since_ms = 0;
            s->n_holes++;
        }
        s->applied_max = seq;
    }
    /* Only auth's own answers can tell that a seq rolled back: a hole expires after
     * HOLE_TTL_MS of successful outbox reads without it, never while auth is away. */
    for (int i = 0; i < s->n_holes;)
        if (s->holes[i].absent_since_ms && now - s->holes[i].absent_since_ms > HOLE_TTL_MS) {
            vap_info(NULL, "outbox seq %" PRId64 " never appeared; taken as rolled back",
                     s->holes[i].seq);
            s->holes[i] = s->holes[--s->n_holes];
        } else {
            i++;
        }
}

/* $1 of SQL_INSERT_ACCESSES: the events as a JSON array; NULL when out of memory. */
static json_t *access_item(size_t i, void *ctx)
{
    const Vap__UsageEvent *e = ((Vap__UsageEvent *const *)ctx)[i];
    return json_pack("{s:I, s:I, s:s, s:s, s:I}", "seq", (json_int_t)e->seq, "otp_id",
                     (json_int_t)e->otp_id, "agent", e->agent_type, "grant_id", e->grant_id,
                     "at_ms", (json_int_t)e->occurred_at_ms);
}

/* Every event of the batch in one statement (one round trip, and the totals' trigger
 * runs once per statement). */
static int insert_accesses(PGconn *conn, Vap__UsageEvent *const *events, size_t n)
{
    char *json = vap_json_array_dumps(n, access_item, (void *)events);
    const char *p[1] = {json};
    int rv;
    if (!json)
        return VAP_ENOMEM;
    rv = vap_db_exec(conn, NULL, SQL_INSERT_ACCESSES, 1, p, NULL);
    free(json);
    return rv;
}

/* Writes events and the cursor in one transaction. */
static int apply(struct usage_sync *s, Vap__UsageEvent **events, size_t n)
{
    PGconn *conn = NULL;
    char cursor[24];
    const char *cp[2] = {cursor, s->db_started};
    int rv;

    if (n > 1)
        qsort(events, n, sizeof(*events), by_seq);
    rv = vap_db_acquire(s->ctx->db, &conn, vap_now_ms() + 5000);
    if (rv != 0)
        return rv;
    rv = vap_db_command(conn, NULL, "BEGIN; SET LOCAL synchronous_commit = off");
    if (rv == 0)
        rv = insert_accesses(conn, events, n);
    if (rv == 0) {
        /* Cursor computed as if the batch commits. If it does not, everything track()
         * changed is put back: the holes this batch filled are holes again. (Putting back
         * only the maximum left those holes forgotten, and the next batch's cursor could
         * pass them: an event lost when a commit failed as PostgreSQL stopped.) */
        int64_t saved_max = s->applied_max;
        int saved_n = s->n_holes, saved_overflowed = s->overflowed;
        memcpy(s->saved_holes, s->holes, (size_t)saved_n * sizeof(s->holes[0]));
        track(s, events, n, vap_now_ms());
        if (s->overflowed) {
            /* The holes are not all known: the stored cursor must not move past one.
             * The next catch-up re-reads from it (applying twice changes nothing). */
            rv = vap_db_command(conn, NULL, "COMMIT");
        } else {
            PGresult *res = NULL;
            snprintf(cursor, sizeof(cursor), "%" PRId64, safe_cursor(s));
            rv = vap_db_exec(conn, NULL,
                             "UPDATE usage.cursor SET last_seq = greatest(last_seq, $1::int8)"
                             " WHERE id = 1 AND " SQL_SERVER_STARTED " = $2::int8",
                             2, cp, &res);
            if (rv == 0 && strcmp(PQcmdTuples(res), "1") != 0) {
                /* Restarted since the cursor was read: commits this process counted may
                 * be gone. This batch's rows stay (harmless twice); the cursor is read
                 * again and everything after it fetched. */
                vap_warn(NULL, "PostgreSQL restarted; re-reading from the stored cursor");
                s->overflowed = 1;
            }
            PQclear(res);
            if (rv == 0)
                rv = vap_db_command(conn, NULL, "COMMIT");
        }
        if (rv != 0) {
            s->applied_max = saved_max;
            s->n_holes = saved_n;
            memcpy(s->holes, s->saved_holes, (size_t)saved_n * sizeof(s->holes[0]));
            s->overflowed = saved_overflowed;
        }
    }
    if (rv != 0)
        vap_db_command(conn, NULL, "ROLLBACK");
    vap_db_release(s->ctx->db, conn);
    return rv;
}

/* Reads the stored cursor into applied_max (start, and after trouble). */
static int load_cursor(struct usage_sync *s)
{
    PGconn *conn = NULL;
    PGresult *res = NULL;
    int rv = vap_db_acquire(s->ctx->db, &conn, vap_now_ms() + 5000);
    if (rv != 0)
        return rv;
    rv = vap_db_exec(conn, NULL,
                     "SELECT last_seq, " SQL_SERVER_STARTED " FROM usage.cursor WHERE id = 1", 0,
                     NULL, &res);
    vap_db_release(s->ctx->db, conn);
    if (rv != 0)
        return rv;
    s->applied_max = PQntuples(res) ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    snprintf(s->db_started, sizeof(s->db_started), "%s",
             PQntuples(res) ? PQgetvalue(res, 0, 1) : "0");
    s->n_holes = 0;
    s->overflowed = 0;
    PQclear(res);
    return 0;
}

/* Asks vap-auth for rows after applied_max and for the holes; applies them. Returns
 * 1 when more rows are waiting, 0 when caught up, < 0 on failure. */
static int catch_up(struct usage_sync *s)
{
    Vap__OutboxRequest in = VAP__OUTBOX_REQUEST__INIT;
    struct vap_rpc_result res;
    int64_t seqs[HOLES_MAX];
    const Vap__OutboxBatch *b;
    int rv, more;

    if (s->overflowed && load_cursor(s) != 0)
        return -1;
    for (int i = 0; i < s->n_holes; i++)
        seqs[i] = s->holes[i].seq;
    in.after_seq = s->applied_max;
    in.limit = BATCH_LIMIT;
    in.n_seqs = (size_t)s->n_holes;
    in.seqs = seqs;
    rv = vap_rpc_call(s->ctx->auth, "auth.outbox", NULL, &in.base, &vap__outbox_batch__descriptor,
                      vap_now_ms() + 3000, &res);
    if (rv != 0 || res.status != 200) {
        vap_rpc_result_clear(&res);
        return -1;
    }
    b = (const Vap__OutboxBatch *)res.reply;
    vap_counter_add(s->fetched_events, b->n_events);
    rv = b->n_events ? apply(s, b->events, b->n_events) : 0;
    if (rv == 0) {
        /* The holes auth was just asked about and did not return are absent from now. */
        int64_t now = vap_now_ms();
        for (int i = 0; i < s->n_holes; i++)
            if (!s->holes[i].absent_since_ms)
                s->holes[i].absent_since_ms = now;
    }
    more = rv == 0 && b->max_seq > s->applied_max;
    if (rv == 0 && b->n_events)
        vap_debug(NULL, "outbox catch-up applied=%zu max=%" PRId64 " holes=%d", b->n_events,
                  s->applied_max, s->n_holes);
    vap_rpc_result_clear(&res);
    return rv != 0 ? -1 : more;
}

/* Whether a hole not asked about yet has been open for HOLE_GRACE_MS. */
static int hole_overdue(const struct usage_sync *s, int64_t now)
{
    for (int i = 0; i < s->n_holes; i++)
        if (!s->holes[i].absent_since_ms && now - s->holes[i].since_ms >= HOLE_GRACE_MS)
            return 1;
    return 0;
}

static void *applier_thread(void *arg)
{
    struct usage_sync *s = arg;
    int64_t next_catchup = 0;
    int ready = 0;

    while (1) {
        Vap__UsageEvent **batch = NULL;
        size_t n = 0;
        int want_catchup;
        struct timespec ts;
        int64_t until = vap_now_ms() + 100;

        pthread_mutex_lock(&s->lock);
        if (s->n_pending == 0 && !s->stopping && !s->catchup_now) {
            ts.tv_sec = until / 1000;
            ts.tv_nsec = (until % 1000) * 1000000;
            pthread_cond_timedwait(&s->wake, &s->lock, &ts);
        }
        if (s->stopping) {
            pthread_mutex_unlock(&s->lock);
            break;
        }
        if (s->n_pending) {
            batch = s->pending;
            n = s->n_pending;
            s->pending = calloc(PENDING_MAX, sizeof(*s->pending));
            s->n_pending = 0;
            if (!s->pending) { /* keep the old array; try again later */
                s->pending = batch;
                s->n_pending = n;
                batch = NULL;
                n = 0;
            }
        }
        want_catchup = s->catchup_now;
        s->catchup_now = 0;
        pthread_mutex_unlock(&s->lock);

        if (!ready) {
            ready = load_cursor(s) == 0;
            want_catchup = 1;
        }
        if (ready && n > 0 && apply(s, batch, n) != 0)
            want_catchup = 1; /* the outbox still has them */
        if (ready && (s->overflowed || hole_overdue(s, vap_now_ms())))
            want_catchup = 1;
        for (size_t i = 0; i < n; i++)
            vap__usage_event__free_unpacked(batch[i], NULL);
        free(batch);
        if (n > 0 && n < GATHER_BELOW) {
            struct timespec pause = {0, GATHER_MS * 1000000L};
            nanosleep(&pause, NULL);
        }
        if (ready && (want_catchup || vap_now_ms() >= next_catchup)) {
            int more;
            do
                more = catch_up(s);
            while (more == 1 && !s->stopping);
            next_catchup = vap_now_ms() + (more < 0 ? 200 : CATCHUP_INTERVAL_MS);
        }
    }
    return NULL;
}

int usage_sync_start(struct usage_ctx *ctx, const char *events_url)
{
    struct usage_sync *s = calloc(1, sizeof(*s));
    pthread_condattr_t attr;
    int rv;
    if (!s)
        return VAP_ENOMEM;
    s->ctx = ctx;
    s->live_messages = vap_counter("vap_usage_live_messages_total",
                                   "Usage messages received over pub/sub (one per auth commit)",
                                   "");
    s->live_events = vap_counter("vap_usage_live_events_total",
                                 "Usage events received over pub/sub", "");
    s->fetched_events = vap_counter("vap_usage_fetched_events_total",
                                    "Usage events read from auth's outbox (catch-up and holes)",
                                    "");
    s->pending = calloc(PENDING_MAX, sizeof(*s->pending));
    if (!s->pending) {
        free(s);
        return VAP_ENOMEM;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wake, &attr);
    pthread_condattr_destroy(&attr);
    ctx->sync = s;
    if (pthread_create(&s->thread, NULL, applier_thread, s) != 0)
        return VAP_EINTERNAL;
    rv = vap_sub_open(&s->sub, events_url, on_event, NULL, 1000, s);
    return rv;
}

void usage_sync_stop(struct usage_ctx *ctx)
{
    struct usage_sync *s = ctx->sync;
    if (!s)
        return;
    vap_sub_close(s->sub);
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    for (size_t i = 0; i < s->n_pending; i++)
        vap__usage_event__free_unpacked(s->pending[i], NULL);
    free(s->pending);
    free(s);
    ctx->sync = NULL;
}

void usage_sync_state(struct usage_ctx *ctx, int64_t *applied_max, int *holes)
{
    *applied_max = ctx->sync ? ctx->sync->applied_max : 0;
    *holes = ctx->sync ? ctx->sync->n_holes : 0;
}
