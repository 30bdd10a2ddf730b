/*
 * Authentication of API requests: the bearer token (Authorization header, or
 * ?token= for browsers' WebSockets) is verified locally (HS256 pinned, signature,
 * expiry; SECRET_KEY, else SECRET_KEY_PREVIOUS during a rotation: vap_token_verify_keys,
 * shared with voice streams) and checked against the revocation view, so no backend
 * call is needed. The token's text is never logged.
 */
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "gateway.h"
#include "log.h"
#include "revocations.h"

static void unauthorized(struct gw_req *r, const char *detail)
{
    gw_add_header(r, "WWW-Authenticate", "Bearer");
    gw_reply_error(r, 401, detail);
}

int gw_authenticate(struct gw_req *r, enum gw_auth_need need)
{
    const char *h = mg_get_header(r->conn, "Authorization");
    const char *token = NULL;
    enum gw_token_state st;

    if (h && strncasecmp(h, "Bearer ", 7) == 0) {
        token = h + 7;
        while (*token == ' ')
            token++;
    }
    if (!token || !*token) {
        unauthorized(r, "Not authenticated");
        return -1;
    }
    if (vap_token_verify_keys(&r->gw->token_keys, token, vap_wall_ms() / 1000, &r->claims) != 0) {
        unauthorized(r, "Could not validate credentials");
        return -1;
    }
    st = gw_revocations_check(r->gw->revocations, &r->claims);
    if (st == GW_TOKEN_UNKNOWN) {
        gw_add_header(r, "Retry-After", "1");
        gw_reply_error(r, 503, "Authorization service unavailable");
        return -1;
    }
    if (st == GW_TOKEN_REVOKED) {
        unauthorized(r, "Token has been revoked");
        return -1;
    }
    if (need == GW_AUTH_ADMIN && r->claims.role != VAP_ROLE_ADMIN) {
        gw_reply_error(r, 403, "Admin access required");
        return -1;
    }
    return 0;
}
