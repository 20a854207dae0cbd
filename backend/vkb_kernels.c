/* The kernel table: every SPIR-V variant the backend dispatches and its contract
 * (bindings, push constants, specialization constants, what one workgroup covers). The
 * shaders themselves are in shaders/, their variants in shaders/shaders.cmake. */
#include <string.h>

#include "vkb_internal.h"

/* matmul.comp: ws[TK*TM] and xs[TK*TN] floats */
static uint64_t matmul_shared(const uint32_t *spec)
{
    return 4ull * spec[3] * (spec[1] + spec[2]);
}

/* matvec.comp red[] (ROWS x NCOLS sums, and with NORM NCOLS sums of squares, per
 * invocation) and with STAGED wq[] */
static uint64_t matvec_bytes(uint32_t wg, uint32_t rows, uint32_t ncols, bool norm, bool staged)
{
    uint64_t red = 4ull * wg * (rows + norm) * ncols;
    return staged ? red + (uint64_t)rows * (32ull * wg + 8) : red;
}

uint64_t vkb_matvec_shared_bytes(uint32_t wg, uint32_t rows, uint32_t ncols, bool staged)
{
    return matvec_bytes(wg, rows, ncols, true, staged);
}

/* top_logits.comp: hist[256] and scan[workgroup] and five counters, uints */
static uint64_t top_logits_shared(const uint32_t *spec)
{
    return 256 * 4 + (uint64_t)spec[0] * 4 + 5 * 4;
}

/* sample.comp: four arrays of VKB_SAMPLE_MAX words and a counter */
static uint64_t sample_shared(const uint32_t *spec)
{
    (void)spec;
    return 4ull * (4 * VKB_SAMPLE_MAX + 1);
}

/* matvec.comp: spec {workgroup, ROWS, NCOLS, ACC, OUTS, NORM, GLU, ROPE} */
static uint64_t matvec_shared(const uint32_t *spec)
{
    return matvec_bytes(spec[0], spec[1], spec[2], spec[5], false);
}

/* attention.comp: qs[R_MAX = 8][MAX_HEAD_DIM = 256] + ps[R_MAX][wg] + reduce_buf[wg] floats,
 * and vkb_q8.glsl's max and sum per invocation */
static uint64_t attention_shared(const uint32_t *spec)
{
    return 4ull * (8 * 256 + 11 * spec[0]);
}

/* Bindings: inputs first, outputs last. */
#define OUT2   .binding_count = 2, .writes = {false, true}
#define OUT3   .binding_count = 3, .writes = {false, false, true}
#define OUT4   .binding_count = 4, .writes = {false, false, false, true}
#define OUT4_2 .binding_count = 4, .writes = {false, false, true, true}
#define OUT4_3 .binding_count = 4, .writes = {false, false, true, false}
/* attention: q, the two caches, out, then the positions (read where pos0 is VKB_AT_POS) */
#define ATTENTION_IO .binding_count = 5, .writes = {false, false, false, true, false}
/* rope_store.comp: q (rotated in place), k, v, pos, freqs, then the two caches */
#define ROPE_STORE_IO .binding_count = 7, .writes = {true, false, false, false, false, true, true}
/* rope_store.comp NORM: the same, then the norms' weights of q and of k */
#define ROPE_STORE_NORM_IO                                                                         \
    .binding_count = 9, .writes = {true, false, false, false, false, true, true, false, false}
/* weight products: W, x, then up to three outputs (vkb_outputs.glsl); matvec then the
 * norm's weights (NORM; x again without), the positions, the rotation's frequencies and
 * the biases (ROPE; x again without) */
#define OUTS3 .binding_count = 5, .writes = {false, false, true, true, true}
#define MATVEC_IO                                                                                  \
    .binding_count = 9, .writes = {false, false, true, true, true, false, false, false, false},    \
    .push_size = 56, .spec_count = 8

#define SG_OPS (VKB_SUBGROUP_BASIC | VKB_SUBGROUP_ARITHMETIC)

/* 1-D elementwise kernels: one element per invocation, grid folded when long. */
#define ELTWISE(n, bindings, push)                                                                 \
    {                                                                                              \
        .name = n, bindings, .push_size = push, .spec_count = 1, .spec_defaults = {256},           \
        .elems_per_invocation = 1, .flatten_x = true                                               \
    }

/* sum_f32.comp: four elements per invocation, one partial sum per workgroup. */
#define SUM(n, sg)                                                                                 \
    {                                                                                              \
        .name = n, OUT2, .push_size = 4, .spec_count = 1, .spec_defaults = {256},                  \
        .elems_per_invocation = 4, .flatten_x = true, .needs_subgroup_ops = sg,                    \
        .shared_bytes_per_invocation = 4                                                           \
    }

/* Row kernels: one workgroup per row, reduced with vkb_reduce.glsl. */
#define ROWWISE(n, push, sg)                                                                       \
    {                                                                                              \
        .name = n, OUT3, .push_size = push, .spec_count = 1, .spec_defaults = {256},               \
        .group_per_elem = true, .flatten_x = true, .needs_subgroup_ops = sg,                       \
        .shared_bytes_per_invocation = 4                                                           \
    }

/* quantize_q8.comp: eight invocations per block of 32 values, a max and a sum each in
 * shared memory. */
#define QUANTIZE_Q8(n, bindings)                                                                   \
    {                                                                                              \
        .name = n, bindings, .push_size = 8, .spec_count = 1, .spec_defaults = {64},               \
        .elems_per_invocation = 1, .flatten_x = true, .shared_bytes_per_invocation = 8             \
    }

/* rms_norm.comp Q8: the row kernel with the 8-bit blocks (vkb_q8.glsl) as a 4th binding. */
#define ROWWISE_Q8(n, sg)                                                                          \
    {                                                                                              \
        .name = n, OUT4_2, .push_size = 12, .spec_count = 1, .spec_defaults = {256},               \
        .group_per_elem = true, .flatten_x = true, .needs_subgroup_ops = sg,                       \
        .shared_bytes_per_invocation = 12                                                          \
    }

/* rms_norm.comp ADD: the residual rows as a 4th binding, read. */
#define ROWWISE_ADD(n, sg)                                                                         \
    {                                                                                              \
        .name = n, OUT4_3, .push_size = 12, .spec_count = 1, .spec_defaults = {256},               \
        .group_per_elem = true, .flatten_x = true, .needs_subgroup_ops = sg,                       \
        .shared_bytes_per_invocation = 4                                                           \
    }

/* attention.comp: one workgroup per (up to 8 query rows sharing a KV head: heads of its
 * group, then tokens; split); x counts kv heads x chunks of their groups, y tiles of
 * tokens, z splits. Shared memory: the queries (MAX_HEAD_DIM floats each), the tile's
 * weights, the reduction and the 8-bit blocks' max and sum. Spec {workgroup, key cache
 * type, value cache type (vkb_kv_type, 0 = f16), OUT_Q8}. */
#define ATTENTION(n, sg)                                                                           \
    {                                                                                              \
        .name = n, ATTENTION_IO, .push_size = 60, .spec_count = 5,                                 \
        .spec_defaults = {64, 0, 0, 0, 0}, .group_per_elem = true, .needs_subgroup_ops = sg,       \
        .shared_bytes = attention_shared                                                           \
    }

/* attention_coopmat.comp: one workgroup (two subgroups) per head and 32 query tokens; x
 * counts heads, y tiles of tokens. Spec {workgroup, key cache type, value cache type}.
 * Shared memory fixed by the shader (head_dim ≤ 128). */
#define ATTENTION_COOPMAT(n, nv)                                                                   \
    {                                                                                              \
        .name = n, ATTENTION_IO, .push_size = 60, .spec_count = 3, .spec_defaults = {64, 0, 0},    \
        .group_per_elem = true, .needs_subgroup_ops = VKB_SUBGROUP_BASIC, .needs_float16 = true,   \
        .needs_coopmat_nv = nv, .shared_bytes = attention_coopmat_shared                           \
    }

static uint64_t attention_coopmat_shared(const uint32_t *spec)
{
    (void)spec;
    return 3 * 32 * 136 * 2 + 2 * 16 * 32 * 4 + 2 * 16 * 32 * 2 + 32 * 4;
}

/* matvec.comp: spec {workgroup, ROWS, NCOLS, ACC, OUTS, NORM, GLU, ROPE}; x counts rows
 * (with GLU twice the output rows: W's). */
#define MATVEC(n, sg)                                                                              \
    {                                                                                              \
        .name = n, MATVEC_IO, .spec_defaults = {64, 1, 1, 0, 1, 0, 0, 0}, .elems_spec = {1, 0},    \
        .flatten_x = true, .needs_subgroup_ops = sg, .shared_bytes = matvec_shared                 \
    }

/* matvec.comp LANE_ROWS: whole rows per invocation (up to VKB_LANE_ROWS), a workgroup of
 * one subgroup; no shared memory but IQ4_NL's table; 8-byte loads. */
#define MATVEC_LANES(n)                                                                            \
    {                                                                                              \
        .name = n, MATVEC_IO, .spec_defaults = {8, 8, 1, 0, 1, 0, 0, 0}, .elems_spec = {1, 0},     \
        .flatten_x = true, .needs_subgroup_ops = VKB_SUBGROUP_BASIC | VKB_SUBGROUP_BALLOT,         \
        .needs_int64 = true                                                                        \
    }

static uint64_t matvec_staged_shared(const uint32_t *spec)
{
    return matvec_bytes(spec[0], spec[1], spec[2], spec[5], true);
}

#define MATVEC_STAGED(n)                                                                           \
    {                                                                                              \
        .name = n, MATVEC_IO, .spec_defaults = {64, 1, 1, 0, 1, 0, 0, 0}, .elems_spec = {1, 0},    \
        .flatten_x = true, .needs_subgroup_ops = SG_OPS, .shared_bytes = matvec_staged_shared      \
    }

/* matvec.comp INT_DOT: x as quantize_q8.comp's blocks. */
#define MATVEC_INT_DOT(n)                                                                          \
    {                                                                                              \
        .name = n, MATVEC_IO, .spec_defaults = {64, 1, 1, 0, 1, 0, 0, 0}, .elems_spec = {1, 0},    \
        .flatten_x = true, .needs_subgroup_ops = SG_OPS, .needs_int_dot = true,                    \
        .shared_bytes = matvec_shared                                                              \
    }

/* matmul.comp: spec {workgroup, TM, TN, TK, OUTS, RM, RN}; x counts rows, y columns. */
#define MATMUL(n)                                                                                  \
    {                                                                                              \
        .name = n, OUTS3, .push_size = 36, .spec_count = 7,                                        \
        .spec_defaults = {64, 32, 32, 16, 1, 4, 4}, .elems_spec = {1, 2},                          \
        .shared_bytes = matmul_shared                                                              \
    }

/* matmul_int_dot.comp: spec {workgroup, TM, TN, TKB, OUTS}; shared: W's words and d, m,
 * X's words and d, s. */
static uint64_t matmul_int_dot_shared(const uint32_t *spec)
{
    return 4ull * spec[3] * (8 * (spec[1] + spec[2]) + 2 * spec[1] + 2 * spec[2]);
}

#define MATMUL_INT_DOT(n)                                                                          \
    {                                                                                              \
        .name = n, OUTS3, .push_size = 36, .spec_count = 7,                                        \
        .spec_defaults = {64, 32, 32, 2, 1, 4, 4}, .elems_spec = {1, 2}, .needs_int_dot = true,    \
        .shared_bytes = matmul_int_dot_shared                                                      \
    }

/* matmul_coopmat.comp: spec {workgroup (four subgroups), TM, TN, TK, OUTS, FM, FN} with
 * TM = 32 FM and TN = 32 FN; shared: W's and X's f16 rows of TK + 8, and a 16 x 16 float
 * scratch per subgroup. _emu: the same with the fragments in plain code. */
static uint64_t matmul_coopmat_shared(const uint32_t *spec)
{
    return 2ull * (spec[3] + 8) * (spec[1] + spec[2]) + 4 * 16 * 16 * 4;
}

#define MATMUL_COOPMAT(n, nv)                                                                      \
    {                                                                                              \
        .name = n, OUTS3, .push_size = 36, .spec_count = 7,                                        \
        .spec_defaults = {128, 64, 64, 32, 1, 2, 2}, .elems_spec = {1, 2},                         \
        .needs_subgroup_ops = VKB_SUBGROUP_BASIC, .needs_float16 = true, .needs_coopmat_nv = nv,   \
        .shared_bytes = matmul_coopmat_shared                                                      \
    }

/* get_rows.comp: x counts units of 8 values, y ids. */
#define GET_ROWS(n)                                                                                \
    {                                                                                              \
        .name = n, OUT3, .push_size = 20, .spec_count = 1, .spec_defaults = {64},                  \
        .elems_per_invocation = 1                                                                  \
    }

#define WEIGHT_KERNELS(fmt)                                                                        \
    MATVEC("matvec_" fmt "_subgroup", SG_OPS), MATVEC("matvec_" fmt "_shared", 0),                 \
        MATVEC_LANES("matvec_" fmt "_lanes"), MATMUL("matmul_" fmt),                               \
        MATMUL_COOPMAT("matmul_" fmt "_coopmat", true),                                            \
        MATMUL_COOPMAT("matmul_" fmt "_coopmat_emu", false), GET_ROWS("get_rows_" fmt)
#define QUANT_WEIGHT_KERNELS(fmt) WEIGHT_KERNELS(fmt), MATVEC_STAGED("matvec_" fmt "_staged")

static const struct vkb_kernel kernels[] = {
    ELTWISE("copy_vec4", OUT2, 4),
    ELTWISE("add_f32", OUT3, 8),
    SUM("sum_subgroup", SG_OPS),
    SUM("sum_shared", 0),
    {.name = "fma_peak",
     .binding_count = 1,
     .writes = {true},
     .push_size = 8,
     .spec_count = 2,
     .spec_defaults = {256, 256},
     .elems_per_invocation = 1,
     .flatten_x = true},
    ELTWISE("silu_mul_f32", OUT3, 12),
    ELTWISE("gelu_mul_f32", OUT3, 12),
    QUANTIZE_Q8("quantize_q8", OUT2),
    QUANTIZE_Q8("silu_mul_q8", OUT4_2), /* quantize_q8.comp SILU_MUL */
    QUANTIZE_Q8("gelu_mul_q8", OUT4_2), /* and GELU_MUL */
    ELTWISE("scale_f32", OUT2, 12),
    ELTWISE("softcap_f32", OUT2, 12),
    ELTWISE("convert_f32_f16", OUT2, 12),
    ELTWISE("convert_f16_f32", OUT2, 12),
    ELTWISE("rope_f32", OUT4, 20),
    ELTWISE("rope_store_f16", ROPE_STORE_IO, 28),
    /* a head's squares in shared memory */
    {.name = "rope_store_norm_f16",
     ROPE_STORE_NORM_IO,
     .push_size = 32,
     .spec_count = 1,
     .spec_defaults = {256},
     .elems_per_invocation = 1,
     .flatten_x = true,
     .shared_bytes_per_invocation = 4},
    ELTWISE("attention_scores", OUT3, 60),
    ELTWISE("attention_values", OUT3, 60),
    ELTWISE("attention_merge", OUT2, 12),
    /* attention_merge.comp Q8: four values per invocation, eight per block */
    {.name = "attention_merge_q8",
     OUT2,
     .push_size = 12,
     .spec_count = 1,
     .spec_defaults = {64},
     .elems_per_invocation = 4,
     .flatten_x = true,
     .shared_bytes_per_invocation = 8},
    ELTWISE("kv_store_q8_0", OUT3, 16),
    ELTWISE("kv_store_q4_0", OUT3, 16),
    ELTWISE("kv_store_f16", OUT3, 16),
    ELTWISE("kv_fold_keys", OUT2, 32),
    ELTWISE("kv_fold_values", OUT2, 32),
    ELTWISE("kv_window", OUT2, 32),
    ROWWISE("rms_norm_subgroup", 12, SG_OPS),
    ROWWISE("rms_norm_shared", 12, 0),
    ROWWISE_Q8("rms_norm_q8_subgroup", SG_OPS),
    ROWWISE_Q8("rms_norm_q8_shared", 0),
    ROWWISE_ADD("rms_norm_add_subgroup", SG_OPS),
    ROWWISE_ADD("rms_norm_add_shared", 0),
    ROWWISE("softmax_subgroup", 16, SG_OPS),
    /* argmax.comp: one workgroup; the logits, then the positions (read and advanced), the
     * ids, the picks' ring and the best logit; a value and an index per invocation in
     * shared memory */
    {.name = "argmax",
     .binding_count = 5,
     .writes = {false, true, true, true, true},
     .push_size = 12,
     .spec_count = 1,
     .spec_defaults = {256},
     .group_per_elem = true,
     .shared_bytes_per_invocation = 8},
    /* top_logits.comp: a workgroup per slice; the logits, the first pass's pairs, the
     * pairs written; 256 bins and a prefix sum's value per invocation in shared memory */
    {.name = "top_logits",
     .binding_count = 3,
     .writes = {false, false, true},
     .push_size = 16,
     .spec_count = 1,
     .spec_defaults = {256},
     .group_per_elem = true,
     .shared_bytes = top_logits_shared},
    /* sample.comp: one workgroup; the best logits, the draws, then the history ring
     * (read and advanced), the positions (read and advanced), the ids and the picks'
     * ring; the candidates and their order, VKB_SAMPLE_MAX each, in shared memory */
    {.name = "sample",
     .binding_count = 6,
     .writes = {false, false, true, true, true, true},
     .push_size = 32,
     .spec_count = 1,
     .spec_defaults = {256},
     .group_per_elem = true,
     .shared_bytes = sample_shared},
    ROWWISE("softmax_shared", 16, 0),
    ATTENTION("attention_subgroup", SG_OPS),
    ATTENTION("attention_shared", 0),
    ATTENTION_COOPMAT("attention_coopmat", true),
    ATTENTION_COOPMAT("attention_coopmat_emu", false),
    WEIGHT_KERNELS("f32"),
    WEIGHT_KERNELS("f16"),
    WEIGHT_KERNELS("bf16"),
    QUANT_WEIGHT_KERNELS("q4_0"),
    MATVEC_INT_DOT("matvec_q4_0_int_dot"),
    MATMUL_INT_DOT("matmul_q4_0_int_dot"),
    QUANT_WEIGHT_KERNELS("q4_1"),
    MATMUL_INT_DOT("matmul_q4_1_int_dot"),
    QUANT_WEIGHT_KERNELS("q5_0"),
    MATMUL_INT_DOT("matmul_q5_0_int_dot"),
    QUANT_WEIGHT_KERNELS("q5_1"),
    MATMUL_INT_DOT("matmul_q5_1_int_dot"),
    QUANT_WEIGHT_KERNELS("q8_0"),
    MATVEC_INT_DOT("matvec_q8_0_int_dot"),
    MATMUL_INT_DOT("matmul_q8_0_int_dot"),
    QUANT_WEIGHT_KERNELS("q4_k"),
    MATMUL_INT_DOT("matmul_q4_k_int_dot"),
    MATVEC_INT_DOT("matvec_q4_k_int_dot"),
    QUANT_WEIGHT_KERNELS("q5_k"),
    MATMUL_INT_DOT("matmul_q5_k_int_dot"),
    MATVEC_INT_DOT("matvec_q5_k_int_dot"),
    QUANT_WEIGHT_KERNELS("q6_k"),
    MATMUL_INT_DOT("matmul_q6_k_int_dot"),
    MATVEC_INT_DOT("matvec_q6_k_int_dot"),
    QUANT_WEIGHT_KERNELS("iq4_nl"),
    MATMUL_INT_DOT("matmul_iq4_nl_int_dot"),
};

const struct vkb_kernel *vkb_kernel_find(const char *name)
{
    for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++)
        if (strcmp(kernels[i].name, name) == 0)
            return &kernels[i];
    return NULL;
}
