/*
 * Building and caching the files of an agent's recogniser (model_files.c): its ARPA
 * language model and its pronunciation dictionary. Internal to vapvoice_stt.
 */
#ifndef VAP_VOICE_STT_FILES_H
#define VAP_VOICE_STT_FILES_H

#include <limits.h>
#include <stddef.h>

#include "common/agents.h"

struct stt_build_options {
    const char *model_root; /* holds cmudict-en-us.dict */
    const char *cache_dir;  /* created if missing */
    const char *generic_lm; /* its likeliest words join the dictionary; NULL = none */
    size_t generic_words;   /* how many */
};

struct stt_files {
    char lm[PATH_MAX];
    char dict[PATH_MAX];
    int from_cache; /* 1 when nothing had to be built */
};

/*
 * Returns the agent's files, building them when the cache has no copy for this exact
 * agent file. Slow when building (about a second). Thread-safe.
 * Returns 0, VAP_EINVAL (err names the agent and why) or VAP_ENOMEM.
 */
int stt_files_build(const struct vap_agent *agent, const struct stt_build_options *o,
                    struct stt_files *out, char *err, size_t err_size);

#endif
