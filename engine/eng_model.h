/* Models: a GGUF file checked against the architecture it names, its weights uploaded
 * once to a device, and sessions that run the forward pass on it.
 *
 * Architectures: the llama family (Llama 1/2/3, Mistral, TinyLlama, SmolLM: grouped-query
 * attention, tied embeddings when output.weight is absent, normal rope), qwen2 (QKV
 * biases, neox rope), qwen3 (an RMS norm of each q and k head before rope, neox rope,
 * a head size of its own: n_head x head_dim need not be n_embd), and gemma, gemma2 and
 * gemma3 (the embedding scaled by sqrt(n_embd), GELU in the FFN, neox rope, tied output;
 * 2 and 3: RMS norms of the attention's and the FFN's outputs, local layers attending
 * through a sliding window; 2: soft-capped scores and logits; 3: qwen3's per-head norms,
 * the local layers' own rope base). Other architectures are refused by name.
 *
 * A model is opened on the host (the file stays mapped read-only: the CPU reference
 * forward pass in eng_ref.h reads the weights from it), then uploaded to one device.
 * Sessions hold a KV cache and scratch on that device; one session at a time per model
 * is the tested use. Nothing here exits or aborts: failures return a status and a
 * message. */
#ifndef ENG_MODEL_H
#define ENG_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmp_quant.h"
#include "eng_sampler.h"
#include "eng_vocab.h"
#include "vkb.h"
#include "vkb_ops.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum eng_status {
    ENG_OK = 0,
    ENG_ERR_IO,            /* the file could not be read */
    ENG_ERR_FORMAT,        /* not GGUF, truncated, or tensors/keys inconsistent */
    ENG_ERR_UNSUPPORTED,   /* an architecture, tensor type or shape vkllm does not run */
    ENG_ERR_DEVICE,        /* the GPU failed (the message says how) */
    ENG_ERR_DEVICE_MEMORY, /* the model, KV cache or scratch does not fit the device */
    ENG_ERR_HOST_MEMORY,
    ENG_ERR_CONTEXT_FULL, /* more tokens than the session's context holds */
    ENG_ERR_ARGUMENT,     /* a caller passed something out of range */
} eng_status;

const char *eng_status_name(eng_status st);

typedef enum eng_arch {
    ENG_ARCH_LLAMA = 0,
    ENG_ARCH_QWEN2,
    ENG_ARCH_QWEN3,
    ENG_ARCH_GEMMA,
    ENG_ARCH_GEMMA2,
    ENG_ARCH_GEMMA3,
    ENG_ARCH_COUNT
} eng_arch;

/* general.architecture's value: "llama", "qwen2", "qwen3", "gemma", "gemma2", "gemma3". */
const char *eng_arch_name(eng_arch arch);

typedef struct eng_hparams {
    eng_arch arch;
    char arch_name[32];
    char name[128];       /* general.name, or "" */
    uint32_t n_vocab;     /* rows of token_embd */
    uint32_t n_ctx_train; /* context_length */
    uint32_t n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff;
    uint32_t n_rot;        /* rotated dimensions per head */
    bool rope_neox;        /* pair order (i, i + n_rot/2) instead of (2i, 2i+1) */
    float rope_base;       /* default 10000 */
    float rope_freq_scale; /* 1 / linear scaling factor; default 1 */
    float rms_eps;         /* default 1e-5 */
    bool tied_output;      /* output.weight absent: the embedding is the output matrix */
    uint32_t file_type;    /* general.file_type, or UINT32_MAX */
    /* gemma's differences (the others: silu, 1, 1 / sqrt(head_dim), no window, no caps) */
    vkb_act act;         /* the FFN's activation: silu, or gelu (gemma) */
    float embd_scale;    /* the embedding's rows are multiplied by it: sqrt(n_embd) (gemma) */
    float attn_scale;    /* the scores' scale (1 / sqrt(head_dim); gemma 2 and 3's 27B:
                          * 1 / sqrt(n_embd / n_head), as llama.cpp) */
    uint32_t n_swa;      /* the local layers' sliding window (gemma 2 and 3), 0 none */
    uint32_t swa_period; /* every swa_period-th layer is global, the others local: 2 (gemma
                          * 2), 6 (gemma 3) */
    float rope_base_swa; /* the local layers' rope: gemma 3's base 10000, unscaled; gemma 2's
                          * the global one */
    float rope_freq_scale_swa;
    float attn_softcap;  /* gemma 2: scores soft-capped at 50; 0 none */
    float logit_softcap; /* gemma 2: the final logits at 30; 0 none */
    bool post_norms;     /* gemma 2 and 3: the attention's and the FFN's outputs through
                          * their own RMS norm before the residual add */
} eng_hparams;

/* Whether layer l attends through the sliding window (gemma 2 and 3's local layers). */
bool eng_layer_local(const eng_hparams *hp, uint32_t l);

/* One weight tensor as the file holds it: rows of k values of type, from data. */
typedef struct eng_weight {
    char name[64]; /* the GGUF tensor name */
    cmp_type type;
    uint32_t rows, k;
    const void *data; /* in the file's read-only mapping */
    uint64_t bytes;
    /* a low-rank factorized matrix (blk.N.X.lr_a.weight and lr_b.weight, vkllm factorize):
     * rows x k is the product's shape; type, data and bytes are A's (rank rows of k), the
     * b_ fields B's (rows rows of rank); y = B (A x). rank 0: a plain matrix */
    uint32_t rank;
    cmp_type b_type;
    const void *b_data;
    uint64_t b_bytes;
} eng_weight;

typedef struct eng_layer_weights {
    eng_weight attn_norm, wq, wk, wv, wo, ffn_norm, gate, up, down;
    eng_weight bq, bk, bv;     /* qwen2; data NULL for the others */
    eng_weight q_norm, k_norm; /* qwen3, gemma 3: head_dim values, each head's norm weight */
    eng_weight attn_post_norm, ffn_post_norm; /* gemma 2 and 3 (hp.post_norms) */
} eng_layer_weights;

typedef struct eng_model eng_model;

/* Maps and checks `path`: the architecture, every hyper-parameter, every tensor's
 * presence, type and shape, and the tokenizer. NULL with the reason in err. */
eng_model *eng_model_open(const char *path, eng_status *st, char *err, size_t err_size);
void eng_model_close(eng_model *m);

const eng_hparams *eng_model_hparams(const eng_model *m);
const eng_vocab *eng_model_vocab(const eng_model *m);
const eng_weight *eng_model_token_embd(const eng_model *m);
const eng_weight *eng_model_output_norm(const eng_model *m);
const eng_weight *eng_model_output(const eng_model *m); /* the embedding when tied */
const eng_layer_weights *eng_model_layer(const eng_model *m, uint32_t layer);
/* The rotation frequency of each pair of a head's rotated dimensions (n_rot / 2 floats
 * into out): base^(-2i/n_rot) x rope_freq_scale, divided by the pair's factor where the
 * file has rope_freqs.weight (Llama 3.1 and 3.2 carry their rope scaling so). local: the
 * local layers' (eng_layer_local), from rope_base_swa and rope_freq_scale_swa. */
void eng_model_rope_freqs(const eng_model *m, bool local, float *out);
/* Bytes of all weight tensors in the file, and the count of values. */
uint64_t eng_model_weight_bytes(const eng_model *m);
uint64_t eng_model_param_count(const eng_model *m);
/* The most common matrix type ("q8_0", "iq4_nl", ...), for reports. */
const char *eng_model_type_name(const eng_model *m);
/* The template the model's file carries (tokenizer.chat_template), not NUL-terminated,
 * owned by the model; NULL (*len = 0) when it has none. */
const char *eng_model_chat_template(const eng_model *m, size_t *len);

/* Called while weights upload: bytes done of total. */
typedef void (*eng_progress_fn)(uint64_t done, uint64_t total, void *user);

/* Uploads every weight once to `dev` (blocks as they are; F32/F16/BF16 matrices whose
 * FFN width is not a multiple of 8 are padded with zeros, which changes no result).
 * Refuses up front, with the sizes, a model larger than the device's memory budget. */
eng_status eng_model_upload(eng_model *m, vkb_device *dev, eng_progress_fn progress, void *user,
                            char *err, size_t err_size);

/* ---- sessions ------------------------------------------------------------------------ */

typedef struct eng_session eng_session;

/* KV cache types (quantized on write, read by the attention kernel as they are stored):
 * f16; ggml's q8_0 / q4_0 blocks along each position's keys or values (the model's
 * kv_heads x head_dim must be a multiple of 64); KIVI's asymmetric 4- and 2-bit groups
 * (keys per channel along `group` positions, values per position along `group` channels,
 * the newest `window` positions in f16; vkb_ops.h). */
typedef enum eng_kv_type {
    ENG_KV_F16 = 0,
    ENG_KV_Q8_0,
    ENG_KV_Q4_0,
    ENG_KV_KIVI4,
    ENG_KV_KIVI2,
    ENG_KV_TYPE_COUNT
} eng_kv_type;

#define ENG_KV_GROUP_DEFAULT  64
#define ENG_KV_WINDOW_DEFAULT 128
#define ENG_KV_WINDOW_NONE    UINT32_MAX

/* "f16", "q8_0", "q4_0", "kivi4", "kivi2" */
const char *eng_kv_type_name(eng_kv_type t);
bool eng_kv_type_parse(const char *name, eng_kv_type *out); /* false for other names */

/* The backend layouts of key and value caches of n_ctx positions of `values` (kv heads x
 * head size) each, group and window as in eng_session_params (0: the defaults);
 * ENG_ERR_UNSUPPORTED with the reason in err when that shape does not take them. */
eng_status eng_kv_layouts(uint32_t values, uint32_t n_ctx, eng_kv_type k, eng_kv_type v,
                          uint32_t group, uint32_t window, vkb_kv_layout *k_layout,
                          vkb_kv_layout *v_layout, char *err, size_t err_size);

/* Where the best logits (eng_session_params.best_logits) are selected. */
typedef enum eng_best_place {
    /* on the GPU (vkb_op_top_logits), except on CPU drivers: there the logits are in host
     * memory anyway, and the kernel's barriers cost more than the host's selection */
    ENG_BEST_AUTO,
    ENG_BEST_GPU,  /* always on the GPU */
    ENG_BEST_HOST, /* every logit read by the host, which selects (eng_best_logits) */
} eng_best_place;

typedef struct eng_session_params {
    uint32_t n_ctx;   /* positions the KV cache holds; 0 = the training context, at most 4096 */
    uint32_t n_batch; /* tokens per prefill chunk; 0 = 512 */
    /* a chunk of more than 8 but fewer than this many tokens runs as passes of 8 through
     * the matrix-vector kernels instead of one through the matrix-matrix ones, which
     * compute whole tiles of columns; a longer chunk takes whole tiles and passes for a
     * rest that short (0 = the device's vkb_op_matmul_min_columns; 1 = never). Never
     * with all_logits or capture, which keep one submission's tokens */
    uint32_t matmul_min;
    bool capture; /* keep each layer's output of the last chunk (tests; eng_session_capture) */
    /* attention in three passes with the scores in memory (n_batch × heads × n_ctx
     * floats of scratch) instead of the fused kernel: the reference point for speed */
    bool unfused_attention;
    /* each rms_norm as its own dispatch before the products that read it, silu·mul (or
     * gelu·mul) after gate and up, and rope with the caches' write after the q, k, v
     * product, instead of fused into those products (decode and chunks of up to 8
     * tokens): the reference point */
    bool unfused_products;
    /* record every decode step's commands afresh (while the step before it runs) instead
     * of submitting again one recording that reads its positions on the GPU: the
     * reference point for reused recordings */
    bool record_each_step;
    /* logits for every token of an eval's last chunk, not only the last token
     * (eng_session_logits_all; n_batch × n_vocab floats of host-visible memory) */
    bool all_logits;
    /* N > 0: after each eval the best N logits come back (eng_session_best;
     * eng_session_logits is NULL), what a sampler needs when eng_sampler_best_needed(params)
     * is N; selected on the GPU, the logits stay in device memory and N pairs are read.
     * At most n_vocab (more is cut to it). Not with all_logits. */
    uint32_t best_logits;
    eng_best_place best_place; /* where that selection runs */
    eng_kv_type kv_k, kv_v;    /* the cache types of keys and values (default f16) */
    /* KIVI caches: values per scale (0 = ENG_KV_GROUP_DEFAULT; a multiple of 32 up to
     * 256) and positions kept in f16 (0 = ENG_KV_WINDOW_DEFAULT; a multiple of group;
     * ENG_KV_WINDOW_NONE: none) */
    uint32_t kv_group, kv_window;
    /* split-K attention: 0 = as the device suits (decode over long caches on GPUs),
     * N = always N splits (tests) */
    uint32_t attention_splits;
    /* GPU time per op of every step (timestamps around each dispatch; eng_session_stats) */
    bool profile;
} eng_session_params;

/* What the KV cache holds, for reports. */
typedef struct eng_kv_info {
    eng_kv_type k, v;
    uint32_t group, window;    /* KIVI caches' (0 otherwise) */
    uint64_t bytes;            /* device bytes of all layers' keys and values */
    double bits_per_value;     /* averaged over keys and values, scales included */
    uint32_t tokens, capacity; /* positions held now, and at most */
} eng_kv_info;
void eng_session_kv_info(const eng_session *s, eng_kv_info *out);

/* Statistics kept as plain counters while the session runs; eng_session_stats copies
 * them under a lock, so another thread (a metrics server, a viewer) may read them while
 * the session evaluates. An eval of one token counts as decode, of more as prefill. */
#define ENG_STATS_OPS     32
#define ENG_STATS_HISTORY 128

typedef struct eng_op_stat {
    char name[32];
    double ms;      /* GPU time of the last step in this op */
    uint32_t calls; /* dispatches of it in the last step */
} eng_op_stat;

typedef struct eng_stats {
    uint64_t prefill_tokens, decode_tokens; /* since the session was made */
    double prefill_seconds, decode_seconds; /* host wall time in eval */
    uint64_t evals;
    double last_prefill_tps, last_decode_tps; /* of the last eval of each kind */
    uint32_t history_count;                   /* the newest last */
    struct {
        double at;  /* seconds since the session was made */
        double tps; /* tokens/s of that eval */
        bool decode;
    } history[ENG_STATS_HISTORY];
    double last_step_gpu_ms;       /* 0 without timestamps */
    double last_step_record_ms;    /* host time recording the last step's commands */
    bool last_step_recorded_ahead; /* ... while the GPU ran the step before it */
    bool last_step_reused;         /* ... for an earlier step, and submitted again */
    uint64_t decode_steps_reused;  /* decode steps that submitted an earlier recording */
    double last_step_wait_ms;      /* host time from its submission to its end */
    uint32_t op_count;             /* with params.profile */
    eng_op_stat ops[ENG_STATS_OPS];
    eng_kv_info kv;
} eng_stats;
void eng_session_stats(eng_session *s, eng_stats *out);

/* A KV cache (f16) and scratch for one conversation on the model's device. */
eng_status eng_session_create(eng_model *m, const eng_session_params *params, eng_session **out,
                              char *err, size_t err_size);
void eng_session_destroy(eng_session *s);

/* Runs tokens[0..n) at positions n_past, n_past+1, ... in chunks of n_batch (matmul for
 * chunks of eng_session_matmul_min tokens or more, cut to whole matmul tiles where the
 * rest is shorter than that; passes of 8 through matvec otherwise), each chunk or pass
 * recorded and submitted once; afterwards eng_session_logits holds the last
 * token's logits. ENG_ERR_CONTEXT_FULL, changing nothing, when n_past + n exceeds n_ctx. */
eng_status eng_session_eval(eng_session *s, const int32_t *tokens, uint32_t n);

/* n_vocab floats: the last token's logits of the last eval; NULL before an eval, after a
 * reset, after eng_session_generate and with params.best_logits. */
const float *eng_session_logits(const eng_session *s);

/* With params.best_logits = N: the best N logits of the last eval's last token, by
 * (logit descending, id ascending), NaN and -inf never, in ascending id order (the input
 * eng_sampler_sample_best takes); *n receives how many (fewer than N where fewer are
 * valid). NULL (*n = 0) otherwise, and where eng_session_logits would be. Valid until the
 * next eval. */
const eng_candidate *eng_session_best(const eng_session *s, uint32_t *n);

/* The next token from the last eval's logits: from the best the session brings back
 * (params.best_logits: eng_sampler_sample_best, which needs best_logits at least
 * eng_sampler_best_needed) or else from every logit (eng_sampler_sample). -1 where there
 * are no logits or nothing to sample. Does not add the token to smp's history. */
int32_t eng_session_sample(const eng_session *s, eng_sampler *smp);

/* Receives each token eng_session_generate picks, in order; false stops it. It runs
 * while the next step is on the GPU and must not call into the session. */
typedef bool (*eng_token_fn)(void *user, int32_t token);

/* Decoding with each token picked on the GPU and fed to the next step there: evaluates
 * `token` at n_past, then each token picked, handing fn the picks in order. The host
 * reads one id per token, not the logits, and keeps the next step queued behind the
 * running one instead of submitting it after the pick. Stops after `max` picks, when fn
 * returns false, or when the context is full; *n_out (may be NULL) receives the picks
 * handed over. As after an eval and a sample, the last pick is not evaluated: n_past
 * grows by the picks. The step queued behind the last one may have run; it wrote nothing
 * before n_past.
 *
 * smp NULL, or greedy without a penalty: the highest logit, ties to the lowest id, NaN
 * and -inf never (vkb_op_argmax_feed: eng_sampler's choice at temperature 0). Otherwise
 * smp's chain from the best logits (vkb_op_sample_feed), with smp's penalty window and
 * the draws its generator would take (eng_sampler_draw_ahead): the host's token except
 * where a draw or a cut falls within float rounding of a boundary. smp takes each pick
 * as eng_session_sample then eng_sampler_accept would leave it (eng_sampler_took): fn
 * must not accept it again. Where the GPU cannot pick for smp (eng_session_gpu_picks
 * says why), each step is evaluated and sampled on the host instead, with the same
 * contract. ENG_ERR_UNSUPPORTED with params.all_logits. */
eng_status eng_session_generate(eng_session *s, int32_t token, uint32_t max, eng_sampler *smp,
                                eng_token_fn fn, void *user, uint32_t *n_out);
/* eng_session_generate greedily (smp NULL). */
eng_status eng_session_greedy(eng_session *s, int32_t token, uint32_t max, eng_token_fn fn,
                              void *user, uint32_t *n_out);
/* Whether eng_session_generate picks on the GPU for smp (NULL: greedy); where not, why
 * (into why, may be NULL): top-k off or a penalty below 1 (every logit may decide the
 * token), a session that brings every logit back, selects its best on the host (CPU
 * drivers), or brings back fewer than the sampler needs (eng_sampler_best_needed) or more
 * than VKB_SAMPLE_MAX. */
bool eng_session_gpu_picks(const eng_session *s, const eng_sampler *smp, char *why,
                           size_t why_size);
/* With params.all_logits: [tokens][n_vocab] logits of the last eval's last chunk (an eval
 * of at most n_batch tokens is one chunk: every token's logits); *tokens receives the
 * chunk's length. NULL otherwise. Valid until the next eval. */
const float *eng_session_logits_all(const eng_session *s, uint32_t *tokens);
uint32_t eng_session_n_past(const eng_session *s);
uint32_t eng_session_n_ctx(const eng_session *s);
/* Forgets the conversation (positions restart at 0). */
void eng_session_reset(eng_session *s);
/* Keeps the first n positions (at most eng_session_n_past) and forgets the rest, so that
 * a text beginning with the same tokens goes on from there without evaluating them again
 * (a server's prompt cache). Returns the positions kept: n, or 0 (as eng_session_reset)
 * where a KIVI cache has folded positions before n into its quantized store and no longer
 * holds them in f16 to fold again (vkb_kv_keep). The last eval's logits are gone unless n
 * is n_past. */
uint32_t eng_session_keep(eng_session *s, uint32_t n);
/* The reason for the last failure. */
const char *eng_session_errmsg(const eng_session *s);

/* The fewest tokens of an eval's chunk that go through the matrix-matrix kernels
 * (eng_session_params.matmul_min resolved): a chunk of 9 up to this less one runs as
 * passes of 8 through the matrix-vector kernels. 9 or less: none does. */
uint32_t eng_session_matmul_min(const eng_session *s);

/* With params.capture: layer l's output (the residual stream after the layer) for the
 * last chunk, [tokens][n_embd]; *tokens receives the chunk's length. NULL otherwise. */
const float *eng_session_capture(const eng_session *s, uint32_t layer, uint32_t *tokens);

/* GPU milliseconds of the last chunk (timestamps), 0 when the device has none. */
double eng_session_last_gpu_ms(const eng_session *s);

#ifdef __cplusplus
}
#endif

#endif /* ENG_MODEL_H */
