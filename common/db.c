/*
 * PostgreSQL pool (see db.h). Idle connections sit in a stack; a waiter blocks on a
 * condition variable bound to CLOCK_MONOTONIC so its deadline ignores wall-clock jumps.
 * Connecting happens outside the lock: a slow connect never blocks other threads.
 */
#include "db.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-events.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "prometheus.h"

/* Statements prepared on one connection, by hash of their text. Parsing and planning a
 * statement once per connection instead of once per call saves a good part of the
 * server's work on the hot paths (OTP login, access, listing). */
#define STMT_CACHE_MAX 64
struct stmt_cache {
    uint64_t hashes[STMT_CACHE_MAX];
    int n;
};

static int stmt_cache_event(PGEventId id, void *info, void *pass)
{
    (void)pass;
    if (id == PGEVT_CONNDESTROY) {
        PGEventConnDestroy *e = info;
        free(PQinstanceData(e->conn, stmt_cache_event));
    }
    return 1;
}

static uint64_t sql_hash(const char *sql)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)sql; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h;
}

struct pooled {
    PGconn *conn;
    int64_t opened_ms;
};

struct vap_db_pool {
    pthread_mutex_t lock;
    pthread_cond_t freed;
    struct vap_db_options opts;
    char *conninfo;
    char *app_name;
    char options_param[64];
    char timeout_param[16];
    struct pooled *idle; /* stack of idle connections, capacity opts.size */
    int idle_count;
    int open_count; /* idle + in use + being opened */
    int in_use;
    /* opened_ms of in-use connections, looked up on release by PGconn pointer */
    struct pooled *busy;
    char labels[96];               /* pool="<application name>" */
    struct vap_histogram *waited;  /* time to get a connection */
};

static double gauge_in_use(void *user)
{
    int open, in_use;
    vap_db_pool_stats(user, &open, &in_use);
    return in_use;
}

static double gauge_open(void *user)
{
    int open, in_use;
    vap_db_pool_stats(user, &open, &in_use);
    return open;
}

#define IN_USE_HELP "Connections of the pool in use by a request."
#define OPEN_HELP "Connections of the pool open (idle, in use or opening)."

int vap_db_pool_create(struct vap_db_pool **out, const struct vap_db_options *opts)
{
    struct vap_db_pool *p;
    pthread_condattr_t attr;

    if (opts->size < 1 || opts->conninfo == NULL)
        return VAP_EINVAL;
    p = calloc(1, sizeof(*p));
    if (!p)
        return VAP_ENOMEM;
    p->opts = *opts;
    p->conninfo = strdup(opts->conninfo);
    p->app_name = strdup(opts->application_name ? opts->application_name : "vap");
    p->idle = calloc((size_t)opts->size, sizeof(*p->idle));
    p->busy = calloc((size_t)opts->size, sizeof(*p->busy));
    if (!p->conninfo || !p->app_name || !p->idle || !p->busy) {
        free(p->conninfo);
        free(p->app_name);
        free(p->idle);
        free(p->busy);
        free(p);
        return VAP_ENOMEM;
    }
    snprintf(p->options_param, sizeof(p->options_param), "-c statement_timeout=%d",
             opts->statement_timeout_ms);
    snprintf(p->timeout_param, sizeof(p->timeout_param), "%d",
             opts->connect_timeout_s > 0 ? opts->connect_timeout_s : 2);
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&p->freed, &attr);
    pthread_condattr_destroy(&attr);
    snprintf(p->labels, sizeof(p->labels), "pool=\"%s\"", p->app_name);
    p->waited = vap_histogram("vap_db_acquire_seconds",
                              "Time a request waited for a database connection.", p->labels);
    vap_gauge("vap_db_pool_in_use", IN_USE_HELP, p->labels, gauge_in_use, p);
    vap_gauge("vap_db_pool_open", OPEN_HELP, p->labels, gauge_open, p);
    *out = p;
    return 0;
}

void vap_db_pool_destroy(struct vap_db_pool *pool)
{
    if (!pool)
        return;
    /* After these return, no scrape reads this pool any more. */
    vap_gauge("vap_db_pool_in_use", IN_USE_HELP, pool->labels, NULL, NULL);
    vap_gauge("vap_db_pool_open", OPEN_HELP, pool->labels, NULL, NULL);
    for (int i = 0; i < pool->idle_count; i++)
        PQfinish(pool->idle[i].conn);
    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->freed);
    free(pool->idle);
    free(pool->busy);
    free(pool->conninfo);
    free(pool->app_name);
    free(pool);
}

/* Server NOTICEs ("schema already exists, skipping") go to the debug log, not stderr. */
static void on_notice(void *arg, const char *message)
{
    char msg[256];
    (void)arg;
    snprintf(msg, sizeof(msg), "%s", message);
    msg[strcspn(msg, "\n")] = '\0';
    vap_debug(NULL, "database notice: %s", msg);
}

static PGconn *open_connection(struct vap_db_pool *pool)
{
    const char *keys[] = {"dbname", "connect_timeout", "options", "application_name", NULL};
    const char *vals[] = {pool->conninfo, pool->timeout_param, pool->options_param,
                          pool->app_name, NULL};
    /* expand_dbname=1: the first dbname may be a full URI or conninfo string; the
     * later keys override what it says. */
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    if (conn && PQstatus(conn) == CONNECTION_OK) {
        struct stmt_cache *cache = calloc(1, sizeof(*cache));
        PQsetNoticeProcessor(conn, on_notice, NULL);
        if (cache && PQregisterEventProc(conn, stmt_cache_event, "vap_stmt_cache", NULL) &&
            PQsetInstanceData(conn, stmt_cache_event, cache))
            cache = NULL; /* owned by the connection now */
        free(cache);
        return conn;
    }
    if (conn) {
        /* PQerrorMessage never contains the password; keep the first line. */
        char msg[256];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(conn));
        msg[strcspn(msg, "\n")] = '\0';
        vap_warn(NULL, "database connect failed: %s", msg);
        PQfinish(conn);
    }
    return NULL;
}

static void deadline_to_timespec(int64_t deadline_ms, struct timespec *ts)
{
    ts->tv_sec = deadline_ms / 1000;
    ts->tv_nsec = (deadline_ms % 1000) * 1000000;
}

static void remember_busy(struct vap_db_pool *pool, PGconn *conn, int64_t opened_ms)
{
    for (int i = 0; i < pool->opts.size; i++) {
        if (pool->busy[i].conn == NULL) {
            pool->busy[i].conn = conn;
            pool->busy[i].opened_ms = opened_ms;
            return;
        }
    }
}

static int acquire(struct vap_db_pool *pool, PGconn **conn, int64_t deadline_ms)
{
    struct timespec ts;
    PGconn *c;

    deadline_to_timespec(deadline_ms, &ts);
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        if (pool->idle_count > 0) {
            struct pooled got = pool->idle[--pool->idle_count];
            pool->in_use++;
            remember_busy(pool, got.conn, got.opened_ms);
            pthread_mutex_unlock(&pool->lock);
            *conn = got.conn;
            return 0;
        }
        if (pool->open_count < pool->opts.size)
            break;
        if (pthread_cond_timedwait(&pool->freed, &pool->lock, &ts) == ETIMEDOUT) {
            pthread_mutex_unlock(&pool->lock);
            return VAP_ETIMEDOUT;
        }
    }
    pool->open_count++;
    pthread_mutex_unlock(&pool->lock);

    c = open_connection(pool);

    pthread_mutex_lock(&pool->lock);
    if (!c) {
        pool->open_count--;
        pthread_cond_signal(&pool->freed);
        pthread_mutex_unlock(&pool->lock);
        return VAP_EUNAVAIL;
    }
    pool->in_use++;
    remember_busy(pool, c, vap_now_ms());
    pthread_mutex_unlock(&pool->lock);
    *conn = c;
    return 0;
}

int vap_db_acquire(struct vap_db_pool *pool, PGconn **conn, int64_t deadline_ms)
{
    int64_t t0 = vap_now_us();
    int rv = acquire(pool, conn, deadline_ms);
    vap_histogram_observe(pool->waited, (double)(vap_now_us() - t0) / 1e6);
    return rv;
}

void vap_db_release(struct vap_db_pool *pool, PGconn *conn)
{
    int64_t opened_ms = 0;
    int keep;

    if (!conn)
        return;
    pthread_mutex_lock(&pool->lock);
    for (int i = 0; i < pool->opts.size; i++) {
        if (pool->busy[i].conn == conn) {
            opened_ms = pool->busy[i].opened_ms;
            pool->busy[i].conn = NULL;
            break;
        }
    }
    pool->in_use--;
    keep = PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) == PQTRANS_IDLE &&
           PQpipelineStatus(conn) == PQ_PIPELINE_OFF &&
           (pool->opts.max_age_s <= 0 ||
            vap_now_ms() - opened_ms < (int64_t)pool->opts.max_age_s * 1000);
    if (keep) {
        pool->idle[pool->idle_count].conn = conn;
        pool->idle[pool->idle_count].opened_ms = opened_ms;
        pool->idle_count++;
    } else {
        pool->open_count--;
    }
    pthread_cond_signal(&pool->freed);
    pthread_mutex_unlock(&pool->lock);
    if (!keep)
        PQfinish(conn);
}

void vap_db_pool_stats(struct vap_db_pool *pool, int *open, int *in_use)
{
    pthread_mutex_lock(&pool->lock);
    *open = pool->open_count;
    *in_use = pool->in_use;
    pthread_mutex_unlock(&pool->lock);
}

static int classify_result(PGconn *conn, PGresult *res, const char *request_id)
{
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    const char *state;
    char msg[256];

    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return 0;
    if (PQstatus(conn) != CONNECTION_OK)
        return VAP_EUNAVAIL;
    state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (state && strcmp(state, "23505") == 0)
        return VAP_ECONFLICT;
    if (state && strcmp(state, "57014") == 0)
        return VAP_ETIMEDOUT;
    /* Connection-class errors (08xxx), admin shutdown (57P01..57P03). */
    if (state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0))
        return VAP_EUNAVAIL;
    snprintf(msg, sizeof(msg), "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
    msg[strcspn(msg, "\n")] = '\0';
    vap_error(request_id, "database statement failed sqlstate=%s error=\"%s\"",
              state ? state : "-", msg);
    return VAP_EDB;
}

/* Prepares sql on this connection on first use and names it in name[24]. Returns 1 when
 * it is prepared, 0 when it cannot be cached (run it unnamed), or a negative vap_err. */
static int prepare(PGconn *conn, const char *request_id, const char *sql, int nparams,
                   char name[24])
{
    struct stmt_cache *cache = PQinstanceData(conn, stmt_cache_event);
    uint64_t h = sql_hash(sql);
    int i, rv;

    if (!cache)
        return 0;
    snprintf(name, 24, "vap_%016llx", (unsigned long long)h);
    for (i = 0; i < cache->n; i++)
        if (cache->hashes[i] == h)
            return 1;
    if (cache->n == STMT_CACHE_MAX)
        return 0;
    {
        PGresult *prep = PQprepare(conn, name, sql, nparams, NULL);
        rv = classify_result(conn, prep, request_id);
        PQclear(prep);
    }
    if (rv != 0)
        return rv;
    cache->hashes[cache->n++] = h;
    return 1;
}

/* Runs sql as a statement prepared on this connection, preparing it on first use.
 * Falls back to a one-shot PQexecParams when the cache is missing or full. */
static PGresult *exec_prepared(PGconn *conn, const char *request_id, const char *sql,
                               int nparams, const char *const *params, int *rv)
{
    char name[24];
    int prepared = prepare(conn, request_id, sql, nparams, name);
    *rv = prepared < 0 ? prepared : 0;
    if (prepared < 0)
        return NULL;
    if (!prepared)
        return PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    return PQexecPrepared(conn, name, nparams, params, NULL, NULL, 0);
}

int vap_db_exec(PGconn *conn, const char *request_id, const char *sql, int nparams,
                const char *const *params, PGresult **out)
{
    int rv;
    PGresult *res = exec_prepared(conn, request_id, sql, nparams, params, &rv);
    if (rv != 0) {
        if (out)
            *out = NULL;
        return rv;
    }
    rv = classify_result(conn, res, request_id);
    if (rv != 0 || out == NULL) {
        PQclear(res);
        if (out)
            *out = NULL;
        return rv;
    }
    *out = res;
    return 0;
}

int vap_db_exec_by(PGconn *conn, const char *request_id, int64_t deadline_ms, const char *sql,
                   int nparams, const char *const *params, PGresult **out)
{
    static const char SET_LIMIT[] = "SELECT set_config('statement_timeout', $1, false)";
    static const char RESET_LIMIT[] = "RESET statement_timeout";
    char name[24], set_name[24], reset_name[24], ms[24];
    const char *limit[1] = {ms};
    int set_prepared, reset_prepared;
    int64_t left = vap_ms_left(deadline_ms);
    PGresult *res = NULL;
    int prepared, syncs = 0, rv = 0, sent;

    if (out)
        *out = NULL;
    if (left <= 0)
        return VAP_ETIMEDOUT;
    /* all three prepared once per connection: parsing them each time cost more than
     * the spend itself in the access benchmark */
    prepared = prepare(conn, request_id, sql, nparams, name);
    set_prepared = prepared < 0 ? prepared : prepare(conn, request_id, SET_LIMIT, 1, set_name);
    reset_prepared =
        set_prepared < 0 ? set_prepared : prepare(conn, request_id, RESET_LIMIT, 0, reset_name);
    if (reset_prepared < 0)
        return reset_prepared;
    snprintf(ms, sizeof(ms), "%lld", (long long)left);
    /* One round trip: the limit, the statement, the session's own limit back; each
     * followed by a sync, so that a cancelled statement does not skip the reset. */
    if (PQenterPipelineMode(conn) != 1)
        return VAP_EUNAVAIL;
    sent = (set_prepared ? PQsendQueryPrepared(conn, set_name, 1, limit, NULL, NULL, 0)
                         : PQsendQueryParams(conn, SET_LIMIT, 1, NULL, limit, NULL, NULL, 0)) == 1 &&
           PQpipelineSync(conn) == 1 &&
           (prepared ? PQsendQueryPrepared(conn, name, nparams, params, NULL, NULL, 0)
                     : PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0)) == 1 &&
           PQpipelineSync(conn) == 1 &&
           (reset_prepared ? PQsendQueryPrepared(conn, reset_name, 0, NULL, NULL, NULL, 0)
                           : PQsendQueryParams(conn, RESET_LIMIT, 0, NULL, NULL, NULL, NULL, 0)) == 1 &&
           PQpipelineSync(conn) == 1;
    while (sent && syncs < 3) {
        PGresult *r = PQgetResult(conn);
        if (!r) {
            if (PQstatus(conn) != CONNECTION_OK) {
                rv = VAP_EUNAVAIL;
                break;
            }
            continue; /* the end of one statement's results */
        }
        if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
            syncs++;
            PQclear(r);
            continue;
        }
        if (syncs == 1 && !res) {
            res = r; /* the statement's own result */
        } else {
            int e = classify_result(conn, r, request_id);
            if (e != 0 && rv == 0)
                rv = e;
            PQclear(r);
        }
    }
    if (!sent && rv == 0)
        rv = VAP_EUNAVAIL;
    if (PQexitPipelineMode(conn) != 1 && rv == 0)
        rv = VAP_EUNAVAIL; /* left in pipeline mode: the pool drops it on release */
    if (rv == 0)
        rv = classify_result(conn, res, request_id);
    if (rv != 0 || out == NULL) {
        PQclear(res);
        return rv;
    }
    *out = res;
    return 0;
}

int vap_db_command(PGconn *conn, const char *request_id, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    int rv = classify_result(conn, res, request_id);
    PQclear(res);
    return rv;
}
