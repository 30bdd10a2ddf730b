/* Monotonic deadlines and UTC timestamps (see clock.h). */
#include "clock.h"

#include <stdio.h>
#include <time.h>

#include "err.h"

int64_t vap_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t vap_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t vap_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t vap_ms_left(int64_t deadline_ms)
{
    int64_t left = deadline_ms - vap_now_ms();
    return left > 0 ? left : 0;
}

int vap_format_iso8601(int64_t epoch_ms, int with_ms, char *buf, size_t size)
{
    time_t secs = (time_t)(epoch_ms / 1000);
    struct tm tm;
    int n;
    if (!gmtime_r(&secs, &tm))
        return VAP_EINVAL;
    if (with_ms)
        n = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(epoch_ms % 1000));
    else
        n = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (n < 0 || (size_t)n >= size)
        return VAP_ETOOBIG;
    return 0;
}
