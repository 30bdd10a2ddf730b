/*
 * The appointment skill's understanding: what one utterance asks for (a department by
 * name or by symptom, a doctor, a day, part of the day or time, which offered slot, to
 * book, cancel or move), built without touching the session.
 */
#include "offline_appointments.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
        if (off_find_name(in, ap_day_names[d], NULL))
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

void ap_understand(const struct appts *a, const struct ap_session *s,
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
