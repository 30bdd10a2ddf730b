/*
 * Sample-rate conversion between the client's rate and the pipeline's 16 kHz, a thin
 * wrapper over speexdsp's resampler. It is stateful (the filter history and fractional
 * phase carry over between calls), so one resampler serves one direction of one stream.
 * For the integer ratios used here (48k <-> 16k) a call turns n input samples into
 * exactly n*3 or n/3 output samples once the stream is running; the filter's delay
 * (about 2.5 ms at quality 5) appears as leading zeros at the start, never as lost audio.
 */
#include <stdlib.h>

#include <speex/speex_resampler.h>

#include "audio.h"
#include "err.h"

/*
 * Quality 5 (of 0-10): stopband well below the 16-bit noise floor for speech, and the
 * measured cost is a few microseconds per 20 ms frame. Quality 3 (speex's "VoIP")
 * saves little here.
 */
#define RESAMPLER_QUALITY 5

struct audio_resampler {
    SpeexResamplerState *st;
};

static bool rate_ok(int rate)
{
    return rate >= 8000 && rate <= 192000;
}

int audio_resampler_new(int in_rate, int out_rate, struct audio_resampler **out)
{
    struct audio_resampler *r;
    int err = 0;

    *out = NULL;
    if (!rate_ok(in_rate) || !rate_ok(out_rate))
        return VAP_EINVAL;
    r = calloc(1, sizeof(*r));
    if (!r)
        return VAP_ENOMEM;
    r->st = speex_resampler_init(1, (spx_uint32_t)in_rate, (spx_uint32_t)out_rate,
                                 RESAMPLER_QUALITY, &err);
    if (!r->st) {
        free(r);
        return err == RESAMPLER_ERR_ALLOC_FAILED ? VAP_ENOMEM : VAP_EINVAL;
    }
    *out = r;
    return 0;
}

void audio_resampler_free(struct audio_resampler *r)
{
    if (!r)
        return;
    speex_resampler_destroy(r->st);
    free(r);
}

int audio_resample(struct audio_resampler *r, const int16_t *in, size_t n, int16_t *out, size_t max)
{
    size_t done = 0, made = 0;

    /* speex takes 32-bit lengths; loop so any size_t works and all input is consumed. */
    while (done < n && made < max) {
        spx_uint32_t in_len = (spx_uint32_t)(n - done > 0x10000 ? 0x10000 : n - done);
        spx_uint32_t out_len = (spx_uint32_t)(max - made > 0x10000 ? 0x10000 : max - made);
        int rv = speex_resampler_process_int(r->st, 0, in + done, &in_len, out + made, &out_len);
        if (rv != RESAMPLER_ERR_SUCCESS)
            return VAP_EINTERNAL;
        if (in_len == 0 && out_len == 0)
            break;
        done += in_len;
        made += out_len;
    }
    return (int)made;
}
