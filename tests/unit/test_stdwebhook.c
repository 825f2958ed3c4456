/*
 * test_stdwebhook.c: Standard Webhooks signing, secrets, ids and the retry
 * schedule (util/stdwebhook.c). The signatures were made by the reference
 * library (npm standardwebhooks 1.1.1, Webhook.sign), the first one being
 * the example of the specification, so our HMAC input and encoding are
 * checked against someone else's code.
 */
#include <stdlib.h>

#include "unit.h"
#include "util/stdwebhook.h"

static void test_signature_vectors(void)
{
    unsigned char key[STDWEBHOOK_KEY_MAX];
    char why[160], sig[STDWEBHOOK_SIG_LEN];
    /* The specification's example. */
    int n = stdwebhook_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", key, why, sizeof(why));
    CHECK(n == 24);
    const char *body = "{\"test\": 2432232314}";
    stdwebhook_sign(key, (size_t)n, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, strlen(body),
                    sig);
    CHECK_STR(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    /* A 32-byte key of 7s, an id of ours, a body like ours. */
    n = stdwebhook_key("whsec_BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=", key, why, sizeof(why));
    CHECK(n == 32);
    body = "{\"type\":\"run.completed\"}";
    stdwebhook_sign(key, (size_t)n, "msg_0123456789abcdef0123456789abcdef", 1700000000, body,
                    strlen(body), sig);
    CHECK_STR(sig, "v1,zUOGKmoXnO93zdm52LUmic41aM7tr6IvXXtoVVMDfnQ=");
    /* Any change of id, timestamp or body changes it. */
    stdwebhook_sign(key, (size_t)n, "msg_0123456789abcdef0123456789abcdef", 1700000001, body,
                    strlen(body), sig);
    CHECK(strcmp(sig, "v1,zUOGKmoXnO93zdm52LUmic41aM7tr6IvXXtoVVMDfnQ=") != 0);
}

static void test_secrets(void)
{
    char why[160] = "";
    CHECK(stdwebhook_check_secret("", why, sizeof(why)) == 0); /* off */
    CHECK(stdwebhook_check_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", why, sizeof(why)) == 0);
    static const char *const bad[] = {
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",         /* no prefix */
        "whsec_",                                   /* nothing after it */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa!w",   /* not base64 */
        "whsec_MfKQ9r8GKYqrTwjU PD8ILPZIo2LaLaSw",  /* a space */
        "whsec_MfKQ9r8GKYqrTwjU\nPD8ILPZIo2LaLaSw", /* a line break */
        "whsec_c2hvcnQ=",                           /* 5 bytes: too short */
        "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",   /* the prefix is lowercase */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        CHECK(stdwebhook_check_secret(bad[i], why, sizeof(why)) == -1);
        CHECK(why[0] != '\0');
        /* the reason never quotes the secret */
        CHECK(strlen(bad[i]) < 10 || !strstr(why, bad[i] + 6));
    }
    /* 65 bytes: too long */
    char longer[200] = "whsec_";
    for (int i = 0; i < 88; i++)
        strcat(longer, "A");
    CHECK(stdwebhook_check_secret(longer, why, sizeof(why)) == -1);
    CHECK_HAS(why, "66 bytes");
}

static void test_ids(void)
{
    char a[STDWEBHOOK_ID_LEN], b[STDWEBHOOK_ID_LEN];
    stdwebhook_new_id(a);
    stdwebhook_new_id(b);
    CHECK(strncmp(a, "msg_", 4) == 0);
    CHECK(strlen(a) == STDWEBHOOK_ID_LEN - 1);
    CHECK(strspn(a + 4, "0123456789abcdef") == 32);
    CHECK(strcmp(a, b) != 0);
}

static void test_backoff(void)
{
    /* The ceiling doubles per failed attempt: base, 2 base, 4 base, 8 base. */
    for (int failed = 1; failed <= 4; failed++) {
        int64_t ceiling = 5000LL << (failed - 1);
        CHECK(stdwebhook_backoff_ms(5000, 3600000, failed, 0.0) == 0);
        CHECK(stdwebhook_backoff_ms(5000, 3600000, failed, 0.5) == ceiling / 2);
        int64_t top = stdwebhook_backoff_ms(5000, 3600000, failed, 0.999999);
        CHECK(top < ceiling && top >= ceiling - 1);
    }
    /* Full jitter: r picks anywhere under the ceiling. */
    CHECK(stdwebhook_backoff_ms(1000, 3600000, 3, 0.25) == 1000);
    /* The cap holds, however many attempts. */
    CHECK(stdwebhook_backoff_ms(5000, 60000, 30, 0.5) == 30000);
    CHECK(stdwebhook_backoff_ms(3600000, 3600000, 100, 0.999999) < 3600000);
    /* Out-of-range inputs are clamped, not trusted. */
    CHECK(stdwebhook_backoff_ms(5000, 3600000, 0, 0.5) == 2500);
    CHECK(stdwebhook_backoff_ms(5000, 3600000, 1, -1) == 0);
    CHECK(stdwebhook_backoff_ms(5000, 3600000, 1, 7) < 5000);
}

int main(void)
{
    test_signature_vectors();
    test_secrets();
    test_ids();
    test_backoff();
    UNIT_END("test_stdwebhook");
}
