/*
 * Session records to vap-usage. Reports (at a session's start and end) are queued and
 * sent by one thread with req/rep, retried with backoff until vap-usage stores them.
 * Every queued record is also appended (and fdatasync'ed) to this worker's spool file,
 * <VOICE_CACHE_DIR>/reports/<worker id>.spool, held under an exclusive flock; the file is
 * emptied whenever the queue drains. A worker that starts takes over every spool whose
 * lock is free (its writer died: kill -9, crash) and sends those records first. So
 * vap-usage being down, even while a worker dies, delays records but loses none. The
 * upsert on the other side is idempotent: a record sent twice changes nothing.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "rpc.h"
#include "voice.h"

#define REPORT_QUEUE_MAX 20000

struct report_item {
    struct report_item *next;
    size_t len;
    uint8_t data[];
};

struct voice_reporter {
    struct vap_rpc_client *usage;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct report_item *head, *tail;
    size_t len;
    bool stopping;
    bool failing; /* the last send failed: vap-usage is unreachable or failing */
    int spool_fd; /* -1: no spool (the directory could not be written) */
    bool spool_only; /* a record is in the spool but not in memory: never empty it */
    char spool_path[512];
};

/* Appends one record to the spool: u32 length, then the packed record. Under r->lock. */
static void spool_append(struct voice_reporter *r, const uint8_t *data, size_t len)
{
    uint8_t hdr[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                      (uint8_t)len};
    if (r->spool_fd < 0)
        return;
    if (write(r->spool_fd, hdr, 4) != 4 || write(r->spool_fd, data, len) != (ssize_t)len ||
        fdatasync(r->spool_fd) != 0)
        vap_warn(NULL, "session record spool write failed path=%s error=\"%s\"",
                 r->spool_path, strerror(errno));
}

static void enqueue_locked(struct voice_reporter *r, struct report_item *it)
{
    if (r->tail)
        r->tail->next = it;
    else
        r->head = it;
    r->tail = it;
    r->len++;
}

/*
 * Reads the records of a spool (fd at its start) into a list, oldest first; a torn
 * record at the end (the writer died mid-write) ends it. Returns the count.
 */
static int read_spool(int fd, struct report_item **head)
{
    struct report_item **tail = head;
    int n = 0;
    *head = NULL;
    for (;;) {
        uint8_t hdr[4];
        size_t len;
        struct report_item *it;
        if (read(fd, hdr, 4) != 4)
            break;
        len = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];
        if (len == 0 || len > 65536 || !(it = malloc(sizeof(*it) + len)))
            break;
        it->next = NULL;
        it->len = len;
        if (read(fd, it->data, len) != (ssize_t)len) {
            free(it);
            break;
        }
        *tail = it;
        tail = &it->next;
        n++;
    }
    return n;
}

/* Makes records ours: into our spool, then onto the delivery queue. */
static void take_records(struct voice_reporter *r, struct report_item *list)
{
    while (list) {
        struct report_item *it = list;
        list = it->next;
        it->next = NULL;
        spool_append(r, it->data, it->len);
        enqueue_locked(r, it);
    }
}

/* Takes over the spools of workers that died; their records go first. */
static void adopt_spools(struct voice_reporter *r, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int adopted = 0;
    if (!d)
        return;
    while ((e = readdir(d))) {
        char path[768];
        const char *dot = strrchr(e->d_name, '.');
        int fd;
        if (!dot || strcmp(dot, ".spool") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (strcmp(path, r->spool_path) == 0)
            continue;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) { /* its worker is alive */
            close(fd);
            continue;
        }
        {
            struct report_item *list;
            adopted += read_spool(fd, &list);
            take_records(r, list);
        }
        unlink(path);
        close(fd);
    }
    closedir(d);
    if (adopted)
        vap_info(NULL, "session records taken over from stopped workers count=%d", adopted);
}

/* Opens this worker's spool (and adopts dead workers' ones). */
static void spool_open(struct voice_reporter *r, struct voice_worker *w)
{
    char dir[400];
    const char *base = w->cfg.cache_dir ? w->cfg.cache_dir : "/tmp/vap-voice";
    r->spool_fd = -1;
    if (mkdir(base, 0700) != 0 && errno != EEXIST)
        return;
    snprintf(dir, sizeof(dir), "%s/reports", base);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        vap_warn(NULL, "no session record spool dir=%s error=\"%s\"", dir, strerror(errno));
        return;
    }
    snprintf(r->spool_path, sizeof(r->spool_path), "%s/%s.spool", dir, w->cfg.worker_id);
    /* Never truncate before holding the lock: the file may be a live worker's (a reused
     * id) or hold a dead predecessor's records, which are taken over first. */
    r->spool_fd = open(r->spool_path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (r->spool_fd >= 0 && flock(r->spool_fd, LOCK_EX | LOCK_NB) != 0) {
        vap_warn(NULL, "session record spool held by another worker with this id path=%s",
                 r->spool_path);
        close(r->spool_fd);
        r->spool_fd = -1;
    }
    if (r->spool_fd < 0) {
        vap_warn(NULL, "no session record spool path=%s", r->spool_path);
        return;
    }
    {
        struct report_item *list;
        int n = read_spool(r->spool_fd, &list);
        if (ftruncate(r->spool_fd, 0) != 0)
            vap_warn(NULL, "spool not emptied path=%s error=\"%s\"", r->spool_path,
                     strerror(errno));
        take_records(r, list);
        if (n)
            vap_info(NULL, "session records taken over from this id's last run count=%d", n);
    }
    adopt_spools(r, dir);
}

static int send_one(struct voice_reporter *r, const struct report_item *it)
{
    Vap__SessionRecord *rec = vap__session_record__unpack(NULL, it->len, it->data);
    struct vap_rpc_result res;
    int rv;
    if (!rec)
        return 0; /* cannot happen: we packed it */
    memset(&res, 0, sizeof(res));
    rv = vap_rpc_call(r->usage, "usage.session", rec->session_id, &rec->base, NULL,
                      vap_now_ms() + 3000, &res);
    if (rv == 0 && res.status >= 500)
        rv = -1;
    if (rv == 0 && res.status >= 400)
        vap_warn(rec->session_id, "session record refused status=%d detail=\"%s\"", res.status,
                 res.detail ? res.detail : "");
    vap_rpc_result_clear(&res);
    vap__session_record__free_unpacked(rec, NULL);
    return rv;
}

static void *report_main(void *arg)
{
    struct voice_reporter *r = arg;
    int backoff_ms = 100;
    for (;;) {
        struct report_item *it;
        pthread_mutex_lock(&r->lock);
        while (!r->head && !r->stopping)
            pthread_cond_wait(&r->cond, &r->lock);
        it = r->head;
        pthread_mutex_unlock(&r->lock);
        if (!it)
            break; /* stopping with nothing left */
        if (send_one(r, it) != 0) {
            struct timespec ts;
            bool stop;
            pthread_mutex_lock(&r->lock);
            r->failing = true;
            stop = r->stopping;
            pthread_mutex_unlock(&r->lock);
            if (stop) {
                vap_warn(NULL, "exiting with %zu session records not delivered", r->len);
                break;
            }
            ts.tv_sec = backoff_ms / 1000;
            ts.tv_nsec = (backoff_ms % 1000) * 1000000L;
            nanosleep(&ts, NULL);
            backoff_ms = backoff_ms < 2000 ? backoff_ms * 2 : 2000;
            continue;
        }
        backoff_ms = 100;
        pthread_mutex_lock(&r->lock);
        r->failing = false;
        r->head = it->next;
        if (!r->head)
            r->tail = NULL;
        r->len--;
        if (r->len == 0 && r->spool_fd >= 0 && !r->spool_only && ftruncate(r->spool_fd, 0) != 0)
            vap_warn(NULL, "session record spool truncate failed");
        pthread_mutex_unlock(&r->lock);
        free(it);
    }
    return NULL;
}

int voice_reporter_start(struct voice_worker *w)
{
    struct voice_reporter *r = calloc(1, sizeof(*r));
    if (!r)
        return -1;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    spool_open(r, w);
    if (vap_rpc_client_open(&r->usage, w->cfg.usage_rpc_url) != 0) {
        free(r);
        return -1;
    }
    if (pthread_create(&r->thread, NULL, report_main, r) != 0) {
        vap_rpc_client_close(r->usage);
        free(r);
        return -1;
    }
    w->reporter = r;
    return 0;
}

/* Lets queued records go out for up to 5 s while vap-usage takes them, then stops. With
 * vap-usage failing it stops at once when a spool holds the records (the next worker
 * to start on this host takes them over); without a spool it still waits the 5 s. */
void voice_reporter_stop(struct voice_worker *w)
{
    struct voice_reporter *r = w->reporter;
    int64_t until = vap_now_ms() + 5000;
    struct report_item *it;
    if (!r)
        return;
    for (;;) {
        size_t left;
        bool give_up;
        pthread_mutex_lock(&r->lock);
        left = r->len;
        give_up = r->failing && r->spool_fd >= 0;
        pthread_mutex_unlock(&r->lock);
        if (!left || give_up || vap_now_ms() > until)
            break;
        {
            struct timespec ts = {0, 20000000L};
            nanosleep(&ts, NULL);
        }
    }
    pthread_mutex_lock(&r->lock);
    r->stopping = true;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    vap_rpc_client_close(r->usage);
    while ((it = r->head)) {
        r->head = it->next;
        free(it);
    }
    if (r->spool_fd >= 0) {
        /* Undelivered records stay in the spool for the next worker to send. */
        if (r->len == 0 && !r->spool_only)
            unlink(r->spool_path);
        close(r->spool_fd);
    }
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    free(r);
    w->reporter = NULL;
}

void voice_report(struct voice_worker *w, const Vap__SessionRecord *rec)
{
    struct voice_reporter *r = w->reporter;
    size_t len = vap__session_record__get_packed_size(rec);
    struct report_item *it;
    if (!r)
        return;
    it = malloc(sizeof(*it) + len);
    if (!it)
        return;
    it->next = NULL;
    it->len = len;
    vap__session_record__pack(rec, it->data);
    pthread_mutex_lock(&r->lock);
    spool_append(r, it->data, len);
    if (r->len >= REPORT_QUEUE_MAX) {
        /* Memory is bounded; the record is safe in the spool for the next start. */
        r->spool_only = true;
        pthread_mutex_unlock(&r->lock);
        vap_error(rec->session_id, "session record queue full: left in the spool");
        free(it);
        return;
    }
    enqueue_locked(r, it);
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
}
