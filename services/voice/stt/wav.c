/*
 * A minimal RIFF/WAVE reader for 16-bit mono PCM (what flite writes and what the
 * recogniser wants), for the evaluation tool and the tests. Not a general audio
 * loader: other formats are refused rather than converted.
 */
#include "stt_internal.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"

static uint32_t le32(const unsigned char *p)
{
    return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t le16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

int stt_wav_read(const char *path, int16_t **pcm, size_t *n, int *rate)
{
    FILE *f = fopen(path, "rb");
    unsigned char hdr[12], ch[8], fmt[16];
    int have_fmt = 0, rv = VAP_EINVAL;
    if (!f)
        return VAP_ENOTFOUND;
    if (fread(hdr, 1, 12, f) != 12 || memcmp(hdr, "RIFF", 4) != 0 || memcmp(hdr + 8, "WAVE", 4))
        goto out;
    while (fread(ch, 1, 8, f) == 8) {
        uint32_t size = le32(ch + 4);
        if (memcmp(ch, "fmt ", 4) == 0 && size >= 16) {
            if (fread(fmt, 1, 16, f) != 16 || fseek(f, (long)(size - 16 + (size & 1)), SEEK_CUR))
                goto out;
            if (le16(fmt) != 1 || le16(fmt + 2) != 1 || le16(fmt + 14) != 16)
                goto out; /* not PCM, not mono or not 16-bit */
            *rate = (int)le32(fmt + 4);
            have_fmt = 1;
        } else if (memcmp(ch, "data", 4) == 0 && have_fmt) {
            size_t count = size / 2;
            unsigned char *raw = malloc(size ? size : 1);
            int16_t *samples = malloc((count ? count : 1) * sizeof(*samples));
            if (!raw || !samples) {
                free(raw);
                free(samples);
                rv = VAP_ENOMEM;
                goto out;
            }
            count = fread(raw, 1, size, f) / 2; /* a truncated file keeps what it has */
            for (size_t i = 0; i < count; i++)
                samples[i] = (int16_t)le16(raw + 2 * i);
            free(raw);
            *pcm = samples;
            *n = count;
            rv = 0;
            goto out;
        } else if (fseek(f, (long)(size + (size & 1)), SEEK_CUR) != 0) {
            goto out;
        }
    }
out:
    fclose(f);
    return rv;
}
