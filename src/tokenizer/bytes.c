/* UTF-8 validity and GPT-2's byte <-> character table, computed rather than tabulated:
 * the table is three ranges of printable bytes and a counter over the rest. */
#include "tokenizer/bytes.h"

#include <string.h>

size_t klc_utf8_seq_len(const uint8_t *s, size_t n) {
    uint8_t c = s[0];
    if (c < 0x80) return 1;
    if (c < 0xc2) return 0; /* continuation byte or overlong 2-byte lead */
    if (c < 0xe0) return (n >= 2 && (s[1] & 0xc0) == 0x80) ? 2 : 0;
    if (c < 0xf0) {
        if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80) return 0;
        if (c == 0xe0 && s[1] < 0xa0) return 0;  /* overlong */
        if (c == 0xed && s[1] >= 0xa0) return 0; /* surrogates */
        return 3;
    }
    if (c < 0xf5) {
        if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        if (c == 0xf0 && s[1] < 0x90) return 0;  /* overlong */
        if (c == 0xf4 && s[1] >= 0x90) return 0; /* above U+10FFFF */
        return 4;
    }
    return 0;
}

size_t klc_utf8_valid_prefix(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        /* Most text is ASCII: skip it eight bytes at a time. */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= n) break;
        size_t k = klc_utf8_seq_len(s + i, n - i);
        if (k == 0) break;
        i += k;
    }
    return i;
}

size_t klc_utf8_invalid_run(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n && klc_utf8_seq_len(s + i, n - i) == 0) i++;
    return i;
}

uint32_t klc_byte_to_char(uint8_t b) {
    if (b <= 32) return 256u + b;               /* 33 bytes -> U+0100..U+0120 */
    if (b <= 126) return b;                     /* '!'..'~' */
    if (b <= 160) return 256u + 33 + (b - 127); /* 34 bytes -> U+0121..U+0142 */
    if (b == 173) return 256u + 67;             /* soft hyphen -> U+0143 */
    return b;                                   /* U+00A1..U+00AC, U+00AE..U+00FF */
}

int klc_char_to_byte(uint32_t cp) {
    if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255))
        return (int)cp;
    if (cp >= 256 && cp <= 288) return (int)(cp - 256);
    if (cp >= 289 && cp <= 322) return (int)(cp - 289 + 127);
    if (cp == 323) return 173;
    return -1;
}

uint8_t klc_gpt2_byte_order(int i) {
    if (i < 94) return (uint8_t)(33 + i);
    if (i < 106) return (uint8_t)(161 + (i - 94));
    if (i < 188) return (uint8_t)(174 + (i - 106));
    int k = i - 188;
    if (k <= 32) return (uint8_t)k;
    if (k <= 66) return (uint8_t)(127 + (k - 33));
    return 173;
}

size_t klc_bytes_to_chars(const uint8_t *bytes, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = klc_byte_to_char(bytes[i]);
        if (cp < 0x80) {
            out[o++] = (char)cp;
        } else {
            out[o++] = (char)(0xc0 | (cp >> 6));
            out[o++] = (char)(0x80 | (cp & 0x3f));
        }
    }
    return o;
}

int klc_chars_to_bytes(const char *s, size_t n, uint8_t *out, size_t *out_len, size_t *bad,
                       uint32_t *bad_cp) {
    const uint8_t *u = (const uint8_t *)s;
    size_t i = 0, o = 0;
    while (i < n) {
        size_t k = klc_utf8_seq_len(u + i, n - i);
        uint32_t cp;
        if (k == 0) {
            *bad = i;
            *bad_cp = UINT32_MAX;
            return -1;
        }
        if (k == 1)
            cp = u[i];
        else if (k == 2)
            cp = ((uint32_t)(u[i] & 0x1f) << 6) | (u[i + 1] & 0x3f);
        else if (k == 3)
            cp = ((uint32_t)(u[i] & 0x0f) << 12) | ((uint32_t)(u[i + 1] & 0x3f) << 6) |
                 (u[i + 2] & 0x3f);
        else
            cp = ((uint32_t)(u[i] & 0x07) << 18) | ((uint32_t)(u[i + 1] & 0x3f) << 12) |
                 ((uint32_t)(u[i + 2] & 0x3f) << 6) | (u[i + 3] & 0x3f);
        int b = klc_char_to_byte(cp);
        if (b < 0) {
            *bad = i;
            *bad_cp = cp;
            return -1;
        }
        out[o++] = (uint8_t)b;
        i += k;
    }
    *out_len = o;
    return 0;
}
