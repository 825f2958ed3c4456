/*
 * netfilter.c: the address ranges a user-typed URL may not reach (see
 * netfilter.h for why).
 *
 * The lists follow the IANA special-purpose address registries (RFC 6890
 * and its updates): every IPv4 range that is not globally reachable, and for
 * IPv6 everything outside global unicast 2000::/3 plus the special blocks
 * inside it. The IPv6 forms that carry an IPv4 address (mapped ::ffff:0:0/96,
 * translated ::ffff:0:0:0/96, NAT64 64:ff9b::/96, 6to4 2002::/16) are judged
 * by the IPv4 address they lead to, so [::ffff:127.0.0.1] is loopback while
 * 64:ff9b::8.8.8.8 is as public as 8.8.8.8.
 */
#include "util/netfilter.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct v4_range {
    uint32_t net;
    int prefix;
    const char *rule;
};

/* Most specific first where ranges nest (broadcast inside 240/4). */
static const struct v4_range V4_DENIED[] = {
    {0x00000000u, 8, "this network (0.0.0.0/8)"},
    {0x0a000000u, 8, "private (10.0.0.0/8)"},
    {0x64400000u, 10, "shared address space (100.64.0.0/10)"},
    {0x7f000000u, 8, "loopback (127.0.0.0/8)"},
    {0xa9fe0000u, 16, "link-local (169.254.0.0/16)"},
    {0xac100000u, 12, "private (172.16.0.0/12)"},
    {0xc0000000u, 24, "IETF protocol assignments (192.0.0.0/24)"},
    {0xc0000200u, 24, "documentation (192.0.2.0/24)"},
    {0xc0586300u, 24, "6to4 relay anycast (192.88.99.0/24)"},
    {0xc0a80000u, 16, "private (192.168.0.0/16)"},
    {0xc6120000u, 15, "benchmarking (198.18.0.0/15)"},
    {0xc6336400u, 24, "documentation (198.51.100.0/24)"},
    {0xcb007100u, 24, "documentation (203.0.113.0/24)"},
    {0xe0000000u, 4, "multicast (224.0.0.0/4)"},
    {0xffffffffu, 32, "broadcast (255.255.255.255)"},
    {0xf0000000u, 4, "reserved (240.0.0.0/4)"},
};

static const char *v4_rule(uint32_t a)
{
    for (size_t i = 0; i < sizeof V4_DENIED / sizeof V4_DENIED[0]; i++) {
        uint32_t mask = V4_DENIED[i].prefix ? ~0u << (32 - V4_DENIED[i].prefix) : 0;
        if ((a & mask) == V4_DENIED[i].net)
            return V4_DENIED[i].rule;
    }
    return NULL;
}

struct v6_range {
    uint8_t net[16];
    int prefix;
    const char *rule;
};

static const struct v6_range V6_DENIED[] = {
    {{0}, 128, "unspecified (::)"},
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, "loopback (::1)"},
    {{0}, 96, "IPv4-compatible IPv6 (::/96, deprecated)"},
    {{0, 0x64, 0xff, 0x9b, 0, 1}, 48, "local-use NAT64 (64:ff9b:1::/48)"},
    {{0x01, 0}, 64, "discard-only (100::/64)"},
    {{0x20, 0x01, 0x0d, 0xb8}, 32, "documentation (2001:db8::/32)"},
    {{0x20, 0x01, 0x00, 0x00}, 23, "IETF protocol assignments (2001::/23, Teredo included)"},
    {{0x3f, 0xff}, 20, "documentation (3fff::/20)"},
    {{0xfc}, 7, "unique local (fc00::/7)"},
    {{0xfe, 0x80}, 10, "link-local (fe80::/10)"},
    {{0xfe, 0xc0}, 10, "site-local (fec0::/10, deprecated)"},
    {{0xff}, 8, "multicast (ff00::/8)"},
};

static int v6_in(const uint8_t *a, const uint8_t *net, int prefix)
{
    int full = prefix / 8, rest = prefix % 8;
    if (memcmp(a, net, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[full] & mask) == (net[full] & mask);
}

static uint32_t v4_at(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The IPv4 address an IPv6 address leads to, when it embeds one the
 * network acts on: 1 and *v4 set, with *form naming the embedding. */
static int v6_embedded_v4(const uint8_t *a, uint32_t *v4, const char **form)
{
    static const uint8_t MAPPED[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t TRANSLATED[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0};
    static const uint8_t NAT64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    if (memcmp(a, MAPPED, 12) == 0) {
        *form = "IPv4-mapped IPv6";
    } else if (memcmp(a, TRANSLATED, 12) == 0) {
        *form = "IPv4-translated IPv6";
    } else if (memcmp(a, NAT64, 12) == 0) {
        *form = "NAT64 (64:ff9b::/96)";
    } else if (a[0] == 0x20 && a[1] == 0x02) {
        *v4 = v4_at(a + 2);
        *form = "6to4 (2002::/16)";
        return 1;
    } else {
        return 0;
    }
    *v4 = v4_at(a + 12);
    return 1;
}

int net_denied(const struct sockaddr *sa, enum net_policy policy, char *rule, size_t rulelen)
{
    const char *r = NULL, *form = NULL;
    uint32_t v4 = 0;
    int is_v4 = 0;
    if (sa->sa_family == AF_INET) {
        v4 = ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr);
        is_v4 = 1;
    } else if (sa->sa_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
        if (v6_embedded_v4(a, &v4, &form)) {
            is_v4 = 1;
        } else if (policy == NET_PUBLIC_ONLY) {
            for (size_t i = 0; i < sizeof V6_DENIED / sizeof V6_DENIED[0] && !r; i++)
                if (v6_in(a, V6_DENIED[i].net, V6_DENIED[i].prefix))
                    r = V6_DENIED[i].rule;
            if (!r && (a[0] & 0xe0) != 0x20)
                r = "reserved (outside global unicast 2000::/3)";
        }
    } else {
        r = "not an IPv4 or IPv6 address";
    }
    if (is_v4) {
        if (policy == NET_PUBLIC_ONLY)
            r = v4_rule(v4);
        else if (policy == NET_DENY_127_0_0_1 && v4 == 0x7f000001u)
            r = "loopback (127.0.0.1/32, the test policy)";
    }
    if (!r || (policy == NET_ALLOW_PRIVATE && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6))) {
        if (rulelen)
            rule[0] = '\0';
        return 0;
    }
    if (form)
        snprintf(rule, rulelen, "%s of %s", form, r);
    else
        snprintf(rule, rulelen, "%s", r);
    return 1;
}

void net_addr_text(const struct sockaddr *sa, char *out, size_t outlen)
{
    const void *a = NULL;
    if (sa->sa_family == AF_INET)
        a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    else if (sa->sa_family == AF_INET6)
        a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    if (!a || !inet_ntop(sa->sa_family, a, out, (socklen_t)outlen))
        snprintf(out, outlen, "(address family %d)", (int)sa->sa_family);
}
