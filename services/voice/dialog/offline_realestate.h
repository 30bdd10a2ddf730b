/*
 * The property-search skill's pieces, shared by its four files: the catalogue read from
 * the agent's "offline" object (offline_realestate_data.c), what an utterance asks for
 * (offline_realestate_understand.c), the search and the turn (offline_realestate.c) and
 * the wording of what is said (offline_realestate_say.c).
 */
#ifndef VAP_OFFLINE_REALESTATE_H
#define VAP_OFFLINE_REALESTATE_H

#include "offline_internal.h"


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

/* offline_realestate_data.c: the listings, or *state NULL when there are none. */
int re_create(json_t *offline, void **state, char *err, size_t err_size);
void re_destroy(void *state);

/* offline_realestate_understand.c: what one utterance asks for (q->hits: how much). */
void re_understand(const struct realestate *r, const struct re_session *s,
                   const struct off_input *in, struct re_req *q);

/* offline_realestate_say.c */
const char *re_article(const char *word); /* "a" or "an" before word */
void re_say_address(const char *address, char *buf, size_t n);
void re_price_words(const struct listing *l, char *buf, size_t n);
void re_brief(const struct realestate *r, const struct re_session *s, int li, char *buf,
              size_t n);
void re_describe_filters(const struct realestate *r, const struct re_session *s, char *buf,
                         size_t n);
/* Says everything about listing li and makes it the one talked about. */
void re_say_details(const struct realestate *r, struct re_session *s, int li,
                    struct off_reply *out);
void re_help(const void *state, struct off_reply *out);
void re_hint(const void *state, const void *ss, unsigned variant, struct off_reply *out);

#endif
