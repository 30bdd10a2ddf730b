/*
 * A session's input thread: the visitor's side of the conversation. Audio frames are
 * decoded to 16 kHz, cleaned of the agent's echo, and run through the VAD; speech goes
 * to the recogniser (with the pre-roll, so the first syllable is heard), partial
 * transcripts are sent while the visitor speaks, and the turn ends either after the
 * agent's full end-of-turn silence or, sooner, after a short pause when what was said
 * already sounds complete (not ending in "and", "the", "um"...): a short pause between
 * words never ends a turn. Speech over the agent pauses its audio at once; only
 * sustained speech (barge_in_ms) cancels the reply, so a cough or an "mhm" lets it go
 * on. Client events (input_text, playback, interrupt, end) are handled here too.
 */
#include <ctype.h>
#include <string.h>

#include "clock.h"
#include "json.h"
#include "log.h"
#include "session.h"

#define INPUT_MAX_SAMPLES 5760 /* 120 ms at 48 kHz, already resampled to 16 kHz */
#define PARTIAL_EVERY_MS 250
#define INPUT_TEXT_MAX 2000
#define PLAYBACK_MAX_MS 86400000.0

/* Words after which a sentence is very likely to go on. */
static const char *const continuation_words[] = {
    "a",    "an",   "the",  "and",   "or",    "but",  "to",    "in",   "on",   "at",
    "for",  "with", "of",   "my",    "i",     "um",   "uh",    "is",   "are",  "because",
    "so",   "like", "about", "from", "than",  "under", "over", "near", "maybe", "what",
    "which", "where", "some", "any", "that",  "this", "your",  "our",  "me",   "it's",
    "was",  "were", "be",   "if",    "when",  "then", "also",  "just", "very", "um",
    "er",   "hmm",  "want", "need",  "looking", "around", "between", "by", "into", NULL};

/*
 * Whether a hypothesis sounds like a finished turn: at least two words, and not ending in
 * a word after which a sentence very likely goes on. A single word ("stop,", "well")
 * waits for the full end-of-turn silence: it is often the start of a longer sentence.
 */
static bool sounds_complete(const char *text)
{
    const char *end = text + strlen(text), *start;
    int n_words = 0;
    for (const char *p = text; *p; p++)
        if (!isspace((unsigned char)*p) && (p == text || isspace((unsigned char)p[-1])))
            n_words++;
    while (end > text && isspace((unsigned char)end[-1]))
        end--;
    if (end == text || n_words < 2)
        return false;
    start = end;
    while (start > text && !isspace((unsigned char)start[-1]))
        start--;
    for (const char *const *w = continuation_words; *w; w++)
        if (strlen(*w) == (size_t)(end - start) && strncmp(*w, start, (size_t)(end - start)) == 0)
            return false;
    return true;
}

/* The recogniser's input; telephone audio is widened for its 16 kHz model first. */
static void feed_stt(struct voice_session *s, const int16_t *pcm, size_t n)
{
    int16_t wide[AUDIO_RATE];
    if (s->codec != AUDIO_CODEC_MULAW) {
        stt_feed(s->stt, pcm, n);
        return;
    }
    while (n > 0) {
        /* Whole chunks from the end keep each sample's parity (see the function). */
        size_t take = n > AUDIO_RATE ? AUDIO_RATE - (n - AUDIO_RATE) % 2 : n;
        memcpy(wide, pcm, take * sizeof(int16_t));
        audio_widen_narrowband(wide, take);
        stt_feed(s->stt, wide, take);
        pcm += take;
        n -= take;
    }
}

static void begin_utterance(struct voice_session *s, int64_t now, bool agent_audible)
{
    int16_t pre[AUDIO_RATE]; /* up to 1 s of pre-roll */
    size_t n;
    session_send_event(s, ev_simple("speech.started"));
    s->utterance = true;
    s->barged = false;
    s->paused_reply = false;
    s->partial[0] = '\0';
    s->last_partial_ms = now;
    s->last_voice_ms = now;
    if (stt_begin(s->stt) != 0) { /* no decoder could be lent: this turn goes unheard */
        voice_metrics_error(VOICE_STAGE_STT);
        vap_warn(s->request_id, "stt: no decoder for session=%s", s->id);
    }
    n = vad_pre_roll(s->vad, pre, sizeof(pre) / sizeof(pre[0]));
    if (n)
        feed_stt(s, pre, n);
    if (agent_audible) {
        /* Stop the agent's voice at once; cancel only if the speech is sustained. */
        playout_pause(s, true);
        s->paused_reply = true;
    }
}

static void finish_utterance(struct voice_session *s, int64_t now)
{
    char text[512];
    int64_t t0 = vap_now_ms();
    int64_t eot_ms = t0 - s->last_voice_ms;
    int n;
    int turn;

    s->utterance = false;
    session_send_event(s, ev_simple("speech.stopped"));
    n = stt_end(s->stt, text, sizeof(text));
    if (n < 0) {
        voice_metrics_error(VOICE_STAGE_STT);
        text[0] = '\0';
    }
    if (!text[0] || (s->paused_reply && !s->barged)) {
        /* Noise, or a short backchannel over the agent: let the agent go on. */
        if (s->paused_reply)
            playout_pause(s, false);
        s->paused_reply = false;
        return;
    }
    turn = s->next_turn++;
    session_send_event(s, ev_transcript("transcript.final", turn, text));
    atomic_fetch_add(&s->turns, 1);
    session_submit_turn(s, turn, text, s->last_voice_ms, eot_ms, vap_now_ms() - t0);
    (void)now;
}

static void process_frame(struct voice_session *s, const int16_t *frame)
{
    int16_t clean[AUDIO_FRAME_SAMPLES];
    int64_t now = vap_now_ms();
    bool audible = playout_active(s);
    enum vad_event ev;

    atomic_fetch_add(&s->audio_in_ms, AUDIO_FRAME_MS);
    pthread_mutex_lock(&s->play_lock); /* the echo filter is shared with playout */
    echo_filter_capture(s->echo, frame, clean);
    pthread_mutex_unlock(&s->play_lock);
    vad_set_agent_speaking(s->vad, audible);
    ev = vad_process(s->vad, clean);

    if (ev == VAD_SPEECH_START) {
        begin_utterance(s, now, audible);
    } else if (!s->utterance && vad_in_speech(s->vad) && vad_silence_ms(s->vad) == 0) {
        /* The visitor went on after a turn we ended early: a new utterance. */
        begin_utterance(s, now, audible);
    } else if (s->utterance) {
        feed_stt(s, clean, AUDIO_FRAME_SAMPLES);
    }
    if (s->utterance && vad_silence_ms(s->vad) == 0)
        s->last_voice_ms = now;

    if (ev == VAD_BARGE_IN && s->utterance && !s->barged && s->paused_reply) {
        s->barged = true;
        session_interrupt(s);
    }
    if (!s->utterance)
        return;
    if (ev == VAD_SPEECH_END) {
        finish_utterance(s, now);
        return;
    }
    if (now - s->last_partial_ms >= PARTIAL_EVERY_MS) {
        char text[512];
        s->last_partial_ms = now;
        stt_partial(s->stt, text, sizeof(text));
        if (text[0] && strcmp(text, s->partial) != 0) {
            snprintf(s->partial, sizeof(s->partial), "%s", text);
            session_send_event(s, ev_transcript("transcript.partial", s->next_turn, text));
        }
    }
    /* A complete-sounding sentence after a short pause ends the turn early. */
    if (vad_silence_ms(s->vad) >= s->w->cfg.min_turn_silence_ms &&
        vad_silence_ms(s->vad) < s->rt->end_silence_ms && (!s->paused_reply || s->barged)) {
        char text[512];
        stt_partial(s->stt, text, sizeof(text));
        if (sounds_complete(text) && strcmp(text, s->partial) == 0)
            finish_utterance(s, now);
        else if (strcmp(text, s->partial) != 0)
            snprintf(s->partial, sizeof(s->partial), "%s", text);
    }
}

static void handle_audio(struct voice_session *s, const uint8_t *data, size_t len)
{
    int16_t pcm[INPUT_MAX_SAMPLES];
    int n = audio_decode(s->dec, data, len, pcm, INPUT_MAX_SAMPLES);
    if (n < 0) {
        session_send_error(s, "bad_audio",
                           "An audio frame could not be decoded (check codec and sample_rate)");
        return;
    }
    for (int i = 0; i < n;) {
        size_t take = AUDIO_FRAME_SAMPLES - s->frame_fill;
        if (take > (size_t)(n - i))
            take = (size_t)(n - i);
        memcpy(s->frame + s->frame_fill, pcm + i, take * sizeof(int16_t));
        s->frame_fill += take;
        i += (int)take;
        if (s->frame_fill == AUDIO_FRAME_SAMPLES) {
            process_frame(s, s->frame);
            s->frame_fill = 0;
        }
    }
}

static void handle_event(struct voice_session *s, const char *text)
{
    json_error_t jerr;
    json_t *ev = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    const char *type = ev ? json_string_value(json_object_get(ev, "type")) : NULL;

    if (!ev || !json_is_object(ev)) {
        session_send_error(s, "invalid_json", "Events must be JSON objects with a \"type\"");
    } else if (!type) {
        session_send_error(s, "invalid_event", "The event has no \"type\"");
    } else if (strcmp(type, "input_text") == 0) {
        const char *t = json_string_value(json_object_get(ev, "text"));
        size_t len = t ? strlen(t) : 0;
        while (t && len && isspace((unsigned char)*t)) {
            t++;
            len--;
        }
        if (!t || !len) {
            session_send_error(s, "invalid_event", "input_text needs a non-empty \"text\"");
        } else if (len > INPUT_TEXT_MAX) {
            session_send_error(s, "invalid_event", "input_text is limited to 2000 characters");
        } else {
            int turn = s->next_turn++;
            atomic_fetch_add(&s->turns, 1);
            session_submit_turn(s, turn, t, vap_now_ms(), 0, 0);
        }
    } else if (strcmp(type, "playback") == 0) {
        json_t *turn = json_object_get(ev, "turn_id"), *played = json_object_get(ev, "played_ms");
        /* A day of audio is far more than any reply; the bound keeps the ms -> samples
         * arithmetic of playout.c from overflowing. */
        if (!json_is_integer(turn) || !json_is_number(played) ||
            !(json_number_value(played) >= 0 && json_number_value(played) <= PLAYBACK_MAX_MS)) {
            session_send_error(s, "invalid_event",
                               "playback needs turn_id and played_ms (0 to 86400000)");
        } else {
            pthread_mutex_lock(&s->play_lock);
            if (s->play_turn == json_integer_value(turn))
                s->client_played_ms = (int64_t)json_number_value(played);
            pthread_mutex_unlock(&s->play_lock);
        }
    } else if (strcmp(type, "interrupt") == 0) {
        session_interrupt(s);
    } else if (strcmp(type, "end") == 0) {
        session_end(s, "client_ended", 1000);
    } else {
        char msg[128];
        snprintf(msg, sizeof(msg), "Unknown event type \"%.*s\"", (int)vap_utf8_prefix(type, 40),
                 type);
        session_send_error(s, "unknown_event", msg);
    }
    json_decref(ev);
}

void *session_input_main(void *arg)
{
    struct voice_session *s = arg;
    while (!atomic_load(&s->ended)) {
        struct session_item *it;
        pthread_mutex_lock(&s->qlock);
        while (!s->qhead && !atomic_load(&s->ended))
            pthread_cond_wait(&s->qcond, &s->qlock);
        it = s->qhead;
        if (it) {
            s->qhead = it->next;
            if (!s->qhead)
                s->qtail = NULL;
            s->qlen--;
        }
        pthread_mutex_unlock(&s->qlock);
        if (!it)
            continue;
        if (it->kind == VAP__LINK_FRAME__KIND__AUDIO)
            handle_audio(s, it->data, it->len);
        else if (it->kind == VAP__LINK_FRAME__KIND__EVENT)
            handle_event(s, (const char *)it->data);
        free(it);
    }
    if (s->utterance)
        stt_abort(s->stt);
    atomic_store(&s->input_exited, 1);
    return NULL;
}
