/*
 * The offline dialog engine: a conversation driven by the agent's own data when no LLM
 * is configured. This file is the dispatcher. It switches skills on from the data under
 * the agent's "offline" object (listings -> property search, departments/doctors ->
 * appointments, visiting_hours/faq -> answers), asks every skill how strongly an
 * utterance concerns it, lets the best one answer, and handles what belongs to no skill:
 * greetings, thanks, goodbye, help, "repeat that" and input nobody understood (a specific
 * re-prompt that changes from one miss to the next). The reply is streamed sentence by
 * sentence.
 *
 * The engine state is read-only once created; each session has its own skill states, so
 * one engine serves many sessions on many threads. A reply cancelled before it starts
 * changes nothing; one cancelled midway keeps its effect (a booking stays booked: the
 * visitor heard it being made or interrupted it, and can cancel it by saying so).
 */
#include "dialog_internal.h"
#include "offline_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "agents.h"
#include "err.h"

#define SKILLS_MAX 3

static const struct off_skill *const all_skills[SKILLS_MAX] = {
    &off_realestate_skill, &off_appointments_skill, &off_faq_skill};

struct off_engine {
    size_t count;
    const struct off_skill *skills[SKILLS_MAX];
    void *state[SKILLS_MAX];
};

struct off_session {
    const struct off_engine *e;
    void *ss[SKILLS_MAX];
    int last_skill;    /* the skill that answered last, -1 = none */
    unsigned misses;   /* utterances in a row nobody understood */
    unsigned variant;  /* rotates the wording of social replies and re-prompts */
    int asked_more;    /* the last reply was "anything else?" */
    char last_reply[OFF_REPLY_MAX];
};

void off_say(struct off_reply *r, const char *fmt, ...)
{
    va_list ap;
    int w;
    if (r->len + 2 >= sizeof(r->text))
        return;
    if (r->len > 0 && r->text[r->len - 1] != ' ')
        r->text[r->len++] = ' ';
    va_start(ap, fmt);
    w = vsnprintf(r->text + r->len, sizeof(r->text) - r->len, fmt, ap);
    va_end(ap);
    if (w < 0)
        r->text[r->len] = '\0';
    else if ((size_t)w >= sizeof(r->text) - r->len)
        r->len = sizeof(r->text) - 1; /* cut at the ceiling */
    else
        r->len += (size_t)w;
}

/* --- engine and sessions --- */

static void engine_destroy(void *state)
{
    struct off_engine *e = state;
    if (!e)
        return;
    for (size_t i = 0; i < e->count; i++)
        e->skills[i]->destroy(e->state[i]);
    free(e);
}

static int engine_create(const struct vap_agent *agent, const struct dialog_config *cfg,
                         void **state, char *err, size_t err_size)
{
    struct off_engine *e;
    json_t *offline = agent && agent->json ? json_object_get(agent->json, "offline") : NULL;
    (void)cfg;
    *state = NULL;
    if (offline && !json_is_object(offline)) {
        snprintf(err, err_size, "offline: must be an object");
        return VAP_EINVAL;
    }
    e = calloc(1, sizeof(*e));
    if (!e)
        return VAP_ENOMEM;
    for (size_t i = 0; offline && i < SKILLS_MAX; i++) {
        void *s = NULL;
        int rv = all_skills[i]->create(offline, &s, err, err_size);
        if (rv != 0) {
            engine_destroy(e);
            return rv;
        }
        if (s) {
            e->skills[e->count] = all_skills[i];
            e->state[e->count++] = s;
        }
    }
    *state = e;
    return 0;
}

static void session_free(void *p)
{
    struct off_session *s = p;
    if (!s)
        return;
    for (size_t i = 0; i < s->e->count; i++)
        if (s->ss[i])
            s->e->skills[i]->session_free(s->ss[i]);
    free(s);
}

static void *session_new(void *state)
{
    const struct off_engine *e = state;
    struct off_session *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->e = e;
    s->last_skill = -1;
    for (size_t i = 0; i < e->count; i++) {
        s->ss[i] = e->skills[i]->session_new(e->state[i]);
        if (!s->ss[i]) {
            session_free(s);
            return NULL;
        }
    }
    return s;
}

/* --- what belongs to no skill --- */

struct social {
    int greet, thanks, bye, repeat, help;
};

static int has_phrase_any(const struct off_input *in, const char *const *phrases)
{
    for (const char *const *p = phrases; *p; p++)
        if (off_has_phrase(in, *p))
            return 1;
    return 0;
}

/* Drops n words from the front of the utterance and rescans its numbers. */
static void drop_front(struct off_input *in, size_t n)
{
    memmove(in->words, in->words + n, (in->n - n) * sizeof(in->words[0]));
    in->n -= n;
    off_numbers_scan(in);
}

static void read_social(struct off_input *in, struct social *so)
{
    static const char *const thanks[] = {"thank", "thanks", "cheers", "appreciate", NULL};
    static const char *const bye[] = {"bye", "goodbye", "see you", "thats all", "that is all",
                                      "nothing else", "hang up", "thats it", "that is it",
                                      "have a nice day", "have a good day", NULL};
    static const char *const repeat[] = {"repeat", "say that again", "say again", "pardon",
                                         "come again", "what did you say", "one more time",
                                         "didnt catch", "did not catch", "say it again", NULL};
    static const char *const help[] = {"help", "what can you do", "what can i ask",
                                       "how does this work", "what do you do", "options",
                                       "what can i say", NULL};
    static const char *const yes[] = {"yes", "yeah", "yep", "yup", "sure", "ok", "okay",
                                      "please do", "correct", "right", "go ahead",
                                      "sounds good", "perfect", "absolutely", "definitely",
                                      "do it", "confirm", "that works", "alright", "great", NULL};
    static const char *const no[] = {"no", "nope", "nah", "not really", "dont", "do not",
                                     "never mind", "nevermind", NULL};
    static const char *const greet1[] = {"hi", "hello", "hey", "howdy", "hiya", NULL};
    memset(so, 0, sizeof(*so));
    /* greetings only at the start, so "good morning" is not a time of day */
    for (;;) {
        if (in->n >= 1) {
            int g = 0;
            for (const char *const *p = greet1; *p; p++)
                g |= strcmp(in->words[0], *p) == 0;
            if (g) {
                so->greet = 1;
                drop_front(in, 1);
                continue;
            }
        }
        if (in->n >= 2 && strcmp(in->words[0], "good") == 0 &&
            (strcmp(in->words[1], "morning") == 0 || strcmp(in->words[1], "afternoon") == 0 ||
             strcmp(in->words[1], "evening") == 0 || strcmp(in->words[1], "day") == 0)) {
            so->greet = 1;
            drop_front(in, 2);
            continue;
        }
        break;
    }
    so->thanks = has_phrase_any(in, thanks);
    so->bye = has_phrase_any(in, bye);
    so->repeat = has_phrase_any(in, repeat);
    so->help = has_phrase_any(in, help);
    in->yes = has_phrase_any(in, yes);
    in->no = has_phrase_any(in, no);
    if (in->no && in->yes && (off_has_phrase(in, "no problem") || off_has_phrase(in, "why not")))
        in->no = 0;
}

/* Whether the utterance is only social words (nothing a skill could use). */
static int only_social(const struct off_input *in)
{
    static const char *const filler[] = {
        "thank", "thanks", "you", "very", "much", "so", "a", "lot", "bye", "goodbye", "ok",
        "okay", "cheers", "great", "that", "thats", "is", "all", "it", "for", "now", "then",
        "no", "yes", "please", "and", "see", "nothing", "else", "have", "nice", "good", "day",
        "appreciate", "alright", "perfect", "the", "help", "again", "repeat", "say", "can",
        "could", "what", "did", "pardon", "me", "sorry", "oh", "well", "i", "hang", "up",
        "there", "how", "are", "doing", "today", "sounds", "works", "fine", NULL};
    for (size_t i = 0; i < in->n; i++) {
        int f = 0;
        for (const char *const *p = filler; *p && !f; p++)
            f = strcmp(in->words[i], *p) == 0;
        if (!f)
            return 0;
    }
    return 1;
}

static const char *pick(const char *const *options, size_t count, unsigned variant)
{
    return options[variant % count];
}

static void say_help(const struct off_engine *e, int full, struct off_reply *out)
{
    for (size_t i = 0; i < e->count; i++)
        e->skills[i]->help(e->state[i], out);
    if (e->count == 0)
        off_say(out, "I'm afraid I have no information to look things up here.");
    if (full)
        off_say(out, "You can also ask me to repeat, or say goodbye when you are done.");
}

static void say_not_understood(struct off_session *s, struct off_reply *out)
{
    static const char *const openers[] = {
        "Sorry, I didn't quite catch that.", "I'm not sure I understood.",
        "Sorry, I missed that.", "Hmm, I didn't get that one."};
    const struct off_engine *e = s->e;
    int k = s->last_skill >= 0 ? s->last_skill : 0;
    s->misses++;
    off_say(out, "%s", pick(openers, 4, s->variant));
    if (s->misses >= 3) {
        say_help(e, 1, out);
        s->misses = 0;
        return;
    }
    if (e->count > 0)
        e->skills[k]->hint(e->state[k], s->ss[k], s->variant, out);
    else
        off_say(out, "Could you say it again in a few words?");
}

static void say_previous(struct off_session *s, const struct dialog_history *h,
                         struct off_reply *out)
{
    const char *prev = s->last_reply[0] ? s->last_reply : NULL;
    for (size_t i = h ? h->count : 0; !prev && i > 0; i--)
        if (h->turns[i - 1].role == DIALOG_AGENT && h->turns[i - 1].text)
            prev = h->turns[i - 1].text;
    if (prev)
        off_say(out, "Of course. %s", prev);
    else
        off_say(out, "I haven't said anything yet. How can I help you?");
}

/* Builds the reply text; the only place session state changes. */
static void compose(struct off_session *s, const struct dialog_history *h, struct off_input *in,
                    struct off_reply *out)
{
    static const char *const welcome[] = {"You're welcome!", "My pleasure!", "Glad to help!"};
    static const char *const more[] = {"Is there anything else I can help with?",
                                       "Anything else I can do for you?",
                                       "What else can I help you with?"};
    static const char *const farewell[] = {"Thank you for calling. Goodbye!",
                                           "Goodbye, and have a nice day!",
                                           "Thanks for calling, take care. Goodbye!"};
    const struct off_engine *e = s->e;
    struct social so;
    int best = -1, best_score = 0;
    int asked_more = s->asked_more;

    read_social(in, &so);
    s->variant++;
    s->asked_more = 0;
    if (so.repeat && only_social(in)) {
        say_previous(s, h, out);
        return;
    }
    for (size_t i = 0; i < e->count; i++) {
        int sc = e->skills[i]->score(e->state[i], s->ss[i], in);
        if (sc > 0 && (int)i == s->last_skill)
            sc++;
        if (sc > best_score) {
            best_score = sc;
            best = (int)i;
        }
    }
    if (so.bye && (best_score < 3 || only_social(in))) {
        off_say(out, "%s", pick(farewell, 3, s->variant));
        return;
    }
    if (so.help && best_score < 3) {
        say_help(e, 1, out);
        s->misses = 0;
        return;
    }
    if (best >= 0) {
        struct off_reply skill = {.len = 0};
        if (e->skills[best]->reply(e->state[best], s->ss[best], in, &skill)) {
            if (so.greet)
                off_say(out, "Hello!");
            off_say(out, "%s", skill.text);
            s->asked_more = strcasestr(skill.text, "anything else") != NULL;
            s->last_skill = best;
            s->misses = 0;
            return;
        }
    }
    s->misses = 0;
    if (in->no && asked_more && only_social(in)) {
        off_say(out, "%s", pick(farewell, 3, s->variant));
    } else if (so.thanks) {
        off_say(out, "%s %s", pick(welcome, 3, s->variant), pick(more, 3, s->variant));
        s->asked_more = 1;
    } else if (so.greet && only_social(in)) {
        off_say(out, "Hello!");
        say_help(e, 0, out);
    } else if (in->no && asked_more) {
        off_say(out, "%s", pick(farewell, 3, s->variant));
    } else if (in->no && only_social(in)) {
        off_say(out, "All right. %s", pick(more, 3, s->variant));
        s->asked_more = 1;
    } else if (in->yes && only_social(in)) {
        off_say(out, "Sure, go ahead.");
        if (e->count > 0) {
            int k = s->last_skill >= 0 ? s->last_skill : 0;
            e->skills[k]->hint(e->state[k], s->ss[k], s->variant, out);
        }
    } else if (so.repeat) {
        say_previous(s, h, out);
    } else {
        say_not_understood(s, out);
    }
}

/* --- streaming --- */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t count_words(const char *s)
{
    size_t n = 0;
    int in_word = 0;
    for (; s && *s; s++) {
        int w = *s != ' ' && *s != '\t' && *s != '\n';
        n += w && !in_word;
        in_word = w;
    }
    return n;
}

/* Length of the first sentence of text, with the spaces after it. */
static size_t sentence_len(const char *text)
{
    size_t i = 0;
    for (; text[i]; i++)
        if ((text[i] == '.' || text[i] == '?' || text[i] == '!') && text[i + 1] == ' ') {
            i++;
            while (text[i] == ' ')
                i++;
            return i;
        }
    return i;
}

static int engine_reply(void *state, void *session_state, const struct dialog_history *history,
                        const char *user_text, dialog_emit_fn emit, void *user,
                        const atomic_int *cancel, struct dialog_result *res)
{
    struct off_session *s = session_state;
    struct off_input in;
    struct off_reply out = {.len = 0};
    long long t0 = now_ms();
    time_t now = time(NULL);
    struct tm tm;
    size_t words_in = count_words(user_text);
    (void)state;

    memset(res, 0, sizeof(*res));
    if (cancel && atomic_load(cancel))
        return VAP_ECANCELED;
    off_input_parse(user_text, &in);
    in.today = localtime_r(&now, &tm) ? (tm.tm_wday + 6) % 7 : 0;
    compose(s, history, &in, &out);
    memcpy(s->last_reply, out.text, out.len + 1);

    for (size_t i = 0; history && i < history->count; i++)
        words_in += count_words(history->turns[i].text);
    res->tokens_in = (int64_t)words_in;
    for (size_t at = 0; at < out.len;) {
        size_t len = sentence_len(out.text + at);
        if (cancel && atomic_load(cancel))
            return VAP_ECANCELED;
        if (at == 0)
            res->first_token_ms = now_ms() - t0;
        if (emit && emit(user, out.text + at, len) != 0)
            return VAP_ECANCELED;
        res->tokens_out += (int64_t)count_words(out.text + at) -
                           (int64_t)count_words(out.text + at + len);
        at += len;
    }
    return 0;
}

const struct dialog_engine_ops dialog_offline_ops = {
    .name = "offline",
    .create = engine_create,
    .destroy = engine_destroy,
    .session_new = session_new,
    .session_free = session_free,
    .reply = engine_reply,
};
