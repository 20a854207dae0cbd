/* Private to compress/: the K-quant codecs (cmp_quant_k.c) behind cmp_quantize and
 * cmp_dequantize. nb counts blocks of CMP_QK_K values. */
#ifndef CMP_QUANT_INTERNAL_H
#define CMP_QUANT_INTERNAL_H

#include "cmp_quant.h"

void cmp_dequantize_q4_k(const cmp_block_q4_k *b, float *y, uint64_t nb);
void cmp_dequantize_q5_k(const cmp_block_q5_k *b, float *y, uint64_t nb);
void cmp_dequantize_q6_k(const cmp_block_q6_k *b, float *y, uint64_t nb);
/* w: per-value importance (NULL: unweighted) */
void cmp_quantize_q4_k(const float *x, cmp_block_q4_k *b, uint64_t nb, const float *w);
void cmp_quantize_q5_k(const float *x, cmp_block_q5_k *b, uint64_t nb, const float *w);
void cmp_quantize_q6_k(const float *x, cmp_block_q6_k *b, uint64_t nb, const float *w);

/* Index of the IQ4_NL level nearest to v. */
int cmp_iq4nl_nearest(float v);

#endif /* CMP_QUANT_INTERNAL_H */
