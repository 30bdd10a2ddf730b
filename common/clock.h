/*
 * Time for deadlines and timestamps. Deadlines are absolute monotonic milliseconds
 * (immune to wall-clock jumps); timestamps shown to users are wall-clock UTC.
 */
#ifndef VAP_CLOCK_H
#define VAP_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic milliseconds since an arbitrary origin. */
int64_t vap_now_ms(void);

/* Monotonic microseconds since the same origin (for latency measurements). */
int64_t vap_now_us(void);

/* Wall-clock milliseconds since the Unix epoch. */
int64_t vap_wall_ms(void);

/* Milliseconds left until deadline (monotonic ms), never negative. */
int64_t vap_ms_left(int64_t deadline_ms);

/*
 * Writes wall-clock epoch milliseconds as ISO 8601 UTC ("2026-11-25T10:00:00.123Z" when
 * with_ms, else without the fraction) into buf. Returns 0, or VAP_ETOOBIG if buf is small.
 */
int vap_format_iso8601(int64_t epoch_ms, int with_ms, char *buf, size_t size);

#endif
