/*
 * The appointment skill's pieces, shared by its four files: departments, doctors and
 * slots read from the agent's "offline" object (offline_appointments_data.c), what an
 * utterance asks for (offline_appointments_understand.c), finding, offering and booking
 * slots in the turn (offline_appointments.c) and the wording of slots, floors, help and
 * re-prompts (offline_appointments_say.c).
 */
#ifndef VAP_OFFLINE_APPOINTMENTS_H
#define VAP_OFFLINE_APPOINTMENTS_H

#include "offline_internal.h"

#define KEYWORDS_MAX 16
#define ALIASES_MAX 8
#define OFFER_MAX 3

enum part { PART_ANY = 0, PART_MORNING, PART_AFTERNOON, PART_EVENING };
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

extern const char *const ap_day_names[7]; /* Monday first */

/* offline_appointments_data.c: the data, or *state NULL when the agent has none. */
int ap_create(json_t *offline, void **state, char *err, size_t err_size);
void ap_destroy(void *state);

/* offline_appointments_understand.c: what one utterance asks for (q->hits: how much). */
void ap_understand(const struct appts *a, const struct ap_session *s,
                   const struct off_input *in, struct ap_req *q);

/* offline_appointments_say.c */
void ap_slot_words(const struct slot *s, char *buf, size_t n); /* "Monday at nine ..." */
void ap_say_floor(const struct dept *d, struct off_reply *out, const char *lead);
void ap_help(const void *state, struct off_reply *out);
void ap_hint(const void *state, const void *ss, unsigned variant, struct off_reply *out);

#endif
