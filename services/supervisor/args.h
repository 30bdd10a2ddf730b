/*
 * The command line of vap-supervisor: option parsing and validation, nothing else.
 * Every rejected argument is named in the message printed to stderr, and everything
 * that can be checked before a child starts (names, executables, path lengths) is
 * checked here, so the supervisor fails at startup rather than at a restart.
 */
#ifndef SUP_ARGS_H
#define SUP_ARGS_H

#include <stdbool.h>

#define SUP_NAME_MAX 32

/* One NAME:PATH argument. */
struct sup_service {
    char name[SUP_NAME_MAX + 1]; /* [A-Za-z0-9_-]+, not "supervisor" */
    const char *path;            /* points into argv; a regular, executable file when checked */
};

struct sup_args {
    const char *log_dir;
    const char *run_dir;
    long restart_delay_ms; /* 0..60000, default 200 */
    long stop_timeout_s;   /* 0..3600, default 20 */
    struct sup_service *services;
    int nservices;
    bool help; /* --help was given; nothing else was checked */
};

/* The text --help prints. */
extern const char sup_usage[];

/*
 * Fills a from argv. Returns 0, or a negative errno after printing to stderr what is
 * wrong. Paths point into argv, which is left as it was (ps shows the real command line);
 * the caller frees a->services, also on failure.
 */
int sup_args_parse(struct sup_args *a, int argc, char **argv);

#endif
