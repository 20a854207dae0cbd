/* The CPU reference forward pass: the same model, the same sequence of ops, built from
 * the plain-C references in vkb_ref.h (double arithmetic, one rounding per op) with an
 * f16 KV cache like the GPU's. Slow and exact; tests compare every layer of the GPU
 * forward pass against it. */
#ifndef ENG_REF_H
#define ENG_REF_H

#include "eng_model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct eng_ref eng_ref;

/* NULL with the reason in err when out of host memory. The model need not be uploaded. */
eng_ref *eng_ref_create(const eng_model *m, uint32_t n_ctx, char *err, size_t err_size);
void eng_ref_destroy(eng_ref *r);

/* Runs tokens[0..n) from the current position; writes the last token's logits
 * (n_vocab floats) and, when capture is not NULL, each layer's output:
 * capture[layer][token][n_embd]. */
eng_status eng_ref_eval(eng_ref *r, const int32_t *tokens, uint32_t n, float *logits,
                        float *capture);

uint32_t eng_ref_n_past(const eng_ref *r);
/* Forgets the conversation (positions restart at 0); the KV types and observer stay. */
void eng_ref_reset(eng_ref *r);

/* The KV cache types to mirror a session's (default f16; group and window as in
 * eng_session_params), before the first eval. */
eng_status eng_ref_set_kv_types(eng_ref *r, eng_kv_type k, eng_kv_type v, uint32_t group,
                                uint32_t window);

/* Called with the input of every weight product: x holds n rows of w->k values (what
 * importance statistics are made of: vkllm imatrix). NULL turns it off. */
typedef void (*eng_ref_input_fn)(void *user, const eng_weight *w, const float *x, uint32_t n);
void eng_ref_observe_inputs(eng_ref *r, eng_ref_input_fn fn, void *user);

/* Computes what session s computes where the two differ by design: the weight products
 * that its device runs on 8-bit activations (vkb_op_matvec_int_dot for decode steps and
 * chunks the session runs as passes of up to 8 tokens, vkb_op_matmul_int_dot for the
 * rest of prefill) read x rounded the same way, and where its prefill runs on cooperative
 * matrices (vkb_op_matmul_coopmat) W and x are rounded to f16. NULL: exact f32 weights
 * and activations everywhere (the default). The session must outlive the reference's use
 * of it. */
void eng_ref_mirror_session(eng_ref *r, const eng_session *s);

#ifdef __cplusplus
}
#endif

#endif /* ENG_REF_H */
