/* libFuzzer target: encoding any bytes with GPT-2's tokenizer must succeed, stay within
 * its size bound, and decode back to the same bytes. */
#include "klc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static klc_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *dir = getenv("KLC_FUZZ_TOKENIZER");
    if (klc_tokenizer_load(dir ? dir : KLC_FUZZ_DATA "/gpt2", NULL, &tok) != KLC_OK) {
        fprintf(stderr, "fuzz_tokenizer_encode: %s\n", klc_last_error());
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int32_t *ids = malloc((size + 2) * sizeof *ids);
    char *back = malloc(size + 16);
    size_t n = 0, len = 0;
    uint32_t flags = size ? (data[0] & 3) : 0;
    if (klc_tokenizer_encode(tok, (const char *)data, size, flags, ids, size + 2, &n) != KLC_OK)
        abort();
    if (n > size + 2) abort();
    /* The end-of-text tokens decode to their text, so skip them for the round trip. */
    size_t first = (flags & KLC_TOKENIZE_EOT_BEFORE) ? 1 : 0;
    size_t count = n - first - ((flags & KLC_TOKENIZE_EOT_AFTER) ? 1 : 0);
    if (klc_tokenizer_decode(tok, ids + first, count, back, size + 16, &len) != KLC_OK) abort();
    if (len != size || (size && memcmp(back, data, size) != 0)) abort();
    free(ids);
    free(back);
    return 0;
}
