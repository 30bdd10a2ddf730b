/*
 * vap-auth: administrators, passwords, one-time codes, login throttling and token
 * issuing, served to the gateways over nng req/rep (AUTH_RPC_URL), with revocation
 * events on pub/sub (AUTH_EVENTS_URL). It owns the PostgreSQL schema "auth" and applies
 * its migrations at start. SIGTERM stops taking requests and lets those in progress
 * finish.
 */
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>

#include "auth.h"
#include "prometheus.h"
#include "auth.pb-c.h"
#include "voice.pb-c.h"
#include "clock.h"
#include "config.h"
#include "embedded.h"
#include "err.h"
#include "alloc.h"
#include "log.h"
#include "migrate.h"
#include "signals.h"

extern const struct vap_embedded_file auth_migrations_files[];

static struct {
    const char *database_url;
    const char *secret_key;
    const char *secret_key_previous;
    const char *rpc_url;
    const char *events_url;
    const char *log_level;
    long token_minutes;
    long pool_size;
    long threads;
    long statement_timeout_ms;
    long throttle_max;
    long throttle_user_max;
    long throttle_net_max;
    long throttle_window_s;
    long throttle_block_s;
    long code_cache_ms;
} cfg;

static const struct vap_config_item config_table[] = {
    {"DATABASE_URL", VAP_CONFIG_STRING, NULL, 0, 0, 1, &cfg.database_url,
     "PostgreSQL URL, e.g. postgresql://vap:pw@127.0.0.1:5433/vap"},
    {"SECRET_KEY", VAP_CONFIG_STRING, NULL, 0, 0, 1, &cfg.secret_key,
     "token signing key (./portal up generates one)"},
    {"SECRET_KEY_PREVIOUS", VAP_CONFIG_STRING, "", 0, 0, 1, &cfg.secret_key_previous,
     "the key before the last rotation: its codes are re-keyed at start"},
    {"AUTH_RPC_URL", VAP_CONFIG_STRING, "tcp://127.0.0.1:7101", 0, 0, 0, &cfg.rpc_url, NULL},
    {"AUTH_EVENTS_URL", VAP_CONFIG_STRING, "tcp://127.0.0.1:7102", 0, 0, 0, &cfg.events_url,
     NULL},
    {"LOG_LEVEL", VAP_CONFIG_STRING, "info", 0, 0, 0, &cfg.log_level, NULL},
    {"ACCESS_TOKEN_EXPIRE_MINUTES", VAP_CONFIG_INT, "60", 1, 10080, 0, &cfg.token_minutes,
     NULL},
    {"AUTH_DB_POOL_SIZE", VAP_CONFIG_INT, "4", 1, 256, 0, &cfg.pool_size, NULL},
    {"AUTH_THREADS", VAP_CONFIG_INT, "0", 0, 256, 0, &cfg.threads,
     "RPC handlers computing at once; 0: the number of cores, at least 2"},
    {"DB_STATEMENT_TIMEOUT_MS", VAP_CONFIG_INT, "5000", 100, 600000, 0,
     &cfg.statement_timeout_ms, NULL},
    {"THROTTLE_MAX_FAILURES", VAP_CONFIG_INT, "10", 1, 100000, 0, &cfg.throttle_max, NULL},
    {"THROTTLE_USER_MAX_FAILURES", VAP_CONFIG_INT, "30", 1, 100000, 0, &cfg.throttle_user_max,
     NULL},
    {"THROTTLE_NET_MAX_FAILURES", VAP_CONFIG_INT, "50", 1, 1000000, 0, &cfg.throttle_net_max,
     "failed code logins per window from one /24 (IPv4) or /64 (IPv6) network"},
    {"THROTTLE_WINDOW_S", VAP_CONFIG_INT, "300", 1, 86400, 0, &cfg.throttle_window_s, NULL},
    {"THROTTLE_BLOCK_S", VAP_CONFIG_INT, "300", 1, 86400, 0, &cfg.throttle_block_s, NULL},
    {"AUTH_CODE_CACHE_MS", VAP_CONFIG_INT, "1000", 0, 60000, 0, &cfg.code_cache_ms,
     "how long code logins and code lists may be answered from memory (0: never)"},
};

static const struct vap_rpc_method methods[] = {
    /* waits: argon2id runs in at most two of these at once (admin.c's hash slots, with
     * two more waiting); uncounted, a burst of admin logins cannot hold every place. */
    {"auth.login_admin", &vap__login_admin_request__descriptor, auth_login_admin, .waits = 1},
    {"auth.change_password", &vap__change_password_request__descriptor, auth_change_password,
     .waits = 1},
    {"auth.login_otp", &vap__login_otp_request__descriptor, auth_login_otp, 0},
    {"auth.otp_list", &vap__otp_list_request__descriptor, auth_otp_list, 0},
    {"auth.otp_create", &vap__otp_create_request__descriptor, auth_otp_create, 0},
    {"auth.otp_update", &vap__otp_update_request__descriptor, auth_otp_update, 0},
    {"auth.otp_delete", &vap__otp_delete_request__descriptor, auth_otp_delete, 0},
    /* waits: a spend waits to be grouped into one batch's statement and commit
     * (spend_batch.c), so the many waiting do not take the places of logins. */
    {"auth.access", &vap__access_request__descriptor, auth_access, .waits = 1},
    {"auth.outbox", &vap__outbox_request__descriptor, auth_outbox, 0},
    {"auth.grant_claim", &vap__grant_claim_request__descriptor, auth_grant_claim, 0},
    {"auth.grant_release", &vap__grant_claim_reply__descriptor, auth_grant_release, 0},
    {"auth.revocations", &vap__empty__descriptor, auth_revocations, 0},
    {"auth.ping", &vap__empty__descriptor, auth_ping, 0},
    {NULL, NULL, NULL, 0},
};


static int make_throttle(struct auth_throttle **out, long max, long window_s, long block_s)
{
    struct auth_throttle_limits lim = {
        .max_failures = (int)max,
        .window_ms = window_s * 1000,
        .block_ms = block_s * 1000,
        .capacity = 65536,
    };
    return auth_throttle_create(out, &lim);
}

int main(int argc, char **argv)
{
    static struct auth_ctx ctx;
    struct vap_rpc_server *server = NULL;
    enum vap_log_level level = VAP_LOG_INFO;
    char err[256];
    int rv;

    vap_signals_block();
    vap_log_init("auth", VAP_LOG_INFO);
    vap_alloc_untcache(argv);
    (void)argc;
    if (sodium_init() < 0) {
        vap_error(NULL, "libsodium failed to initialise");
        return 1;
    }
    if (vap_config_load(config_table, sizeof(config_table) / sizeof(config_table[0]), err,
                        sizeof(err)) != 0) {
        vap_error(NULL, "configuration error: %s", err);
        return 2;
    }
    if (vap_log_parse_level(cfg.log_level, &level) != 0) {
        vap_error(NULL, "configuration error: LOG_LEVEL: unknown level \"%s\"", cfg.log_level);
        return 2;
    }
    if (strlen(cfg.secret_key) < 16) {
        vap_error(NULL, "configuration error: SECRET_KEY: must be at least 16 characters");
        return 2;
    }
    if (cfg.secret_key_previous[0] != '\0' && strlen(cfg.secret_key_previous) < 16) {
        vap_error(NULL,
                  "configuration error: SECRET_KEY_PREVIOUS: must be at least 16 characters");
        return 2;
    }
    vap_log_init("auth", level);
    vap_config_log(config_table, sizeof(config_table) / sizeof(config_table[0]));
    if (cfg.threads == 0) {
        /* The handlers it counts compute (spends and admin logins, which wait, are not
         * counted): more at once than cores only lengthens the run queue. On 2 cores, in
         * 5 paired runs, 4 put code login's p99 over 10 ms 3 times and the code list's 4
         * times; 2 did 0 and 1 times (docs/ARCHITECTURE.md, "Performance"). */
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        cfg.threads = cores > 2 ? cores : 2;
        vap_info(NULL, "AUTH_THREADS=0: %ld handlers at once (the cores)", cfg.threads);
    }

    ctx.jwt_key = (const uint8_t *)cfg.secret_key;
    ctx.jwt_key_len = strlen(cfg.secret_key);
    ctx.token_ttl_s = cfg.token_minutes * 60;
    auth_codes_init(&ctx.codes, ctx.jwt_key, ctx.jwt_key_len);
    if (cfg.secret_key_previous[0] != '\0') {
        auth_codes_init(&ctx.codes_prev, (const uint8_t *)cfg.secret_key_previous,
                        strlen(cfg.secret_key_previous));
        ctx.prev = &ctx.codes_prev;
    }
    pthread_mutex_init(&ctx.events_lock, NULL);
    pthread_mutex_init(&ctx.hash_slots_lock, NULL);
    pthread_cond_init(&ctx.hash_slots_cond, NULL);
    ctx.hash_slots = 2;
    {
        uint8_t raw[16];
        randombytes_buf(raw, sizeof(raw));
        sodium_bin2hex(ctx.instance, sizeof(ctx.instance), raw, sizeof(raw));
    }
    if (make_throttle(&ctx.throttle_addr, cfg.throttle_max, cfg.throttle_window_s,
                      cfg.throttle_block_s) != 0 ||
        make_throttle(&ctx.throttle_user, cfg.throttle_user_max, cfg.throttle_window_s,
                      cfg.throttle_block_s) != 0 ||
        make_throttle(&ctx.throttle_net, cfg.throttle_net_max, cfg.throttle_window_s,
                      cfg.throttle_block_s) != 0) {
        vap_error(NULL, "cannot allocate throttle tables");
        return 1;
    }
    if (auth_code_cache_create(&ctx.code_cache, cfg.code_cache_ms) != 0)
        return 1;
    struct vap_db_options dbo = {
        .conninfo = cfg.database_url,
        .size = (int)cfg.pool_size,
        .connect_timeout_s = 2,
        .statement_timeout_ms = (int)cfg.statement_timeout_ms,
        .max_age_s = 1800,
        .application_name = "vap-auth",
    };
    if (vap_db_pool_create(&ctx.db, &dbo) != 0) {
        vap_error(NULL, "cannot create database pool");
        return 1;
    }
    if (auth_spend_queue_create(&ctx.spends, ctx.db, auth_publish_grants, &ctx) != 0)
        return 1;
    rv = vap_migrate_pool(ctx.db, "auth", auth_migrations_files, 60);
    if (rv == 0)
        rv = auth_rekey_codes(&ctx, 60);
    if (rv == 0)
        rv = auth_ensure_default_admin(&ctx);
    if (rv != 0)
        return 1;
    rv = vap_pub_open(&ctx.events, cfg.events_url);
    if (rv != 0)
        return 1;
    rv = vap_rpc_server_start(&server, cfg.rpc_url, methods, &ctx, (int)cfg.threads);
    if (rv != 0)
        return 1;
    if (vap_metrics_serve_from_env() != 0)
        return 1;
    vap_info(NULL, "vap-auth ready rpc=%s events=%s instance=%s", cfg.rpc_url, cfg.events_url,
             ctx.instance);

    for (;;) {
        int sig = vap_signals_wait(-1);
        if (sig == SIGTERM || sig == SIGINT)
            break;
    }

    vap_info(NULL, "vap-auth stopping: finishing requests in progress");
    vap_rpc_server_stop(server);
    vap_metrics_stop();
    auth_spend_queue_destroy(ctx.spends); /* its batcher publishes */
    vap_pub_close(ctx.events);
    vap_db_pool_destroy(ctx.db);
    auth_throttle_destroy(ctx.throttle_addr);
    auth_throttle_destroy(ctx.throttle_net);
    auth_throttle_destroy(ctx.throttle_user);
    auth_code_cache_destroy(ctx.code_cache);
    /* Every socket is closed and every thread joined: free nng's global state too, so a
     * message still queued on a closed socket is not reported as leaked. */
    nng_fini();
    vap_info(NULL, "vap-auth stopped");
    return 0;
}
