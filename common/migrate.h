/*
 * Schema migrations: numbered SQL files ("001_init.sql", "002_...") embedded in the
 * service binary, applied at start in name order, all in one transaction under a
 * PostgreSQL advisory lock so that replicas starting together apply each file once.
 * Applied versions are recorded in <schema>.schema_migrations.
 */
#ifndef VAP_MIGRATE_H
#define VAP_MIGRATE_H

#include <libpq-fe.h>

#include "embedded.h"

/*
 * Creates schema (a lower-case identifier) if needed and applies the files not yet
 * recorded there. On failure everything is rolled back. Returns 0 or a VAP_E* code;
 * *applied (may be NULL) receives how many files were applied now. Blocks.
 */
int vap_migrate(PGconn *conn, const char *schema, const struct vap_embedded_file *files,
                int *applied);

struct vap_db_pool;

/*
 * Applies the migrations with a connection from pool, retrying every second while the
 * database cannot be reached (e.g. it starts after the service), for at most
 * timeout_s. Returns 0, the last error, or VAP_EUNAVAIL when SIGTERM/SIGINT arrived
 * meanwhile (signals must be blocked with vap_signals_block()). Blocks.
 */
int vap_migrate_pool(struct vap_db_pool *pool, const char *schema,
                     const struct vap_embedded_file *files, int timeout_s);

#endif
