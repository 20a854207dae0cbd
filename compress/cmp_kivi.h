/* The asymmetric low-bit groups of a KIVI KV cache (Liu et al., "KIVI: A Tuning-Free
 * Asymmetric 2bit Quantization for KV Cache", 2024): a group of n values shares an f16
 * scale d and an f16 minimum m, and each value is stored as an unsigned `bits`-bit
 * integer q with x ≈ q·d + m. Keys are grouped per channel along positions, values per
 * position along channels; that arrangement is the cache's business (backend/), the
 * arithmetic is here, matched by shaders/kv_kivi.comp and shaders/common/vkb_kv.glsl.
 *
 *   d = (max - min) / (2^bits - 1), both rounded to f16 (d in the low half of the
 *   scale word, m in the high half); q = clamp(floor((x - m) / d + 0.5), 0, 2^bits - 1)
 *   with the f16-rounded d and m (q = 0 when d is 0). Value i of a group sits at bits
 *   [i·bits, i·bits + bits) of its packed words, little-endian. */
#ifndef CMP_KIVI_H
#define CMP_KIVI_H

#include <stddef.h>
#include <stdint.h>

/* Quantizes x[0], x[stride], ... x[(n - 1)·stride] (n a multiple of 32 / bits) to bits
 * 2 or 4: the scale word and n·bits/32 packed words. */
void cmp_kivi_quantize(const float *x, size_t stride, uint32_t n, uint32_t bits,
                       uint32_t *scale_word, uint32_t *packed);

/* Value i of a group: q·d + m in f32. */
float cmp_kivi_value(uint32_t scale_word, const uint32_t *packed, uint32_t i, uint32_t bits);

#endif /* CMP_KIVI_H */
