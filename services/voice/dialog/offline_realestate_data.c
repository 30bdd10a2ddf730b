/*
 * The property-search skill's catalogue: the agent's "offline.listings" read and checked
 * (each field's error names the listing and the field), with the distinct cities,
 * neighbourhoods, types and features gathered from the listings themselves.
 */
#include "offline_realestate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"

/* --- data --- */

static int distinct_add(struct distinct *d, const char *name)
{
    for (size_t i = 0; i < d->count; i++)
        if (strcasecmp(d->names[i], name) == 0)
            return (int)i;
    if (d->count == DISTINCT_MAX)
        return -1;
    d->names[d->count] = name;
    return (int)d->count++;
}

void re_destroy(void *state)
{
    struct realestate *r = state;
    if (!r)
        return;
    free(r->l);
    free(r);
}

static int bad(char *err, size_t err_size, size_t i, const char *field, const char *what)
{
    snprintf(err, err_size, "offline.listings[%zu].%s: %s", i, field, what);
    return VAP_EINVAL;
}

static int read_listing(struct realestate *r, json_t *item, size_t i, char *err, size_t err_size)
{
    struct listing *l = &r->l[r->count];
    json_t *v;
    const char *deal;
    size_t k;
    json_t *f;
    if (!json_is_object(item))
        return bad(err, err_size, i, "", "must be an object");
    v = json_object_get(item, "address");
    if (!json_is_string(v))
        return bad(err, err_size, i, "address", "required string");
    l->address = json_string_value(v);
    v = json_object_get(item, "city");
    if (!json_is_string(v) || (l->city = distinct_add(&r->cities, json_string_value(v))) < 0)
        return bad(err, err_size, i, "city", "required string (at most 32 cities)");
    v = json_object_get(item, "neighbourhood");
    l->hood = -1;
    if (v && (!json_is_string(v) || (l->hood = distinct_add(&r->hoods, json_string_value(v))) < 0))
        return bad(err, err_size, i, "neighbourhood", "must be a string (at most 32)");
    v = json_object_get(item, "type");
    if (!json_is_string(v) || (l->type = distinct_add(&r->types, json_string_value(v))) < 0)
        return bad(err, err_size, i, "type", "required string (at most 32 types)");
    v = json_object_get(item, "price");
    if (!json_is_number(v) || json_number_value(v) < 0)
        return bad(err, err_size, i, "price", "required number >= 0");
    l->price = (long long)json_number_value(v);
    v = json_object_get(item, "bedrooms");
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 50)
        return bad(err, err_size, i, "bedrooms", "required integer 0..50");
    l->bedrooms = (int)json_integer_value(v);
    v = json_object_get(item, "for");
    deal = json_string_value(v);
    if (!deal || (strcmp(deal, "sale") != 0 && strcmp(deal, "rent") != 0))
        return bad(err, err_size, i, "for", "required, \"sale\" or \"rent\"");
    l->deal = strcmp(deal, "sale") == 0 ? DEAL_SALE : DEAL_RENT;
    v = json_object_get(item, "bathrooms");
    if (v && !json_is_integer(v))
        return bad(err, err_size, i, "bathrooms", "must be an integer");
    l->bathrooms = v ? (int)json_integer_value(v) : 0;
    v = json_object_get(item, "area_sqft");
    if (v && !json_is_integer(v))
        return bad(err, err_size, i, "area_sqft", "must be an integer");
    l->area_sqft = v ? (int)json_integer_value(v) : 0;
    v = json_object_get(item, "description");
    if (v && !json_is_string(v))
        return bad(err, err_size, i, "description", "must be a string");
    l->description = json_string_value(v);
    v = json_object_get(item, "features");
    if (v && !json_is_array(v))
        return bad(err, err_size, i, "features", "must be an array of strings");
    json_array_foreach(v, k, f)
    {
        int fi;
        if (!json_is_string(f) || (fi = distinct_add(&r->features, json_string_value(f))) < 0)
            return bad(err, err_size, i, "features", "strings only (at most 32 distinct)");
        if (l->nfeatures < FEATURES_MAX)
            l->features[l->nfeatures++] = fi;
    }
    r->count++;
    return 0;
}

int re_create(json_t *offline, void **state, char *err, size_t err_size)
{
    json_t *list = json_object_get(offline, "listings"), *item;
    struct realestate *r;
    size_t i;
    *state = NULL;
    if (!list)
        return 0;
    if (!json_is_array(list) || json_array_size(list) == 0) {
        snprintf(err, err_size, "offline.listings: must be a non-empty array");
        return VAP_EINVAL;
    }
    r = calloc(1, sizeof(*r));
    if (r)
        r->l = calloc(json_array_size(list), sizeof(r->l[0]));
    if (!r || !r->l) {
        re_destroy(r);
        return VAP_ENOMEM;
    }
    json_array_foreach(list, i, item)
    {
        int rv = read_listing(r, item, i, err, err_size);
        if (rv != 0) {
            re_destroy(r);
            return rv;
        }
    }
    for (i = 0; i < r->types.count; i++)
        r->types_by_length[i] = i;
    for (i = 1; i < r->types.count; i++) /* insertion sort, longest first */
        for (size_t j = i; j > 0 && strlen(r->types.names[r->types_by_length[j]]) >
                                        strlen(r->types.names[r->types_by_length[j - 1]]);
             j--) {
            size_t t = r->types_by_length[j];
            r->types_by_length[j] = r->types_by_length[j - 1];
            r->types_by_length[j - 1] = t;
        }
    *state = r;
    return 0;
}
