/*
 * HTTP helpers over civetweb for request handlers: reading a body under a size limit,
 * checking content types, parsing form fields, and writing JSON replies in FastAPI's
 * error shape ({"detail": "..."} / {"detail": [validation errors]}). Every reply is
 * written with one mg_write so it leaves in as few packets as possible.
 * Called only from civetweb worker threads, on their own connection.
 */
#ifndef VAP_HTTP_H
#define VAP_HTTP_H

#include <civetweb.h>
#include <jansson.h>
#include <stddef.h>

#include "json.h"

#define VAP_HTTP_BODY_MAX (64 * 1024)

/*
 * Reads the request body (at most max bytes) into a NUL-terminated heap buffer the
 * caller frees. Returns 0, VAP_ETOOBIG (declared or actual length over max: reply 413
 * and close), VAP_EINVAL (short read), VAP_ENOMEM.
 */
int vap_http_read_body(struct mg_connection *conn, size_t max, char **out, size_t *len);

/* Whether the request's Content-Type is mime (parameters such as charset ignored). */
int vap_http_content_type_is(struct mg_connection *conn, const char *mime);

/* Copies form field name from an x-www-form-urlencoded body (URL-decoded) into buf.
 * Returns its length, or -1 when absent, -2 when it does not fit. */
int vap_http_form_field(const char *body, size_t len, const char *name, char *buf,
                        size_t size);

/*
 * Sends a complete response. extra_headers is zero or more "Name: value\r\n" lines
 * (may be NULL). Returns the number of body bytes written or a negative value.
 */
int vap_http_send(struct mg_connection *conn, int status, const char *content_type,
                  const char *body, size_t len, const char *extra_headers);

/* Sends json (reference stolen: it is freed here) with status. */
int vap_http_send_json(struct mg_connection *conn, int status, json_t *json,
                       const char *extra_headers);

/* Sends {"detail": detail}. */
int vap_http_send_error(struct mg_connection *conn, int status, const char *detail,
                        const char *extra_headers);

/* Sends 422 {"detail": [errors]} and clears v. */
int vap_http_send_validation(struct mg_connection *conn, struct vap_verrors *v,
                             const char *extra_headers);

/* The reason phrase for a status code. */
const char *vap_http_reason(int status);

/*
 * The client's address behind trusted reverse proxies. trusted lists addresses and
 * networks ("10.0.0.0/8, 127.0.0.1, fd00::/8"); when the peer is one of them, the
 * X-Forwarded-For value is read from the right, skipping trusted hops, and the first
 * address that is not trusted is the client (a client cannot plant an address of its
 * choosing: only what the proxies appended is believed). Otherwise, or when the header
 * holds nothing usable, the peer is the client. Writes it to out; returns 0, or
 * VAP_EINVAL when trusted does not parse (out is then the peer).
 */
int vap_http_client_addr(const char *peer, const char *forwarded_for, const char *trusted,
                         char *out, size_t size);

/* Whether trusted (as for vap_http_client_addr) parses: for checking configuration. */
int vap_http_trusted_valid(const char *trusted);

#endif
