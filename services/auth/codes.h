/*
 * One-time codes at rest: generation from the CSPRNG, a keyed hash to find a code
 * (HMAC-SHA256), and authenticated encryption (XSalsa20-Poly1305) so that the admin can
 * list codes while a copy of the database alone reveals none. Both keys are derived
 * from SECRET_KEY. During a rotation the keys derived from SECRET_KEY_PREVIOUS are
 * accepted too (lookup, listing) and stored codes are re-keyed under the current key
 * (auth_codes_rekey here, the database side in rekey.c).
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

/* Which key a stored code was made under (auth_codes_decrypt_either). */
enum auth_code_key {
    AUTH_CODE_KEY_CURRENT = 0,
    AUTH_CODE_KEY_PREVIOUS = 1
};

/*
 * Decrypts with cur, else with prev (NULL: no previous key). Returns the enum
 * auth_code_key that worked, or VAP_EINVAL when neither did.
 */
int auth_codes_decrypt_either(const struct auth_codes *cur, const struct auth_codes *prev,
                              const uint8_t *in, size_t len, char out[AUTH_CODE_LEN + 1]);

enum auth_rekey_result {
    AUTH_REKEY_CURRENT,   /* already under cur: nothing to write */
    AUTH_REKEY_DONE,      /* made under prev: hash_out and enc_out hold the new values */
    AUTH_REKEY_UNREADABLE /* neither key opens it */
};

/*
 * Re-keys one stored code_enc: tries cur first (idempotent), then prev (may be NULL);
 * on AUTH_REKEY_DONE writes the code's hash and a fresh encryption under cur. The code
 * itself never leaves this function.
 */
enum auth_rekey_result auth_codes_rekey(const struct auth_codes *cur,
                                        const struct auth_codes *prev, const uint8_t *in,
                                        size_t len, uint8_t hash_out[AUTH_CODE_HASH_LEN],
                                        uint8_t enc_out[AUTH_CODE_ENC_LEN]);

/* Writes bytes as PostgreSQL bytea hex text ("\x0a1b...") into out (2*len+3 bytes). */
void auth_bytea_hex(const uint8_t *bytes, size_t len, char *out);

/* Parses bytea hex text; returns the length or -1. */
int auth_bytea_parse(const char *text, uint8_t *out, size_t size);

/*
 * Appends bytes as one item of a PostgreSQL array literal of bytea ("{" already at
 * buf[0]; a comma is added unless *pos is right after it) and advances *pos. The caller
 * sizes buf: 2*len + 8 bytes an item, plus the braces and the NUL it adds itself.
 */
void auth_bytea_array_append(char *buf, size_t *pos, const uint8_t *bytes, size_t len);

#endif
