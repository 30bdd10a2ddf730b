/*
 * The loudspeaker vap-talk does not have. The agent's audio is "played" in real time
 * from the moment it arrives, each frame after the ones before it (a jitter buffer of
 * whatever the network delivered early), so the client can report honestly how much has
 * been heard: native `playback` events, and Twilio `mark` echoes once the audio before
 * the mark has played. A `clear` (barge-in) drops what has not played yet.
 */
#include "talk.h"

void talk_player_reset(struct talk_player *p, int64_t now_ms)
{
    p->until_ms = now_ms;
    p->received_ms = 0;
}

void talk_player_begin(struct talk_player *p, int64_t now_ms)
{
    (void)now_ms;
    p->received_ms = 0;
}

void talk_player_push(struct talk_player *p, int64_t now_ms, int64_t ms)
{
    if (p->until_ms < now_ms)
        p->until_ms = now_ms;
    p->until_ms += ms;
    p->received_ms += ms;
}

int64_t talk_player_unplayed(const struct talk_player *p, int64_t now_ms)
{
    return p->until_ms > now_ms ? p->until_ms - now_ms : 0;
}

int64_t talk_player_played(const struct talk_player *p, int64_t now_ms)
{
    int64_t played = p->received_ms - talk_player_unplayed(p, now_ms);
    return played > 0 ? played : 0;
}

int64_t talk_player_idle_ms(const struct talk_player *p, int64_t now_ms)
{
    return now_ms > p->until_ms ? now_ms - p->until_ms : 0;
}

int64_t talk_player_clear(struct talk_player *p, int64_t now_ms)
{
    int64_t dropped = talk_player_unplayed(p, now_ms);
    p->until_ms = now_ms;
    p->received_ms -= dropped;
    return dropped;
}
