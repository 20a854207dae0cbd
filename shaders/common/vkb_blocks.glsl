// GGUF (ggml) block geometry: the byte layout of each block (compress/cmp_quant.h, name
// for name) and, for the one FORMAT_<TYPE> the including kernel defines, QK (values per
// block) and BLOCK_BYTES. Reads no memory, so a kernel may include it before declaring the
// `wq` words vkb_quant.glsl reads (matvec.comp sizes its shared staging area with it).
#ifndef VKB_BLOCKS_GLSL
#define VKB_BLOCKS_GLSL

// ---- block layouts (compress/cmp_quant.h) ------------------------------------------------

// cmp_block_q4_0 { f16 d; u8 qs[16]; }: x = (q - 8) * d, nibbles: x[j] low, x[j+16] high
const uint block_q4_0_size = 18u, block_q4_0_d = 0u, block_q4_0_qs = 2u;
// cmp_block_q4_1 { f16 d; f16 m; u8 qs[16]; }: x = q * d + m
const uint block_q4_1_size = 20u, block_q4_1_d = 0u, block_q4_1_m = 2u, block_q4_1_qs = 4u;
// cmp_block_q5_0 { f16 d; u8 qh[4]; u8 qs[16]; }: x = (q - 16) * d, bit j of qh for x[j]
const uint block_q5_0_size = 22u, block_q5_0_d = 0u, block_q5_0_qh = 2u, block_q5_0_qs = 6u;
// cmp_block_q5_1 { f16 d; f16 m; u8 qh[4]; u8 qs[16]; }: x = q * d + m
const uint block_q5_1_size = 24u, block_q5_1_d = 0u, block_q5_1_m = 2u, block_q5_1_qh = 4u,
           block_q5_1_qs = 8u;
// cmp_block_q8_0 { f16 d; i8 qs[32]; }: x = q * d
const uint block_q8_0_size = 34u, block_q8_0_d = 0u, block_q8_0_qs = 2u;
// cmp_block_iq4_nl { f16 d; u8 qs[16]; }: x = d * iq4nl_values[q]
const uint block_iq4_nl_size = 18u, block_iq4_nl_d = 0u, block_iq4_nl_qs = 2u;
// cmp_block_q4_k { f16 d; f16 dmin; u8 scales[12]; u8 qs[128]; }
const uint block_q4_k_size = 144u, block_q4_k_d = 0u, block_q4_k_dmin = 2u,
           block_q4_k_scales = 4u, block_q4_k_qs = 16u;
// cmp_block_q5_k { f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]; }
const uint block_q5_k_size = 176u, block_q5_k_d = 0u, block_q5_k_dmin = 2u,
           block_q5_k_scales = 4u, block_q5_k_qh = 16u, block_q5_k_qs = 48u;
// cmp_block_q6_k { u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d; }
const uint block_q6_k_size = 210u, block_q6_k_ql = 0u, block_q6_k_qh = 128u,
           block_q6_k_scales = 192u, block_q6_k_d = 208u;

const float iq4nl_values[16] = float[16](-127.0, -104.0, -83.0, -65.0, -49.0, -35.0, -22.0,
                                         -10.0, 1.0, 13.0, 25.0, 38.0, 53.0, 69.0, 89.0, 113.0);
#if defined(FORMAT_IQ4_NL)
// The same values as signed bytes, four to a word (value i in byte i % 4 of word i / 4).
// (Only where IQ4_NL is read: a constant more renumbers the other formats' SPIR-V, and
// lavapipe's LLVM may then contract their unmarked multiply-adds differently.)
const uvec4 IQ4NL_BYTES = uvec4(0xbfad9881u, 0xf6eaddcfu, 0x26190d01u, 0x71594535u);
#endif

#if defined(FORMAT_F32)
#define QK 8u
#define BLOCK_BYTES 32u
#elif defined(FORMAT_F16) || defined(FORMAT_BF16)
#define QK 8u
#define BLOCK_BYTES 16u
#elif defined(FORMAT_Q8_0)
#define QK 32u
#define BLOCK_BYTES block_q8_0_size
#elif defined(FORMAT_Q4_0) || defined(FORMAT_IQ4_NL)
#define QK 32u
#define BLOCK_BYTES block_q4_0_size
#elif defined(FORMAT_Q4_1)
#define QK 32u
#define BLOCK_BYTES block_q4_1_size
#elif defined(FORMAT_Q5_0)
#define QK 32u
#define BLOCK_BYTES block_q5_0_size
#elif defined(FORMAT_Q5_1)
#define QK 32u
#define BLOCK_BYTES block_q5_1_size
#elif defined(FORMAT_Q4_K)
#define QK 256u
#define BLOCK_BYTES block_q4_k_size
#elif defined(FORMAT_Q5_K)
#define QK 256u
#define BLOCK_BYTES block_q5_k_size
#elif defined(FORMAT_Q6_K)
#define QK 256u
#define BLOCK_BYTES block_q6_k_size
#endif

#endif
