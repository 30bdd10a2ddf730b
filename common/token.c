/* HS256 JWT issue and verification (see token.h). */
#include "token.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"

static const char jwt_header_b64[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"; /* {"alg":"HS256","typ":"JWT"} */

const char *vap_role_name(enum vap_role role)
{
    return role == VAP_ROLE_ADMIN ? "admin" : "otp";
}

static void hmac(const uint8_t *key, size_t key_len, const char *data, size_t len,
                 uint8_t mac[crypto_auth_hmacsha256_BYTES])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, key_len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)data, len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof(st));
}

int vap_token_issue(const uint8_t *key, size_t key_len, struct vap_token_claims *c,
                    char **out)
{
    json_t *payload;
    char *json = NULL, *tok = NULL;
    size_t json_len, b64_len, hdr_len = sizeof(jwt_header_b64) - 1, pos;
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    int rv = VAP_ENOMEM;

    if (c->jti[0] == '\0') {
        uint8_t raw[16];
        randombytes_buf(raw, sizeof(raw));
        sodium_bin2hex(c->jti, sizeof(c->jti), raw, sizeof(raw));
    }
    payload = json_pack("{s:s, s:s, s:I, s:I, s:s}", "sub", c->sub, "role",
                        vap_role_name(c->role), "iat", (json_int_t)c->iat, "exp",
                        (json_int_t)c->exp, "jti", c->jti);
    if (!payload)
        return VAP_ENOMEM;
    if (c->role == VAP_ROLE_OTP)
        json_object_set_new(payload, "otp_id", json_integer(c->otp_id));
    else
        json_object_set_new(payload, "pwv", json_integer(c->pwv));
    json = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(payload);
    if (!json)
        return VAP_ENOMEM;
    json_len = strlen(json);
    b64_len = sodium_base64_ENCODED_LEN(json_len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    /* header "." payload "." signature(43) NUL */
    tok = malloc(hdr_len + 1 + b64_len + 1 + 64);
    if (!tok)
        goto out;
    memcpy(tok, jwt_header_b64, hdr_len);
    tok[hdr_len] = '.';
    sodium_bin2base64(tok + hdr_len + 1, b64_len, (const unsigned char *)json, json_len,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    pos = strlen(tok);
    hmac(key, key_len, tok, pos, mac);
    tok[pos++] = '.';
    sodium_bin2base64(tok + pos, 64, mac, sizeof(mac), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    *out = tok;
    tok = NULL;
    rv = 0;
out:
    free(tok);
    free(json);
    return rv;
}

/* Decodes base64url (no padding) text of length len into a NUL-terminated heap buffer. */
static char *b64url_decode(const char *text, size_t len, size_t *out_len)
{
    char *buf = malloc(len + 1);
    if (!buf)
        return NULL;
    if (sodium_base642bin((unsigned char *)buf, len, text, len, NULL, out_len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
        free(buf);
        return NULL;
    }
    buf[*out_len] = '\0';
    return buf;
}

static int header_is_hs256(const char *text, size_t len)
{
    size_t n;
    char *raw = b64url_decode(text, len, &n);
    json_t *h;
    int ok = 0;
    if (!raw)
        return 0;
    h = json_loadb(raw, n, JSON_REJECT_DUPLICATES, NULL);
    free(raw);
    if (json_is_object(h)) {
        const char *alg = json_string_value(json_object_get(h, "alg"));
        ok = alg != NULL && strcmp(alg, "HS256") == 0;
    }
    json_decref(h);
    return ok;
}

static int read_claims(json_t *p, struct vap_token_claims *c)
{
    const char *sub = json_string_value(json_object_get(p, "sub"));
    const char *role = json_string_value(json_object_get(p, "role"));
    const char *jti = json_string_value(json_object_get(p, "jti"));
    json_t *iat = json_object_get(p, "iat"), *exp = json_object_get(p, "exp");

    if (!sub || !role || !jti || !json_is_integer(iat) || !json_is_integer(exp))
        return VAP_EAUTH;
    if (strlen(sub) >= sizeof(c->sub) || strlen(jti) >= sizeof(c->jti))
        return VAP_EAUTH;
    memset(c, 0, sizeof(*c));
    memcpy(c->sub, sub, strlen(sub) + 1);
    memcpy(c->jti, jti, strlen(jti) + 1);
    c->iat = json_integer_value(iat);
    c->exp = json_integer_value(exp);
    if (strcmp(role, "admin") == 0) {
        json_t *pwv = json_object_get(p, "pwv");
        if (!json_is_integer(pwv))
            return VAP_EAUTH;
        c->role = VAP_ROLE_ADMIN;
        c->pwv = (int32_t)json_integer_value(pwv);
    } else if (strcmp(role, "otp") == 0) {
        json_t *id = json_object_get(p, "otp_id");
        if (!json_is_integer(id))
            return VAP_EAUTH;
        c->role = VAP_ROLE_OTP;
        c->otp_id = json_integer_value(id);
    } else {
        return VAP_EAUTH;
    }
    return 0;
}

int vap_token_verify(const uint8_t *key, size_t key_len, const char *token, int64_t now_s,
                     struct vap_token_claims *claims)
{
    const char *dot1, *dot2;
    uint8_t mac[crypto_auth_hmacsha256_BYTES], given[crypto_auth_hmacsha256_BYTES];
    size_t len, given_len = 0, payload_len;
    char *payload = NULL;
    json_t *p = NULL;
    int rv = VAP_EAUTH;

    if (!token)
        return VAP_EAUTH;
    len = strnlen(token, VAP_TOKEN_MAX + 1);
    if (len > VAP_TOKEN_MAX)
        return VAP_EAUTH;
    dot1 = memchr(token, '.', len);
    if (!dot1)
        return VAP_EAUTH;
    dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token));
    if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
        return VAP_EAUTH;
    if (!header_is_hs256(token, (size_t)(dot1 - token)))
        return VAP_EAUTH;
    if (sodium_base642bin(given, sizeof(given), dot2 + 1, len - (size_t)(dot2 + 1 - token),
                          NULL, &given_len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        given_len != sizeof(given))
        return VAP_EAUTH;
    hmac(key, key_len, token, (size_t)(dot2 - token), mac);
    if (crypto_verify_32(mac, given) != 0)
        return VAP_EAUTH;

    payload = b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &payload_len);
    if (!payload)
        return VAP_EAUTH;
    p = json_loadb(payload, payload_len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(p))
        goto out;
    if (read_claims(p, claims) != 0)
        goto out;
    if (claims->exp <= now_s)
        goto out;
    rv = 0;
out:
    json_decref(p);
    free(payload);
    return rv;
}

int vap_token_verify_keys(const struct vap_token_keys *keys, const char *token, int64_t now_s,
                          struct vap_token_claims *claims)
{
    if (vap_token_verify(keys->current, keys->current_len, token, now_s, claims) == 0)
        return 0;
    if (keys->previous_len == 0)
        return VAP_EAUTH;
    return vap_token_verify(keys->previous, keys->previous_len, token, now_s, claims);
}
