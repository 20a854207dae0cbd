/* The few Unicode facts the tokenizers need: UTF-8 decoding that never fails, and the
 * classes the pre-tokenizers' patterns use (\p{L}, \p{N}, \s). */
#ifndef ENG_UNICODE_H
#define ENG_UNICODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct eng_cp_range {
    uint32_t first, last;
} eng_cp_range;

extern const eng_cp_range eng_unicode_letters[];
extern const uint32_t eng_unicode_letters_count;
extern const eng_cp_range eng_unicode_numbers[];
extern const uint32_t eng_unicode_numbers_count;

/* The code point at s[0..n) and its length in bytes (1 to 4). A byte that does not start
 * a valid, complete sequence decodes as itself (a code point of no class) with length 1,
 * so every byte of the input belongs to exactly one code point. */
uint32_t eng_utf8_decode(const char *s, size_t n, size_t *len);

/* Length of the UTF-8 sequence its first byte announces (1 for a stray byte), at most n. */
size_t eng_utf8_len(const char *s, size_t n);

/* Appends the UTF-8 encoding of cp to out; returns its length (1 to 4). */
size_t eng_utf8_encode(uint32_t cp, char *out);

bool eng_is_letter(uint32_t cp);     /* general category L */
bool eng_is_number(uint32_t cp);     /* general category N */
bool eng_is_whitespace(uint32_t cp); /* the White_Space property */

#endif /* ENG_UNICODE_H */
