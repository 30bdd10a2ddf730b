/*
 * One-time codes at rest: generation from the CSPRNG, a keyed hash to find a code
 * (HMAC-SHA256), and authenticated encryption (XSalsa20-Poly1305) so that the admin can
 * list codes while a copy of the database alone reveals none. Both keys are derived
 * from SECRET_KEY; rotating SECRET_KEY therefore invalidates existing codes.
 */
#ifndef VAP_AUTH_CODES_H
#define VAP_AUTH_CODES_H

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_CODE_LEN 6
#define AUTH_CODE_HASH_LEN crypto_auth_hmacsha256_BYTES
#define AUTH_CODE_ENC_LEN (crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + AUTH_CODE_LEN)

struct auth_codes {
    uint8_t hash_key[32];
    uint8_t enc_key[crypto_secretbox_KEYBYTES];
};

/* Derives both keys from the secret. */
void auth_codes_init(struct auth_codes *c, const uint8_t *secret, size_t secret_len);

/* Writes a uniformly random 6-digit code and its NUL into out[7]. */
void auth_codes_generate(char out[AUTH_CODE_LEN + 1]);

/* Whether text is exactly six ASCII digits. */
int auth_codes_valid(const char *text);

/* Keyed hash of a code. */
void auth_codes_hash(const struct auth_codes *c, const char *code,
                     uint8_t out[AUTH_CODE_HASH_LEN]);

/* Encrypts a code with a fresh nonce. */
void auth_codes_encrypt(const struct auth_codes *c, const char *code,
                        uint8_t out[AUTH_CODE_ENC_LEN]);

/* Decrypts; 0 or VAP_EINVAL when the data was not made with this key. */
int auth_codes_decrypt(const struct auth_codes *c, const uint8_t *in, size_t len,
                       char out[AUTH_CODE_LEN + 1]);

/* Writes bytes as PostgreSQL bytea hex text ("\x0a1b...") into out (2*len+3 bytes). */
void auth_bytea_hex(const uint8_t *bytes, size_t len, char *out);

/* Parses bytea hex text; returns the length or -1. */
int auth_bytea_parse(const char *text, uint8_t *out, size_t size);

#endif
