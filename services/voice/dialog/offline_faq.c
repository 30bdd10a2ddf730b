/*
 * The FAQ skill of the offline dialog engine: fixed answers picked by keywords. On when
 * the agent's "offline" object has "faq": [{"keywords": [...], "answer": "...",
 * "topic": "..."}] (topic is optional and names the entry in "help") or a
 * "visiting_hours" sentence, which becomes one more entry. The entry with the most
 * matching keywords wins; names are matched fuzzily like everywhere else. No state
 * beyond what was answered last.
 */
#include "offline_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

#define KEYWORDS_MAX 16

struct faq_entry {
    const char *topic;
    const char *answer;
    const char *keywords[KEYWORDS_MAX];
    size_t nkeywords;
};

struct faq {
    struct faq_entry *entries;
    size_t count;
};

struct faq_session {
    int last; /* entry answered last, -1 = none */
};

static void faq_destroy(void *state)
{
    struct faq *f = state;
    if (!f)
        return;
    free(f->entries);
    free(f);
}

static int faq_create(json_t *offline, void **state, char *err, size_t err_size)
{
    static const char *const visiting[] = {"visiting", "visit", "visitor", "visitors",
                                           "visiting hours"};
    json_t *list = json_object_get(offline, "faq");
    json_t *vh = json_object_get(offline, "visiting_hours");
    struct faq *f;
    size_t i;
    json_t *item;

    *state = NULL;
    if (list && !json_is_array(list)) {
        snprintf(err, err_size, "offline.faq: must be an array");
        return VAP_EINVAL;
    }
    if (vh && (!json_is_string(vh) || json_string_length(vh) == 0)) {
        snprintf(err, err_size, "offline.visiting_hours: must be a non-empty string");
        return VAP_EINVAL;
    }
    if (json_array_size(list) == 0 && !vh)
        return 0;
    f = calloc(1, sizeof(*f));
    if (f)
        f->entries = calloc(json_array_size(list) + 1, sizeof(f->entries[0]));
    if (!f || !f->entries) {
        faq_destroy(f);
        return VAP_ENOMEM;
    }
    json_array_foreach(list, i, item)
    {
        struct faq_entry *en = &f->entries[f->count];
        json_t *kw = json_object_get(item, "keywords"), *word;
        json_t *answer = json_object_get(item, "answer"), *topic = json_object_get(item, "topic");
        size_t k;
        if (!json_is_array(kw) || json_array_size(kw) == 0 || !json_is_string(answer) ||
            json_string_length(answer) == 0 || (topic && !json_is_string(topic))) {
            snprintf(err, err_size,
                     "offline.faq[%zu]: needs \"keywords\" (non-empty array of strings) and "
                     "\"answer\" (string)", i);
            faq_destroy(f);
            return VAP_EINVAL;
        }
        json_array_foreach(kw, k, word)
        {
            if (!json_is_string(word)) {
                snprintf(err, err_size, "offline.faq[%zu].keywords[%zu]: must be a string", i, k);
                faq_destroy(f);
                return VAP_EINVAL;
            }
            if (en->nkeywords < KEYWORDS_MAX)
                en->keywords[en->nkeywords++] = json_string_value(word);
        }
        en->answer = json_string_value(answer);
        en->topic = topic ? json_string_value(topic) : en->keywords[0];
        f->count++;
    }
    if (vh) {
        struct faq_entry *en = &f->entries[f->count++];
        en->topic = "visiting hours";
        en->answer = json_string_value(vh);
        for (size_t k = 0; k < sizeof(visiting) / sizeof(visiting[0]); k++)
            en->keywords[en->nkeywords++] = visiting[k];
    }
    *state = f;
    return 0;
}

static void *faq_session_new(const void *state)
{
    struct faq_session *s = calloc(1, sizeof(*s));
    (void)state;
    if (s)
        s->last = -1;
    return s;
}

static void faq_session_free(void *ss)
{
    free(ss);
}

static int keyword_hit(const struct off_input *in, const char *keyword)
{
    return strchr(keyword, ' ') ? off_has_phrase(in, keyword) : off_find_name(in, keyword, NULL);
}

/* The best entry and its number of matching keywords. */
static int best_entry(const struct faq *f, const struct off_input *in, size_t *hits)
{
    int best = -1;
    *hits = 0;
    for (size_t i = 0; i < f->count; i++) {
        size_t h = 0;
        for (size_t k = 0; k < f->entries[i].nkeywords; k++)
            h += keyword_hit(in, f->entries[i].keywords[k]) > 0;
        if (h > *hits) {
            *hits = h;
            best = (int)i;
        }
    }
    return best;
}

static int faq_score(const void *state, const void *ss, const struct off_input *in)
{
    size_t hits;
    (void)ss;
    if (best_entry(state, in, &hits) < 0)
        return 0;
    return 2 + 2 * (int)hits; /* a keyword is a strong sign: they are picked per entry */
}

static int faq_reply(const void *state, void *ss, const struct off_input *in,
                     struct off_reply *out)
{
    const struct faq *f = state;
    struct faq_session *s = ss;
    size_t hits;
    int i = best_entry(f, in, &hits);
    if (i < 0)
        return 0;
    off_say(out, "%s", f->entries[i].answer);
    s->last = i;
    return 1;
}

/* "a, b and c" of the first few topics. */
static void say_topics(const struct faq *f, struct off_reply *out, const char *lead)
{
    char list[256];
    size_t o = 0, n = f->count < 4 ? f->count : 4;
    list[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(list + o, sizeof(list) - o, "%s%s", i == 0 ? "" : i + 1 == n ? " and " : ", ",
                         f->entries[i].topic);
        if (w < 0 || (size_t)w >= sizeof(list) - o)
            break;
        o += (size_t)w;
    }
    off_say(out, "%s %s.", lead, list);
}

static void faq_help(const void *state, struct off_reply *out)
{
    say_topics(state, out, "I can answer questions about");
}

static void faq_hint(const void *state, const void *ss, unsigned variant, struct off_reply *out)
{
    (void)ss;
    say_topics(state, out, variant % 2 ? "You can ask me about" : "Try asking about");
}

const struct off_skill off_faq_skill = {
    .name = "faq",
    .create = faq_create,
    .destroy = faq_destroy,
    .session_new = faq_session_new,
    .session_free = faq_session_free,
    .score = faq_score,
    .reply = faq_reply,
    .help = faq_help,
    .hint = faq_hint,
};
