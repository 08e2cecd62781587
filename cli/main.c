/*
 * wsfwd: the WebSocket fan-out server. A placeholder until the server issue lands: it prints
 * the version of the library it is linked with and says that the server does not run yet.
 */
#include <stdio.h>
#include <string.h>

#include "wsfwd.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: wsfwd [--version] [--help]\n"
                 "\n"
                 "  --version  print the version and exit\n"
                 "  --help     print this help and exit\n");
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            printf("wsfwd %s\n", wsfwd_version());
            return 0;
        }
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        fprintf(stderr, "wsfwd: %s '%s'\n",
                argv[i][0] == '-' ? "unknown option" : "unexpected argument", argv[i]);
        usage(stderr);
        return 2;
    }
    printf("wsfwd %s (libwsfwd %s)\n", WSFWD_VERSION_STRING, wsfwd_version());
    printf("The server is not implemented yet: this binary is a placeholder. libwsfwd, the\n"
           "protocol library, is what this release provides.\n");
    return 0;
}
