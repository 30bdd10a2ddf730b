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

#endif
