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
 *
 * This file: the session, finding, offering and booking slots, and the turn. The data,
 * the understanding of an utterance and the wording are in
 * offline_appointments_{data,understand,say}.c.
 */
#include "offline_appointments.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

static int ap_score(const void *state, const void *ss, const struct off_input *in)
{
    struct ap_req q;
    ap_understand(state, ss, in, &q);
    return q.hits;
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
        ap_slot_words(sl, when, sizeof(when));
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
    ap_slot_words(sl, when, sizeof(when));
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

    ap_understand(a, s, in, &q);
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
            ap_slot_words(&a->slots[s->last_booked], when, sizeof(when));
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
        ap_slot_words(&a->slots[s->pending], when, sizeof(when));
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
            ap_say_floor(&a->depts[s->dept], &lead, "That sounds like one for ");
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
