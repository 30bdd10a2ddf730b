/*
 * The property-search skill's understanding: what one utterance asks for (a city,
 * neighbourhood, type, sale or rent, bedrooms, budget, a feature, a listing named or
 * pointed at, a question about it), built without touching the session.
 */
#include "offline_realestate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

void re_understand(const struct realestate *r, const struct re_session *s,
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
