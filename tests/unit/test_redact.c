/*
 * test_redact.c: public error texts lose URLs and absolute paths, keep the
 * rest of the sentence.
 */
#include <stdlib.h>

#include "unit.h"
#include "util/redact.h"

static void check_redacted(const char *in, const char *want)
{
    char *got = redact_internal(in);
    CHECK_STR(got, want);
    free(got);
}

static void urls_and_paths_go(void)
{
    check_redacted("a1111 gpu0: http://10.0.0.5:7860/sdapi/v1/txt2img: connection refused",
                   "a1111 gpu0: <url>: connection refused");
    check_redacted("cannot store the image: cannot create a temporary file in /srv/sf/data/images/ab: "
                   "No space left on device",
                   "cannot store the image: cannot create a temporary file in <path>: "
                   "No space left on device");
    check_redacted("command gen: exit 1: Traceback (\"/home/me/generate.py\", line 3)",
                   "command gen: exit 1: Traceback (\"<path>\", line 3)");
    check_redacted("fetch https://user:pw@x.example/a?b=c failed; see ~/logs/x.txt.",
                   "fetch <url> failed; see <path>.");
}

static void the_rest_stays(void)
{
    check_redacted("HTTP 400: invalid lora path: x", "HTTP 400: invalid lora path: x");
    check_redacted("3 of 4 items failed; last error: timeout after 30 s / retrying",
                   "3 of 4 items failed; last error: timeout after 30 s / retrying");
    check_redacted("a/b and 1/2", "a/b and 1/2");
    check_redacted("", "");
    CHECK(redact_internal(NULL) == NULL);
}

int main(void)
{
    urls_and_paths_go();
    the_rest_stays();
    UNIT_END("test_redact");
}
