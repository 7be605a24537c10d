/* The klc program: subcommands over the library. */
#include <stdio.h>
#include <string.h>

#include "klc.h"
#include "cli/commands.h"

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("klc %s\n", klc_version_string());
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "tokenizer") == 0) return klc_cmd_tokenizer(argc - 1, argv + 1);
    fprintf(stderr, "usage: klc --version\n");
    return 2;
}
