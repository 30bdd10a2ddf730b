/*
 * vap-gateway: the public HTTP server (civetweb). Reads its configuration, connects to
 * vap-auth (req/rep + revocation events), starts civetweb and waits for a signal.
 * SIGTERM drains: /readyz turns 503 so load balancers stop sending, requests in
 * progress finish, then the process exits.
 */
#include <nng/nng.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "err.h"
#include "gateway.h"
#include "http.h"
#include "alloc.h"
#include "log.h"
#include "metrics.h"
#include "revocations.h"
#include "signals.h"
#include "voice_gw.h"

const struct gw_metric_route *gw_router_metric_routes(int *n);

static struct gw_ctx gw;

static const struct vap_config_item config_table[] = {
    {"BIND_ADDR", VAP_CONFIG_STRING, "0.0.0.0", 0, 0, 0, &gw.cfg.bind_addr, NULL},
    {"PORT", VAP_CONFIG_INT, "8000", 1, 65535, 0, &gw.cfg.port, NULL},
    {"SECRET_KEY", VAP_CONFIG_STRING, NULL, 0, 0, 1, &gw.cfg.secret_key,
     "token signing key, the same as vap-auth's"},
    {"SECRET_KEY_PREVIOUS", VAP_CONFIG_STRING, "", 0, 0, 1, &gw.cfg.secret_key_previous,
     "the key before the last rotation: its tokens are still accepted"},
    {"AUTH_RPC_URL", VAP_CONFIG_STRING, "tcp://127.0.0.1:7101", 0, 0, 0, &gw.cfg.auth_rpc_url,
     NULL},
    {"AUTH_EVENTS_URL", VAP_CONFIG_STRING, "tcp://127.0.0.1:7102", 0, 0, 0,
     &gw.cfg.auth_events_url, NULL},
    {"USAGE_RPC_URL", VAP_CONFIG_STRING, "tcp://127.0.0.1:7201", 0, 0, 0, &gw.cfg.usage_rpc_url,
     NULL},
    {"AGENTS_DIR", VAP_CONFIG_STRING, VAP_DEFAULT_AGENTS_DIR, 0, 0, 0, &gw.cfg.agents_dir, NULL},
    {"CORS_ORIGINS", VAP_CONFIG_STRING, "http://localhost:3000,http://localhost:8000", 0, 0, 0,
     &gw.cfg.cors_origins, NULL},
    {"GW_TRUSTED_PROXIES", VAP_CONFIG_STRING, "", 0, 0, 0, &gw.cfg.trusted_proxies,
     "reverse proxies (addresses, networks) whose X-Forwarded-For names the client"},
    {"WEB_DIR", VAP_CONFIG_STRING, VAP_DEFAULT_WEB_DIR, 0, 0, 0, &gw.cfg.web_dir, NULL},
    {"LOG_LEVEL", VAP_CONFIG_STRING, "info", 0, 0, 0, &gw.cfg.log_level, NULL},
    {"GW_THREADS", VAP_CONFIG_INT, "256", 4, 4096, 0, &gw.cfg.threads, NULL},
    {"GW_RPC_TIMEOUT_MS", VAP_CONFIG_INT, "3000", 50, 60000, 0, &gw.cfg.rpc_timeout_ms, NULL},
    {"GW_LOGIN_TIMEOUT_MS", VAP_CONFIG_INT, "8000", 100, 60000, 0, &gw.cfg.login_timeout_ms,
     NULL},
    {"GW_REVOCATION_MAX_AGE_MS", VAP_CONFIG_INT, "30000", 1000, 600000, 0,
     &gw.cfg.revocation_max_age_ms, NULL},
    {"GW_DRAIN_MS", VAP_CONFIG_INT, "0", 0, 60000, 0, &gw.cfg.drain_ms, NULL},
    {"GW_VOICE_HEARTBEAT_URL", VAP_CONFIG_STRING, "tcp://127.0.0.1:7302", 0, 0, 0,
     &gw.cfg.voice_heartbeat_url, "where voice workers send heartbeats"},
    {"GW_VOICE_MEDIA_URL", VAP_CONFIG_STRING, "tcp://127.0.0.1:0", 0, 0, 0,
     &gw.cfg.voice_media_url, "where voice workers push frames back (port 0: any)"},
    {"GW_VOICE_ADVERTISE_HOST", VAP_CONFIG_STRING, "", 0, 0, 0, &gw.cfg.voice_advertise_host,
     "host workers use to reach GW_VOICE_MEDIA_URL when its port is picked"},
    {"GW_VOICE_WORKER_TIMEOUT_MS", VAP_CONFIG_INT, "3000", 500, 60000, 0,
     &gw.cfg.voice_worker_timeout_ms, "a worker silent this long is gone"},
    {"GW_VOICE_MAX_PER_TOKEN", VAP_CONFIG_INT, "3", 1, 1000, 0, &gw.cfg.voice_max_per_token,
     "concurrent voice sessions per token (4429 beyond)"},
    {"GW_VOICE_CLIENT_QUEUE_BYTES", VAP_CONFIG_INT, "2097152", 16384, 67108864, 0,
     &gw.cfg.voice_client_queue_bytes,
     "bytes queued for a voice client that is not reading before it is dropped (1008)"},
    {"GW_VOICE_MAX_STREAMS", VAP_CONFIG_INT, "0", 0, 4096, 0, &gw.cfg.voice_max_streams,
     "open voice WebSockets at most (1013 beyond); 0 = GW_THREADS less 1/8 kept for REST"},
    {"GW_VOICE_PING_MS", VAP_CONFIG_INT, "30000", 1000, 600000, 0, &gw.cfg.voice_ping_ms,
     "a voice WebSocket silent this long is pinged (not dropped)"},
};
#define N_CONFIG (sizeof(config_table) / sizeof(config_table[0]))

static int log_civetweb(const struct mg_connection *conn, const char *message)
{
    (void)conn;
    vap_warn(NULL, "civetweb: %s", message);
    return 1;
}

int main(int argc, char **argv)
{
    struct mg_callbacks callbacks;
    struct mg_context *mg;
    const struct gw_metric_route *metric_routes;
    enum vap_log_level level = VAP_LOG_INFO;
    char err[256], ports[96], threads[16], ping_ms[16];
    int n_metric_routes;

    vap_signals_block();
    vap_log_init("gateway", VAP_LOG_INFO);
    vap_alloc_untcache(argv);
    (void)argc;
    if (sodium_init() < 0)
        return 1;
    if (vap_config_load(config_table, N_CONFIG, err, sizeof(err)) != 0) {
        vap_error(NULL, "configuration error: %s", err);
        return 2;
    }
    if (vap_log_parse_level(gw.cfg.log_level, &level) != 0) {
        vap_error(NULL, "configuration error: LOG_LEVEL: unknown level \"%s\"",
                  gw.cfg.log_level);
        return 2;
    }
    if (strlen(gw.cfg.secret_key) < 16) {
        vap_error(NULL, "configuration error: SECRET_KEY: must be at least 16 characters");
        return 2;
    }
    if (gw.cfg.secret_key_previous[0] != '\0' && strlen(gw.cfg.secret_key_previous) < 16) {
        vap_error(NULL,
                  "configuration error: SECRET_KEY_PREVIOUS: must be at least 16 characters");
        return 2;
    }
    if (!vap_http_trusted_valid(gw.cfg.trusted_proxies)) {
        vap_error(NULL, "configuration error: GW_TRUSTED_PROXIES: not a list of addresses and "
                        "networks (value \"%s\")", gw.cfg.trusted_proxies);
        return 2;
    }
    gw.token_keys.current = (const uint8_t *)gw.cfg.secret_key;
    gw.token_keys.current_len = strlen(gw.cfg.secret_key);
    gw.token_keys.previous = (const uint8_t *)gw.cfg.secret_key_previous;
    gw.token_keys.previous_len = strlen(gw.cfg.secret_key_previous);
    vap_log_init("gateway", level);
    vap_config_log(config_table, N_CONFIG);
    {
        uint8_t raw[4];
        randombytes_buf(raw, sizeof(raw));
        sodium_bin2hex(gw.request_id_prefix, sizeof(gw.request_id_prefix), raw, sizeof(raw));
    }

    {
        /* Each voice stream holds a civetweb thread for its life: keep some for REST. */
        long reserve = gw.cfg.threads / 8 > 8 ? gw.cfg.threads / 8 : 8;
        long most = gw.cfg.threads - reserve > 1 ? gw.cfg.threads - reserve : 1;
        if (gw.cfg.voice_max_streams == 0 || gw.cfg.voice_max_streams > most)
            gw.cfg.voice_max_streams = most;
    }
    metric_routes = gw_router_metric_routes(&n_metric_routes);
    if (gw_metrics_create(&gw.metrics, metric_routes, n_metric_routes) != 0 ||
        vap_rpc_client_open(&gw.auth, gw.cfg.auth_rpc_url) != 0 ||
        vap_rpc_client_open(&gw.usage, gw.cfg.usage_rpc_url) != 0 ||
        gw_revocations_start(&gw.revocations, gw.auth, gw.cfg.auth_events_url,
                             gw.cfg.revocation_max_age_ms) != 0) {
        vap_error(NULL, "cannot start: backend connections failed");
        return 1;
    }

    if (gw_agents_reload(gw.cfg.agents_dir) != 0)
        return 1;
    snprintf(ports, sizeof(ports), "%s:%ld", gw.cfg.bind_addr, gw.cfg.port);
    snprintf(threads, sizeof(threads), "%ld", gw.cfg.threads);
    snprintf(ping_ms, sizeof(ping_ms), "%ld", gw.cfg.voice_ping_ms);
    const char *options[] = {
        "listening_ports", ports,
        "num_threads", threads,
        /* Thread per connection: idle or slow clients must let go of threads soon. */
        "request_timeout_ms", "10000",
        "keep_alive_timeout_ms", "5000",
        "enable_keep_alive", "yes",
        "tcp_nodelay", "1",
        "listen_backlog", "1024",
        "connection_queue", "1024",
        "max_request_size", "16384",
        /* Paths stay percent-encoded: a decoded %00 would cut "/api/otps/2%00x" short. */
        "decode_url", "no",
        "static_file_cache_control", "no-cache",
        /* Voice streams: an idle client is pinged (GW_VOICE_PING_MS) instead of dropped. */
        "websocket_timeout_ms", ping_ms,
        "enable_websocket_ping_pong", "yes",
        NULL,
    };
    memset(&callbacks, 0, sizeof(callbacks));
    callbacks.begin_request = gw_handle_request;
    callbacks.log_message = log_civetweb;
    mg_init_library(0);
    mg = mg_start(&callbacks, &gw, options);
    if (!mg) {
        vap_error(NULL, "cannot listen on %s", ports);
        return 1;
    }
    if (gw_voice_start(&gw, gw.cfg.voice_heartbeat_url) != 0) {
        vap_error(NULL, "cannot listen for voice workers on %s", gw.cfg.voice_heartbeat_url);
        return 1;
    }
    gw_voice_install(mg, &gw);
    vap_info(NULL, "vap-gateway listening on http://%s", ports);

    for (;;) {
        int sig = vap_signals_wait(-1);
        if (sig == SIGTERM || sig == SIGINT)
            break;
        if (sig == SIGHUP)
            gw_agents_reload(gw.cfg.agents_dir);
    }
    atomic_store(&gw.draining, 1);
    vap_info(NULL, "vap-gateway draining in_flight=%d", gw_metrics_in_flight_now(gw.metrics));
    if (gw.cfg.drain_ms > 0) /* let load balancers see /readyz fail first */
        vap_signals_wait((int)gw.cfg.drain_ms);
    /* Voice clients are told to resume elsewhere (1012 + reason) rather than cut off by
     * mg_stop() without a close frame; their sessions wait on the workers. */
    gw_voice_close_all_resumable();
    {
        int64_t until = vap_now_ms() + 1000;
        while (gw_voice_sessions() > 0 && vap_now_ms() < until)
            vap_signals_wait(20);
    }
    /* civetweb stops writing replies once mg_stop() begins, so wait here until the
     * requests in progress have answered (bounded by the longest backend deadline). */
    {
        int64_t until = vap_now_ms() + gw.cfg.login_timeout_ms + 1000;
        while (gw_metrics_in_flight_now(gw.metrics) > 0 && vap_now_ms() < until)
            vap_signals_wait(20);
    }
    /* Each step is logged: a stop that hangs shows in the log where it stands. */
    vap_info(NULL, "vap-gateway stopping http in_flight=%d voice_streams=%d",
             gw_metrics_in_flight_now(gw.metrics), gw_voice_sessions());
    mg_stop(mg);
    vap_info(NULL, "vap-gateway http stopped; closing voice links and rpc clients");
    gw_voice_stop();
    gw_vconn_lost_records_stop();
    gw_revocations_stop(gw.revocations);
    vap_rpc_client_close(gw.auth);
    vap_rpc_client_close(gw.usage);
    gw_agents_free();
    gw_metrics_destroy(gw.metrics);
    mg_exit_library();
    /* Every socket is closed and every thread joined: free nng's global state too, so a
     * message that arrived on a link as it closed is not reported as leaked. */
    nng_fini();
    vap_info(NULL, "vap-gateway stopped");
    return 0;
}
