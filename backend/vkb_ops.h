/* vkb ops: kernels named after the math they do, recorded into a stream.
 *
 * Each op checks its arguments, picks the kernel variant the device (under its profile)
 * supports best, and records one or more dispatches. Buffers hold f32 values unless
 * said otherwise; element counts are in values, not bytes. Activation buffers must each
 * be a single part (see vkb_buffer_part_count); weight matrices may span many parts and
 * the ops dispatch once per part. Every op has a plain-C reference in vkb_ref.h with the
 * same arguments.
 */
#ifndef VKB_OPS_H
#define VKB_OPS_H

#include "cmp_quant.h"
#include "vkb.h"

#ifdef __cplusplus
extern "C" {
#endif

/* dst = src, `bytes` a multiple of 16: a streaming 16-byte-per-load copy, the kernel
 * `vkllm devices --bandwidth` times. */
vkb_status vkb_op_copy(vkb_stream *s, const vkb_buffer *dst, const vkb_buffer *src, uint64_t bytes);

/* out[i] = a[i] + b[i] for i < n. out may be a (in place). */
vkb_status vkb_op_add(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *a,
                      const vkb_buffer *b, uint64_t n);

/* out[r][i] = x[r][i] + bias[i] for rows of n values (qwen2's QKV biases). */
vkb_status vkb_op_add_bias(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *x,
                           const vkb_buffer *bias, uint32_t n, uint32_t rows);

/* out[0] = sum of x[0..n), reduced in passes of one partial sum per workgroup.
 * `tmp` must hold vkb_op_sum_tmp_bytes(dev, n) bytes. */
vkb_status vkb_op_sum(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *x, uint64_t n,
                      const vkb_buffer *tmp);
uint64_t vkb_op_sum_tmp_bytes(const vkb_device *dev, uint64_t n);

/* The kernel variant vkb_op_sum uses on this device: "sum_subgroup" where compute
 * shaders have subgroup arithmetic, "sum_shared" (shared-memory tree) otherwise. */
const char *vkb_op_sum_variant(const vkb_device *dev);

/* A benchmark yardstick: n invocations of a kernel doing only f32 FMAs (eight independent
 * vec4 chains each), one float written per invocation to out. Returns in *flops the
 * floating-point operations recorded (2 per FMA). */
vkb_status vkb_op_fma_peak(vkb_stream *s, const vkb_buffer *out, uint32_t n, double *flops);

/* ---- weights ------------------------------------------------------------------------- */

/* A weight matrix as GGUF stores it: `rows` rows of `k` values of `type`, row after row,
 * the blocks' bytes unchanged, from the start of `buffer`. k must be a multiple of the
 * type's block size and of 8. Allocate the buffer with vkb_matrix_bytes() bytes and
 * granule vkb_matrix_granule(), so no row straddles two parts and every part is whole
 * 32-bit words. */
typedef struct vkb_matrix {
    const vkb_buffer *buffer;
    cmp_type type;
    uint32_t rows;
    uint32_t k;
} vkb_matrix;

/* Bytes of rows x k values of `type`, rounded up to 4; 0 for an unknown type. */
uint64_t vkb_matrix_bytes(cmp_type type, uint32_t k, uint32_t rows);
/* The smallest whole number of rows that is a multiple of 4 bytes. */
uint64_t vkb_matrix_granule(cmp_type type, uint32_t k);

/* True when the weight kernels read `type`. */
bool vkb_op_type_supported(cmp_type type);

/* y[c][r] = sum_k W[r][k] · x[c][k] for c < ncols (1 to 8): decode. x holds ncols columns
 * of w->k floats, y ncols columns of w->rows floats, each column after the previous. */
vkb_status vkb_op_matvec(vkb_stream *s, const vkb_matrix *w, const vkb_buffer *x,
                         const vkb_buffer *y, uint32_t ncols);
/* y[c][r] += sum_k W[r][k] · x[c][k]: a residual add fused into the product (the sum is
 * rounded once, as vkb_op_add of the product would round it). */
vkb_status vkb_op_matvec_add(vkb_stream *s, const vkb_matrix *w, const vkb_buffer *x,
                             const vkb_buffer *y, uint32_t ncols);

/* out[c][r] = sum_k W[r][k] · x[c][k] for c < n: prefill; same layouts as matvec. */
vkb_status vkb_op_matmul(vkb_stream *s, const vkb_matrix *w, const vkb_buffer *x,
                         const vkb_buffer *out, uint32_t n);

/* Several products of one input as one: W holds their rows one after the other (q, k and
 * v; gate and up), output i takes the next rows[i] of them as columns of rows[i] floats in
 * its own buffer y[i]. One dispatch where there were several, each output's bits those of
 * its own product. */
#define VKB_MAX_OUTPUTS 3
typedef struct vkb_outputs {
    uint32_t count; /* 1 to VKB_MAX_OUTPUTS */
    const vkb_buffer *y[VKB_MAX_OUTPUTS];
    uint32_t rows[VKB_MAX_OUTPUTS]; /* summing to the matrix's rows */
} vkb_outputs;

vkb_status vkb_op_matvec_split(vkb_stream *s, const vkb_matrix *w, const vkb_buffer *x,
                               const vkb_outputs *out, uint32_t ncols);
vkb_status vkb_op_matmul_split(vkb_stream *s, const vkb_matrix *w, const vkb_buffer *x,
                               const vkb_outputs *out, uint32_t n);

/* out = W·(rms_norm(x) · g) for 1 to 8 columns: the norm that feeds the products fused into
 * them, one dispatch where there were two. x holds the columns of the residual stream (w->k
 * floats each), g the norm's w->k weights; every workgroup sums the squares of x as it
 * reads it and scales its sums by 1 / sqrt(mean(x²) + eps) at the end. Equal to
 * vkb_op_rms_norm then vkb_op_matvec_split within f32 rounding (not bit for bit: the scale
 * is applied to the sums, not to each value). Not for 8-bit blocks: there rms_norm_q8
 * writes them. */
vkb_status vkb_op_matvec_norm_split(vkb_stream *s, const vkb_matrix *w, const vkb_buffer *x,
                                    const vkb_buffer *g, float eps, const vkb_outputs *out,
                                    uint32_t ncols);

/* The gated FFN's activation: h = act(gate) · up with act silu (llama, qwen, mistral) or
 * GELU in its tanh approximation, as ggml computes it (gemma):
 *   silu(g) = g / (1 + exp(-g)),
 *   gelu(g) = 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g³))) = g / (1 + exp(-2 sqrt(2/pi)
 *             (g + 0.044715 g³))), the second form computed (no overflow to NaN). */
typedef enum vkb_act { VKB_ACT_SILU = 0, VKB_ACT_GELU } vkb_act;

/* h = act(gate·x) · (up·x) for 1 to 8 columns: the gated FFN's two products and act·mul
 * in one dispatch. W holds gate's rows then up's (2·ff rows, one part of its buffer: else
 * VKB_ERR_UNSUPPORTED), h ncols columns of ff floats. Each workgroup takes matching rows of
 * both. With g (not NULL) x is the residual stream and the products read rms_norm(x)·g as
 * in vkb_op_matvec_norm_split; vkb_op_matvec_q8_glu reads x as 8-bit blocks. Each product
 * the same bits as the split product's, then act·mul as vkb_op_glu_mul computes it
 * (within f32 rounding with the norm, as there). */
vkb_status vkb_op_matvec_glu(vkb_stream *s, vkb_act act, const vkb_matrix *w, const vkb_buffer *x,
                             const vkb_buffer *g, float eps, const vkb_buffer *h, uint32_t ncols);
vkb_status vkb_op_matvec_q8_glu(vkb_stream *s, vkb_act act, const vkb_matrix *w,
                                const vkb_buffer *xq, const vkb_buffer *h, uint32_t ncols);

/* out[i][k] = W[ids[i]][k] dequantized (bit-exact with cmp_dequantize), i < n_ids:
 * embedding lookup. ids are uint32 in a buffer; an id ≥ w->rows leaves its row unwritten. */
vkb_status vkb_op_get_rows(vkb_stream *s, const vkb_matrix *w, const vkb_buffer *ids,
                           uint32_t n_ids, const vkb_buffer *out);

/* How matvec runs on a device: workgroup size, rows per workgroup, and whether quantized
 * rows are staged through shared memory (coalesced wide loads, then decoded there; needs
 * subgroup arithmetic and a workgroup size that is a multiple of 16). The built-in choice
 * depends on the device type; VKLLM_MATVEC=WGxROWS[s|l][i|f] in the environment,
 * read when the device opens, or vkb_op_matvec_tune replaces it (tests, tuning sweeps). */
typedef struct vkb_matvec_tuning {
    uint32_t wg, rows;
    bool staged;
    int int_dot; /* 1: x as 8-bit blocks, dotted in integers (matvec: q4_0, q8_0, q4_K, q5_K, q6_K;
                  * matmul: every quantized format); -1: never; 0: where the device accelerates
                  * 4x8-bit dot products */
    bool lanes;  /* each invocation owns whole rows (rows: a multiple of wg, at most
                  * VKB_LANE_ROWS per invocation) and x is broadcast across the subgroup;
                  * CPU drivers with subgroups of 8 or more only */
} vkb_matvec_tuning;

/* matvec.comp LANE_RPI: rows per invocation of the lanes matvec, at most */
#define VKB_LANE_ROWS 4u

/* Integer-dot-product matvec (decode): activations quantized to blocks of 32 signed bytes
 * with a scale (and the scaled sum of the bytes), weight integers dotted with them four at
 * a time. On GPUs that accelerate it (NVIDIA, AMD, Intel) it needs a seventh of the
 * instructions per weight of decoding to floats, which on an H100 is what limits a 4-bit
 * matvec; the price is x's 8-bit rounding (vkb_ref_quantize_q8 is the CPU twin).
 *
 * vkb_op_matvec_int_dot: whether matvec of `type` should take this path on this device.
 * vkb_q8_bytes: bytes of ncols columns of k values so quantized.
 * vkb_op_quantize_q8: xq = x quantized, ncols columns of k (a multiple of 32) values.
 * vkb_op_glu_mul_q8: out = act(gate) · up as vkb_op_glu_mul, and xq = out quantized.
 * vkb_op_rms_norm_q8: out as vkb_op_rms_norm (the same bits), and xq = out quantized
 * (n a multiple of 32).
 * vkb_op_matvec_q8: y = W·x from xq, for the types vkb_op_matvec_int_dot accepts when
 * forced (q4_0, q8_0, q4_K, q5_K, q6_K) and 1 to 8 columns; vkb_op_matvec_q8_add: y += W·x;
 * vkb_op_matvec_q8_split: several outputs (vkb_outputs).
 *
 * The prefill product has the same path (matmul_int_dot.comp): vkb_op_matmul_int_dot says
 * whether the device should take it for `type` (where it accelerates the dots, and on CPU
 * drivers; the same tuning switch as matvec's); vkb_op_matmul_q8_split: out = W·x from
 * xq, any number of columns. */
bool vkb_op_matvec_int_dot(const vkb_device *dev, cmp_type type);
uint64_t vkb_q8_bytes(uint32_t k, uint32_t ncols);
vkb_status vkb_op_quantize_q8(vkb_stream *s, const vkb_buffer *xq, const vkb_buffer *x, uint32_t k,
                              uint32_t ncols);
vkb_status vkb_op_glu_mul_q8(vkb_stream *s, vkb_act act, const vkb_buffer *out,
                             const vkb_buffer *xq, const vkb_buffer *gate, const vkb_buffer *up,
                             uint32_t k, uint32_t ncols);
vkb_status vkb_op_rms_norm_q8(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *xq,
                              const vkb_buffer *x, const vkb_buffer *w, uint32_t n, uint32_t rows,
                              float eps);
vkb_status vkb_op_matvec_q8(vkb_stream *s, const vkb_matrix *w, const vkb_buffer *xq,
                            const vkb_buffer *y, uint32_t ncols);
vkb_status vkb_op_matvec_q8_add(vkb_stream *s, const vkb_matrix *w, const vkb_buffer *xq,
                                const vkb_buffer *y, uint32_t ncols);
vkb_status vkb_op_matvec_q8_split(vkb_stream *s, const vkb_matrix *w, const vkb_buffer *xq,
                                  const vkb_outputs *out, uint32_t ncols);
bool vkb_op_matmul_int_dot(const vkb_device *dev, cmp_type type);
vkb_status vkb_op_matmul_q8_split(vkb_stream *s, const vkb_matrix *w, const vkb_buffer *xq,
                                  const vkb_outputs *out, uint32_t n);

/* How the f32 matmul (matmul.comp) tiles: TM x TN outputs per workgroup, K by TK values
 * a step, RM x RN outputs per invocation (a workgroup of (TM/RM)·(TN/RN)). The built-in
 * choice depends on the device type (vkb_ops_matrix.c); VKLLM_MATMUL=TMxTNxTK/RMxRN
 * (e.g. 128x64x16/8x8), read when the device opens, or vkb_op_matmul_tune replaces it
 * (NULL: back to the built-in one); it sets the integer-dot matmul's tiles too, K by
 * TK / 32 blocks (at least one), and the cooperative-matrix one's where TM and TN are
 * multiples of 32 up to 128 and TK of 16 up to 64 (RM, RN unused there). Parse: false
 * unless TM and TN are multiples of RM and RN, TK of 8, and RM·RN at most 256. */
typedef struct vkb_matmul_tuning {
    uint32_t tm, tn, tk, rm, rn;
} vkb_matmul_tuning;
bool vkb_matmul_tuning_parse(const char *text, vkb_matmul_tuning *t);
uint32_t vkb_matmul_tuning_wg(const vkb_matmul_tuning *t);
void vkb_op_matmul_tune(vkb_device *dev, const vkb_matmul_tuning *t);
/* The f32 matmul's tiles in force on the device. */
vkb_matmul_tuning vkb_op_matmul_plan(const vkb_device *dev);

/* The fewest columns (tokens) a product should take the matmul for; fewer go through
 * matvec, 8 columns a pass. The shared-memory matmul computes whole tiles of TN columns
 * whatever n is, and a pass over a tile costs several matvec passes: on lavapipe (2-core
 * VM, TN 64, Q4_0) prompts of 9, 16, 32 and 47 tokens ran 4.3x, 2.5x, 1.8x and 1.2x faster
 * as matvec passes (smollm-135m; llama-1b: 3.0x at 16, 1.7x at 32), even near 56, and
 * slower at 64. So 7/8 of the matmul's TN (56 on CPU drivers and discrete GPUs, 28
 * elsewhere), at least 9; 9 where prefill takes the cooperative matrices (a tile pass
 * there costs about one read of W). VKLLM_MATMUL_MIN=N, read when the device opens,
 * replaces the choice. */
uint32_t vkb_op_matmul_min_columns(const vkb_device *dev);

/* The prefill product on matrix units (matmul_coopmat.comp): W dequantized and x converted
 * to f16 in shared memory, multiplied by 16 x 16 x 16 cooperative-matrix fragments
 * (VK_NV_cooperative_matrix) with f32 sums; the rounding of W and x to f16 is its price.
 * VKB_COOPMAT_EMULATED runs the same kernel with the fragment operations written out in
 * plain code (any device with f16 arithmetic and subgroups of 8 or more): the test of everything
 * around them on devices without matrix units, never fast.
 *
 * The mode starts from VKLLM_COOPMAT (0 off, 1 on, emu emulated) when the device opens.
 * VKB_COOPMAT_AUTO, the default, is off: the kernel has not yet been run on a device
 * with matrix units, so nothing takes it unasked. vkb_op_matmul_coopmat says whether
 * vkb_op_matmul and vkb_op_matmul_split take it on this device now (the mode, and the
 * device's support for it); where they do, vkb_op_matmul_int_dot is false, and attention
 * of more than one query (head_dim a multiple of 16, at most 128, not split; any cache
 * type) takes attention_coopmat.comp: q, the cache's values and the softmax weights in
 * f16, f32 sums. */
typedef enum vkb_coopmat_mode {
    VKB_COOPMAT_AUTO,
    VKB_COOPMAT_OFF,
    VKB_COOPMAT_ON,
    VKB_COOPMAT_EMULATED,
} vkb_coopmat_mode;
/* Sets the mode; returns the one it replaces. */
vkb_coopmat_mode vkb_op_coopmat_mode(vkb_device *dev, vkb_coopmat_mode mode);
bool vkb_coopmat_mode_parse(const char *text, vkb_coopmat_mode *mode);
bool vkb_op_matmul_coopmat(const vkb_device *dev);

/* t NULL or t->wg 0: back to the built-in choice. Checked when matvec runs. */
void vkb_op_matvec_tune(vkb_device *dev, const vkb_matvec_tuning *t);
/* Parses "WGxROWS" with optional letters after it: s staged, i integer dot products on,
 * f off (floats); false if it is not that. */
bool vkb_matvec_tuning_parse(const char *text, vkb_matvec_tuning *t);
/* The choice matvec makes for `type` and `ncols` columns: VKLLM_MATVEC or
 * vkb_op_matvec_tune where set, else the device's stored choice for the type, else the
 * built-in one by device type. */
vkb_matvec_tuning vkb_op_matvec_plan(const vkb_device *dev, cmp_type type, uint32_t ncols);
/* "WGxROWS" and its letters, as vkb_matvec_tuning_parse reads them. */
void vkb_matvec_tuning_format(const vkb_matvec_tuning *t, char *out, size_t size);

/* Stored tuning: a device's measured best matvec choice per weight type (vkllm bench
 * kernels --tune makes it), in a text file of lines "q4_0 128x2i" beside the pipeline
 * cache, one file per device and driver version, read when the device opens.
 * vkb_op_matvec_tune_format sets (t NULL: clears) the choice for one type;
 * vkb_tuning_path: the device's file (NULL without a cache folder); vkb_tuning_save
 * writes the device's choices there (or to `path`); vkb_tuning_status: one line saying
 * where the choices come from (built in, stored, overridden, or a file ignored and why). */
void vkb_op_matvec_tune_format(vkb_device *dev, cmp_type type, const vkb_matvec_tuning *t);
const char *vkb_tuning_path(const vkb_device *dev);
vkb_status vkb_tuning_save(vkb_device *dev, const char *path);
const char *vkb_tuning_status(const vkb_device *dev);

/* Kernel names the engine's products take on this device: "matvec_q4_k_subgroup",
 * "matvec_q4_0_int_dot", "matmul_q8_0", "matmul_q4_0_int_dot" ... */
const char *vkb_op_matvec_variant(const vkb_device *dev, cmp_type type);
const char *vkb_op_matmul_variant(const vkb_device *dev, cmp_type type);

/* ---- the small ops of a transformer -------------------------------------------------- */

/* out[r][i] = x[r][i] / sqrt(mean(x[r]²) + eps) · w[i], rows of n values. */
vkb_status vkb_op_rms_norm(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *x,
                           const vkb_buffer *w, uint32_t n, uint32_t rows, float eps);
/* out = res + rms_norm(x) · w, the norm's bits as vkb_op_rms_norm's, then one correctly
 * rounded sum: a norm after a block fed to the residual stream (gemma 2 and 3 normalize
 * the attention's and the FFN's outputs so). out may be res. */
vkb_status vkb_op_rms_norm_add(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *res,
                               const vkb_buffer *x, const vkb_buffer *w, uint32_t n, uint32_t rows,
                               float eps);

/* Greedy decoding's pick on the GPU, fed to the next step: t = the index of the largest
 * of x[0..n) (ties to the lowest index; NaN and -inf never chosen: eng_sampler's greedy
 * choice, vkb_ref_argmax), then with p = pos[0] (int32): ids[0] = t, pos[0] = p + 1 and
 * picked[(p + 1) % picked_len] = t (int32). Where every value is NaN or -inf the pick is
 * -1 and ids[0] gets 0. A decode step ending with it, submitted again, runs at the next
 * position on the token it picked without the host; the host reads the picks. best (may
 * be NULL) receives {t, x[t]} as one vkb_top_logit, or {-1, NaN}: vkb_op_top_logits' output
 * for m = 1. */
vkb_status vkb_op_argmax_feed(vkb_stream *s, const vkb_buffer *x, uint32_t n, const vkb_buffer *pos,
                              const vkb_buffer *ids, const vkb_buffer *picked, uint32_t picked_len,
                              const vkb_buffer *best);

/* One of the best logits (vkb_op_top_logits' output): id -1 and a NaN logit pad. */
typedef struct vkb_top_logit {
    int32_t id;
    float logit;
} vkb_top_logit;

/* The best m of x[0..n) by (value descending, index ascending), the order eng_sampler
 * ranks logits in (NaN and -inf never; -0 equals +0), into out[m] as (index, value) in
 * ascending index order, padded with {-1, NaN} where fewer than m are valid
 * (vkb_ref_top_logits). A sampler that needs no other logits reads m pairs instead of n
 * floats. Over `groups` workgroups, each selecting from a slice, and a second dispatch
 * over their picks in scratch (vkb_top_logits_scratch_bytes); groups 0 = as suits n and
 * m (vkb_top_logits_groups), 1 = one dispatch, no scratch (may be NULL). */
vkb_status vkb_op_top_logits(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *scratch,
                             const vkb_buffer *x, uint32_t n, uint32_t m, uint32_t groups);
uint32_t vkb_top_logits_groups(uint32_t n, uint32_t m, uint32_t groups);
uint64_t vkb_top_logits_scratch_bytes(uint32_t n, uint32_t m, uint32_t groups);

/* The most best logits vkb_op_sample_feed samples from. */
#define VKB_SAMPLE_MAX 512

/* A sampler's settings, as eng_sampler_params means them. */
typedef struct vkb_sample_params {
    float temperature; /* 0 = greedy (after the penalty) */
    uint32_t top_k;    /* 0 = off */
    float top_p;       /* 1 = off */
    float min_p;       /* 0 = off */
    float penalty;     /* for the tokens in the history; 1 = off */
    uint32_t history;  /* the history ring's size: the penalty's window (0: none) */
} vkb_sample_params;

/* Sampling's pick on the GPU, fed to the next step as vkb_op_argmax_feed's is: from
 * best[0..m) (vkb_op_top_logits' output; m at most VKB_SAMPLE_MAX, distinct ids), the
 * host sampler's chain (penalty over the history, top-k, top-p, min-p, temperature) and
 * the draw u = draws[(p + 1) % picked_len] (float in [0, 1)); then with p = pos[0]:
 * ids[0] = the pick (0 where there is none), pos[0] = p + 1, picked[(p + 1) % picked_len]
 * = the pick or -1, and the pick joins the history: int32 {len, at, tokens[history]}, a
 * ring as eng_sampler keeps it. The host's pick except where the draw or a cut falls
 * within float rounding of a boundary (vkb_ref_sample). */
vkb_status vkb_op_sample_feed(vkb_stream *s, const vkb_buffer *best, uint32_t m,
                              const vkb_buffer *draws, const vkb_buffer *hist,
                              const vkb_buffer *pos, const vkb_buffer *ids,
                              const vkb_buffer *picked, uint32_t picked_len,
                              const vkb_sample_params *p);

/* out[r] = softmax(x[r] · scale + mask[r % mask_rows]) over rows of n values; mask NULL
 * (mask_rows ignored) for none. -inf masks; a row of only -inf comes out as zeros. */
vkb_status vkb_op_softmax(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *x,
                          const vkb_buffer *mask, uint32_t mask_rows, uint32_t n, uint32_t rows,
                          float scale);

/* Rotary position embedding. x and out are [tokens][heads][head_dim]; pos holds one int32
 * position per token; freqs holds rot_dims/2 floats from vkb_rope_freqs. neox selects the
 * pair order (i, i + rot_dims/2) of GPT-NeoX-style models (qwen2 and others); otherwise
 * (2i, 2i+1) as in llama. Dimensions from rot_dims on are copied. */
typedef struct vkb_rope_shape {
    uint32_t head_dim;
    uint32_t rot_dims; /* even, ≤ head_dim; usually head_dim */
    uint32_t heads;
    uint32_t tokens;
    bool neox;
} vkb_rope_shape;
vkb_status vkb_op_rope(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *x,
                       const vkb_buffer *pos, const vkb_buffer *freqs, const vkb_rope_shape *shape);

/* Positions read on the GPU: where an op's first position or cache row is given as
 * VKB_AT_POS, it is read from the op's positions buffer (int32, one per token) when the
 * stream runs, so one recording serves every position: a decode step recorded once is
 * submitted again after new positions are written (eng_session's reused decode steps).
 * Token t is then at pos[t] (attention: queries at pos[0] + t). The ops bind the caches
 * whole; that the positions lie inside them is the caller's to ensure. */
#define VKB_AT_POS UINT32_MAX

/* The attention block's prologue over f16 caches in one dispatch: q = rope(q) in place,
 * and for t < shape->tokens k_cache[row0 + t] = f16(rope(k[t])) and v_cache[row0 + t] =
 * f16(v[t]), positions of kv_heads x head_dim values: the bits of vkb_op_rope of q and of
 * k and vkb_op_store_f16 of k and v, in one dispatch instead of four. shape: q's heads.
 * row0 VKB_AT_POS: token t's rows are pos[t]. */
vkb_status vkb_op_rope_store_f16(vkb_stream *s, const vkb_buffer *q, const vkb_buffer *k,
                                 const vkb_buffer *v, const vkb_buffer *pos,
                                 const vkb_buffer *freqs, const vkb_rope_shape *shape,
                                 uint32_t kv_heads, const vkb_buffer *k_cache,
                                 const vkb_buffer *v_cache, uint32_t row0);

/* Per-head RMS norms (qwen3's q_norm and k_norm): each head of head_dim values x becomes
 * x / sqrt(mean(x²) + eps) · w, with q's weights for q's heads and k's for k's (head_dim
 * f32 values each). */
typedef struct vkb_head_norms {
    const vkb_buffer *q, *k;
    float eps;
} vkb_head_norms;

/* vkb_op_rope_store_f16 with each head of q and k through its norm first: vkb_op_rms_norm
 * of q and of k (rows of head_dim) then vkb_op_rope_store_f16, within f32 rounding (the
 * squares are added in another order), in one dispatch instead of three. */
vkb_status vkb_op_norm_rope_store_f16(vkb_stream *s, const vkb_buffer *q, const vkb_buffer *k,
                                      const vkb_buffer *v, const vkb_head_norms *norms,
                                      const vkb_buffer *pos, const vkb_buffer *freqs,
                                      const vkb_rope_shape *shape, uint32_t kv_heads,
                                      const vkb_buffer *k_cache, const vkb_buffer *v_cache,
                                      uint32_t row0);

/* The attention block's prologue fused into the q, k, v product (matvec sizes, 1 to 8
 * tokens): W holds q's, k's and v's rows stacked (shape.heads and kv_heads heads of
 * head_dim rows, one part of its buffer: else VKB_ERR_UNSUPPORTED), q gets q rotated
 * (ncols columns of heads x head_dim floats), k_cache and v_cache rows row0 .. row0 +
 * ncols get k rotated and v as f16: the bits of vkb_op_matvec_split (or _norm_split, _q8_split),
 * vkb_op_add_bias where there are biases, then vkb_op_rope_store_f16, in one dispatch. shape.tokens
 * is ncols; head_dim a multiple of 4, and rot_dims too in neox order (each workgroup takes quads of
 * rows holding two rotated pairs). With g (not NULL) x is the residual stream and the product reads
 * rms_norm(x)·g as in vkb_op_matvec_norm_split; vkb_op_matvec_q8_rope reads x as 8-bit
 * blocks. */
typedef struct vkb_kv_write {
    const vkb_buffer *pos, *freqs; /* as vkb_op_rope's */
    const vkb_buffer *bias;        /* NULL, or W's rows' biases (q's, k's, v's), added first */
    vkb_rope_shape shape;          /* q's heads */
    uint32_t kv_heads;
    const vkb_buffer *k_cache, *v_cache; /* f16 rows of kv_heads x head_dim values */
    uint32_t row0;                       /* or VKB_AT_POS: column c's rows are pos[c] */
} vkb_kv_write;
vkb_status vkb_op_matvec_rope(vkb_stream *s, const vkb_matrix *w, const vkb_buffer *x,
                              const vkb_buffer *g, float eps, const vkb_buffer *q,
                              const vkb_kv_write *kv, uint32_t ncols);
vkb_status vkb_op_matvec_q8_rope(vkb_stream *s, const vkb_matrix *w, const vkb_buffer *xq,
                                 const vkb_buffer *q, const vkb_kv_write *kv, uint32_t ncols);

/* freqs[i] = freq_scale · base^(-2i / rot_dims) for i < rot_dims/2, computed in double:
 * frequency base and linear scaling (freq_scale = 1 / scaling factor). */
void vkb_rope_freqs(float *freqs, uint32_t rot_dims, float base, float freq_scale);

/* out[i] = act(gate[i]) · up[i] (vkb_act). */
vkb_status vkb_op_glu_mul(vkb_stream *s, vkb_act act, const vkb_buffer *out, const vkb_buffer *gate,
                          const vkb_buffer *up, uint64_t n);

/* out[i] = x[i] · scale. */
vkb_status vkb_op_scale(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *x, uint64_t n,
                        float scale);
/* out[i] = cap · tanh(x[i] / cap), cap > 0: logit soft-capping (gemma 2's final logits). */
vkb_status vkb_op_softcap(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *x, uint64_t n,
                          float cap);

/* f32 → f16 (IEEE binary16 bits, two per 32-bit word; the driver rounds to nearest even
 * or toward zero, as Vulkan allows) and f16 → f32 (exact). */
vkb_status vkb_op_convert_f32_f16(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *x,
                                  uint64_t n);
vkb_status vkb_op_convert_f16_f32(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *x,
                                  uint64_t n);

/* The f32 → f16 conversion writing from value `out_offset` (even) of out: how the KV cache
 * is written at a position. */
vkb_status vkb_op_store_f16(vkb_stream *s, const vkb_buffer *out, uint64_t out_offset,
                            const vkb_buffer *x, uint64_t n);

/* Causal attention of `tokens` queries at positions pos0, pos0+1, ... over an f16 KV
 * cache: out[t][h] = sum_j softmax_j(scale · q[t][h]·k[j][g]) · v[j][g] for the keys
 * j ≤ pos0 + t (and within the window where there is one), where g = h / (heads / kv_heads)
 * (grouped-query attention). q and out are f32 [tokens][heads][head_dim]; k_cache and v_cache hold
 * n_kv positions of [kv_heads][head_dim] f16 values (vkb_op_store_f16). One pass with an online
 * softmax, f32 arithmetic; head_dim even and at most 256. (Prefill on cooperative matrices where
 * vkb_op_matmul_coopmat says so: two passes, f16 factors; vkb_op_attention_kv likewise.) */
typedef struct vkb_attention_shape {
    uint32_t head_dim;
    uint32_t heads, kv_heads;
    uint32_t tokens;
    uint32_t pos0;         /* position of the first query, or VKB_AT_POS: pos[0] */
    uint32_t n_kv;         /* positions in the cache the queries may see (≥ pos0 + tokens); with
                            * VKB_AT_POS a bound (the caches' rows): keys j < min(n_kv, pos[0] +
                            * tokens) are read, and split-K cuts those (not f16 and quantized
                            * caches; not KIVI, not the unfused path) */
    float scale;           /* usually 1 / sqrt(head_dim) */
    const vkb_buffer *pos; /* with pos0 VKB_AT_POS: the positions; else unused */
    /* sliding-window attention (gemma's local layers): 0 none; else the query at position
     * p sees the keys j with p - j < window, the newest `window` of them (the ones before
     * are masked, and the kernels skip what no query of a tile sees) */
    uint32_t window;
    /* logit soft-capping (gemma 2): 0 none; else each score s = scale · q·k becomes
     * softcap · tanh(s / softcap) before the softmax */
    float softcap;
} vkb_attention_shape;

/* The first key the query at position p sees: p + 1 - window, or 0. */
uint32_t vkb_attention_first_key(const vkb_attention_shape *shape, uint32_t p);
vkb_status vkb_op_attention(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *q,
                            const vkb_buffer *k_cache, const vkb_buffer *v_cache,
                            const vkb_attention_shape *shape);

/* KV caches in other types. Each of keys and values has its layout:
 *   f16, q8_0, q4_0: one row per position of its kv_heads x head_dim values, f16 or
 *     ggml's q8_0 / q4_0 blocks of 32 (quantized rows need a multiple of 64 values);
 *   kivi4, kivi2: KIVI's asymmetric 4- / 2-bit groups (compress/cmp_kivi.h). The newest
 *     positions stay in an f16 window, a ring of window + group rows at the start of the
 *     buffer; once more than `window` positions are newer than the quantized ones, the
 *     oldest `group` of the window are folded into the quantized store after it. Keys are
 *     grouped per channel along `group` positions (a block per group of positions: the
 *     scale words of every channel, then each channel's packed values); values per
 *     position along `group` channels (a row per position: its scale words, then its
 *     packed values). After n positions, vkb_kv_quantized(layout, n) of them are in the
 *     store: (n - window) rounded down to a multiple of group, or none.
 * A KIVI cache is written in order: each vkb_op_kv_store appends at row0 = the positions
 * already written (0 starts over). */
typedef enum vkb_kv_type {
    VKB_KV_F16,
    VKB_KV_Q8_0,
    VKB_KV_Q4_0,
    VKB_KV_KIVI4,
    VKB_KV_KIVI2,
    VKB_KV_TYPE_COUNT
} vkb_kv_type;

typedef struct vkb_kv_layout {
    vkb_kv_type type;
    bool keys;       /* KIVI: grouped per channel along positions (keys) or per position */
    uint32_t values; /* per position: kv heads x head size, even */
    uint32_t n_ctx;  /* positions it holds */
    uint32_t group;  /* KIVI: values per scale and minimum, a multiple of 32, at most 256
                      * (per position: values must be a multiple of it) */
    uint32_t window; /* KIVI: positions kept in f16 at least (a multiple of group) */
} vkb_kv_layout;

const char *vkb_kv_type_name(vkb_kv_type t); /* "f16", "q8_0", "q4_0", "kivi4", "kivi2" */
/* Device bytes of a cache with this layout; 0 (and the reason in why) when the layout is
 * not valid. why may be NULL. */
uint64_t vkb_kv_bytes(const vkb_kv_layout *layout, char *why, size_t why_size);
/* Positions of the first n held quantized (n for f16, q8_0, q4_0). */
uint32_t vkb_kv_quantized(const vkb_kv_layout *layout, uint32_t n);
/* Of a cache written in order up to position n_written, how many positions stay valid
 * when writing starts again at position n (at most n_written): n, except for a KIVI cache
 * whose positions [vkb_kv_quantized(n), n) are no longer all in its f16 window ring, to be
 * folded again from there: 0 then (write it from the start). */
uint32_t vkb_kv_keep(const vkb_kv_layout *layout, uint32_t n_written, uint32_t n);

/* Writes rows of f32 x ([rows][values]) into positions row0, row0 + 1, ... of a cache,
 * quantizing on the way (q8_0, q4_0: the reference quantizers' arithmetic; KIVI: folds
 * what leaves the window, then writes the window; the f16 scales may round one step
 * apart on some drivers). */
vkb_status vkb_op_kv_store(vkb_stream *s, const vkb_buffer *cache, const vkb_kv_layout *layout,
                           uint32_t row0, const vkb_buffer *x, uint32_t rows);
/* The same into rows pos[r] read on the GPU (VKB_AT_POS; pos: int32 per row): f16, q8_0
 * and q4_0 caches of a multiple of 64 values per position (KIVI's writes depend on the
 * position when recorded). */
vkb_status vkb_op_kv_store_at(vkb_stream *s, const vkb_buffer *cache, const vkb_kv_layout *layout,
                              const vkb_buffer *pos, const vkb_buffer *x, uint32_t rows);

/* vkb_op_attention over caches of any layouts (shape.n_kv positions written; the layouts'
 * values equal to kv_heads x head_dim; two KIVI layouts share group and window),
 * dequantized as they are read. */
vkb_status vkb_op_attention_kv(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *q,
                               const vkb_buffer *k_cache, const vkb_kv_layout *k_layout,
                               const vkb_buffer *v_cache, const vkb_kv_layout *v_layout,
                               const vkb_attention_shape *shape);

/* Split-K attention for long caches and few queries (decode): the keys are cut into
 * `splits` ranges, each workgroup leaves its range's partial softmax result in
 * `partials` (vkb_attention_partials_bytes), and a second pass merges them, so one query
 * row's attention uses many workgroups. splits 1 is vkb_op_attention_kv.
 * vkb_attention_splits suggests a count for the device and shape; its query rows x splits
 * never exceed VKB_ATTENTION_PARTIAL_ROWS, so a partials buffer of that many rows
 * (vkb_attention_partials_bytes with tokens x heads x splits = it) serves any shape. */
#define VKB_ATTENTION_PARTIAL_ROWS 8192u
vkb_status vkb_op_attention_split(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *q,
                                  const vkb_buffer *k_cache, const vkb_kv_layout *k_layout,
                                  const vkb_buffer *v_cache, const vkb_kv_layout *v_layout,
                                  const vkb_buffer *partials, uint32_t splits,
                                  const vkb_attention_shape *shape);
/* The same writing its output as the 8-bit blocks of vkb_op_quantize_q8 (k = heads x
 * head_dim values per token, vkb_q8_bytes of them) instead of floats, for the
 * integer-dot-product products that read it: the bits of vkb_op_attention_split then
 * vkb_op_quantize_q8, in one dispatch (two with splits: the merge writes the blocks).
 * head_dim a multiple of 32; not on cooperative matrices. */
vkb_status vkb_op_attention_split_q8(vkb_stream *s, const vkb_buffer *xq, const vkb_buffer *q,
                                     const vkb_buffer *k_cache, const vkb_kv_layout *k_layout,
                                     const vkb_buffer *v_cache, const vkb_kv_layout *v_layout,
                                     const vkb_buffer *partials, uint32_t splits,
                                     const vkb_attention_shape *shape);
uint64_t vkb_attention_partials_bytes(const vkb_attention_shape *shape, uint32_t splits);
uint32_t vkb_attention_splits(const vkb_device *dev, const vkb_attention_shape *shape);

/* The same attention unfused, in three passes: the scores q·kᵀ·scale (masked keys -inf)
 * written to `scores`, softmax over each row in place, then the product with the values.
 * scores holds vkb_attention_scores_bytes(shape). The reference point of the fused
 * kernel, and `vkllm bench -fa 0`; same arithmetic, so the same results within f32
 * rounding. */
vkb_status vkb_op_attention_unfused(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *q,
                                    const vkb_buffer *k_cache, const vkb_buffer *v_cache,
                                    const vkb_buffer *scores, const vkb_attention_shape *shape);
uint64_t vkb_attention_scores_bytes(const vkb_attention_shape *shape);

/* The variant the row ops (rms_norm, softmax, attention) use: "subgroup" or "shared". */
const char *vkb_op_row_variant(const vkb_device *dev);

#ifdef __cplusplus
}
#endif

#endif /* VKB_OPS_H */
