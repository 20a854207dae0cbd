/* What the model, session and reference files share; not part of the engine's API. */
#ifndef ENG_INTERNAL_H
#define ENG_INTERNAL_H

#include <stdarg.h>

#include "cmp_gguf.h"
#include "eng_model.h"
#include "vkb_ops.h"

/* A weight on the device: a matrix for the weight kernels (padded as noted), or an f32
 * vector (norms, biases) in `buffer`. */
typedef struct eng_dev_weight {
    vkb_buffer *buffer;
    vkb_matrix matrix;
    vkb_buffer *b_buffer; /* a factorized matrix: matrix is A, b B (eng_weight) */
    vkb_matrix b;
    uint32_t rank;
} eng_dev_weight;

typedef struct eng_dev_layer {
    eng_dev_weight attn_norm, wq, wk, wv, wo, ffn_norm, gate, up, down, bq, bk, bv;
    eng_dev_weight q_norm, k_norm; /* qwen3's per-head norms of q and k (f32 vectors) */
    eng_dev_weight attn_post_norm, ffn_post_norm; /* gemma 2 and 3's (f32 vectors) */
    /* wq, wk and wv (gate and up) as one matrix, their rows one after the other, where
     * they share a type and none is factorized: one product with an output each. The
     * members then keep their shape and type but no buffer of their own. */
    eng_dev_weight qkv, gate_up;
    eng_dev_weight bqkv; /* bq, bk and bv stacked (qkv's biases, where all three exist) */
} eng_dev_layer;

struct eng_model {
    cmp_gguf *gguf;
    eng_hparams hp;
    eng_vocab *vocab;
    eng_weight token_embd, output_norm, output;
    eng_weight rope_freqs; /* n_rot / 2 frequency divisors; data NULL where the file has none */
    eng_layer_weights *layers;
    uint64_t weight_bytes, params;
    char type_name[16];

    /* after eng_model_upload */
    vkb_device *dev;
    vkb_arena *weights;
    uint32_t n_ff_pad; /* FFN width on the device: n_ff rounded up to 8 */
    eng_dev_weight d_embd, d_output_norm, d_output;
    eng_dev_layer *d_layers;
};

/* snprintf into err when it is given; returns st. */
eng_status eng_fail(char *err, size_t err_size, eng_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* An arena that will hold `count` buffers of `bytes` in all: blocks of at most 256 MiB,
 * the last one sized to what is left (vkb_arena_expect), so it holds about the total. */
vkb_status eng_arena_create(vkb_device *dev, vkb_purpose purpose, uint64_t bytes, uint64_t count,
                            vkb_arena **out);

/* Tokens in the next submission of an eval with `left` tokens to go: at most `batch`; a
 * chunk of 9 to matmul_min - 1 tokens runs as passes of 8 through matvec, and a chunk of
 * more than one matmul tile (`tile` columns) leaves a remainder shorter than matmul_min
 * to such passes. */
uint32_t eng_chunk_size(uint32_t left, uint32_t batch, uint32_t matmul_min, uint32_t tile);

/* The session's eng_chunk_size arguments but the first. */
void eng_session_chunking(const eng_session *s, uint32_t *batch, uint32_t *matmul_min,
                          uint32_t *tile);

/* The eng_status for a failed backend call. */
eng_status eng_from_vkb(vkb_status st);

#endif /* ENG_INTERNAL_H */
