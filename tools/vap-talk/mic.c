/*
 * The microphone: one 20 ms frame per tick, paced by the monotonic clock the way a sound
 * card would deliver them, speech while there is some and silence otherwise (a real
 * microphone never stops sending, and the server's voice activity detection needs the
 * silence after speech to end the turn). Ticks are absolute, so sleeping late does not
 * drift the stream; after a stall of more than 200 ms it steps back into line instead of
 * sending a burst.
 */
#include <string.h>
#include <time.h>

#include "clock.h"
#include "talk.h"

#define NS_PER_MS 1000000LL
#define NS_PER_S 1000000000LL
#define MIC_MAX_LATE_NS (200 * NS_PER_MS)

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

void talk_mic_start(struct talk_mic *m)
{
    memset(m, 0, sizeof(*m));
    m->next_ns = now_ns();
}

void talk_mic_say(struct talk_mic *m, const struct talk_speech *speech)
{
    m->pcm = speech->pcm.s;
    m->n = speech->pcm.n;
    m->pos = 0;
    m->speech_end_sample = speech->speech_end_ms * (TALK_RATE / 1000);
    m->speech_end_at_ms = 0;
}

bool talk_mic_next(struct talk_mic *m, int16_t frame[TALK_FRAME_SAMPLES], int64_t now_ms)
{
    size_t take = 0;
    if (m->pcm && m->pos < m->n) {
        take = m->n - m->pos < TALK_FRAME_SAMPLES ? m->n - m->pos : TALK_FRAME_SAMPLES;
        memcpy(frame, m->pcm + m->pos, take * sizeof(int16_t));
        m->pos += take;
        if (!m->speech_end_at_ms && (int64_t)m->pos >= m->speech_end_sample)
            m->speech_end_at_ms = now_ms;
    }
    memset(frame + take, 0, (TALK_FRAME_SAMPLES - take) * sizeof(int16_t));
    return talk_mic_speaking(m);
}

bool talk_mic_speaking(const struct talk_mic *m)
{
    return m->pcm && m->pos < m->n;
}

void talk_mic_wait(struct talk_mic *m)
{
    struct timespec ts;
    int64_t now = now_ns();

    m->next_ns += TALK_FRAME_MS * NS_PER_MS;
    if (now - m->next_ns > MIC_MAX_LATE_NS)
        m->next_ns = now;
    ts.tv_sec = (time_t)(m->next_ns / NS_PER_S);
    ts.tv_nsec = (long)(m->next_ns % NS_PER_S);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0) {
        /* EINTR: sleep the rest */
    }
}
