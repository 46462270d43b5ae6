/*
 * takeover: measures how long a cluster is unreachable through drover when
 * its cluster agent dies or goes silent, for `make bench`.
 *
 *   takeover --port P --path /k8s/clusters/C/... --token T --pid PID
 *            [--signal KILL|STOP] [--timeout-ms 60000]
 *
 * Checks that a GET of path through drover-server (HTTPS on 127.0.0.1:P,
 * bearer token T) answers 200, sends the signal to PID (the cluster agent),
 * then repeats the GET, each on a new connection, until one answers 200.
 * A dead or stopped agent cannot answer, so that first success came through
 * the node agent standing in. Prints one line:
 *   ok=1 ms=<signal to first 200> attempts=<GETs after the signal> failed=<non-200>
 * and exits 0; ok=0 and exit 1 if no GET succeeded in time; 2 for usage.
 *
 * A plain blocking OpenSSL client: the server is ours, on loopback, so its
 * certificate is not verified.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define REQ_TIMEOUT_MS 2000     /* one GET; an in-flight GET on a dying link fails sooner */
#define HEAD_MAX 8192

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double now_ms_f(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = { REQ_TIMEOUT_MS / 1000, (REQ_TIMEOUT_MS % 1000) * 1000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One GET on a new TLS connection: the HTTP status, or 0 without one. */
static int get_once(SSL_CTX *ctx, int port, const char *req, size_t req_len)
{
    int fd = dial(port), status = 0;
    if (fd < 0)
        return 0;
    SSL *ssl = SSL_new(ctx);
    char head[HEAD_MAX + 1];
    size_t n = 0;
    if (!ssl || !SSL_set_fd(ssl, fd) || SSL_connect(ssl) != 1 ||
        SSL_write(ssl, req, (int)req_len) != (int)req_len)
        goto out;
    /* The status line is all we need. */
    while (n < HEAD_MAX && !memchr(head, '\n', n)) {
        int r = SSL_read(ssl, head + n, (int)(HEAD_MAX - n));
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    head[n] = '\0';
    if (sscanf(head, "HTTP/1.%*d %d", &status) != 1)
        status = 0;
out:
    if (ssl) {
        SSL_shutdown(ssl);
        SSL_free(ssl);
    }
    close(fd);
    ERR_clear_error();
    return status;
}

static int usage(void)
{
    fprintf(stderr, "usage: takeover --port P --path PATH --token T --pid PID "
                    "[--signal KILL|STOP] [--timeout-ms MS]\n");
    return 2;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        { "port", required_argument, NULL, 'p' }, { "path", required_argument, NULL, 'a' },
        { "token", required_argument, NULL, 't' }, { "pid", required_argument, NULL, 'i' },
        { "signal", required_argument, NULL, 's' },
        { "timeout-ms", required_argument, NULL, 'm' }, { NULL, 0, NULL, 0 },
    };
    int port = 0, sig = SIGKILL, c;
    long pid = 0, timeout_ms = 60000;
    const char *path = NULL, *token = NULL;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'p': port = (int)strtol(optarg, NULL, 10); break;
        case 'a': path = optarg; break;
        case 't': token = optarg; break;
        case 'i': pid = atol(optarg); break;
        case 'm': timeout_ms = atol(optarg); break;
        case 's':
            if (strcmp(optarg, "KILL") == 0)
                sig = SIGKILL;
            else if (strcmp(optarg, "STOP") == 0)
                sig = SIGSTOP;
            else
                return usage();
            break;
        default: return usage();
        }
    }
    if (port <= 0 || port > 65535 || !path || *path != '/' || !token || pid <= 1 ||
        timeout_ms <= 0 || strlen(path) + strlen(token) > 2000)
        return usage();
    signal(SIGPIPE, SIG_IGN);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        fprintf(stderr, "takeover: cannot make a TLS context\n");
        return 1;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    char req[2400];
    int len = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                       "Authorization: Bearer %s\r\nConnection: close\r\n\r\n",
                       path, port, token);
    int st = get_once(ctx, port, req, (size_t)len);
    if (st != 200) {
        fprintf(stderr, "takeover: the GET before the signal answered %d, not 200\n", st);
        printf("ok=0 ms=0 attempts=0 failed=0\n");
        SSL_CTX_free(ctx);
        return 1;
    }
    double t0 = now_ms_f();
    if (kill((pid_t)pid, sig) < 0) {
        perror("takeover: kill");
        SSL_CTX_free(ctx);
        return 1;
    }
    long long end = now_ms() + timeout_ms;
    int attempts = 0, failed = 0, ok = 0;
    double took = 0;
    while (now_ms() < end) {
        attempts++;
        st = get_once(ctx, port, req, (size_t)len);
        if (st == 200) {
            took = now_ms_f() - t0;
            ok = 1;
            break;
        }
        failed++;
        usleep(2000);   /* 503 comes at once while no link is up: do not spin */
    }
    printf("ok=%d ms=%.1f attempts=%d failed=%d\n", ok, took, attempts, failed);
    SSL_CTX_free(ctx);
    return ok ? 0 : 1;
}
