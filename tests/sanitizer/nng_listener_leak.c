/*
 * Reproduces a leak inside nng 1.5.2 (Debian 12's libnng1) with none of our code: a
 * process listens with a rep0 socket, 8 req0 connections arrive, it closes the socket
 * and calls nng_fini(); about 1 close in 300 leaves nng's listener and an accepted
 * pipe behind (LeakSanitizer: "3720 byte(s) leaked in 12 allocation(s)", all indirect,
 * allocated inside nng_listen or on nng's own threads). Closing the listener first, or
 * waiting before nng_fini(), does not help. tests/integration/stack.py (nng_own_leak)
 * excuses this report and nng_pub_close_leak.c's, and still fails on any other.
 *
 *   cc -g -fsanitize=address -o /tmp/nng_listener_leak tests/sanitizer/nng_listener_leak.c -lnng
 *   /tmp/nng_listener_leak 300 2>&1 | grep -c 'SUMMARY: AddressSanitizer'
 */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* The server, in a process of its own (LeakSanitizer checks it at exit). */
static int serve(const char *url, unsigned seed)
{
    nng_socket s;
    nng_aio *aio[4];
    nng_ctx ctx[4];
    if (nng_rep0_open(&s) != 0 || nng_listen(s, url, NULL, 0) != 0)
        return 3;
    for (int i = 0; i < 4; i++) {
        nng_aio_alloc(&aio[i], NULL, NULL);
        nng_ctx_open(&ctx[i], s);
        nng_ctx_recv(ctx[i], aio[i]);
    }
    usleep(200000 + (unsigned)(rand_r(&seed) % 30000)); /* connections are up */
    nng_close(s);
    for (int i = 0; i < 4; i++)
        nng_aio_free(aio[i]);
    nng_fini();
    return 0;
}

int main(int argc, char **argv)
{
    int iterations = argc > 1 ? atoi(argv[1]) : 300;
    char url[64];
    if (argc > 3)
        return serve(argv[2], (unsigned)atoi(argv[3]));
    for (int it = 0; it < iterations; it++) {
        char seed[16];
        nng_socket c;
        int status;
        pid_t pid;
        snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", 30000 + (getpid() + it * 7) % 20000);
        snprintf(seed, sizeof(seed), "%d", it);
        pid = fork();
        if (pid == 0) {
            execl(argv[0], argv[0], "1", url, seed, (char *)NULL);
            _exit(9);
        }
        nng_req0_open(&c);
        usleep(2000);
        for (int i = 0; i < 8; i++)
            nng_dial(c, url, NULL, NNG_FLAG_NONBLOCK);
        waitpid(pid, &status, 0);
        nng_close(c);
    }
    return 0;
}
