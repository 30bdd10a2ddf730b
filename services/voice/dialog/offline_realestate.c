/*
 * The property-search skill of the offline dialog engine, on when the agent's "offline"
 * object has "listings": [{"address", "city", "neighbourhood"?, "price", "bedrooms",
 * "type", "for": "sale"|"rent", "bathrooms"?, "area_sqft"?, "features"?: [...],
 * "description"?}]. Cities, neighbourhoods, types and features come from the listings
 * themselves, so another catalogue needs no code.
 *
 * Filters accumulate over the conversation (city, neighbourhood, type, sale or rent,
 * bedrooms, budget, a wanted feature); each change runs the search again, and when
 * nothing matches the nearest listing is offered with the filter it breaks. The last
 * results are remembered for "the second one", "anything cheaper", "bigger", "any
 * others", questions about one listing, and a viewing request confirmed by "yes".
 */
#include "offline_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"

#define DISTINCT_MAX 32
#define FEATURES_MAX 8
#define RESULTS_MAX 16
#define SHOWN_MAX 3

enum deal { DEAL_ANY = 0, DEAL_SALE = 1, DEAL_RENT = 2 };

struct listing {
    const char *address, *description;
    long long price;
    int bedrooms, bathrooms, area_sqft;
    int city, hood, type; /* indexes into the distinct lists; hood -1 = none */
    enum deal deal;
    int features[FEATURES_MAX];
    size_t nfeatures;
};

struct distinct {
    const char *names[DISTINCT_MAX];
    size_t count;
};

struct realestate {
    struct listing *l;
    size_t count;
    struct distinct cities, hoods, types, features;
    size_t types_by_length[DISTINCT_MAX]; /* "townhouse" is tried before "house" */
};

struct re_session {
    int city, hood, type, feature; /* -1 = any */
    enum deal deal;
    int min_beds, max_beds;        /* -1 = any */
    long long min_price, max_price; /* -1 = any */
    int results[RESULTS_MAX];      /* last search, best first */
    size_t nresults;
    size_t from, shown;            /* results[from..shown) were said last */
    int focus;                     /* the listing talked about, -1 = none */
    int pending_viewing;           /* listing awaiting "yes", -1 = none */
};

/* What one utterance asks for; built without touching the session. */
struct re_req {
    int city, hood, type, feature, beds, beds_max_only;
    enum deal deal;
    long long min_price, max_price;
    int ordinal, cheaper, pricier, bigger, smaller, more, reset, search;
    int details, ask_price, ask_where, ask_beds, ask_size, ask_it, viewing;
    int yes_more; /* a bare "yes" while one listing is being talked about */
    int everything; /* "show me everything", "all of them": drop the old filters */
    int named;      /* a listing named by its street ("the house on maple street"), or -1 */
    int ask_baths, ask_available;
    int hits; /* how much of it this skill understood */
};

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

static void re_destroy(void *state)
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

static int re_create(json_t *offline, void **state, char *err, size_t err_size)
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

static void clear_filters(struct re_session *s)
{
    s->city = s->hood = s->type = s->feature = -1;
    s->deal = DEAL_ANY;
    s->min_beds = s->max_beds = -1;
    s->min_price = s->max_price = -1;
    s->nresults = s->from = s->shown = 0;
    s->focus = s->pending_viewing = -1;
}

static void *re_session_new(const void *state)
{
    struct re_session *s = calloc(1, sizeof(*s));
    (void)state;
    if (s)
        clear_filters(s);
    return s;
}

static void re_session_free(void *ss)
{
    free(ss);
}

/* --- understanding --- */

static int find_distinct(const struct distinct *d, const struct off_input *in)
{
    int best = -1, best_q = 0;
    for (size_t i = 0; i < d->count; i++) {
        int q = off_find_name(in, d->names[i], NULL);
        if (q > best_q) {
            best_q = q;
            best = (int)i;
        }
    }
    return best;
}

static int find_type(const struct realestate *r, const struct off_input *in)
{
    static const struct {
        const char *type, *synonyms[4];
    } syn[] = {{"apartment", {"flat", "apartments", "unit", NULL}},
               {"condo", {"condominium", NULL}},
               {"townhouse", {"town house", "row house", "townhome", NULL}},
               {"studio", {"studio flat", NULL}},
               {"house", {"houses", "detached", NULL}}};
    for (size_t k = 0; k < r->types.count; k++) {
        size_t t = r->types_by_length[k];
        const char *name = r->types.names[t];
        const char *one[] = {name, NULL};
        if (off_has_any(in, one) || (strlen(name) > 5 && off_find_name(in, name, NULL)))
            return (int)t;
        for (size_t s = 0; s < sizeof(syn) / sizeof(syn[0]); s++)
            if (strcasecmp(syn[s].type, name) == 0)
                for (size_t j = 0; j < 4 && syn[s].synonyms[j]; j++)
                    if (off_has_phrase(in, syn[s].synonyms[j]))
                        return (int)t;
    }
    return -1;
}

static int is_word(const struct off_input *in, size_t i, const char *const *list)
{
    if (i >= in->n)
        return 0;
    for (const char *const *p = list; *p; p++)
        if (strcmp(in->words[i], *p) == 0)
            return 1;
    return 0;
}

/* Bedrooms and prices from the numbers in the utterance. */
static void read_numbers(const struct off_input *in, enum deal deal_known, struct re_req *q)
{
    static const char *const beds[] = {"bedroom", "bedrooms", "bed", "beds", "br", "room",
                                       "rooms", "bedded", NULL};
    static const char *const above[] = {"over", "above", "least", "minimum", "from",
                                        "starting", "more", "between", NULL};
    int seen_price = 0;
    for (size_t i = 0; i < in->n; i++) {
        long long v = in->num[i];
        size_t end = i + in->num_len[i];
        if (in->num_len[i] == 0)
            continue;
        if (is_word(in, end, beds) && v <= 20) {
            q->beds = (int)v;
            q->beds_max_only = i > 1 && (off_has_phrase(in, "at most") ||
                                         off_has_phrase(in, "no more than"));
            continue;
        }
        if (is_word(in, end, (const char *const[]){"bath", "bathroom", "bathrooms", "baths",
                                                   "floor", "floors", "am", "pm", "oclock",
                                                   "minutes", "people", "kids", NULL}))
            continue;
        if (v < 300)
            continue; /* not a price anyone says */
        if (v < 1000 && deal_known == DEAL_SALE)
            v *= 1000; /* "under four hundred" while buying */
        int is_min = i > 0 && is_word(in, i - 1, above) && !off_has_phrase(in, "no more than");
        int around = i > 0 && is_word(in, i - 1, (const char *const[]){"around", "about",
                                                                         "roughly", NULL});
        if (seen_price && off_has_phrase(in, "between")) {
            q->max_price = v;
        } else if (around) {
            q->max_price = v + v / 10;
        } else if (is_min) {
            q->min_price = v;
        } else {
            q->max_price = v; /* a bare price, or under / below / budget: an upper bound */
        }
        seen_price = 1;
    }
}

/* A listing named by its street: "12 Maple Street, ..." is found by "maple street". */
static int find_street(const struct realestate *r, const struct off_input *in)
{
    for (size_t i = 0; i < r->count; i++) {
        char street[128];
        const char *a = r->l[i].address;
        size_t len = strcspn(a, ",");
        while (*a >= '0' && *a <= '9')
            a++, len--;
        snprintf(street, sizeof(street), "%.*s", (int)len, a);
        if (off_find_name(in, street, NULL))
            return (int)i;
    }
    return -1;
}

static void understand(const struct realestate *r, const struct re_session *s,
                       const struct off_input *in, struct re_req *q)
{
    static const char *const rent[] = {"rent", "renting", "rental", "lease", "let", "monthly",
                                       "tenant", NULL};
    static const char *const sale[] = {"buy", "buying", "purchase", "sale", "own", NULL};
    static const char *const search[] = {"looking", "find", "search", "show", "available",
                                         "listing", "listings", "property", "properties",
                                         "home", "homes", "place", "something", "options",
                                         NULL};
    int have_results = s->nresults > 0 || s->focus >= 0;
    memset(q, 0, sizeof(*q));
    q->city = find_distinct(&r->cities, in);
    q->hood = find_distinct(&r->hoods, in);
    q->type = find_type(r, in);
    q->feature = find_distinct(&r->features, in);
    q->beds = -1;
    q->min_price = q->max_price = -1;
    if (off_has_any(in, rent) || off_has_phrase(in, "per month") || off_has_phrase(in, "a month"))
        q->deal = DEAL_RENT;
    else if (off_has_any(in, sale))
        q->deal = DEAL_SALE;
    read_numbers(in, q->deal ? q->deal : s->deal, q);
    q->ordinal = off_ordinal(in);
    q->named = find_street(r, in);
    q->ask_baths = off_has_any(in, (const char *const[]){"bathroom", "bathrooms", "bath",
                                                         "baths", NULL}) && q->beds < 0;
    q->ask_available = off_has_phrase(in, "still available") ||
                       off_has_phrase(in, "interested in");
    q->cheaper = off_has_any(in, (const char *const[]){"cheaper", "cheap", "affordable",
                                                       "less", "lower", "inexpensive", NULL}) &&
                 q->max_price < 0;
    q->pricier = off_has_phrase(in, "more expensive") || off_has_phrase(in, "higher budget") ||
                 off_has_any(in, (const char *const[]){"nicer", "fancier", "luxury", NULL});
    q->bigger = off_has_any(in, (const char *const[]){"bigger", "larger", "more space",
                                                      "roomier", NULL}) ||
                off_has_phrase(in, "more bedrooms") || off_has_phrase(in, "more room");
    q->smaller = off_has_any(in, (const char *const[]){"smaller", "fewer", "tinier", NULL});
    q->more = off_has_phrase(in, "any others") || off_has_phrase(in, "anything else") ||
              off_has_phrase(in, "what else") || off_has_phrase(in, "other options") ||
              off_has_phrase(in, "more options") || off_has_phrase(in, "show me more") ||
              off_has_phrase(in, "any more") || off_has_phrase(in, "the rest") ||
              off_has_phrase(in, "others") || (in->n == 1 && off_word_at(in, "more", 0) == 0);
    q->reset = off_has_phrase(in, "start over") || off_has_phrase(in, "start again") ||
               off_has_phrase(in, "new search") || off_has_phrase(in, "from scratch");
    q->search = off_has_any(in, search);
    q->everything = off_has_any(in, (const char *const[]){"everything", "all", "anything",
                                                          NULL}) && !q->cheaper &&
                    (q->search || off_has_phrase(in, "what do you have"));
    q->search |= q->everything;
    q->details = off_has_phrase(in, "tell me more") || off_has_phrase(in, "more about") ||
                 off_has_phrase(in, "tell me about") ||
                 off_has_any(in, (const char *const[]){"details", "detail", "describe",
                                                       "information", "info", NULL});
    q->ask_price = off_has_phrase(in, "how much") ||
                   off_has_any(in, (const char *const[]){"price", "cost", "costs", NULL});
    q->ask_where = off_has_any(in, (const char *const[]){"where", "address", "location",
                                                         "located", NULL});
    q->ask_beds = off_has_phrase(in, "how many bedrooms") || off_has_phrase(in, "how many rooms");
    q->ask_size = off_has_phrase(in, "how big") || off_has_phrase(in, "how large") ||
                  off_has_any(in, (const char *const[]){"size", "square", "feet", NULL});
    q->ask_it = off_has_any(in, (const char *const[]){"it", "its", "that", "this", "does",
                                                      "has", NULL});
    q->viewing = off_has_any(in, (const char *const[]){"viewing", "view", "visit", "tour",
                                                       "viewings", NULL}) ||
                 off_has_phrase(in, "see it") || off_has_phrase(in, "look at it") ||
                 off_has_phrase(in, "see the") || off_has_phrase(in, "go see");

    q->hits = (q->city >= 0) + (q->hood >= 0) + (q->type >= 0) + (q->deal != DEAL_ANY) +
              (q->beds >= 0) + (q->min_price >= 0 || q->max_price >= 0) + (q->feature >= 0) +
              q->reset + q->viewing + q->search;
    q->hits += (q->named >= 0) * 2;
    if (have_results || q->named >= 0)
        q->hits += q->ask_baths + q->ask_available;
    if (have_results)
        q->hits += (q->ordinal != -1) + q->cheaper + q->pricier + q->bigger + q->smaller +
                   q->more + q->details + q->ask_price + q->ask_where + q->ask_beds + q->ask_size;
    if (s->pending_viewing >= 0 && (in->yes || in->no))
        q->hits += 3;
    else if (in->yes && q->hits == 0 && s->focus >= 0) /* "yes" to "hear more about it?" */
        q->hits = q->yes_more = 1;
}

static int re_score(const void *state, const void *ss, const struct off_input *in)
{
    struct re_req q;
    understand(state, ss, in, &q);
    return q.hits;
}

/* --- saying things --- */

/* "a" or "an" before word. */
static const char *article(const char *word)
{
    return strchr("aeiouAEIOU", word[0]) && word[0] ? "an" : "a";
}

/* "12 Maple Street" with abbreviations a speech synthesiser stumbles over spelled out. */
static void say_address(const char *address, char *buf, size_t n)
{
    const char *apt = strstr(address, "Apt ");
    if (apt)
        snprintf(buf, n, "%.*sApartment %s", (int)(apt - address), address, apt + 4);
    else
        snprintf(buf, n, "%s", address);
}

static void price_words(const struct listing *l, char *buf, size_t n)
{
    char money[48];
    off_fmt_money(l->price, money, sizeof(money));
    snprintf(buf, n, "%s%s", money, l->deal == DEAL_RENT ? " a month" : "");
}

/* "a three bedroom house at 12 Maple Street in Oakwood, for 350,000 dollars" */
static void brief(const struct realestate *r, const struct re_session *s, int li, char *buf,
                  size_t n)
{
    const struct listing *l = &r->l[li];
    char beds[32] = "", addr[160], price[64], where[128] = "";
    const char *type = r->types.names[l->type];
    if (l->bedrooms > 1 || strcasecmp(type, "studio") != 0) {
        char n_beds[16];
        off_fmt_count(l->bedrooms, n_beds, sizeof(n_beds));
        snprintf(beds, sizeof(beds), "%s bedroom ", n_beds);
    }
    say_address(l->address, addr, sizeof(addr));
    price_words(l, price, sizeof(price));
    if (l->hood >= 0 && s->city == l->city)
        snprintf(where, sizeof(where), " in %s", r->hoods.names[l->hood]);
    else if (l->hood >= 0)
        snprintf(where, sizeof(where), " in %s, %s", r->hoods.names[l->hood],
                 r->cities.names[l->city]);
    else if (s->city != l->city)
        snprintf(where, sizeof(where), " in %s", r->cities.names[l->city]);
    snprintf(buf, n, "%s %s%s at %s%s, for %s", article(beds[0] ? beds : type), beds, type, addr,
             where, price);
}

/* "three bedroom house for sale in Springfield under 400,000 dollars" */
static void describe_filters(const struct realestate *r, const struct re_session *s, char *buf,
                             size_t n)
{
    char beds[40] = "", money[48], price[80] = "", place[128] = "", feat[64] = "";
    if (s->min_beds >= 0 || s->max_beds >= 0) {
        char n_beds[16];
        off_fmt_count(s->min_beds >= 0 ? s->min_beds : s->max_beds, n_beds, sizeof(n_beds));
        snprintf(beds, sizeof(beds), "%s%s bedroom ", s->min_beds >= 0 ? "" : "up to ", n_beds);
    }
    if (s->max_price >= 0) {
        off_fmt_money(s->max_price, money, sizeof(money));
        snprintf(price, sizeof(price), " under %s", money);
    } else if (s->min_price >= 0) {
        off_fmt_money(s->min_price, money, sizeof(money));
        snprintf(price, sizeof(price), " over %s", money);
    }
    if (s->hood >= 0 && s->city >= 0)
        snprintf(place, sizeof(place), " in %s, %s", r->hoods.names[s->hood],
                 r->cities.names[s->city]);
    else if (s->hood >= 0 || s->city >= 0)
        snprintf(place, sizeof(place), " in %s",
                 s->hood >= 0 ? r->hoods.names[s->hood] : r->cities.names[s->city]);
    if (s->feature >= 0)
        snprintf(feat, sizeof(feat), " with a %s", r->features.names[s->feature]);
    snprintf(buf, n, "%s%s%s%s%s%s", beds, s->type >= 0 ? r->types.names[s->type] : "home",
             s->deal == DEAL_SALE ? " for sale" : s->deal == DEAL_RENT ? " for rent" : "", feat,
             place, price);
}

static void say_details(const struct realestate *r, struct re_session *s, int li,
                        struct off_reply *out)
{
    const struct listing *l = &r->l[li];
    char addr[160], price[64], beds[32], n[32];
    say_address(l->address, addr, sizeof(addr));
    price_words(l, price, sizeof(price));
    off_fmt_count(l->bedrooms, beds, sizeof(beds));
    off_say(out, "%s is a %s bedroom %s in %s%s%s, %s %s.", addr, beds, r->types.names[l->type],
            l->hood >= 0 ? r->hoods.names[l->hood] : "", l->hood >= 0 ? ", " : "",
            r->cities.names[l->city], l->deal == DEAL_RENT ? "for rent at" : "for sale at", price);
    if (l->description)
        off_say(out, "%s", l->description);
    if (l->bathrooms > 0 || l->nfeatures > 0 || l->area_sqft > 0) {
        char extra[256] = "";
        size_t o = 0;
        if (l->area_sqft > 0)
            o += (size_t)snprintf(extra + o, sizeof(extra) - o, "%d square feet", l->area_sqft);
        if (l->bathrooms > 0) {
            off_fmt_count(l->bathrooms, n, sizeof(n));
            o += (size_t)snprintf(extra + o, sizeof(extra) - o, "%s%s bathroom%s",
                                  o ? ", " : "", n, l->bathrooms > 1 ? "s" : "");
        }
        for (size_t i = 0; i < l->nfeatures && o < sizeof(extra); i++)
            o += (size_t)snprintf(extra + o, sizeof(extra) - o, "%sa %s",
                                  !o ? "" : i + 1 == l->nfeatures ? " and " : ", ",
                                  r->features.names[l->features[i]]);
        off_say(out, "It has %s.", extra);
    }
    off_say(out, "Would you like to arrange a viewing?");
    s->focus = li;
}

/* --- searching --- */

static int matches(const struct listing *l, const struct re_session *s)
{
    int has_feature = s->feature < 0;
    for (size_t i = 0; i < l->nfeatures; i++)
        has_feature |= l->features[i] == s->feature;
    return (s->city < 0 || l->city == s->city) && (s->hood < 0 || l->hood == s->hood) &&
           (s->type < 0 || l->type == s->type) && (s->deal == DEAL_ANY || l->deal == s->deal) &&
           (s->min_beds < 0 || l->bedrooms >= s->min_beds) &&
           (s->max_beds < 0 || l->bedrooms <= s->max_beds) &&
           (s->max_price < 0 || l->price <= s->max_price) &&
           (s->min_price < 0 || l->price >= s->min_price) && has_feature;
}

/* Fills res with the matching listings, closest bedroom count first, then cheapest. */
static size_t search(const struct realestate *r, const struct re_session *s, int *res)
{
    size_t n = 0;
    for (size_t i = 0; i < r->count && n < RESULTS_MAX; i++) {
        if (!matches(&r->l[i], s))
            continue;
        size_t j = n++;
        for (; j > 0; j--) {
            const struct listing *a = &r->l[i], *b = &r->l[res[j - 1]];
            int da = s->min_beds >= 0 ? a->bedrooms - s->min_beds : 0;
            int db = s->min_beds >= 0 ? b->bedrooms - s->min_beds : 0;
            if (db < da || (db == da && b->price <= a->price))
                break;
            res[j] = res[j - 1];
        }
        res[j] = (int)i;
    }
    return n;
}

static void present(const struct realestate *r, struct re_session *s, struct off_reply *out)
{
    static const char *const nth[] = {"first", "second", "third"};
    char what[256], b[320], count[16];
    size_t start = s->shown, n;
    describe_filters(r, s, what, sizeof(what));
    if (s->nresults == 1) {
        brief(r, s, s->results[0], b, sizeof(b));
        off_say(out, "I found one %s: %s. Would you like more details, or a viewing?", what, b);
        s->focus = s->results[0];
        s->from = 0;
        s->shown = 1;
        return;
    }
    n = s->nresults - start < SHOWN_MAX ? s->nresults - start : SHOWN_MAX;
    off_fmt_count((long long)s->nresults, count, sizeof(count));
    if (start == 0)
        off_say(out, "I found %s matches for %s %s.", count, article(what), what);
    else
        off_say(out, "Here are more.");
    for (size_t i = 0; i < n; i++) {
        brief(r, s, s->results[start + i], b, sizeof(b));
        off_say(out, "%s%s, %s%s", i == 0 ? "First" : i + 1 == n ? "and " : "",
                i == 0 ? "" : nth[i], b, i + 1 == n ? "." : ";");
    }
    s->from = start; /* "the first one" is the first of these */
    s->shown = start + n;
    s->focus = -1;
    if (s->shown < s->nresults)
        off_say(out, "There are more; say any others to hear them, or tell me your budget.");
    else
        off_say(out, "Which one would you like to hear more about?");
}

/*
 * How far a listing is from what the visitor asked for: 0 = a match. Price overshoot
 * counts by how much, a wrong type, neighbourhood or missing feature a little, the
 * wrong city or sale/rent a lot. Bedrooms below the minimum count per bedroom.
 */
static double distance(const struct listing *l, const struct re_session *s)
{
    double d = 0;
    int has_feature = s->feature < 0;
    for (size_t i = 0; i < l->nfeatures; i++)
        has_feature |= l->features[i] == s->feature;
    if (s->max_price > 0 && l->price > s->max_price)
        d += 10.0 * (double)(l->price - s->max_price) / (double)s->max_price;
    if (s->min_price > 0 && l->price < s->min_price)
        d += 10.0 * (double)(s->min_price - l->price) / (double)s->min_price;
    d += (s->type >= 0 && l->type != s->type) * 1.0 + (s->hood >= 0 && l->hood != s->hood) * 1.0;
    d += !has_feature * 1.0 + (s->city >= 0 && l->city != s->city) * 4.0;
    d += (s->deal != DEAL_ANY && l->deal != s->deal) * 8.0;
    if (s->min_beds >= 0 && l->bedrooms < s->min_beds)
        d += 2.0 * (s->min_beds - l->bedrooms);
    if (s->max_beds >= 0 && l->bedrooms > s->max_beds)
        d += 2.0 * (l->bedrooms - s->max_beds);
    return d;
}

/*
 * Nothing matched: says so and offers the nearest listing, saying when it is over
 * budget. not_this is a listing the visitor just turned down as too expensive or too
 * small (-1 for none); keep_price: the budget is what they asked about, so it holds.
 */
static void present_nearest(const struct realestate *r, struct re_session *s, int not_this,
                            int keep_price, struct off_reply *out)
{
    char what[256], b[320];
    int best = -1;
    double best_d = 0;
    describe_filters(r, s, what, sizeof(what));
    off_say(out, "I don't have %s %s right now.", article(what), what);
    for (size_t i = 0; i < r->count; i++) {
        const struct listing *l = &r->l[i];
        double d = distance(l, s);
        if ((int)i == not_this || d >= 12.0)
            continue;
        if (keep_price && ((s->max_price >= 0 && l->price > s->max_price) ||
                           (s->min_price >= 0 && l->price < s->min_price)))
            continue;
        if (best < 0 || d < best_d) {
            best = (int)i;
            best_d = d;
        }
    }
    if (best < 0) {
        s->nresults = s->from = s->shown = 0;
        s->focus = -1;
        off_say(out, "Shall we try another city or a different budget?");
        return;
    }
    brief(r, s, best, b, sizeof(b));
    off_say(out, "The closest I have is %s%s. Would you like to hear more about it?", b,
            s->max_price >= 0 && r->l[best].price > s->max_price ? ", a little over your budget"
                                                                 : "");
    s->results[0] = best;
    s->nresults = s->shown = 1;
    s->from = 0;
    s->focus = best;
}

/* --- the turn --- */

static int reference(const struct re_session *s, const struct re_req *q)
{
    if (q->ordinal == OFF_LAST && s->shown > 0)
        return s->results[s->shown - 1];
    if (q->ordinal >= 0 && s->from + (size_t)q->ordinal < s->shown)
        return s->results[s->from + (size_t)q->ordinal];
    if (q->named >= 0)
        return q->named;
    if (q->hood >= 0 || q->city >= 0) /* "the one in riverside" */
        return -1;
    if (s->focus >= 0)
        return s->focus;
    return s->shown - s->from == 1 ? s->results[s->from] : -1;
}

static void apply_filters(const struct realestate *r, struct re_session *s, const struct re_req *q)
{
    if (q->city >= 0 && q->city != s->city) {
        s->city = q->city;
        if (s->hood >= 0 && q->hood < 0) { /* keep the neighbourhood only if it is there */
            int there = 0;
            for (size_t i = 0; i < r->count; i++)
                there |= r->l[i].city == s->city && r->l[i].hood == s->hood;
            if (!there)
                s->hood = -1;
        }
    }
    if (q->hood >= 0) {
        int there = s->city < 0, city = -2;
        s->hood = q->hood;
        for (size_t i = 0; i < r->count && !there; i++)
            there |= r->l[i].city == s->city && r->l[i].hood == s->hood;
        if (!there && q->city < 0) { /* the neighbourhood's city, if it has only one */
            for (size_t i = 0; i < r->count; i++)
                if (r->l[i].hood == s->hood)
                    city = city == -2 || city == r->l[i].city ? r->l[i].city : -1;
            s->city = city >= 0 ? city : -1;
        }
    }
    if (q->type >= 0)
        s->type = q->type;
    if (q->deal != DEAL_ANY && q->deal != s->deal) {
        s->deal = q->deal;
        if (q->min_price < 0 && q->max_price < 0) /* a rent budget is no sale budget */
            s->min_price = s->max_price = -1;
    }
    if (q->feature >= 0)
        s->feature = q->feature;
    if (q->beds >= 0) {
        s->min_beds = q->beds_max_only ? -1 : q->beds;
        s->max_beds = q->beds_max_only ? q->beds : -1;
    }
    if (q->max_price >= 0) {
        s->max_price = q->max_price;
        if (s->min_price > s->max_price)
            s->min_price = -1;
    }
    if (q->min_price >= 0)
        s->min_price = q->min_price;
    if (s->deal == DEAL_ANY && (s->max_price >= 0 || s->min_price >= 0)) {
        long long p = s->max_price >= 0 ? s->max_price : s->min_price;
        s->deal = p < 20000 ? DEAL_RENT : DEAL_SALE;
    }
}

/* cheaper / pricier / bigger / smaller, relative to the listing talked about. */
static int apply_relative(const struct realestate *r, struct re_session *s, const struct re_req *q,
                          int *turned_down, struct off_reply *out)
{
    const struct listing *ref = NULL;
    *turned_down = -1;
    if (s->focus >= 0)
        ref = &r->l[s->focus];
    for (size_t i = s->from; !ref && i < s->shown; i++)
        ref = &r->l[s->results[i]];
    for (size_t i = s->from; s->focus < 0 && i < s->shown; i++) { /* cheapest / biggest shown */
        const struct listing *l = &r->l[s->results[i]];
        if ((q->cheaper && l->price < ref->price) || (q->pricier && l->price > ref->price) ||
            (q->bigger && l->bedrooms > ref->bedrooms) ||
            (q->smaller && l->bedrooms < ref->bedrooms))
            ref = l;
    }
    if (!ref) {
        off_say(out, "Sure. What is your budget, and how many bedrooms do you need?");
        return 0;
    }
    if (ref->deal != s->deal && s->deal == DEAL_ANY)
        s->deal = ref->deal;
    *turned_down = (int)(ref - r->l);
    if (q->cheaper) {
        s->max_price = ref->price - 1;
        s->min_price = -1;
    }
    if (q->pricier) {
        s->min_price = ref->price + 1;
        s->max_price = -1;
    }
    if (q->bigger) {
        s->min_beds = ref->bedrooms + 1;
        s->max_beds = -1;
    }
    if (q->smaller) {
        s->max_beds = ref->bedrooms - 1;
        s->min_beds = -1;
    }
    return 1;
}

static int re_reply(const void *state, void *ss, const struct off_input *in,
                    struct off_reply *out)
{
    const struct realestate *r = state;
    struct re_session *s = ss;
    struct re_req q;
    int ref, turned_down = -1;
    char addr[160];

    understand(r, s, in, &q);
    if (s->pending_viewing >= 0 && (in->yes || in->no) && q.hits <= 4) {
        say_address(r->l[s->pending_viewing].address, addr, sizeof(addr));
        if (in->yes && !in->no)
            off_say(out, "Great, I've requested a viewing of %s. An agent will call you to "
                         "confirm the time. Anything else?", addr);
        else
            off_say(out, "No problem. Shall I look for something else?");
        s->pending_viewing = -1;
        return 1;
    }
    s->pending_viewing = -1;
    if (q.reset) {
        clear_filters(s);
        off_say(out, "All right, let's start again. Which city, and are you buying or renting?");
        return 1;
    }
    if (q.ordinal >= 0 && s->from + (size_t)q.ordinal >= s->shown && !q.more) {
        char count[16];
        if (s->shown == 0) {
            off_say(out, "I haven't suggested any homes yet. Which city are you looking in?");
            return 1;
        }
        off_fmt_count((long long)(s->shown - s->from), count, sizeof(count));
        off_say(out, "I only mentioned %s. Which one do you mean?", count);
        return 1;
    }
    ref = reference(s, &q);
    if (ref < 0 && (q.hood >= 0 || q.city >= 0) && s->shown > 1 &&
        (q.details || q.viewing || q.ask_price || q.ask_where)) {
        for (size_t i = s->from; i < s->shown && ref < 0; i++) /* "the one in riverside" */
            if ((q.hood >= 0 && r->l[s->results[i]].hood == q.hood) ||
                (q.hood < 0 && r->l[s->results[i]].city == q.city))
                ref = s->results[i];
    }
    if (q.viewing && ref >= 0) {
        say_address(r->l[ref].address, addr, sizeof(addr));
        off_say(out, "Shall I request a viewing of %s?", addr);
        s->pending_viewing = ref;
        s->focus = ref;
        return 1;
    }
    if (ref < 0 && q.hood >= 0 && (q.details || q.ask_price || q.ask_available || q.viewing)) {
        int only = -1; /* "the condo in hillcrest": one listing in the whole catalogue */
        for (size_t i = 0; i < r->count; i++)
            if (r->l[i].hood == q.hood && (q.type < 0 || r->l[i].type == q.type))
                only = only == -1 ? (int)i : -2;
        ref = only >= 0 ? only : -1;
    }
    if (ref >= 0 && q.ask_baths) {
        const struct listing *l = &r->l[ref];
        char n[24];
        say_address(l->address, addr, sizeof(addr));
        off_fmt_count(l->bathrooms, n, sizeof(n));
        if (l->bathrooms > 0)
            off_say(out, "%s has %s bathroom%s.", addr, n, l->bathrooms > 1 ? "s" : "");
        else
            off_say(out, "I'm afraid I don't know how many bathrooms %s has.", addr);
        s->focus = ref;
        return 1;
    }
    if (ref >= 0 && q.ask_available && !q.details) {
        say_address(r->l[ref].address, addr, sizeof(addr));
        off_say(out, "Yes, %s is still available. Would you like more details, or a viewing?",
                addr);
        s->focus = ref;
        return 1;
    }
    if (ref >= 0 && q.ask_price && !q.cheaper && !q.pricier) {
        char price[64];
        say_address(r->l[ref].address, addr, sizeof(addr));
        price_words(&r->l[ref], price, sizeof(price));
        off_say(out, "%s is %s %s.", addr, r->l[ref].deal == DEAL_RENT ? "for rent at" :
                                                                          "for sale at", price);
        s->focus = ref;
        return 1;
    }
    if (ref >= 0 && (q.details || q.ask_where || q.named >= 0 || q.ask_beds || q.ask_size ||
                     (q.ordinal != -1 && !q.cheaper && !q.bigger && !q.pricier && !q.smaller) ||
                     (q.feature >= 0 && q.ask_it && s->focus >= 0))) {
        if (q.feature >= 0 && !q.details) {
            const struct listing *l = &r->l[ref];
            int has = 0;
            for (size_t i = 0; i < l->nfeatures; i++)
                has |= l->features[i] == q.feature;
            say_address(l->address, addr, sizeof(addr));
            off_say(out, "%s, %s %s a %s.", has ? "Yes" : "No", addr, has ? "has" : "doesn't have",
                    r->features.names[q.feature]);
            s->focus = ref;
            return 1;
        }
        say_details(r, s, ref, out);
        return 1;
    }
    if (q.more && !q.cheaper && !q.bigger && s->shown > 0 && s->shown < s->nresults &&
        q.city < 0 && q.type < 0 && q.beds < 0) {
        present(r, s, out);
        return 1;
    }
    if (q.more && s->shown > 0 && s->shown >= s->nresults && q.hits <= 1) {
        off_say(out, "That's all I have with those criteria. Would you like to change the city, "
                     "the budget or the number of bedrooms?");
        return 1;
    }
    if (q.cheaper || q.pricier || q.bigger || q.smaller) {
        apply_filters(r, s, &q);
        if (!apply_relative(r, s, &q, &turned_down, out))
            return 1;
    } else if (q.hits == 0) {
        return 0;
    } else {
        if (q.everything) {
            int keep = s->pending_viewing;
            clear_filters(s);
            s->pending_viewing = keep;
        }
        apply_filters(r, s, &q);
    }
    if (q.yes_more) { /* "yes" to "more details?" */
        say_details(r, s, s->focus, out);
        return 1;
    }
    if (q.hits == 0)
        return 0;
    s->nresults = search(r, s, s->results);
    s->shown = 0;
    if (s->nresults == 0)
        present_nearest(r, s, turned_down, q.cheaper || q.pricier, out);
    else
        present(r, s, out);
    return 1;
}

/* --- help and re-prompts --- */

static void say_list(const struct distinct *d, char *buf, size_t n, const char *conj)
{
    size_t o = 0, k = d->count < 4 ? d->count : 4;
    buf[0] = '\0';
    for (size_t i = 0; i < k; i++) {
        int w = snprintf(buf + o, n - o, "%s%s", i == 0 ? "" : i + 1 == k ? conj : ", ",
                         d->names[i]);
        if (w < 0 || (size_t)w >= n - o)
            return;
        o += (size_t)w;
    }
}

static void re_help(const void *state, struct off_reply *out)
{
    const struct realestate *r = state;
    char cities[160];
    say_list(&r->cities, cities, sizeof(cities), " and ");
    off_say(out, "I can find homes to buy or rent in %s by neighbourhood, bedrooms and budget, "
                 "tell you more about each one, and request a viewing.", cities);
}

static void re_hint(const void *state, const void *ss, unsigned variant, struct off_reply *out)
{
    const struct realestate *r = state;
    const struct re_session *s = ss;
    const struct listing *l = &r->l[variant % r->count];
    char list[160], beds[24];
    if (s->shown - s->from > 1 && variant % 3 == 0) {
        off_say(out, "You can say, for example, tell me more about the first one, or anything "
                     "cheaper.");
        return;
    }
    if (s->city < 0) {
        say_list(&r->cities, list, sizeof(list), " or ");
        off_say(out, "Which city are you interested in: %s?", list);
    } else if (s->deal == DEAL_ANY) {
        off_say(out, "Are you looking to buy or to rent?");
    } else if (s->min_beds < 0 && s->max_beds < 0) {
        off_say(out, "How many bedrooms do you need?");
    } else if (s->max_price < 0) {
        off_say(out, "What is your budget?");
    } else {
        off_say(out, "You can ask about one of the homes, or change the city or the budget.");
    }
    off_fmt_count(l->bedrooms, beds, sizeof(beds));
    if (variant % 2)
        off_say(out, "For example, you could say: %s bedroom %s to %s in %s.", beds,
                r->types.names[l->type], l->deal == DEAL_RENT ? "rent" : "buy",
                r->cities.names[l->city]);
}

const struct off_skill off_realestate_skill = {
    .name = "realestate",
    .create = re_create,
    .destroy = re_destroy,
    .session_new = re_session_new,
    .session_free = re_session_free,
    .score = re_score,
    .reply = re_reply,
    .help = re_help,
    .hint = re_hint,
};
