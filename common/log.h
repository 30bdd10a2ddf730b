/*
 * JSON-lines logging to stderr: one object per line with ts, level, service,
 * request_id (when known) and msg. The message is printf-formatted text written as
 * key=value pairs after a short phrase ("otp created id=7 max_uses=5").
 * Callers must never pass passwords, one-time codes, tokens or raw audio: the logger
 * cannot tell them apart from other text. Thread-safe; each line is one write(2).
 */
#ifndef VAP_LOG_H
#define VAP_LOG_H

enum vap_log_level {
    VAP_LOG_DEBUG = 0,
    VAP_LOG_INFO = 1,
    VAP_LOG_WARN = 2,
    VAP_LOG_ERROR = 3
};

/* Sets the service name written on every line and the minimum level. Call once at start. */
void vap_log_init(const char *service, enum vap_log_level min_level);

/* Parses "debug" | "info" | "warn" | "error"; returns 0 or VAP_EINVAL. */
int vap_log_parse_level(const char *text, enum vap_log_level *out);

/* Whether a line at this level would be written (to skip building costly messages). */
int vap_log_enabled(enum vap_log_level level);

/* Writes one line. request_id may be NULL or "". */
void vap_log(enum vap_log_level level, const char *request_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define vap_debug(rid, ...) vap_log(VAP_LOG_DEBUG, rid, __VA_ARGS__)
#define vap_info(rid, ...) vap_log(VAP_LOG_INFO, rid, __VA_ARGS__)
#define vap_warn(rid, ...) vap_log(VAP_LOG_WARN, rid, __VA_ARGS__)
#define vap_error(rid, ...) vap_log(VAP_LOG_ERROR, rid, __VA_ARGS__)

#endif
