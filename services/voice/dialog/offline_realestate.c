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
 *
 * This file: the session, the search and the turn. The catalogue, the understanding
 * of an utterance and the wording are in offline_realestate_{data,understand,say}.c.
 */
#include "offline_realestate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

static int re_score(const void *state, const void *ss, const struct off_input *in)
{
    struct re_req q;
    re_understand(state, ss, in, &q);
    return q.hits;
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
    re_describe_filters(r, s, what, sizeof(what));
    if (s->nresults == 1) {
        re_brief(r, s, s->results[0], b, sizeof(b));
        off_say(out, "I found one %s: %s. Would you like more details, or a viewing?", what, b);
        s->focus = s->results[0];
        s->from = 0;
        s->shown = 1;
        return;
    }
    n = s->nresults - start < SHOWN_MAX ? s->nresults - start : SHOWN_MAX;
    off_fmt_count((long long)s->nresults, count, sizeof(count));
    if (start == 0)
        off_say(out, "I found %s matches for %s %s.", count, re_article(what), what);
    else
        off_say(out, "Here are more.");
    for (size_t i = 0; i < n; i++) {
        re_brief(r, s, s->results[start + i], b, sizeof(b));
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
    re_describe_filters(r, s, what, sizeof(what));
    off_say(out, "I don't have %s %s right now.", re_article(what), what);
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
    re_brief(r, s, best, b, sizeof(b));
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

    re_understand(r, s, in, &q);
    if (s->pending_viewing >= 0 && (in->yes || in->no) && q.hits <= 4) {
        re_say_address(r->l[s->pending_viewing].address, addr, sizeof(addr));
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
        re_say_address(r->l[ref].address, addr, sizeof(addr));
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
        re_say_address(l->address, addr, sizeof(addr));
        off_fmt_count(l->bathrooms, n, sizeof(n));
        if (l->bathrooms > 0)
            off_say(out, "%s has %s bathroom%s.", addr, n, l->bathrooms > 1 ? "s" : "");
        else
            off_say(out, "I'm afraid I don't know how many bathrooms %s has.", addr);
        s->focus = ref;
        return 1;
    }
    if (ref >= 0 && q.ask_available && !q.details) {
        re_say_address(r->l[ref].address, addr, sizeof(addr));
        off_say(out, "Yes, %s is still available. Would you like more details, or a viewing?",
                addr);
        s->focus = ref;
        return 1;
    }
    if (ref >= 0 && q.ask_price && !q.cheaper && !q.pricier) {
        char price[64];
        re_say_address(r->l[ref].address, addr, sizeof(addr));
        re_price_words(&r->l[ref], price, sizeof(price));
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
            re_say_address(l->address, addr, sizeof(addr));
            off_say(out, "%s, %s %s a %s.", has ? "Yes" : "No", addr, has ? "has" : "doesn't have",
                    r->features.names[q.feature]);
            s->focus = ref;
            return 1;
        }
        re_say_details(r, s, ref, out);
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
        re_say_details(r, s, s->focus, out);
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
