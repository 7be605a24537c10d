/* libFuzzer target: the vocabulary and merges parsers on hostile contents. The input is
 * the vocabulary file, a line "@@", then the merges file. A parse either fails with a
 * message or gives a tokenizer that round-trips text. */
#include "tokenizer/tokenizer.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *s = (const char *)data;
    const char *sep = memmem(s, size, "\n@@\n", 4);
    size_t vlen = sep ? (size_t)(sep - s) : size;
    const char *m = sep ? sep + 4 : "";
    size_t mlen = sep ? size - vlen - 4 : 0;
    klc_clear_error();
    klc_alloc_ctx ac;
    klc_alloc_ctx_init(&ac, NULL);
    klc_tokenizer *t;
    int st = klc_tok_parse_vocab(&ac, s, vlen, "vocab.json", &t);
    if (st == KLC_OK) {
        st = klc_tok_parse_merges(t, m, mlen, "merges.txt");
        if (st == KLC_OK) {
            static const char text[] = "Hello, world! It's 2024 \xff\xfe caf\xc3\xa9.";
            int32_t ids[64];
            char back[64];
            size_t n, len;
            if (klc_tokenizer_encode(t, text, sizeof text - 1, 0, ids, 64, &n) != KLC_OK ||
                klc_tokenizer_decode(t, ids, n, back, sizeof back, &len) != KLC_OK ||
                len != sizeof text - 1 || memcmp(back, text, len) != 0)
                abort();
        }
        klc_tokenizer_destroy(t);
    }
    if (st != KLC_OK && klc_last_error()[0] == '\0') abort(); /* every failure says why */
    return 0;
}
