/* Quantization recipes: which type each tensor of a model gets for a file type such as
 * Q4_0 or Q4_K_M, by the rules llama.cpp's quantizer applies to llama-family models, so
 * files made here have the same tensor types as files made there.
 *
 * The rules (for a quantized recipe; F32/F16/BF16 recipes convert every matrix):
 * - the output matrix (or the embedding when it doubles as the output) gets Q6_K, or Q8_0
 *   when its rows do not fit 256-value blocks or the recipe is Q8_0;
 * - Q4_K_M and Q5_K_M give Q6_K to attn_v and ffn_down of the layers use_more_bits picks
 *   (the first and last eighth, and every third layer between);
 * - Q4_K_S gives Q5_K to attn_v of the first 4 layers and ffn_down of the first eighth;
 * - IQ4_NL gives Q5_K to attn_v when 4 or more query heads share a KV head, and to
 *   ffn_down of the first eighth of the layers;
 * - everything else gets the recipe's base type; norms and other vectors stay F32;
 * - a row length that does not fit the chosen type's block falls back: Q4_K to Q5_0, Q5_K
 *   to Q5_1, Q6_K to Q8_0, any 32-value type to F16. */
#ifndef CMP_RECIPE_H
#define CMP_RECIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmp_quant.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a tensor is in the model, for the rules above. */
typedef enum cmp_role {
    CMP_ROLE_TOKEN_EMBD,
    CMP_ROLE_OUTPUT,
    CMP_ROLE_ATTN_Q,
    CMP_ROLE_ATTN_K,
    CMP_ROLE_ATTN_V,
    CMP_ROLE_ATTN_OUTPUT,
    CMP_ROLE_FFN_GATE,
    CMP_ROLE_FFN_UP,
    CMP_ROLE_FFN_DOWN,
    CMP_ROLE_VECTOR, /* norms, biases: never quantized */
} cmp_role;

typedef struct cmp_recipe {
    const char *name;   /* as llama.cpp names the file type: "Q4_0", "Q4_K_M", ... */
    cmp_type base;      /* the type of most matrices */
    uint32_t file_type; /* general.file_type (llama_ftype) */
} cmp_recipe;

/* Looks a recipe up by name, ignoring case ("q4_k_m" works); NULL when unknown. */
const cmp_recipe *cmp_recipe_find(const char *name);
const cmp_recipe *cmp_recipe_list(uint32_t *count);

/* The facts about the model the rules read. */
typedef struct cmp_recipe_model {
    uint32_t n_layer;
    uint32_t n_gqa;   /* query heads per KV head */
    bool tied_output; /* the embedding is also the output matrix */
} cmp_recipe_model;

/* The type for a tensor of `role` in `layer` (ignored for roles outside layers) whose
 * rows hold row_len values, the shape fallback applied. With `pure` every matrix gets the
 * base type (still with the fallback). */
cmp_type cmp_recipe_type(const cmp_recipe *r, const cmp_recipe_model *model, cmp_role role,
                         uint32_t layer, uint64_t row_len, bool pure);

/* What a llama-family GGUF tensor is, from its name ("blk.7.attn_v.weight": ATTN_V in
 * layer 7); n_dims 1 is a vector. Unknown matrices are ATTN_Q-like (the base type). */
cmp_role cmp_role_of(const char *name, uint32_t n_dims, uint32_t *layer);

/* Calls row(user, r, scratch) for every r in [0, rows) on `threads` threads (0 = every
 * online CPU, at most 256), each thread with its own scratch of scratch_bytes; rows are
 * handed out 16 at a time. False when a call returned false or memory ran out (the other
 * rows are still done). */
typedef bool (*cmp_row_fn)(void *user, uint64_t r, void *scratch);
bool cmp_parallel_rows(uint64_t rows, unsigned threads, size_t scratch_bytes, cmp_row_fn row,
                       void *user);

/* Converts rows of k values from one type to another (dequantized to f32, then quantized
 * with the reference quantizer; with `importance`, k values, one per column, e.g. the
 * mean square of the activations the column meets, the importance-weighted quantizer
 * with weights importance[j] * sqrt(mean x^2 of the row + x[j]^2), as llama.cpp's imatrix
 * quantization weighs them) on `threads` threads (0 = every CPU); rows are
 * independent, so the bytes do not depend on the thread count. False for an unsupported
 * type, a k that does not fit either type's blocks, or no memory. */
bool cmp_convert_rows(cmp_type from, const void *src, cmp_type to, void *dst, uint64_t rows,
                      uint64_t k, const float *importance, unsigned threads);

/* The type used instead of `type` when rows of row_len values do not fit its blocks;
 * `type` itself when they do. */
cmp_type cmp_type_fallback(cmp_type type, uint64_t row_len);

#ifdef __cplusplus
}
#endif

#endif /* CMP_RECIPE_H */
