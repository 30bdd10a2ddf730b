/* Loading and validating agent configuration files (see agents.h). */
#include "agents.h"

#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "err.h"

#define AGENT_FILE_MAX (1024 * 1024)
#define AGENTS_MAX 256

struct vap_agents {
    atomic_int refs;
    size_t count;
    struct vap_agent items[AGENTS_MAX];
};

/* Fields a frontend may see. Offline dialog data and anything else stay inside. */
static const char *const public_fields[] = {
    "id", "name", "description", "startup_message", "system_prompt", "language", "voice",
    "tts", "end_of_turn_silence_ms", "vocabulary", "llm",
};

static int valid_id(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 32)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

static int need_string(json_t *doc, const char *field, size_t max, const char *file, char *err,
                       size_t err_size)
{
    json_t *v = json_object_get(doc, field);
    if (!json_is_string(v)) {
        snprintf(err, err_size, "%s: %s: required string missing or not a string", file, field);
        return VAP_EINVAL;
    }
    if (json_string_length(v) == 0 || json_string_length(v) > max) {
        snprintf(err, err_size, "%s: %s: length must be 1..%zu", file, field, max);
        return VAP_EINVAL;
    }
    return 0;
}

/* Whether any key at any depth looks like a credential (case-insensitive). */
static int secret_key_in(json_t *node, const char *file, char *err, size_t err_size)
{
    static const char *const words[] = {"api_key", "apikey", "api-key", "secret", "password",
                                        "token", "authorization", "credential"};
    const char *key;
    json_t *v;
    size_t i;
    if (json_is_array(node)) {
        json_array_foreach(node, i, v) if (secret_key_in(v, file, err, err_size)) return 1;
        return 0;
    }
    if (!json_is_object(node))
        return 0;
    json_object_foreach(node, key, v)
    {
        for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
            if (strcasestr(key, words[i])) {
                snprintf(err, err_size, "%s: %s: secrets do not belong in agent files", file, key);
                return 1;
            }
        if (secret_key_in(v, file, err, err_size))
            return 1;
    }
    return 0;
}

int vap_agent_validate(json_t *doc, const char *file, char *err, size_t err_size)
{
    static const struct {
        const char *field;
        size_t max;
    } strings[] = {{"id", 32},          {"name", 200},           {"description", 2000},
                   {"startup_message", 2000}, {"system_prompt", 20000}, {"language", 35},
                   {"voice", 100}};
    json_t *v;
    const char *key;

    if (!json_is_object(doc)) {
        snprintf(err, err_size, "%s: the document must be a JSON object", file);
        return VAP_EINVAL;
    }
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
        if (need_string(doc, strings[i].field, strings[i].max, file, err, err_size) != 0)
            return VAP_EINVAL;
    if (!valid_id(json_string_value(json_object_get(doc, "id")))) {
        snprintf(err, err_size, "%s: id: only a-z, 0-9, '_' and '-' (1..32 characters)", file);
        return VAP_EINVAL;
    }
    v = json_object_get(doc, "end_of_turn_silence_ms");
    if (v && (!json_is_integer(v) || json_integer_value(v) < 200 ||
              json_integer_value(v) > 5000)) {
        snprintf(err, err_size, "%s: end_of_turn_silence_ms: must be an integer 200..5000", file);
        return VAP_EINVAL;
    }
    v = json_object_get(doc, "vocabulary");
    if (v) {
        size_t i;
        json_t *word;
        if (!json_is_array(v)) {
            snprintf(err, err_size, "%s: vocabulary: must be an array of strings", file);
            return VAP_EINVAL;
        }
        json_array_foreach(v, i, word) if (!json_is_string(word))
        {
            snprintf(err, err_size, "%s: vocabulary[%zu]: must be a string", file, i);
            return VAP_EINVAL;
        }
    }
    v = json_object_get(doc, "offline");
    if (v && !json_is_object(v)) {
        snprintf(err, err_size, "%s: offline: must be an object", file);
        return VAP_EINVAL;
    }
    (void)key;
    /* Keys belong in the environment, never in a file that is served in part. */
    if (secret_key_in(doc, file, err, err_size))
        return VAP_EINVAL;
    return 0;
}

static void fill_agent(struct vap_agent *a, json_t *doc)
{
    json_t *eot = json_object_get(doc, "end_of_turn_silence_ms");
    a->json = doc;
    a->id = json_string_value(json_object_get(doc, "id"));
    a->name = json_string_value(json_object_get(doc, "name"));
    a->description = json_string_value(json_object_get(doc, "description"));
    a->startup_message = json_string_value(json_object_get(doc, "startup_message"));
    a->system_prompt = json_string_value(json_object_get(doc, "system_prompt"));
    a->language = json_string_value(json_object_get(doc, "language"));
    a->voice = json_string_value(json_object_get(doc, "voice"));
    a->end_of_turn_silence_ms = eot ? (int)json_integer_value(eot) : 700;
    a->public_json = json_object();
    for (size_t i = 0; i < sizeof(public_fields) / sizeof(public_fields[0]); i++) {
        json_t *v = json_object_get(doc, public_fields[i]);
        if (v)
            json_object_set(a->public_json, public_fields[i], v);
    }
}

static int by_id(const void *x, const void *y)
{
    return strcmp(((const struct vap_agent *)x)->id, ((const struct vap_agent *)y)->id);
}

static int has_json_suffix(const char *name)
{
    size_t n = strlen(name);
    return n > 5 && strcmp(name + n - 5, ".json") == 0 && name[0] != '.';
}

static void report(vap_agents_error_fn on_error, void *user, const char *msg)
{
    if (on_error)
        on_error(user, msg);
}

int vap_agents_load(const char *dir, vap_agents_error_fn on_error, void *user,
                    struct vap_agents **out)
{
    struct vap_agents *set;
    struct dirent *ent;
    DIR *d = opendir(dir);
    char path[4096], err[512];

    if (!d)
        return VAP_ENOTFOUND;
    set = calloc(1, sizeof(*set));
    if (!set) {
        closedir(d);
        return VAP_ENOMEM;
    }
    atomic_store(&set->refs, 1);
    while ((ent = readdir(d)) != NULL) {
        json_error_t jerr;
        json_t *doc;
        if (!has_json_suffix(ent->d_name))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, ent->d_name);
        {
            struct stat st;
            if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > AGENT_FILE_MAX) {
                snprintf(err, sizeof(err), "%s: not a regular file of at most %d bytes",
                         ent->d_name, AGENT_FILE_MAX);
                report(on_error, user, err);
                continue;
            }
        }
        doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
        if (!doc) {
            snprintf(err, sizeof(err), "%s: line %d: %s", ent->d_name, jerr.line, jerr.text);
            report(on_error, user, err);
            continue;
        }
        if (vap_agent_validate(doc, ent->d_name, err, sizeof(err)) != 0) {
            report(on_error, user, err);
            json_decref(doc);
            continue;
        }
        if (vap_agents_find(set, json_string_value(json_object_get(doc, "id")))) {
            snprintf(err, sizeof(err), "%s: id: another file already defines agent \"%s\"",
                     ent->d_name, json_string_value(json_object_get(doc, "id")));
            report(on_error, user, err);
            json_decref(doc);
            continue;
        }
        if (set->count == AGENTS_MAX) {
            snprintf(err, sizeof(err), "%s: more than %d agents", ent->d_name, AGENTS_MAX);
            report(on_error, user, err);
            json_decref(doc);
            continue;
        }
        fill_agent(&set->items[set->count++], doc);
    }
    closedir(d);
    qsort(set->items, set->count, sizeof(set->items[0]), by_id);
    *out = set;
    return 0;
}

size_t vap_agents_count(const struct vap_agents *a)
{
    return a->count;
}

const struct vap_agent *vap_agents_at(const struct vap_agents *a, size_t i)
{
    return i < a->count ? &a->items[i] : NULL;
}

const struct vap_agent *vap_agents_find(const struct vap_agents *a, const char *id)
{
    for (size_t i = 0; i < a->count; i++)
        if (strcmp(a->items[i].id, id) == 0)
            return &a->items[i];
    return NULL;
}

void vap_agents_ref(struct vap_agents *a)
{
    atomic_fetch_add(&a->refs, 1);
}

void vap_agents_unref(struct vap_agents *a)
{
    if (!a || atomic_fetch_sub(&a->refs, 1) != 1)
        return;
    for (size_t i = 0; i < a->count; i++) {
        json_decref(a->items[i].public_json);
        json_decref(a->items[i].json);
    }
    free(a);
}
