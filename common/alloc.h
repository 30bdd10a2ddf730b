/*
 * Allocator settings a service starts with (see alloc.c for why).
 */
#ifndef VAP_ALLOC_H
#define VAP_ALLOC_H

/*
 * Turns glibc's per-thread cache of freed blocks (tcache) off for this process, for
 * services with many threads (the gateway's civetweb pool, auth's and usage's RPC
 * threads). The setting is read only when a program starts, so the first call sets
 * GLIBC_TUNABLES and re-executes the program with the same argv; the second start
 * returns at once. An operator's own glibc.malloc.tcache_count wins. Call first in
 * main(), before any thread starts. Returns only if no re-execution happened.
 */
void vap_alloc_untcache(char **argv);

#endif
