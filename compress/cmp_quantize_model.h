/* A whole GGUF model converted to another type by a recipe (cmp_recipe.h): every weight
 * matrix dequantized and quantized with the reference quantizers (in parallel by rows),
 * vectors kept as they are, all metadata copied with general.file_type and the
 * quantization version set, written through OUT.partial. */
#ifndef CMP_QUANTIZE_MODEL_H
#define CMP_QUANTIZE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmp_gguf.h"
#include "cmp_recipe.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cmp_quantize_params {
    const cmp_recipe *recipe;
    bool pure;        /* every matrix the recipe's base type */
    unsigned threads; /* 0 = every CPU */
    /* importance statistics (vkllm imatrix; llama.cpp's GGUF imatrix format: per weight
     * "<name>.in_sum2" and "<name>.counts"), or NULL */
    const cmp_gguf *imatrix;
    void (*progress)(uint64_t done, uint64_t total, void *user); /* input bytes; may be NULL */
    void *user;
} cmp_quantize_params;

#define CMP_QUANTIZE_TYPES 64

typedef struct cmp_quantize_report {
    uint64_t in_bytes, out_bytes;       /* of the tensors */
    uint32_t count[CMP_QUANTIZE_TYPES]; /* tensors of each output type */
    uint32_t weighted;                  /* tensors quantized with importance weights */
} cmp_quantize_report;

/* The mean square activation of each of a weight's k input columns from an imatrix
 * (<weight>.in_sum2 / <weight>.counts), malloc'd; NULL when imatrix is NULL, the weight
 * is absent or of another length, or memory ran out. */
float *cmp_imatrix_mean_square(const cmp_gguf *imatrix, const char *weight, uint64_t k);

/* False with the reason in err: unreadable input, a tensor type vkllm cannot read, out of
 * memory, or a failed write (OUT then keeps what it held). */
bool cmp_quantize_model(const char *in, const char *out, const cmp_quantize_params *p,
                        cmp_quantize_report *rep, char *err, size_t err_size);

#ifdef __cplusplus
}
#endif

#endif /* CMP_QUANTIZE_MODEL_H */
