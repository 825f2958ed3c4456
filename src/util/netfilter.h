/*
 * netfilter.h: which network addresses a request typed by a user may reach.
 *
 * Scrape jobs and webhooks send requests to URLs that users give. Without a
 * filter, such a URL can be turned against the machine itself (a loopback
 * admin port), its network (RFC 1918, a cloud metadata service on
 * 169.254.169.254) or special ranges (OWASP API Top 10 2023, API7 SSRF).
 * The outbound HTTP client asks this module about the address it is about
 * to connect to, after DNS, on every connection and redirect hop; a URL's
 * spelling (2130706433, 0x7f000001, 0177.0.0.1, [::ffff:127.0.0.1]) makes
 * no difference because only the resolved socket address is judged.
 *
 * It is a pure function of the address, so every range can be tested
 * without sending a packet anywhere (tests/unit/test_netfilter.c).
 */
#ifndef SF_NETFILTER_H
#define SF_NETFILTER_H

#include <stddef.h>
#include <sys/socket.h>

enum net_policy {
    NET_PUBLIC_ONLY,     /* the default: every non-global range is refused */
    NET_ALLOW_PRIVATE,   /* the operator's switch: everything is allowed */
    NET_DENY_127_0_0_1,  /* tests only: only 127.0.0.1/32 is refused, so a
                            first hop on 127.0.0.2 may redirect to 127.0.0.1 */
};

/*
 * 0 when policy allows sa. 1 when it refuses it, with the rule in rule, a
 * phrase such as "loopback (127.0.0.0/8)" or "IPv4-mapped IPv6 of private
 * (10.0.0.0/8)". Address families other than IPv4 and IPv6 are refused.
 */
int net_denied(const struct sockaddr *sa, enum net_policy policy, char *rule, size_t rulelen);

/* The address as text ("127.0.0.1", "::1"), for error messages. */
void net_addr_text(const struct sockaddr *sa, char *out, size_t outlen);

#endif
