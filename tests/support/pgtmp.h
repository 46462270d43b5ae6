/*
 * pgtmp: a throwaway PostgreSQL server for tests.
 *
 * pgtmp_start() runs initdb into a fresh /tmp/drover-pgtmp-XXXXXX, starts
 * postgres on 127.0.0.1 (a free port; its unix socket in that directory;
 * fsync off), waits until it accepts connections and creates the database
 * drover_test. PostgreSQL refuses to run as root, so when we are root the
 * directory is given to the `postgres` user and initdb/postgres run as it.
 * The binaries are the newest /usr/lib/postgresql/N/bin, or $DROVER_PG_BINDIR.
 *
 * Nothing is left running: pgtmp_stop() (pg_ctl stop -m immediate, then the
 * directory is removed) also runs from an atexit handler in the process that
 * started the server (not in forked test children), and the postmaster is
 * told to quit if that process dies without cleaning up (PR_SET_PDEATHSIG).
 * Every wait has a timeout.
 */
#ifndef DROVER_TESTS_PGTMP_H
#define DROVER_TESTS_PGTMP_H

#include <stddef.h>

struct pgtmp;

/* Returns the running server (the caller's, for pgtmp_stop), or NULL with a
 * message in err (including the tail of the server's log if it died). */
struct pgtmp *pgtmp_start(char *err, size_t errlen);

/* "postgres://postgres@127.0.0.1:PORT/drover_test"; owned by t. */
const char *pgtmp_url(const struct pgtmp *t);
/* The same server's maintenance database ("postgres"). */
const char *pgtmp_admin_url(const struct pgtmp *t);
int pgtmp_port(const struct pgtmp *t);

/* Stops the server and removes its directory. NULL is a no-op. */
void pgtmp_stop(struct pgtmp *t);

#endif
