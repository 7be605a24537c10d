/* UTF-8 validity and GPT-2's byte <-> character table. */
#ifndef KLC_TOKENIZER_BYTES_H
#define KLC_TOKENIZER_BYTES_H

#include <stddef.h>
#include <stdint.h>

/* The length (1..4) of the well-formed UTF-8 sequence (RFC 3629) at s[0..n), or 0. */
size_t klc_utf8_seq_len(const uint8_t *s, size_t n);
/* The length of the longest well-formed prefix of s[0..n). */
size_t klc_utf8_valid_prefix(const uint8_t *s, size_t n);
/* The length of the run of bytes at s that starts no well-formed sequence (at least 1
 * when s[0] starts none). */
size_t klc_utf8_invalid_run(const uint8_t *s, size_t n);

/* GPT-2 writes each byte as one character: printable Latin-1 bytes as themselves, the
 * 68 others (controls, space, DEL, the C1 range, NBSP, soft hyphen) as U+0100..U+0143 in
 * byte order, so that vocabulary files never contain white space or control characters. */
uint32_t klc_byte_to_char(uint8_t b);
/* The byte a character stands for, or -1 if it stands for none. */
int klc_char_to_byte(uint32_t cp);
/* The byte of GPT-2's byte token i (0..255): GPT-2 numbers the printable bytes first. */
uint8_t klc_gpt2_byte_order(int i);

/* Writes the characters of bytes[0..n) as UTF-8 to out (room for 2n bytes); returns the
 * length written. */
size_t klc_bytes_to_chars(const uint8_t *bytes, size_t n, char *out);
/* Reads characters s[0..n) back into bytes (room for n). Returns 0 and *out_len, or -1 if
 * s is not valid UTF-8 or holds a character that stands for no byte; *bad receives the
 * offending offset and *bad_cp the character (UINT32_MAX for invalid UTF-8). */
int klc_chars_to_bytes(const char *s, size_t n, uint8_t *out, size_t *out_len, size_t *bad,
                       uint32_t *bad_cp);

#endif
