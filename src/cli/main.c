/* The klc program: subcommands over the library. */
#include <stdio.h>
#include <string.h>

#include "klc.h"

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("klc %s\n", klc_version_string());
        return 0;
    }
    fprintf(stderr, "usage: klc --version\n");
    return 2;
}
