/*
 * Access tokens: HS256 JWTs signed with SECRET_KEY. The algorithm is pinned: a token
 * whose header names anything but HS256 ("none" included) is refused before its
 * signature is looked at, the signature is compared in constant time (libsodium), and
 * expiry is checked here, not left to the caller. Claims: sub, role, iat, exp, jti,
 * plus otp_id for visitor tokens and pwv (password version) for admin tokens, which
 * is how a password change revokes older admin tokens.
 * Implemented on libsodium + jansson rather than libjwt: libjwt 1.10 neither checks
 * exp nor refuses alg "none" without a key, and we need all three checks in one place.
 * Key rotation: tokens are only ever signed with the current key; verifiers hold a
 * struct vap_token_keys and accept a token signed with the previous key too
 * (SECRET_KEY_PREVIOUS), so a key change does not log everyone out at once.
 */
#ifndef VAP_TOKEN_H
#define VAP_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define VAP_TOKEN_MAX 2048 /* longer Authorization values are refused unparsed */

enum vap_role {
    VAP_ROLE_ADMIN = 1,
    VAP_ROLE_OTP = 2
};

struct vap_token_claims {
    char sub[128];
    enum vap_role role;
    int64_t iat; /* seconds since epoch */
    int64_t exp;
    char jti[48];
    int64_t otp_id; /* role otp */
    int32_t pwv;    /* role admin: the password version the token was issued under */
};

/*
 * Signs claims (jti is generated when empty) with key. *out is a NUL-terminated
 * string the caller frees. Returns 0, VAP_ENOMEM or VAP_EINVAL.
 */
int vap_token_issue(const uint8_t *key, size_t key_len, struct vap_token_claims *claims,
                    char **out);

/*
 * Verifies token against key at time now_s: shape, pinned alg, signature, exp, and the
 * claims' types. Fills *claims on success. Returns 0 or VAP_EAUTH (never says why to
 * the caller's client; the reason goes to debug logs only).
 */
int vap_token_verify(const uint8_t *key, size_t key_len, const char *token, int64_t now_s,
                     struct vap_token_claims *claims);

/* The keys a verifier accepts: current first, then previous (previous_len 0: none).
 * The key bytes are borrowed and must outlive the struct. */
struct vap_token_keys {
    const uint8_t *current;
    size_t current_len;
    const uint8_t *previous;
    size_t previous_len;
};

/*
 * vap_token_verify() with keys->current, else with keys->previous when there is one.
 * The algorithm stays pinned and exp is checked whichever key signed the token. Returns
 * 0 or VAP_EAUTH. Thread-safe; does not block.
 */
int vap_token_verify_keys(const struct vap_token_keys *keys, const char *token, int64_t now_s,
                          struct vap_token_claims *claims);

const char *vap_role_name(enum vap_role role);

#endif
