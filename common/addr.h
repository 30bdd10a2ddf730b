/*
 * IP addresses as clients present them: parsing (an IPv4-mapped IPv6 address is the
 * IPv4 address it carries), prefix matching, and the network an address belongs to
 * for throttling (a /24 for IPv4, a /64 for IPv6: what one subscriber usually holds).
 * The gateway's trusted-proxy handling (http.c) and auth's throttles use these.
 */
#ifndef VAP_ADDR_H
#define VAP_ADDR_H

#include <stdbool.h>
#include <stddef.h>

struct vap_ip {
    int family; /* AF_INET or AF_INET6 */
    unsigned char b[16];
};

/* Parses s[0..len) (not NUL-terminated); false when it is not an address. */
bool vap_ip_parse(const char *s, size_t len, struct vap_ip *ip);

/* Whether ip lies in net/bits (false across families). */
bool vap_ip_in_prefix(const struct vap_ip *ip, const struct vap_ip *net, int bits);

/* Writes the network of addr ("203.0.113.0/24", "2001:db8:1:2::/64") to out; returns
 * 0, or VAP_EINVAL when addr is not an address (out is then addr itself). */
int vap_ip_network(const char *addr, char *out, size_t size);

#endif
