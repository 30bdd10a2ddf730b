/*
 * The appointment skill's data: departments, doctors (with what the recogniser hears for
 * their names) and their weekly slots, read and checked from the agent's "offline"
 * object, each error naming the entry and the field.
 */
#include "offline_appointments.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"

const char *const ap_day_names[7] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                     "Friday", "Saturday", "Sunday"};

void ap_destroy(void *state)
{
    struct appts *a = state;
    if (!a)
        return;
    free(a->depts);
    free(a->doctors);
    free(a->slots);
    free(a);
}

/* "Monday 9:00" / "tuesday 14:30" */
static int parse_slot(const char *text, int *day, int *minute)
{
    char name[16];
    int h, m, used = 0;
    if (sscanf(text, "%15s %d:%d%n", name, &h, &m, &used) != 3 || text[used] != '\0')
        return -1;
    if (h < 0 || h > 23 || m < 0 || m > 59)
        return -1;
    for (int d = 0; d < 7; d++)
        if (strcasecmp(name, ap_day_names[d]) == 0) {
            *day = d;
            *minute = h * 60 + m;
            return 0;
        }
    return -1;
}

static int read_depts(struct appts *a, json_t *list, char *err, size_t err_size)
{
    size_t i, k;
    json_t *item, *w;
    a->depts = calloc(json_array_size(list) + 1, sizeof(a->depts[0]));
    if (!a->depts)
        return VAP_ENOMEM;
    json_array_foreach(list, i, item)
    {
        struct dept *d = &a->depts[a->ndepts];
        json_t *id = json_object_get(item, "id"), *name = json_object_get(item, "name");
        json_t *kw = json_object_get(item, "keywords"), *floor = json_object_get(item, "floor");
        if (!json_is_string(name) || (id && !json_is_string(id)) || (kw && !json_is_array(kw)) ||
            (floor && !json_is_integer(floor))) {
            snprintf(err, err_size, "offline.departments[%zu]: needs \"name\" (string); \"id\" "
                     "string, \"keywords\" array and \"floor\" integer are optional", i);
            return VAP_EINVAL;
        }
        d->name = json_string_value(name);
        d->id = id ? json_string_value(id) : d->name;
        d->floor = floor ? (int)json_integer_value(floor) : 0;
        json_array_foreach(kw, k, w)
        {
            if (!json_is_string(w)) {
                snprintf(err, err_size, "offline.departments[%zu].keywords[%zu]: not a string",
                         i, k);
                return VAP_EINVAL;
            }
            if (d->nkeywords < KEYWORDS_MAX)
                d->keywords[d->nkeywords++] = json_string_value(w);
        }
        a->ndepts++;
    }
    return 0;
}

static int read_doctor(struct appts *a, json_t *item, size_t i, char *err, size_t err_size)
{
    struct doctor *d = &a->doctors[a->ndoctors];
    json_t *name = json_object_get(item, "name"), *dept = json_object_get(item, "department");
    json_t *slots = json_object_get(item, "slots"), *aliases = json_object_get(item, "aliases");
    json_t *v;
    size_t k;
    const char *space;
    if (!json_is_string(name) || !json_is_string(dept) || !json_is_array(slots) ||
        (aliases && !json_is_array(aliases))) {
        snprintf(err, err_size, "offline.doctors[%zu]: needs \"name\", \"department\" (strings) "
                 "and \"slots\" (array)", i);
        return VAP_EINVAL;
    }
    d->name = json_string_value(name);
    space = strrchr(d->name, ' ');
    d->surname = space ? space + 1 : d->name;
    d->dept = -1;
    for (size_t j = 0; j < a->ndepts; j++)
        if (strcasecmp(a->depts[j].id, json_string_value(dept)) == 0 ||
            strcasecmp(a->depts[j].name, json_string_value(dept)) == 0)
            d->dept = (int)j;
    if (d->dept < 0) {
        snprintf(err, err_size, "offline.doctors[%zu].department: no department \"%s\"", i,
                 json_string_value(dept));
        return VAP_EINVAL;
    }
    json_array_foreach(aliases, k, v) if (json_is_string(v) && d->naliases < ALIASES_MAX)
        d->aliases[d->naliases++] = json_string_value(v);
    json_array_foreach(slots, k, v)
    {
        struct slot *s = &a->slots[a->nslots];
        if (!json_is_string(v) || parse_slot(json_string_value(v), &s->day, &s->minute) != 0) {
            snprintf(err, err_size, "offline.doctors[%zu].slots[%zu]: must be like \"Monday "
                     "9:00\"", i, k);
            return VAP_EINVAL;
        }
        s->doctor = (int)a->ndoctors;
        a->nslots++;
    }
    a->ndoctors++;
    return 0;
}

int ap_create(json_t *offline, void **state, char *err, size_t err_size)
{
    json_t *depts = json_object_get(offline, "departments");
    json_t *doctors = json_object_get(offline, "doctors"), *item, *em;
    struct appts *a;
    size_t i, nslots = 0;
    int rv;

    *state = NULL;
    if (!depts && !doctors)
        return 0;
    if (!json_is_array(depts) || !json_is_array(doctors) || json_array_size(depts) == 0) {
        snprintf(err, err_size, "offline.departments and offline.doctors: both must be arrays, "
                 "departments non-empty");
        return VAP_EINVAL;
    }
    json_array_foreach(doctors, i, item) nslots += json_array_size(json_object_get(item, "slots"));
    a = calloc(1, sizeof(*a));
    if (!a)
        return VAP_ENOMEM;
    a->doctors = calloc(json_array_size(doctors) + 1, sizeof(a->doctors[0]));
    a->slots = calloc(nslots + 1, sizeof(a->slots[0]));
    rv = a->doctors && a->slots ? read_depts(a, depts, err, err_size) : VAP_ENOMEM;
    json_array_foreach(doctors, i, item)
    {
        if (rv != 0)
            break;
        rv = read_doctor(a, item, i, err, err_size);
    }
    em = json_object_get(offline, "emergency");
    if (rv == 0 && em && !json_is_string(em)) {
        snprintf(err, err_size, "offline.emergency: must be a string");
        rv = VAP_EINVAL;
    }
    if (rv != 0) {
        ap_destroy(a);
        return rv;
    }
    a->emergency = em ? json_string_value(em)
                      : "If this is an emergency, please hang up and call your local emergency "
                        "number right away.";
    *state = a;
    return 0;
}
