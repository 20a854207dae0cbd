/* Pruning a GGUF model: unstructured (zeroing the least important weights of each output
 * row: by magnitude |w|, or Wanda's |w| x the input column's activation norm) and
 * structured (removing whole FFN channels: rows of gate and up, columns of down, the same
 * count in every layer, feed_forward_length rewritten; or whole attention heads: a KV
 * head with the query heads sharing it, their rows of q, k, v (and biases) and columns of
 * the attention output, head_count, head_count_kv, key_length and value_length written),
 * as a new GGUF file that the engine runs: a structurally pruned model is smaller and
 * faster.
 *
 * Only the layers' matrices are pruned (attention q/k/v/output, FFN gate/up/down); the
 * embedding, the output matrix and norms are copied. Pruned matrices are written in their
 * input type (dequantized, pruned, quantized again; a row length that no longer fits the
 * type falls back as cmp_type_fallback says). */
#ifndef CMP_PRUNE_H
#define CMP_PRUNE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmp_gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cmp_prune_method { CMP_PRUNE_MAGNITUDE = 0, CMP_PRUNE_WANDA } cmp_prune_method;

typedef struct cmp_prune_params {
    cmp_prune_method method;
    float sparsity;          /* fraction of each output row's weights set to zero, 0..0.99 */
    float ffn_remove;        /* fraction of FFN channels removed (rounded to keep a multiple
                                of 32 channels), 0..0.9 */
    float heads_remove;      /* fraction of attention heads removed: whole KV head groups
                                (a KV head and its query heads), the same number in every
                                layer; the removed count rounds down, at least one group
                                stays; 0..0.9 */
    const cmp_gguf *imatrix; /* activation statistics (vkllm imatrix): needed by Wanda, and
                                used to rank FFN channels when present */
    unsigned threads;
    void (*progress)(uint64_t done, uint64_t total, void *user);
    void *user;
} cmp_prune_params;

#define CMP_PRUNE_MAX_REPORT 512

typedef struct cmp_prune_tensor_report {
    char name[64];
    uint64_t values, zeros; /* after pruning, before requantization */
} cmp_prune_tensor_report;

typedef struct cmp_prune_report {
    uint32_t n_ff_before, n_ff_after;
    uint32_t n_head_before, n_head_after, n_head_kv_before, n_head_kv_after;
    uint64_t in_bytes, out_bytes;
    uint32_t n_tensors; /* pruned matrices reported, at most CMP_PRUNE_MAX_REPORT */
    cmp_prune_tensor_report tensors[CMP_PRUNE_MAX_REPORT];
} cmp_prune_report;

/* Zeroes the `sparsity` fraction of each row's weights with the lowest score: |w| times
 * act_norm[column] (NULL: |w| alone). rows x k floats in place; returns the zeros made. */
uint64_t cmp_prune_rows(float *w, uint64_t rows, uint64_t k, float sparsity, const float *act_norm);

/* False with the reason in err. */
bool cmp_prune_model(const char *in, const char *out, const cmp_prune_params *p,
                     cmp_prune_report *rep, char *err, size_t err_size);

#ifdef __cplusplus
}
#endif

#endif /* CMP_PRUNE_H */
