/*
 * test_netfilter.c: the SSRF address filter as a pure function. Every range
 * that a scrape or webhook URL must not reach is checked here, on socket
 * addresses built in memory: no packet is sent, so no test can reach an
 * address off this machine even when the filter is broken.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "unit.h"
#include "util/netfilter.h"

/* The rule for text address a under policy p ("" when allowed). */
static const char *rule_of(const char *a, enum net_policy p)
{
    static char rule[160];
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, a, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
    } else if (inet_pton(AF_INET6, a, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
    } else {
        fprintf(stderr, "bad test address %s\n", a);
        return "(bad test address)";
    }
    int denied = net_denied((struct sockaddr *)&ss, p, rule, sizeof rule);
    CHECK(denied == (rule[0] != '\0'));
    return rule;
}

static void denied(const char *a, const char *rule_part)
{
    const char *r = rule_of(a, NET_PUBLIC_ONLY);
    if (!*r)
        fprintf(stderr, "  %s should be refused\n", a);
    CHECK_HAS(r, rule_part);
}

static void allowed(const char *a)
{
    const char *r = rule_of(a, NET_PUBLIC_ONLY);
    if (*r)
        fprintf(stderr, "  %s should be allowed, got %s\n", a, r);
    CHECK(*r == '\0');
}

static void ipv4_ranges(void)
{
    denied("0.0.0.0", "this network");
    denied("0.255.1.2", "this network");
    denied("10.0.0.1", "private (10.0.0.0/8)");
    denied("10.255.255.255", "private");
    denied("100.64.0.1", "shared address space");
    denied("100.127.255.254", "shared address space");
    allowed("100.128.0.1");
    allowed("100.63.255.255");
    denied("127.0.0.1", "loopback");
    denied("127.1.2.3", "loopback");
    denied("169.254.169.254", "link-local");
    denied("172.16.0.1", "private (172.16.0.0/12)");
    denied("172.31.255.255", "private");
    allowed("172.32.0.1");
    allowed("172.15.255.255");
    denied("192.0.0.8", "IETF protocol assignments");
    denied("192.0.2.1", "documentation");
    denied("192.168.1.1", "private (192.168.0.0/16)");
    denied("198.18.0.1", "benchmarking");
    denied("198.19.255.255", "benchmarking");
    allowed("198.20.0.1");
    denied("198.51.100.7", "documentation");
    denied("203.0.113.9", "documentation");
    denied("224.0.0.1", "multicast");
    denied("239.255.255.250", "multicast");
    denied("240.0.0.1", "reserved");
    denied("255.255.255.255", "broadcast");
    allowed("8.8.8.8");
    allowed("1.1.1.1");
    allowed("93.184.216.34");
    allowed("192.0.1.255");
    allowed("11.0.0.1");
}

static void ipv6_ranges(void)
{
    denied("::", "unspecified");
    denied("::1", "loopback (::1)");
    denied("::7f00:1", "IPv4-compatible");
    denied("fc00::1", "unique local");
    denied("fd12:3456::1", "unique local");
    denied("fe80::1", "link-local");
    denied("febf::1", "link-local");
    denied("fec0::1", "site-local");
    denied("ff02::1", "multicast");
    denied("2001:db8::1", "documentation");
    denied("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo");
    denied("3fff::1", "documentation");
    denied("100::1", "discard-only");
    denied("64:ff9b:1::a00:1", "local-use NAT64");
    denied("1::1", "reserved");
    denied("4000::1", "reserved");
    allowed("2001:4860:4860::8888");
    allowed("2606:4700:4700::1111");
}

/* The IPv6 forms that lead to an IPv4 address are judged by that address. */
static void embedded_ipv4(void)
{
    denied("::ffff:127.0.0.1", "IPv4-mapped IPv6 of loopback");
    denied("::ffff:10.1.2.3", "IPv4-mapped IPv6 of private");
    denied("::ffff:169.254.169.254", "IPv4-mapped IPv6 of link-local");
    denied("::ffff:0:127.0.0.1", "IPv4-translated IPv6 of loopback");
    denied("64:ff9b::127.0.0.1", "NAT64 (64:ff9b::/96) of loopback");
    denied("64:ff9b::a9fe:a9fe", "NAT64 (64:ff9b::/96) of link-local");
    denied("64:ff9b::192.168.0.1", "NAT64 (64:ff9b::/96) of private");
    denied("2002:7f00:1::1", "6to4 (2002::/16) of loopback");
    denied("2002:0a00:0001::", "6to4 (2002::/16) of private");
    allowed("::ffff:8.8.8.8");
    allowed("64:ff9b::8.8.8.8");
    allowed("2002:0808:0808::1");
}

static void policies(void)
{
    /* The operator's switch allows everything... */
    CHECK_STR(rule_of("127.0.0.1", NET_ALLOW_PRIVATE), "");
    CHECK_STR(rule_of("169.254.169.254", NET_ALLOW_PRIVATE), "");
    CHECK_STR(rule_of("::1", NET_ALLOW_PRIVATE), "");
    /* ...and the test policy refuses only 127.0.0.1, in any spelling. */
    CHECK_HAS(rule_of("127.0.0.1", NET_DENY_127_0_0_1), "127.0.0.1/32");
    CHECK_HAS(rule_of("::ffff:127.0.0.1", NET_DENY_127_0_0_1), "127.0.0.1/32");
    CHECK_STR(rule_of("127.0.0.2", NET_DENY_127_0_0_1), "");
    CHECK_STR(rule_of("10.0.0.1", NET_DENY_127_0_0_1), "");
    /* A family that is not IP is refused under every policy. */
    struct sockaddr sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_family = AF_UNIX;
    char rule[64];
    CHECK(net_denied(&sa, NET_ALLOW_PRIVATE, rule, sizeof rule) == 1);
    CHECK(net_denied(&sa, NET_PUBLIC_ONLY, rule, sizeof rule) == 1);
}

static void text(void)
{
    struct sockaddr_in6 v6;
    memset(&v6, 0, sizeof v6);
    v6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &v6.sin6_addr);
    char out[64];
    net_addr_text((struct sockaddr *)&v6, out, sizeof out);
    CHECK_STR(out, "::ffff:127.0.0.1");
}

int main(void)
{
    ipv4_ranges();
    ipv6_ranges();
    embedded_ipv4();
    policies();
    text();
    UNIT_END("test_netfilter");
}
