/*
 * fuzz_jwt: bearer tokens -> vap_token_verify_keys() / vap_token_verify() (common/token.c),
 * with the real key path: a current and a previous key, HS256 pinned. The gateway runs
 * this on every Authorization header and ?token= (authn.c, voice_stream.c).
 *
 * A fuzzer cannot forge HMACs, so most of its tokens would stop at the signature. The
 * first byte therefore picks how the rest becomes a token:
 *   0  the rest is the token text, as a client sends it;
 *   1  the rest is "<header JSON>\n<payload JSON>": encoded base64url and signed here with
 *      the current key, so header and claims parsing see arbitrary JSON;
 *   2  the rest is "<b64 header>.<b64 payload>": signed here with the previous key (odd
 *      base64 and dots reach the decoder, and the key rotation path is taken).
 * A token that verifies must carry sane claims, and a token issued from those claims
 * must verify to the same claims.
 */
#include "fuzz.h"

#include <sodium.h>

#include "err.h"
#include "log.h"
#include "token.h"

static const struct vap_token_keys keys = {(const uint8_t *)FUZZ_KEY, sizeof(FUZZ_KEY) - 1,
                                           (const uint8_t *)FUZZ_KEY_PREVIOUS,
                                           sizeof(FUZZ_KEY_PREVIOUS) - 1};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (sodium_init() < 0)
        abort();
    vap_log_init("fuzz", VAP_LOG_DEBUG);
    return 0;
}

/* Appends the base64url (no padding) of len bytes to out at *pos. */
static void put_b64(char *out, size_t *pos, const void *data, size_t len)
{
    sodium_bin2base64(out + *pos,
                      sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                      data, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    *pos += strlen(out + *pos);
}

/* "<signing input>.<HS256 of it with key>" in a new heap string. */
static char *sign(const char *input, size_t len, const struct vap_token_keys *k, int previous)
{
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    char *tok = malloc(
        len + 2 + sodium_base64_ENCODED_LEN(sizeof(mac), sodium_base64_VARIANT_URLSAFE_NO_PADDING));
    size_t pos = len;
    crypto_auth_hmacsha256_init(&st, previous ? k->previous : k->current,
                                previous ? k->previous_len : k->current_len);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)input, len);
    crypto_auth_hmacsha256_final(&st, mac);
    memcpy(tok, input, len);
    tok[pos++] = '.';
    put_b64(tok, &pos, mac, sizeof(mac));
    return tok;
}

static char *token_from(struct fuzz_in *in, uint8_t mode)
{
    if (mode == 1) {
        const uint8_t *nl = memchr(in->p, '\n', in->n);
        size_t hlen = nl ? (size_t)(nl - in->p) : in->n;
        size_t plen = nl ? in->n - hlen - 1 : 0;
        char *input =
            malloc(sodium_base64_ENCODED_LEN(hlen, sodium_base64_VARIANT_URLSAFE_NO_PADDING) +
                   sodium_base64_ENCODED_LEN(plen, sodium_base64_VARIANT_URLSAFE_NO_PADDING) + 1);
        size_t pos = 0;
        char *tok;
        put_b64(input, &pos, in->p, hlen);
        input[pos++] = '.';
        put_b64(input, &pos, nl ? nl + 1 : in->p, plen);
        tok = sign(input, pos, &keys, 0);
        free(input);
        return tok;
    }
    if (mode == 2)
        return sign((const char *)in->p, in->n, &keys, 1);
    return fuzz_strndup(in->p, in->n);
}

static void check_claims(const struct vap_token_claims *c)
{
    struct vap_token_claims again;
    struct vap_token_claims copy = *c;
    char *tok = NULL;

    FUZZ_CHECK(memchr(c->sub, '\0', sizeof(c->sub)) != NULL, "sub is not terminated");
    FUZZ_CHECK(memchr(c->jti, '\0', sizeof(c->jti)) != NULL, "jti is not terminated");
    FUZZ_CHECK(c->role == VAP_ROLE_ADMIN || c->role == VAP_ROLE_OTP, "role out of range");
    FUZZ_CHECK(c->exp > FUZZ_NOW, "an expired token was accepted");
    if (c->jti[0] == '\0')
        return; /* issuing would make up a jti: nothing to compare */
    FUZZ_CHECK(vap_token_issue(keys.current, keys.current_len, &copy, &tok) == 0,
               "claims read from a token cannot be issued again");
    FUZZ_CHECK(vap_token_verify_keys(&keys, tok, FUZZ_NOW, &again) == 0,
               "a token issued from verified claims does not verify");
    FUZZ_CHECK(strcmp(again.sub, c->sub) == 0 && strcmp(again.jti, c->jti) == 0 &&
                   again.role == c->role && again.iat == c->iat && again.exp == c->exp,
               "claims changed on a round trip");
    if (c->role == VAP_ROLE_ADMIN)
        FUZZ_CHECK(again.pwv == c->pwv, "pwv changed on a round trip");
    else
        FUZZ_CHECK(again.otp_id == c->otp_id, "otp_id changed on a round trip");
    free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint8_t mode = fuzz_byte(&in) % 3;
    struct vap_token_claims c, one;
    char *tok = token_from(&in, mode);
    int rv_keys, rv_one;

    memset(&c, 0, sizeof(c));
    rv_keys = vap_token_verify_keys(&keys, tok, FUZZ_NOW, &c);
    FUZZ_CHECK(rv_keys == 0 || rv_keys == VAP_EAUTH, "verify returned an unexpected code");
    /* The single-key function must agree with the pair: accepted by one of the two keys. */
    rv_one = vap_token_verify(keys.current, keys.current_len, tok, FUZZ_NOW, &one);
    if (rv_one != 0)
        rv_one = vap_token_verify(keys.previous, keys.previous_len, tok, FUZZ_NOW, &one);
    FUZZ_CHECK((rv_keys == 0) == (rv_one == 0), "verify_keys disagrees with verify");
    if (rv_keys == 0)
        check_claims(&c);
    free(tok);
    return 0;
}
