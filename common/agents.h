/*
 * Agents as data: one JSON file per agent in a directory (config/agents/). Loading
 * checks every file; a malformed one is refused with a message naming the file and the
 * field, and the others are kept. A loaded set is immutable and reference-counted, so a
 * reload (SIGHUP) swaps in a new set while requests still hold the old one.
 */
#ifndef VAP_AGENTS_H
#define VAP_AGENTS_H

#include <jansson.h>
#include <stddef.h>

struct vap_agent {
    const char *id; /* all strings point into json */
    const char *name;
    const char *description;
    const char *startup_message;
    const char *system_prompt;
    const char *language;
    const char *voice;
    int end_of_turn_silence_ms;
    json_t *json;        /* the whole file */
    json_t *public_json; /* what GET /api/agents/config/{id} shows: no offline data */
};

struct vap_agents;

/* Called once per refused file with a message naming the file and field. */
typedef void (*vap_agents_error_fn)(void *user, const char *message);

/*
 * Loads every *.json in dir (sorted by id). Refused files are reported through on_error
 * (may be NULL) and skipped. Returns 0 (possibly with zero agents), VAP_ENOTFOUND if dir
 * cannot be read, VAP_ENOMEM. *out has one reference.
 */
int vap_agents_load(const char *dir, vap_agents_error_fn on_error, void *user,
                    struct vap_agents **out);

/*
 * Checks one parsed agent document. file names it in the message. Returns 0 or
 * VAP_EINVAL with "<file>: <field>: <problem>" in err.
 */
int vap_agent_validate(json_t *doc, const char *file, char *err, size_t err_size);

size_t vap_agents_count(const struct vap_agents *a);
const struct vap_agent *vap_agents_at(const struct vap_agents *a, size_t i);

/* The agent with this id, or NULL. */
const struct vap_agent *vap_agents_find(const struct vap_agents *a, const char *id);

void vap_agents_ref(struct vap_agents *a);
void vap_agents_unref(struct vap_agents *a);

#endif
