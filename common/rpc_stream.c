/*
 * Framed request/reply over plain TCP or Unix stream sockets (see rpc_stream.h): the
 * client's connection pool and the server's thread per connection.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "rpc_stream.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"
#include "err.h"
#include "log.h"

/* Largest frame either side accepts; OTP lists of 1000 entries fit easily. */
#define STREAM_MAX_FRAME (4 * 1024 * 1024)
/* How long a client keeps retrying a refused connection: long enough to ride over a
 * restart of the server, short enough that its caller sees 503 quickly when it is
 * down (the same grace rpc.c gave nng's background dialer). */
#define STREAM_CONNECT_GRACE_MS 1000
#define STREAM_RETRY_SLEEP_MS 20
/* Fresh connections a call tries after broken ones before giving up. */
#define STREAM_MAX_ATTEMPTS 3
/* Idle connections a client keeps; more are closed when given back. */
#define STREAM_MAX_IDLE 512
/* An idle connection unused this long is closed when the client next gives one back:
 * after a burst the pool shrinks to what the traffic needs (each connection holds a
 * thread in the server). */
#define STREAM_IDLE_CLOSE_MS 5000
/* A server closes a connection that sent nothing this long (a client that went quiet
 * entirely never gives a connection back, so never trims its pool itself). */
#define STREAM_SERVER_IDLE_MS 60000
/* Connections a server serves at once (a thread each); more are closed at once. */
#define STREAM_MAX_CONNS 4096
/* A request's bytes, once its length arrived, must all arrive within this. */
#define STREAM_BODY_TIMEOUT_MS 10000

/* Outcomes of the socket helpers below, beyond 0. */
enum { IO_TIMEOUT = 1, IO_BROKEN, IO_TOOBIG, IO_NOMEM };

struct endpoint {
    int is_unix;
    char host[256]; /* tcp: name or address, "" for any */
    char port[16];
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* Parses tcp://host:port, tcp://[v6]:port, a "*" host (any address) or ipc://PATH. */
static int parse_url(const char *url, struct endpoint *ep)
{
    memset(ep, 0, sizeof(*ep));
    if (strncmp(url, "ipc://", 6) == 0) {
        size_t n = strlen(url + 6);
        if (n == 0 || n >= sizeof(ep->path))
            return VAP_EINVAL;
        ep->is_unix = 1;
        memcpy(ep->path, url + 6, n + 1);
        return 0;
    }
    if (strncmp(url, "tcp://", 6) != 0)
        return VAP_EINVAL;
    const char *h = url + 6, *colon;
    size_t hlen;
    if (*h == '[') {
        const char *close = strchr(h, ']');
        if (!close || close[1] != ':')
            return VAP_EINVAL;
        hlen = (size_t)(close - h - 1);
        h++;
        colon = close + 1;
    } else {
        colon = strrchr(h, ':');
        if (!colon)
            return VAP_EINVAL;
        hlen = (size_t)(colon - h);
    }
    if (hlen >= sizeof(ep->host) || strlen(colon + 1) == 0 ||
        strlen(colon + 1) >= sizeof(ep->port) ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1))
        return VAP_EINVAL;
    memcpy(ep->host, h, hlen);
    ep->host[hlen] = '\0';
    if (strcmp(ep->host, "*") == 0)
        ep->host[0] = '\0';
    snprintf(ep->port, sizeof(ep->port), "%s", colon + 1);
    return 0;
}

int vap_stream_handles(const char *url)
{
    return strncmp(url, "tcp://", 6) == 0 || strncmp(url, "ipc://", 6) == 0;
}

static int ms_until(int64_t deadline_ms)
{
    int64_t left = vap_ms_left(deadline_ms);
    return left <= 0 ? 0 : left > 600000 ? 600000 : (int)left;
}

/* Waits for events on fd until deadline_ms (-1: forever). 0, IO_TIMEOUT or IO_BROKEN. */
static int wait_fd(int fd, short events, int64_t deadline_ms)
{
    for (;;) {
        struct pollfd p = { .fd = fd, .events = events };
        int timeout = deadline_ms < 0 ? -1 : ms_until(deadline_ms);
        int n = poll(&p, 1, timeout);
        if (n > 0)
            return 0; /* ready, or an error the next read or write reports */
        if (n == 0)
            return IO_TIMEOUT;
        if (errno != EINTR)
            return IO_BROKEN;
    }
}

/* Writes all of buf (fd non-blocking) by deadline_ms. */
static int write_all(int fd, const uint8_t *buf, size_t len, int64_t deadline_ms)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rv = wait_fd(fd, POLLOUT, deadline_ms);
            if (rv != 0)
                return rv;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            return IO_BROKEN;
        }
    }
    return 0;
}

/* Reads exactly len bytes by deadline_ms. */
static int read_all(int fd, uint8_t *buf, size_t len, int64_t deadline_ms)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = recv(fd, buf + got, len - got, 0);
        if (n > 0) {
            got += (size_t)n;
        } else if (n == 0) {
            return IO_BROKEN;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int rv = wait_fd(fd, POLLIN, deadline_ms);
            if (rv != 0)
                return rv;
        } else if (errno != EINTR) {
            return IO_BROKEN;
        }
    }
    return 0;
}

static int write_frame(int fd, const uint8_t *data, size_t len, int64_t deadline_ms)
{
    uint8_t stackbuf[4096], *buf = stackbuf;
    int rv;
    if (len + 4 > sizeof(stackbuf) && !(buf = malloc(len + 4)))
        return IO_NOMEM;
    buf[0] = (uint8_t)(len >> 24);
    buf[1] = (uint8_t)(len >> 16);
    buf[2] = (uint8_t)(len >> 8);
    buf[3] = (uint8_t)len;
    memcpy(buf + 4, data, len);
    rv = write_all(fd, buf, len + 4, deadline_ms);
    if (buf != stackbuf)
        free(buf);
    return rv;
}

/* Reads one frame by deadline_ms (-1: no limit), most often in one recv: a frame that
 * fits in the first read needs no second. wait_first polls before the first read (a
 * client expecting a reply that cannot be there yet saves a recv that would fail).
 * Once its first bytes arrived, the rest of a frame must come within
 * STREAM_BODY_TIMEOUT_MS: a connection may idle between requests, not in one. Bytes beyond the
 * frame are a protocol error: each side sends one frame and waits for the other's. */
static int read_frame(int fd, int64_t deadline_ms, int wait_first, uint8_t **out,
                      size_t *out_len)
{
    uint8_t first[4096];
    size_t got = 0, len, have;
    uint8_t *buf;
    int rv;

    if (wait_first && (rv = wait_fd(fd, POLLIN, deadline_ms)) != 0)
        return rv;
    while (got < 4) {
        ssize_t n = recv(fd, first + got, sizeof(first) - got, 0);
        if (n > 0) {
            got += (size_t)n;
            if (deadline_ms < 0 || deadline_ms > vap_now_ms() + STREAM_BODY_TIMEOUT_MS)
                deadline_ms = vap_now_ms() + STREAM_BODY_TIMEOUT_MS;
        } else if (n == 0) {
            return IO_BROKEN;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if ((rv = wait_fd(fd, POLLIN, deadline_ms)) != 0)
                return rv;
        } else if (errno != EINTR) {
            return IO_BROKEN;
        }
    }
    len = (size_t)first[0] << 24 | (size_t)first[1] << 16 | (size_t)first[2] << 8 | first[3];
    have = got - 4;
    if (len > STREAM_MAX_FRAME)
        return IO_TOOBIG;
    if (have > len)
        return IO_BROKEN;
    if (!(buf = malloc(len ? len : 1)))
        return IO_NOMEM;
    memcpy(buf, first + 4, have);
    rv = read_all(fd, buf + have, len - have, deadline_ms);
    if (rv != 0) {
        free(buf);
        return rv;
    }
    *out = buf;
    *out_len = len;
    return 0;
}

static void set_nodelay(int fd, int is_unix)
{
    int one = 1;
    if (!is_unix)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* A server connection blocks in recv and send (one system call where poll and a
 * non-blocking call would be two) but never for longer than this at a time; read_all
 * and write_all go on waiting with poll after it, up to their own deadline. */
static void set_timeouts(int fd)
{
    struct timeval tv = { .tv_sec = STREAM_BODY_TIMEOUT_MS / 1000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* ---- client ---- */

struct idle_conn {
    int fd;
    int64_t since_ms;
};

struct vap_stream_client {
    struct endpoint ep;
    pthread_mutex_t lock;
    struct idle_conn idle[STREAM_MAX_IDLE]; /* a stack: the most recently used on top */
    int nidle;
};

int vap_stream_client_open(struct vap_stream_client **out, const char *url)
{
    struct vap_stream_client *c = calloc(1, sizeof(*c));
    if (!c)
        return VAP_ENOMEM;
    if (parse_url(url, &c->ep) != 0 || (!c->ep.is_unix && !c->ep.host[0])) {
        free(c);
        return VAP_EINVAL;
    }
    pthread_mutex_init(&c->lock, NULL);
    *out = c;
    return 0;
}

/* Closes every idle connection: after one broke, the others (likely to the same
 * server process, now gone) are suspect too. */
static void drop_idle(struct vap_stream_client *c)
{
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < c->nidle; i++)
        close(c->idle[i].fd);
    c->nidle = 0;
    pthread_mutex_unlock(&c->lock);
}

void vap_stream_client_close(struct vap_stream_client *c)
{
    if (!c)
        return;
    drop_idle(c);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static int take_idle(struct vap_stream_client *c)
{
    int fd = -1;
    pthread_mutex_lock(&c->lock);
    if (c->nidle > 0)
        fd = c->idle[--c->nidle].fd;
    pthread_mutex_unlock(&c->lock);
    return fd;
}

/* Puts fd on top of the idle stack, and closes the connections at its bottom that have
 * not been used for STREAM_IDLE_CLOSE_MS (the stack keeps them in order of use). */
static void give_back(struct vap_stream_client *c, int fd)
{
    int64_t now = vap_now_ms();
    int stale = 0, closing[STREAM_MAX_IDLE];
    pthread_mutex_lock(&c->lock);
    while (stale < c->nidle && now - c->idle[stale].since_ms > STREAM_IDLE_CLOSE_MS) {
        closing[stale] = c->idle[stale].fd;
        stale++;
    }
    if (stale > 0) {
        memmove(c->idle, c->idle + stale, (size_t)(c->nidle - stale) * sizeof(c->idle[0]));
        c->nidle -= stale;
    }
    if (c->nidle < STREAM_MAX_IDLE) {
        c->idle[c->nidle++] = (struct idle_conn){.fd = fd, .since_ms = now};
        fd = -1;
    }
    pthread_mutex_unlock(&c->lock);
    for (int i = 0; i < stale; i++)
        close(closing[i]);
    if (fd >= 0)
        close(fd);
}

/* One non-blocking connect to addr by deadline_ms: the socket, or -1 with errno. */
static int connect_addr(const struct sockaddr *addr, socklen_t len, int is_unix,
                        int64_t deadline_ms)
{
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int err = 0;
    socklen_t elen = sizeof(err);
    if (fd < 0)
        return -1;
    if (connect(fd, addr, len) == 0)
        goto ok;
    if (errno != EINPROGRESS) {
        err = errno;
        goto fail;
    }
    if (wait_fd(fd, POLLOUT, deadline_ms) != 0) {
        err = ETIMEDOUT;
        goto fail;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
        err = errno;
    if (err != 0)
        goto fail;
ok:
    set_nodelay(fd, is_unix);
    return fd;
fail:
    close(fd);
    errno = err;
    return -1;
}

/* One connection attempt to every address the endpoint names. */
static int connect_once(const struct endpoint *ep, int64_t deadline_ms)
{
    if (ep->is_unix) {
        struct sockaddr_un un = { .sun_family = AF_UNIX };
        memcpy(un.sun_path, ep->path, strlen(ep->path) + 1);
        return connect_addr((struct sockaddr *)&un, sizeof(un), 1, deadline_ms);
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICSERV };
    struct addrinfo *res = NULL;
    int fd = -1, err = ECONNREFUSED;
    if (getaddrinfo(ep->host, ep->port, &hints, &res) != 0) {
        errno = EHOSTUNREACH; /* a name not (yet) known: retried like a refusal */
        return -1;
    }
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = connect_addr(ai->ai_addr, ai->ai_addrlen, 0, deadline_ms);
        if (fd < 0)
            err = errno;
    }
    freeaddrinfo(res);
    if (fd < 0)
        errno = err;
    return fd;
}

/* Connects, retrying refusals for the grace period (within deadline_ms). */
static int connect_with_grace(struct vap_stream_client *c, int64_t deadline_ms, int *fd)
{
    int64_t until = vap_now_ms() + STREAM_CONNECT_GRACE_MS;
    if (until > deadline_ms)
        until = deadline_ms;
    for (;;) {
        *fd = connect_once(&c->ep, deadline_ms);
        if (*fd >= 0)
            return 0;
        if (errno == ETIMEDOUT || vap_ms_left(deadline_ms) <= 0)
            return VAP_ETIMEDOUT;
        if (vap_now_ms() + STREAM_RETRY_SLEEP_MS >= until)
            return VAP_EUNAVAIL;
        usleep(STREAM_RETRY_SLEEP_MS * 1000);
    }
}

int vap_stream_call(struct vap_stream_client *c, const uint8_t *req, size_t len,
                    int64_t deadline_ms, uint8_t **reply, size_t *reply_len)
{
    for (int attempt = 0;;) {
        int fd = take_idle(c), rv;
        if (fd < 0) {
            if (attempt++ >= STREAM_MAX_ATTEMPTS)
                return VAP_EUNAVAIL;
            rv = connect_with_grace(c, deadline_ms, &fd);
            if (rv != 0)
                return rv;
        }
        rv = write_frame(fd, req, len, deadline_ms);
        if (rv == 0)
            rv = read_frame(fd, deadline_ms, 1, reply, reply_len);
        if (rv == 0) {
            give_back(c, fd);
            return 0;
        }
        close(fd); /* a late reply on it would answer the next call */
        if (rv == IO_TIMEOUT)
            return VAP_ETIMEDOUT;
        if (rv == IO_TOOBIG)
            return VAP_EPROTO;
        if (rv == IO_NOMEM)
            return VAP_ENOMEM;
        /* Broken: the server went away (restart, crash) or dropped an expired request.
         * Resend on a fresh connection while time is left. */
        if (vap_ms_left(deadline_ms) <= 0)
            return VAP_ETIMEDOUT;
        drop_idle(c);
    }
}

/* ---- server ---- */

struct conn {
    struct vap_stream_server *srv;
    int fd;
    struct conn *prev, *next;
};

struct vap_stream_server {
    struct endpoint ep;
    int lfd;
    int wake[2]; /* written to stop the accept thread */
    pthread_t acceptor;
    vap_stream_serve_fn serve;
    void *arg;
    pthread_mutex_t lock;
    pthread_cond_t gone; /* a connection thread left */
    struct conn *conns;
    int nconns;
    int stopping;
};

static void conn_leave(struct conn *k)
{
    struct vap_stream_server *srv = k->srv;
    pthread_mutex_lock(&srv->lock);
    if (k->prev)
        k->prev->next = k->next;
    else
        srv->conns = k->next;
    if (k->next)
        k->next->prev = k->prev;
    srv->nconns--;
    close(k->fd);
    pthread_cond_broadcast(&srv->gone);
    pthread_mutex_unlock(&srv->lock);
    free(k);
}

/* Serves one connection: a request, its answer, the next, until it closes. */
static void *conn_thread(void *arg)
{
    struct conn *k = arg;
    struct vap_stream_server *srv = k->srv;
    for (;;) {
        uint8_t *in = NULL, *out = NULL;
        size_t in_len, out_len = 0;
        int64_t received;
        /* Blocks in recv (the socket is blocking, with a timeout) until a request. */
        int rv = read_frame(k->fd, vap_now_ms() + STREAM_SERVER_IDLE_MS, 0, &in, &in_len);
        if (rv != 0) {
            if (rv == IO_TOOBIG)
                vap_warn(NULL, "rpc request larger than %d bytes; connection closed",
                         STREAM_MAX_FRAME);
            break;
        }
        received = vap_now_ms();
        rv = srv->serve(srv->arg, in, in_len, received, &out, &out_len);
        free(in);
        if (rv == 0)
            rv = write_frame(k->fd, out, out_len, vap_now_ms() + STREAM_BODY_TIMEOUT_MS);
        free(out);
        if (rv != 0)
            break;
    }
    conn_leave(k);
    return NULL;
}

static void *accept_thread(void *arg)
{
    struct vap_stream_server *srv = arg;
    for (;;) {
        struct pollfd p[2] = { { .fd = srv->lfd, .events = POLLIN },
                               { .fd = srv->wake[0], .events = POLLIN } };
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents)
            break;
        int fd = accept4(srv->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOMEM)
                usleep(10000); /* out of descriptors: let some close */
            continue;
        }
        set_nodelay(fd, srv->ep.is_unix);
        set_timeouts(fd);
        struct conn *k = calloc(1, sizeof(*k));
        pthread_attr_t attr;
        pthread_t th;
        int ok = 0;
        pthread_mutex_lock(&srv->lock);
        if (k && !srv->stopping && srv->nconns < STREAM_MAX_CONNS) {
            k->srv = srv;
            k->fd = fd;
            k->next = srv->conns;
            if (srv->conns)
                srv->conns->prev = k;
            srv->conns = k;
            srv->nconns++;
            pthread_attr_init(&attr);
            pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
            ok = pthread_create(&th, &attr, conn_thread, k) == 0;
            pthread_attr_destroy(&attr);
            if (!ok) {
                srv->conns = k->next;
                if (srv->conns)
                    srv->conns->prev = NULL;
                srv->nconns--;
            }
        }
        pthread_mutex_unlock(&srv->lock);
        if (!ok) {
            vap_warn(NULL, "rpc server: connection refused (at most %d)", STREAM_MAX_CONNS);
            close(fd);
            free(k);
        }
    }
    return NULL;
}

/* Binds and listens on the endpoint: the socket, or -1. */
static int listen_on(const struct endpoint *ep)
{
    int one = 1, fd = -1;
    if (ep->is_unix) {
        struct sockaddr_un un = { .sun_family = AF_UNIX };
        struct stat st;
        memcpy(un.sun_path, ep->path, strlen(ep->path) + 1);
        if (stat(ep->path, &st) == 0 && S_ISSOCK(st.st_mode)) {
            /* Left by a process that died: in use only if something answers there. */
            int probe = connect_addr((struct sockaddr *)&un, sizeof(un), 1,
                                     vap_now_ms() + 100);
            if (probe >= 0) {
                close(probe);
                errno = EADDRINUSE;
                return -1;
            }
            unlink(ep->path);
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && (bind(fd, (struct sockaddr *)&un, sizeof(un)) != 0 ||
                        listen(fd, 1024) != 0)) {
            close(fd);
            fd = -1;
        }
        return fd;
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *res = NULL;
    if (getaddrinfo(ep->host[0] ? ep->host : NULL, ep->port, &hints, &res) != 0)
        return -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

int vap_stream_server_start(struct vap_stream_server **out, const char *url,
                            vap_stream_serve_fn serve, void *arg)
{
    struct vap_stream_server *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return VAP_ENOMEM;
    srv->serve = serve;
    srv->arg = arg;
    srv->wake[0] = srv->wake[1] = -1;
    if (parse_url(url, &srv->ep) != 0) {
        free(srv);
        return VAP_EINVAL;
    }
    srv->lfd = listen_on(&srv->ep);
    if (srv->lfd < 0) {
        vap_error(NULL, "rpc listen failed url=%s error=\"%s\"", url, strerror(errno));
        free(srv);
        return VAP_EUNAVAIL;
    }
    pthread_mutex_init(&srv->lock, NULL);
    pthread_cond_init(&srv->gone, NULL);
    if (pipe2(srv->wake, O_CLOEXEC) != 0 ||
        pthread_create(&srv->acceptor, NULL, accept_thread, srv) != 0) {
        vap_error(NULL, "rpc server: cannot start url=%s", url);
        if (srv->wake[0] >= 0) {
            close(srv->wake[0]);
            close(srv->wake[1]);
        }
        close(srv->lfd);
        pthread_mutex_destroy(&srv->lock);
        pthread_cond_destroy(&srv->gone);
        free(srv);
        return VAP_EINTERNAL;
    }
    *out = srv;
    return 0;
}

void vap_stream_server_stop(struct vap_stream_server *srv)
{
    if (!srv)
        return;
    pthread_mutex_lock(&srv->lock);
    srv->stopping = 1;
    pthread_mutex_unlock(&srv->lock);
    if (write(srv->wake[1], "x", 1) != 1)
        vap_warn(NULL, "rpc server: cannot wake the accept thread");
    pthread_join(srv->acceptor, NULL);
    close(srv->lfd);
    if (srv->ep.is_unix)
        unlink(srv->ep.path);
    /* A connection waiting for its next request sees its end now; one being served
     * answers first, then sees it. */
    pthread_mutex_lock(&srv->lock);
    for (struct conn *k = srv->conns; k; k = k->next)
        shutdown(k->fd, SHUT_RD);
    while (srv->nconns > 0)
        pthread_cond_wait(&srv->gone, &srv->lock);
    pthread_mutex_unlock(&srv->lock);
    close(srv->wake[0]);
    close(srv->wake[1]);
    pthread_mutex_destroy(&srv->lock);
    pthread_cond_destroy(&srv->gone);
    free(srv);
}
