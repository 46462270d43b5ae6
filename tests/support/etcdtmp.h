/*
 * etcdtmp: a throwaway etcd (Debian's etcd-server) for tests.
 *
 * etcdtmp_start() makes /tmp/drover-etcdtmp-XXXXXX, writes DIR/start.sh
 * (starts etcd in the background on two free loopback ports with its data
 * in DIR/data, its pid in DIR/etcd.pid, its log in DIR/etcd.log) and
 * DIR/stop.sh (kills that pid and waits until it is gone), runs start.sh
 * and waits until etcd answers. The scripts are there so a test's restore
 * hook can stop etcd, swap DIR/data and start it again, as a site would.
 *
 * etcdtmp_stop() stops etcd and removes the directory; it also runs from
 * an atexit handler in the process that started it. Every wait has a
 * timeout.
 */
#ifndef DROVER_TESTS_ETCDTMP_H
#define DROVER_TESTS_ETCDTMP_H

#include <stdbool.h>
#include <stddef.h>

struct etcdtmp;

/* The running etcd (the caller's), or NULL with a message in err. */
struct etcdtmp *etcdtmp_start(char *err, size_t errlen);
/* "http://127.0.0.1:PORT" */
const char *etcdtmp_endpoint(const struct etcdtmp *e);
const char *etcdtmp_dir(const struct etcdtmp *e);
/* Runs DIR/stop.sh or DIR/start.sh (waiting until etcd answers); 0 or -1. */
int etcdtmp_halt(struct etcdtmp *e);
int etcdtmp_resume(struct etcdtmp *e);
/* etcdctl put / get through the shell; get's value into out ("" if none).
 * 0 or -1. */
int etcdtmp_put(struct etcdtmp *e, const char *key, const char *value);
int etcdtmp_get(struct etcdtmp *e, const char *key, char *out, size_t cap);
/* Stops etcd and removes its directory. NULL is a no-op. */
void etcdtmp_stop(struct etcdtmp *e);

#endif
