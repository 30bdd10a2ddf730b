/*
 * The gateway's view of revoked tokens: OTPs deleted or deactivated, and each admin's
 * current password version. Fed by vap-auth's events on pub/sub (applied within
 * milliseconds) and by a full snapshot over req/rep at start, every refresh interval,
 * and at once when the event sequence shows a gap or a new vap-auth instance. A view
 * that could not be refreshed for max_age_ms is stale: callers then refuse tokens with
 * 503 rather than accept one that may have been revoked.
 */
#ifndef VAP_GW_REVOCATIONS_H
#define VAP_GW_REVOCATIONS_H

#include <stdint.h>

#include "rpc.h"
#include "token.h"

struct gw_revocations;

enum gw_token_state {
    GW_TOKEN_OK,
    GW_TOKEN_REVOKED,
    GW_TOKEN_UNKNOWN /* view stale: cannot tell */
};

/* Starts the subscriber and refresher threads. auth must outlive the view. */
int gw_revocations_start(struct gw_revocations **out, struct vap_rpc_client *auth,
                         const char *events_url, int64_t max_age_ms);
void gw_revocations_stop(struct gw_revocations *v);

/* Whether a verified token's claims are still good. Thread-safe, takes a read lock. */
enum gw_token_state gw_revocations_check(struct gw_revocations *v,
                                         const struct vap_token_claims *claims);

/* Milliseconds since the last successful snapshot (-1: never). */
int64_t gw_revocations_age_ms(struct gw_revocations *v);

#endif
