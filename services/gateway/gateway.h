/*
 * vap-gateway's shared state and the pieces each file provides. The gateway is the
 * only public process: civetweb worker threads run one request each through
 * router.c, which authenticates (authn.c + revocations.c), calls the backing service
 * over nng with a deadline, and writes the reply. Nothing here blocks without a
 * deadline.
 */
#ifndef VAP_GATEWAY_H
#define VAP_GATEWAY_H

#include <civetweb.h>
#include <stdatomic.h>
#include <stdint.h>

#include "json.h"
#include "rpc.h"
#include "token.h"

struct gw_revocations;
struct gw_metrics;

struct gw_config {
    const char *bind_addr;
    long port;
    const char *secret_key;
    const char *secret_key_previous; /* "" when unset */
    const char *auth_rpc_url;
    const char *auth_events_url;
    const char *usage_rpc_url;
    const char *agents_dir;
    const char *cors_origins;
    const char *trusted_proxies; /* whose X-Forwarded-For names the client */
    const char *web_dir;
    const char *log_level;
    long threads;
    long rpc_timeout_ms;
    long login_timeout_ms;
    long revocation_max_age_ms;
    long drain_ms;
    const char *voice_heartbeat_url;
    const char *voice_media_url;
    const char *voice_advertise_host;
    long voice_worker_timeout_ms;
    long voice_max_per_token;
    long voice_client_queue_bytes;
    long voice_max_streams; /* 0: GW_THREADS less a reserve for REST */
    long voice_ping_ms;     /* an idle voice WebSocket is pinged after this */
};

struct gw_ctx {
    struct gw_config cfg;
    struct vap_token_keys token_keys; /* SECRET_KEY, then SECRET_KEY_PREVIOUS */
    struct vap_rpc_client *auth;
    struct vap_rpc_client *usage;
    struct gw_revocations *revocations;
    struct gw_metrics *metrics;
    atomic_int draining;
    atomic_int voice_streams; /* open voice WebSockets (each holds a civetweb thread) */
    char request_id_prefix[9];
    atomic_uint_fast64_t request_counter;
};

enum gw_auth_need {
    GW_AUTH_NONE,  /* public */
    GW_AUTH_ANY,   /* any valid token */
    GW_AUTH_ADMIN  /* admin token */
};

/* One request in flight; lives on the civetweb worker's stack. */
struct gw_req {
    struct gw_ctx *gw;
    struct mg_connection *conn;
    const struct mg_request_info *ri;
    char request_id[40];
    char headers[1024]; /* extra response headers: request id, CORS, security */
    size_t headers_len;
    const char *path_param;   /* the {id} segment of the route, if any */
    char path_param_buf[64];
    struct vap_token_claims claims;
    char client_addr[48];
    int status;               /* set when the reply is written */
};

/* ---- router.c ---- */

/* civetweb begin_request callback: handles every request; returns 1 (handled). */
int gw_handle_request(struct mg_connection *conn);

/* Appends a "Name: value\r\n" header to the reply's extra headers. */
void gw_add_header(struct gw_req *r, const char *name, const char *value);

/* Reply helpers: record the status for metrics and write the response. */
void gw_reply_json(struct gw_req *r, int status, json_t *body);
void gw_reply_error(struct gw_req *r, int status, const char *detail);
void gw_reply_validation(struct gw_req *r, struct vap_verrors *v);
void gw_reply_raw(struct gw_req *r, int status, const char *content_type, const char *body,
                  size_t len);

/*
 * Maps an RPC outcome that is not a 2xx answer to a reply: a transport failure
 * (rv != 0) becomes 503 with Retry-After, an error status is passed on with its detail
 * (422 with the field, 429 with Retry-After). Returns 1 if it replied, 0 for a 2xx.
 */
int gw_reply_rpc_failure(struct gw_req *r, int rv, const struct vap_rpc_result *res);

/* Replies 413 and closes the connection. */
void gw_reply_too_large(struct gw_req *r);

/* Reads the JSON body (64 KiB limit, application/json required) into *out.
 * On failure it has replied (413/415/422) and returns non-zero. */
int gw_read_json_body(struct gw_req *r, json_t **out);

/* Deadline for a backend call made now. */
int64_t gw_deadline(struct gw_req *r, long timeout_ms);

/* ---- route handlers ---- */
void gw_route_login_admin(struct gw_req *r);
void gw_route_login_otp(struct gw_req *r);
void gw_route_change_password(struct gw_req *r);
void gw_route_otp_list(struct gw_req *r);
void gw_route_otp_create(struct gw_req *r);
void gw_route_otp_update(struct gw_req *r);
void gw_route_otp_delete(struct gw_req *r);
void gw_route_agents_list(struct gw_req *r);
void gw_route_agents_config(struct gw_req *r);
void gw_route_agents_access(struct gw_req *r);
void gw_route_agents_usage(struct gw_req *r);
void gw_route_agents_traffic(struct gw_req *r);
void gw_route_healthz(struct gw_req *r);
void gw_route_readyz(struct gw_req *r);
void gw_route_metrics(struct gw_req *r);
void gw_route_docs(struct gw_req *r);
void gw_route_redoc(struct gw_req *r);
void gw_route_openapi(struct gw_req *r);

/* Serves a file under WEB_DIR for GET/HEAD; returns 0 if it replied, -1 if no file. */
int gw_serve_static(struct gw_req *r, const char *path);

/* ---- routes_agents.c: the configured agents ---- */

/* Loads the agent files of dir and swaps them in (start and SIGHUP). 0 or VAP_E*. */
int gw_agents_reload(const char *dir);

/* Drops the current set at exit. */
void gw_agents_free(void);

/* Whether an agent with this id is configured now. */
int gw_agent_exists(const char *id);

/* ---- authn.c ---- */

/* Checks the bearer token for need; on failure replies 401/403/503 and returns -1. */
int gw_authenticate(struct gw_req *r, enum gw_auth_need need);

/* ---- cors.c ---- */

/* Adds CORS headers for an allowed Origin. */
void gw_cors_headers(struct gw_req *r);

/* Answers an OPTIONS preflight. */
void gw_cors_preflight(struct gw_req *r);

#endif
