/*
 * The appointment skill's wording: a slot said the way a person would ("Monday at nine
 * in the morning"), where a department is, help and re-prompts.
 */
#include "offline_appointments.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* "Monday at nine in the morning" */
void ap_slot_words(const struct slot *s, char *buf, size_t n)
{
    char t[64];
    off_fmt_time(s->minute, t, sizeof(t));
    snprintf(buf, n, "%s at %s", ap_day_names[s->day], t);
}

void ap_say_floor(const struct dept *d, struct off_reply *out, const char *lead)
{
    char nth[24];
    if (d->floor <= 0) {
        off_say(out, "%s%s.", lead, d->name);
        return;
    }
    off_fmt_ordinal(d->floor, nth, sizeof(nth));
    off_say(out, "%s%s, on the %s floor.", lead, d->name, nth);
}

void ap_help(const void *state, struct off_reply *out)
{
    (void)state;
    off_say(out, "I can find the right department and doctor, tell you their free times and "
                 "book an appointment for you.");
}

void ap_hint(const void *state, const void *ss, unsigned variant, struct off_reply *out)
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
