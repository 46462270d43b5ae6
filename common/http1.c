/*
 * http1: HTTP/1.1 head parsing, chunked decoding and target helpers. See
 * http1.h.
 *
 * The head parsers walk a cursor over the caller's bytes and stop at the
 * first byte that settles the question: a prefix of a valid head is always
 * -2, and anything a valid head cannot continue with is -1 at once, so a
 * peer cannot make the caller buffer a head that is already known bad.
 * Nothing assumes buf is NUL-terminated. RFC 9112 is the reference; where it
 * allows leniency we take only what real clients need (a lone LF line end,
 * empty lines before a request line) and refuse the rest (obs-fold,
 * whitespace before the colon), because a proxy that reads a head
 * differently from the kube-apiserver behind it is a smuggling hazard.
 */
#include "common/http1.h"

#include <string.h>

#define CHUNK_LINE_MAX 4096
#define CHUNK_SIZE_MAX ((uint64_t)1 << 62)

/* ---- head parsing ---- */

struct cur {
    const char *buf;
    size_t len;
    size_t pos;
    const char *err;
};

static int fail(struct cur *c, const char *why)
{
    c->err = why;
    return -1;
}

/* RFC 9110 tchar. */
static bool is_tchar(unsigned char ch)
{
    unsigned char lc = ch | 0x20;
    if ((ch >= '0' && ch <= '9') || (lc >= 'a' && lc <= 'z'))
        return true;
    return ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* Field values and reason phrases: VCHAR, SP, HTAB and obs-text. */
static bool is_text(unsigned char ch)
{
    return ch == '\t' || (ch >= 0x20 && ch != 0x7f);
}

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* CRLF or a lone LF. */
static int eat_eol(struct cur *c)
{
    if (c->pos == c->len)
        return -2;
    if (c->buf[c->pos] == '\n') {
        c->pos++;
        return 0;
    }
    if (c->buf[c->pos] != '\r')
        return fail(c, "expected end of line");
    if (c->len - c->pos < 2)
        return -2;
    if (c->buf[c->pos + 1] != '\n')
        return fail(c, "bare CR");
    c->pos += 2;
    return 0;
}

/* A non-empty token ended by delim (consumed). */
static int eat_token(struct cur *c, char delim, const char **tok, size_t *tok_len,
                     const char *why)
{
    size_t start = c->pos;
    while (c->pos < c->len && is_tchar((unsigned char)c->buf[c->pos]))
        c->pos++;
    if (c->pos == c->len)
        return -2;
    if (c->pos == start || c->buf[c->pos] != delim)
        return fail(c, why);
    *tok = c->buf + start;
    *tok_len = c->pos - start;
    c->pos++;
    return 0;
}

/* A non-empty run of visible ASCII ended by one SP (consumed). */
static int eat_target(struct cur *c, const char **t, size_t *t_len)
{
    size_t start = c->pos;
    while (c->pos < c->len && c->buf[c->pos] >= 0x21 && c->buf[c->pos] <= 0x7e)
        c->pos++;
    if (c->pos == c->len)
        return -2;
    if (c->pos == start || c->buf[c->pos] != ' ')
        return fail(c, "bad request-target");
    *t = c->buf + start;
    *t_len = c->pos - start;
    c->pos++;
    return 0;
}

static int eat_version(struct cur *c, int *minor)
{
    static const char prefix[] = "HTTP/1.";

    for (size_t i = 0; i < sizeof(prefix) - 1; i++, c->pos++) {
        if (c->pos == c->len)
            return -2;
        if (c->buf[c->pos] != prefix[i])
            return fail(c, "bad HTTP version");
    }
    if (c->pos == c->len)
        return -2;
    if (c->buf[c->pos] != '0' && c->buf[c->pos] != '1')
        return fail(c, "bad HTTP version");
    *minor = c->buf[c->pos++] - '0';
    return 0;
}

/* Runs of text up to the line end; the span is returned without trailing
 * blanks and the line end is consumed. */
static int eat_text_line(struct cur *c, const char **s, size_t *s_len,
                         const char *why)
{
    size_t start = c->pos, end = c->pos;
    for (; c->pos < c->len; c->pos++) {
        unsigned char ch = (unsigned char)c->buf[c->pos];
        if (ch == '\r' || ch == '\n')
            break;
        if (!is_text(ch))
            return fail(c, why);
        if (!is_blank((char)ch))
            end = c->pos + 1;
    }
    if (c->pos == c->len)
        return -2;
    *s = c->buf + start;
    *s_len = end - start;
    return eat_eol(c);
}

static int eat_header(struct cur *c, struct http_header *h)
{
    int rc = eat_token(c, ':', &h->name, &h->name_len, "bad header name");
    if (rc)
        return rc;
    while (c->pos < c->len && is_blank(c->buf[c->pos]))
        c->pos++;
    return eat_text_line(c, &h->value, &h->value_len, "bad header value");
}

/* Header lines up to and including the blank line. *num is the capacity on
 * entry and the count on success; it is left alone otherwise, so a caller
 * retrying after -2 need not reset it. */
static int eat_headers(struct cur *c, struct http_header *h, size_t *num)
{
    size_t n = 0;
    for (;;) {
        if (c->pos == c->len)
            return -2;
        char ch = c->buf[c->pos];
        if (ch == '\r' || ch == '\n')
            break;
        /* A line starting with a blank is obs-fold (or, first of all,
         * whitespace after the start line): both are refused. */
        if (is_blank(ch))
            return fail(c, "obs-fold");
        if (n == *num)
            return fail(c, "too many headers");
        int rc = eat_header(c, &h[n]);
        if (rc)
            return rc;
        n++;
    }
    int rc = eat_eol(c);
    if (rc)
        return rc;
    *num = n;
    return 0;
}

/* RFC 9112 2.2: a server SHOULD ignore empty lines before a request line
 * (some clients send CRLF after a POST body). */
static int skip_empty_lines(struct cur *c)
{
    while (c->pos < c->len) {
        char ch = c->buf[c->pos];
        if (ch != '\r' && ch != '\n')
            return 0;
        int rc = eat_eol(c);
        if (rc)
            return rc;
    }
    return -2;
}

ssize_t http1_parse_request(const char *buf, size_t len, struct http_request *req)
{
    struct cur c = { buf, len, 0, NULL };
    int rc;

    req->error = NULL;
    if ((rc = skip_empty_lines(&c)) ||
        (rc = eat_token(&c, ' ', &req->method, &req->method_len, "bad method")) ||
        (rc = eat_target(&c, &req->target, &req->target_len)) ||
        (rc = eat_version(&c, &req->minor_version)) ||
        (rc = eat_eol(&c)) ||
        (rc = eat_headers(&c, req->headers, &req->num_headers))) {
        req->error = c.err;
        return rc;
    }
    return (ssize_t)c.pos;
}

/* "SP 3DIGIT" then an optional "SP reason" and the line end. Some servers
 * omit the reason's SP when the reason is empty; that is accepted. */
static int eat_status(struct cur *c, struct http_response *res)
{
    if (c->pos == c->len)
        return -2;
    if (c->buf[c->pos++] != ' ')
        return fail(c, "bad status line");
    res->status = 0;
    for (int i = 0; i < 3; i++, c->pos++) {
        if (c->pos == c->len)
            return -2;
        char d = c->buf[c->pos];
        if (d < '0' || d > '9' || (i == 0 && (d < '1' || d > '5')))
            return fail(c, "bad status code");
        res->status = res->status * 10 + (d - '0');
    }
    if (c->pos == c->len)
        return -2;
    res->reason = c->buf + c->pos;
    res->reason_len = 0;
    if (c->buf[c->pos] == ' ') {
        c->pos++;
        return eat_text_line(c, &res->reason, &res->reason_len, "bad reason phrase");
    }
    return eat_eol(c);
}

ssize_t http1_parse_response(const char *buf, size_t len, struct http_response *res)
{
    struct cur c = { buf, len, 0, NULL };
    int rc;

    res->error = NULL;
    if ((rc = eat_version(&c, &res->minor_version)) ||
        (rc = eat_status(&c, res)) ||
        (rc = eat_headers(&c, res->headers, &res->num_headers))) {
        res->error = c.err;
        return rc;
    }
    return (ssize_t)c.pos;
}

/* ---- header helpers ---- */

static unsigned char ascii_lower(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') ? ch | 0x20 : ch;
}

/* Locale-free, since header names are ASCII whatever the locale says. */
static bool ascii_ieq(const char *a, size_t a_len, const char *b, size_t b_len)
{
    if (a_len != b_len)
        return false;
    for (size_t i = 0; i < a_len; i++)
        if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i]))
            return false;
    return true;
}

const struct http_header *http1_find(const struct http_header *h, size_t n,
                                     const char *name)
{
    size_t name_len = strlen(name);
    for (size_t i = 0; i < n; i++)
        if (ascii_ieq(h[i].name, h[i].name_len, name, name_len))
            return &h[i];
    return NULL;
}

size_t http1_count(const struct http_header *h, size_t n, const char *name)
{
    size_t name_len = strlen(name), count = 0;
    for (size_t i = 0; i < n; i++)
        if (ascii_ieq(h[i].name, h[i].name_len, name, name_len))
            count++;
    return count;
}

bool http1_has_token(const char *value, size_t len, const char *token)
{
    size_t token_len = strlen(token), i = 0;
    if (token_len == 0)
        return false;
    while (i < len) {
        size_t s = i;
        while (i < len && value[i] != ',')
            i++;
        size_t e = i++;
        while (s < e && is_blank(value[s]))
            s++;
        while (e > s && is_blank(value[e - 1]))
            e--;
        if (ascii_ieq(value + s, e - s, token, token_len))
            return true;
    }
    return false;
}

int http1_parse_content_length(const char *value, size_t len, uint64_t *out)
{
    const uint64_t max = INT64_MAX;
    uint64_t v = 0;

    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (value[i] < '0' || value[i] > '9')
            return -1;
        unsigned d = (unsigned)(value[i] - '0');
        if (v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* ---- chunked transfer coding ---- */

enum {
    CH_SIZE = 0,    /* hex digits of chunk-size */
    CH_SIZE_WS,     /* blanks after the size, before ';' or the line end */
    CH_EXT,         /* chunk extensions, ignored */
    CH_SIZE_LF,     /* CR seen on the size line */
    CH_DATA,
    CH_DATA_CR,     /* chunk data done, CRLF due */
    CH_DATA_LF,
    CH_TRAILER,     /* trailer lines, ignored; line_len 0 = at line start */
    CH_TRAILER_LF,
    CH_END_LF,      /* CR of the final blank line seen */
    CH_DONE,
    CH_ERROR,
};

static int ch_fail(struct http1_chunked *st, const char *why)
{
    st->error = why;
    return -1;
}

static int ch_count(struct http1_chunked *st)
{
    if (st->line_len >= CHUNK_LINE_MAX)
        return ch_fail(st, "chunk line too long");
    st->line_len++;
    return 0;
}

static int ch_hex(uint8_t ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch |= 0x20;
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

static int ch_size_line_end(struct http1_chunked *st)
{
    st->line_len = 0;
    st->state = st->remaining ? CH_DATA : CH_TRAILER;
    return 0;
}

static int ch_size_step(struct http1_chunked *st, uint8_t ch)
{
    int d = ch_hex(ch);
    if (st->state == CH_SIZE && d >= 0) {
        if (st->remaining > (CHUNK_SIZE_MAX >> 4))
            return ch_fail(st, "chunk size too big");
        st->remaining = st->remaining << 4 | (uint64_t)d;
        if (st->remaining > CHUNK_SIZE_MAX)
            return ch_fail(st, "chunk size too big");
        return ch_count(st);
    }
    if (st->state == CH_SIZE && st->line_len == 0)
        return ch_fail(st, "missing chunk size");
    if (ch == '\r') {
        st->state = CH_SIZE_LF;
        return 0;
    }
    if (ch == '\n')
        return ch_size_line_end(st);
    if (st->state != CH_EXT) {
        if (is_blank((char)ch))
            st->state = CH_SIZE_WS;
        else if (ch == ';')
            st->state = CH_EXT;
        else
            return ch_fail(st, "bad chunk size");
        return ch_count(st);
    }
    if (!is_text(ch))
        return ch_fail(st, "bad chunk extension");
    return ch_count(st);
}

static int ch_trailer_step(struct http1_chunked *st, uint8_t ch)
{
    if (ch == '\r') {
        st->state = st->line_len ? CH_TRAILER_LF : CH_END_LF;
        return 0;
    }
    if (ch == '\n') {
        if (st->line_len == 0) {
            st->state = CH_DONE;
            st->done = true;
        }
        st->line_len = 0;
        return 0;
    }
    if (!is_text(ch))
        return ch_fail(st, "bad trailer");
    return ch_count(st);
}

/* Every state but CH_DATA, one byte at a time. */
static int ch_step(struct http1_chunked *st, uint8_t ch)
{
    switch (st->state) {
    case CH_SIZE:
    case CH_SIZE_WS:
    case CH_EXT:
        return ch_size_step(st, ch);
    case CH_SIZE_LF:
        return ch == '\n' ? ch_size_line_end(st) : ch_fail(st, "bare CR");
    case CH_DATA_CR:
    case CH_DATA_LF:
        if (ch == '\r' && st->state == CH_DATA_CR) {
            st->state = CH_DATA_LF;
            return 0;
        }
        if (ch != '\n')    /* a lone LF is accepted */
            return ch_fail(st, "missing CRLF after chunk data");
        st->state = CH_SIZE;
        return 0;
    case CH_TRAILER:
        return ch_trailer_step(st, ch);
    case CH_TRAILER_LF:
    case CH_END_LF:
        if (ch != '\n')
            return ch_fail(st, "bare CR");
        st->done = st->state == CH_END_LF;
        st->state = st->done ? CH_DONE : CH_TRAILER;
        st->line_len = 0;
        return 0;
    default:
        return ch_fail(st, "internal state");
    }
}

void http1_chunked_init(struct http1_chunked *st)
{
    memset(st, 0, sizeof(*st));
    st->state = CH_SIZE;
}

ssize_t http1_chunked_feed(struct http1_chunked *st, const uint8_t *buf, size_t len,
                           void (*on_data)(void *ud, const uint8_t *p, size_t n),
                           void *ud)
{
    size_t i = 0;

    if (st->state == CH_ERROR)
        return -1;
    if (st->done)
        return 0;
    while (i < len && !st->done) {
        if (st->state == CH_DATA) {
            size_t n = len - i;
            if (n > st->remaining)
                n = (size_t)st->remaining;
            if (on_data)
                on_data(ud, buf + i, n);
            i += n;
            st->remaining -= n;
            if (st->remaining == 0)
                st->state = CH_DATA_CR;
            continue;
        }
        if (ch_step(st, buf[i++]) < 0) {
            st->state = CH_ERROR;
            return -1;
        }
    }
    return (ssize_t)i;
}

/* ---- request-target helpers ---- */

/*
 * Without a '?', *query points at the end of target with length 0 (never
 * NULL), so it can be passed to http1_query_param as is.
 */
int http1_split_target(const char *target, size_t len, const char **path,
                       size_t *path_len, const char **query, size_t *query_len)
{
    size_t q = len;

    if (len == 0 || target[0] != '/')
        return -1;
    for (size_t i = 0; i < len; i++) {
        char ch = target[i];
        if (ch < 0x21 || ch > 0x7e || ch == '#')
            return -1;
        if (ch == '?' && q == len)
            q = i;
    }
    *path = target;
    *path_len = q;
    *query = target + (q < len ? q + 1 : len);
    *query_len = q < len ? len - q - 1 : 0;
    return 0;
}

/* The byte at s[*i] decoded (a %XX escape, '+' as space when plus), or -1
 * for a malformed escape. *escaped says whether it came from %XX. */
static int next_byte(const char *s, size_t len, size_t *i, bool plus, bool *escaped)
{
    char ch = s[*i];
    *escaped = false;
    if (ch != '%') {
        (*i)++;
        return plus && ch == '+' ? ' ' : (unsigned char)ch;
    }
    if (len - *i < 3)
        return -1;
    int hi = ch_hex((uint8_t)s[*i + 1]), lo = ch_hex((uint8_t)s[*i + 2]);
    if (hi < 0 || lo < 0)
        return -1;
    *i += 3;
    *escaped = true;
    return hi << 4 | lo;
}

static ssize_t decode_into(const char *src, size_t len, char *dst, size_t cap,
                           bool plus, bool is_path)
{
    size_t i = 0, n = 0;
    bool escaped;

    if (cap == 0)
        return -1;
    while (i < len) {
        int ch = next_byte(src, len, &i, plus, &escaped);
        if (ch <= 0 || (is_path && escaped && ch == '/'))
            return -1;
        if (n == cap - 1)
            return -1;
        dst[n++] = (char)ch;
    }
    dst[n] = '\0';
    return (ssize_t)n;
}

ssize_t http1_pct_decode(const char *src, size_t len, char *dst, size_t cap,
                         bool is_path)
{
    return decode_into(src, len, dst, cap, false, is_path);
}

/* Compares a raw query key with name as decoded, so "%77atch" is "watch";
 * a malformed key matches nothing. */
static bool key_matches(const char *k, size_t k_len, const char *name)
{
    size_t i = 0, j = 0;
    bool escaped;

    while (i < k_len) {
        int ch = next_byte(k, k_len, &i, true, &escaped);
        if (ch <= 0 || name[j] == '\0' || (unsigned char)name[j] != ch)
            return false;
        j++;
    }
    return name[j] == '\0';
}

ssize_t http1_query_param(const char *query, size_t len, const char *name,
                          char *dst, size_t cap)
{
    size_t i = 0;
    while (i < len) {
        size_t s = i;
        while (i < len && query[i] != '&')
            i++;
        size_t e = i++;
        const char *eq = memchr(query + s, '=', e - s);
        size_t k_end = eq ? (size_t)(eq - query) : e;
        if (k_end == s || !key_matches(query + s, k_end - s, name))
            continue;
        size_t v = eq ? k_end + 1 : e;
        ssize_t n = decode_into(query + v, e - v, dst, cap, true, false);
        return n < 0 ? -2 : n;
    }
    return -1;
}

const char *http1_reason(int status)
{
    switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default:  return "Unknown";
    }
}
