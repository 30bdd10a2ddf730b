/*
 * vap-usage: turns auth's usage events into usage records and traffic statistics and
 * answers the admin's queries about them (USAGE_RPC_URL). Owns schema "usage". Events
 * come live over pub/sub (AUTH_EVENTS_URL) and are completed from auth's outbox, so a
 * restart of this process, or of vap-auth, loses none (see sync.c).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>

#include "auth.pb-c.h"
#include "clock.h"
#include "config.h"
#include "embedded.h"
#include "err.h"
#include "alloc.h"
#include "log.h"
#include "migrate.h"
#include "prometheus.h"
#include "signals.h"
#include "usage.h"
#include "usage.pb-c.h"
#include "voice.pb-c.h"

extern const struct vap_embedded_file usage_migrations_files[];

static struct {
    const char *database_url;
    const char *rpc_url;
    const char *auth_rpc_url;
    const char *auth_events_url;
    const char *log_level;
    long pool_size;
    long threads;
} cfg;

static const struct vap_config_item config_table[] = {
    {"DATABASE_URL", VAP_CONFIG_STRING, NULL, 0, 0, 1, &cfg.database_url, "PostgreSQL URL"},
    {"USAGE_RPC_URL", VAP_CONFIG_STRING, "tcp://127.0.0.1:7201", 0, 0, 0, &cfg.rpc_url, NULL},
    {"AUTH_RPC_URL", VAP_CONFIG_STRING, "tcp://127.0.0.1:7101", 0, 0, 0, &cfg.auth_rpc_url,
     NULL},
    {"AUTH_EVENTS_URL", VAP_CONFIG_STRING, "tcp://127.0.0.1:7102", 0, 0, 0,
     &cfg.auth_events_url, NULL},
    {"LOG_LEVEL", VAP_CONFIG_STRING, "info", 0, 0, 0, &cfg.log_level, NULL},
    {"USAGE_DB_POOL_SIZE", VAP_CONFIG_INT, "4", 2, 256, 0, &cfg.pool_size, NULL},
    {"USAGE_THREADS", VAP_CONFIG_INT, "4", 1, 256, 0, &cfg.threads, NULL},
};
#define N_CONFIG (sizeof(config_table) / sizeof(config_table[0]))

static const struct vap_rpc_method methods[] = {
    {"usage.list", &vap__usage_list_request__descriptor, usage_list, 0},
    {"usage.traffic", &vap__traffic_request__descriptor, usage_traffic, 0},
    {"usage.session", &vap__session_record__descriptor, usage_session_report, 0},
    {"usage.ping", &vap__empty__descriptor, usage_ping, 0},
    {NULL, NULL, NULL, 0},
};

int main(int argc, char **argv)
{
    static struct usage_ctx ctx;
    struct vap_rpc_server *server = NULL;
    enum vap_log_level level = VAP_LOG_INFO;
    char err[256];

    vap_signals_block();
    vap_log_init("usage", VAP_LOG_INFO);
    vap_alloc_untcache(argv);
    (void)argc;
    if (vap_config_load(config_table, N_CONFIG, err, sizeof(err)) != 0) {
        vap_error(NULL, "configuration error: %s", err);
        return 2;
    }
    if (vap_log_parse_level(cfg.log_level, &level) != 0) {
        vap_error(NULL, "configuration error: LOG_LEVEL: unknown level \"%s\"", cfg.log_level);
        return 2;
    }
    vap_log_init("usage", level);
    vap_config_log(config_table, N_CONFIG);

    struct vap_db_options dbo = {
        .conninfo = cfg.database_url,
        .size = (int)cfg.pool_size,
        .connect_timeout_s = 2,
        .statement_timeout_ms = 5000,
        .max_age_s = 1800,
        .application_name = "vap-usage",
    };
    if (vap_db_pool_create(&ctx.db, &dbo) != 0 ||
        vap_migrate_pool(ctx.db, "usage", usage_migrations_files, 60) != 0)
        return 1;
    if (vap_rpc_client_open(&ctx.auth, cfg.auth_rpc_url) != 0 ||
        usage_sync_start(&ctx, cfg.auth_events_url) != 0 ||
        vap_rpc_server_start(&server, cfg.rpc_url, methods, &ctx, (int)cfg.threads) != 0) {
        vap_error(NULL, "cannot start");
        return 1;
    }
    if (vap_metrics_serve_from_env() != 0)
        return 1;
    vap_info(NULL, "vap-usage ready rpc=%s", cfg.rpc_url);
    for (;;) {
        int sig = vap_signals_wait(-1);
        if (sig == SIGTERM || sig == SIGINT)
            break;
    }
    vap_info(NULL, "vap-usage stopping");
    vap_rpc_server_stop(server);
    vap_metrics_stop();
    usage_sync_stop(&ctx);
    vap_rpc_client_close(ctx.auth);
    vap_db_pool_destroy(ctx.db);
    /* Every socket is closed and every thread joined: free nng's global state too, so a
     * message still queued on a closed socket is not reported as leaked. */
    nng_fini();
    vap_info(NULL, "vap-usage stopped");
    return 0;
}
