/*
 * The property-search skill's wording: listings and filters said the way a person
 * would ("a three bedroom house at 12 Maple Street in Oakwood, for 350,000 dollars"),
 * the details of one listing, help and re-prompts.
 */
#include "offline_realestate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* "a" or "an" before word. */
const char *re_article(const char *word)
{
    return strchr("aeiouAEIOU", word[0]) && word[0] ? "an" : "a";
}

/* "12 Maple Street" with abbreviations a speech synthesiser stumbles over spelled out. */
void re_say_address(const char *address, char *buf, size_t n)
{
    const char *apt = strstr(address, "Apt ");
    if (apt)
        snprintf(buf, n, "%.*sApartment %s", (int)(apt - address), address, apt + 4);
    else
        snprintf(buf, n, "%s", address);
}

void re_price_words(const struct listing *l, char *buf, size_t n)
{
    char money[48];
    off_fmt_money(l->price, money, sizeof(money));
    snprintf(buf, n, "%s%s", money, l->deal == DEAL_RENT ? " a month" : "");
}

/* "a three bedroom house at 12 Maple Street in Oakwood, for 350,000 dollars" */
void re_brief(const struct realestate *r, const struct re_session *s, int li, char *buf,
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
    re_say_address(l->address, addr, sizeof(addr));
    re_price_words(l, price, sizeof(price));
    if (l->hood >= 0 && s->city == l->city)
        snprintf(where, sizeof(where), " in %s", r->hoods.names[l->hood]);
    else if (l->hood >= 0)
        snprintf(where, sizeof(where), " in %s, %s", r->hoods.names[l->hood],
                 r->cities.names[l->city]);
    else if (s->city != l->city)
        snprintf(where, sizeof(where), " in %s", r->cities.names[l->city]);
    snprintf(buf, n, "%s %s%s at %s%s, for %s", re_article(beds[0] ? beds : type), beds, type, addr,
             where, price);
}

/* "three bedroom house for sale in Springfield under 400,000 dollars" */
void re_describe_filters(const struct realestate *r, const struct re_session *s, char *buf,
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

void re_say_details(const struct realestate *r, struct re_session *s, int li,
                        struct off_reply *out)
{
    const struct listing *l = &r->l[li];
    char addr[160], price[64], beds[32], n[32];
    re_say_address(l->address, addr, sizeof(addr));
    re_price_words(l, price, sizeof(price));
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

void re_help(const void *state, struct off_reply *out)
{
    const struct realestate *r = state;
    char cities[160];
    say_list(&r->cities, cities, sizeof(cities), " and ");
    off_say(out, "I can find homes to buy or rent in %s by neighbourhood, bedrooms and budget, "
                 "tell you more about each one, and request a viewing.", cities);
}

void re_hint(const void *state, const void *ss, unsigned variant, struct off_reply *out)
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
