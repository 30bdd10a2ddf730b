/*
 * The training corpus of an agent's language model, made from its configuration: what
 * visitors say is data in the agent file, not code. "speech.phrases" are templates
 * ("is {doctor} available on {weekday}") whose slots are listed in "speech.slots"; a
 * slot's values are literal strings or "@path" references into the agent document
 * ("@offline.doctors.*.name", '*' = every element; a "|last" suffix keeps the last
 * word: "@offline.doctors.*.name|last" -> "patel"). Templates are expanded over their
 * slots' values (capped, spread evenly when the product is larger), and every
 * vocabulary word and slot value is also a sentence of its own.
 */
#include "stt_internal.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"

#define MAX_SLOT_VALUES 256
#define MAX_TEMPLATE_SLOTS 8
#define MAX_EXPANSIONS 3000 /* sentences per template */

struct slot {
    const char *name;
    char *values[MAX_SLOT_VALUES]; /* normalised, distinct */
    size_t n;
};

struct ctx {
    const char *agent_id;
    char *err;
    size_t err_size;
    struct slot *slots;
    size_t n_slots;
};

static int add_value(struct ctx *c, struct slot *s, const char *text, int last_word)
{
    char norm[STT_MAX_SENTENCE];
    const char *v = norm;
    int rv = stt_norm_text(text, norm, sizeof(norm));
    if (rv < 0) {
        snprintf(c->err, c->err_size, "%s: speech.slots.%s: value too long", c->agent_id,
                 s->name);
        return VAP_EINVAL;
    }
    if (last_word && strrchr(norm, ' '))
        v = strrchr(norm, ' ') + 1;
    if (*v == '\0')
        return 0;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->values[i], v) == 0)
            return 0;
    if (s->n == MAX_SLOT_VALUES) {
        snprintf(c->err, c->err_size, "%s: speech.slots.%s: more than %d values", c->agent_id,
                 s->name, MAX_SLOT_VALUES);
        return VAP_EINVAL;
    }
    s->values[s->n] = strdup(v);
    if (!s->values[s->n])
        return VAP_ENOMEM;
    s->n++;
    return 0;
}

/* Adds every value found at path (dot-separated, '*' = each element) under node. */
static int walk(struct ctx *c, struct slot *s, json_t *node, const char *path, int last_word)
{
    char key[128];
    size_t len = strcspn(path, ".");
    const char *rest = path[len] ? path + len + 1 : NULL;
    json_t *child;
    char num[32];
    int rv = 0;
    if (!node)
        return 0;
    if (*path == '\0') {
        if (json_is_string(node))
            return add_value(c, s, json_string_value(node), last_word);
        if (json_is_integer(node)) {
            snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(node));
            return add_value(c, s, num, last_word);
        }
        return 0;
    }
    if (len >= sizeof(key))
        return 0;
    memcpy(key, path, len);
    key[len] = '\0';
    if (strcmp(key, "*") == 0) {
        size_t i;
        const char *k;
        if (json_is_array(node)) {
            json_array_foreach(node, i, child)
            {
                rv = walk(c, s, child, rest ? rest : "", last_word);
                if (rv != 0)
                    return rv;
            }
        } else if (json_is_object(node)) {
            json_object_foreach(node, k, child)
            {
                rv = walk(c, s, child, rest ? rest : "", last_word);
                if (rv != 0)
                    return rv;
            }
        }
        return 0;
    }
    return walk(c, s, json_object_get(node, key), rest ? rest : "", last_word);
}

static int load_slots(struct ctx *c, json_t *agent, json_t *slots)
{
    const char *name;
    json_t *values;
    size_t k = 0;
    if (!slots)
        return 0;
    if (!json_is_object(slots)) {
        snprintf(c->err, c->err_size, "%s: speech.slots: must be an object", c->agent_id);
        return VAP_EINVAL;
    }
    c->slots = calloc(json_object_size(slots) + 1, sizeof(*c->slots));
    if (!c->slots)
        return VAP_ENOMEM;
    json_object_foreach(slots, name, values)
    {
        struct slot *s = &c->slots[k++];
        size_t i;
        json_t *v;
        s->name = name;
        c->n_slots = k;
        if (!json_is_array(values)) {
            snprintf(c->err, c->err_size, "%s: speech.slots.%s: must be an array of strings",
                     c->agent_id, name);
            return VAP_EINVAL;
        }
        json_array_foreach(values, i, v)
        {
            const char *text = json_string_value(v);
            int rv;
            if (!text) {
                snprintf(c->err, c->err_size, "%s: speech.slots.%s[%zu]: must be a string",
                         c->agent_id, name, i);
                return VAP_EINVAL;
            }
            if (text[0] == '@') {
                char path[256];
                size_t plen = strcspn(text + 1, "|");
                int last = strcmp(text + 1 + plen, "|last") == 0;
                if (plen >= sizeof(path) || (text[1 + plen] && !last)) {
                    snprintf(c->err, c->err_size, "%s: speech.slots.%s[%zu]: bad path",
                             c->agent_id, name, i);
                    return VAP_EINVAL;
                }
                memcpy(path, text + 1, plen);
                path[plen] = '\0';
                rv = walk(c, s, agent, path, last);
            } else {
                rv = add_value(c, s, text, 0);
            }
            if (rv != 0)
                return rv;
        }
        if (s->n == 0) {
            snprintf(c->err, c->err_size, "%s: speech.slots.%s: no values", c->agent_id, name);
            return VAP_EINVAL;
        }
    }
    return 0;
}

static struct slot *find_slot(struct ctx *c, const char *name, size_t n)
{
    for (size_t i = 0; i < c->n_slots; i++)
        if (strlen(c->slots[i].name) == n && memcmp(c->slots[i].name, name, n) == 0)
            return &c->slots[i];
    return NULL;
}

/* Fills template t with value pick[i] of its i-th slot and hands the sentence to fn. */
static int emit(const char *t, struct slot **used, const size_t *pick, stt_sentence_fn fn,
                void *user)
{
    char raw[STT_MAX_SENTENCE * 2], norm[STT_MAX_SENTENCE];
    size_t len = 0, k = 0;
    for (const char *p = t; *p;) {
        const char *piece = p;
        size_t n;
        if (*p == '{') {
            piece = used[k]->values[pick[k]];
            n = strlen(piece);
            k++;
            p = strchr(p, '}') + 1;
        } else {
            n = strcspn(p, "{");
            p += n;
        }
        if (len + n + 2 > sizeof(raw))
            return 0; /* too long to be something people say: skip */
        memcpy(raw + len, piece, n);
        len += n;
        raw[len++] = ' ';
    }
    raw[len] = '\0';
    if (stt_norm_text(raw, norm, sizeof(norm)) <= 0)
        return 0;
    return fn(user, norm);
}

static int expand(struct ctx *c, const char *t, size_t index, stt_sentence_fn fn, void *user)
{
    struct slot *used[MAX_TEMPLATE_SLOTS];
    size_t n_used = 0, pick[MAX_TEMPLATE_SLOTS];
    double product = 1, step;
    for (const char *p = strchr(t, '{'); p; p = strchr(p + 1, '{')) {
        const char *end = strchr(p, '}');
        struct slot *s = end ? find_slot(c, p + 1, (size_t)(end - p - 1)) : NULL;
        if (!s || n_used == MAX_TEMPLATE_SLOTS) {
            snprintf(c->err, c->err_size, "%s: speech.phrases[%zu]: %s", c->agent_id, index,
                     s ? "too many slots" : "unknown or unclosed {slot}");
            return VAP_EINVAL;
        }
        used[n_used++] = s;
        product *= (double)s->n;
    }
    step = product > MAX_EXPANSIONS ? product / MAX_EXPANSIONS : 1;
    for (double k = 0; k < product; k += step) {
        /* combination number k, mixed radix; spread evenly when capped */
        unsigned long long r = (unsigned long long)k;
        int rv;
        for (size_t i = 0; i < n_used; i++) {
            pick[i] = (size_t)(r % used[i]->n);
            r /= used[i]->n;
        }
        rv = emit(t, used, pick, fn, user);
        if (rv != 0)
            return rv;
    }
    return 0;
}

static void free_slots(struct ctx *c)
{
    for (size_t i = 0; i < c->n_slots; i++)
        for (size_t j = 0; j < c->slots[i].n; j++)
            free(c->slots[i].values[j]);
    free(c->slots);
}

int stt_corpus_build(json_t *agent, const char *agent_id, stt_sentence_fn fn, void *user,
                     char *err, size_t err_size)
{
    struct ctx c = {agent_id, err, err_size, NULL, 0};
    json_t *speech = json_object_get(agent, "speech");
    json_t *phrases = json_object_get(speech, "phrases");
    json_t *v;
    size_t i;
    char norm[STT_MAX_SENTENCE];
    int rv = 0;
    if (speech && !json_is_object(speech)) {
        snprintf(err, err_size, "%s: speech: must be an object", agent_id);
        return VAP_EINVAL;
    }
    if (phrases && !json_is_array(phrases)) {
        snprintf(err, err_size, "%s: speech.phrases: must be an array of strings", agent_id);
        return VAP_EINVAL;
    }
    json_array_foreach(json_object_get(agent, "vocabulary"), i, v)
    {
        if (stt_norm_text(json_string_value(v) ? json_string_value(v) : "", norm,
                          sizeof(norm)) > 0)
            rv = fn(user, norm);
        if (rv != 0)
            return rv;
    }
    rv = load_slots(&c, agent, json_object_get(speech, "slots"));
    for (size_t s = 0; rv == 0 && s < c.n_slots; s++)
        for (size_t k = 0; rv == 0 && k < c.slots[s].n; k++)
            rv = fn(user, c.slots[s].values[k]);
    json_array_foreach(phrases, i, v)
    {
        if (rv != 0)
            break;
        if (!json_is_string(v)) {
            snprintf(err, err_size, "%s: speech.phrases[%zu]: must be a string", agent_id, i);
            rv = VAP_EINVAL;
            break;
        }
        rv = expand(&c, json_string_value(v), i, fn, user);
    }
    free_slots(&c);
    return rv;
}
