/* Opening a GGUF model: hyper-parameters with llama.cpp's defaults, every tensor checked,
 * then the weights uploaded once. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng_internal.h"

eng_status eng_fail(char *err, size_t err_size, eng_status st, const char *fmt, ...)
{
    if (err && err_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return st;
}

eng_status eng_from_vkb(vkb_status st)
{
    switch (st) {
    case VKB_OK: return ENG_OK;
    case VKB_ERR_OUT_OF_DEVICE_MEMORY: return ENG_ERR_DEVICE_MEMORY;
    case VKB_ERR_OUT_OF_HOST_MEMORY: return ENG_ERR_HOST_MEMORY;
    case VKB_ERR_INVALID_ARGUMENT:
    case VKB_ERR_CONTRACT: return ENG_ERR_ARGUMENT;
    case VKB_ERR_UNSUPPORTED: return ENG_ERR_UNSUPPORTED;
    default: return ENG_ERR_DEVICE;
    }
}

vkb_status eng_arena_create(vkb_device *dev, vkb_purpose purpose, uint64_t bytes, uint64_t count,
                            vkb_arena **out)
{
    uint64_t total = bytes + 256 * (count + 1);
    vkb_status st =
        vkb_arena_create(dev, purpose, total < (256ull << 20) ? total : 256ull << 20, out);
    if (st == VKB_OK)
        vkb_arena_expect(*out, total);
    return st;
}

const char *eng_status_name(eng_status st)
{
    static const char *const names[] = {
        "ENG_OK",
        "ENG_ERR_IO",
        "ENG_ERR_FORMAT",
        "ENG_ERR_UNSUPPORTED",
        "ENG_ERR_DEVICE",
        "ENG_ERR_DEVICE_MEMORY",
        "ENG_ERR_HOST_MEMORY",
        "ENG_ERR_CONTEXT_FULL",
        "ENG_ERR_ARGUMENT",
    };
    return (unsigned)st < sizeof names / sizeof names[0] ? names[st] : "ENG_ERR_?";
}

/* ---- hyper-parameters ---- */

typedef struct reader {
    const cmp_gguf *g;
    const char *arch;
    char *err;
    size_t err_size;
    eng_status st;
} reader;

/* "{arch}.{key}" as a u32; `fallback` when absent (or an error when fallback is
 * UINT32_MAX); an error when present with a bad type or out of [1, max]. */
static uint32_t arch_u32(reader *r, const char *key, uint32_t fallback, uint32_t max)
{
    char full[128];
    snprintf(full, sizeof full, "%s.%s", r->arch, key);
    uint32_t v = 0;
    cmp_gguf_status gs = cmp_gguf_get_u32(r->g, full, &v);
    if (gs == CMP_GGUF_ERR_NOT_FOUND && fallback != UINT32_MAX)
        return fallback;
    if (r->st == ENG_OK && gs == CMP_GGUF_ERR_NOT_FOUND)
        r->st = eng_fail(r->err, r->err_size, ENG_ERR_FORMAT, "the model lacks the key %s", full);
    else if (r->st == ENG_OK && gs != CMP_GGUF_OK)
        r->st =
            eng_fail(r->err, r->err_size, ENG_ERR_FORMAT, "%s is not an unsigned integer", full);
    else if (r->st == ENG_OK && (v == 0 || v > max))
        r->st = eng_fail(r->err, r->err_size, ENG_ERR_FORMAT, "%s = %u is out of range (1 to %u)",
                         full, v, max);
    return v;
}

/* "{arch}.{key}" as a float, `fallback` when absent: positive, or with fallback 0 (a soft
 * cap: absent or 0 is none) 0 or positive and finite. */
static float arch_f32(reader *r, const char *key, float fallback)
{
    char full[128];
    snprintf(full, sizeof full, "%s.%s", r->arch, key);
    float v = fallback;
    cmp_gguf_status gs = cmp_gguf_get_f32(r->g, full, &v);
    if (gs != CMP_GGUF_OK && gs != CMP_GGUF_ERR_NOT_FOUND && r->st == ENG_OK)
        r->st = eng_fail(r->err, r->err_size, ENG_ERR_FORMAT, "%s is not a number", full);
    bool none_ok = fallback == 0.0f;
    if (!(none_ok ? v >= 0.0f && v < INFINITY : v > 0.0f) && r->st == ENG_OK)
        r->st = eng_fail(r->err, r->err_size, ENG_ERR_FORMAT,
                         none_ok ? "%s = %g must be 0 or positive and finite"
                                 : "%s = %g must be positive",
                         full, v);
    return v;
}

bool eng_layer_local(const eng_hparams *hp, uint32_t l)
{
    return hp->n_swa && hp->swa_period > 1 && l % hp->swa_period < hp->swa_period - 1;
}

const char *eng_arch_name(eng_arch arch)
{
    static const char *const names[ENG_ARCH_COUNT] = {"llama", "qwen2",  "qwen3",
                                                      "gemma", "gemma2", "gemma3"};
    return (unsigned)arch < ENG_ARCH_COUNT ? names[arch] : "?";
}

/* gemma's hyper-parameters beyond llama's, as llama.cpp reads them: the sliding window
 * (gemma 2: 4096 where the file has none), soft caps (gemma 2), the local layers' rope
 * (gemma 3: base 10000, unscaled), and the 27B models' score scale. */
static void read_gemma(reader *r, eng_hparams *hp)
{
    bool g2 = hp->arch == ENG_ARCH_GEMMA2, g3 = hp->arch == ENG_ARCH_GEMMA3;
    hp->act = VKB_ACT_GELU;
    hp->embd_scale = sqrtf((float)hp->n_embd);
    if (!g2 && !g3)
        return;
    hp->post_norms = true;
    hp->n_swa = arch_u32(r, "attention.sliding_window", g2 ? 4096 : UINT32_MAX, 1u << 24);
    hp->swa_period = g2 ? 2 : 6;
    if (g2) {
        hp->attn_softcap = arch_f32(r, "attn_logit_softcapping", 0.0f);
        hp->logit_softcap = arch_f32(r, "final_logit_softcapping", 0.0f);
    } else {
        hp->rope_base_swa = 10000.0f;
        hp->rope_freq_scale_swa = 1.0f;
    }
    /* gemma 2's 27B has 46 layers, gemma 3's 62: their queries are scaled by
     * query_pre_attn_scalar = n_embd / n_head, not the head size */
    if ((g2 && hp->n_layer == 46) || (g3 && hp->n_layer == 62))
        hp->attn_scale = 1.0f / sqrtf((float)(hp->n_embd / hp->n_head));
}

static eng_status read_hparams(eng_model *m, char *err, size_t err_size)
{
    eng_hparams *hp = &m->hp;
    cmp_gguf_str arch;
    if (cmp_gguf_get_str(m->gguf, "general.architecture", &arch) != CMP_GGUF_OK)
        return eng_fail(err, err_size, ENG_ERR_FORMAT,
                        "general.architecture is missing: not a model file");
    hp->arch = ENG_ARCH_COUNT;
    for (int a = 0; a < ENG_ARCH_COUNT; a++)
        if (cmp_gguf_str_eq(arch, eng_arch_name((eng_arch)a)))
            hp->arch = (eng_arch)a;
    if (hp->arch == ENG_ARCH_COUNT)
        return eng_fail(err, err_size, ENG_ERR_UNSUPPORTED,
                        "architecture \"%.*s\" is not supported (vkllm runs llama, qwen2, qwen3, "
                        "gemma, gemma2 and gemma3)",
                        (int)(arch.len < 64 ? arch.len : 64), arch.ptr);
    snprintf(hp->arch_name, sizeof hp->arch_name, "%.*s", (int)arch.len, arch.ptr);
    cmp_gguf_str name;
    if (cmp_gguf_get_str(m->gguf, "general.name", &name) == CMP_GGUF_OK)
        snprintf(hp->name, sizeof hp->name, "%.*s", (int)(name.len < 127 ? name.len : 127),
                 name.ptr);
    if (cmp_gguf_get_u32(m->gguf, "general.file_type", &hp->file_type) != CMP_GGUF_OK)
        hp->file_type = UINT32_MAX;

    reader r = {m->gguf, hp->arch_name, err, err_size, ENG_OK};
    hp->n_layer = arch_u32(&r, "block_count", UINT32_MAX, 4096);
    hp->n_embd = arch_u32(&r, "embedding_length", UINT32_MAX, 1u << 16);
    hp->n_ff = arch_u32(&r, "feed_forward_length", UINT32_MAX, 1u << 20);
    hp->n_head = arch_u32(&r, "attention.head_count", UINT32_MAX, 4096);
    hp->n_head_kv = arch_u32(&r, "attention.head_count_kv", hp->n_head, 4096);
    hp->n_ctx_train = arch_u32(&r, "context_length", 2048, 1u << 24);
    if (r.st != ENG_OK)
        return r.st;
    hp->head_dim = arch_u32(&r, "attention.key_length", hp->n_embd / hp->n_head, 4096);
    uint32_t v_len = arch_u32(&r, "attention.value_length", hp->head_dim, 4096);
    hp->n_rot = arch_u32(&r, "rope.dimension_count", hp->head_dim, 4096);
    hp->rms_eps = arch_f32(&r, "attention.layer_norm_rms_epsilon", 1e-5f);
    hp->rope_base = arch_f32(&r, "rope.freq_base", 10000.0f);
    if (r.st != ENG_OK)
        return r.st;
    /* linear scaling: rope.scaling.factor with rope.scaling.type "linear" (or the older
     * rope.scale_linear); other scaling types change the frequencies differently */
    hp->rope_freq_scale = 1.0f;
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", hp->arch_name);
    cmp_gguf_str scaling = {"none", 4};
    cmp_gguf_get_str(m->gguf, key, &scaling);
    float factor = 0.0f;
    if (cmp_gguf_str_eq(scaling, "linear"))
        factor = arch_f32(&r, "rope.scaling.factor", 1.0f);
    else if (!cmp_gguf_str_eq(scaling, "none"))
        return eng_fail(err, err_size, ENG_ERR_UNSUPPORTED,
                        "rope scaling \"%.*s\" is not supported (vkllm does none and linear)",
                        (int)(scaling.len < 32 ? scaling.len : 32), scaling.ptr);
    else
        factor = arch_f32(&r, "rope.scale_linear", 1.0f);
    if (r.st != ENG_OK)
        return r.st;
    hp->rope_freq_scale = 1.0f / factor;
    hp->rope_neox = hp->arch != ENG_ARCH_LLAMA; /* qwen2, qwen3 and gemma */
    hp->act = VKB_ACT_SILU;
    hp->embd_scale = 1.0f;
    hp->attn_scale = 1.0f / sqrtf((float)hp->head_dim);
    hp->rope_base_swa = hp->rope_base;
    hp->rope_freq_scale_swa = hp->rope_freq_scale;
    if (hp->arch >= ENG_ARCH_GEMMA)
        read_gemma(&r, hp);
    if (r.st != ENG_OK)
        return r.st;

    if (v_len != hp->head_dim || hp->n_head % hp->n_head_kv || hp->head_dim % 2 ||
        hp->head_dim > 256 || hp->n_rot % 2 || hp->n_rot > hp->head_dim)
        return eng_fail(err, err_size, ENG_ERR_UNSUPPORTED,
                        "attention shape not supported: %u heads over %u kv heads (must divide), "
                        "head size %u (keys) and %u (values) (equal, even, at most 256), %u "
                        "rotated dimensions",
                        hp->n_head, hp->n_head_kv, hp->head_dim, v_len, hp->n_rot);
    if (hp->n_embd % 8 || ((uint64_t)hp->n_head * hp->head_dim) % 8)
        return eng_fail(err, err_size, ENG_ERR_UNSUPPORTED,
                        "embedding width %u and attention width %u must be multiples of 8",
                        hp->n_embd, hp->n_head * hp->head_dim);
    return ENG_OK;
}

/* ---- tensors ---- */

/* Finds `name` and checks it is k values by `rows` rows; matrices in a type the weight
 * kernels read, vectors (rows 0) in F32. Optional tensors leave out->data NULL. */
static eng_status find_weight(eng_model *m, const char *name, uint32_t k, uint32_t rows,
                              bool optional, eng_weight *out, char *err, size_t err_size)
{
    const cmp_gguf_tensor *t = cmp_gguf_find_tensor(m->gguf, name);
    memset(out, 0, sizeof *out);
    if (!t)
        return optional ? ENG_OK
                        : eng_fail(err, err_size, ENG_ERR_FORMAT, "tensor %s is missing", name);
    bool vector = rows == 0;
    uint32_t want_rows = vector ? 1 : rows;
    bool shape_ok = t->ne[0] == k && t->ne[1] == want_rows && t->ne[2] == 1 && t->ne[3] == 1;
    if (!shape_ok)
        return eng_fail(err, err_size, ENG_ERR_FORMAT,
                        "tensor %s is [%llu, %llu, %llu, %llu], expected [%u, %u]", name,
                        (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                        (unsigned long long)t->ne[2], (unsigned long long)t->ne[3], k, want_rows);
    const cmp_type_info *ti = cmp_type_get((cmp_type)t->type);
    if (vector ? t->type != CMP_TYPE_F32 : (!ti || !vkb_op_type_supported((cmp_type)t->type)))
        return eng_fail(err, err_size, ENG_ERR_UNSUPPORTED,
                        "tensor %s has type %s, which vkllm does not run here (%s)", name,
                        cmp_ggml_type_name(t->type),
                        vector ? "norms and biases must be f32"
                               : "supported: f32 f16 bf16 q4_0 q4_1 q5_0 q5_1 q8_0 q4_K q5_K "
                                 "q6_K iq4_nl");
    snprintf(out->name, sizeof out->name, "%s", name);
    out->type = (cmp_type)t->type;
    out->rows = want_rows;
    out->k = k;
    out->data = t->data;
    out->bytes = t->bytes;
    m->weight_bytes += t->bytes;
    m->params += (uint64_t)k * want_rows;
    return ENG_OK;
}

/* A matrix `name` ("blk.N.X.weight") stored as low-rank factors blk.N.X.lr_a.weight
 * ([k, rank]) and lr_b.weight ([rank, rows]). */
static eng_status find_factors(eng_model *m, const char *name, uint32_t k, uint32_t rows,
                               eng_weight *out, char *err, size_t err_size)
{
    char an[112], bn[112];
    size_t base = strlen(name) - strlen(".weight");
    snprintf(an, sizeof an, "%.*s.lr_a.weight", (int)base, name);
    snprintf(bn, sizeof bn, "%.*s.lr_b.weight", (int)base, name);
    const cmp_gguf_tensor *a = cmp_gguf_find_tensor(m->gguf, an);
    const cmp_gguf_tensor *b = cmp_gguf_find_tensor(m->gguf, bn);
    if (!a || !b)
        return eng_fail(err, err_size, ENG_ERR_FORMAT,
                        "tensor %s is missing (nor are %s and %s "
                        "there, its low-rank factors)",
                        name, an, bn);
    uint32_t rank = (uint32_t)a->ne[1];
    if (rank == 0 || a->ne[1] > UINT32_MAX)
        return eng_fail(err, err_size, ENG_ERR_FORMAT, "%s has %llu rows", an,
                        (unsigned long long)a->ne[1]);
    eng_weight fb;
    eng_status st;
    if ((st = find_weight(m, an, k, rank, false, out, err, err_size)) ||
        (st = find_weight(m, bn, rank, rows, false, &fb, err, err_size)))
        return st;
    /* the product's shape; A's tensor, and B's alongside (parameters: both factors') */
    snprintf(out->name, sizeof out->name, "%s", name);
    out->rows = rows;
    out->rank = rank;
    out->b_type = fb.type;
    out->b_data = fb.data;
    out->b_bytes = fb.bytes;
    return ENG_OK;
}

/* The sizes a layer tensor's dimensions are given in. */
typedef enum dim { DIM_NONE, DIM_EMBD, DIM_Q, DIM_KV, DIM_FF, DIM_HEAD } dim;

/* Architectures as bits: which require a layer tensor, and which read it where the file
 * has it (llama.cpp's llama reads optional biases); the others ignore it. */
#define ARCH(a)   (1u << ENG_ARCH_##a)
#define ALL_ARCHS ((1u << ENG_ARCH_COUNT) - 1)
#define BIASED    (ARCH(LLAMA) | ARCH(QWEN2) | ARCH(QWEN3))

/* Every tensor of a layer: its name after "blk.N.", its k and rows (rows DIM_NONE: an f32
 * vector), which architectures require and which read it, and where it lives in
 * eng_layer_weights and eng_dev_layer. Checking, sizing and uploading all read this. */
static const struct layer_tensor {
    const char *suffix;
    dim k, rows;
    unsigned need, read;
    size_t host, dev;
} layer_tensors[] = {
#define LT(suffix, k, rows, need, read, field)                                                     \
    {                                                                                              \
        suffix, k, rows, need, read, offsetof(eng_layer_weights, field),                           \
            offsetof(eng_dev_layer, field)                                                         \
    }
    LT("attn_norm.weight", DIM_EMBD, DIM_NONE, ALL_ARCHS, 0, attn_norm),
    LT("attn_q.weight", DIM_EMBD, DIM_Q, ALL_ARCHS, 0, wq),
    LT("attn_k.weight", DIM_EMBD, DIM_KV, ALL_ARCHS, 0, wk),
    LT("attn_v.weight", DIM_EMBD, DIM_KV, ALL_ARCHS, 0, wv),
    LT("attn_output.weight", DIM_Q, DIM_EMBD, ALL_ARCHS, 0, wo),
    LT("ffn_norm.weight", DIM_EMBD, DIM_NONE, ALL_ARCHS, 0, ffn_norm),
    LT("ffn_gate.weight", DIM_EMBD, DIM_FF, ALL_ARCHS, 0, gate),
    LT("ffn_up.weight", DIM_EMBD, DIM_FF, ALL_ARCHS, 0, up),
    LT("ffn_down.weight", DIM_FF, DIM_EMBD, ALL_ARCHS, 0, down),
    LT("attn_q.bias", DIM_Q, DIM_NONE, ARCH(QWEN2), BIASED, bq),
    LT("attn_k.bias", DIM_KV, DIM_NONE, ARCH(QWEN2), BIASED, bk),
    LT("attn_v.bias", DIM_KV, DIM_NONE, ARCH(QWEN2), BIASED, bv),
    LT("attn_q_norm.weight", DIM_HEAD, DIM_NONE, ARCH(QWEN3) | ARCH(GEMMA3), 0, q_norm),
    LT("attn_k_norm.weight", DIM_HEAD, DIM_NONE, ARCH(QWEN3) | ARCH(GEMMA3), 0, k_norm),
    LT("post_attention_norm.weight", DIM_EMBD, DIM_NONE, ARCH(GEMMA2) | ARCH(GEMMA3), 0,
       attn_post_norm),
    LT("post_ffw_norm.weight", DIM_EMBD, DIM_NONE, ARCH(GEMMA2) | ARCH(GEMMA3), 0, ffn_post_norm),
#undef LT
};
#define N_LAYER_TENSORS (sizeof layer_tensors / sizeof layer_tensors[0])

/* The size of d in the file, or on the device (where the FFN width is padded to 8). */
static uint32_t dim_size(const eng_model *m, dim d, bool device)
{
    const eng_hparams *hp = &m->hp;
    switch (d) {
    case DIM_EMBD: return hp->n_embd;
    case DIM_Q: return hp->n_head * hp->head_dim;
    case DIM_KV: return hp->n_head_kv * hp->head_dim;
    case DIM_FF: return device ? m->n_ff_pad : hp->n_ff;
    case DIM_HEAD: return hp->head_dim;
    default: return 0;
    }
}

static eng_weight *layer_weight(const eng_model *m, uint32_t l, const struct layer_tensor *t)
{
    return (eng_weight *)((uint8_t *)&m->layers[l] + t->host);
}

/* rope_freqs.weight's divisor of pair i's frequency (the file's mapping need not align
 * its floats) */
static float rope_factor(const eng_model *m, uint32_t i)
{
    float f;
    memcpy(&f, (const float *)m->rope_freqs.data + i, sizeof f);
    return f;
}

static eng_status read_tensors(eng_model *m, char *err, size_t err_size)
{
    const eng_hparams *hp = &m->hp;
    const cmp_gguf_tensor *embd = cmp_gguf_find_tensor(m->gguf, "token_embd.weight");
    if (!embd)
        return eng_fail(err, err_size, ENG_ERR_FORMAT, "tensor token_embd.weight is missing");
    if (embd->ne[1] == 0 || embd->ne[1] > (1u << 24))
        return eng_fail(err, err_size, ENG_ERR_FORMAT, "token_embd.weight has %llu rows",
                        (unsigned long long)embd->ne[1]);
    m->hp.n_vocab = (uint32_t)embd->ne[1];
    uint32_t e = hp->n_embd;
    eng_status st;
    if ((st = find_weight(m, "token_embd.weight", e, hp->n_vocab, false, &m->token_embd, err,
                          err_size)) ||
        (st = find_weight(m, "output_norm.weight", e, 0, false, &m->output_norm, err, err_size)) ||
        (st = find_weight(m, "output.weight", e, hp->n_vocab, true, &m->output, err, err_size)))
        return st;
    m->hp.tied_output = m->output.data == NULL;
    if (m->hp.tied_output)
        m->output = m->token_embd;
    /* Llama 3.1 and 3.2 carry their rope scaling as a divisor of each pair's frequency */
    if ((st = find_weight(m, "rope_freqs.weight", hp->n_rot / 2, 0, true, &m->rope_freqs, err,
                          err_size)))
        return st;
    for (uint32_t i = 0; m->rope_freqs.data && i < hp->n_rot / 2; i++) {
        float f = rope_factor(m, i);
        if (!(f > 0.0f && f < INFINITY))
            return eng_fail(err, err_size, ENG_ERR_FORMAT,
                            "rope_freqs.weight holds %g at %u: frequency factors must be "
                            "positive and finite",
                            (double)f, i);
    }
    m->layers = calloc(hp->n_layer, sizeof *m->layers);
    if (!m->layers)
        return eng_fail(err, err_size, ENG_ERR_HOST_MEMORY, "out of host memory");
    /* the type most of the layers' matrix bytes are in, for reports */
    uint64_t by_type[64] = {0};
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        for (size_t i = 0; i < N_LAYER_TENSORS; i++) {
            const struct layer_tensor *t = &layer_tensors[i];
            bool required = t->need & (1u << hp->arch);
            if (!required && !(t->read & (1u << hp->arch)))
                continue;
            eng_weight *w = layer_weight(m, l, t);
            char name[96];
            snprintf(name, sizeof name, "blk.%u.%s", l, t->suffix);
            uint32_t k = dim_size(m, t->k, false), rows = dim_size(m, t->rows, false);
            bool factorized = t->rows != DIM_NONE && !cmp_gguf_find_tensor(m->gguf, name);
            if (factorized)
                st = find_factors(m, name, k, rows, w, err, err_size);
            else
                st = find_weight(m, name, k, rows, !required, w, err, err_size);
            if (st)
                return st;
            if (t->rows != DIM_NONE)
                by_type[w->type % 64] += w->bytes + w->b_bytes;
        }
        cmp_type down = m->layers[l].down.type;
        if (hp->n_ff % 8 && down != CMP_TYPE_F32 && down != CMP_TYPE_F16 && down != CMP_TYPE_BF16)
            return eng_fail(err, err_size, ENG_ERR_UNSUPPORTED,
                            "feed-forward width %u is not a multiple of 8", hp->n_ff);
    }
    uint32_t best = m->token_embd.type % 64;
    for (uint32_t t = 0; t < 64; t++)
        if (by_type[t] > by_type[best])
            best = t;
    snprintf(m->type_name, sizeof m->type_name, "%s", cmp_ggml_type_name(best));
    return ENG_OK;
}

eng_model *eng_model_open(const char *path, eng_status *st_out, char *err, size_t err_size)
{
    eng_status st = ENG_OK;
    eng_model *m = calloc(1, sizeof *m);
    if (!m) {
        st = eng_fail(err, err_size, ENG_ERR_HOST_MEMORY, "out of host memory");
        goto done;
    }
    char gerr[256] = "";
    cmp_gguf_status gs = cmp_gguf_open(path, &m->gguf, gerr, sizeof gerr);
    if (gs != CMP_GGUF_OK) {
        st = eng_fail(err, err_size,
                      gs == CMP_GGUF_ERR_IO       ? ENG_ERR_IO
                      : gs == CMP_GGUF_ERR_MEMORY ? ENG_ERR_HOST_MEMORY
                                                  : ENG_ERR_FORMAT,
                      "%s", gerr);
        goto done;
    }
    if ((st = read_hparams(m, err, err_size)) != ENG_OK ||
        (st = read_tensors(m, err, err_size)) != ENG_OK)
        goto done;
    char verr[256] = "";
    m->vocab = eng_vocab_load(m->gguf, verr, sizeof verr);
    if (!m->vocab) {
        st = eng_fail(err, err_size, ENG_ERR_FORMAT, "tokenizer: %s", verr);
        goto done;
    }
    if (eng_vocab_size(m->vocab) > m->hp.n_vocab)
        st = eng_fail(err, err_size, ENG_ERR_FORMAT,
                      "the tokenizer has %u tokens but token_embd.weight only %u rows",
                      eng_vocab_size(m->vocab), m->hp.n_vocab);
done:
    if (st_out)
        *st_out = st;
    if (st != ENG_OK) {
        eng_model_close(m);
        return NULL;
    }
    return m;
}

void eng_model_close(eng_model *m)
{
    if (!m)
        return;
    vkb_arena_destroy(m->weights);
    free(m->d_layers);
    eng_vocab_destroy(m->vocab);
    free(m->layers);
    cmp_gguf_close(m->gguf);
    free(m);
}

const eng_hparams *eng_model_hparams(const eng_model *m)
{
    return &m->hp;
}

const eng_vocab *eng_model_vocab(const eng_model *m)
{
    return m->vocab;
}

void eng_model_rope_freqs(const eng_model *m, bool local, float *out)
{
    const eng_hparams *hp = &m->hp;
    if (local) {
        vkb_rope_freqs(out, hp->n_rot, hp->rope_base_swa, hp->rope_freq_scale_swa);
        return;
    }
    vkb_rope_freqs(out, hp->n_rot, hp->rope_base, hp->rope_freq_scale);
    for (uint32_t i = 0; m->rope_freqs.data && i < hp->n_rot / 2; i++)
        out[i] /= rope_factor(m, i);
}

const eng_weight *eng_model_token_embd(const eng_model *m)
{
    return &m->token_embd;
}

const eng_weight *eng_model_output_norm(const eng_model *m)
{
    return &m->output_norm;
}

const eng_weight *eng_model_output(const eng_model *m)
{
    return &m->output;
}

const eng_layer_weights *eng_model_layer(const eng_model *m, uint32_t layer)
{
    return layer < m->hp.n_layer ? &m->layers[layer] : NULL;
}

uint64_t eng_model_weight_bytes(const eng_model *m)
{
    return m->weight_bytes;
}

uint64_t eng_model_param_count(const eng_model *m)
{
    return m->params;
}

const char *eng_model_chat_template(const eng_model *m, size_t *len)
{
    cmp_gguf_str s;
    if (cmp_gguf_get_str(m->gguf, "tokenizer.chat_template", &s) != CMP_GGUF_OK || !s.len) {
        *len = 0;
        return NULL;
    }
    *len = (size_t)s.len;
    return s.ptr;
}

const char *eng_model_type_name(const eng_model *m)
{
    return m->type_name;
}

/* ---- upload ---- */

/* One weight's place on the device: its shape there (the FFN width padded), and where
 * the result goes. */
typedef struct placement {
    const eng_weight *w; /* NULL: nothing to upload (an absent bias, a tied output) */
    eng_dev_weight *dev;
    bool matrix;
    bool fused; /* uploaded as part of a stacked matrix (upload_group) */
    uint32_t k, rows;
} placement;

/* Every weight's placement, the top-level ones first; returns their count
 * (3 + N_LAYER_TENSORS per layer). `out` NULL only counts. */
static uint32_t placements(eng_model *m, placement *out)
{
    uint32_t n = 3 + (uint32_t)N_LAYER_TENSORS * m->hp.n_layer;
    if (!out)
        return n;
    const eng_weight *e = &m->token_embd, *o = &m->output;
    out[0] = (placement){e, &m->d_embd, true, false, e->k, e->rows};
    out[1] = (placement){&m->output_norm, &m->d_output_norm, false, false, m->output_norm.k, 1};
    out[2] = (placement){m->hp.tied_output ? NULL : o, &m->d_output, true, false, o->k, o->rows};
    for (uint32_t l = 0, at = 3; l < m->hp.n_layer; l++)
        for (size_t i = 0; i < N_LAYER_TENSORS; i++) {
            const struct layer_tensor *t = &layer_tensors[i];
            const eng_weight *w = layer_weight(m, l, t);
            out[at++] = (placement){
                w->data ? w : NULL,      (eng_dev_weight *)((uint8_t *)&m->d_layers[l] + t->dev),
                t->rows != DIM_NONE,     false,
                dim_size(m, t->k, true), t->rows != DIM_NONE ? dim_size(m, t->rows, true) : 1};
        }
    return n;
}

/* Device bytes of a placement (a factorized matrix: both factors). */
static uint64_t placement_bytes(const placement *p)
{
    const eng_weight *w = p->w;
    if (p->matrix && w->rank)
        return vkb_matrix_bytes(w->type, p->k, w->rank) +
               vkb_matrix_bytes(w->b_type, w->rank, p->rows);
    return p->matrix ? vkb_matrix_bytes(w->type, p->k, p->rows) : (uint64_t)p->k * 4;
}

typedef struct upload_job {
    eng_model *m;
    eng_progress_fn progress;
    void *user;
    uint64_t done, total;
    char *err;
    size_t err_size;
} upload_job;

/* Writes rows x k values of `type` from data (file_rows x file_k as the file holds them:
 * zero rows after, and zeros after each row's values for f32/f16/bf16, checked at open)
 * into buf at byte `offset`. */
static eng_status write_rows(upload_job *j, const char *name, cmp_type type, const void *data,
                             uint64_t data_bytes, uint32_t file_rows, uint32_t file_k,
                             uint32_t rows, uint32_t k, bool matrix, vkb_buffer *buf,
                             uint64_t offset)
{
    eng_model *m = j->m;
    uint64_t bytes = matrix ? (uint64_t)cmp_row_bytes(type, k) * rows : (uint64_t)k * 4;
    const void *src = data;
    void *padded = NULL;
    if (rows != file_rows || k != file_k) {
        size_t src_row = cmp_row_bytes(type, file_k), dst_row = cmp_row_bytes(type, k);
        padded = calloc(1, bytes);
        if (!padded)
            return eng_fail(j->err, j->err_size, ENG_ERR_HOST_MEMORY, "out of host memory");
        for (uint32_t r = 0; r < file_rows; r++)
            memcpy((uint8_t *)padded + (size_t)r * dst_row,
                   (const uint8_t *)data + (size_t)r * src_row, src_row);
        src = padded;
    }
    vkb_status vs = vkb_buffer_upload(m->dev, buf, offset, src, padded ? bytes : data_bytes);
    free(padded);
    if (vs != VKB_OK)
        return eng_fail(j->err, j->err_size, eng_from_vkb(vs), "uploading %s: %s", name,
                        vkb_device_errmsg(m->dev));
    j->done += data_bytes;
    if (j->progress)
        j->progress(j->done, j->total, j->user);
    return ENG_OK;
}

/* A new weights buffer for rows x k values of `type` (a matrix, else k floats). */
static eng_status alloc_rows(upload_job *j, const char *name, cmp_type type, uint32_t rows,
                             uint32_t k, bool matrix, vkb_buffer **buf)
{
    eng_model *m = j->m;
    uint64_t bytes = matrix ? vkb_matrix_bytes(type, k, rows) : (uint64_t)k * 4;
    uint64_t granule = matrix ? vkb_matrix_granule(type, k) : 0;
    vkb_status vs = vkb_buffer_alloc(m->weights, bytes, granule, buf);
    if (vs != VKB_OK)
        return eng_fail(j->err, j->err_size, eng_from_vkb(vs), "uploading %s: %s", name,
                        vkb_device_errmsg(m->dev));
    return ENG_OK;
}

/* A new buffer of rows x k values of `type` (a matrix, else k floats), from data as
 * write_rows reads it. */
static eng_status upload_rows(upload_job *j, const char *name, cmp_type type, const void *data,
                              uint64_t data_bytes, uint32_t file_rows, uint32_t file_k,
                              uint32_t rows, uint32_t k, bool matrix, vkb_buffer **buf)
{
    eng_status st = alloc_rows(j, name, type, rows, k, matrix, buf);
    if (st != ENG_OK)
        return st;
    return write_rows(j, name, type, data, data_bytes, file_rows, file_k, rows, k, matrix, *buf, 0);
}

static eng_status upload_weight(upload_job *j, const placement *p)
{
    const eng_weight *w = p->w;
    eng_dev_weight *out = p->dev;
    memset(out, 0, sizeof *out);
    if (!w)
        return ENG_OK;
    eng_status st;
    if (p->matrix && w->rank) {
        /* A: rank rows of k (k padded like the matrix's), B: rows (padded) of rank */
        if ((st = upload_rows(j, w->name, w->type, w->data, w->bytes, w->rank, w->k, w->rank, p->k,
                              true, &out->buffer)) ||
            (st = upload_rows(j, w->name, w->b_type, w->b_data, w->b_bytes, w->rows, w->rank,
                              p->rows, w->rank, true, &out->b_buffer)))
            return st;
        out->matrix = (vkb_matrix){out->buffer, w->type, w->rank, p->k};
        out->b = (vkb_matrix){out->b_buffer, w->b_type, p->rows, w->rank};
        out->rank = w->rank;
        return ENG_OK;
    }
    if ((st = upload_rows(j, w->name, w->type, w->data, w->bytes, w->rows, w->k, p->rows, p->k,
                          p->matrix, &out->buffer)))
        return st;
    out->matrix = (vkb_matrix){out->buffer, w->type, p->rows, p->k};
    return ENG_OK;
}

/* Products of a layer that read the same input, uploaded as one matrix (their rows one
 * after the other) where they share a type and none is factorized: the session runs
 * them as one product with an output each (eng_dev_layer.qkv, gate_up). */
static const struct fused_group {
    size_t dev; /* the stacked matrix in eng_dev_layer */
    uint32_t count;
    size_t members[3]; /* in row order */
} fused_groups[] = {
    {offsetof(eng_dev_layer, qkv),
     3,
     {offsetof(eng_dev_layer, wq), offsetof(eng_dev_layer, wk), offsetof(eng_dev_layer, wv)}},
    {offsetof(eng_dev_layer, gate_up),
     2,
     {offsetof(eng_dev_layer, gate), offsetof(eng_dev_layer, up)}},
};
#define N_FUSED_GROUPS (sizeof fused_groups / sizeof fused_groups[0])

/* The placements of group g's members in layer l, where they can be stacked; else false. */
static bool group_members(placement *list, uint32_t l, const struct fused_group *g, placement **out)
{
    for (uint32_t i = 0; i < g->count; i++) {
        out[i] = NULL;
        for (size_t t = 0; t < N_LAYER_TENSORS; t++)
            if (layer_tensors[t].dev == g->members[i])
                out[i] = &list[3 + (size_t)l * N_LAYER_TENSORS + t];
        const eng_weight *w = out[i] ? out[i]->w : NULL;
        if (!w || w->rank || w->type != out[0]->w->type || out[i]->k != out[0]->k)
            return false;
    }
    return true;
}

/* Uploads group g's members (p) of layer l as one matrix. */
static eng_status upload_group(upload_job *j, uint32_t l, const struct fused_group *g,
                               placement *const *p)
{
    eng_model *m = j->m;
    eng_dev_weight *out = (eng_dev_weight *)((uint8_t *)&m->d_layers[l] + g->dev);
    cmp_type type = p[0]->w->type;
    uint32_t k = p[0]->k, rows = 0;
    for (uint32_t i = 0; i < g->count; i++)
        rows += p[i]->rows;
    eng_status st = alloc_rows(j, p[0]->w->name, type, rows, k, true, &out->buffer);
    if (st != ENG_OK)
        return st;
    out->matrix = (vkb_matrix){out->buffer, type, rows, k};
    uint64_t offset = 0;
    for (uint32_t i = 0; i < g->count; i++) {
        const eng_weight *w = p[i]->w;
        st = write_rows(j, w->name, type, w->data, w->bytes, w->rows, w->k, p[i]->rows, k, true,
                        out->buffer, offset);
        if (st != ENG_OK)
            return st;
        *p[i]->dev = (eng_dev_weight){.matrix = {NULL, type, p[i]->rows, k}};
        offset += (uint64_t)cmp_row_bytes(type, k) * p[i]->rows;
    }
    return ENG_OK;
}

/* Layer l's q, k and v biases stacked in one buffer (eng_dev_layer.bqkv) where it has all
 * three: the q, k, v product that rotates and stores (vkb_op_matvec_rope) adds them
 * itself. A copy of a few KiB; the vectors stay for the products run apart. */
static eng_status upload_bias_stack(upload_job *j, const placement *list, uint32_t n, uint32_t l)
{
    eng_dev_layer *L = &j->m->d_layers[l];
    const eng_dev_weight *dev[3] = {&L->bq, &L->bk, &L->bv};
    const placement *p[3] = {NULL};
    uint32_t total = 0;
    for (uint32_t i = 0; i < n; i++)
        for (int b = 0; b < 3; b++)
            if (list[i].dev == dev[b] && list[i].w && dev[b]->buffer)
                p[b] = &list[i];
    for (int b = 0; b < 3; b++) {
        if (!p[b] || p[b]->w->bytes < (uint64_t)p[b]->k * 4)
            return ENG_OK;
        total += p[b]->k;
    }
    float *host = malloc((size_t)total * 4);
    if (!host)
        return eng_fail(j->err, j->err_size, ENG_ERR_HOST_MEMORY, "out of host memory");
    for (int b = 0, at = 0; b < 3; at += p[b]->k, b++)
        memcpy(host + at, p[b]->w->data, (size_t)p[b]->k * 4);
    eng_status st = alloc_rows(j, "attn_qkv.bias", CMP_TYPE_F32, 1, total, false, &L->bqkv.buffer);
    if (st == ENG_OK &&
        vkb_buffer_upload(j->m->dev, L->bqkv.buffer, 0, host, (uint64_t)total * 4) != VKB_OK)
        st = eng_fail(j->err, j->err_size, ENG_ERR_DEVICE_MEMORY, "uploading attn_qkv.bias: %s",
                      vkb_device_errmsg(j->m->dev));
    free(host);
    return st;
}

/* The free bytes of the largest device-local heap under its budget. */
static uint64_t device_free_bytes(vkb_device *dev, uint64_t *budget)
{
    vkb_memory_stats ms;
    const vkb_device_info *info = vkb_device_get_info(dev);
    uint64_t best = 0;
    *budget = 0;
    if (vkb_device_memory_stats(dev, &ms) != VKB_OK)
        return UINT64_MAX;
    for (uint32_t h = 0; h < ms.heap_count && h < info->heap_count; h++) {
        if (!info->heaps[h].device_local)
            continue;
        uint64_t free_b =
            ms.heaps[h].budget > ms.heaps[h].usage ? ms.heaps[h].budget - ms.heaps[h].usage : 0;
        if (free_b > best) {
            best = free_b;
            *budget = ms.heaps[h].budget;
        }
    }
    return best ? best : UINT64_MAX;
}

eng_status eng_model_upload(eng_model *m, vkb_device *dev, eng_progress_fn progress, void *user,
                            char *err, size_t err_size)
{
    if (m->dev)
        return eng_fail(err, err_size, ENG_ERR_ARGUMENT, "the model is already on a device");
    m->n_ff_pad = (m->hp.n_ff + 7) / 8 * 8;
    m->d_layers = calloc(m->hp.n_layer, sizeof *m->d_layers);
    uint32_t n = placements(m, NULL);
    placement *list = malloc(sizeof *list * n);
    if (!m->d_layers || !list) {
        free(list);
        free(m->d_layers);
        m->d_layers = NULL;
        return eng_fail(err, err_size, ENG_ERR_HOST_MEMORY, "out of host memory");
    }
    placements(m, list);
    uint64_t need = 0, budget, avail = device_free_bytes(dev, &budget);
    for (uint32_t i = 0; i < n; i++)
        need += list[i].w ? placement_bytes(&list[i]) : 0;
    eng_status st = ENG_OK;
    if (need > avail) {
        st = eng_fail(err, err_size, ENG_ERR_DEVICE_MEMORY,
                      "the model's weights need %.1f MiB of device memory, but %s has %.1f "
                      "MiB free (budget %.1f MiB): use a smaller or more compressed model",
                      need / 1048576.0, vkb_device_get_info(dev)->name, avail / 1048576.0,
                      budget / 1048576.0);
        goto fail;
    }
    vkb_status vs = eng_arena_create(dev, VKB_PURPOSE_WEIGHTS, need, n, &m->weights);
    if (vs != VKB_OK) {
        st = eng_fail(err, err_size, eng_from_vkb(vs), "weights arena: %s", vkb_device_errmsg(dev));
        goto fail;
    }
    m->dev = dev;
    upload_job j = {m, progress, user, 0, m->weight_bytes, err, err_size};
    for (uint32_t l = 0; l < m->hp.n_layer && st == ENG_OK; l++)
        for (size_t g = 0; g < N_FUSED_GROUPS && st == ENG_OK; g++) {
            placement *members[3] = {NULL};
            if (!group_members(list, l, &fused_groups[g], members))
                continue;
            st = upload_group(&j, l, &fused_groups[g], members);
            for (uint32_t i = 0; i < fused_groups[g].count; i++)
                members[i]->fused = true;
        }
    for (uint32_t i = 0; i < n && st == ENG_OK; i++)
        if (!list[i].fused)
            st = upload_weight(&j, &list[i]);
    for (uint32_t l = 0; l < m->hp.n_layer && st == ENG_OK; l++)
        st = upload_bias_stack(&j, list, n, l);
    if (st != ENG_OK)
        goto fail;
    if (m->hp.tied_output)
        m->d_output = m->d_embd;
    free(list);
    return ENG_OK;
fail:
    free(list);
    vkb_arena_destroy(m->weights);
    m->weights = NULL;
    free(m->d_layers);
    m->d_layers = NULL;
    m->dev = NULL;
    return st;
}
