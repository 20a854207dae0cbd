/* Quantization recipes (see cmp_recipe.h for the rules in words). */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cmp_recipe.h"

static const cmp_recipe recipes[] = {
    {"F32", CMP_TYPE_F32, 0},        {"F16", CMP_TYPE_F16, 1},      {"Q4_0", CMP_TYPE_Q4_0, 2},
    {"Q4_1", CMP_TYPE_Q4_1, 3},      {"Q8_0", CMP_TYPE_Q8_0, 7},    {"Q5_0", CMP_TYPE_Q5_0, 8},
    {"Q5_1", CMP_TYPE_Q5_1, 9},      {"Q4_K_S", CMP_TYPE_Q4_K, 14}, {"Q4_K_M", CMP_TYPE_Q4_K, 15},
    {"Q5_K_S", CMP_TYPE_Q5_K, 16},   {"Q5_K_M", CMP_TYPE_Q5_K, 17}, {"Q6_K", CMP_TYPE_Q6_K, 18},
    {"IQ4_NL", CMP_TYPE_IQ4_NL, 25}, {"BF16", CMP_TYPE_BF16, 32},
};

#define N_RECIPES (sizeof recipes / sizeof recipes[0])

const cmp_recipe *cmp_recipe_find(const char *name)
{
    for (uint32_t i = 0; i < N_RECIPES; i++)
        if (strcasecmp(name, recipes[i].name) == 0)
            return &recipes[i];
    /* the K types alone name their _M mix's base, as llama.cpp's "Q4_K" means Q4_K_M */
    if (strcasecmp(name, "Q4_K") == 0)
        return cmp_recipe_find("Q4_K_M");
    if (strcasecmp(name, "Q5_K") == 0)
        return cmp_recipe_find("Q5_K_M");
    return NULL;
}

const cmp_recipe *cmp_recipe_list(uint32_t *count)
{
    *count = N_RECIPES;
    return recipes;
}

cmp_type cmp_type_fallback(cmp_type type, uint64_t row_len)
{
    const cmp_type_info *ti = cmp_type_get(type);
    if (ti && row_len % ti->block_size == 0)
        return type;
    switch (type) {
    case CMP_TYPE_Q4_K: return cmp_type_fallback(CMP_TYPE_Q5_0, row_len);
    case CMP_TYPE_Q5_K: return cmp_type_fallback(CMP_TYPE_Q5_1, row_len);
    case CMP_TYPE_Q6_K: return cmp_type_fallback(CMP_TYPE_Q8_0, row_len);
    default: return CMP_TYPE_F16;
    }
}

/* llama.cpp's choice of layers that get more bits: the first and last eighth, and every
 * third layer between. */
static bool use_more_bits(uint32_t i, uint32_t n)
{
    return i < n / 8 || i >= 7 * n / 8 || (i >= n / 8 && (i - n / 8) % 3 == 2);
}

static bool is_quantized(cmp_type t)
{
    return t != CMP_TYPE_F32 && t != CMP_TYPE_F16 && t != CMP_TYPE_BF16;
}

static cmp_type mixed_type(const cmp_recipe *r, const cmp_recipe_model *m, cmp_role role,
                           uint32_t layer, uint64_t row_len)
{
    bool output = role == CMP_ROLE_OUTPUT || (role == CMP_ROLE_TOKEN_EMBD && m->tied_output);
    if (output) {
        if (row_len % CMP_QK_K != 0 || r->base == CMP_TYPE_Q8_0)
            return CMP_TYPE_Q8_0;
        return CMP_TYPE_Q6_K;
    }
    uint32_t n = m->n_layer;
    switch (r->file_type) {
    case 15: /* Q4_K_M */
    case 17: /* Q5_K_M */
        if ((role == CMP_ROLE_ATTN_V || role == CMP_ROLE_FFN_DOWN) && use_more_bits(layer, n))
            return CMP_TYPE_Q6_K;
        break;
    case 14: /* Q4_K_S */
        if ((role == CMP_ROLE_ATTN_V && layer < 4) || (role == CMP_ROLE_FFN_DOWN && layer < n / 8))
            return CMP_TYPE_Q5_K;
        break;
    case 25: /* IQ4_NL, without an importance matrix */
        if ((role == CMP_ROLE_ATTN_V && m->n_gqa >= 4) ||
            (role == CMP_ROLE_FFN_DOWN && layer < n / 8))
            return CMP_TYPE_Q5_K;
        break;
    default: break;
    }
    return r->base;
}

cmp_type cmp_recipe_type(const cmp_recipe *r, const cmp_recipe_model *model, cmp_role role,
                         uint32_t layer, uint64_t row_len, bool pure)
{
    if (role == CMP_ROLE_VECTOR)
        return CMP_TYPE_F32;
    cmp_type t = r->base;
    if (!pure && is_quantized(r->base))
        t = mixed_type(r, model, role, layer, row_len);
    return cmp_type_fallback(t, row_len);
}

cmp_role cmp_role_of(const char *name, uint32_t n_dims, uint32_t *layer)
{
    static const struct {
        const char *suffix;
        cmp_role role;
    } roles[] = {
        {"attn_q.weight", CMP_ROLE_ATTN_Q},     {"attn_k.weight", CMP_ROLE_ATTN_K},
        {"attn_v.weight", CMP_ROLE_ATTN_V},     {"attn_output.weight", CMP_ROLE_ATTN_OUTPUT},
        {"ffn_gate.weight", CMP_ROLE_FFN_GATE}, {"ffn_up.weight", CMP_ROLE_FFN_UP},
        {"ffn_down.weight", CMP_ROLE_FFN_DOWN},
    };
    *layer = 0;
    if (n_dims < 2)
        return CMP_ROLE_VECTOR;
    if (strcmp(name, "token_embd.weight") == 0)
        return CMP_ROLE_TOKEN_EMBD;
    if (strcmp(name, "output.weight") == 0)
        return CMP_ROLE_OUTPUT;
    unsigned l;
    int at = 0;
    if (sscanf(name, "blk.%u.%n", &l, &at) == 1 && at > 0) {
        *layer = l;
        for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
            if (strcmp(name + at, roles[i].suffix) == 0)
                return roles[i].role;
    }
    return CMP_ROLE_ATTN_Q;
}

typedef struct parallel_job {
    uint64_t rows;
    size_t scratch_bytes;
    cmp_row_fn row;
    void *user;
    atomic_uint_fast64_t next; /* the next row to take */
    atomic_bool failed;
} parallel_job;

#define ROWS_PER_TAKE 16

static void *parallel_worker(void *arg)
{
    parallel_job *j = arg;
    void *scratch = j->scratch_bytes ? malloc(j->scratch_bytes) : NULL;
    if (j->scratch_bytes && !scratch) {
        atomic_store(&j->failed, true);
        return NULL;
    }
    for (;;) {
        uint64_t r0 = atomic_fetch_add(&j->next, ROWS_PER_TAKE);
        if (r0 >= j->rows)
            break;
        uint64_t r1 = r0 + ROWS_PER_TAKE < j->rows ? r0 + ROWS_PER_TAKE : j->rows;
        for (uint64_t r = r0; r < r1; r++)
            if (!j->row(j->user, r, scratch))
                atomic_store(&j->failed, true);
    }
    free(scratch);
    return NULL;
}

bool cmp_parallel_rows(uint64_t rows, unsigned threads, size_t scratch_bytes, cmp_row_fn row,
                       void *user)
{
    parallel_job j = {.rows = rows, .scratch_bytes = scratch_bytes, .row = row, .user = user};
    atomic_init(&j.next, 0);
    atomic_init(&j.failed, false);
    if (!threads) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n < 1 ? 1 : n > 256 ? 256 : (unsigned)n;
    }
    if (threads > 256)
        threads = 256;
    pthread_t tid[256];
    unsigned started = 0;
    for (; started + 1 < threads && (uint64_t)started * ROWS_PER_TAKE < rows; started++)
        if (pthread_create(&tid[started], NULL, parallel_worker, &j) != 0)
            break; /* fewer threads: the caller's share grows */
    parallel_worker(&j);
    for (unsigned i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    return !atomic_load(&j.failed);
}

typedef struct convert_job {
    cmp_type from, to;
    const uint8_t *src;
    uint8_t *dst;
    uint64_t k, src_row, dst_row;
    const float *importance;
} convert_job;

/* One row: dequantized into scratch (2k floats: the values, then their weights),
 * quantized into dst. */
static bool convert_row(void *user, uint64_t r, void *scratch)
{
    const convert_job *j = user;
    float *x = scratch, *w = x + j->k;
    if (!cmp_dequantize(j->from, j->src + r * j->src_row, x, j->k))
        return false;
    if (j->importance) {
        double s2 = 0;
        for (uint64_t c = 0; c < j->k; c++)
            s2 += (double)x[c] * x[c];
        float sigma2 = (float)(s2 / (double)j->k);
        for (uint64_t c = 0; c < j->k; c++)
            w[c] = j->importance[c] * sqrtf(sigma2 + x[c] * x[c]);
    }
    return cmp_quantize_weighted(j->to, x, j->dst + r * j->dst_row, j->k, j->importance ? w : NULL);
}

bool cmp_convert_rows(cmp_type from, const void *src, cmp_type to, void *dst, uint64_t rows,
                      uint64_t k, const float *importance, unsigned threads)
{
    convert_job j = {.from = from,
                     .to = to,
                     .src = src,
                     .dst = dst,
                     .k = k,
                     .src_row = cmp_row_bytes(from, k),
                     .dst_row = cmp_row_bytes(to, k),
                     .importance = importance};
    if (!j.src_row || !j.dst_row)
        return false;
    return cmp_parallel_rows(rows, threads, sizeof(float) * k * 2, convert_row, &j);
}
