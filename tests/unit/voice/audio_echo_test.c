/*
 * Tests services/voice/audio/echo.c together with the VAD, the way the worker chains
 * them: the agent's voice (synthesised speech) is played, and the microphone hears a
 * delayed, attenuated copy of it in room noise. That echo alone must never barge in;
 * the visitor talking over it must, within the barge-in time.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "audio.h"
#include "audio_test_util.h"
#include "err.h"

#define AGENT_DB -20.0f   /* the agent's voice as sent to the client */
#define VISITOR_DB -26.0f /* the visitor at the microphone */
#define ROOM_DB -60.0f

static const struct vad_config cfg = {
    .start_ms = 100, .barge_in_ms = 300, .end_silence_ms = 800, .pre_roll_ms = 300};

struct scene {
    struct track play; /* what the agent sends, frame-aligned */
    struct track mic;  /* what comes back */
    size_t visitor_at; /* first syllable of the visitor, or 0 */
};

struct result {
    int barges, starts;
    long barge_ms;
    float echo_in_db, echo_out_db; /* over the second half of the agent's speech */
};

/* Agent talks from 0.5 s for ~5 s; the microphone hears it delay_ms later at gain_db. */
static void build(struct scene *s, int delay_ms, float gain_db, const char *visitor,
                  int visitor_from_ms)
{
    size_t delay = (size_t)delay_ms * 16;
    float g = powf(10.0f, gain_db / 20.0f);

    memset(s, 0, sizeof(*s));
    track_noise(&s->play, 500, -200);
    track_say(&s->play,
              "Thank you for calling. Today we have a special on grilled salmon "
              "with lemon butter, and the soup of the day is tomato basil.",
              AGENT_DB);
    track_noise(&s->play, 1500, -200);
    track_pad_frames(&s->play);
    track_reserve(&s->mic, s->play.len);
    for (size_t i = 0; i < s->play.len; i++)
        s->mic.pcm[i] = i >= delay ? clip16(s->play.pcm[i - delay] * g) : 0;
    s->mic.len = s->play.len;
    if (visitor) {
        struct track v = {0};
        size_t at = (size_t)visitor_from_ms * 16;
        track_say(&v, visitor, VISITOR_DB);
        for (size_t i = 0; i < v.len && at + i < s->mic.len; i++)
            s->mic.pcm[at + i] = clip16(s->mic.pcm[at + i] + v.pcm[i]);
        s->visitor_at = at;
        track_free(&v);
    }
    track_add_noise(&s->mic, ROOM_DB);
}

static void run(const struct scene *s, struct result *r)
{
    struct echo_filter *f;
    struct vad *v;
    int16_t out[AUDIO_FRAME_SAMPLES];
    double in_e = 0, out_e = 0;
    size_t agent_end = s->play.len - 1500 * 16, half = agent_end / 2;

    memset(r, 0, sizeof(*r));
    r->barge_ms = -1;
    assert_int_equal(echo_filter_new(&f), 0);
    assert_int_equal(vad_new(&cfg, &v), 0);
    for (size_t off = 0; off < s->play.len; off += AUDIO_FRAME_SAMPLES) {
        enum vad_event ev;
        echo_filter_playback(f, s->play.pcm + off);
        echo_filter_capture(f, s->mic.pcm + off, out);
        /* The worker's "agent audible": from its first frame to its last. */
        vad_set_agent_speaking(v, off >= 500 * 16 && off < agent_end);
        ev = vad_process(v, out);
        if (ev == VAD_BARGE_IN && r->barges++ == 0)
            r->barge_ms = (long)(off / 16) + AUDIO_FRAME_MS;
        if (ev == VAD_SPEECH_START)
            r->starts++;
        if (off >= half && off < agent_end) {
            for (int i = 0; i < AUDIO_FRAME_SAMPLES; i++) {
                in_e += (double)s->mic.pcm[off + (size_t)i] * s->mic.pcm[off + (size_t)i];
                out_e += (double)out[i] * out[i];
            }
        }
    }
    r->echo_in_db = (float)(10 * log10(in_e / (double)(agent_end - half) / 1073741824.0 + 1e-10));
    r->echo_out_db = (float)(10 * log10(out_e / (double)(agent_end - half) / 1073741824.0 + 1e-10));
    echo_filter_free(f);
    vad_free(v);
}

static void test_the_agents_echo_does_not_barge_in(void **state)
{
    const int delays[] = {40, 80, 120};
    const float gains[] = {-6.0f, -12.0f};
    (void)state;

    for (size_t d = 0; d < 3; d++) {
        for (size_t g = 0; g < 2; g++) {
            struct scene s;
            struct result r;
            build(&s, delays[d], gains[g], NULL, 0);
            run(&s, &r);
            print_message("echo %3d ms %5.1f dB: mic %.1f dBFS -> %.1f dBFS after the filter, "
                          "%d starts, %d barge-ins\n",
                          delays[d], (double)gains[g], (double)r.echo_in_db, (double)r.echo_out_db,
                          r.starts, r.barges);
            assert_int_equal(r.barges, 0);
            assert_true(r.echo_out_db < r.echo_in_db - 15);
            track_free(&s.play);
            track_free(&s.mic);
        }
    }
}

static void test_the_visitor_over_the_echo_barges_in(void **state)
{
    const int delays[] = {40, 120};
    const float gains[] = {-6.0f, -12.0f};
    (void)state;

    for (size_t d = 0; d < 2; d++) {
        for (size_t g = 0; g < 2; g++) {
            struct scene s;
            struct result r;
            long late;
            build(&s, delays[d], gains[g], "Excuse me, I would like to change my order please.",
                  2500);
            run(&s, &r);
            late = r.barge_ms - (long)(s.visitor_at / 16);
            print_message("echo %3d ms %5.1f dB + visitor at %d dBFS: barge-in %ld ms after "
                          "the visitor's onset\n",
                          delays[d], (double)gains[g], (int)VISITOR_DB, late);
            assert_int_equal(r.barges, 1);
            assert_true(late >= 300 && late <= 300 + 250);
            track_free(&s.play);
            track_free(&s.mic);
        }
    }
}

/* Headphones: the agent plays, the microphone hears only the visitor. */
static void test_with_headphones_the_visitor_barges_in(void **state)
{
    struct scene s;
    struct result r;
    long late;
    (void)state;

    build(&s, 0, -200.0f, "Excuse me, I would like to change my order please.", 2500);
    run(&s, &r);
    late = r.barge_ms - (long)(s.visitor_at / 16);
    print_message("headphones: barge-in %ld ms after the visitor's onset\n", late);
    assert_int_equal(r.barges, 1);
    assert_true(late >= 300 && late <= 300 + 150);
    track_free(&s.play);
    track_free(&s.mic);
}

/* Without playback the filter must hand the visitor's voice over untouched. */
static void test_without_playback_the_microphone_passes_through(void **state)
{
    struct echo_filter *f;
    struct track t = {0};
    int16_t out[AUDIO_FRAME_SAMPLES];
    (void)state;

    track_say(&t, "Hello there.", VISITOR_DB);
    track_pad_frames(&t);
    assert_int_equal(echo_filter_new(&f), 0);
    for (size_t off = 0; off < t.len; off += AUDIO_FRAME_SAMPLES) {
        echo_filter_capture(f, t.pcm + off, out);
        assert_memory_equal(out, t.pcm + off, sizeof(out));
    }
    echo_filter_free(f);
    echo_filter_free(NULL);
    track_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_agents_echo_does_not_barge_in),
        cmocka_unit_test(test_the_visitor_over_the_echo_barges_in),
        cmocka_unit_test(test_with_headphones_the_visitor_barges_in),
        cmocka_unit_test(test_without_playback_the_microphone_passes_through),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
