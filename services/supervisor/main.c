/*
 * vap-supervisor keeps the portal's service processes running on one machine. It starts
 * each NAME:PATH (see args.h) with its output appended to LOG_DIR/NAME.log and its pid in
 * RUN_DIR/NAME.pid, and starts it again whenever it exits. A child that dies within a
 * second of its start waits twice as long as last time, capped at one second, so a crash
 * loop stays cheap and a kill -9 is repaired within two seconds. SIGTERM/SIGINT stop all
 * (SIGTERM, then SIGKILL after the timeout; a second SIGTERM/SIGINT is forwarded as a
 * second SIGTERM, which tells a draining voice worker to stop now); SIGHUP is forwarded.
 * It runs no health checks.
 *
 * All signals arrive through a signalfd, so the program is one poll() loop whose timeout
 * is the next restart or the stop deadline; no handler runs asynchronously. Each child
 * leads its own process group: a terminal's Ctrl-C reaches only the supervisor, and what
 * a dead child left in its group is killed before it starts again (it could hold a port).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "args.h"

#define SUP_QUICK_DEATH_MS 1000 /* a child dying sooner than this backs off */
#define SUP_BACKOFF_CAP_MS 1000
#define SUP_BACKOFF_MIN_MS 50 /* even with --restart-delay-ms 0, a crash loop never spins */

struct child {
    const char *name;
    const char *path;
    pid_t pid;             /* 0 while not running */
    int64_t started_ms;    /* monotonic, like every *_ms time here */
    int64_t restart_at_ms; /* 0 when no start is pending */
    int64_t delay_ms;      /* wait before the next start */
};

struct supervisor {
    struct sup_args cfg;
    struct child *children;
    int nchildren;
    int running; /* children with a pid */
    bool stopping;
    int64_t stop_deadline_ms; /* 0 once the stragglers got SIGKILL */
    pid_t self;
    int sig_fd;
    int lock_fd; /* holds the flock on RUN_DIR/supervisor.pid */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Writes one JSON line to stderr. fields is a printf format adding members, each led by
 * a comma. Nothing is escaped: msg is a literal, child names are [A-Za-z0-9_-], and the
 * values are numbers, status words and strerror text.
 */
__attribute__((format(printf, 4, 5))) static void
sup_log(const char *level, const char *msg, const struct child *c, const char *fields, ...)
{
    char line[1024], ts[32];
    struct timespec now;
    struct tm tm;
    va_list ap;
    int n, m;

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    n = snprintf(line, sizeof(line),
                 "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"service\":\"supervisor\","
                 "\"msg\":\"%s\"%s%s%s",
                 ts, now.tv_nsec / 1000000, level, msg, c ? ",\"child\":\"" : "", c ? c->name : "",
                 c ? "\"" : "");
    if (n < 0 || (size_t)n >= sizeof(line) - 3)
        return;
    va_start(ap, fields);
    m = vsnprintf(line + n, sizeof(line) - 3 - (size_t)n, fields, ap);
    va_end(ap);
    if (m > 0 && (size_t)m < sizeof(line) - 3 - (size_t)n)
        n += m; /* a member that does not fit is left out whole, keeping the JSON valid */
    memcpy(line + n, "}\n", 2);
    if (write(STDERR_FILENO, line, (size_t)n + 2) < 0)
        return; /* nowhere left to report it */
}

/* Builds DIR/NAME.EXT into a PATH_MAX buffer; sup_args_parse made sure it fits. */
static char *join_path(char *dst, const char *dir, const char *name, const char *ext)
{
    int n = snprintf(dst, PATH_MAX, "%s/%s%s", dir, name, ext);
    if (n < 0 || n >= PATH_MAX)
        abort();
    return dst;
}

/* Replaces RUN_DIR/NAME.pid atomically, so a reader never sees a half-written pid. */
static int write_pid_file(const struct supervisor *s, const char *name, pid_t pid)
{
    char tmp[PATH_MAX], path[PATH_MAX];
    FILE *f;
    int rv;

    join_path(tmp, s->cfg.run_dir, name, ".pid.tmp");
    f = fopen(tmp, "we");
    if (!f)
        return -errno;
    rv = fprintf(f, "%d\n", (int)pid) < 0 ? -EIO : 0;
    if (fclose(f) != 0 && rv == 0)
        rv = -errno;
    if (rv == 0 && rename(tmp, join_path(path, s->cfg.run_dir, name, ".pid")) != 0)
        rv = -errno;
    if (rv != 0)
        unlink(tmp);
    return rv;
}

/* Runs in the forked child; never returns. logfd becomes its stdout and stderr. */
static void exec_child(const struct child *c, int logfd, pid_t parent)
{
    char *argv[] = {(char *)c->path, NULL};
    sigset_t none;
    int devnull;

    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* a supervisor killed with -9 still drains its children */
    if (getppid() != parent)
        _exit(1);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    devnull = open("/dev/null", O_RDONLY);
    if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0 || dup2(logfd, STDOUT_FILENO) < 0 ||
        dup2(logfd, STDERR_FILENO) < 0)
        _exit(126);
    if (devnull > STDERR_FILENO)
        close(devnull);
    if (setenv("VAP_SERVICE_NAME", c->name, 1) != 0)
        _exit(126);
    execv(c->path, argv);
    dprintf(STDERR_FILENO, "vap-supervisor: cannot execute %s: %s\n", c->path, strerror(errno));
    _exit(127);
}

/* Sets when c starts next: the base delay after a long run, doubling while it dies fast. */
static void schedule_restart(const struct supervisor *s, struct child *c, int64_t now)
{
    int64_t cap =
        s->cfg.restart_delay_ms > SUP_BACKOFF_CAP_MS ? s->cfg.restart_delay_ms : SUP_BACKOFF_CAP_MS;
    int64_t next;

    if (now - c->started_ms >= SUP_QUICK_DEATH_MS)
        c->delay_ms = s->cfg.restart_delay_ms;
    c->restart_at_ms = now + c->delay_ms;
    next = c->delay_ms * 2 < SUP_BACKOFF_MIN_MS ? SUP_BACKOFF_MIN_MS : c->delay_ms * 2;
    c->delay_ms = next < cap ? next : cap;
}

/* Forks and execs c; when that fails, schedules another try as if c had died at once. */
static int start_child(struct supervisor *s, struct child *c)
{
    char path[PATH_MAX];
    pid_t pid = -1;
    int logfd, rv;

    c->restart_at_ms = 0;
    c->started_ms = now_ms();
    logfd = open(join_path(path, s->cfg.log_dir, c->name, ".log"),
                 O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (logfd >= 0)
        pid = fork();
    if (pid == 0)
        exec_child(c, logfd, s->self);
    rv = pid < 0 ? -errno : 0;
    if (logfd >= 0)
        close(logfd);
    if (rv != 0) {
        sup_log("error", logfd < 0 ? "cannot open log" : "cannot fork", c, ",\"error\":\"%s\"",
                strerror(-rv));
        schedule_restart(s, c, c->started_ms);
        return rv;
    }
    setpgid(pid, pid); /* also done in the child: whichever runs first wins the race */
    c->pid = pid;
    s->running++;
    rv = write_pid_file(s, c->name, pid);
    if (rv != 0)
        sup_log("warn", "cannot write pid file", c, ",\"pid\":%d,\"error\":\"%s\"", (int)pid,
                strerror(-rv));
    sup_log("info", "child started", c, ",\"pid\":%d", (int)pid);
    return 0;
}

static void reap_children(struct supervisor *s)
{
    char path[PATH_MAX];
    int status;

    for (;;) {
        pid_t pid = waitpid(-1, &status, WNOHANG);
        struct child *c = NULL;
        if (pid <= 0)
            return;
        for (int i = 0; i < s->nchildren; i++) {
            if (s->children[i].pid == pid)
                c = &s->children[i];
        }
        if (!c)
            continue;
        kill(-pid, SIGKILL); /* whatever the child left behind in its group */
        c->pid = 0;
        s->running--;
        unlink(join_path(path, s->cfg.run_dir, c->name, ".pid"));
        /* Without WUNTRACED, waitpid reports only exits and deaths by signal. */
        bool signaled = WIFSIGNALED(status);
        int code = signaled ? WTERMSIG(status) : WEXITSTATUS(status);
        if (s->stopping) {
            sup_log("info", "child stopped", c, ",\"pid\":%d,\"status\":\"%s %d\"", (int)pid,
                    signaled ? "signal" : "exit", code);
            continue;
        }
        int64_t now = now_ms();
        schedule_restart(s, c, now);
        sup_log("warn", "child exited", c,
                ",\"pid\":%d,\"status\":\"%s %d\",\"restart_in_ms\":%lld", (int)pid,
                signaled ? "signal" : "exit", code, (long long)(c->restart_at_ms - now));
    }
}

/* Signals each child's process group, or the child alone if it left its group. */
static void signal_children(const struct supervisor *s, int sig)
{
    for (int i = 0; i < s->nchildren; i++) {
        pid_t pid = s->children[i].pid;
        if (pid > 0 && kill(-pid, sig) != 0)
            kill(pid, sig);
    }
}

static void begin_stop(struct supervisor *s, int sig)
{
    if (s->stopping) {
        /* A second signal says "now": the children get it too (a voice worker stops
         * draining and ends its sessions; the other services are stopping already). */
        sup_log("info", "stopping now: signal forwarded", NULL, ",\"signal\":%d", sig);
        signal_children(s, SIGTERM);
        return;
    }
    sup_log("info", "stopping", NULL, ",\"signal\":%d,\"timeout_s\":%ld", sig,
            s->cfg.stop_timeout_s);
    s->stopping = true;
    s->stop_deadline_ms = now_ms() + (int64_t)s->cfg.stop_timeout_s * 1000;
    for (int i = 0; i < s->nchildren; i++)
        s->children[i].restart_at_ms = 0;
    signal_children(s, SIGTERM);
}

static void handle_signals(struct supervisor *s)
{
    struct signalfd_siginfo si;

    while (read(s->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGCHLD) {
            reap_children(s);
        } else if (si.ssi_signo == SIGHUP) {
            sup_log("info", "forwarding SIGHUP", NULL, "%s", "");
            signal_children(s, SIGHUP);
        } else {
            begin_stop(s, (int)si.ssi_signo);
        }
    }
}

/* SIGKILLs the stragglers of a stop, and starts the children whose time has come. */
static void run_timers(struct supervisor *s)
{
    int64_t now = now_ms();

    if (s->stopping && s->stop_deadline_ms != 0 && now >= s->stop_deadline_ms) {
        sup_log("warn", "stop timeout, killing the rest", NULL, ",\"running\":%d", s->running);
        signal_children(s, SIGKILL);
        s->stop_deadline_ms = 0;
    }
    for (int i = 0; i < s->nchildren; i++) { /* no restart is pending while stopping */
        struct child *c = &s->children[i];
        if (c->restart_at_ms != 0 && now >= c->restart_at_ms)
            start_child(s, c);
    }
}

/* Milliseconds until run_timers has work, for poll(); -1 when nothing is pending. */
static int next_timeout(const struct supervisor *s)
{
    int64_t next = s->stopping ? s->stop_deadline_ms : 0, now = now_ms();

    for (int i = 0; i < s->nchildren; i++) {
        int64_t at = s->children[i].restart_at_ms;
        if (at != 0 && (next == 0 || at < next))
            next = at;
    }
    if (next == 0)
        return -1;
    return next <= now ? 0 : (int)(next - now > INT_MAX ? INT_MAX : next - now);
}

/* Prints "vap-supervisor: WHAT ARG: <errno text>" and returns -errno, for startup failures. */
static int startup_error(const char *what, const char *arg)
{
    int err = errno;
    fprintf(stderr, "vap-supervisor: %s %s: %s\n", what, arg, strerror(err));
    return -err;
}

/* Creates the directories, takes RUN_DIR/supervisor.pid and routes signals to a signalfd. */
static int setup(struct supervisor *s)
{
    static const int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP};
    const char *dirs[] = {s->cfg.log_dir, s->cfg.run_dir};
    char path[PATH_MAX];
    sigset_t set;

    for (int i = 0; i < 2; i++) {
        if (mkdir(dirs[i], 0755) != 0 && errno != EEXIST)
            return startup_error(i == 0 ? "--log-dir" : "--run-dir", dirs[i]);
    }
    /* The flock, held until exit, keeps a second supervisor out of the same run dir. */
    s->lock_fd = open(join_path(path, s->cfg.run_dir, "supervisor", ".pid"),
                      O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->lock_fd < 0)
        return startup_error("cannot open", path);
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        fprintf(stderr, "vap-supervisor: --run-dir %s: another vap-supervisor runs there\n",
                s->cfg.run_dir);
        return -EBUSY;
    }
    s->self = getpid();
    if (ftruncate(s->lock_fd, 0) != 0 || dprintf(s->lock_fd, "%d\n", (int)s->self) < 0)
        return startup_error("cannot write", path);
    /* A non-interactive shell starts background jobs with SIGINT ignored; an ignored
     * signal never reaches the signalfd, so restore the defaults before blocking. */
    sigemptyset(&set);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        signal(sigs[i], SIG_DFL);
        sigaddset(&set, sigs[i]);
    }
    signal(SIGPIPE, SIG_IGN); /* a closed stderr must not kill the supervisor */
    sigprocmask(SIG_BLOCK, &set, NULL);
    s->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    return s->sig_fd < 0 ? startup_error("cannot create", "signalfd") : 0;
}

int main(int argc, char **argv)
{
    struct supervisor s = {.sig_fd = -1, .lock_fd = -1};
    char path[PATH_MAX];
    int rv = sup_args_parse(&s.cfg, argc, argv);

    if (rv != 0 || s.cfg.help) {
        fputs(rv != 0 ? "Try 'vap-supervisor --help'.\n" : sup_usage, rv != 0 ? stderr : stdout);
        free(s.cfg.services);
        return rv != 0 ? 2 : 0;
    }
    s.nchildren = s.cfg.nservices;
    s.children = calloc((size_t)s.nchildren, sizeof(*s.children));
    rv = s.children ? setup(&s) : -ENOMEM;
    if (rv != 0)
        goto out;
    sup_log("info", "supervisor started", NULL, ",\"pid\":%d,\"children\":%d", (int)s.self,
            s.nchildren);
    for (int i = 0; i < s.nchildren; i++) {
        struct child *c = &s.children[i];
        c->name = s.cfg.services[i].name;
        c->path = s.cfg.services[i].path;
        c->delay_ms = s.cfg.restart_delay_ms;
        start_child(&s, c);
    }
    while (!s.stopping || s.running > 0) {
        struct pollfd pfd = {.fd = s.sig_fd, .events = POLLIN};
        if (poll(&pfd, 1, next_timeout(&s)) > 0)
            handle_signals(&s);
        run_timers(&s);
    }
    unlink(join_path(path, s.cfg.run_dir, "supervisor", ".pid"));
    sup_log("info", "supervisor stopped", NULL, "%s", "");
out:
    if (s.lock_fd >= 0)
        close(s.lock_fd); /* releases the flock; sig_fd goes with the process */
    free(s.children);
    free(s.cfg.services);
    return rv != 0 ? 1 : 0;
}
