/* Synthetic models: llama-architecture (or qwen3, gemma2, gemma3) GGUF files with random
 * weights in the
 * shapes of real models, quantized by a recipe (cmp_recipe.h), for benchmarks and tests. The files
 * follow the GGUF specification with the metadata llama.cpp reads (a SentencePiece-style
 * vocabulary of byte tokens and made-up words), so llama.cpp loads them too.
 *
 * Deterministic: the same preset, recipe and seed give the same bytes, whatever the
 * number of threads. Weights are near-Gaussian with standard deviation 1/sqrt(row
 * length) (embedding rows 1), norms are 1: activations keep a stable scale through any
 * depth, so the forward pass does the arithmetic of a real model. */
#ifndef ENG_SYNTH_H
#define ENG_SYNTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cmp_recipe.h"
#include "eng_model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct eng_synth_preset {
    const char *name; /* "llama2-7b" */
    const char *like; /* the real model whose shapes it has */
    uint32_t n_vocab, n_ctx_train, n_embd, n_layer, n_head, n_head_kv, n_ff;
    float rope_base, rms_eps;
    bool tied_output;  /* no output.weight: the embedding is the output matrix */
    eng_arch arch;     /* llama, qwen3 (per-head q and k norms), gemma2 or gemma3 */
    uint32_t head_dim; /* 0: n_embd / n_head */
    /* Llama 3.1's rope scaling by this factor (low and high frequency factors 1 and 4 over
     * an original context of 8192), written as rope_freqs.weight as llama.cpp's converter
     * writes it; 0: none */
    float rope_factor;
    float rope_linear;  /* linear rope scaling (gemma 3 4B and up: 8), 0: none */
    uint32_t n_swa;     /* gemma 2 and 3: the local layers' sliding window */
    float attn_softcap; /* gemma 2: the scores' and the logits' soft caps */
    float logit_softcap;
} eng_synth_preset;

/* A preset's head size (head_dim, or n_embd / n_head). */
uint32_t eng_synth_head_dim(const eng_synth_preset *preset);

const eng_synth_preset *eng_synth_presets(size_t *count);
/* By name, ignoring case; NULL when unknown. */
const eng_synth_preset *eng_synth_preset_find(const char *name);

typedef struct eng_synth_params {
    const eng_synth_preset *preset;
    const cmp_recipe *recipe;
    bool pure;                /* every matrix the recipe's base type (no mix, no Q6_K output) */
    uint64_t seed;            /* of the weights */
    unsigned threads;         /* 0 = every online CPU */
    eng_progress_fn progress; /* weight bytes written of the total; may be NULL */
    void *user;
} eng_synth_params;

/* Bytes of all tensors and count of values, without writing anything. */
uint64_t eng_synth_weight_bytes(const eng_synth_params *p);
uint64_t eng_synth_param_count(const eng_synth_preset *preset);

/* How many tensors get each type (indexed by cmp_type, ENG_SYNTH_TYPES entries), as
 * llama.cpp's loader lists them ("q4_K: 193 tensors"). False when out of memory. */
#define ENG_SYNTH_TYPES 64
bool eng_synth_type_counts(const eng_synth_params *p, uint32_t counts[ENG_SYNTH_TYPES]);

/* Writes the model to path (through path.partial, renamed when complete). */
eng_status eng_synth_write_file(const eng_synth_params *p, const char *path, char *err,
                                size_t err_size);
/* Writes the model to an open stream; `what` names it in messages. */
eng_status eng_synth_write_stream(const eng_synth_params *p, FILE *f, const char *what, char *err,
                                  size_t err_size);

#ifdef __cplusplus
}
#endif

#endif /* ENG_SYNTH_H */
