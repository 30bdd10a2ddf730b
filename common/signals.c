/* Synchronous signal handling for the main thread (see signals.h). */
#include "signals.h"

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <time.h>

static sigset_t watched;

void vap_signals_block(void)
{
    sigemptyset(&watched);
    sigaddset(&watched, SIGTERM);
    sigaddset(&watched, SIGINT);
    sigaddset(&watched, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &watched, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int vap_signals_wait(int timeout_ms)
{
    int sig;
    if (timeout_ms < 0) {
        if (sigwait(&watched, &sig) != 0)
            return 0;
        return sig;
    }
    struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
    sig = sigtimedwait(&watched, NULL, &ts);
    return sig > 0 ? sig : 0;
}
