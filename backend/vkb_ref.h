/* Plain-C references of the ops in vkb_ops.h, with the same arguments on host memory.
 *
 * They compute in double and round once at the end, so they are the exact result to
 * within one rounding: tests compare the kernels against them within named budgets, and
 * the engine's CPU forward pass is built from them. Weight matrices are dequantized with
 * the compress/ codec, the contract the kernels match bit for bit. */
#ifndef VKB_REF_H
#define VKB_REF_H

#include "vkb_ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* out[c][r] = sum_k W[r][k] · x[c][k] for c < n, W `rows` rows of `k` values of `type`
 * as GGUF stores them: vkb_op_matvec and vkb_op_matmul. False for an unsupported type or
 * when out of host memory. */
bool vkb_ref_matmul(cmp_type type, const void *w, uint32_t rows, uint32_t k, const float *x,
                    float *out, uint32_t n);

/* vkb_op_quantize_q8 on the host: ncols columns of k (a multiple of 32) values into
 * vkb_q8_bytes(k, ncols) bytes, the same bytes as the GPU's on any driver (the kernel
 * uses only exact or correctly rounded steps). vkb_ref_dequantize_q8: the values those
 * blocks stand for (q · d), so vkb_ref_matmul of them is the int-dot matvec's result. */
void vkb_ref_quantize_q8(const float *x, uint32_t k, uint32_t ncols, uint32_t *xq);
void vkb_ref_dequantize_q8(const uint32_t *xq, uint32_t k, uint32_t ncols, float *x);

/* out[i] = W[ids[i]] dequantized; ids ≥ rows leave their row of out as it was. */
bool vkb_ref_get_rows(cmp_type type, const void *w, uint32_t rows, uint32_t k, const uint32_t *ids,
                      uint32_t n_ids, float *out);

void vkb_ref_add(float *out, const float *a, const float *b, uint64_t n);
void vkb_ref_add_bias(float *out, const float *x, const float *bias, uint32_t n, uint32_t rows);
/* k_cache, v_cache: IEEE binary16 bits. False when out of host memory. */
bool vkb_ref_attention(float *out, const float *q, const uint16_t *k_cache, const uint16_t *v_cache,
                       const vkb_attention_shape *shape);
/* vkb_op_kv_store on host memory (vkb_kv_bytes(layout) bytes, 4-aligned): the same
 * bytes, but for the rounding of a scale or value by one step on some drivers. False for
 * an invalid layout or rows past its end; out of host memory. */
bool vkb_ref_kv_store(const vkb_kv_layout *layout, void *cache, uint32_t row0, const float *x,
                      uint32_t rows);
/* The first n positions of a cache dequantized: out[n][layout values]. */
bool vkb_ref_kv_read(const vkb_kv_layout *layout, const void *cache, uint32_t n, float *out);
/* Over caches of any layouts (vkb_op_attention_kv): each position dequantized with the
 * CPU codec (vkb_ref_kv_read), then as above. */
bool vkb_ref_attention_kv(float *out, const float *q, const void *k_cache,
                          const vkb_kv_layout *k_layout, const void *v_cache,
                          const vkb_kv_layout *v_layout, const vkb_attention_shape *shape);
void vkb_ref_rms_norm(float *out, const float *x, const float *w, uint32_t n, uint32_t rows,
                      float eps);
void vkb_ref_softmax(float *out, const float *x, const float *mask, uint32_t mask_rows, uint32_t n,
                     uint32_t rows, float scale);
/* The index of the largest of x[0..n): ties to the lowest index, NaN and -inf skipped;
 * -1 when nothing is left (vkb_op_argmax_feed's pick). */
int32_t vkb_ref_argmax(const float *x, uint32_t n);
/* The best m of x[0..n) as vkb_op_top_logits writes them (ascending index, padded with
 * {-1, NaN}); the number valid, or -1 out of host memory. */
int64_t vkb_ref_top_logits(const float *x, uint32_t n, uint32_t m, vkb_top_logit *out);
/* vkb_op_sample_feed's pick, in float as the kernel computes it: from best[0..m) (any
 * order; ids < 0 and invalid logits skipped) with the penalty over history[0..history_len)
 * and the draw u; -1 where nothing is valid. *margin (may be NULL) receives how near the
 * pick came to another: the smallest relative distance between the draw and an edge of
 * the chosen weights, the top-p sum and top_p, a min-p ratio and min_p, or a penalized
 * logit and its neighbour in the order (HUGE_VAL where nothing is near). Arithmetic that
 * differs in rounding (the GPU's exp, the host sampler's doubles) picks the same where
 * the margin is well above its error: 1e-4 is safe. -2 out of host memory. */
int32_t vkb_ref_sample(const vkb_top_logit *best, uint32_t m, const int32_t *history,
                       uint32_t history_len, const vkb_sample_params *p, float u, double *margin);
void vkb_ref_rope(float *out, const float *x, const int32_t *pos, const float *freqs,
                  const vkb_rope_shape *shape);
/* act(g) in double (vkb_act), and out[i] = act(gate[i]) · up[i]. */
double vkb_ref_act(vkb_act act, double g);
void vkb_ref_glu_mul(vkb_act act, float *out, const float *gate, const float *up, uint64_t n);
void vkb_ref_scale(float *out, const float *x, uint64_t n, float scale);
void vkb_ref_softcap(float *out, const float *x, uint64_t n, float cap);

#ifdef __cplusplus
}
#endif

#endif /* VKB_REF_H */
