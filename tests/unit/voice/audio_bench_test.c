/*
 * Measures the CPU cost of each audio stage per 20 ms frame on real (synthesised)
 * speech, and prints it: decode (Opus at 16 and 48 kHz, PCM16 at 48 kHz), the rejected
 * alternative (Opus decoded at 48 kHz then resampled), encode, VAD and echo filter.
 * The only assertion is a loose ceiling (sanitizer builds are several times slower);
 * the numbers are for reading: run it from a release build for the real ones.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include <opus/opus.h>

#include "audio.h"
#include "audio_test_util.h"
#include "err.h"

#define REPEAT 5

static struct track speech16, speech48;

static int setup(void **state)
{
    struct audio_resampler *r;
    (void)state;
    track_noise(&speech16, 200, -60);
    track_say(&speech16,
              "Thank you for calling. Today we have a special on grilled salmon "
              "with lemon butter, and the soup of the day is tomato basil.",
              -20);
    track_pad_frames(&speech16);
    track_add_noise(&speech16, -60);
    if (audio_resampler_new(16000, 48000, &r) != 0)
        return -1;
    track_reserve(&speech48, speech16.len * 3);
    speech48.len =
        (size_t)audio_resample(r, speech16.pcm, speech16.len, speech48.pcm, speech48.cap);
    audio_resampler_free(r);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    track_free(&speech16);
    track_free(&speech48);
    return 0;
}

static size_t frames(void)
{
    return speech16.len / AUDIO_FRAME_SAMPLES;
}

static double report(const char *what, double seconds, size_t n)
{
    double us = seconds * 1e6 / (double)n;
    print_message("%-44s %7.1f us/frame (%.2f%% of one core in real time)\n", what, us,
                  us / 20000.0 * 100);
    return us;
}

/* Client packets: 20 ms Opus at the client's rate, as a browser sends them. */
static size_t client_packets(int rate, uint8_t (*pkts)[400], int *lens)
{
    OpusEncoder *enc;
    const struct track *t = rate == 48000 ? &speech48 : &speech16;
    size_t step = (size_t)rate / 50, n = 0;
    int err;

    enc = opus_encoder_create(rate, 1, OPUS_APPLICATION_VOIP, &err);
    assert_non_null(enc);
    opus_encoder_ctl(enc, OPUS_SET_BITRATE(32000));
    for (size_t off = 0; off + step <= t->len; off += step, n++) {
        lens[n] = opus_encode(enc, t->pcm + off, (int)step, pkts[n], 400);
        assert_true(lens[n] > 0);
    }
    opus_encoder_destroy(enc);
    return n;
}

static void test_cost_per_frame_of_each_stage(void **state)
{
    size_t nf = frames();
    uint8_t(*pkts)[400] = calloc(nf + 4, 400);
    int *lens = calloc(nf + 4, sizeof(int));
    int16_t out[5760];
    uint8_t bytes[2000];
    double t0, total = 0;
    size_t np;
    (void)state;

    for (int rate = 16000; rate <= 48000; rate += 32000) {
        struct audio_decoder *d;
        char label[64];
        np = client_packets(rate, pkts, lens);
        t0 = now_s();
        for (int k = 0; k < REPEAT; k++) {
            assert_int_equal(audio_decoder_new(AUDIO_CODEC_OPUS, rate, &d), 0);
            for (size_t i = 0; i < np; i++)
                assert_int_equal(audio_decode(d, pkts[i], (size_t)lens[i], out, 5760), 320);
            audio_decoder_free(d);
        }
        snprintf(label, sizeof(label), "decode opus from %d Hz (at 16 kHz)", rate);
        total += report(label, now_s() - t0, np * REPEAT) / 2;
    }
    /* The alternative: decode at 48 kHz, then resample to 16 kHz. */
    {
        OpusDecoder *od;
        struct audio_resampler *r;
        int16_t res[400];
        int err;
        t0 = now_s();
        for (int k = 0; k < REPEAT; k++) {
            od = opus_decoder_create(48000, 1, &err);
            assert_int_equal(audio_resampler_new(48000, 16000, &r), 0);
            for (size_t i = 0; i < np; i++) {
                int n = opus_decode(od, pkts[i], lens[i], out, 5760, 0);
                assert_int_equal(n, 960);
                audio_resample(r, out, (size_t)n, res, 400);
            }
            opus_decoder_destroy(od);
            audio_resampler_free(r);
        }
        report("  (not used: decode at 48k + resample)", now_s() - t0, np * REPEAT);
    }
    {
        struct audio_decoder *d;
        uint8_t frame[1920];
        t0 = now_s();
        for (int k = 0; k < REPEAT; k++) {
            assert_int_equal(audio_decoder_new(AUDIO_CODEC_PCM16, 48000, &d), 0);
            for (size_t off = 0; off + 960 <= speech48.len; off += 960) {
                for (int i = 0; i < 960; i++) {
                    frame[2 * i] = (uint8_t)((uint16_t)speech48.pcm[off + (size_t)i] & 0xff);
                    frame[2 * i + 1] = (uint8_t)((uint16_t)speech48.pcm[off + (size_t)i] >> 8);
                }
                audio_decode(d, frame, sizeof(frame), out, 5760);
            }
            audio_decoder_free(d);
        }
        report("decode pcm16 48 kHz (resample to 16 kHz)", now_s() - t0, nf * REPEAT);
    }
    {
        struct audio_encoder *e;
        t0 = now_s();
        for (int k = 0; k < REPEAT; k++) {
            assert_int_equal(audio_encoder_new(AUDIO_CODEC_OPUS, 48000, &e), 0);
            for (size_t i = 0; i < nf; i++)
                assert_true(audio_encode(e, speech16.pcm + i * 320, bytes, sizeof(bytes)) > 0);
            audio_encoder_free(e);
        }
        total += report("encode opus (complexity 5, 24 kbit/s)", now_s() - t0, nf * REPEAT);
        t0 = now_s();
        for (int k = 0; k < REPEAT; k++) {
            assert_int_equal(audio_encoder_new(AUDIO_CODEC_PCM16, 48000, &e), 0);
            for (size_t i = 0; i < nf; i++)
                assert_int_equal(audio_encode(e, speech16.pcm + i * 320, bytes, 2000), 1920);
            audio_encoder_free(e);
        }
        report("encode pcm16 48 kHz (resample from 16)", now_s() - t0, nf * REPEAT);
    }
    {
        struct vad *v;
        const struct vad_config c = {100, 300, 800, 300};
        t0 = now_s();
        for (int k = 0; k < REPEAT; k++) {
            assert_int_equal(vad_new(&c, &v), 0);
            for (size_t i = 0; i < nf; i++)
                vad_process(v, speech16.pcm + i * 320);
            vad_free(v);
        }
        total += report("vad", now_s() - t0, nf * REPEAT);
    }
    {
        struct echo_filter *f;
        int16_t clean[AUDIO_FRAME_SAMPLES];
        t0 = now_s();
        for (int k = 0; k < REPEAT; k++) {
            assert_int_equal(echo_filter_new(&f), 0);
            for (size_t i = 0; i < nf; i++) {
                echo_filter_playback(f, speech16.pcm + i * 320);
                echo_filter_capture(f, speech16.pcm + (i ? i - 1 : 0) * 320, clean);
            }
            echo_filter_free(f);
        }
        total += report("echo filter, agent speaking (AEC + gate)", now_s() - t0, nf * REPEAT);
        t0 = now_s();
        for (int k = 0; k < REPEAT; k++) {
            assert_int_equal(echo_filter_new(&f), 0);
            for (size_t i = 0; i < nf; i++)
                echo_filter_capture(f, speech16.pcm + i * 320, clean);
            echo_filter_free(f);
        }
        report("echo filter, agent silent (noise tracking)", now_s() - t0, nf * REPEAT);
    }
    print_message("one session, worst case (decode + encode + vad + echo): %.1f us per 20 ms "
                  "= %.2f%% of a core\n",
                  total, total / 20000.0 * 100);
    /* Loose: even a sanitizer build must keep one session far below real time. */
    assert_true(total < 5000);
    free(pkts);
    free(lens);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cost_per_frame_of_each_stage),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
