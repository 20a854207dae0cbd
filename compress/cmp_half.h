/* Half-precision conversions, bit-exact with ggml's (round to nearest even; NaN kept
 * as NaN; f32 → f16 overflow to ±inf). */
#ifndef CMP_HALF_H
#define CMP_HALF_H

#include <stdint.h>

/* IEEE 754 binary16 bits → f32. */
float cmp_f16_to_f32(uint16_t h);

/* f32 → IEEE 754 binary16 bits, rounding to nearest even. */
uint16_t cmp_f32_to_f16(float f);

/* bfloat16 bits → f32 (exact). */
float cmp_bf16_to_f32(uint16_t b);

/* f32 → bfloat16 bits, rounding to nearest even; NaN stays a quiet NaN. */
uint16_t cmp_f32_to_bf16(float f);

#endif /* CMP_HALF_H */
