/*
 * IP address parsing, prefix matching and throttling networks (see addr.h).
 */
#include "addr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

bool vap_ip_parse(const char *s, size_t len, struct vap_ip *ip)
{
    char buf[INET6_ADDRSTRLEN + 1];
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET, buf, ip->b) == 1) {
        ip->family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, buf, ip->b) == 1) {
        ip->family = AF_INET6;
        if (memcmp(ip->b, mapped, sizeof(mapped)) == 0) {
            memmove(ip->b, ip->b + 12, 4);
            ip->family = AF_INET;
        }
        return true;
    }
    return false;
}

bool vap_ip_in_prefix(const struct vap_ip *ip, const struct vap_ip *net, int bits)
{
    int full = bits / 8, rest = bits % 8;
    if (ip->family != net->family)
        return false;
    if (memcmp(ip->b, net->b, (size_t)full) != 0)
        return false;
    return rest == 0 || ((ip->b[full] ^ net->b[full]) & (0xff << (8 - rest))) == 0;
}

int vap_ip_network(const char *addr, char *out, size_t size)
{
    struct vap_ip ip;
    char text[INET6_ADDRSTRLEN];
    if (!vap_ip_parse(addr, strlen(addr), &ip)) {
        snprintf(out, size, "%s", addr);
        return VAP_EINVAL;
    }
    if (ip.family == AF_INET) {
        snprintf(out, size, "%u.%u.%u.0/24", ip.b[0], ip.b[1], ip.b[2]);
        return 0;
    }
    memset(ip.b + 8, 0, 8);
    if (!inet_ntop(AF_INET6, ip.b, text, sizeof(text)))
        return VAP_EINVAL;
    snprintf(out, size, "%s/64", text);
    return 0;
}
