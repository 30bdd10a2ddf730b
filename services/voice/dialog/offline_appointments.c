/*
 * The appointment skill of the offline dialog engine, on when the agent's "offline"
 * object has "departments": [{"id", "name", "keywords"?: [...], "floor"?}] and "doctors":
 * [{"name", "department", "slots": ["Monday 9:00", ...], "aliases"?: [...]}]. Aliases are
 * what the speech recogniser tends to hear for a hard name ("when" for "Nguyen").
 *
 * A department is found by name or by the visitor's words ("my child has a fever" ->
 * the one whose keywords include "child"), a doctor by name. Free slots are filtered by
 * day, part of the day and time, offered (at most three), and one becomes a pending
 * booking that "yes" confirms. Bookings live in the session only: the shared data is
 * read-only, so a slot booked here is still offered in another conversation.
 */
#include "offline_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"

#define KEYWORDS_MAX 16
#define ALIASES_MAX 8
#define OFFER_MAX 3

enum part { PART_ANY = 0, PART_MORNING, PART_AFTERNOON, PART_EVENING };

static const char *const day_names[7] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                         "Friday", "Saturday", "Sunday"};

struct dept {
    const char *id, *name;
    const char *keywords[KEYWORDS_MAX];
    size_t nkeywords;
    int floor; /* 0 = not said */
};

struct doctor {
    const char *name, *surname;
    const char *aliases[ALIASES_MAX];
    size_t naliases;
    int dept;
};

struct slot {
    int doctor, day, minute;
};

struct appts {
    struct dept *depts;
    struct doctor *doctors;
    struct slot *slots;
    size_t ndepts, ndoctors, nslots;
    const char *emergency;
};

struct ap_session {
    int dept, doctor, day, time; /* -1 = not chosen */
    enum part part;
    int offered[OFFER_MAX];
    size_t noffered;
    int pending;            /* slot awaiting "yes", -1 = none */
    int moving;             /* booked slot the pending one replaces, -1 = none */
    int last_booked;        /* -1 = none */
    unsigned char *booked;  /* one per slot */
};

struct ap_req {
    int dept, by_symptom, doctor, day, time, ordinal;
    enum part part;
    int book, cancel, availability, list_depts, list_doctors, where, emergency, other;
    int reschedule, works_in;
    int yes_no_question; /* "is doctor patel free ...": the answer starts with "Yes," */
    int hits;
};

/* --- data --- */

static void ap_destroy(void *state)
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
        if (strcasecmp(name, day_names[d]) == 0) {
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

static int ap_create(json_t *offline, void **state, char *err, size_t err_size)
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

static void ap_session_free(void *ss)
{
    struct ap_session *s = ss;
    if (!s)
        return;
    free(s->booked);
    free(s);
}

static void *ap_session_new(const void *state)
{
    const struct appts *a = state;
    struct ap_session *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->booked = calloc(a->nslots + 1, 1);
    if (!s->booked) {
        free(s);
        return NULL;
    }
    s->dept = s->doctor = s->day = s->time = s->pending = s->last_booked = s->moving = -1;
    return s;
}

/* --- understanding --- */

/* A department by name, id or a word starting like it ("cardiologist"). */
static int find_dept_by_name(const struct appts *a, const struct off_input *in)
{
    for (size_t d = 0; d < a->ndepts; d++) {
        const char *name = a->depts[d].name;
        char stem[8];
        if (off_find_name(in, name, NULL) || off_find_name(in, a->depts[d].id, NULL))
            return (int)d;
        if (strlen(name) < 7)
            continue;
        off_normalise(name, stem, 7); /* first six letters */
        for (size_t i = 0; i < in->n; i++)
            if (strlen(in->words[i]) >= 6 && strncmp(in->words[i], stem, 6) == 0)
                return (int)d;
    }
    return -1;
}

/* The department with the most of its keywords in the utterance (first wins a tie). */
static int find_dept_by_symptom(const struct appts *a, const struct off_input *in)
{
    int best = -1;
    size_t best_hits = 0;
    for (size_t d = 0; d < a->ndepts; d++) {
        size_t hits = 0;
        for (size_t k = 0; k < a->depts[d].nkeywords; k++)
            hits += off_has_phrase(in, a->depts[d].keywords[k]);
        if (hits > best_hits) {
            best_hits = hits;
            best = (int)d;
        }
    }
    return best;
}

static int find_doctor(const struct appts *a, const struct off_input *in)
{
    int best = -1, best_q = 0;
    for (size_t d = 0; d < a->ndoctors; d++) {
        int q = off_find_name(in, a->doctors[d].surname, NULL);
        for (size_t k = 0; k < a->doctors[d].naliases && q < 2; k++) {
            /* an alias may be a common word ("when"): only right after "doctor" */
            char phrase[128];
            snprintf(phrase, sizeof(phrase), "doctor %s", a->doctors[d].aliases[k]);
            if (off_has_phrase(in, phrase))
                q = 2;
            snprintf(phrase, sizeof(phrase), "dr %s", a->doctors[d].aliases[k]);
            if (off_has_phrase(in, phrase))
                q = 2;
        }
        if (q > best_q) {
            best_q = q;
            best = (int)d;
        }
    }
    return best;
}

static int find_day(const struct off_input *in)
{
    if (off_word_at(in, "today", 0) >= 0)
        return in->today;
    if (off_word_at(in, "tomorrow", 0) >= 0)
        return (in->today + 1) % 7;
    for (int d = 0; d < 7; d++)
        if (off_find_name(in, day_names[d], NULL))
            return d;
    return -1;
}

static int word_is(const struct off_input *in, size_t i, const char *w)
{
    return i < in->n && strcmp(in->words[i], w) == 0;
}

static int is_word_of(const struct off_input *in, size_t i, const char *const *list)
{
    for (; i < in->n && *list; list++)
        if (strcmp(in->words[i], *list) == 0)
            return 1;
    return 0;
}

/*
 * "at nine", "nine thirty", "two pm", "half past ten", "monday nine", "is nine on monday
 * possible", "noon": minutes after midnight, or -1. Any number 1..12 is taken for an
 * hour unless a unit follows it: nothing else is counted at a reception desk.
 */
static int find_time(const struct off_input *in)
{
    static const char *const not_hours[] = {"year", "years", "month", "months", "week", "weeks",
                                            "day", "days", "old", "minutes", "hours", "times",
                                            "floor", "people", "kids", "children", NULL};
    if (off_word_at(in, "noon", 0) >= 0 || off_word_at(in, "midday", 0) >= 0)
        return 12 * 60;
    for (size_t i = 0; i < in->n; i++) {
        long long h = in->num[i];
        size_t end = i + in->num_len[i];
        int m = 0, pm = -1, clock = 0;
        if (in->num_len[i] == 0 || h < 1 || h > 12)
            continue;
        if (i >= 2 && word_is(in, i - 1, "past") && word_is(in, i - 2, "half"))
            m = 30, clock = 1;
        else if (i >= 2 && word_is(in, i - 1, "past") && word_is(in, i - 2, "quarter"))
            m = 15, clock = 1;
        if (word_is(in, end, "oh") && end + 1 < in->n && in->num[end + 1] >= 1 &&
            in->num[end + 1] <= 9) {
            m = (int)in->num[end + 1];
            end += 2;
            clock = 1;
        } else if (end < in->n && in->num_len[end] && in->num[end] >= 10 && in->num[end] < 60) {
            m = (int)in->num[end];
            end += in->num_len[end];
            clock = 1;
        }
        if (word_is(in, end, "pm") || (word_is(in, end, "p") && word_is(in, end + 1, "m")))
            pm = 1, clock = 1;
        else if (word_is(in, end, "am") || (word_is(in, end, "a") && word_is(in, end + 1, "m")))
            pm = 0, clock = 1;
        else if (word_is(in, end, "oclock") || (word_is(in, end, "o") && word_is(in, end + 1, "clock")))
            clock = 1;
        if (!clock && is_word_of(in, end, not_hours))
            continue; /* "five years old", "two days" */
        if (pm < 0) /* no am/pm: the hours a clinic keeps */
            pm = h >= 1 && h <= 7;
        if (pm == 1 && h < 12)
            h += 12;
        if (pm == 0 && h == 12)
            h = 0;
        return (int)h * 60 + m;
    }
    return -1;
}

static void understand(const struct appts *a, const struct ap_session *s,
                       const struct off_input *in, struct ap_req *q)
{
    static const char *const book[] = {"book", "booking", "appointment", "schedule", "reserve",
                                       "appointments", NULL};
    static const char *const avail[] = {"free", "available", "availability", "slot", "slots",
                                        "opening", "openings", "times", "when", NULL};
    static const char *const emergency[] = {
        "emergency", "heart attack", "cant breathe", "can not breathe", "cannot breathe",
        "not breathing", "unconscious", "stroke", "overdose", "ambulance", "severe bleeding",
        "bleeding heavily", NULL};
    memset(q, 0, sizeof(*q));
    q->doctor = find_doctor(a, in);
    q->dept = find_dept_by_name(a, in);
    if (q->dept < 0 && q->doctor < 0) {
        q->dept = find_dept_by_symptom(a, in);
        q->by_symptom = q->dept >= 0;
    }
    q->day = find_day(in);
    q->time = find_time(in);
    q->part = off_word_at(in, "morning", 0) >= 0    ? PART_MORNING
              : off_word_at(in, "afternoon", 0) >= 0 ? PART_AFTERNOON
              : off_word_at(in, "evening", 0) >= 0   ? PART_EVENING
                                                     : PART_ANY;
    q->ordinal = off_ordinal(in);
    q->book = off_has_any(in, book) || off_has_phrase(in, "see a doctor") ||
              off_has_phrase(in, "see the doctor") || off_has_phrase(in, "ill take") ||
              off_has_phrase(in, "i will take") || off_has_phrase(in, "make it");
    q->cancel = off_has_any(in, (const char *const[]){"cancel", "cancellation", NULL});
    q->availability = off_has_any(in, avail) || off_has_phrase(in, "earliest") ||
                      off_has_phrase(in, "soonest") || off_has_phrase(in, "as soon as");
    q->list_depts = off_has_any(in, (const char *const[]){"departments", "department", NULL}) &&
                    off_has_any(in, (const char *const[]){"what", "which", "list", "have",
                                                          NULL});
    q->list_doctors = off_has_phrase(in, "which doctors") || off_has_phrase(in, "what doctors") ||
                      off_has_phrase(in, "who is") || off_has_phrase(in, "who are") ||
                      off_has_phrase(in, "which doctor");
    q->where = off_has_any(in, (const char *const[]){"where", "floor", "located", NULL});
    for (const char *const *p = emergency; *p && !q->emergency; p++)
        q->emergency = off_has_phrase(in, *p);
    q->other = off_has_any(in, (const char *const[]){"another", "other", "different", "else",
                                                     "later", NULL});
    q->yes_no_question = in->n > 0 && is_word_of(in, 0, (const char *const[]){
                                                    "is", "are", "can", "could", "does", "do",
                                                    NULL});
    q->reschedule = off_has_any(in, (const char *const[]){"reschedule", "move", "postpone",
                                                          NULL}) ||
                    off_has_phrase(in, "change my appointment");
    q->works_in = q->doctor >= 0 && q->dept >= 0 &&
                  off_has_any(in, (const char *const[]){"work", "works", "working", NULL});
    if (off_has_any(in, (const char *const[]){"visit", "visiting", "visitor", NULL}) &&
        !q->book && q->doctor < 0) {
        memset(q, 0, sizeof(*q)); /* visiting a patient is no appointment */
        q->dept = q->doctor = q->day = q->time = q->ordinal = -1;
        return;
    }
    q->hits = (q->doctor >= 0) * 2 + (q->dept >= 0) * 2 + (q->day >= 0) +
              (q->part != PART_ANY) + (q->time >= 0) + q->book + q->availability +
              q->list_depts + q->list_doctors + q->emergency * 5 +
              (q->where && (q->dept >= 0 || s->dept >= 0)) +
              (q->cancel && (s->last_booked >= 0 || s->pending >= 0)) * 2 +
              (q->reschedule && s->last_booked >= 0) * 2;
    if (s->noffered > 0)
        q->hits += (q->ordinal != -1) + q->other;
    if (s->pending >= 0 && (in->yes || in->no))
        q->hits += 3;
}

static int ap_score(const void *state, const void *ss, const struct off_input *in)
{
    struct ap_req q;
    understand(state, ss, in, &q);
    return q.hits;
}

/* --- saying things --- */

/* "Monday at nine in the morning" */
static void slot_words(const struct slot *s, char *buf, size_t n)
{
    char t[64];
    off_fmt_time(s->minute, t, sizeof(t));
    snprintf(buf, n, "%s at %s", day_names[s->day], t);
}

static void say_floor(const struct dept *d, struct off_reply *out, const char *lead)
{
    char nth[24];
    if (d->floor <= 0) {
        off_say(out, "%s%s.", lead, d->name);
        return;
    }
    off_fmt_ordinal(d->floor, nth, sizeof(nth));
    off_say(out, "%s%s, on the %s floor.", lead, d->name, nth);
}

static int slot_fits(const struct appts *a, const struct ap_session *s, size_t i, int use_when)
{
    const struct slot *sl = &a->slots[i];
    int h = sl->minute / 60;
    if (s->booked[i])
        return 0;
    if (s->doctor >= 0 ? sl->doctor != s->doctor : a->doctors[sl->doctor].dept != s->dept)
        return 0;
    if (!use_when)
        return 1;
    if (s->day >= 0 && sl->day != s->day)
        return 0;
    if (s->time >= 0 && sl->minute != s->time)
        return 0;
    if (s->part == PART_MORNING && h >= 12)
        return 0;
    if (s->part == PART_AFTERNOON && (h < 12 || h >= 17))
        return 0;
    return s->part != PART_EVENING || h >= 17;
}

/* Free slots fitting the session's choices, earliest in the week first. */
static size_t find_slots(const struct appts *a, const struct ap_session *s, int use_when,
                         const int *skip, size_t nskip, int *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < a->nslots; i++) {
        int skipped = 0;
        for (size_t k = 0; k < nskip; k++)
            skipped |= skip[k] == (int)i;
        if (skipped || !slot_fits(a, s, i, use_when))
            continue;
        int key = a->slots[i].day * 1440 + a->slots[i].minute;
        size_t j;
        if (n == max) { /* full: replace the latest if this one is earlier */
            const struct slot *last = &a->slots[out[max - 1]];
            if (last->day * 1440 + last->minute <= key)
                continue;
            j = max - 1;
        } else {
            j = n++;
        }
        for (; j > 0 && a->slots[out[j - 1]].day * 1440 + a->slots[out[j - 1]].minute > key; j--)
            out[j] = out[j - 1];
        out[j] = (int)i;
    }
    return n;
}

/* "Doctor Patel is free on Monday at nine in the morning and ..." */
static void offer(const struct appts *a, struct ap_session *s, const int *slots, size_t n,
                  const char *lead, struct off_reply *out)
{
    char when[96], list[512];
    size_t o = 0;
    int one_doctor = 1;
    for (size_t i = 1; i < n; i++)
        one_doctor &= a->slots[slots[i]].doctor == a->slots[slots[0]].doctor;
    list[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const struct slot *sl = &a->slots[slots[i]];
        int w;
        slot_words(sl, when, sizeof(when));
        w = snprintf(list + o, sizeof(list) - o, "%s%s%s%s",
                     i == 0 ? "" : i + 1 == n ? (n > 2 ? ", or " : " or ") : ", ",
                     one_doctor ? "" : a->doctors[sl->doctor].name, one_doctor ? "" : " on ",
                     when);
        if (w < 0 || (size_t)w >= sizeof(list) - o)
            break;
        o += (size_t)w;
        s->offered[i] = slots[i];
    }
    s->noffered = n;
    if (one_doctor)
        off_say(out, "%s%s is free on %s.", lead, a->doctors[a->slots[slots[0]].doctor].name,
                list);
    else
        off_say(out, "%sI can offer %s.", lead, list);
    if (n == 1) {
        s->pending = slots[0];
        off_say(out, "Shall I book it?");
    } else {
        off_say(out, "Which would you like?");
    }
}

static void say_booked(const struct appts *a, struct ap_session *s, struct off_reply *out)
{
    const struct slot *sl = &a->slots[s->pending];
    const struct doctor *d = &a->doctors[sl->doctor];
    char when[96], nth[24];
    slot_words(sl, when, sizeof(when));
    const char *lead = s->moving >= 0 ? "I've moved your appointment: you're now" : "You're";
    if (s->moving >= 0)
        s->booked[s->moving] = 0;
    s->moving = -1;
    s->booked[s->pending] = 1;
    s->last_booked = s->pending;
    s->pending = -1;
    s->noffered = 0;
    s->time = -1;
    if (a->depts[d->dept].floor > 0) {
        off_fmt_ordinal(a->depts[d->dept].floor, nth, sizeof(nth));
        off_say(out, "%s booked with %s on %s, in %s on the %s floor.", lead, d->name, when,
                a->depts[d->dept].name, nth);
    } else {
        off_say(out, "%s booked with %s on %s, in %s.", lead, d->name, when,
                a->depts[d->dept].name);
    }
    off_say(out, "Please arrive ten minutes early. Is there anything else?");
}

/* --- the turn --- */

static int ap_reply(const void *state, void *ss, const struct off_input *in,
                    struct off_reply *out)
{
    const struct appts *a = state;
    struct ap_session *s = ss;
    struct ap_req q;
    int found[OFFER_MAX];
    size_t n;
    char when[96];
    int new_choice;

    understand(a, s, in, &q);
    if (q.emergency) {
        off_say(out, "%s", a->emergency);
        return 1;
    }
    if (s->pending >= 0 && in->yes && !in->no && !q.cancel && q.day < 0 && q.time < 0) {
        say_booked(a, s, out);
        return 1;
    }
    if (q.cancel) {
        if (s->pending >= 0) {
            s->pending = -1;
            off_say(out, "All right, I won't book it. Would another time suit you?");
        } else if (s->last_booked >= 0) {
            slot_words(&a->slots[s->last_booked], when, sizeof(when));
            off_say(out, "I've cancelled your appointment with %s on %s. Anything else?",
                    a->doctors[a->slots[s->last_booked].doctor].name, when);
            s->booked[s->last_booked] = 0;
            s->last_booked = -1;
        } else {
            off_say(out, "You have no appointment booked with me in this call.");
        }
        return 1;
    }
    if (s->pending >= 0 && in->no && q.day < 0 && q.time < 0 && q.part == PART_ANY) {
        int skip = s->pending;
        s->pending = -1;
        n = find_slots(a, s, 0, &skip, 1, found, OFFER_MAX);
        if (n == 0) {
            off_say(out, "No problem. There are no other free times, I'm afraid.");
            return 1;
        }
        offer(a, s, found, n, "No problem. Otherwise ", out);
        return 1;
    }
    s->pending = -1;
    if (q.reschedule && s->last_booked >= 0) {
        s->moving = s->last_booked;
        if (q.doctor < 0) {
            q.doctor = a->slots[s->last_booked].doctor;
            q.dept = -1;
        }
        q.availability = 1;
    } else if (!q.reschedule) {
        s->moving = -1;
    }
    if (q.works_in) {
        const struct doctor *d = &a->doctors[q.doctor];
        if (d->dept == q.dept)
            off_say(out, "Yes, %s works in %s.", d->name, a->depts[q.dept].name);
        else
            off_say(out, "No, %s works in %s.", d->name, a->depts[d->dept].name);
        off_say(out, "Would you like to book an appointment?");
        s->doctor = q.doctor;
        s->dept = d->dept;
        return 1;
    }
    if (q.ordinal != -1 && s->noffered > 0 && q.day < 0 && q.time < 0) {
        size_t k = q.ordinal == OFF_LAST ? s->noffered - 1 : (size_t)q.ordinal;
        if (k >= s->noffered) {
            off_say(out, "I offered %zu times. Which one would you like?", s->noffered);
            return 1;
        }
        s->pending = s->offered[k];
        slot_words(&a->slots[s->pending], when, sizeof(when));
        off_say(out, "%s on %s. Shall I book it?", a->doctors[a->slots[s->pending].doctor].name,
                when);
        return 1;
    }
    if (q.list_depts && q.dept < 0 && q.doctor < 0) {
        char list[512];
        size_t o = 0;
        for (size_t d = 0; d < a->ndepts; d++) {
            int w = snprintf(list + o, sizeof(list) - o, "%s%s",
                             d == 0 ? "" : d + 1 == a->ndepts ? " and " : ", ", a->depts[d].name);
            if (w < 0 || (size_t)w >= sizeof(list) - o)
                break;
            o += (size_t)w;
        }
        off_say(out, "We have %s. Which one do you need?", list);
        return 1;
    }

    new_choice = (q.doctor >= 0 && q.doctor != s->doctor) ||
                 (q.doctor < 0 && q.dept >= 0 && q.dept != s->dept);
    if (q.doctor >= 0) {
        s->doctor = q.doctor;
        s->dept = a->doctors[q.doctor].dept;
    } else if (q.dept >= 0) {
        if (q.dept != s->dept)
            s->doctor = -1;
        s->dept = q.dept;
    }
    if (q.day >= 0 || q.time >= 0 || q.part != PART_ANY) {
        s->day = q.day >= 0 ? q.day : (q.time >= 0 || q.part != PART_ANY) ? s->day : -1;
        s->time = q.time;
        s->part = q.part;
    } else if (new_choice) {
        s->day = s->time = -1;
        s->part = PART_ANY;
    }
    if (s->dept < 0) {
        if (q.hits == 0 && !q.other)
            return 0;
        off_say(out, "Of course. What is the appointment about, or which doctor would you like "
                     "to see?");
        return 1;
    }
    if (q.where && !q.book && !q.availability && q.day < 0) {
        const struct dept *d = &a->depts[s->dept];
        char nth[24];
        off_fmt_ordinal(d->floor, nth, sizeof(nth));
        if (d->floor > 0)
            off_say(out, "%s is on the %s floor.", d->name, nth);
        else
            off_say(out, "Please ask at the main desk for %s when you arrive.", d->name);
        return 1;
    }
    if (q.list_doctors && q.doctor < 0) {
        char list[256];
        size_t o = 0, count = 0;
        for (size_t d = 0; d < a->ndoctors; d++)
            if (a->doctors[d].dept == s->dept) {
                int w = snprintf(list + o, sizeof(list) - o, "%s%s", count ? " and " : "",
                                 a->doctors[d].name);
                if (w < 0 || (size_t)w >= sizeof(list) - o)
                    break;
                o += (size_t)w;
                count++;
            }
        off_say(out, "In %s we have %s.", a->depts[s->dept].name, count ? list : "no doctors");
    }
    if (q.hits == 0 && !q.other && !in->yes)
        return 0;

    {
        struct off_reply lead = {.len = 0};
        int *skip = q.other ? s->offered : NULL;
        size_t nskip = q.other ? s->noffered : 0;
        const char *who = s->doctor >= 0 ? a->doctors[s->doctor].name : a->depts[s->dept].name;
        if (q.by_symptom && new_choice)
            say_floor(&a->depts[s->dept], &lead, "That sounds like one for ");
        n = find_slots(a, s, 1, skip, nskip, found, OFFER_MAX);
        if (n > 0) {
            if (lead.len == 0 && q.yes_no_question)
                off_say(&lead, "Yes,");
            offer(a, s, found, n, "", &lead);
            off_say(out, "%s", lead.text);
            return 1;
        }
        n = find_slots(a, s, 0, skip, nskip, found, OFFER_MAX);
        if (n == 0) {
            off_say(out, "%s I'm sorry, %s has no free appointments left.", lead.text, who);
            s->noffered = 0;
            return 1;
        }
        if ((s->day >= 0 || s->time >= 0 || s->part != PART_ANY) && s->doctor >= 0)
            off_say(&lead, "Sorry, %s has nothing free then.", who);
        else if (s->day >= 0 || s->time >= 0 || s->part != PART_ANY)
            off_say(&lead, "Sorry, there is nothing free in %s then.", who);
        offer(a, s, found, n, "", &lead);
        off_say(out, "%s", lead.text);
        return 1;
    }
}

/* --- help and re-prompts --- */

static void ap_help(const void *state, struct off_reply *out)
{
    (void)state;
    off_say(out, "I can find the right department and doctor, tell you their free times and "
                 "book an appointment for you.");
}

static void ap_hint(const void *state, const void *ss, unsigned variant, struct off_reply *out)
{
    const struct appts *a = state;
    const struct ap_session *s = ss;
    const struct dept *d = &a->depts[variant % a->ndepts];
    if (s->noffered > 1) {
        off_say(out, "You can say book the first one, or ask for another day.");
    } else if (s->dept >= 0 && variant % 2) {
        off_say(out, "Would you like me to check free times in %s?", a->depts[s->dept].name);
    } else if (d->nkeywords > 0 && a->ndoctors > 0) {
        off_say(out, "Tell me what the appointment is for, for example a %s problem, or name a "
                     "doctor, like %s.", d->keywords[0],
                a->doctors[variant % a->ndoctors].name);
    } else {
        off_say(out, "Which department or doctor would you like to see?");
    }
}

const struct off_skill off_appointments_skill = {
    .name = "appointments",
    .create = ap_create,
    .destroy = ap_destroy,
    .session_new = ap_session_new,
    .session_free = ap_session_free,
    .score = ap_score,
    .reply = ap_reply,
    .help = ap_help,
    .hint = ap_hint,
};
