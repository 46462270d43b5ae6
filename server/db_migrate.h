/*
 * db_migrate: the datastore schema, as a versioned list compiled into the
 * server, and the code that brings a database up to date at start.
 *
 * Each migration runs in its own transaction and is recorded in
 * schema_migrations(version, applied_at). On PostgreSQL every migration
 * transaction first takes a transaction-scoped advisory lock, so replicas
 * starting together apply each migration exactly once; on SQLite the
 * BEGIN IMMEDIATE write lock does the same. Owns nothing at run time.
 */
#ifndef DROVER_SERVER_DB_MIGRATE_H
#define DROVER_SERVER_DB_MIGRATE_H

#include <stddef.h>
#include <stdint.h>

#include "server/db.h"

/*
 * Applies every migration the database has not seen, in order, logging each
 * one. Safe to call on every start and from several processes at once.
 * Returns 0, or a negative code with db_errmsg() saying which migration
 * failed (that migration is rolled back; earlier ones stay). Refuses with
 * DB_ERROR a database whose schema is newer than this binary knows.
 * Call it outside a transaction, before the pool starts.
 */
int db_migrate(struct db *db);

/* The highest applied version: 0 or a negative code (the table may not
 * exist before the first db_migrate). */
int db_schema_version(struct db *db, int64_t *out);

/* The newest version compiled in. */
/* How many migrations the server knows (versions need not be contiguous:
 * each is applied on its own when missing). */
size_t db_migrate_count(void);
int64_t db_migrate_latest(void);

#endif
