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

/* Gives the allocator's free pages inside its heaps back to the kernel (malloc_trim):
 * for processes whose working set comes and goes in large pieces (the voice workers'
 * speech decoders), called from a periodic loop, not a hot path. */
void vap_alloc_trim(void);

#endif
