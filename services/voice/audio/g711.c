/*
 * Telephone audio: G.711 μ-law and the 8 kHz <-> 16 kHz conversion between a phone
 * line and the pipeline. Both are exact integer arithmetic, so every platform produces
 * the same bytes and the unit tests can compare against reference values.
 *
 * μ-law follows ITU-T G.711 as its reference software does it (G.191 ulaw_compress and
 * ulaw_expand): the 14-bit magnitude is biased by 33, the segment is the position of
 * its top bit, and the byte is stored inverted.
 *
 * The rate change is a 47-tap half-band FIR (Kaiser-windowed sinc, beta 8, Q15): flat
 * to within 0.15 dB up to 3.4 kHz (the whole telephone band), -21 dB at 4.4 kHz and
 * below -60 dB from 4.8 kHz. In a half-band filter every even tap but the centre is
 * zero, so doubling the rate keeps each input sample exactly and computes only the
 * samples between; halving it filters then keeps every other sample. Each direction
 * delays by HB_TAPS_HALF input samples (1.5 ms at 8 kHz) and keeps that much history
 * between calls, so a stream converted in frames equals the stream converted at once.
 */
#include <string.h>

#include "audio.h"
#include "err.h"

/* Q15 odd taps c[k] at offsets ±(2k+1); they sum to 16384 (0.5). */
static const int32_t HB_TAPS[] = {20726, -6558, 3541, -2154, 1345, -828,
                                  491,   -274,  140,  -63,   24,   -6};
#define HB_TAPS_HALF ((int)(sizeof(HB_TAPS) / sizeof(HB_TAPS[0]))) /* 12 */

#define G711_CHUNK 960 /* samples per filter pass (even, so halving stays aligned) */

#define MULAW_BIAS 0x84 /* 33 << 2: the bias in the 16-bit domain */

uint8_t g711_mulaw_encode(int16_t sample)
{
    /* ITU-T G.191 ulaw_compress: 14-bit magnitude (one's complement for negatives) + 33. */
    int absno = sample < 0 ? ((~sample) >> 2) + 33 : (sample >> 2) + 33;
    int segno = 1, high, low, out;

    if (absno > 0x1fff)
        absno = 0x1fff;
    for (int i = absno >> 6; i != 0; i >>= 1)
        segno++;
    high = 0x8 - segno;
    low = 0xf - ((absno >> segno) & 0xf);
    out = high << 4 | low;
    if (sample >= 0)
        out |= 0x80;
    return (uint8_t)out;
}

int16_t g711_mulaw_decode(uint8_t byte)
{
    int u = ~byte & 0xff;
    int exponent = (u >> 4) & 0x07;
    int magnitude = (((u & 0x0f) << 3) + MULAW_BIAS) << exponent;
    return (int16_t)((u & 0x80) ? MULAW_BIAS - magnitude : magnitude - MULAW_BIAS);
}

void g711_mulaw_encode_buf(const int16_t *pcm, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = g711_mulaw_encode(pcm[i]);
}

void g711_mulaw_decode_buf(const uint8_t *in, size_t n, int16_t *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = g711_mulaw_decode(in[i]);
}

static int16_t saturate(int64_t v)
{
    return (int16_t)(v > INT16_MAX ? INT16_MAX : v < INT16_MIN ? INT16_MIN : v);
}

void g711_rate_init(struct g711_rate *r)
{
    memset(r, 0, sizeof(*r));
}

/*
 * Doubling: work = [history (2*HB_TAPS_HALF samples), input]. Output pair j starts at
 * work[j + HB_TAPS_HALF]: the even sample is that input sample, the odd one lies halfway
 * to the next and needs HB_TAPS_HALF samples on each side.
 */
static void upsample_chunk(struct g711_rate *r, const int16_t *in, size_t n, int16_t *out)
{
    int16_t work[G711_HISTORY + G711_CHUNK];
    const size_t hist = 2 * HB_TAPS_HALF;

    memcpy(work, r->hist, hist * sizeof(int16_t));
    memcpy(work + hist, in, n * sizeof(int16_t));
    for (size_t j = 0; j < n; j++) {
        size_t c = j + HB_TAPS_HALF + 1; /* the odd sample lies between work[c-1] and work[c] */
        int64_t acc = 16384;
        for (int k = 0; k < HB_TAPS_HALF; k++)
            acc += (int64_t)HB_TAPS[k] * (work[c - 1 - k] + work[c + k]);
        out[2 * j] = work[c - 1];
        out[2 * j + 1] = saturate(acc >> 15);
    }
    memcpy(r->hist, work + n, hist * sizeof(int16_t));
}

int g711_upsample_8k_to_16k(struct g711_rate *r, const int16_t *in, size_t n, int16_t *out,
                            size_t max)
{
    if (n > max / 2 || n > INT32_MAX / 2)
        return VAP_ETOOBIG;
    for (size_t done = 0; done < n; done += G711_CHUNK)
        upsample_chunk(r, in + done, n - done < G711_CHUNK ? n - done : G711_CHUNK,
                       out + 2 * done);
    return (int)(2 * n);
}

/*
 * Halving: work = [history (4*HB_TAPS_HALF samples), input]; output j is the filtered
 * sample at work[2j + 2*HB_TAPS_HALF], which needs 2*HB_TAPS_HALF - 1 on each side.
 */
static void downsample_chunk(struct g711_rate *r, const int16_t *in, size_t n, int16_t *out)
{
    int16_t work[G711_HISTORY + G711_CHUNK];
    const size_t hist = 4 * HB_TAPS_HALF;

    memcpy(work, r->hist, hist * sizeof(int16_t));
    memcpy(work + hist, in, n * sizeof(int16_t));
    for (size_t j = 0; j < n / 2; j++) {
        size_t c = 2 * j + 2 * HB_TAPS_HALF;
        int64_t acc = (int64_t)work[c] * 32768 + 32768;
        for (int k = 0; k < HB_TAPS_HALF; k++)
            acc += (int64_t)HB_TAPS[k] * (work[c - 1 - 2 * k] + work[c + 1 + 2 * k]);
        out[j] = saturate(acc >> 16);
    }
    memcpy(r->hist, work + n, hist * sizeof(int16_t));
}

int g711_downsample_16k_to_8k(struct g711_rate *r, const int16_t *in, size_t n, int16_t *out,
                              size_t max)
{
    if (n % 2 != 0)
        return VAP_EINVAL;
    if (n / 2 > max || n > INT32_MAX)
        return VAP_ETOOBIG;
    for (size_t done = 0; done < n; done += G711_CHUNK)
        downsample_chunk(r, in + done, n - done < G711_CHUNK ? n - done : G711_CHUNK,
                         out + done / 2);
    return (int)(n / 2);
}

/*
 * The recogniser's acoustic model (pocketsphinx en-us) is trained on 16 kHz speech; a
 * phone line carries nothing above 4 kHz, and the model's filters up there see silence.
 * Mirroring the 0-4 kHz band into 4-8 kHz (multiplying by (-1)^n shifts the spectrum by
 * half the sample rate) and adding it at gain 0.55 fills those filters with speech-like
 * energy. Measured with `vap-stt-eval --telephone [--no-widen]` on the flite test
 * utterances (WER in-domain / out-of-domain): hospital 82.9 / 90.1 % without, 12.1 /
 * 12.3 % with; realestate 69.8 / 84.9 % without, 13.6 / 16.3 % with (16 kHz audio: 7.1 /
 * 3.7 and 6.2 / 9.3 %). Gains 0.4, 0.7, 0.85 and 1.0 measured worse overall.
 * x + 0.55 * (-1)^n * x is a gain of 1.55 on even samples and 0.45 on odd ones. The
 * sign must follow the sample's position in the stream: pcm ends on a frame boundary
 * (an even number of samples since the start), so sample i is "even" when n - i is.
 */
void audio_widen_narrowband(int16_t *pcm, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int32_t x = pcm[i];
        pcm[i] = saturate(((n - i) % 2 == 0 ? 50790 : 14746) * (int64_t)x >> 15);
    }
}

