/*
 * Tests services/voice/audio/codec.c and resample.c: Opus and PCM16 frames at 16 and
 * 48 kHz to the pipeline's 16 kHz and back, with real (synthesised) speech, and the
 * refusal of malformed frames, including a random-bytes run the decoder must survive.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <opus/opus.h>

#include "audio.h"
#include "audio_test_util.h"
#include "err.h"

#define SENTENCE "Hello, I would like to book a table for two people tonight."

/* Best normalised cross-correlation of b against a, b delayed by 0..max_lag samples. */
static double best_corr(const int16_t *a, size_t na, const int16_t *b, size_t nb, int max_lag,
                        int *lag_out)
{
    double best = -1;
    for (int lag = 0; lag <= max_lag; lag++) {
        double xy = 0, xx = 0, yy = 0;
        size_t n = na;
        if (n + (size_t)lag > nb)
            n = nb - (size_t)lag;
        for (size_t i = 0; i < n; i++) {
            xy += (double)a[i] * b[i + (size_t)lag];
            xx += (double)a[i] * a[i];
            yy += (double)b[i + (size_t)lag] * b[i + (size_t)lag];
        }
        if (xx > 0 && yy > 0 && xy / sqrt(xx * yy) > best) {
            best = xy / sqrt(xx * yy);
            if (lag_out)
                *lag_out = lag;
        }
    }
    return best;
}

static struct track sentence(void)
{
    struct track t = {0};
    track_noise(&t, 100, -70);
    track_say(&t, SENTENCE, -20);
    track_noise(&t, 200, -70);
    track_pad_frames(&t);
    return t;
}

/* The sentence at 48 kHz, through the 16k -> 48k resampler. */
static struct track upsample(const struct track *in)
{
    struct track out = {0};
    struct audio_resampler *r;
    assert_int_equal(audio_resampler_new(16000, 48000, &r), 0);
    track_reserve(&out, in->len * 3 + 16);
    out.len = (size_t)audio_resample(r, in->pcm, in->len, out.pcm, out.cap);
    assert_int_equal(out.len, in->len * 3);
    audio_resampler_free(r);
    return out;
}

static void roundtrip_opus(int rate)
{
    struct track t = sentence(), back = {0};
    struct audio_encoder *e;
    struct audio_decoder *d;
    uint8_t pkt[1500];
    size_t bytes = 0;
    int lag = 0;
    double c;

    assert_int_equal(audio_encoder_new(AUDIO_CODEC_OPUS, rate, &e), 0);
    assert_int_equal(audio_decoder_new(AUDIO_CODEC_OPUS, rate, &d), 0);
    track_reserve(&back, t.len);
    for (size_t off = 0; off < t.len; off += AUDIO_FRAME_SAMPLES) {
        int n = audio_encode(e, t.pcm + off, pkt, sizeof(pkt));
        assert_true(n > 0 && n < 200);
        bytes += (size_t)n;
        n = audio_decode(d, pkt, (size_t)n, back.pcm + back.len, back.cap - back.len);
        assert_int_equal(n, AUDIO_FRAME_SAMPLES);
        back.len += (size_t)n;
    }
    assert_int_equal(back.len, t.len);
    c = best_corr(t.pcm, t.len - 800, back.pcm, back.len, 400, &lag);
    print_message("opus %d Hz round trip: corr %.3f at lag %d samples, %.1f kbit/s\n", rate, c, lag,
                  (double)bytes * 8 / ((double)t.len / AUDIO_RATE) / 1000);
    assert_true(c > 0.8);
    assert_true(bytes * 8 / ((double)t.len / AUDIO_RATE) < 32000);
    audio_encoder_free(e);
    audio_decoder_free(d);
    track_free(&t);
    track_free(&back);
}

static void test_opus_round_trip_at_16k_keeps_the_speech(void **state)
{
    (void)state;
    roundtrip_opus(16000);
}

static void test_opus_round_trip_at_48k_keeps_the_speech(void **state)
{
    (void)state;
    roundtrip_opus(48000);
}

/* What a browser does: encode 48 kHz audio itself; we decode to 16 kHz. */
static void test_opus_from_a_48k_client_decodes_to_16k(void **state)
{
    struct track t = sentence(), hi = upsample(&t), back = {0};
    struct audio_decoder *d;
    OpusEncoder *client;
    int err, lag = 0;
    uint8_t pkt[1500];
    double c;
    (void)state;

    client = opus_encoder_create(48000, 1, OPUS_APPLICATION_VOIP, &err);
    assert_non_null(client);
    opus_encoder_ctl(client, OPUS_SET_BITRATE(32000));
    assert_int_equal(audio_decoder_new(AUDIO_CODEC_OPUS, 48000, &d), 0);
    track_reserve(&back, t.len);
    for (size_t off = 0; off + 960 <= hi.len; off += 960) {
        int n = opus_encode(client, hi.pcm + off, 960, pkt, sizeof(pkt));
        assert_true(n > 0);
        n = audio_decode(d, pkt, (size_t)n, back.pcm + back.len, back.cap - back.len);
        assert_int_equal(n, AUDIO_FRAME_SAMPLES);
        back.len += (size_t)n;
    }
    assert_int_equal(back.len, t.len);
    c = best_corr(t.pcm, t.len - 800, back.pcm, back.len, 400, &lag);
    print_message("48k client opus -> 16k: corr %.3f at lag %d\n", c, lag);
    assert_true(c > 0.8);
    opus_encoder_destroy(client);
    audio_decoder_free(d);
    track_free(&t);
    track_free(&hi);
    track_free(&back);
}

/* And back: our packets decode to 20 ms at 48 kHz in the client. */
static void test_opus_to_a_48k_client_is_20ms_per_packet(void **state)
{
    struct track t = sentence();
    struct audio_encoder *e;
    OpusDecoder *client;
    int16_t out[5760];
    uint8_t pkt[1500];
    int err;
    (void)state;

    client = opus_decoder_create(48000, 1, &err);
    assert_non_null(client);
    assert_int_equal(audio_encoder_new(AUDIO_CODEC_OPUS, 48000, &e), 0);
    for (size_t off = 0; off < t.len; off += AUDIO_FRAME_SAMPLES) {
        int n = audio_encode(e, t.pcm + off, pkt, sizeof(pkt));
        assert_true(n > 0);
        assert_int_equal(opus_decode(client, pkt, n, out, 5760, 0), 960);
    }
    opus_decoder_destroy(client);
    audio_encoder_free(e);
    track_free(&t);
}

static void pack_le(const int16_t *pcm, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = (uint8_t)((uint16_t)pcm[i] & 0xff);
        out[2 * i + 1] = (uint8_t)((uint16_t)pcm[i] >> 8);
    }
}

static void test_pcm16_at_48k_is_resampled_to_16k(void **state)
{
    struct track t = sentence(), hi = upsample(&t), back = {0};
    struct audio_decoder *d;
    uint8_t frame[1920];
    int lag = 0;
    double c;
    (void)state;

    assert_int_equal(audio_decoder_new(AUDIO_CODEC_PCM16, 48000, &d), 0);
    track_reserve(&back, t.len);
    for (size_t off = 0; off + 960 <= hi.len; off += 960) {
        int n;
        pack_le(hi.pcm + off, 960, frame);
        n = audio_decode(d, frame, sizeof(frame), back.pcm + back.len, back.cap - back.len);
        assert_int_equal(n, AUDIO_FRAME_SAMPLES);
        back.len += (size_t)n;
    }
    c = best_corr(t.pcm, t.len - 800, back.pcm, back.len, 200, &lag);
    print_message("pcm16 48k -> 16k: corr %.4f at lag %d\n", c, lag);
    assert_true(c > 0.99);
    audio_decoder_free(d);
    track_free(&t);
    track_free(&hi);
    track_free(&back);
}

static void test_pcm16_at_16k_passes_through_and_encodes_20ms(void **state)
{
    struct audio_decoder *d;
    struct audio_encoder *e16, *e48;
    int16_t pcm[AUDIO_FRAME_SAMPLES], out[AUDIO_FRAME_SAMPLES];
    uint8_t bytes[1920];
    (void)state;

    for (int i = 0; i < AUDIO_FRAME_SAMPLES; i++)
        pcm[i] = (int16_t)(i * 97 - 15000);
    assert_int_equal(audio_encoder_new(AUDIO_CODEC_PCM16, 16000, &e16), 0);
    assert_int_equal(audio_encoder_new(AUDIO_CODEC_PCM16, 48000, &e48), 0);
    assert_int_equal(audio_decoder_new(AUDIO_CODEC_PCM16, 16000, &d), 0);
    assert_int_equal(audio_encode(e16, pcm, bytes, sizeof(bytes)), 640);
    assert_int_equal(bytes[0], (uint8_t)((uint16_t)pcm[0] & 0xff));
    assert_int_equal(audio_decode(d, bytes, 640, out, AUDIO_FRAME_SAMPLES), AUDIO_FRAME_SAMPLES);
    assert_memory_equal(pcm, out, sizeof(pcm));
    assert_int_equal(audio_encode(e48, pcm, bytes, sizeof(bytes)), 1920);
    assert_int_equal(audio_encode(e48, pcm, bytes, 1919), VAP_ETOOBIG);
    audio_encoder_free(e16);
    audio_encoder_free(e48);
    audio_decoder_free(d);
}

static void test_malformed_frames_are_refused(void **state)
{
    struct audio_decoder *pcm16, *pcm48, *opus;
    static uint8_t zeros[12000];
    int16_t out[6000];
    /* Code 3 (several frames), 60 ms SILK frames, 3 of them: 180 ms. */
    const uint8_t too_long[] = {(3 << 3) | 3, 3, 0, 0, 0, 0, 0, 0};
    /* Code 3 with a frame count of 0. */
    const uint8_t no_frames[] = {0x03, 0x00};
    /* Code 2 (two frames of different sizes) whose first size runs past the end. */
    const uint8_t bad_size[] = {0x02, 0xfc, 0xff, 1, 2};
    (void)state;

    assert_int_equal(audio_decoder_new(AUDIO_CODEC_PCM16, 16000, &pcm16), 0);
    assert_int_equal(audio_decoder_new(AUDIO_CODEC_PCM16, 48000, &pcm48), 0);
    assert_int_equal(audio_decoder_new(AUDIO_CODEC_OPUS, 48000, &opus), 0);

    assert_int_equal(audio_decode(pcm16, zeros, 641, out, 6000), VAP_EPROTO);
    assert_int_equal(audio_decode(pcm16, zeros, 0, out, 6000), VAP_EPROTO);
    assert_int_equal(audio_decode(pcm16, zeros, 3840, out, 6000), 1920); /* 120 ms */
    assert_int_equal(audio_decode(pcm16, zeros, 3842, out, 6000), VAP_EPROTO);
    assert_int_equal(audio_decode(pcm48, zeros, 11520, out, 6000) > 0, 1);
    assert_int_equal(audio_decode(pcm48, zeros, 11522, out, 6000), VAP_EPROTO);
    assert_int_equal(audio_decode(pcm16, zeros, 640, out, 100), VAP_ETOOBIG);

    assert_int_equal(audio_decode(opus, too_long, sizeof(too_long), out, 6000), VAP_EPROTO);
    assert_int_equal(audio_decode(opus, no_frames, sizeof(no_frames), out, 6000), VAP_EPROTO);
    assert_int_equal(audio_decode(opus, bad_size, sizeof(bad_size), out, 6000), VAP_EPROTO);
    assert_int_equal(audio_decode(opus, zeros, 0, out, 6000), VAP_EPROTO);
    assert_int_equal(audio_decode(opus, zeros, 9000, out, 6000), VAP_EPROTO);

    audio_decoder_free(opus);
    assert_int_equal(audio_decoder_new(AUDIO_CODEC_OPUS, 44100, &opus), VAP_EINVAL);
    assert_null(opus);
    assert_int_equal(audio_decoder_new((enum audio_codec)7, 16000, &opus), VAP_EINVAL);
    audio_decoder_free(pcm16);
    audio_decoder_free(pcm48);
}

/* A first taste of the fuzzer: random bytes, random lengths, and mutated real packets. */
static void test_decoder_survives_random_bytes(void **state)
{
    struct audio_decoder *d16, *d48, *p48;
    struct audio_encoder *e;
    int16_t pcm[AUDIO_FRAME_SAMPLES], out[6000];
    uint8_t buf[2048], real[400];
    int real_len, ok = 0, refused = 0;
    (void)state;

    assert_int_equal(audio_decoder_new(AUDIO_CODEC_OPUS, 16000, &d16), 0);
    assert_int_equal(audio_decoder_new(AUDIO_CODEC_OPUS, 48000, &d48), 0);
    assert_int_equal(audio_decoder_new(AUDIO_CODEC_PCM16, 48000, &p48), 0);
    assert_int_equal(audio_encoder_new(AUDIO_CODEC_OPUS, 16000, &e), 0);
    for (int i = 0; i < AUDIO_FRAME_SAMPLES; i++)
        pcm[i] = (int16_t)(8000 * sin(i * 0.3));
    real_len = audio_encode(e, pcm, real, sizeof(real));
    assert_true(real_len > 0);
    for (int iter = 0; iter < 20000; iter++) {
        size_t len;
        int n;
        if (iter % 2) {
            len = (size_t)(noise_seed % sizeof(buf));
            for (size_t i = 0; i < len; i++)
                buf[i] = (uint8_t)(noise_sample() * 100);
        } else {
            len = (size_t)real_len;
            memcpy(buf, real, len);
            for (int k = 0; k < 3; k++) {
                noise_sample();
                buf[(size_t)(noise_seed >> 3) % len] ^= (uint8_t)(1u << (noise_seed % 8));
            }
        }
        n = audio_decode(iter % 3 ? d48 : d16, buf, len, out, 6000);
        assert_true(n == VAP_EPROTO || (n > 0 && n <= 1920));
        if (n >= 0)
            ok++;
        else
            refused++;
        n = audio_decode(p48, buf, len, out, 6000);
        assert_true(n == VAP_EPROTO || (n >= 0 && n <= 1920));
    }
    print_message("random opus frames: %d decoded, %d refused\n", ok, refused);
    audio_decoder_free(d16);
    audio_decoder_free(d48);
    audio_decoder_free(p48);
    audio_encoder_free(e);
}

static void test_resampler_keeps_a_tone(void **state)
{
    struct audio_resampler *r;
    int16_t in[4800], out[1700];
    int n;
    double e_in = 0, e_out = 0;
    (void)state;

    for (int i = 0; i < 4800; i++)
        in[i] = (int16_t)(10000 * sin(2 * M_PI * 1000 * i / 48000.0));
    assert_int_equal(audio_resampler_new(48000, 16000, &r), 0);
    n = audio_resample(r, in, 4800, out, 1700);
    assert_int_equal(n, 1600);
    for (int i = 800; i < 1600; i++)
        e_out += (double)out[i] * out[i];
    for (int i = 2400; i < 4800; i++)
        e_in += (double)in[i] * in[i];
    /* Same power per sample within 0.5 dB. */
    assert_true(fabs(10 * log10((e_out / 800) / (e_in / 2400))) < 0.5);
    audio_resampler_free(r);
    assert_int_equal(audio_resampler_new(0, 16000, &r), VAP_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opus_round_trip_at_16k_keeps_the_speech),
        cmocka_unit_test(test_opus_round_trip_at_48k_keeps_the_speech),
        cmocka_unit_test(test_opus_from_a_48k_client_decodes_to_16k),
        cmocka_unit_test(test_opus_to_a_48k_client_is_20ms_per_packet),
        cmocka_unit_test(test_pcm16_at_48k_is_resampled_to_16k),
        cmocka_unit_test(test_pcm16_at_16k_passes_through_and_encodes_20ms),
        cmocka_unit_test(test_malformed_frames_are_refused),
        cmocka_unit_test(test_decoder_survives_random_bytes),
        cmocka_unit_test(test_resampler_keeps_a_tone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
