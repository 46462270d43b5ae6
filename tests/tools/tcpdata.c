/*
 * tcpdata: a standalone TCP data tool for drover's integration tests and
 * benchmarks. It plays both ends of a TCP stream so a test can push data
 * through the tunnel (server side and agent side) and check that what came
 * out is exactly what went in.
 *
 * Every payload is a deterministic stream (xorshift64*, fixed seed), so the
 * receiving side can regenerate it instead of keeping a copy: memory stays
 * small however many bytes move. Integrity is checked with SHA-256 (upload,
 * download) or by byte comparison against the regenerated stream (echo,
 * rtt, hold).
 *
 * Output contract: one line of key=value pairs on stdout, diagnostics on
 * stderr, exit 0 ok / 1 failure / 2 usage.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#define IO_BUF (256u * 1024u)       /* user-space socket read/write size */
#define GEN_CHUNK (64u * 1024u)     /* regenerated-stream window for compares */
#define STREAM_SEED 0x9E3779B97F4A7C15ull
#define DIGEST_LEN 32
#define CONNECT_RETRY_MS 2000       /* the relay under test may still be starting */
#define CONNECT_RETRY_STEP_MS 20
#define THREAD_STACK (512u * 1024u) /* buffers live on the heap; 200+ threads */
#define MAX_STREAMS 1024
#define MAX_RTT_SIZE (16u * 1024u * 1024u)
#define MAX_RTT_COUNT 10000000ull
#define MAX_TIMEOUT 1000000ull
#define RTT_WARMUP 50
#define RTT_WARMUP_NEWCONN 10

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* The parsed command line; main() fills it, the cmd_* functions read it. */
struct opts {
	const char *listen, *connect, *port_file;
	uint64_t bytes, download, stall_after, count, size, streams, timeout;
	bool new_conn, raw;
};

/* Per-call inactivity limit for client sockets, for error messages. */
static unsigned long g_timeout = 120;

/* malloc that says so when it fails; callers only check for NULL. */
static void *alloc(size_t n)
{
	void *p = malloc(n);

	if (!p)
		fprintf(stderr, "tcpdata: out of memory\n");
	return p;
}

/* ---- deterministic stream ------------------------------------------- */

static inline uint64_t gen_next(uint64_t *x)
{
	uint64_t s = *x;

	s ^= s >> 12;
	s ^= s << 25;
	s ^= s >> 27;
	*x = s;
	return s * 0x2545F4914F6CDD1Dull;
}

/*
 * Append len stream bytes to buf. Each step yields 8 bytes, so every call
 * but the last one of a stream must ask for a multiple of 8, or the bytes of
 * the split step are lost and the two sides drift apart.
 */
static void gen_fill(uint64_t *x, uint8_t *buf, size_t len)
{
	size_t i;
	uint64_t v;

	for (i = 0; i + 8 <= len; i += 8) {
		v = htole64(gen_next(x));
		memcpy(buf + i, &v, 8);
	}
	if (i < len) {
		v = htole64(gen_next(x));
		memcpy(buf + i, &v, len - i);
	}
}

/*
 * A reader-side view of the stream: received data arrives in arbitrary
 * pieces, so the cursor keeps a generated window and a position in it.
 */
struct gen_cursor {
	uint64_t x;
	uint64_t off; /* absolute stream offset of buf[pos] */
	size_t pos, len;
	uint8_t buf[GEN_CHUNK];
};

static struct gen_cursor *cursor_new(void)
{
	struct gen_cursor *c = alloc(sizeof(*c));

	if (c) {
		c->x = STREAM_SEED;
		c->off = 0;
		c->pos = c->len = 0;
	}
	return c;
}

/* 0 if data equals the next n stream bytes; else -1 and *bad = offset. */
static int cursor_match(struct gen_cursor *c, const uint8_t *data, size_t n,
			uint64_t *bad)
{
	while (n > 0) {
		size_t k, i;

		if (c->pos == c->len) {
			gen_fill(&c->x, c->buf, GEN_CHUNK);
			c->pos = 0;
			c->len = GEN_CHUNK;
		}
		k = c->len - c->pos < n ? c->len - c->pos : n;
		if (memcmp(data, c->buf + c->pos, k) != 0) {
			for (i = 0; data[i] == c->buf[c->pos + i]; i++)
				;
			*bad = c->off + i;
			return -1;
		}
		c->pos += k;
		c->off += k;
		data += k;
		n -= k;
	}
	return 0;
}

/* ---- SHA-256 ------------------------------------------------------- */

static EVP_MD_CTX *sha_new(void)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(ctx);
		ctx = NULL;
	}
	if (!ctx)
		fprintf(stderr, "tcpdata: cannot set up SHA-256\n");
	return ctx;
}

/* Finish ctx into out; 0 on success. The caller still frees ctx. */
static int sha_final(EVP_MD_CTX *ctx, uint8_t out[DIGEST_LEN])
{
	unsigned int len = 0;

	if (EVP_DigestFinal_ex(ctx, out, &len) != 1 || len != DIGEST_LEN)
		return -1;
	return 0;
}

/* Digest of the first n stream bytes, the reference for downloads. */
static int stream_digest(uint64_t n, uint8_t out[DIGEST_LEN])
{
	uint8_t *buf = alloc(IO_BUF);
	EVP_MD_CTX *ctx = sha_new();
	uint64_t x = STREAM_SEED;
	int rc = -1;

	if (!buf || !ctx)
		goto out;
	while (n > 0) {
		size_t k = n < IO_BUF ? (size_t)n : IO_BUF;

		gen_fill(&x, buf, k);
		if (EVP_DigestUpdate(ctx, buf, k) != 1)
			goto out;
		n -= k;
	}
	rc = sha_final(ctx, out);
out:
	EVP_MD_CTX_free(ctx);
	free(buf);
	return rc;
}

/* Plain decimal in [lo, hi]: strtoull alone takes "-1", " 7" and "9x". */
static int parse_num(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* ---- time ---------------------------------------------------------- */

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- socket I/O ---------------------------------------------------- */

/* Write all n bytes; -1 with errno set on error (EAGAIN = timed out). */
static int send_all(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;

	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static ssize_t recv_some(int fd, void *buf, size_t n)
{
	ssize_t r;

	do
		r = recv(fd, buf, n, 0);
	while (r < 0 && errno == EINTR);
	return r;
}

/* 1 when all n bytes arrived, 0 on EOF first, -1 on error (errno set). */
static int recv_exact(int fd, void *buf, size_t n)
{
	uint8_t *p = buf;

	while (n > 0) {
		ssize_t r = recv_some(fd, p, n);

		if (r <= 0)
			return (int)r;
		p += r;
		n -= (size_t)r;
	}
	return 1;
}

/*
 * Explain a failed socket call; it reads errno, so call it right after the
 * failure. r == 0 means the peer closed early. SO_RCVTIMEO/SO_SNDTIMEO
 * expiry shows up as EAGAIN (EINPROGRESS for connect).
 */
static void report_io(const char *tag, const char *what, ssize_t r)
{
	int e = errno;

	if (r == 0)
		fprintf(stderr, "tcpdata: %s: %s: peer closed the connection early\n",
			tag, what);
	else if (e == EAGAIN || e == EWOULDBLOCK || e == EINPROGRESS)
		fprintf(stderr, "tcpdata: %s: %s: timed out (no progress for %lu s)\n",
			tag, what, g_timeout);
	else
		fprintf(stderr, "tcpdata: %s: %s: %m\n", tag, what);
}

/*
 * Split "HOST:PORT" or "[V6]:PORT" into host (NULL when empty: wildcard)
 * and port. The caller owns nothing: both point into buf.
 */
static int split_hostport(const char *spec, char *buf, size_t cap,
			  char **host, char **port)
{
	char *colon;
	int n = snprintf(buf, cap, "%s", spec);

	if (n < 0 || (size_t)n >= cap)
		return -1;
	colon = strrchr(buf, ':');
	if (!colon || colon[1] == '\0')
		return -1;
	*colon = '\0';
	*port = colon + 1;
	*host = buf;
	if (buf[0] == '[') {
		size_t hl = strlen(buf);

		if (hl < 2 || buf[hl - 1] != ']')
			return -1;
		buf[hl - 1] = '\0';
		*host = buf + 1;
	}
	if (**host == '\0')
		*host = NULL;
	return 0;
}

/*
 * Split and check HOST:PORT (PORT 0 only when passive); host and port
 * point into buf. Checked at parse time too, so a typo is a usage error.
 */
static int addr_split(const char *spec, bool passive, char *buf, size_t cap,
		      char **host, char **port)
{
	uint64_t p;

	if (split_hostport(spec, buf, cap, host, port) != 0 ||
	    parse_num(*port, passive ? 0 : 1, 65535, &p) != 0) {
		fprintf(stderr, "tcpdata: bad address '%s' (want HOST:PORT, PORT %d..65535)\n",
			spec, passive ? 0 : 1);
		return -1;
	}
	return 0;
}

/* Resolve spec into a list the caller frees with freeaddrinfo(). */
static struct addrinfo *resolve(const char *spec, bool passive)
{
	char buf[512], *host, *port;
	struct addrinfo hints = { 0 }, *ai = NULL;
	int rc;

	if (addr_split(spec, passive, buf, sizeof(buf), &host, &port) != 0)
		return NULL;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc != 0) {
		fprintf(stderr, "tcpdata: %s: %s\n", spec, gai_strerror(rc));
		return NULL;
	}
	return ai;
}

/* The inactivity limit: a send/recv/connect stuck this long fails. */
static void set_timeouts(int fd)
{
	struct timeval tv = { (time_t)g_timeout, 0 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* One pass over the addresses; *refused tells whether a retry may help. */
static int try_connect(const struct addrinfo *list, bool *refused, int *err)
{
	const struct addrinfo *ai;

	for (ai = list; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
				ai->ai_protocol);

		if (fd < 0) {
			*err = errno;
			continue;
		}
		set_timeouts(fd);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			return fd;
		*err = errno;
		if (*err == ECONNREFUSED)
			*refused = true;
		close(fd);
	}
	return -1;
}

/* Connected client socket, or -1 after reporting why. */
static int connect_to(const struct addrinfo *list, const char *tag)
{
	double give_up = now_sec() + CONNECT_RETRY_MS / 1000.0;

	for (;;) {
		bool refused = false;
		int err = 0, fd = try_connect(list, &refused, &err);

		if (fd >= 0)
			return fd;
		if (!refused || now_sec() >= give_up) {
			errno = err;
			report_io(tag, "connect", -1);
			return -1;
		}
		sleep_ms(CONNECT_RETRY_STEP_MS);
	}
}

/* ---- server --------------------------------------------------------- */

static void serve_log(const char *what)
{
	fprintf(stderr, "tcpdata serve: %s: %m\n", what);
}

static void serve_upload(int fd, uint8_t *buf)
{
	EVP_MD_CTX *ctx = sha_new();
	uint8_t digest[DIGEST_LEN];
	ssize_t r;

	if (!ctx)
		return;
	while ((r = recv_some(fd, buf, IO_BUF)) > 0) {
		if (EVP_DigestUpdate(ctx, buf, (size_t)r) != 1)
			break;
	}
	if (r < 0)
		serve_log("upload: recv");
	else if (r > 0 || sha_final(ctx, digest) != 0)
		fprintf(stderr, "tcpdata serve: upload: SHA-256 failed\n");
	else if (send_all(fd, digest, DIGEST_LEN) != 0)
		serve_log("upload: send digest");
	EVP_MD_CTX_free(ctx);
}

static void serve_download(int fd, uint8_t *buf)
{
	uint64_t be, n, x = STREAM_SEED;
	int rc = recv_exact(fd, &be, sizeof(be));

	if (rc <= 0) {
		if (rc < 0)
			serve_log("download: recv length");
		return;
	}
	for (n = be64toh(be); n > 0;) {
		size_t k = n < IO_BUF ? (size_t)n : IO_BUF;

		gen_fill(&x, buf, k);
		if (send_all(fd, buf, k) != 0) {
			serve_log("download: send");
			return;
		}
		n -= k;
	}
}

/* Benchmark modes: no generator and no digest, so the tool is not the
 * bottleneck. 'S' reads to EOF and answers the 8-byte count; 'Z' sends N
 * bytes of one unchanging buffer. */
static void serve_sink(int fd, uint8_t *buf)
{
	uint64_t n = 0, be;
	ssize_t r;

	while ((r = recv_some(fd, buf, IO_BUF)) > 0)
		n += (uint64_t)r;
	if (r < 0) {
		serve_log("sink: recv");
		return;
	}
	be = htobe64(n);
	if (send_all(fd, &be, sizeof(be)) != 0)
		serve_log("sink: send count");
}

static void serve_zeros(int fd, uint8_t *buf)
{
	uint64_t be, n;

	if (recv_exact(fd, &be, sizeof(be)) <= 0)
		return;
	memset(buf, 0x5a, IO_BUF);
	for (n = be64toh(be); n > 0;) {
		size_t k = n < IO_BUF ? (size_t)n : IO_BUF;

		if (send_all(fd, buf, k) != 0)
			return;
		n -= k;
	}
}

static void serve_echo(int fd, uint8_t *buf)
{
	ssize_t r;

	while ((r = recv_some(fd, buf, IO_BUF)) > 0) {
		if (send_all(fd, buf, (size_t)r) != 0) {
			serve_log("echo: send");
			return;
		}
	}
	if (r < 0)
		serve_log("echo: recv");
	else
		shutdown(fd, SHUT_WR);
}

/*
 * A reader that stopped: never read, so the peer's data piles up in the
 * buffers along the path. Only POLLRDHUP is asked for, so pending data does
 * not wake us; POLLHUP/POLLERR are always reported (peer reset).
 */
static void serve_hold(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLRDHUP };

	for (;;) {
		int n = poll(&p, 1, -1);

		if (n < 0 && errno != EINTR) {
			serve_log("hold: poll");
			return;
		}
		if (n > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
			return;
	}
}

static void *serve_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	uint8_t mode, *buf = NULL;
	int rc = recv_exact(fd, &mode, 1);

	if (rc < 0)
		serve_log("recv mode");
	if (rc == 1 && mode == 'H')
		serve_hold(fd);
	/* Anything but the four modes is simply closed. */
	if (rc == 1 && strchr("UDESZ", mode) && mode != '\0')
		buf = alloc(IO_BUF);
	if (buf && mode == 'S')
		serve_sink(fd, buf);
	else if (buf && mode == 'Z')
		serve_zeros(fd, buf);
	else if (buf && mode == 'U')
		serve_upload(fd, buf);
	else if (buf && mode == 'D')
		serve_download(fd, buf);
	else if (buf)
		serve_echo(fd, buf);
	free(buf);
	close(fd);
	return NULL;
}

/* Listening socket on spec; the bound port (PORT may be 0) in *port. */
static int listen_on(const char *spec, unsigned *port)
{
	struct addrinfo *list = resolve(spec, true), *ai;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = -1, one = 1;

	for (ai = list; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0) {
			fprintf(stderr, "tcpdata serve: %s: socket: %m\n", spec);
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
		    listen(fd, SOMAXCONN) != 0) {
			fprintf(stderr, "tcpdata serve: %s: %m\n", spec);
			close(fd);
			fd = -1;
		}
	}
	if (list)
		freeaddrinfo(list);
	if (fd >= 0 && getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		*port = ntohs(ss.ss_family == AF_INET6 ?
			      ((struct sockaddr_in6 *)&ss)->sin6_port :
			      ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

/* Temp + rename, so a test polling for the file never reads half of it. */
static int write_port_file(const char *path, unsigned port)
{
	char tmp[PATH_MAX], line[16];
	int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	int len = snprintf(line, sizeof(line), "%u\n", port);
	int fd, rc = -1;

	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		fprintf(stderr, "tcpdata serve: port file path too long\n");
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0) {
		/* A few bytes to a regular file: written whole or not at all. */
		rc = write(fd, line, (size_t)len) == (ssize_t)len ? 0 : -1;
		if (close(fd) != 0)
			rc = -1;
	}
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -1;
	if (rc != 0) {
		fprintf(stderr, "tcpdata serve: port file %s: %m\n", path);
		unlink(tmp);
	}
	return rc;
}

/* Detached threads with small stacks: the server may hold hundreds. */
static int spawn(void *(*fn)(void *), void *arg, bool detached, pthread_t *out)
{
	pthread_attr_t attr;
	pthread_t t;
	int rc = pthread_attr_init(&attr);

	if (rc == 0) {
		pthread_attr_setstacksize(&attr, THREAD_STACK);
		if (detached)
			pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		rc = pthread_create(&t, &attr, fn, arg);
		pthread_attr_destroy(&attr);
	}
	if (rc == 0 && out)
		*out = t;
	errno = rc;
	return rc == 0 ? 0 : -1;
}

/*
 * Accept forever. Running out of fds or memory is transient under load, so
 * back off and keep going: one connection's trouble never stops the server.
 */
static void *accept_loop(void *arg)
{
	int lfd = (int)(intptr_t)arg;

	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EINTR && errno != ECONNABORTED) {
				serve_log("accept");
				sleep_ms(50);
			}
			continue;
		}
		if (spawn(serve_conn, (void *)(intptr_t)fd, true, NULL) != 0) {
			serve_log("thread");
			close(fd);
		}
	}
	return NULL;
}

static int cmd_serve(const struct opts *o)
{
	sigset_t stop;
	unsigned port = 0;
	int lfd, sig;

	/*
	 * Block the stop signals before any thread exists: every thread
	 * inherits the mask, so sigwait() below is the only one to take them.
	 */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	lfd = listen_on(o->listen, &port);
	if (lfd < 0)
		return EXIT_FAIL;
	if (spawn(accept_loop, (void *)(intptr_t)lfd, true, NULL) != 0) {
		serve_log("thread");
		return EXIT_FAIL;
	}
	if (o->port_file && write_port_file(o->port_file, port) != 0)
		return EXIT_FAIL;
	printf("mode=serve port=%u\n", port);
	fflush(stdout);
	while (sigwait(&stop, &sig) != 0)
		;
	/* _exit: atexit cleanup (OpenSSL's) must not race live threads. */
	_exit(EXIT_OK);
}

/* ---- upload / download ---------------------------------------------- */

/* One connection of an upload or download; the caller owns all of it. */
struct xfer {
	const struct addrinfo *ai;
	uint64_t bytes;
	const uint8_t *want; /* download: SHA-256 of the first bytes of stream */
	bool upload;
	bool raw;
	bool ok;
	uint64_t moved;
	char tag[40];
};

static void print_rate(const char *mode, size_t streams, uint64_t bytes,
		       double secs, bool ok)
{
	double mbps = secs > 0 ? (double)bytes / secs / 1e6 : 0;

	printf("mode=%s bytes=%llu ", mode, (unsigned long long)bytes);
	if (streams > 1)
		printf("streams=%zu ", streams);
	printf("secs=%.6f mbps=%.2f ok=%d\n", secs, mbps, ok ? 1 : 0);
	fflush(stdout);
}

static int upload_send(int fd, struct xfer *j, uint8_t *buf, EVP_MD_CTX *ctx)
{
	uint64_t x = STREAM_SEED, left = j->bytes;

	if (send_all(fd, "U", 1) != 0)
		goto fail;
	while (left > 0) {
		size_t k = left < IO_BUF ? (size_t)left : IO_BUF;

		gen_fill(&x, buf, k);
		if (EVP_DigestUpdate(ctx, buf, k) != 1)
			return -1;
		if (send_all(fd, buf, k) != 0)
			goto fail;
		j->moved += k;
		left -= k;
	}
	if (shutdown(fd, SHUT_WR) == 0)
		return 0;
fail:
	report_io(j->tag, "send", -1);
	return -1;
}

/* The reply must be exactly one digest, then EOF, and match ours. */
static int upload_check(int fd, struct xfer *j, uint8_t *buf, EVP_MD_CTX *ctx)
{
	uint8_t mine[DIGEST_LEN];
	size_t got = 0;
	ssize_t r = 0;

	while (got <= DIGEST_LEN &&
	       (r = recv_some(fd, buf + got, IO_BUF - got)) > 0)
		got += (size_t)r;
	if (got <= DIGEST_LEN && r < 0) {
		report_io(j->tag, "recv digest", -1);
		return -1;
	}
	if (got != DIGEST_LEN) {
		fprintf(stderr, "tcpdata: %s: reply is %s%zu bytes, want a %d-byte digest\n",
			j->tag, got > DIGEST_LEN ? "at least " : "", got, DIGEST_LEN);
		return -1;
	}
	if (sha_final(ctx, mine) != 0)
		return -1;
	if (memcmp(mine, buf, DIGEST_LEN) != 0) {
		fprintf(stderr, "tcpdata: %s: SHA-256 mismatch: the server's digest is not that of the bytes sent\n",
			j->tag);
		return -1;
	}
	return 0;
}

static int download_recv(int fd, struct xfer *j, uint8_t *buf, EVP_MD_CTX *ctx)
{
	uint8_t req[1 + 8];
	uint64_t be = htobe64(j->bytes);
	ssize_t r = 0;

	req[0] = 'D';
	memcpy(req + 1, &be, sizeof(be));
	if (send_all(fd, req, sizeof(req)) != 0) {
		report_io(j->tag, "send request", -1);
		return -1;
	}
	/* Stop at N+1: a stream that runs on past N is wrong already. */
	while (j->moved <= j->bytes && (r = recv_some(fd, buf, IO_BUF)) > 0) {
		if (EVP_DigestUpdate(ctx, buf, (size_t)r) != 1)
			return -1;
		j->moved += (uint64_t)r;
	}
	if (j->moved <= j->bytes && r < 0) {
		report_io(j->tag, "recv", -1);
		return -1;
	}
	return 0;
}

static int download_check(struct xfer *j, EVP_MD_CTX *ctx)
{
	uint8_t got[DIGEST_LEN];

	if (j->moved != j->bytes) {
		fprintf(stderr, "tcpdata: %s: received %s%llu bytes, want %llu\n",
			j->tag, j->moved > j->bytes ? "at least " : "",
			(unsigned long long)j->moved, (unsigned long long)j->bytes);
		return -1;
	}
	if (sha_final(ctx, got) != 0)
		return -1;
	if (memcmp(got, j->want, DIGEST_LEN) != 0) {
		fprintf(stderr, "tcpdata: %s: SHA-256 mismatch: received bytes differ from the stream\n",
			j->tag);
		return -1;
	}
	return 0;
}

/* --raw: counts only, for benchmarks (see serve_sink / serve_zeros). */
static int raw_upload(int fd, struct xfer *j, uint8_t *buf)
{
	uint64_t left = j->bytes, be;

	memset(buf, 0x5a, IO_BUF);
	if (send_all(fd, "S", 1) != 0)
		goto fail;
	while (left > 0) {
		size_t k = left < IO_BUF ? (size_t)left : IO_BUF;

		if (send_all(fd, buf, k) != 0)
			goto fail;
		j->moved += k;
		left -= k;
	}
	if (shutdown(fd, SHUT_WR) != 0 || recv_exact(fd, &be, sizeof(be)) != 1)
		goto fail;
	if (be64toh(be) != j->bytes) {
		fprintf(stderr, "tcpdata: %s: the sink counted %llu bytes, sent %llu\n", j->tag,
			(unsigned long long)be64toh(be), (unsigned long long)j->bytes);
		return -1;
	}
	return 0;
fail:
	report_io(j->tag, "raw upload", -1);
	return -1;
}

static int raw_download(int fd, struct xfer *j, uint8_t *buf)
{
	uint8_t req[1 + 8];
	uint64_t be = htobe64(j->bytes);
	ssize_t r = 0;

	req[0] = 'Z';
	memcpy(req + 1, &be, sizeof(be));
	if (send_all(fd, req, sizeof(req)) != 0)
		return -1;
	while (j->moved <= j->bytes && (r = recv_some(fd, buf, IO_BUF)) > 0)
		j->moved += (uint64_t)r;
	if (j->moved != j->bytes) {
		fprintf(stderr, "tcpdata: %s: received %llu bytes, want %llu\n", j->tag,
			(unsigned long long)j->moved, (unsigned long long)j->bytes);
		return -1;
	}
	return 0;
}

static void *xfer_run(void *arg)
{
	struct xfer *j = arg;
	uint8_t *buf = alloc(IO_BUF);
	EVP_MD_CTX *ctx = sha_new();
	int fd = -1;

	if (!buf || !ctx)
		goto out;
	fd = connect_to(j->ai, j->tag);
	if (fd < 0)
		goto out;
	if (j->raw)
		j->ok = (j->upload ? raw_upload(fd, j, buf) : raw_download(fd, j, buf)) == 0;
	else if (j->upload)
		j->ok = upload_send(fd, j, buf, ctx) == 0 &&
			upload_check(fd, j, buf, ctx) == 0;
	else
		j->ok = download_recv(fd, j, buf, ctx) == 0 &&
			download_check(j, ctx) == 0;
out:
	if (fd >= 0)
		close(fd);
	EVP_MD_CTX_free(ctx);
	free(buf);
	return NULL;
}

/* Run every job (in parallel when more than one); true if all were ok. */
static bool xfer_all(struct xfer *jobs, size_t k)
{
	pthread_t *t = NULL;
	size_t i, started = 0;
	bool ok = true;

	if (k == 1) {
		xfer_run(jobs);
		return jobs->ok;
	}
	t = alloc(k * sizeof(*t));
	for (i = 0; t && i < k; i++, started++) {
		if (spawn(xfer_run, &jobs[i], false, &t[i]) != 0) {
			report_io(jobs[i].tag, "thread", -1);
			break;
		}
	}
	for (i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	for (i = 0; i < k; i++)
		ok = ok && i < started && jobs[i].ok;
	free(t);
	return ok;
}

static int cmd_transfer(const struct opts *o, bool upload)
{
	const char *mode = upload ? "upload" : "download";
	struct addrinfo *ai = resolve(o->connect, false);
	uint8_t want[DIGEST_LEN];
	struct xfer *jobs = NULL;
	uint64_t total = 0;
	size_t i, k = (size_t)o->streams;
	double t0;
	bool ok = false;

	/* The reference digest is made once, outside the timed part. */
	if (!ai || (!upload && !o->raw && stream_digest(o->bytes, want) != 0))
		goto out;
	jobs = calloc(k, sizeof(*jobs));
	if (!jobs)
		goto out;
	for (i = 0; i < k; i++) {
		jobs[i] = (struct xfer){ .ai = ai, .bytes = o->bytes, .want = want,
					 .upload = upload, .raw = o->raw };
		if (k == 1)
			snprintf(jobs[i].tag, sizeof(jobs[i].tag), "%s", mode);
		else
			snprintf(jobs[i].tag, sizeof(jobs[i].tag), "%s stream %zu", mode, i);
	}
	t0 = now_sec();
	ok = xfer_all(jobs, k);
	t0 = now_sec() - t0;
	for (i = 0; i < k; i++)
		total += jobs[i].moved;
	print_rate(mode, k, total, t0, ok);
out:
	free(jobs);
	if (ai)
		freeaddrinfo(ai);
	return ok ? EXIT_OK : EXIT_FAIL;
}

static int cmd_upload(const struct opts *o) { return cmd_transfer(o, true); }
static int cmd_download(const struct opts *o) { return cmd_transfer(o, false); }

/* ---- echo ------------------------------------------------------------- */

/* Shared by the echo writer thread and the reading main thread. */
struct echo {
	int fd;
	uint64_t bytes, got;
	atomic_bool stop; /* set by the first side to fail */
	bool wrote;
};

/*
 * Claim the failure: only the first side to fail reports (the other one's
 * error is just the echo of it), and shutdown wakes the side still blocked.
 */
static bool echo_fail_first(struct echo *e)
{
	int err = errno;
	bool first = !atomic_exchange(&e->stop, true);

	shutdown(e->fd, SHUT_RDWR);
	errno = err;
	return first;
}

static void *echo_writer(void *arg)
{
	struct echo *e = arg;
	uint8_t *buf = alloc(IO_BUF);
	uint64_t x = STREAM_SEED, left = e->bytes;

	if (!buf || send_all(e->fd, "E", 1) != 0)
		goto fail;
	while (left > 0) {
		size_t k = left < IO_BUF ? (size_t)left : IO_BUF;

		gen_fill(&x, buf, k);
		if (send_all(e->fd, buf, k) != 0)
			goto fail;
		left -= k;
	}
	if (shutdown(e->fd, SHUT_WR) == 0) {
		e->wrote = true;
		free(buf);
		return NULL;
	}
fail:
	if (echo_fail_first(e) && buf)
		report_io("echo", "send", -1);
	free(buf);
	return NULL;
}

/* Compare the echo chunk by chunk with the regenerated stream. */
static int echo_reader(struct echo *e, uint8_t *buf, struct gen_cursor *c)
{
	uint64_t bad;
	ssize_t r;

	while ((r = recv_some(e->fd, buf, IO_BUF)) > 0) {
		if ((uint64_t)r > e->bytes - e->got) {
			if (echo_fail_first(e))
				fprintf(stderr, "tcpdata: echo: more bytes came back than were sent\n");
			return -1;
		}
		if (cursor_match(c, buf, (size_t)r, &bad) != 0) {
			if (echo_fail_first(e))
				fprintf(stderr, "tcpdata: echo: echoed data differs at offset %llu\n",
					(unsigned long long)bad);
			return -1;
		}
		e->got += (uint64_t)r;
	}
	if (r == 0 && e->got == e->bytes)
		return 0;
	if (echo_fail_first(e)) {
		if (r < 0)
			report_io("echo", "recv", -1);
		else
			fprintf(stderr, "tcpdata: echo: got %llu of %llu bytes back\n",
				(unsigned long long)e->got, (unsigned long long)e->bytes);
	}
	return -1;
}

static int cmd_echo(const struct opts *o)
{
	struct addrinfo *ai = resolve(o->connect, false);
	struct echo e = { .fd = -1, .bytes = o->bytes };
	struct gen_cursor *c = cursor_new();
	uint8_t *buf = alloc(IO_BUF);
	double t0 = now_sec();
	pthread_t t;
	bool ok = false;

	if (!ai || !c || !buf)
		goto out;
	e.fd = connect_to(ai, "echo");
	if (e.fd >= 0 && spawn(echo_writer, &e, false, &t) != 0)
		report_io("echo", "thread", -1);
	else if (e.fd >= 0) {
		ok = echo_reader(&e, buf, c) == 0;
		pthread_join(t, NULL);
		ok = ok && e.wrote;
	}
	print_rate("echo", 1, e.got, now_sec() - t0, ok);
out:
	if (e.fd >= 0)
		close(e.fd);
	if (ai)
		freeaddrinfo(ai);
	free(c);
	free(buf);
	return ok ? EXIT_OK : EXIT_FAIL;
}

/* ---- rtt -------------------------------------------------------------- */

struct rtt {
	const struct addrinfo *ai;
	size_t size;
	uint8_t *msg;  /* 'E' then size stream bytes: a whole --new-conn request */
	uint8_t *back;
	int fd;        /* the one connection, or -1 with --new-conn */
};

static int rtt_connect(struct rtt *r)
{
	int one = 1, fd = connect_to(r->ai, "rtt");

	if (fd >= 0 && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
		report_io("rtt", "TCP_NODELAY", -1);
		close(fd);
		fd = -1;
	}
	return fd;
}

/* One request and its echo; a fresh connection's setup counts in *us. */
static int rtt_round(struct rtt *r, bool fresh, double *us)
{
	double t0 = now_sec();
	int fd = fresh ? rtt_connect(r) : r->fd, rc = -1;
	const uint8_t *out = fresh ? r->msg : r->msg + 1;
	size_t outlen = fresh ? r->size + 1 : r->size;

	if (fd < 0)
		return -1;
	if (send_all(fd, out, outlen) != 0) {
		report_io("rtt", "send", -1);
	} else if ((rc = recv_exact(fd, r->back, r->size)) != 1) {
		report_io("rtt", "recv", rc);
		rc = -1;
	} else {
		*us = (now_sec() - t0) * 1e6;
		rc = memcmp(r->back, r->msg + 1, r->size) == 0 ? 0 : -1;
		if (rc != 0)
			fprintf(stderr, "tcpdata: rtt: echoed data differs\n");
	}
	if (fresh)
		close(fd);
	return rc;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentiles over the sorted samples. */
static void print_rtt(const struct opts *o, double *us)
{
	size_t n = (size_t)o->count, i;
	size_t p50 = (50 * n + 99) / 100 - 1, p99 = (99 * n + 99) / 100 - 1;
	double sum = 0;

	qsort(us, n, sizeof(*us), cmp_double);
	for (i = 0; i < n; i++)
		sum += us[i];
	printf("mode=rtt count=%zu size=%zu p50_us=%.1f p99_us=%.1f mean_us=%.1f ok=1\n",
	       n, (size_t)o->size, us[p50], us[p99], sum / (double)n);
	fflush(stdout);
}

static int cmd_rtt(const struct opts *o)
{
	struct rtt r = { .size = (size_t)o->size, .fd = -1 };
	uint64_t i, x = STREAM_SEED, warm = o->new_conn ? RTT_WARMUP_NEWCONN : RTT_WARMUP;
	double *us = alloc((size_t)o->count * sizeof(*us)), junk;
	bool ok = false;

	r.ai = resolve(o->connect, false);
	r.msg = alloc(r.size + 1);
	r.back = alloc(r.size);
	if (!r.ai || !us || !r.msg || !r.back)
		goto out;
	r.msg[0] = 'E';
	gen_fill(&x, r.msg + 1, r.size);
	if (!o->new_conn) {
		r.fd = rtt_connect(&r);
		if (r.fd < 0 || send_all(r.fd, "E", 1) != 0) {
			if (r.fd >= 0)
				report_io("rtt", "send", -1);
			goto out;
		}
	}
	for (i = 0; i < warm + o->count; i++) {
		if (rtt_round(&r, o->new_conn, i < warm ? &junk : &us[i - warm]) != 0)
			goto out;
	}
	ok = true;
	print_rtt(o, us);
out:
	if (!ok)
		printf("mode=rtt count=%llu size=%zu ok=0\n",
		       (unsigned long long)o->count, r.size);
	if (r.fd >= 0)
		close(r.fd);
	if (r.ai)
		freeaddrinfo((struct addrinfo *)r.ai);
	free(r.msg);
	free(r.back);
	free(us);
	return ok ? EXIT_OK : EXIT_FAIL;
}

/* ---- hold ------------------------------------------------------------- */

/* Read exactly m verified bytes, and not one more: the rest must stall. */
static int hold_read(int fd, uint64_t m, uint8_t *buf, struct gen_cursor *c)
{
	uint64_t got = 0, bad;

	while (got < m) {
		size_t want = m - got < IO_BUF ? (size_t)(m - got) : IO_BUF;
		ssize_t r = recv_some(fd, buf, want);

		if (r <= 0) {
			report_io("hold", "recv", r);
			return -1;
		}
		if (cursor_match(c, buf, (size_t)r, &bad) != 0) {
			fprintf(stderr, "tcpdata: hold: data differs at offset %llu\n",
				(unsigned long long)bad);
			return -1;
		}
		got += (uint64_t)r;
	}
	return 0;
}

static int cmd_hold(const struct opts *o)
{
	struct addrinfo *ai = resolve(o->connect, false);
	struct gen_cursor *c = cursor_new();
	uint8_t *buf = alloc(IO_BUF), req[1 + 8];
	uint64_t be = htobe64(o->download);
	int fd = -1;

	if (!ai || !c || !buf)
		goto out;
	fd = connect_to(ai, "hold");
	if (fd < 0)
		goto out;
	req[0] = 'D';
	memcpy(req + 1, &be, sizeof(be));
	if (send_all(fd, req, sizeof(req)) != 0) {
		report_io("hold", "send request", -1);
		goto out;
	}
	if (hold_read(fd, o->stall_after, buf, c) != 0)
		goto out;
	printf("mode=hold read=%llu\n", (unsigned long long)o->stall_after);
	fflush(stdout);
	free(c);
	free(buf);
	freeaddrinfo(ai);
	/* The far reader stops for good; only fd stays, so the sender stalls. */
	for (;;)
		pause();
out:
	if (fd >= 0)
		close(fd);
	if (ai)
		freeaddrinfo(ai);
	free(c);
	free(buf);
	return EXIT_FAIL;
}

/* ---- command line ----------------------------------------------------- */

static const char usage_text[] =
	"usage: tcpdata <mode> [options]\n"
	"  tcpdata serve    --listen HOST:PORT [--port-file FILE]\n"
	"  tcpdata upload   --connect HOST:PORT --bytes N [--streams K] [--raw] [--timeout SECS]\n"
	"  tcpdata download --connect HOST:PORT --bytes N [--streams K] [--raw] [--timeout SECS]\n"
	"  tcpdata echo     --connect HOST:PORT --bytes N [--timeout SECS]\n"
	"  tcpdata rtt      --connect HOST:PORT --count C [--size S] [--new-conn] [--timeout SECS]\n"
	"  tcpdata hold     --connect HOST:PORT --download N --stall-after M [--timeout SECS]\n"
	"\n"
	"serve answers by the first byte of each connection: U upload, D download,\n"
	"E echo, H hold (and S sink, Z zeros for --raw). --raw moves bytes without\n"
	"generating or hashing them (benchmarks: only the byte count is checked).\n"
	"PORT 0 picks a free port; --port-file gets it (written\n"
	"atomically once listening). HOST may be [IPv6]. --streams K runs K parallel\n"
	"connections (1..1024). rtt: --size defaults to 100 (max 16777216); 50 warm-up\n"
	"rounds (10 with --new-conn, whose times include connecting). --timeout\n"
	"(default 120) fails a client whose socket makes no progress for SECS.\n"
	"Result: one key=value line on stdout. Exit: 0 ok, 1 failure, 2 usage.\n";

enum opt_id {
	OPT_LISTEN = 1, OPT_PORT_FILE, OPT_CONNECT, OPT_BYTES, OPT_STREAMS,
	OPT_TIMEOUT, OPT_COUNT, OPT_SIZE, OPT_NEW_CONN, OPT_DOWNLOAD, OPT_STALL,
	OPT_RAW, OPT_HELP,
};
#define BIT(id) (1u << (id))
#define MAX_BYTES (1ull << 62)

/* Indexed by opt_id - 1, for messages. */
static const struct option long_opts[] = {
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "port-file", required_argument, NULL, OPT_PORT_FILE },
	{ "connect", required_argument, NULL, OPT_CONNECT },
	{ "bytes", required_argument, NULL, OPT_BYTES },
	{ "streams", required_argument, NULL, OPT_STREAMS },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "count", required_argument, NULL, OPT_COUNT },
	{ "size", required_argument, NULL, OPT_SIZE },
	{ "new-conn", no_argument, NULL, OPT_NEW_CONN },
	{ "download", required_argument, NULL, OPT_DOWNLOAD },
	{ "stall-after", required_argument, NULL, OPT_STALL },
	{ "raw", no_argument, NULL, OPT_RAW },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

#define CLIENT_OPTS (BIT(OPT_CONNECT) | BIT(OPT_TIMEOUT))

static const struct mode {
	const char *name;
	unsigned need, allow;
	int (*run)(const struct opts *);
} modes[] = {
	{ "serve", BIT(OPT_LISTEN), BIT(OPT_LISTEN) | BIT(OPT_PORT_FILE), cmd_serve },
	{ "upload", BIT(OPT_CONNECT) | BIT(OPT_BYTES),
	  CLIENT_OPTS | BIT(OPT_BYTES) | BIT(OPT_STREAMS) | BIT(OPT_RAW), cmd_upload },
	{ "download", BIT(OPT_CONNECT) | BIT(OPT_BYTES),
	  CLIENT_OPTS | BIT(OPT_BYTES) | BIT(OPT_STREAMS) | BIT(OPT_RAW), cmd_download },
	{ "echo", BIT(OPT_CONNECT) | BIT(OPT_BYTES), CLIENT_OPTS | BIT(OPT_BYTES), cmd_echo },
	{ "rtt", BIT(OPT_CONNECT) | BIT(OPT_COUNT),
	  CLIENT_OPTS | BIT(OPT_COUNT) | BIT(OPT_SIZE) | BIT(OPT_NEW_CONN), cmd_rtt },
	{ "hold", BIT(OPT_CONNECT) | BIT(OPT_DOWNLOAD) | BIT(OPT_STALL),
	  CLIENT_OPTS | BIT(OPT_DOWNLOAD) | BIT(OPT_STALL), cmd_hold },
};

static int set_opt(struct opts *o, int id, const char *arg)
{
	switch (id) {
	case OPT_LISTEN: o->listen = arg; return 0;
	case OPT_PORT_FILE: o->port_file = arg; return 0;
	case OPT_CONNECT: o->connect = arg; return 0;
	case OPT_NEW_CONN: o->new_conn = true; return 0;
	case OPT_RAW: o->raw = true; return 0;
	case OPT_BYTES: return parse_num(arg, 0, MAX_BYTES, &o->bytes);
	case OPT_STREAMS: return parse_num(arg, 1, MAX_STREAMS, &o->streams);
	case OPT_TIMEOUT: return parse_num(arg, 1, MAX_TIMEOUT, &o->timeout);
	case OPT_COUNT: return parse_num(arg, 1, MAX_RTT_COUNT, &o->count);
	case OPT_SIZE: return parse_num(arg, 1, MAX_RTT_SIZE, &o->size);
	case OPT_DOWNLOAD: return parse_num(arg, 0, MAX_BYTES, &o->download);
	case OPT_STALL: return parse_num(arg, 0, MAX_BYTES, &o->stall_after);
	}
	return -1;
}

static int check_args(const struct mode *m, unsigned seen, const struct opts *o);

/* The mode to run with *o filled in, or NULL after saying what is wrong. */
static const struct mode *parse_args(int argc, char **argv, struct opts *o)
{
	const struct mode *m = NULL;
	unsigned seen = 0;
	size_t i;
	int id;

	for (i = 0; argc >= 2 && i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcmp(argv[1], modes[i].name) == 0)
			m = &modes[i];
	if (!m) {
		fprintf(stderr, "tcpdata: %s\n", argc >= 2 ? "unknown mode" : "no mode given");
		return NULL;
	}
	/* "+": stop at the first non-option so stray words are caught below. */
	while ((id = getopt_long(argc - 1, argv + 1, "+", long_opts, NULL)) != -1) {
		if (id == '?' || id == OPT_HELP)
			return NULL;
		if (!(m->allow & BIT(id))) {
			fprintf(stderr, "tcpdata: %s does not take --%s\n", m->name,
				long_opts[id - 1].name);
			return NULL;
		}
		if (set_opt(o, id, optarg) != 0) {
			fprintf(stderr, "tcpdata: %s: bad value for --%s: '%s'\n",
				m->name, long_opts[id - 1].name, optarg);
			return NULL;
		}
		seen |= BIT(id);
	}
	if (optind != argc - 1) {
		fprintf(stderr, "tcpdata: %s: unexpected argument '%s'\n", m->name,
			argv[optind + 1]);
		return NULL;
	}
	return check_args(m, seen, o) == 0 ? m : NULL;
}

/* What single options cannot show: presence, address syntax, M <= N. */
static int check_args(const struct mode *m, unsigned seen, const struct opts *o)
{
	char buf[512], *host, *port;
	int id;

	for (id = OPT_LISTEN; id < OPT_HELP; id++) {
		if ((m->need & BIT(id)) && !(seen & BIT(id))) {
			fprintf(stderr, "tcpdata: %s needs --%s\n", m->name,
				long_opts[id - 1].name);
			return -1;
		}
	}
	if (addr_split(o->listen ? o->listen : o->connect, o->listen != NULL,
		       buf, sizeof(buf), &host, &port) != 0)
		return -1;
	if (m->run == cmd_hold && o->stall_after > o->download) {
		fprintf(stderr, "tcpdata: hold: --stall-after exceeds --download\n");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = { .streams = 1, .timeout = 120, .size = 100 };
	const struct mode *m;

	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	m = parse_args(argc, argv, &o);
	if (!m) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	g_timeout = (unsigned long)o.timeout;
	/* A peer that vanishes must fail one send, not kill the process. */
	signal(SIGPIPE, SIG_IGN);
	return m->run(&o);
}
