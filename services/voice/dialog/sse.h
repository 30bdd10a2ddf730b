/*
 * An incremental parser for server-sent events (the text/event-stream format of the
 * WHATWG HTML standard), as the LLM APIs stream their replies. Bytes go in with any
 * chunking; each complete event comes out through a callback with its name ("message"
 * when the stream names none) and its data lines joined by '\n'. Comments, id and retry
 * fields are ignored; lines may end in CRLF, LF or CR. This is a pure function over
 * bytes (no I/O, no curl), so it can be fuzzed alone. Every buffer has a ceiling.
 */
#ifndef VAP_VOICE_SSE_H
#define VAP_VOICE_SSE_H

#include <stddef.h>

struct sse_parser;

/*
 * Called once per dispatched event. event and data are NUL-terminated and valid only
 * during the call; data_len excludes the terminating NUL (a NUL byte in the stream is kept,
 * so trust data_len, not strlen). Return 0 to go on; a nonzero value stops the parser and
 * is returned by sse_feed.
 */
typedef int (*sse_event_fn)(void *user, const char *event, const char *data, size_t data_len);

/*
 * Creates a parser. max_line caps one line (bytes, without its end), max_data one
 * event's joined data. Returns NULL when out of memory or a limit is 0. The caller owns
 * the parser and frees it with sse_parser_free.
 */
struct sse_parser *sse_parser_new(size_t max_line, size_t max_data, sse_event_fn fn,
                                  void *user);
void sse_parser_free(struct sse_parser *p);

/*
 * Feeds bytes. Returns 0, VAP_ETOOBIG when a line or an event's data passes its
 * ceiling, VAP_ENOMEM, or the callback's nonzero value. After a nonzero return the
 * parser is stuck: every later call returns the same value.
 */
int sse_feed(struct sse_parser *p, const char *buf, size_t len);

/*
 * Whether the stream so far ended exactly on an event boundary (nothing buffered). Per
 * the standard an unterminated event at the end of a stream is discarded, not
 * dispatched; callers use this to tell a clean end from a cut one.
 */
int sse_idle(const struct sse_parser *p);

/* Number of events dispatched so far. */
size_t sse_events(const struct sse_parser *p);

#endif
