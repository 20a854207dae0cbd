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

/* Adds a token (from the prompt or generated) to the history the penalty looks at. */
void eng_sampler_accept(eng_sampler *s, int32_t token);

/* Forgets the history and restarts the generator from the seed. */
void eng_sampler_reset(eng_sampler *s);

#ifdef __cplusplus
}
#endif

#endif /* ENG_SAMPLER_H */
