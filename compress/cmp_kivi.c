/* KIVI groups (see cmp_kivi.h). */
#include <math.h>

#include "cmp_half.h"
#include "cmp_kivi.h"

void cmp_kivi_quantize(const float *x, size_t stride, uint32_t n, uint32_t bits,
                       uint32_t *scale_word, uint32_t *packed)
{
    float mn = INFINITY, mx = -INFINITY;
    for (uint32_t i = 0; i < n; i++) {
        float v = x[i * stride];
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
    }
    uint32_t top = (1u << bits) - 1;
    uint16_t dh = cmp_f32_to_f16((mx - mn) / (float)top), mh = cmp_f32_to_f16(mn);
    float d = cmp_f16_to_f32(dh), m = cmp_f16_to_f32(mh);
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    *scale_word = (uint32_t)dh | (uint32_t)mh << 16;
    for (uint32_t w = 0; w < n * bits / 32; w++)
        packed[w] = 0;
    for (uint32_t i = 0; i < n; i++) {
        float f = floorf((x[i * stride] - m) * id + 0.5f);
        uint32_t q = f <= 0.0f ? 0 : f >= (float)top ? top : (uint32_t)f;
        packed[i * bits / 32] |= q << (i * bits % 32);
    }
}

float cmp_kivi_value(uint32_t scale_word, const uint32_t *packed, uint32_t i, uint32_t bits)
{
    uint32_t q = packed[i * bits / 32] >> (i * bits % 32) & ((1u << bits) - 1);
    return (float)q * cmp_f16_to_f32((uint16_t)scale_word) +
           cmp_f16_to_f32((uint16_t)(scale_word >> 16));
}
