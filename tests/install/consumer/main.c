/* A program outside the tree that uses the installed libwsfwd: header, library, link flags. */
#include <stdio.h>
#include <string.h>

#include <wsfwd.h>

int main(void)
{
    /* RFC 6455 section 1.3's example. */
    static const char key[] = "dGhlIHNhbXBsZSBub25jZQ==";
    static const char expected[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
    char accept[WSFWD_ACCEPT_LEN + 1];
    int failures = 0;

    const char *version = wsfwd_version();
    printf("wsfwd %s\n", version);
    if (version == NULL || strcmp(version, WSFWD_VERSION_STRING) != 0) {
        fprintf(stderr, "library version %s differs from header %s\n",
                version != NULL ? version : "(null)", WSFWD_VERSION_STRING);
        failures++;
    }

    const char *msg = wsfwd_strerror(WSFWD_ERR_NOMEM);
    if (msg == NULL || msg[0] == '\0') {
        fprintf(stderr, "wsfwd_strerror(WSFWD_ERR_NOMEM) is empty\n");
        failures++;
    } else {
        printf("WSFWD_ERR_NOMEM: %s\n", msg);
    }

    memset(accept, 0, sizeof accept);
    wsfwd_handshake_accept(key, strlen(key), accept);
    if (strcmp(accept, expected) != 0) {
        fprintf(stderr, "accept for %s is \"%s\", expected %s\n", key, accept, expected);
        failures++;
    } else {
        printf("accept: %s\n", accept);
    }

    return failures == 0 ? 0 : 1;
}
