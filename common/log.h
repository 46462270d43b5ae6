/*
 * log: leveled, one-line log records to stderr.
 *
 * "2026-11-24T18:53:13.123Z INFO  drover-server: tunnel up cluster=c-4f2a9"
 * Records are written with a single write(2) so lines from several threads
 * never interleave. Secrets (tokens, passwords) are never passed here.
 */
#ifndef DROVER_LOG_H
#define DROVER_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* prog is kept by pointer (use a string literal or argv[0]'s basename). */
void log_init(const char *prog, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* "error", "warn", "info", "debug" (case-insensitive). 0 or -1. */
int log_parse_level(const char *s, enum log_level *out);
/* For a cfg_opt's check field: NULL if s names a level, else the reason. */
const char *log_level_check(const char *s);

void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_get_level() >= LOG_DEBUG) \
                            log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
