/* Shared by the weight-matrix tests (test_matrix.c: matvec, matmul, get_rows; and
 * test_matrix_fused.c: the integer-dot path and the fusions), each kernel against the
 * plain-C references in vkb_ref.h.
 *
 * Two kinds of data:
 *  - exact: blocks of random bits whose scales are powers of two, and activations in
 *    {-1/2, 0, 1/2}. Every product is then a multiple of a known unit, and the test
 *    checks that every partial sum stays below 2^24 units, so f32 arithmetic is exact in
 *    any order: the kernels must match the reference bit for bit. This catches any
 *    misread byte, block or column.
 *  - quantized: random floats quantized with compress/, the way a real model's weights
 *    are, compared within the f32 accumulation budget named at accum_budget(). */
#ifndef MATRIX_COMMON_H
#define MATRIX_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmp_quant.h"
#include "harness.h"
#include "vkb_ops.h"

/* Every GGUF format the kernels take. */
enum { N_TYPES = 12 };
extern const cmp_type all_types[N_TYPES];
const char *tname(cmp_type t);
uint32_t block_of(cmp_type t);

/* Whether all_types[ti] takes a case's extra variants in this run: every format in the
 * all-variants run (t_all_variants), one in four (f32, q4_1, q4_K) elsewhere, where what
 * changes is the reduction, the same code for every format, and each variant is another
 * pipeline for lavapipe to compile. */
bool format_in_run(size_t ti);

/* ---- data ---- */

/* rows x k weights of type t in GGUF layout, exact kind; *unit_log2 receives the unit. */
uint8_t *exact_weights(cmp_type t, uint32_t rows, uint32_t k, uint64_t seed, int *unit_log2);
/* n columns of k activations in {-1/2, 0, 1/2}. */
float *exact_x(uint32_t k, uint32_t n, uint64_t seed);
/* True when every sum over a row of |w·x| stays below 2^24 units of 2^-(unit_log2+1):
 * then f32 sums in any order are exact. */
bool exactness_holds(cmp_type t, const uint8_t *w, uint32_t rows, uint32_t k, const float *x,
                     uint32_t n, int unit_log2);
/* rows x k random weights in [-1, 1] quantized to t with compress/. */
uint8_t *quantized_weights(cmp_type t, uint32_t rows, uint32_t k, uint64_t seed);

/* ---- running the ops ---- */

struct fixture {
    vkb_arena *weights, *scratch;
    vkb_stream *stream;
};
bool setup(struct fixture *f);
void teardown(struct fixture *f);
/* W (rows x k of type t, GGUF bytes w) into the fixture's weights, which it resets. */
bool upload_matrix(struct fixture *f, vkb_matrix *m, cmp_type t, const uint8_t *w, uint32_t rows,
                   uint32_t k);

enum op { OP_MATVEC, OP_MATMUL };
const char *op_name(enum op op);
/* out (n x rows floats) = W x on the GPU; false when something failed (already reported). */
bool run_matrix_op(struct fixture *f, enum op op, const vkb_matrix *m, const float *x, uint32_t n,
                   float *out);
/* How many of n values differ from want bit for bit; *first (unless NULL): the first that
 * does. */
size_t bits_differ(const float *got, const float *want, size_t n, size_t *first);
/* The error budget of an f32 dot product of k terms whose |w·x| sum to sum_abs (the
 * reasoning is at its definition). */
double accum_budget(enum op op, uint32_t k, double sum_abs);

struct shape {
    uint32_t rows, k, n;
};
/* One op on one shape and type, exact data: bit-exact with the reference. */
void check_exact(struct fixture *f, enum op op, cmp_type t, struct shape s, uint64_t seed);
/* Quantized with compress/, then run: within accum_budget of the reference. */
void check_quantized(struct fixture *f, enum op op, cmp_type t, struct shape s, uint64_t seed);
/* k values in whole blocks near `want`. */
uint32_t k_for(cmp_type t, uint32_t want);

#endif /* MATRIX_COMMON_H */
