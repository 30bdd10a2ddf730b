/*
 * Tests services/voice/audio/g711.c and the mu-law codec of codec.c: mu-law against
 * reference values of ITU-T G.711 (as its reference software G.191 computes them) and
 * exhaustively over all 16-bit samples; the 8 <-> 16 kHz half-band filter for exactness
 * (doubling keeps every input sample, a stream converted in frames equals the stream
 * converted at once), pass band, and image rejection; the telephone codec end to end; and
 * the recogniser's narrowband widening.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "audio.h"
#include "err.h"

#define PI 3.14159265358979323846

static void test_mulaw_matches_reference_values(void **state)
{
    static const struct { int16_t pcm; uint8_t code; } enc[] = {
        {0, 0xff},      {1, 0xff},      {-1, 0x7f},     {-5, 0x7e},      {31, 0xfb},
        {100, 0xf2},    {-100, 0x73},   {1000, 0xce},   {-1000, 0x4e},   {5000, 0xab},
        {-5000, 0x2b},  {12345, 0x97},  {-12345, 0x17}, {-31611, 0x01},  {32767, 0x80},
        {-32768, 0x00},
    };
    static const struct { uint8_t code; int16_t pcm; } dec[] = {
        {0x00, -32124}, {0x80, 32124}, {0x01, -31100}, {0x10, -15996}, {0x20, -7932},
        {0x30, -3900},  {0x40, -1884}, {0x50, -876},   {0x60, -372},   {0x70, -120},
        {0x7e, -8},     {0x7f, 0},     {0xff, 0},      {0xfe, 8},      {0xf0, 120},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(enc) / sizeof(enc[0]); i++)
        assert_int_equal(g711_mulaw_encode(enc[i].pcm), enc[i].code);
    for (size_t i = 0; i < sizeof(dec) / sizeof(dec[0]); i++)
        assert_int_equal(g711_mulaw_decode(dec[i].code), dec[i].pcm);
}

static void test_mulaw_is_exact_over_every_sample(void **state)
{
    (void)state;
    /* Every code but negative zero survives decode then encode. */
    for (int b = 0; b < 256; b++)
        if (b != 0x7f)
            assert_int_equal(g711_mulaw_encode(g711_mulaw_decode((uint8_t)b)), b);
    /* Every sample decodes to the middle of its quantisation step: error <= step / 2. */
    for (int x = -32000; x <= 32000; x++) {
        uint8_t code = g711_mulaw_encode((int16_t)x);
        int step = 8 << ((~code >> 4) & 7);
        assert_true(abs(g711_mulaw_decode(code) - x) <= step / 2);
    }
    /* Monotonic: a louder sample never gets a quieter code. */
    for (int x = -32768; x < 32767; x++)
        assert_true(g711_mulaw_decode(g711_mulaw_encode((int16_t)x)) <=
                    g711_mulaw_decode(g711_mulaw_encode((int16_t)(x + 1))));
}

static void tone(int16_t *out, size_t n, double hz, double rate, double amp, double phase0)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (int16_t)lrint(amp * sin(2 * PI * hz * (double)i / rate + phase0));
}

/* Level of a against the ideal b (dB of the error below b). */
static double snr_db(const int16_t *a, const int16_t *b, size_t n)
{
    double sig = 0, err = 0;
    for (size_t i = 0; i < n; i++) {
        sig += (double)b[i] * b[i];
        err += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    }
    return 10 * log10(sig / (err + 1e-9));
}

static double rms(const int16_t *a, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * a[i];
    return sqrt(s / (double)n);
}

static void test_doubling_keeps_every_sample_and_interpolates_a_tone(void **state)
{
    enum { N = 1600, DELAY = 12 };
    int16_t in[N], out[2 * N], ideal[2 * N];
    struct g711_rate r;
    (void)state;
    g711_rate_init(&r);
    tone(in, N, 1000, 8000, 12000, 0);
    assert_int_equal(g711_upsample_8k_to_16k(&r, in, N, out, 2 * N), 2 * N);
    for (size_t i = 0; i + DELAY < N; i++)
        assert_int_equal(out[2 * (i + DELAY)], in[i]);
    /* The samples between match the same tone at 16 kHz (delayed by 12 input samples). */
    tone(ideal, 2 * N, 1000, 16000, 12000, 0);
    assert_true(snr_db(out + 2 * DELAY + 200, ideal + 200, 2 * N - 2 * DELAY - 400) > 50);
    /* 3.4 kHz, the top of the telephone band, still passes at full level. */
    g711_rate_init(&r);
    tone(in, N, 3400, 8000, 12000, 0);
    g711_upsample_8k_to_16k(&r, in, N, out, 2 * N);
    assert_true(fabs(20 * log10(rms(out + 400, 2 * N - 800) / (12000 / sqrt(2)))) < 0.25);
}

static void test_halving_passes_the_band_and_rejects_images(void **state)
{
    enum { N = 3200, DELAY = 12 };
    int16_t in[N], out[N / 2], ideal[N / 2];
    struct g711_rate r;
    (void)state;
    g711_rate_init(&r);
    tone(in, N, 1000, 16000, 12000, 0);
    assert_int_equal(g711_downsample_16k_to_8k(&r, in, N, out, N / 2), N / 2);
    tone(ideal, N / 2, 1000, 8000, 12000, 0);
    assert_true(snr_db(out + DELAY + 100, ideal + 100, N / 2 - DELAY - 200) > 50);
    /* 5 kHz cannot be carried at 8 kHz: it must not fold back as a 3 kHz tone. */
    g711_rate_init(&r);
    tone(in, N, 5000, 16000, 12000, 0);
    g711_downsample_16k_to_8k(&r, in, N, out, N / 2);
    assert_true(20 * log10(rms(out + 100, N / 2 - 200) / 12000) < -60);
    /* Odd lengths are refused: they are not a whole number of 8 kHz samples. */
    assert_int_equal(g711_downsample_16k_to_8k(&r, in, 321, out, N / 2), VAP_EINVAL);
    assert_int_equal(g711_upsample_8k_to_16k(&r, in, 160, out, 100), VAP_ETOOBIG);
}

static void test_frames_equal_one_pass(void **state)
{
    enum { N = 1600 };
    int16_t in[2 * N], whole[2 * N], framed[2 * N];
    struct g711_rate a, b;
    (void)state;
    srand(7);
    for (size_t i = 0; i < 2 * N; i++)
        in[i] = (int16_t)(rand() % 40000 - 20000);
    g711_rate_init(&a);
    g711_rate_init(&b);
    g711_upsample_8k_to_16k(&a, in, N, whole, 2 * N);
    for (size_t off = 0; off < N; off += 160)
        g711_upsample_8k_to_16k(&b, in + off, 160, framed + 2 * off, 320);
    assert_memory_equal(whole, framed, sizeof(int16_t) * 2 * N);
    g711_rate_init(&a);
    g711_rate_init(&b);
    g711_downsample_16k_to_8k(&a, in, 2 * N, whole, N);
    for (size_t off = 0; off < 2 * N; off += 320)
        g711_downsample_16k_to_8k(&b, in + off, 320, framed + off / 2, 160);
    assert_memory_equal(whole, framed, sizeof(int16_t) * N);
}

static void test_mulaw_codec_round_trip(void **state)
{
    struct audio_encoder *enc;
    struct audio_decoder *dec;
    int16_t in[AUDIO_FRAME_SAMPLES * 50], back[AUDIO_FRAME_SAMPLES * 50];
    uint8_t frame[1024];
    (void)state;
    assert_int_equal(audio_encoder_new(AUDIO_CODEC_MULAW, 16000, &enc), VAP_EINVAL);
    assert_int_equal(audio_decoder_new(AUDIO_CODEC_MULAW, 48000, &dec), VAP_EINVAL);
    assert_int_equal(audio_encoder_new(AUDIO_CODEC_MULAW, 8000, &enc), 0);
    assert_int_equal(audio_decoder_new(AUDIO_CODEC_MULAW, 8000, &dec), 0);
    assert_string_equal(audio_codec_name(AUDIO_CODEC_MULAW), "mulaw");
    tone(in, AUDIO_FRAME_SAMPLES * 50, 440, 16000, 8000, 0);
    for (int f = 0; f < 50; f++) {
        int n = audio_encode(enc, in + f * AUDIO_FRAME_SAMPLES, frame, sizeof(frame));
        assert_int_equal(n, 160); /* 20 ms at 8 kHz, one byte a sample */
        assert_int_equal(audio_decode(dec, frame, (size_t)n, back + f * AUDIO_FRAME_SAMPLES,
                                      AUDIO_FRAME_SAMPLES),
                         AUDIO_FRAME_SAMPLES);
    }
    /* Through 8 kHz and mu-law and back, delayed by both filters (48 samples at 16 kHz). */
    assert_true(snr_db(back + 48 + 400, in + 400, AUDIO_FRAME_SAMPLES * 50 - 48 - 800) > 30);
    assert_int_equal(audio_decode(dec, frame, 961, back, AUDIO_FRAME_SAMPLES * 50), VAP_EPROTO);
    audio_encoder_free(enc);
    audio_decoder_free(dec);
}

/* Energy of a at hz (single-bin DFT), relative to the signal's total. */
static double share_at(const int16_t *a, size_t n, double hz, double rate)
{
    double re = 0, im = 0, all = 0;
    for (size_t i = 0; i < n; i++) {
        re += a[i] * cos(2 * PI * hz * (double)i / rate);
        im += a[i] * sin(2 * PI * hz * (double)i / rate);
        all += (double)a[i] * a[i];
    }
    return (re * re + im * im) / ((double)n / 2) / all;
}

static void test_widening_mirrors_the_band_consistently(void **state)
{
    int16_t a[1600], b[1600];
    (void)state;
    tone(a, 1600, 1000, 16000, 10000, 0);
    memcpy(b, a, sizeof(a));
    /* In one call or frame by frame: the same samples (the sign follows the stream). */
    audio_widen_narrowband(a, 1600);
    for (size_t off = 0; off < 1600; off += 320)
        audio_widen_narrowband(b + off, 320);
    assert_memory_equal(a, b, sizeof(a));
    /* The 1 kHz tone stays, and its mirror appears at 7 kHz at 0.55 of its amplitude. */
    {
        double low = share_at(a, 1600, 1000, 16000), high = share_at(a, 1600, 7000, 16000);
        assert_true(fabs(high / low - 0.55 * 0.55) < 0.01);
        assert_true(low + high > 0.98);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mulaw_matches_reference_values),
        cmocka_unit_test(test_mulaw_is_exact_over_every_sample),
        cmocka_unit_test(test_doubling_keeps_every_sample_and_interpolates_a_tone),
        cmocka_unit_test(test_halving_passes_the_band_and_rejects_images),
        cmocka_unit_test(test_frames_equal_one_pass),
        cmocka_unit_test(test_mulaw_codec_round_trip),
        cmocka_unit_test(test_widening_mirrors_the_band_consistently),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
