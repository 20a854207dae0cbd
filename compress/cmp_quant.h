/* GGUF (ggml) tensor formats: block layouts byte for byte as ggml stores them, and the
 * CPU reference quantize and dequantize of each. shaders/common/ mirrors these structs
 * name for name. Half-precision fields hold IEEE binary16 bits (cmp_half.h).
 *
 * Dequantization is the contract the GPU kernels must match bit for bit: each function
 * documents its arithmetic order, and the C is compiled without floating-point
 * contraction (ISO C mode), so the kernels reproduce it with `precise` arithmetic. */
#ifndef CMP_QUANT_H
#define CMP_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ggml_type values as stored in GGUF tensor tables. */
typedef enum cmp_type {
    CMP_TYPE_F32 = 0,
    CMP_TYPE_F16 = 1,
    CMP_TYPE_Q4_0 = 2,
    CMP_TYPE_Q4_1 = 3,
    CMP_TYPE_Q5_0 = 6,
    CMP_TYPE_Q5_1 = 7,
    CMP_TYPE_Q8_0 = 8,
    CMP_TYPE_Q4_K = 12,
    CMP_TYPE_Q5_K = 13,
    CMP_TYPE_Q6_K = 14,
    CMP_TYPE_IQ4_NL = 20,
    CMP_TYPE_BF16 = 30,
} cmp_type;

#define CMP_QK4_0        32
#define CMP_QK4_1        32
#define CMP_QK5_0        32
#define CMP_QK5_1        32
#define CMP_QK8_0        32
#define CMP_QK4_NL       32
#define CMP_QK_K         256
#define CMP_K_SCALE_SIZE 12

typedef struct cmp_block_q4_0 {
    uint16_t d;                /* scale */
    uint8_t qs[CMP_QK4_0 / 2]; /* x[j] in the low nibble of qs[j], x[j+16] in the high */
} cmp_block_q4_0;

typedef struct cmp_block_q4_1 {
    uint16_t d; /* scale */
    uint16_t m; /* minimum */
    uint8_t qs[CMP_QK4_1 / 2];
} cmp_block_q4_1;

typedef struct cmp_block_q5_0 {
    uint16_t d;
    uint8_t qh[4];             /* fifth bits: bit j of the u32 for x[j] */
    uint8_t qs[CMP_QK5_0 / 2]; /* low four bits, as in q4_0 */
} cmp_block_q5_0;

typedef struct cmp_block_q5_1 {
    uint16_t d;
    uint16_t m;
    uint8_t qh[4];
    uint8_t qs[CMP_QK5_1 / 2];
} cmp_block_q5_1;

typedef struct cmp_block_q8_0 {
    uint16_t d;
    int8_t qs[CMP_QK8_0];
} cmp_block_q8_0;

typedef struct cmp_block_iq4_nl {
    uint16_t d;
    uint8_t qs[CMP_QK4_NL / 2]; /* indices into cmp_iq4nl_values, nibbles as in q4_0 */
} cmp_block_iq4_nl;

/* 256 values in 8 sub-blocks of 32, each with a 6-bit scale and a 6-bit minimum. */
typedef struct cmp_block_q4_k {
    uint16_t d;                       /* scale of the sub-block scales */
    uint16_t dmin;                    /* scale of the sub-block minimums */
    uint8_t scales[CMP_K_SCALE_SIZE]; /* 8 scales and 8 minimums, 6 bits each */
    uint8_t qs[CMP_QK_K / 2];         /* 4-bit values, 64 per 32 bytes */
} cmp_block_q4_k;

typedef struct cmp_block_q5_k {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[CMP_K_SCALE_SIZE];
    uint8_t qh[CMP_QK_K / 8]; /* fifth bits */
    uint8_t qs[CMP_QK_K / 2]; /* low four bits */
} cmp_block_q5_k;

/* 256 values in 16 sub-blocks of 16, each with an 8-bit signed scale. */
typedef struct cmp_block_q6_k {
    uint8_t ql[CMP_QK_K / 2]; /* low four bits */
    uint8_t qh[CMP_QK_K / 4]; /* high two bits */
    int8_t scales[CMP_QK_K / 16];
    uint16_t d;
} cmp_block_q6_k;

_Static_assert(sizeof(cmp_block_q4_0) == 18, "q4_0 block is 18 bytes in ggml");
_Static_assert(sizeof(cmp_block_q4_1) == 20, "q4_1 block is 20 bytes in ggml");
_Static_assert(sizeof(cmp_block_q5_0) == 22, "q5_0 block is 22 bytes in ggml");
_Static_assert(sizeof(cmp_block_q5_1) == 24, "q5_1 block is 24 bytes in ggml");
_Static_assert(sizeof(cmp_block_q8_0) == 34, "q8_0 block is 34 bytes in ggml");
_Static_assert(sizeof(cmp_block_iq4_nl) == 18, "iq4_nl block is 18 bytes in ggml");
_Static_assert(sizeof(cmp_block_q4_k) == 144, "q4_K block is 144 bytes in ggml");
_Static_assert(sizeof(cmp_block_q5_k) == 176, "q5_K block is 176 bytes in ggml");
_Static_assert(sizeof(cmp_block_q6_k) == 210, "q6_K block is 210 bytes in ggml");

/* The IQ4_NL code book (non-linear 4-bit levels). */
extern const int8_t cmp_iq4nl_values[16];

typedef struct cmp_type_info {
    cmp_type type;
    const char *name;     /* as llama.cpp prints it: "q4_0", "q4_K", "iq4_nl", ... */
    uint32_t block_size;  /* values per block */
    uint32_t block_bytes; /* bytes per block */
} cmp_type_info;

/* Facts about a type; NULL for a type this project does not support. */
const cmp_type_info *cmp_type_get(cmp_type type);

/* Looks a type up by name, ignoring case ("Q4_K" and "q4_k" both work). */
const cmp_type_info *cmp_type_find(const char *name);

/* Every supported type, in cmp_type order; *count receives their number. */
const cmp_type_info *cmp_type_list(size_t *count);

/* Bytes for `n` values of `type`, or 0 when n is not a multiple of the block size or the
 * type is unsupported. */
size_t cmp_row_bytes(cmp_type type, uint64_t n);

/* Dequantizes `n` values (a multiple of the block size) from `src` into `dst`.
 * Returns false for an unsupported type or a bad count, writing nothing. */
bool cmp_dequantize(cmp_type type, const void *src, float *dst, uint64_t n);

/* Quantizes `n` values with the reference quantizer of `type` (round-to-nearest with the
 * scale choices of ggml's reference quantizers; K-quants and IQ4_NL search their scales).
 * Returns false for an unsupported type or a bad count. Deterministic; thread-safe. */
bool cmp_quantize(cmp_type type, const float *src, void *dst, uint64_t n);

/* Importance-aware quantization: as cmp_quantize, but each block's scale minimizes the
 * error weighted by `weights` (n values, one per value quantized; e.g. the mean square of
 * the activations each weight column meets, times how large the value is), searched over
 * 19 candidate scales with least-squares refinement (Q4_0, Q5_0, IQ4_NL), or each
 * sub-block's scale and minimum fitted by weighted least squares (Q4_K, Q5_K; Q6_K's
 * scales). Those types use the weights (cmp_type_uses_weights); other types quantize as
 * cmp_quantize. weights NULL is cmp_quantize. */
bool cmp_quantize_weighted(cmp_type type, const float *src, void *dst, uint64_t n,
                           const float *weights);
bool cmp_type_uses_weights(cmp_type type);

#endif /* CMP_QUANT_H */
