/*
 * log: leveled one-line records to stderr. See log.h for the contract.
 *
 * Each record is formatted into a stack buffer and handed to one write(2):
 * stderr is unbuffered at our level, so lines from several threads (the loop
 * thread and the datastore pool) never interleave, and no lock is needed. The
 * only shared state is the level and the program name, both atomics.
 */
#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096       /* whole record, newline included */
#define LOG_PROG_MAX 64         /* keeps the header far below LOG_LINE_MAX */

static _Atomic int log_level = LOG_INFO;
static const char *_Atomic log_prog = "drover";

static const char *const log_names[] = { "error", "warn", "info", "debug" };
/* Padded to 5 so messages line up whatever the level. */
static const char *const log_tags[] = { "ERROR", "WARN ", "INFO ", "DEBUG" };

/* Out-of-range levels are a caller bug; clamping keeps the tables in bounds. */
static int log_clamp(int level)
{
    if (level < LOG_ERROR)
        return LOG_ERROR;
    if (level > LOG_DEBUG)
        return LOG_DEBUG;
    return level;
}

/*
 * Sets the program name shown in every record and the level. prog is kept
 * by pointer; NULL keeps "drover". Out-of-range levels are clamped.
 */
void log_init(const char *prog, enum log_level level)
{
    if (prog)
        atomic_store(&log_prog, prog);
    log_set_level(level);
}

/* Records above level are dropped from now on, in every thread. */
void log_set_level(enum log_level level)
{
    atomic_store(&log_level, log_clamp((int)level));
}

enum log_level log_get_level(void)
{
    return (enum log_level)atomic_load(&log_level);
}

/*
 * Maps "error", "warn", "info" or "debug" (any case) to *out. Returns 0, or
 * -1 leaving *out untouched for NULL or anything else.
 */
int log_parse_level(const char *s, enum log_level *out)
{
    if (!s)
        return -1;
    for (int i = LOG_ERROR; i <= LOG_DEBUG; i++) {
        if (strcasecmp(s, log_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

/*
 * A cfg_opt check callback for the log-level setting: NULL if s names a
 * level, otherwise the reason.
 */
const char *log_level_check(const char *s)
{
    enum log_level l;
    return log_parse_level(s, &l) == 0 ? NULL
                                       : "must be error, warn, info or debug";
}

/* "2026-11-24T18:53:13.123Z INFO  prog: " into buf; returns its length. */
static size_t log_header(char *buf, size_t cap, int level)
{
    struct timespec ts;
    struct tm tm;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || !gmtime_r(&ts.tv_sec, &tm)) {
        ts.tv_nsec = 0;
        tm = (struct tm){ .tm_year = 70, .tm_mday = 1 };
    }
    int n = snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %.*s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L,
                     log_tags[level], LOG_PROG_MAX, atomic_load(&log_prog));
    if (n < 0)
        return 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

/*
 * A record must stay one line: a peer's error text with a newline in it
 * could otherwise forge records that look like ours.
 */
static void log_scrub(char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            s[i] = '?';
    }
}

static void log_write(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(STDERR_FILENO, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;     /* nowhere left to report a failing stderr */
        buf += w;
        len -= (size_t)w;
    }
}

/*
 * Writes one record if level is enabled: UTC time to the millisecond, the
 * level, the program name and the formatted message. A message longer than
 * the 4 KiB record is cut and ends in "..."; control characters in it become
 * '?'. Never fails visibly and leaves errno as it found it.
 */
void log_msg(enum log_level level, const char *fmt, ...)
{
    int saved = errno;
    int lv = log_clamp((int)level);

    if (lv > atomic_load(&log_level)) {
        errno = saved;
        return;
    }
    char buf[LOG_LINE_MAX];
    size_t n = log_header(buf, sizeof buf, lv);
    size_t room = sizeof buf - 1 - n;          /* body bytes, before '\n' */
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(buf + n, room + 1, fmt, ap);
    va_end(ap);
    size_t body = r < 0 ? 0 : (size_t)r;
    if (body > room) {
        body = room;
        buf[n + room - 3] = '.';
        buf[n + room - 2] = '.';
        buf[n + room - 1] = '.';
    }
    log_scrub(buf + n, body);
    buf[n + body] = '\n';
    log_write(buf, n + body + 1);
    errno = saved;
}
