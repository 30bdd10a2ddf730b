/*
 * The internal links' dial and listen, with mutual TLS for tls+tcp:// URLs (see link.h).
 * One client and one server TLS configuration per process, made from the LINK_TLS_*
 * files at the first TLS URL and kept for the life of the process.
 */
#include "link.h"

#include <nng/supplemental/tls/tls.h>
#include <pthread.h>
#include <string.h>

#include "config.h"
#include "log.h"

#define TLS_SCHEME "tls+tcp://"
#define DEFAULT_SERVER_NAME "vap-internal"

static struct {
    pthread_once_t once;
    nng_tls_config *client, *server;
    int error; /* nng error of the setup, 0 when both configurations are ready */
} T = {PTHREAD_ONCE_INIT, NULL, NULL, 0};

static int tls_config(nng_tls_mode mode, const char *ca, const char *cert, const char *name,
                      nng_tls_config **out)
{
    nng_tls_config *c;
    int rv = nng_tls_config_alloc(&c, mode);
    if (rv != 0)
        return rv;
    if ((rv = nng_tls_config_ca_file(c, ca)) != 0) {
        vap_error(NULL, "LINK_TLS_CA_FILE: cannot use %s: %s", ca, nng_strerror(rv));
    } else if ((rv = nng_tls_config_cert_key_file(c, cert, NULL)) != 0) {
        vap_error(NULL, "LINK_TLS_CERT_FILE: cannot use %s (a PEM certificate and its "
                        "private key in one file): %s", cert, nng_strerror(rv));
    } else if ((rv = nng_tls_config_auth_mode(c, NNG_TLS_AUTH_MODE_REQUIRED)) == 0 &&
               mode == NNG_TLS_MODE_CLIENT) {
        rv = nng_tls_config_server_name(c, name);
    }
    if (rv != 0) {
        nng_tls_config_free(c);
        return rv;
    }
    *out = c;
    return 0;
}

static void tls_setup(void)
{
    const char *ca = vap_config_getenv("LINK_TLS_CA_FILE");
    const char *cert = vap_config_getenv("LINK_TLS_CERT_FILE");
    const char *name = vap_config_getenv("LINK_TLS_SERVER_NAME");
    if (!name)
        name = DEFAULT_SERVER_NAME;
    if (!ca || !cert) {
        vap_error(NULL, "a tls+tcp:// link needs %s set", !ca ? "LINK_TLS_CA_FILE"
                                                             : "LINK_TLS_CERT_FILE");
        T.error = NNG_EINVAL;
        return;
    }
    T.error = tls_config(NNG_TLS_MODE_CLIENT, ca, cert, name, &T.client);
    if (T.error == 0)
        T.error = tls_config(NNG_TLS_MODE_SERVER, ca, cert, name, &T.server);
    if (T.error == 0)
        vap_info(NULL, "internal links: mutual TLS ca=%s cert=%s server_name=%s", ca, cert, name);
}

static int is_tls(const char *url)
{
    return strncmp(url, TLS_SCHEME, strlen(TLS_SCHEME)) == 0;
}

/* 0 once both TLS configurations are made (the first call makes them), else the error. */
static int tls_ready(void)
{
    pthread_once(&T.once, tls_setup);
    return T.error;
}

int vap_link_dial(nng_socket sock, const char *url, int flags)
{
    nng_dialer d;
    int rv;
    if (!is_tls(url))
        return nng_dial(sock, url, NULL, flags);
    if ((rv = tls_ready()) != 0)
        return rv;
    if ((rv = nng_dialer_create(&d, sock, url)) != 0)
        return rv;
    if ((rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, T.client)) != 0 ||
        (rv = nng_dialer_start(d, flags)) != 0)
        nng_dialer_close(d);
    return rv;
}

int vap_link_listen(nng_socket sock, const char *url, nng_listener *out)
{
    nng_listener l;
    int rv;
    if (!is_tls(url))
        return nng_listen(sock, url, out, 0);
    if ((rv = tls_ready()) != 0)
        return rv;
    if ((rv = nng_listener_create(&l, sock, url)) != 0)
        return rv;
    if ((rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, T.server)) != 0 ||
        (rv = nng_listener_start(l, 0)) != 0) {
        nng_listener_close(l);
        return rv;
    }
    if (out)
        *out = l;
    return 0;
}

int vap_link_is_tcp(const char *url, size_t *scheme_len)
{
    size_t n = strncmp(url, "tcp://", 6) == 0 ? 6 : is_tls(url) ? strlen(TLS_SCHEME) : 0;
    if (scheme_len)
        *scheme_len = n;
    return n != 0;
}
