/*
 * Error codes shared by every module of the portal. Functions that can fail return
 * 0 on success or one of these negative codes; vap_strerror() names them for logs.
 * They say what went wrong in terms a caller can act on (retry, 503, 4xx), not which
 * library call failed: that goes into the log line at the place of failure.
 */
#ifndef VAP_ERR_H
#define VAP_ERR_H

enum vap_err {
    VAP_OK = 0,
    VAP_ENOMEM = -1,    /* allocation failed */
    VAP_EINVAL = -2,    /* bad argument or malformed input */
    VAP_ETIMEDOUT = -3, /* the deadline passed */
    VAP_EUNAVAIL = -4,  /* a backing service or the database cannot be reached */
    VAP_ETOOBIG = -5,   /* a ceiling was reached */
    VAP_ENOTFOUND = -6, /* no such thing */
    VAP_EPROTO = -7,    /* a peer sent something that does not decode */
    VAP_EDB = -8,       /* the database refused a statement */
    VAP_ECONFLICT = -9, /* a uniqueness or state conflict */
    VAP_EAUTH = -10,    /* credentials or token not accepted */
    VAP_EINTERNAL = -11, /* a bug or an unexpected library failure */
    VAP_ECANCELED = -12  /* the caller asked to stop (e.g. barge-in cancelled a reply) */
};

/* Returns a static, human-readable name for an error code. Thread-safe. */
const char *vap_strerror(int err);

#endif
