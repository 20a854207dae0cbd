/* UTF-8 and character classes for the tokenizers. */
#include "eng_unicode.h"

/* The length a lead byte announces: 1 for ASCII and for bytes that cannot lead. */
static size_t declared_len(uint8_t b)
{
    return b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 1;
}

size_t eng_utf8_len(const char *s, size_t n)
{
    size_t len = declared_len((uint8_t)s[0]);
    return len < n ? len : n;
}

uint32_t eng_utf8_decode(const char *s, size_t n, size_t *len)
{
    const uint8_t *u = (const uint8_t *)s;
    size_t l = declared_len(u[0]);
    if (l > n)
        goto stray;
    static const uint8_t lead_bits[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    uint32_t cp = u[0] & lead_bits[l];
    for (size_t i = 1; i < l; i++) {
        if ((u[i] & 0xC0) != 0x80)
            goto stray;
        cp = cp << 6 | (u[i] & 0x3F);
    }
    if ((l > 1 && cp < min_cp[l]) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        goto stray;
    if (l == 1 && u[0] >= 0x80)
        goto stray;
    *len = l;
    return cp;
stray:
    *len = 1;
    return 0x110000u + u[0]; /* outside Unicode: belongs to no class */
}

size_t eng_utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static bool in_ranges(const eng_cp_range *r, uint32_t n, uint32_t cp)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (cp < r[mid].first)
            hi = mid;
        else if (cp > r[mid].last)
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

bool eng_is_letter(uint32_t cp)
{
    if (cp < 0x80)
        return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
    return in_ranges(eng_unicode_letters, eng_unicode_letters_count, cp);
}

bool eng_is_number(uint32_t cp)
{
    if (cp < 0x80)
        return cp >= '0' && cp <= '9';
    return in_ranges(eng_unicode_numbers, eng_unicode_numbers_count, cp);
}

bool eng_is_whitespace(uint32_t cp)
{
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000;
}
