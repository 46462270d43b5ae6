/*
 * cli/http.c against a scripted TLS server on loopback: bodies framed by
 * Content-Length, chunked encoding and connection close, answers cut
 * short, downloads to a file descriptor (and errors kept in memory), and a
 * server whose CA is not the pinned one.
 */
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/http.h"
#include "tests/support/unit_net.h"

struct script {
    SSL_CTX *ctx;
    int lfd;
    const char *answer;     /* written whole after the request head */
    char request[4096];
};

static void *serve(void *ud)
{
    struct script *s = ud;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    SSL *ssl = SSL_new(s->ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
        size_t n = 0;
        /* Read the whole request (head and its 2-byte body): closing on
         * unread data would reset the connection and lose the answer. */
        while (!strstr(s->request, "\r\n\r\n{}") && n < sizeof(s->request) - 1) {
            int r = SSL_read(ssl, s->request + n, (int)(sizeof(s->request) - 1 - n));
            if (r <= 0)
                break;
            n += (size_t)r;
            s->request[n] = '\0';
        }
        SSL_write(ssl, s->answer, (int)strlen(s->answer));
        SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    close(fd);
    return NULL;
}

static int listen_any(int *port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(fd, 4), 0);
    getsockname(fd, (struct sockaddr *)&a, &al);
    *port = ntohs(a.sin_port);
    return fd;
}

/* One request against a server answering `answer`; returns http_request's
 * result, the answer in a and the request the server saw in req. */
static int exchange(const char *answer, const char *ca_pem, int out_fd,
                    struct http_answer *a, char *err, char *req)
{
    struct unit_pki pki;
    struct script s = { .answer = answer };
    struct http_client c;
    pthread_t th;
    char url[64];
    int port;
    unit_pki_init(&pki);
    s.ctx = pki.server;
    s.lfd = listen_any(&port);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d", port);
    ck_assert_int_eq(http_client_init(&c, url, ca_pem ? ca_pem : pki.pki.ca_pem, false, err,
                                      256), 0);
    pthread_create(&th, NULL, serve, &s);
    int rc = http_request(&c, "POST", "/v3/x", "tok", "application/json", "{}", 2, out_fd, a,
                          err, 256);
    pthread_join(th, NULL);
    if (req)
        snprintf(req, 4096, "%s", s.request);
    close(s.lfd);
    http_client_free(&c);
    unit_pki_free(&pki);
    return rc;
}

START_TEST(framings)
{
    struct http_answer a;
    char err[256], req[4096];
    int rc0 = exchange("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                       "Content-Type: application/json\r\n\r\nhello", NULL, -1, &a, err, req);
    ck_assert_msg(rc0 == 0, "%s", err);
    ck_assert_int_eq(a.status, 200);
    ck_assert_str_eq(a.body, "hello");
    ck_assert_str_eq(a.ctype, "application/json");
    ck_assert(strstr(req, "POST /v3/x HTTP/1.1\r\n") == req);
    ck_assert(strstr(req, "Authorization: Bearer tok\r\n") != NULL);
    ck_assert(strstr(req, "Content-Length: 2\r\n") != NULL);
    http_answer_free(&a);
    ck_assert_int_eq(exchange("HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n", NULL, -1, &a, err, NULL), 0);
    ck_assert_str_eq(a.body, "abcdefg");
    http_answer_free(&a);
    ck_assert_int_eq(exchange("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close",
                              NULL, -1, &a, err, NULL), 0);
    ck_assert_str_eq(a.body, "until close");
    http_answer_free(&a);
    ck_assert_int_eq(exchange("HTTP/1.1 204 No Content\r\n\r\n", NULL, -1, &a, err, NULL), 0);
    ck_assert_str_eq(a.body, "");
    http_answer_free(&a);
}
END_TEST

START_TEST(broken_answers)
{
    struct http_answer a;
    char err[256];
    ck_assert_int_eq(exchange("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", NULL, -1,
                              &a, err, NULL), -1);
    ck_assert(strstr(err, "cut short") != NULL);
    ck_assert_int_eq(exchange("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                              NULL, -1, &a, err, NULL), -1);
    ck_assert(strstr(err, "chunked") != NULL);
    ck_assert_int_eq(exchange("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", NULL, -1, &a,
                              err, NULL), -1);
    ck_assert_int_eq(exchange("garbage\r\n\r\n", NULL, -1, &a, err, NULL), -1);
    ck_assert(strstr(err, "malformed") != NULL);
    ck_assert_int_eq(exchange("", NULL, -1, &a, err, NULL), -1);
    ck_assert(strstr(err, "without an answer") != NULL);
}
END_TEST

START_TEST(downloads_and_errors)
{
    struct http_answer a;
    char err[256], path[] = "/tmp/drover-http-XXXXXX", back[64] = "";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(exchange("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "5\r\nsnap-\r\n4\r\nshot\r\n0\r\n\r\n", NULL, fd, &a, err, NULL),
                     0);
    ck_assert_uint_eq(a.len, 0);
    ck_assert_int_eq(pread(fd, back, sizeof(back) - 1, 0), 9);
    ck_assert_str_eq(back, "snap-shot");
    http_answer_free(&a);
    /* An error's body is its message: memory, not the file. */
    ck_assert_int_eq(ftruncate(fd, 0), 0);
    ck_assert_int_eq(exchange("HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot there",
                              NULL, fd, &a, err, NULL), 0);
    ck_assert_int_eq(a.status, 404);
    ck_assert_str_eq(a.body, "not there");
    ck_assert_int_eq(pread(fd, back, sizeof(back), 0), 0);
    http_answer_free(&a);
    close(fd);
    unlink(path);
}
END_TEST

START_TEST(pinned_ca_is_enforced)
{
    struct unit_pki other;
    struct http_answer a;
    char err[256];
    unit_pki_init(&other);
    ck_assert_int_eq(exchange("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", other.pki.ca_pem,
                              -1, &a, err, NULL), -1);
    ck_assert_msg(strstr(err, "not trusted") != NULL, "%s", err);
    unit_pki_free(&other);
    struct http_client c;
    ck_assert_int_eq(http_client_init(&c, "http://127.0.0.1:1", NULL, false, err, 256), -1);
    ck_assert(strstr(err, "https only") != NULL);
    ck_assert_int_eq(http_client_init(&c, "https://user@x:1", NULL, false, err, 256), -1);
}
END_TEST

Suite *suite_cli_http(void)
{
    Suite *s = suite_create("cli_http");
    TCase *t = tcase_create("http");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, framings);
    tcase_add_test(t, broken_answers);
    tcase_add_test(t, downloads_and_errors);
    tcase_add_test(t, pinned_ca_is_enforced);
    suite_add_tcase(s, t);
    return s;
}
