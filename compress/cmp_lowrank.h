/* Low-rank factorization: a matrix W (rows x k) replaced by B (rows x r) times A (r x k)
 * from its truncated singular value decomposition W ≈ U S Vᵀ, with A = S^½ Vᵀ and
 * B = U S^½ (the singular values split evenly, so both factors quantize alike). A model's
 * chosen matrices `blk.N.X.weight` are written as `blk.N.X.lr_a.weight` ([k, r]: A) and
 * `blk.N.X.lr_b.weight` ([r, rows]: B); the engine runs them as two products,
 * y = B (A x). A matrix is kept dense when the factors would not be smaller. */
#ifndef CMP_LOWRANK_H
#define CMP_LOWRANK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The top r singular triplets of w (rows x k floats, row-major) by randomized subspace
 * iteration (Halko, Martinsson and Tropp 2011: r + 8 random directions, 3 power
 * iterations, Rayleigh-Ritz with a Jacobi eigensolver; exact when r + 8 reaches
 * min(rows, k)), as the factors: a (r x k) and b (rows x r). s (r values, may be NULL)
 * receives the singular values, largest first. Deterministic for a seed. False when
 * out of memory or r is 0 or above min(rows, k). */
bool cmp_svd_factors(const float *w, uint32_t rows, uint32_t k, uint32_t r, uint64_t seed, float *a,
                     float *b, double *s);

typedef struct cmp_lowrank_params {
    /* the rank of each factorized matrix: rank_ratio x min(rows, k), or at least the share
     * `energy` of its squared Frobenius norm (the full spectrum is computed: slow for
     * large matrices); rounded up to a multiple of 32 */
    float rank_ratio, energy;
    const char *tensors; /* comma-separated roles: attn_q,attn_k,attn_v,attn_output,
                            ffn_gate,ffn_up,ffn_down (NULL: the FFN ones) */
    unsigned threads;
    /* called as matrices finish: matrices done of those chosen */
    void (*progress)(uint64_t done, uint64_t total, void *user);
    void *user;
} cmp_lowrank_params;

#define CMP_LOWRANK_MAX_REPORT 512

typedef struct cmp_lowrank_tensor {
    char name[64];
    uint32_t rows, k, rank; /* rank 0: kept dense (factors would not be smaller) */
    double energy;          /* share of the squared norm the rank keeps */
} cmp_lowrank_tensor;

typedef struct cmp_lowrank_report {
    uint32_t n_tensors;
    cmp_lowrank_tensor tensors[CMP_LOWRANK_MAX_REPORT];
    uint64_t in_bytes, out_bytes;
} cmp_lowrank_report;

/* False with the reason in err. Factors are written in the matrix's type (dequantized,
 * factorized, quantized again; the fallback type where r or k fits no block). */
bool cmp_lowrank_model(const char *in, const char *out, const cmp_lowrank_params *p,
                       cmp_lowrank_report *rep, char *err, size_t err_size);

#ifdef __cplusplus
}
#endif

#endif /* CMP_LOWRANK_H */
