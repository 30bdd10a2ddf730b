/*
 * A small PostgreSQL connection pool over libpq. Connections are opened lazily with a
 * connect timeout and a server-side statement_timeout, recycled after a maximum age,
 * and dropped when libpq reports them broken, so a restarted database is picked up
 * again without a restart of the service. Acquire waits at most until a deadline:
 * callers turn VAP_ETIMEDOUT / VAP_EUNAVAIL into a 503, never a hang.
 * Thread-safe: any thread may acquire and release.
 */
#ifndef VAP_DB_H
#define VAP_DB_H

#include <libpq-fe.h>
#include <stdint.h>

struct vap_db_pool;

struct vap_db_options {
    const char *conninfo;      /* libpq URI or key=value string (DATABASE_URL) */
    int size;                  /* most connections open at once */
    int connect_timeout_s;     /* libpq connect_timeout */
    int statement_timeout_ms;  /* server-side limit for every statement */
    int max_age_s;             /* a connection older than this is closed on release */
    const char *application_name;
};

/* Creates a pool; opens no connection yet. *out is owned by the caller. */
int vap_db_pool_create(struct vap_db_pool **out, const struct vap_db_options *opts);

/* Closes every idle connection and frees the pool. No connection may be in use. */
void vap_db_pool_destroy(struct vap_db_pool *pool);

/*
 * Takes a connection, opening one if the pool has room. Blocks until deadline_ms
 * (monotonic, see clock.h) at most. Returns 0, VAP_ETIMEDOUT or VAP_EUNAVAIL.
 */
int vap_db_acquire(struct vap_db_pool *pool, PGconn **conn, int64_t deadline_ms);

/* Gives a connection back; a broken one (or one past max age) is closed. */
void vap_db_release(struct vap_db_pool *pool, PGconn *conn);

/* Connections open / in use right now, for metrics. */
void vap_db_pool_stats(struct vap_db_pool *pool, int *open, int *in_use);

/*
 * Runs one parameterised statement (text parameters, NULL for SQL NULL). On success
 * *out holds the result (caller PQclear()s it; out may be NULL to discard it).
 * Returns 0, VAP_ECONFLICT (unique violation), VAP_ETIMEDOUT (statement_timeout),
 * VAP_EUNAVAIL (connection lost) or VAP_EDB (anything else, logged with request_id).
 */
int vap_db_exec(PGconn *conn, const char *request_id, const char *sql, int nparams,
                const char *const *params, PGresult **out);

/*
 * vap_db_exec, with the statement limited to what is left of deadline_ms (in one round
 * trip: the limit, the statement, the session's own limit back). For statements that
 * commit what a caller waits for: past its deadline the caller has answered "try again",
 * so the statement must be cancelled and roll back rather than commit unseen.
 * VAP_ETIMEDOUT when the deadline has passed (nothing was run) or the statement was
 * cancelled by it.
 */
int vap_db_exec_by(PGconn *conn, const char *request_id, int64_t deadline_ms, const char *sql,
                   int nparams, const char *const *params, PGresult **out);

/* Runs a statement without parameters (BEGIN, COMMIT, ROLLBACK, DDL). Same returns. */
int vap_db_command(PGconn *conn, const char *request_id, const char *sql);

#endif
