/* Quantization recipes (see cmp_recipe.h for the rules in words). */
#include <strings.h>

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
