/*
 * JSON helpers over jansson for request bodies: strict field readers that collect
 * FastAPI-shaped validation errors ({"loc":["body",field],"msg":...,"type":...}) so a
 * handler reports every bad field at once. Types are strict: "3" is not an integer,
 * 1.5 is not an integer, true is not an integer.
 */
#ifndef VAP_JSON_H
#define VAP_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* A list of validation errors; starts empty. */
struct vap_verrors {
    json_t *list; /* JSON array, created on first error */
};

/* Adds one error at loc ["body", field] (field NULL: ["body"]). */
void vap_verrors_add(struct vap_verrors *v, const char *field, const char *msg,
                     const char *type);

/* Adds one error at loc [where, field]; where is "body", "query" or "path". */
void vap_verrors_add_at(struct vap_verrors *v, const char *where, const char *field,
                        const char *msg, const char *type);

/* Whether any error was added. */
int vap_verrors_any(const struct vap_verrors *v);

/* Frees the list. */
void vap_verrors_clear(struct vap_verrors *v);

/*
 * Parses body as a JSON object, refusing nesting deeper than 32 levels before parsing
 * (jansson recurses). On failure adds an error (type "value_error.jsondecode" or
 * "type_error.dict") and returns VAP_EINVAL. *out is owned by the caller.
 */
int vap_json_parse_object(const char *body, size_t len, json_t **out, struct vap_verrors *v);

/*
 * Reads integer field name of obj into *out, checking min..max. Missing: an error if
 * required, else 0 with *present = 0. Returns 0 or VAP_EINVAL (error added).
 * present may be NULL.
 */
int vap_json_int_field(json_t *obj, const char *name, int64_t min, int64_t max, int required,
                       int64_t *out, int *present, struct vap_verrors *v);

/* Reads a string field whose length in characters (UTF-8 code points, as FastAPI
 * counts) is within min_len..max_len. *out points
 * into obj. Same conventions as vap_json_int_field. */
int vap_json_string_field(json_t *obj, const char *name, size_t min_len, size_t max_len,
                          int required, const char **out, int *present,
                          struct vap_verrors *v);

/* Reads a boolean field. Same conventions. */
int vap_json_bool_field(json_t *obj, const char *name, int required, int *out, int *present,
                        struct vap_verrors *v);

/* Length in characters (UTF-8 code points, as FastAPI/pydantic count) of s's first
 * bytes bytes. */
size_t vap_utf8_length(const char *s, size_t bytes);

/* The longest prefix of s, at most max bytes, that does not cut a UTF-8 character (for
 * quoting client text in a message that must stay valid UTF-8). */
size_t vap_utf8_prefix(const char *s, size_t max);

/* Strict decimal parse of a whole string into min..max; 0 or VAP_EINVAL. */
int vap_parse_int64(const char *text, int64_t min, int64_t max, int64_t *out);

/* Builds item(0, ctx) .. item(n - 1, ctx) (each a new reference, NULL on failure) into
 * a JSON array and returns it as compact text (free() it), e.g. a batch of rows sent as
 * one SQL parameter; NULL if any item or the dump failed (nothing leaks). */
char *vap_json_array_dumps(size_t n, json_t *(*item)(size_t i, void *ctx), void *ctx);

/*
 * A JSON text written straight into one growing buffer, for hot replies made of many
 * records (an admin's code list), where a jansson tree costs a malloc per key and value
 * (a third of the machine in `GET /api/otps/` under load). The caller writes the
 * punctuation with vap_jw_raw; values go through the typed writers, which escape.
 * A failed allocation marks the writer failed; vap_jw_finish then returns NULL.
 */
struct vap_jw {
    char *buf;
    size_t len, cap;
    int failed;
};

void vap_jw_raw(struct vap_jw *w, const char *text); /* verbatim: punctuation, keys */
void vap_jw_str(struct vap_jw *w, const char *s);    /* a string, quoted and escaped */
void vap_jw_int(struct vap_jw *w, int64_t v);
void vap_jw_bool(struct vap_jw *w, int v);
/* The text (NUL-terminated, free() it) and its length; NULL when a write failed (the
 * buffer is freed either way). */
char *vap_jw_finish(struct vap_jw *w, size_t *len);

#endif
