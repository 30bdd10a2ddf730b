/*
 * Reproduces a second leak inside nng 1.5.2 (Debian 12's libnng1) with none of our code:
 * a pub0 socket with two subscribers connected sends 20,000 small messages
 * (nng_sendmsg, non-blocking; on success nng owns the message), then closes and calls
 * nng_fini(); about 1 run in 40 leaves one message behind (LeakSanitizer: a direct leak
 * of 112 bytes, the message, and an indirect one, its body). vap_pub_send()
 * (common/pubsub.c) is this pattern; tests/integration/stack.py excuses a leak report
 * only when every leak in it is of this kind or of nng_listener_leak.c's.
 *
 *   cc -g -fsanitize=address -o /tmp/nng_pub_close_leak tests/sanitizer/nng_pub_close_leak.c -lnng
 *   /tmp/nng_pub_close_leak 80 2>&1 | grep -c 'SUMMARY: AddressSanitizer'
 */
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* The publisher, in a process of its own (LeakSanitizer checks it at exit). */
static int publish(const char *url)
{
    nng_socket p;
    if (nng_pub0_open(&p) != 0 || nng_listen(p, url, NULL, 0) != 0)
        return 3;
    usleep(100000); /* the subscribers connect */
    for (int i = 0; i < 20000; i++) {
        nng_msg *m;
        if (nng_msg_alloc(&m, 100) != 0)
            return 4;
        if (nng_sendmsg(p, m, NNG_FLAG_NONBLOCK) != 0)
            nng_msg_free(m);
        if (i % 50 == 0)
            usleep(100);
    }
    nng_close(p);
    nng_fini();
    return 0;
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 80;
    if (argc > 2)
        return publish(argv[2]);
    for (int run = 0; run < runs; run++) {
        char url[64];
        nng_socket s[2];
        int status;
        pid_t pid;
        snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", 30000 + (getpid() + run * 11) % 20000);
        pid = fork();
        if (pid == 0) {
            execl(argv[0], argv[0], "1", url, (char *)NULL);
            _exit(9);
        }
        for (int k = 0; k < 2; k++) {
            nng_sub0_open(&s[k]);
            nng_socket_set(s[k], NNG_OPT_SUB_SUBSCRIBE, "", 0);
            nng_socket_set_ms(s[k], NNG_OPT_RECONNMINT, 10);
            nng_dial(s[k], url, NULL, NNG_FLAG_NONBLOCK);
        }
        waitpid(pid, &status, 0);
        for (int k = 0; k < 2; k++)
            nng_close(s[k]);
    }
    return 0;
}
