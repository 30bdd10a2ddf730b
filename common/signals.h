/*
 * Process signals for services: SIGTERM/SIGINT (stop) and SIGHUP (reload) are blocked
 * in every thread and taken synchronously by the main thread with
 * vap_signals_wait(), so no handler runs in the middle of library code and no worker
 * thread (civetweb, nng) swallows them. SIGPIPE is ignored.
 */
#ifndef VAP_SIGNALS_H
#define VAP_SIGNALS_H

/* Blocks the signals above; call first in main(), before any thread starts. */
void vap_signals_block(void);

/* Waits up to timeout_ms (-1: forever) for one; returns its number, or 0 on timeout. */
int vap_signals_wait(int timeout_ms);

#endif
