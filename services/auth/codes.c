/* One-time code generation, keyed hashing and encryption (see codes.h). */
#include "codes.h"

#include <string.h>

#include "err.h"

void auth_codes_init(struct auth_codes *c, const uint8_t *secret, size_t secret_len)
{
    uint8_t master[crypto_kdf_KEYBYTES];
    crypto_generichash(master, sizeof(master), secret, secret_len, NULL, 0);
    crypto_kdf_derive_from_key(c->hash_key, sizeof(c->hash_key), 1, "vapotp__", master);
    crypto_kdf_derive_from_key(c->enc_key, sizeof(c->enc_key), 2, "vapotp__", master);
    sodium_memzero(master, sizeof(master));
}

void auth_codes_generate(char out[AUTH_CODE_LEN + 1])
{
    uint32_t n = randombytes_uniform(1000000);
    for (int i = AUTH_CODE_LEN - 1; i >= 0; i--) {
        out[i] = (char)('0' + n % 10);
        n /= 10;
    }
    out[AUTH_CODE_LEN] = '\0';
}

int auth_codes_valid(const char *text)
{
    if (!text || strlen(text) != AUTH_CODE_LEN)
        return 0;
    for (int i = 0; i < AUTH_CODE_LEN; i++)
        if (text[i] < '0' || text[i] > '9')
            return 0;
    return 1;
}

void auth_codes_hash(const struct auth_codes *c, const char *code,
                     uint8_t out[AUTH_CODE_HASH_LEN])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, c->hash_key, sizeof(c->hash_key));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)code, strlen(code));
    crypto_auth_hmacsha256_final(&st, out);
}

void auth_codes_encrypt(const struct auth_codes *c, const char *code,
                        uint8_t out[AUTH_CODE_ENC_LEN])
{
    randombytes_buf(out, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(out + crypto_secretbox_NONCEBYTES, (const unsigned char *)code,
                          AUTH_CODE_LEN, out, c->enc_key);
}

int auth_codes_decrypt(const struct auth_codes *c, const uint8_t *in, size_t len,
                       char out[AUTH_CODE_LEN + 1])
{
    if (len != AUTH_CODE_ENC_LEN)
        return VAP_EINVAL;
    if (crypto_secretbox_open_easy((unsigned char *)out, in + crypto_secretbox_NONCEBYTES,
                                   len - crypto_secretbox_NONCEBYTES, in, c->enc_key) != 0)
        return VAP_EINVAL;
    out[AUTH_CODE_LEN] = '\0';
    return 0;
}

int auth_codes_decrypt_either(const struct auth_codes *cur, const struct auth_codes *prev,
                              const uint8_t *in, size_t len, char out[AUTH_CODE_LEN + 1])
{
    if (auth_codes_decrypt(cur, in, len, out) == 0)
        return AUTH_CODE_KEY_CURRENT;
    if (prev && auth_codes_decrypt(prev, in, len, out) == 0)
        return AUTH_CODE_KEY_PREVIOUS;
    return VAP_EINVAL;
}

enum auth_rekey_result auth_codes_rekey(const struct auth_codes *cur,
                                        const struct auth_codes *prev, const uint8_t *in,
                                        size_t len, uint8_t hash_out[AUTH_CODE_HASH_LEN],
                                        uint8_t enc_out[AUTH_CODE_ENC_LEN])
{
    char code[AUTH_CODE_LEN + 1];
    enum auth_rekey_result r = AUTH_REKEY_UNREADABLE;

    switch (auth_codes_decrypt_either(cur, prev, in, len, code)) {
    case AUTH_CODE_KEY_CURRENT:
        r = AUTH_REKEY_CURRENT;
        break;
    case AUTH_CODE_KEY_PREVIOUS:
        auth_codes_hash(cur, code, hash_out);
        auth_codes_encrypt(cur, code, enc_out);
        r = AUTH_REKEY_DONE;
        break;
    default:
        break;
    }
    sodium_memzero(code, sizeof(code));
    return r;
}

void auth_bytea_hex(const uint8_t *bytes, size_t len, char *out)
{
    out[0] = '\\';
    out[1] = 'x';
    sodium_bin2hex(out + 2, 2 * len + 1, bytes, len);
}

int auth_bytea_parse(const char *text, uint8_t *out, size_t size)
{
    size_t n = 0;
    if (!text || text[0] != '\\' || text[1] != 'x')
        return -1;
    if (sodium_hex2bin(out, size, text + 2, strlen(text + 2), NULL, &n, NULL) != 0)
        return -1;
    return (int)n;
}

void auth_bytea_array_append(char *buf, size_t *pos, const uint8_t *bytes, size_t len)
{
    if (buf[*pos - 1] != '{')
        buf[(*pos)++] = ',';
    buf[(*pos)++] = '"';
    buf[(*pos)++] = '\\';
    buf[(*pos)++] = '\\';
    buf[(*pos)++] = 'x';
    sodium_bin2hex(buf + *pos, 2 * len + 1, bytes, len);
    *pos += 2 * len;
    buf[(*pos)++] = '"';
}
