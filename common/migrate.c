/* Migration runner (see migrate.h). */
#include "migrate.h"

#include <stdio.h>
#include <string.h>

#include <signal.h>

#include "clock.h"
#include "db.h"
#include "err.h"
#include "log.h"
#include "signals.h"

static int valid_identifier(const char *s)
{
    if (!s || !*s || strlen(s) > 48)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || *s == '_'))
            return 0;
    return 1;
}

int vap_migrate(PGconn *conn, const char *schema, const struct vap_embedded_file *files,
                int *applied)
{
    char sql[256];
    int rv, count = 0;

    if (!valid_identifier(schema))
        return VAP_EINVAL;
    rv = vap_db_command(conn, NULL, "BEGIN");
    if (rv != 0)
        return rv;
    /* One lock for every service: DDL of different schemas never interleaves either. */
    rv = vap_db_command(conn, NULL, "SELECT pg_advisory_xact_lock(7365826001)");
    if (rv != 0)
        goto fail;
    {
        /* A service role that owns its schema (deploy/db-roles.sh) may not create
         * schemas, and CREATE SCHEMA IF NOT EXISTS checks that right first: ask. */
        PGresult *res = NULL;
        const char *params[1] = {schema};
        rv = vap_db_exec(conn, NULL, "SELECT 1 FROM pg_namespace WHERE nspname = $1", 1, params,
                         &res);
        if (rv != 0)
            goto fail;
        int exists = PQntuples(res) > 0;
        PQclear(res);
        if (!exists) {
            snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", schema);
            rv = vap_db_command(conn, NULL, sql);
            if (rv != 0)
                goto fail;
        }
    }
    snprintf(sql, sizeof(sql),
             "CREATE TABLE IF NOT EXISTS %s.schema_migrations"
             " (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
             schema);
    rv = vap_db_command(conn, NULL, sql);
    if (rv != 0)
        goto fail;
    for (const struct vap_embedded_file *f = files; f->name; f++) {
        PGresult *res = NULL;
        const char *params[1] = {f->name};
        snprintf(sql, sizeof(sql), "SELECT 1 FROM %s.schema_migrations WHERE version = $1",
                 schema);
        rv = vap_db_exec(conn, NULL, sql, 1, params, &res);
        if (rv != 0)
            goto fail;
        int done = PQntuples(res) > 0;
        PQclear(res);
        if (done)
            continue;
        rv = vap_db_command(conn, NULL, f->text);
        if (rv != 0) {
            vap_error(NULL, "migration failed schema=%s file=%s", schema, f->name);
            goto fail;
        }
        snprintf(sql, sizeof(sql), "INSERT INTO %s.schema_migrations (version) VALUES ($1)",
                 schema);
        rv = vap_db_exec(conn, NULL, sql, 1, params, NULL);
        if (rv != 0)
            goto fail;
        vap_info(NULL, "migration applied schema=%s file=%s", schema, f->name);
        count++;
    }
    rv = vap_db_command(conn, NULL, "COMMIT");
    if (rv != 0)
        goto fail;
    if (applied)
        *applied = count;
    return 0;
fail:
    vap_db_command(conn, NULL, "ROLLBACK");
    return rv;
}

int vap_migrate_pool(struct vap_db_pool *pool, const char *schema,
                     const struct vap_embedded_file *files, int timeout_s)
{
    int64_t give_up = vap_now_ms() + (int64_t)timeout_s * 1000;
    for (;;) {
        PGconn *conn = NULL;
        int sig, rv = vap_db_acquire(pool, &conn, vap_now_ms() + 5000);
        if (rv == 0) {
            rv = vap_migrate(conn, schema, files, NULL);
            vap_db_release(pool, conn);
            if (rv == 0)
                return 0;
        }
        if (vap_now_ms() > give_up) {
            vap_error(NULL, "database not usable after %d s: %s", timeout_s, vap_strerror(rv));
            return rv;
        }
        vap_warn(NULL, "database not ready (%s); retrying", vap_strerror(rv));
        sig = vap_signals_wait(1000);
        if (sig == SIGTERM || sig == SIGINT)
            return VAP_EUNAVAIL;
    }
}
