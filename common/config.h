/*
 * Configuration from the environment, one table per service. Each entry names the
 * variable, its type, default, range and whether it is secret; vap_config_load()
 * fills the targets, fails at startup naming the variable and the bad value, and
 * vap_config_log() prints the effective configuration with secrets masked.
 * Not reloadable: settings are read once at start.
 *
 * Every setting NAME can be given for one service only as NAME_<SERVICE> (the service
 * name vap-supervisor passes in VAP_SERVICE_NAME, upper-cased: DATABASE_URL_AUTH,
 * METRICS_ADDR_VOICE2), which wins over NAME: one environment serves every process.
 */
#ifndef VAP_CONFIG_H
#define VAP_CONFIG_H

#include <stddef.h>

enum vap_config_type {
    VAP_CONFIG_STRING, /* target: char ** (points into the environment or the default) */
    VAP_CONFIG_INT     /* target: long *; min/max inclusive */
};

struct vap_config_item {
    const char *name;           /* environment variable */
    enum vap_config_type type;
    const char *default_value;  /* NULL: required */
    long min, max;              /* for VAP_CONFIG_INT */
    int secret;                 /* masked in vap_config_log */
    void *target;
    const char *help;
};

/* NAME_<SERVICE> if set and not empty, else NAME if set and not empty, else NULL. */
const char *vap_config_getenv(const char *name);

/*
 * Reads every item from the environment (vap_config_getenv) (falling back to its default). On error writes
 * "NAME: reason (value ...)" into err and returns VAP_EINVAL; secrets' values are not
 * echoed. Strings are not copied: they live as long as the environment.
 */
int vap_config_load(const struct vap_config_item *items, size_t count, char *err,
                    size_t err_size);

/* Logs one info line with every setting, secrets shown as "***". */
void vap_config_log(const struct vap_config_item *items, size_t count);

#endif
