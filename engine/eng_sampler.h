/* Token sampler: picks the next token from a row of logits, the way llama.cpp's default
 * chain does: repetition penalty over the last tokens, then top-k, top-p (nucleus) and
 * min-p, each computed at temperature 1, then temperature, then a draw from the
 * remaining distribution with a seeded generator. Temperature 0 is greedy (argmax after
 * the penalty; the lowest id wins ties). Deterministic for a given seed and input.
 *
 * Not thread-safe: one sampler per session. */
#ifndef ENG_SAMPLER_H
#define ENG_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct eng_sampler_params {
    float temperature; /* 0 = greedy; default 0.8 */
    int32_t top_k;     /* keep the k most likely; 0 = off; default 40 */
    float top_p;       /* keep the smallest set with this much probability; 1 = off; default 0.95 */
    float min_p; /* drop tokens below min_p x the best one's probability; 0 = off; default 0.05 */
    float repeat_penalty;  /* divide positive (multiply negative) logits of recent tokens; 1 = off;
                              default 1 */
    int32_t repeat_last_n; /* how many recent tokens the penalty looks at; default 64 */
    uint64_t seed;         /* default 0 */
} eng_sampler_params;

/* llama.cpp's defaults (see each field). */
eng_sampler_params eng_sampler_params_default(void);

typedef struct eng_sampler eng_sampler;

/* NULL for bad parameters or n_vocab 0, with the reason in err (when given). */
eng_sampler *eng_sampler_create(const eng_sampler_params *params, uint32_t n_vocab, char *err,
                                size_t err_size);
void eng_sampler_destroy(eng_sampler *s);

/* The next token for logits[n_vocab]; the logits are not modified. Returns -1 when every
 * logit is NaN or -inf. Does not add the token to the history: call eng_sampler_accept. */
int32_t eng_sampler_sample(eng_sampler *s, const float *logits);

/* A token and its logit. */
typedef struct eng_candidate {
    int32_t id;
    float logit;
} eng_candidate;

/* How many of a row's best logits decide the sampler's choice: top-k, or 1 at temperature
 * 0, plus, with a repetition penalty above 1, the penalty window (a penalty only lowers
 * logits, so each recent token can push at most one other into the top k). 0 when the
 * choice may depend on every logit: top-k off at a temperature, or a penalty below 1
 * (which raises recent tokens from anywhere). */
uint32_t eng_sampler_best_needed(const eng_sampler_params *params);

/* The best n valid logits of logits[n_vocab] (the order above) into out[n], in ascending
 * id order; returns how many (fewer than n where fewer are valid). On the host: what
 * vkb_op_top_logits computes on the GPU. */
uint32_t eng_best_logits(const float *logits, uint32_t n_vocab, uint32_t n, eng_candidate *out);

/* eng_sampler_sample from a row's best logits alone: best[0..n) (any order) must be the n
 * highest valid logits (not NaN, not -inf) by (logit descending, id ascending), with n at
 * least eng_sampler_best_needed, or every valid logit of the row where it has fewer.
 * Returns exactly what eng_sampler_sample returns for the whole row (the same draw
 * from the generator); -1 when n is 0 or best_needed is 0 for these parameters. Entries
 * with an id < 0 or past the vocabulary (padding) are skipped. */
int32_t eng_sampler_sample_best(eng_sampler *s, const eng_candidate *best, uint32_t n);

/* Adds a token (from the prompt or generated) to the history the penalty looks at. */
void eng_sampler_accept(eng_sampler *s, int32_t token);

/* For a sampler that runs elsewhere (eng_session_generate's on the GPU), in step with
 * this one: */
/* its parameters; */
const eng_sampler_params *eng_sampler_get_params(const eng_sampler *s);
/* the penalty's window as the ring it is kept in: out[repeat_last_n] receives the ring's
 * slots, whose first len (returned) are filled, and *at the slot the next token takes; */
uint32_t eng_sampler_history(const eng_sampler *s, int32_t *out, uint32_t *at);
/* the uniform in [0, 1) of the j-th draw from now (0: the next one) without taking it:
 * the draw's top 24 bits (the host's takes 53), as a float; */
float eng_sampler_draw_ahead(const eng_sampler *s, uint32_t j);
/* and what eng_sampler_sample then eng_sampler_accept leave behind when they choose
 * `token`: the generator past one draw (none at temperature 0, or for token -1), and the
 * token in the history. */
void eng_sampler_took(eng_sampler *s, int32_t token);

/* Forgets the history and restarts the generator from the seed. */
void eng_sampler_reset(eng_sampler *s);

#ifdef __cplusplus
}
#endif

#endif /* ENG_SAMPLER_H */
