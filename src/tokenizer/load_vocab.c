/* vocab.json / encoder.json: a JSON object from token strings (in GPT-2's byte
 * characters) to ids 0..n-1. */
#include "tokenizer/tokenizer.h"

#include "tokenizer/bytes.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* A key as it appears in the file, for messages. */
static void quote_key(const char *key, char *out, size_t cap) {
    size_t n = strlen(key);
    snprintf(out, cap, "'%.*s%s'", n > 60 ? 60 : (int)n, key, n > 60 ? "..." : "");
}

int klc_tok_parse_vocab(const klc_alloc_ctx *ac, const char *buf, size_t len, const char *name,
                        klc_tokenizer **out) {
    *out = NULL;
    json_error_t jerr;
    /* Duplicate keys would silently drop a token; jansson rejects them with a position. */
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return klc_fail(KLC_ERR_FORMAT, "%s:%d:%d: %s", name, jerr.line, jerr.column, jerr.text);
    int st = KLC_OK;
    uint32_t *off = NULL, *start = NULL, *length = NULL;
    char *bytes = NULL, *sorted = NULL;
    size_t n = 0, total = 0;
    if (!json_is_object(root)) {
        st = klc_fail(KLC_ERR_FORMAT, "%s: expected a JSON object mapping tokens to ids", name);
        goto done;
    }
    n = json_object_size(root);
    if (n < 256 || n > (1u << 24)) {
        st = klc_fail(KLC_ERR_FORMAT, "%s: %zu tokens; a byte-level vocabulary has 256..%u", name,
                      n, 1u << 24);
        goto done;
    }
    /* Keys are at most as long in bytes as in characters. */
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) total += strlen(key);
    if (total > UINT32_MAX) {
        st = klc_fail(KLC_ERR_FORMAT, "%s: tokens too long", name);
        goto done;
    }
    start = klc_alloc(ac, n * sizeof(uint32_t));
    length = klc_alloc(ac, n * sizeof(uint32_t));
    off = klc_alloc(ac, (n + 1) * sizeof(uint32_t));
    bytes = klc_alloc(ac, total ? total : 1);
    sorted = klc_alloc(ac, total ? total : 1);
    if (!start || !length || !off || !bytes || !sorted) {
        st = KLC_ERR_OUT_OF_MEMORY;
        goto done;
    }
    for (size_t i = 0; i < n; i++) length[i] = UINT32_MAX;
    size_t used = 0;
    json_object_foreach(root, key, val) {
        char q[80];
        if (!json_is_integer(val)) {
            quote_key(key, q, sizeof q);
            st = klc_fail(KLC_ERR_FORMAT, "%s: token %s: the id is not an integer", name, q);
            goto done;
        }
        json_int_t id = json_integer_value(val);
        if (id < 0 || (size_t)id >= n) {
            quote_key(key, q, sizeof q);
            st = klc_fail(KLC_ERR_FORMAT,
                          "%s: token %s: id %lld is out of range (the file has %zu tokens, so "
                          "ids must be 0..%zu)",
                          name, q, (long long)id, n, n - 1);
            goto done;
        }
        if (length[id] != UINT32_MAX) {
            quote_key(key, q, sizeof q);
            st = klc_fail(KLC_ERR_FORMAT, "%s: token %s: id %lld is used twice", name, q,
                          (long long)id);
            goto done;
        }
        size_t kn = strlen(key), bn, bad;
        uint32_t cp;
        if (kn == 0) {
            st = klc_fail(KLC_ERR_FORMAT, "%s: token with id %lld is empty", name, (long long)id);
            goto done;
        }
        if (klc_chars_to_bytes(key, kn, (uint8_t *)bytes + used, &bn, &bad, &cp) != 0) {
            quote_key(key, q, sizeof q);
            st = klc_fail(KLC_ERR_FORMAT,
                          "%s: token %s: character U+%04X at byte %zu stands for no byte "
                          "(byte-level BPE spells tokens with 256 characters only)",
                          name, q, (unsigned)cp, bad);
            goto done;
        }
        start[id] = (uint32_t)used;
        length[id] = (uint32_t)bn;
        used += bn;
    }
    /* Every id was in range and none repeated among n entries, so each is present. */
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        off[i] = (uint32_t)o;
        memcpy(sorted + o, bytes + start[i], length[i]);
        o += length[i];
    }
    off[n] = (uint32_t)o;
    st = klc_tok_create(ac, (int32_t)n, off, sorted, out);
    if (st) klc_fail_context(st, "%s: ", name);
done:
    klc_free(ac, start, n * sizeof(uint32_t));
    klc_free(ac, length, n * sizeof(uint32_t));
    klc_free(ac, off, (n + 1) * sizeof(uint32_t));
    klc_free(ac, bytes, total ? total : 1);
    klc_free(ac, sorted, total ? total : 1);
    json_decref(root);
    return st;
}
