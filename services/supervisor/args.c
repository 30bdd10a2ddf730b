/*
 * Command-line parsing for vap-supervisor (see args.h). It checks what it can up
 * front: the integers' ranges, the NAME syntax, that each PATH is an executable
 * regular file, and that no path built from the directories can overflow PATH_MAX.
 */
#include "args.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char sup_usage[] =
    "usage: vap-supervisor --log-dir DIR --run-dir DIR [--restart-delay-ms MS]\n"
    "                      [--stop-timeout-s S] NAME:PATH [NAME:PATH ...]\n"
    "Runs each PATH (no arguments; env plus VAP_SERVICE_NAME=NAME) with its output appended\n"
    "to LOG_DIR/NAME.log and its pid in RUN_DIR/NAME.pid, restarting it whenever it exits.\n"
    "SIGTERM/SIGINT stop all children (SIGKILL after the timeout); a second one is\n"
    "forwarded (a draining voice worker then stops at once); SIGHUP is forwarded.\n"
    "  --log-dir DIR          directory for NAME.log (created if missing)\n"
    "  --run-dir DIR          directory for NAME.pid and supervisor.pid (created if missing)\n"
    "  --restart-delay-ms MS  wait before restarting an exited child (200; 0..60000)\n"
    "  --stop-timeout-s S     wait for children to stop before SIGKILL (20; 0..3600)\n";

static int parse_long(const char *opt, const char *arg, long min, long max, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(arg, &end, 10);
    if (errno != 0 || end == arg || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "vap-supervisor: %s: '%s' is not an integer in %ld..%ld\n", opt, arg, min,
                max);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

/* Checks one NAME:PATH argument and fills svc. */
static int parse_service(const char *arg, struct sup_service *svc)
{
    static const char name_chars[] = "abcdefghijklmnopqrstuvwxyz"
                                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";
    const char *colon = strchr(arg, ':');
    size_t len = colon ? (size_t)(colon - arg) : 0;
    struct stat st;

    if (len == 0 || len > SUP_NAME_MAX || strspn(arg, name_chars) != len) {
        fprintf(stderr,
                "vap-supervisor: '%s': expected NAME:PATH, NAME being 1..%d letters, digits, "
                "'_' or '-'\n",
                arg, SUP_NAME_MAX);
        return -EINVAL;
    }
    memcpy(svc->name, arg, len);
    svc->name[len] = '\0';
    svc->path = colon + 1;
    if (strcmp(svc->name, "supervisor") == 0) {
        fprintf(stderr, "vap-supervisor: '%s': the name is reserved\n", arg);
        return -EINVAL;
    }
    if (stat(svc->path, &st) != 0 || access(svc->path, X_OK) != 0) {
        fprintf(stderr, "vap-supervisor: '%s': %s\n", arg, strerror(errno));
        return -EINVAL;
    }
    if (!S_ISREG(st.st_mode)) {
        fprintf(stderr, "vap-supervisor: '%s': not a regular file\n", arg);
        return -EINVAL;
    }
    return 0;
}

static int parse_services(struct sup_args *a, int n, char **argv)
{
    a->services = calloc((size_t)n, sizeof(*a->services));
    if (!a->services)
        return -ENOMEM;
    for (int i = 0; i < n; i++) {
        int rv = parse_service(argv[i], &a->services[i]);
        if (rv != 0)
            return rv;
        for (int j = 0; j < i; j++) {
            if (strcmp(a->services[j].name, a->services[i].name) == 0) {
                fprintf(stderr, "vap-supervisor: '%s': NAME given twice\n", a->services[i].name);
                return -EINVAL;
            }
        }
        a->nservices = i + 1;
    }
    return 0;
}

int sup_args_parse(struct sup_args *a, int argc, char **argv)
{
    static const struct option opts[] = {
        {"log-dir", required_argument, NULL, 'l'},
        {"run-dir", required_argument, NULL, 'r'},
        {"restart-delay-ms", required_argument, NULL, 'd'},
        {"stop-timeout-s", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int rv = 0;

    a->restart_delay_ms = 200;
    a->stop_timeout_s = 20;
    while (rv == 0) {
        int opt = getopt_long(argc, argv, "h", opts, NULL);
        if (opt == -1)
            break;
        if (opt == 'l')
            a->log_dir = optarg;
        else if (opt == 'r')
            a->run_dir = optarg;
        else if (opt == 'd')
            rv = parse_long("--restart-delay-ms", optarg, 0, 60000, &a->restart_delay_ms);
        else if (opt == 't')
            rv = parse_long("--stop-timeout-s", optarg, 0, 3600, &a->stop_timeout_s);
        else if (opt == 'h')
            a->help = true;
        else
            rv = -EINVAL; /* getopt has already named the bad option */
    }
    if (rv != 0 || a->help)
        return rv;
    if (!a->log_dir || !a->run_dir || optind == argc) {
        fprintf(stderr, "vap-supervisor: %s\n",
                !a->log_dir   ? "--log-dir is required"
                : !a->run_dir ? "--run-dir is required"
                              : "no NAME:PATH given");
        return -EINVAL;
    }
    /* Room for "/NAME.pid.tmp": building a child's paths can then never fail. */
    if (strlen(a->log_dir) > PATH_MAX - 64 || strlen(a->run_dir) > PATH_MAX - 64) {
        fprintf(stderr, "vap-supervisor: --%s: too long\n",
                strlen(a->log_dir) > PATH_MAX - 64 ? "log-dir" : "run-dir");
        return -ENAMETOOLONG;
    }
    return parse_services(a, argc - optind, argv + optind);
}
