/*
 * What dialog.c shares with the engines it dispatches to (offline.c, claude.c,
 * openai.c): the conversation history and the engine operations table. Not for use
 * outside services/voice/dialog/.
 */
#ifndef VAP_VOICE_DIALOG_INTERNAL_H
#define VAP_VOICE_DIALOG_INTERNAL_H

#include "dialog.h"

#include <jansson.h>

enum dialog_role { DIALOG_USER = 0, DIALOG_AGENT = 1 };

struct dialog_turn {
    enum dialog_role role;
    char *text;
};

struct dialog_history {
    struct dialog_turn *turns;
    size_t count;
    size_t cap;
};

struct dialog_engine_ops {
    const char *name;
    /* Per-engine state from the agent (and config); err names the field on failure. */
    int (*create)(const struct vap_agent *agent, const struct dialog_config *cfg, void **state,
                  char *err, size_t err_size);
    void (*destroy)(void *state);
    /* Per-session state (may return NULL when the engine keeps none... but then
       session_free must accept NULL). */
    void *(*session_new)(void *state);
    void (*session_free)(void *session_state);
    /*
     * Produces the reply to user_text given the history so far (which does not yet
     * contain user_text). Same contract as dialog_reply.
     */
    int (*reply)(void *state, void *session_state, const struct dialog_history *history,
                 const char *user_text, dialog_emit_fn emit, void *user,
                 const atomic_int *cancel, struct dialog_result *res);
};

extern const struct dialog_engine_ops dialog_offline_ops;
extern const struct dialog_engine_ops dialog_claude_ops;
extern const struct dialog_engine_ops dialog_openai_ops;

#endif
