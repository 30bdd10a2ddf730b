/*
 * Opening the internal nng links (RPC, events, heartbeats, the media link), with
 * mutual TLS when a URL says tls+tcp://.
 *
 * Every service dials and listens through these two calls, so switching the links to
 * TLS is configuration only: give the URLs the tls+tcp:// scheme and set
 *
 *   LINK_TLS_CA_FILE      PEM: the private CA that signs every service's certificate
 *   LINK_TLS_CERT_FILE    PEM: this process's certificate and its private key
 *   LINK_TLS_SERVER_NAME  the DNS name in the certificates' subjectAltName
 *                         (default vap-internal; dialers check it)
 *
 * Both sides present a certificate and check the other's against the CA: a process
 * without one signed by that CA can neither call a service nor listen in. The files
 * are read at the first tls+tcp:// URL; a missing or unreadable one fails that dial or
 * listen, naming the setting. tcp:// and ipc:// URLs work as before.
 */
#ifndef VAP_LINK_H
#define VAP_LINK_H

#include <nng/nng.h>

/* nng_dial (flags as nng_dial's: NNG_FLAG_NONBLOCK dials in the background). */
int vap_link_dial(nng_socket sock, const char *url, int flags);

/* nng_listen; *out (may be NULL) receives the listener, e.g. to read the bound port. */
int vap_link_listen(nng_socket sock, const char *url, nng_listener *out);

/* Whether url is a TCP URL (tcp:// or tls+tcp://); *scheme_len gets the scheme's length
 * including "://". For building an advertised URL with the port the kernel picked. */
int vap_link_is_tcp(const char *url, size_t *scheme_len);

#endif
