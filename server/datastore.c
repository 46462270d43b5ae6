/*
 * datastore: start-up of the datastore off the loop thread. See datastore.h.
 *
 * The thread reports back through an eventfd registered on the loop (not
 * loop_post), so datastore_free can take the report away again: a post
 * still queued at shutdown would otherwise run after we are freed.
 */
#include "server/datastore.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "server/auth.h"
#include "server/db_migrate.h"
#include "server/store.h"
#include "server/store_peers.h"

#define RETRY_MIN_MS    250
#define RETRY_MAX_MS    5000
#define POOL_WORKERS    4
#define BOOT_PW_LEN     24

struct datastore {
    struct loop *loop;
    struct datastore_cfg cfg;
    char *store, *dir, *peer_id;
    struct loop_io io;          /* eventfd: the thread is done */
    pthread_t thread;
    bool thread_running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;                  /* under mu */
    int result;                 /* the thread's outcome */
    struct loop_timer retry;
    struct db_pool *pool;
};

static struct db_options options(const struct datastore *d)
{
    return (struct db_options){ .datastore = d->store, .data_dir = d->dir };
}

static bool retryable(int rc)
{
    return rc == DB_UNAVAILABLE || rc == DB_BUSY;
}

/* Sleeps ms unless told to stop; false if stopping. */
static bool pause_ms(struct datastore *d, unsigned ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&d->mu);
    while (!d->stop && pthread_cond_timedwait(&d->cv, &d->mu, &ts) != ETIMEDOUT)
        ;
    bool go_on = !d->stop;
    pthread_mutex_unlock(&d->mu);
    return go_on;
}

/* First start: creates admin and prints its password, once. */
static int bootstrap(struct db *db)
{
    char pw[BOOT_PW_LEN + 1], hash[AUTH_PW_HASH_MAX];
    bool created = false;
    int64_t users = 0;
    int rc = db_query_int64(db, "SELECT COUNT(*) FROM users", NULL, 0, &users);
    if (rc < 0 || users > 0)
        return rc;
    if (auth_random_alnum(pw, BOOT_PW_LEN) < 0 ||
        auth_password_hash(pw, BOOT_PW_LEN, hash, sizeof(hash)) < 0)
        return DB_ERROR;    /* no randomness or no memory: not worth retrying */
    rc = store_bootstrap_admin(db, hash, &created);
    if (rc == DB_OK && created) {
        /* stdout, not the log: it must appear exactly once, for the person
         * who started the server, and never in collected logs. */
        printf("Bootstrap admin password: %s\n"
               "  Log in as \"admin\" with it and change it right away "
               "(PUT /v3/users/admin {\"password\": ...}); it is not shown again.\n", pw);
        fflush(stdout);
        log_info("created the bootstrap admin user (password printed to stdout)");
    }
    OPENSSL_cleanse(pw, sizeof(pw));
    return rc;
}

/* One attempt: open, migrate, bootstrap, forget old links. */
static int prepare(struct datastore *d)
{
    struct db_options opt = options(d);
    struct db *db = NULL;
    char err[512];
    int64_t changed = 0;
    int rc = db_open(&opt, &db, err, sizeof(err));
    if (rc < 0) {
        log_warn("datastore: cannot open: %s", err);
        return rc;
    }
    if ((rc = db_migrate(db)) == DB_OK && (rc = bootstrap(db)) == DB_OK)
        rc = d->peer_id ? store_peer_reset_links(db, d->peer_id, store_now_ms(), &changed)
                        : store_clusters_reset_links(db, store_now_ms(), &changed);
    if (rc < 0)
        log_warn("datastore: %s: %s", db_code_str(rc), db_errmsg(db));
    else if (changed > 0)
        log_info("datastore: %lld cluster(s) marked disconnected until their agents "
                 "return", (long long)changed);
    db_close(db);
    return rc;
}

static void *thread_main(void *arg)
{
    struct datastore *d = arg;
    unsigned wait = RETRY_MIN_MS;
    int rc;
    while ((rc = prepare(d)) < 0 && retryable(rc)) {
        log_warn("datastore: unavailable; retrying in %u ms", wait);
        if (!pause_ms(d, wait))
            break;
        wait = wait * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : wait * 2;
    }
    d->result = rc;
    uint64_t one = 1;
    ssize_t n = write(d->io.fd, &one, sizeof(one));
    (void)n;
    return NULL;
}

static int spawn(struct datastore *d)
{
    sigset_t all, old;
    sigfillset(&all);
    /* Signals stay with the loop thread (its signalfd). */
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = pthread_create(&d->thread, NULL, thread_main, d);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    d->thread_running = e == 0;
    if (e)
        log_error("datastore: cannot start a thread: %s", strerror(e));
    return e ? -1 : 0;
}

static void on_retry(struct loop_timer *t)
{
    struct datastore *d = (struct datastore *)((char *)t - offsetof(struct datastore, retry));
    if (spawn(d) < 0)
        d->cfg.on_fatal(d->cfg.ud);
}

/* Loop thread: the start-up thread finished. */
static void on_thread_done(struct loop_io *io, unsigned events)
{
    struct datastore *d = (struct datastore *)((char *)io - offsetof(struct datastore, io));
    uint64_t v;
    ssize_t n = read(io->fd, &v, sizeof(v));
    (void)n;
    (void)events;
    pthread_join(d->thread, NULL);
    d->thread_running = false;
    if (d->result < 0) {
        log_error("datastore: start-up failed: %s", db_code_str(d->result));
        d->cfg.on_fatal(d->cfg.ud);
        return;
    }
    /* The pool connects on this thread: once, at start, to a database the
     * start-up thread has just reached, while nothing else is served yet. */
    struct db_options opt = options(d);
    struct db_pool_config pc = { .workers = POOL_WORKERS };
    char err[512];
    int rc = db_pool_new(d->loop, &opt, &pc, &d->pool, err, sizeof(err));
    if (rc < 0) {
        log_warn("datastore: cannot open the pool: %s", err);
        if (retryable(rc)) {
            loop_timer_start(d->loop, &d->retry, RETRY_MAX_MS, on_retry);
            return;
        }
        d->cfg.on_fatal(d->cfg.ud);
        return;
    }
    log_info("datastore ready (%s)", strncmp(d->store, "postgres", 8) == 0
                                         ? "PostgreSQL" : "SQLite");
    d->cfg.on_ready(d->cfg.ud, d->pool);
}

struct datastore *datastore_start(struct loop *l, const struct datastore_cfg *cfg)
{
    struct datastore *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->loop = l;
    d->cfg = *cfg;
    d->io.fd = -1;
    d->store = strdup(cfg->datastore);
    d->dir = strdup(cfg->data_dir);
    d->peer_id = cfg->peer_id ? strdup(cfg->peer_id) : NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&d->mu, NULL);
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!d->store || !d->dir || (cfg->peer_id && !d->peer_id) || efd < 0 ||
        loop_io_add(l, &d->io, efd, LOOP_READ, on_thread_done) < 0 || spawn(d) < 0) {
        if (efd >= 0 && d->io.fd < 0)
            close(efd);
        datastore_free(d);
        return NULL;
    }
    return d;
}

void datastore_free(struct datastore *d)
{
    if (!d)
        return;
    if (d->thread_running) {
        pthread_mutex_lock(&d->mu);
        d->stop = true;
        pthread_cond_signal(&d->cv);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->thread, NULL);
    }
    loop_timer_stop(d->loop, &d->retry);
    if (d->io.fd >= 0) {
        int fd = d->io.fd;
        loop_io_del(d->loop, &d->io);
        close(fd);
    }
    db_pool_free(d->pool);
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    free(d->store);
    free(d->dir);
    free(d->peer_id);
    free(d);
}
