/* Table-driven environment configuration (see config.h). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"

static int parse_long(const char *text, long *out)
{
    char *end = NULL;
    long v;
    errno = 0;
    v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0')
        return VAP_EINVAL;
    *out = v;
    return 0;
}

const char *vap_config_getenv(const char *name)
{
    const char *service = getenv("VAP_SERVICE_NAME");
    const char *value;
    if (service && service[0]) {
        char key[128];
        size_t n = strlen(name);
        int len = snprintf(key, sizeof(key), "%s_%s", name, service);
        if (len > 0 && (size_t)len < sizeof(key)) {
            for (size_t i = n + 1; key[i]; i++)
                key[i] = (char)toupper((unsigned char)key[i]);
            value = getenv(key);
            if (value && value[0])
                return value;
        }
    }
    value = getenv(name);
    return value && value[0] ? value : NULL;
}

int vap_config_load(const struct vap_config_item *items, size_t count, char *err,
                    size_t err_size)
{
    for (size_t i = 0; i < count; i++) {
        const struct vap_config_item *it = &items[i];
        const char *value = vap_config_getenv(it->name);
        if (value == NULL || value[0] == '\0')
            value = it->default_value;
        if (value == NULL) {
            snprintf(err, err_size, "%s: required but not set (%s)", it->name,
                     it->help ? it->help : "no default");
            return VAP_EINVAL;
        }
        if (it->type == VAP_CONFIG_STRING) {
            *(const char **)it->target = value;
            continue;
        }
        long v;
        if (parse_long(value, &v) != 0) {
            snprintf(err, err_size, "%s: not an integer (value \"%s\")", it->name,
                     it->secret ? "***" : value);
            return VAP_EINVAL;
        }
        if (v < it->min || v > it->max) {
            snprintf(err, err_size, "%s: must be between %ld and %ld (value %ld)", it->name,
                     it->min, it->max, v);
            return VAP_EINVAL;
        }
        *(long *)it->target = v;
    }
    return 0;
}

void vap_config_log(const struct vap_config_item *items, size_t count)
{
    char line[2048];
    size_t pos = 0;
    int n = snprintf(line, sizeof(line), "configuration");
    if (n > 0)
        pos = (size_t)n;
    for (size_t i = 0; i < count && pos < sizeof(line); i++) {
        const struct vap_config_item *it = &items[i];
        if (it->type == VAP_CONFIG_STRING)
            n = snprintf(line + pos, sizeof(line) - pos, " %s=%s", it->name,
                         it->secret ? "***" : *(const char **)it->target);
        else
            n = snprintf(line + pos, sizeof(line) - pos, " %s=%ld", it->name,
                         *(long *)it->target);
        if (n < 0)
            break;
        pos += (size_t)n;
    }
    vap_info(NULL, "%s", line);
}
