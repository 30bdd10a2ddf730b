/* Names for the portal's error codes (see err.h). */
#include "err.h"

const char *vap_strerror(int err)
{
    switch (err) {
    case VAP_OK:
        return "ok";
    case VAP_ENOMEM:
        return "out of memory";
    case VAP_EINVAL:
        return "invalid argument";
    case VAP_ETIMEDOUT:
        return "deadline exceeded";
    case VAP_EUNAVAIL:
        return "service unavailable";
    case VAP_ETOOBIG:
        return "too large";
    case VAP_ENOTFOUND:
        return "not found";
    case VAP_EPROTO:
        return "protocol error";
    case VAP_EDB:
        return "database error";
    case VAP_ECONFLICT:
        return "conflict";
    case VAP_EAUTH:
        return "not authorized";
    case VAP_EINTERNAL:
        return "internal error";
    case VAP_ECANCELED:
        return "canceled";
    }
    return "unknown error";
}
