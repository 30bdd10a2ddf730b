/*
 * What the fuzz targets share: reading an input piece by piece (lines, bytes) and
 * checking properties. A failed FUZZ_CHECK is a finding like a sanitizer report: its
 * message goes to the sanitizers' report stream (kept when ./portal fuzz discards the
 * product's own log lines with -close_fd_mask=2) and the process aborts, so libFuzzer
 * saves the input.
 */
#ifndef VAP_FUZZ_H
#define VAP_FUZZ_H

#include <sanitizer/common_interface_defs.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The test keys tokens are signed with (seeds included), and the clock of fuzz_jwt. */
#define FUZZ_KEY "fuzz-key-not-a-secret-0123456789"
#define FUZZ_KEY_PREVIOUS "fuzz-previous-key-not-a-secret-01"
#define FUZZ_NOW 1800000000

#define FUZZ_CHECK(cond, what)                                                                     \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fuzz_fail(__FILE__, __LINE__, what);                                                   \
    } while (0)

static inline void fuzz_fail(const char *file, int line, const char *what)
{
    char msg[512];
    snprintf(msg, sizeof(msg), "fuzz check failed at %s:%d: %s", file, line, what);
    __sanitizer_report_error_summary(msg);
    abort();
}

/* An input being consumed from the front. */
struct fuzz_in {
    const uint8_t *p;
    size_t n;
};

/* Takes one byte (0 when empty). */
static inline uint8_t fuzz_byte(struct fuzz_in *in)
{
    uint8_t b;
    if (in->n == 0)
        return 0;
    b = in->p[0];
    in->p++;
    in->n--;
    return b;
}

/*
 * Takes the next line (up to '\n', which is consumed; a '\r' before it is dropped).
 * Returns 0 when the input is exhausted, else 1 with *line / *len set (not NUL-terminated).
 */
static inline int fuzz_line(struct fuzz_in *in, const uint8_t **line, size_t *len)
{
    const uint8_t *nl;
    size_t n;
    if (in->n == 0)
        return 0;
    nl = memchr(in->p, '\n', in->n);
    n = nl ? (size_t)(nl - in->p) : in->n;
    *line = in->p;
    *len = n;
    in->p += nl ? n + 1 : n;
    in->n -= nl ? n + 1 : n;
    if (*len > 0 && (*line)[*len - 1] == '\r')
        (*len)--;
    return 1;
}

/* A NUL-terminated heap copy of len bytes (the caller frees it). */
static inline char *fuzz_strndup(const void *data, size_t len)
{
    char *s = malloc(len + 1);
    if (!s)
        abort();
    memcpy(s, data, len);
    s[len] = '\0';
    return s;
}

#endif
