/*
 * Tests services/voice/audio/vad.c with real (synthesised) speech in room noise: onset
 * and end-of-turn timing across pauses between words, the pre-roll, a noise floor that
 * moves, and barge-in over the agent (coughs, clicks and a short "mhm" must not cancel
 * the reply; a sustained sentence must, quickly).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "audio.h"
#include "audio_test_util.h"
#include "err.h"

#define ROOM_DB -60.0f   /* a quiet room through a laptop microphone */
#define SPEECH_DB -26.0f /* conversational speech at the same microphone */

struct run {
    int starts, ends, barges;
    long start_ms, end_ms, barge_ms; /* first of each, from the track's start */
    size_t pre_roll_len;
    int16_t pre_roll[AUDIO_RATE * 2];
    bool pre_roll_matches;
};

static const struct vad_config default_cfg = {
    .start_ms = 100, .barge_in_ms = 300, .end_silence_ms = 800, .pre_roll_ms = 300};

/* Runs the track through a VAD; agent_from/agent_to: when the agent is audible (ms). */
static void run_vad(const struct vad_config *cfg, const struct track *t, long agent_from,
                    long agent_to, struct run *r)
{
    struct vad *v;
    memset(r, 0, sizeof(*r));
    r->start_ms = r->end_ms = r->barge_ms = -1;
    assert_int_equal(vad_new(cfg, &v), 0);
    for (size_t off = 0; off + AUDIO_FRAME_SAMPLES <= t->len; off += AUDIO_FRAME_SAMPLES) {
        long ms = (long)(off / (AUDIO_RATE / 1000));
        enum vad_event ev;
        vad_set_agent_speaking(v, ms >= agent_from && ms < agent_to);
        ev = vad_process(v, t->pcm + off);
        if (ev == VAD_SPEECH_START) {
            assert_true(vad_in_speech(v));
            if (r->starts++ == 0) {
                size_t end = off + AUDIO_FRAME_SAMPLES;
                r->start_ms = ms + AUDIO_FRAME_MS;
                r->pre_roll_len = vad_pre_roll(v, r->pre_roll, sizeof(r->pre_roll) / 2);
                /* The pre-roll is the audio that ends with the frame just processed. */
                r->pre_roll_matches =
                    r->pre_roll_len <= end &&
                    memcmp(r->pre_roll, t->pcm + end - r->pre_roll_len, r->pre_roll_len * 2) == 0;
            }
        } else if (ev == VAD_SPEECH_END) {
            assert_false(vad_in_speech(v));
            if (r->ends++ == 0)
                r->end_ms = ms + AUDIO_FRAME_MS;
        } else if (ev == VAD_BARGE_IN) {
            if (r->barges++ == 0)
                r->barge_ms = ms + AUDIO_FRAME_MS;
        }
    }
    vad_free(v);
}

static long ms_of(size_t samples)
{
    return (long)(samples / (AUDIO_RATE / 1000));
}

/* "I would like ... to book a table ... for two people" with 300 and 250 ms pauses. */
static void test_a_sentence_with_pauses_is_one_turn(void **state)
{
    struct track t = {0};
    struct run *r = calloc(1, sizeof(*r));
    size_t onset, last_end;
    (void)state;

    track_noise(&t, 1500, -200);
    onset = track_say(&t, "I would like", SPEECH_DB);
    track_noise(&t, 300, -200);
    track_say(&t, "to book a table", SPEECH_DB);
    track_noise(&t, 250, -200);
    track_say(&t, "for two people.", SPEECH_DB);
    last_end = t.len;
    track_noise(&t, 2000, -200);
    track_add_noise(&t, ROOM_DB);

    run_vad(&default_cfg, &t, -1, -1, r);
    print_message("onset at %ld ms, SPEECH_START at %ld ms (+%ld); speech ends at %ld ms, "
                  "SPEECH_END at %ld ms (+%ld, end_silence 800); pre-roll %zu ms\n",
                  ms_of(onset), r->start_ms, r->start_ms - ms_of(onset), ms_of(last_end), r->end_ms,
                  r->end_ms - ms_of(last_end), r->pre_roll_len / 16);
    assert_int_equal(r->starts, 1);
    assert_int_equal(r->ends, 1);
    assert_true(r->start_ms >= ms_of(onset) + 100);
    assert_true(r->start_ms <= ms_of(onset) + 200);
    assert_true(r->end_ms >= ms_of(last_end) + 800 - 100); /* the last phone fades early */
    assert_true(r->end_ms <= ms_of(last_end) + 800 + 100);
    /* The recogniser gets 300 ms before the first syllable and everything since. */
    assert_true(r->pre_roll_matches);
    assert_true(r->pre_roll_len >= (size_t)(r->start_ms - ms_of(onset) + 300 - 20) * 16);
    free(r);
    track_free(&t);
}

static void test_a_long_pause_ends_the_turn_and_a_new_one_starts(void **state)
{
    struct track t = {0};
    struct run *r = calloc(1, sizeof(*r));
    (void)state;

    track_noise(&t, 1000, -200);
    track_say(&t, "Good evening.", SPEECH_DB);
    track_noise(&t, 1200, -200);
    track_say(&t, "Do you have a table?", SPEECH_DB);
    track_noise(&t, 1500, -200);
    track_add_noise(&t, ROOM_DB);
    run_vad(&default_cfg, &t, -1, -1, r);
    assert_int_equal(r->starts, 2);
    assert_int_equal(r->ends, 2);
    free(r);
    track_free(&t);
}

static void test_noise_alone_is_not_speech(void **state)
{
    struct track t = {0};
    struct run *r = calloc(1, sizeof(*r));
    (void)state;

    /* A quiet room, then a fan 25 dB louder, then a loud hiss, clicks and coughs. */
    track_noise(&t, 2000, ROOM_DB);
    track_noise(&t, 5000, ROOM_DB + 25);
    for (int i = 0; i < 5; i++) {
        track_noise(&t, 20, -6);
        track_noise(&t, 500, ROOM_DB + 25);
        track_noise(&t, 180, -15);
        track_noise(&t, 800, ROOM_DB + 25);
    }
    run_vad(&default_cfg, &t, -1, -1, r);
    assert_int_equal(r->starts, 0);
    free(r);
    track_free(&t);
}

static void test_speech_is_found_after_the_noise_floor_rose(void **state)
{
    struct track t = {0};
    struct run *r = calloc(1, sizeof(*r));
    size_t onset;
    (void)state;

    track_noise(&t, 1000, ROOM_DB);
    track_noise(&t, 4000, -45);
    onset = t.len;
    {
        struct track s = {0};
        track_say(&s, "Can you hear me now?", -20);
        track_reserve(&t, s.len);
        for (size_t i = 0; i < s.len; i++)
            t.pcm[t.len++] = clip16(s.pcm[i] + dbfs(-45) * noise_sample());
        track_free(&s);
    }
    track_noise(&t, 1500, -45);
    run_vad(&default_cfg, &t, -1, -1, r);
    print_message("in -45 dBFS noise: SPEECH_START %ld ms after onset\n",
                  r->start_ms - ms_of(onset));
    assert_int_equal(r->starts, 1);
    assert_true(r->start_ms - ms_of(onset) < 300);
    assert_int_equal(r->ends, 1);
    free(r);
    track_free(&t);
}

static void test_coughs_clicks_and_mhm_do_not_barge_in(void **state)
{
    struct track t = {0}, mhm = {0};
    struct run *r = calloc(1, sizeof(*r));
    (void)state;

    track_noise(&t, 1000, -200);
    for (int ms = 100; ms <= 200; ms += 50) {
        track_noise(&t, ms, -12); /* a cough: a loud noise burst */
        track_noise(&t, 1200, -200);
    }
    for (int i = 0; i < 3; i++) {
        track_noise(&t, 10, -3); /* a click */
        track_noise(&t, 600, -200);
    }
    /* "mhm": a voiced backchannel cut to 240 ms. */
    track_say(&mhm, "mm hmm", SPEECH_DB);
    mhm.len = 240 * 16;
    track_reserve(&t, mhm.len);
    memcpy(t.pcm + t.len, mhm.pcm, mhm.len * 2);
    t.len += mhm.len;
    track_noise(&t, 1500, -200);
    track_add_noise(&t, ROOM_DB);

    run_vad(&default_cfg, &t, 0, 1000000, r);
    print_message("over the agent: %d starts, %d barge-ins\n", r->starts, r->barges);
    assert_int_equal(r->barges, 0);
    assert_true(r->starts <= 1); /* only the "mhm" may start speech */
    free(r);
    track_free(&t);
    track_free(&mhm);
}

static void test_sustained_speech_over_the_agent_barges_in(void **state)
{
    struct track t = {0};
    struct run *r = calloc(1, sizeof(*r)), *quiet = calloc(1, sizeof(*r));
    size_t onset;
    (void)state;

    track_noise(&t, 1500, -200);
    onset = track_say(&t, "Wait, stop. I have a question about the menu.", SPEECH_DB);
    track_noise(&t, 1500, -200);
    track_add_noise(&t, ROOM_DB);
    run_vad(&default_cfg, &t, 0, 1000000, r);
    print_message("barge-in %ld ms after onset (SPEECH_START at +%ld, barge_in_ms 300)\n",
                  r->barge_ms - ms_of(onset), r->start_ms - ms_of(onset));
    assert_int_equal(r->barges, 1);
    assert_true(r->barge_ms - ms_of(onset) >= 300);
    assert_true(r->barge_ms - ms_of(onset) <= 300 + 150);

    /* Without the agent there is nothing to barge in on. */
    run_vad(&default_cfg, &t, -1, -1, quiet);
    assert_int_equal(quiet->barges, 0);
    assert_int_equal(quiet->starts, 1);
    free(r);
    free(quiet);
    track_free(&t);
}

static void test_speech_ms_and_silence_ms_follow_the_turn(void **state)
{
    struct track t = {0};
    struct vad *v;
    int max_speech = 0;
    bool saw_zero_silence = false;
    (void)state;

    track_noise(&t, 500, -200);
    track_say(&t, "One two three four five.", SPEECH_DB);
    track_noise(&t, 1000, -200);
    track_add_noise(&t, ROOM_DB);
    assert_int_equal(vad_new(&default_cfg, &v), 0);
    for (size_t off = 0; off + AUDIO_FRAME_SAMPLES <= t.len; off += AUDIO_FRAME_SAMPLES) {
        vad_process(v, t.pcm + off);
        if (vad_in_speech(v) && vad_silence_ms(v) == 0)
            saw_zero_silence = true;
        if (vad_speech_ms(v) > max_speech)
            max_speech = vad_speech_ms(v);
    }
    assert_true(saw_zero_silence);
    assert_true(vad_silence_ms(v) >= 800);
    print_message("speech_ms %d for %.0f ms of synthesised speech\n", max_speech,
                  (double)(t.len - 1500 * 16) / 16);
    assert_true(max_speech > 800);
    vad_free(v);
    track_free(&t);
}

static void test_bad_configs_are_refused(void **state)
{
    struct vad *v = NULL;
    struct vad_config c = default_cfg;
    (void)state;

    c.end_silence_ms = 0;
    assert_int_equal(vad_new(&c, &v), VAP_EINVAL);
    c = default_cfg;
    c.pre_roll_ms = 5000;
    assert_int_equal(vad_new(&c, &v), VAP_EINVAL);
    c = default_cfg;
    c.start_ms = -1;
    assert_int_equal(vad_new(&c, &v), VAP_EINVAL);
    assert_null(v);
    c = default_cfg;
    c.pre_roll_ms = 0;
    assert_int_equal(vad_new(&c, &v), 0);
    vad_free(v);
    vad_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_sentence_with_pauses_is_one_turn),
        cmocka_unit_test(test_a_long_pause_ends_the_turn_and_a_new_one_starts),
        cmocka_unit_test(test_noise_alone_is_not_speech),
        cmocka_unit_test(test_speech_is_found_after_the_noise_floor_rose),
        cmocka_unit_test(test_coughs_clicks_and_mhm_do_not_barge_in),
        cmocka_unit_test(test_sustained_speech_over_the_agent_barges_in),
        cmocka_unit_test(test_speech_ms_and_silence_ms_follow_the_turn),
        cmocka_unit_test(test_bad_configs_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
