/* Synthetic models (see eng_synth.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmp_gguf_write.h"
#include "eng_synth.h"

/* Shapes from the models' published configurations: the sizes in order, then what only
 * some presets have, by name. */
static const eng_synth_preset presets[] = {
#define LLAMA ENG_ARCH_LLAMA
#define QWEN3 ENG_ARCH_QWEN3
    {"tiny", "a 2-layer toy (tests, the correctness gate)", 1024, 1024, 256, 2, 4, 2, 768, 10000.0f,
     1e-5f, false, LLAMA, .head_dim = 0},
    {"smollm-135m", "SmolLM 135M", 49152, 2048, 576, 30, 9, 3, 1536, 10000.0f, 1e-5f, true, LLAMA,
     .head_dim = 0},
    {"qwen2-0.5b", "Qwen2 0.5B (as a llama: no QKV biases)", 151936, 32768, 896, 24, 14, 2, 4864,
     1000000.0f, 1e-6f, true, LLAMA, .head_dim = 0},
    {"llama-1b", "TinyLlama 1.1B", 32000, 2048, 2048, 22, 32, 4, 5632, 10000.0f, 1e-5f, false,
     LLAMA, .head_dim = 0},
    {"llama2-7b", "Llama 2 7B", 32000, 4096, 4096, 32, 32, 32, 11008, 10000.0f, 1e-5f, false, LLAMA,
     .head_dim = 0},
    {"mistral-7b", "Mistral 7B v0.2", 32000, 32768, 4096, 32, 32, 8, 14336, 1000000.0f, 1e-5f,
     false, LLAMA, .head_dim = 0},
    {"llama3-8b", "Llama 3 8B", 128256, 8192, 4096, 32, 32, 8, 14336, 500000.0f, 1e-5f, false,
     LLAMA, .head_dim = 0},
    {"tiny-llama3", "a 2-layer toy, Llama 3.1's rope (tests)", 1024, 131072, 256, 2, 4, 2, 768,
     500000.0f, 1e-5f, false, LLAMA, .rope_factor = 8.0f},
    {"llama3.2-1b", "Llama 3.2 1B", 128256, 131072, 2048, 16, 32, 8, 8192, 500000.0f, 1e-5f, true,
     LLAMA, .rope_factor = 32.0f},
    {"llama3.1-8b", "Llama 3.1 8B", 128256, 131072, 4096, 32, 32, 8, 14336, 500000.0f, 1e-5f, false,
     LLAMA, .rope_factor = 8.0f},
    {"tiny-qwen3", "a 2-layer toy qwen3 (tests; heads of 128)", 1024, 1024, 256, 2, 4, 2, 768,
     1000000.0f, 1e-6f, true, QWEN3, .head_dim = 128},
    {"qwen3-0.6b", "Qwen3 0.6B", 151936, 40960, 1024, 28, 16, 8, 3072, 1000000.0f, 1e-6f, true,
     QWEN3, .head_dim = 128},
    {"qwen3-8b", "Qwen3 8B", 151936, 40960, 4096, 36, 32, 8, 12288, 1000000.0f, 1e-6f, false, QWEN3,
     .head_dim = 128},
    /* gemma: tied embeddings, heads of 256 (the toys': 128); the toys' window of 8 positions
     * is crossed by short prompts, their soft caps bend the scores and logits of random
     * weights */
    {"tiny-gemma2", "a 2-layer toy gemma2 (tests; soft caps 1.5, 3)", 1024, 1024, 256, 2, 4, 2, 768,
     10000.0f, 1e-6f, true, ENG_ARCH_GEMMA2, .head_dim = 128, .n_swa = 8, .attn_softcap = 1.5f,
     .logit_softcap = 3.0f},
    {"gemma2-2b", "Gemma 2 2B", 256000, 8192, 2304, 26, 8, 4, 9216, 10000.0f, 1e-6f, true,
     ENG_ARCH_GEMMA2, .head_dim = 256, .n_swa = 4096, .attn_softcap = 50.0f,
     .logit_softcap = 30.0f},
    {"tiny-gemma3", "a 6-layer toy gemma3 (tests; 5 local layers)", 1024, 1024, 256, 6, 4, 2, 768,
     1000000.0f, 1e-6f, true, ENG_ARCH_GEMMA3, .head_dim = 128, .rope_linear = 8.0f, .n_swa = 8},
    {"gemma3-1b", "Gemma 3 1B", 262144, 32768, 1152, 26, 4, 1, 6912, 1000000.0f, 1e-6f, true,
     ENG_ARCH_GEMMA3, .head_dim = 256, .n_swa = 512},
    {"gemma3-4b", "Gemma 3 4B (its text model)", 262208, 131072, 2560, 34, 8, 4, 10240, 1000000.0f,
     1e-6f, true, ENG_ARCH_GEMMA3, .head_dim = 256, .rope_linear = 8.0f, .n_swa = 1024},
#undef LLAMA
#undef QWEN3
};

#define N_PRESETS (sizeof presets / sizeof presets[0])

const eng_synth_preset *eng_synth_presets(size_t *count)
{
    *count = N_PRESETS;
    return presets;
}

const eng_synth_preset *eng_synth_preset_find(const char *name)
{
    for (size_t i = 0; i < N_PRESETS; i++)
        if (strcasecmp(name, presets[i].name) == 0)
            return &presets[i];
    return NULL;
}

/* ---- the tensor list ---- */

typedef struct synth_tensor {
    char name[64];
    cmp_role role;
    uint32_t layer;
    uint64_t rows, k; /* a vector: rows 1 */
    cmp_type type;
    uint64_t bytes;
    uint64_t id; /* seeds its values */
    struct synth *owner;
} synth_tensor;

typedef struct synth {
    const eng_synth_params *p;
    synth_tensor *t;
    uint32_t n;
    uint64_t done, total; /* bytes, for progress */
} synth;

uint32_t eng_synth_head_dim(const eng_synth_preset *ps)
{
    return ps->head_dim ? ps->head_dim : ps->n_embd / ps->n_head;
}

/* Architectures as bits, for the tensors some of them have. */
#define ARCH_BIT(a) (1u << (a))
#define HEAD_NORMS  (ARCH_BIT(ENG_ARCH_QWEN3) | ARCH_BIT(ENG_ARCH_GEMMA3))
#define POST_NORMS  (ARCH_BIT(ENG_ARCH_GEMMA2) | ARCH_BIT(ENG_ARCH_GEMMA3))
#define EVERY_ARCH  (~0u)

static bool has(const eng_synth_preset *ps, unsigned archs)
{
    return (archs & ARCH_BIT(ps->arch)) != 0;
}

static uint32_t tensor_count(const eng_synth_preset *ps)
{
    uint32_t per_layer = 9 + 2 * has(ps, HEAD_NORMS) + 2 * has(ps, POST_NORMS);
    return 2 + !ps->tied_output + (ps->rope_factor > 0) + per_layer * ps->n_layer;
}

/* The divisor of pair i's rope frequency under Llama 3.1's scaling by `factor`: none for
 * wavelengths under 2048 positions, `factor` over 8192, a smooth blend between. */
static float llama3_rope_factor(const eng_synth_preset *ps, uint32_t i)
{
    const float orig = 8192.0f, low = 1.0f, high = 4.0f, factor = ps->rope_factor;
    uint32_t n_rot = eng_synth_head_dim(ps);
    float wavelen = 2.0f * 3.14159265f * powf(ps->rope_base, 2.0f * (float)i / (float)n_rot);
    if (wavelen < orig / high)
        return 1.0f;
    if (wavelen > orig / low)
        return factor;
    float smooth = (orig / wavelen - low) / (high - low);
    return 1.0f / ((1.0f - smooth) / factor + smooth);
}

static void add(synth *s, const char *name, cmp_role role, uint32_t layer, uint64_t rows,
                uint64_t k)
{
    const eng_synth_preset *ps = s->p->preset;
    cmp_recipe_model rm = {ps->n_layer, ps->n_head / ps->n_head_kv, ps->tied_output};
    synth_tensor *t = &s->t[s->n];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->role = role;
    t->layer = layer;
    t->rows = rows;
    t->k = k;
    t->type = cmp_recipe_type(s->p->recipe, &rm, role, layer, k, s->p->pure);
    t->bytes = rows * cmp_row_bytes(t->type, k);
    t->id = s->n++;
    s->total += t->bytes;
}

/* In llama.cpp's order. False when out of memory. */
static bool build(synth *s, const eng_synth_params *p)
{
    const eng_synth_preset *ps = p->preset;
    *s = (synth){.p = p};
    s->t = calloc(tensor_count(ps), sizeof *s->t);
    if (!s->t)
        return false;
    uint64_t e = ps->n_embd, hd = eng_synth_head_dim(ps), q = hd * ps->n_head,
             kv = hd * ps->n_head_kv, f = ps->n_ff;
    add(s, "token_embd.weight", CMP_ROLE_TOKEN_EMBD, 0, ps->n_vocab, e);
    add(s, "output_norm.weight", CMP_ROLE_VECTOR, 0, 1, e);
    if (!ps->tied_output)
        add(s, "output.weight", CMP_ROLE_OUTPUT, 0, ps->n_vocab, e);
    if (ps->rope_factor > 0)
        add(s, "rope_freqs.weight", CMP_ROLE_VECTOR, 0, 1, hd / 2);
    static const struct {
        const char *name;
        cmp_role role;
        unsigned archs; /* the architectures that have it */
    } per_layer[] = {
        {"attn_norm", CMP_ROLE_VECTOR, EVERY_ARCH},
        {"attn_q", CMP_ROLE_ATTN_Q, EVERY_ARCH},
        {"attn_k", CMP_ROLE_ATTN_K, EVERY_ARCH},
        {"attn_v", CMP_ROLE_ATTN_V, EVERY_ARCH},
        {"attn_output", CMP_ROLE_ATTN_OUTPUT, EVERY_ARCH},
        {"attn_q_norm", CMP_ROLE_VECTOR, HEAD_NORMS},
        {"attn_k_norm", CMP_ROLE_VECTOR, HEAD_NORMS},
        {"post_attention_norm", CMP_ROLE_VECTOR, POST_NORMS},
        {"ffn_norm", CMP_ROLE_VECTOR, EVERY_ARCH},
        {"ffn_gate", CMP_ROLE_FFN_GATE, EVERY_ARCH},
        {"ffn_up", CMP_ROLE_FFN_UP, EVERY_ARCH},
        {"ffn_down", CMP_ROLE_FFN_DOWN, EVERY_ARCH},
        {"post_ffw_norm", CMP_ROLE_VECTOR, POST_NORMS},
    };
    for (uint32_t l = 0; l < ps->n_layer; l++)
        for (size_t i = 0; i < sizeof per_layer / sizeof per_layer[0]; i++) {
            if (!has(ps, per_layer[i].archs))
                continue;
            bool head = per_layer[i].archs == HEAD_NORMS;
            uint64_t rows = 1, k = head ? hd : e;
            switch (per_layer[i].role) {
            case CMP_ROLE_ATTN_Q: rows = q; break;
            case CMP_ROLE_ATTN_OUTPUT: rows = e, k = q; break;
            case CMP_ROLE_ATTN_K:
            case CMP_ROLE_ATTN_V: rows = kv; break;
            case CMP_ROLE_FFN_GATE:
            case CMP_ROLE_FFN_UP: rows = f; break;
            case CMP_ROLE_FFN_DOWN: rows = e, k = f; break;
            default: break;
            }
            char name[64];
            snprintf(name, sizeof name, "blk.%u.%s.weight", l, per_layer[i].name);
            add(s, name, per_layer[i].role, l, rows, k);
        }
    return true;
}

uint64_t eng_synth_param_count(const eng_synth_preset *ps)
{
    uint64_t e = ps->n_embd, hd = eng_synth_head_dim(ps), q = hd * ps->n_head,
             kv = hd * ps->n_head_kv, f = ps->n_ff;
    uint64_t layer = 2 * e + 2 * q * e + 2 * kv * e + 3 * e * f +
                     (has(ps, HEAD_NORMS) ? 2 * hd : 0) + (has(ps, POST_NORMS) ? 2 * e : 0);
    return ps->n_vocab * e * (ps->tied_output ? 1 : 2) + e + ps->n_layer * layer +
           (ps->rope_factor > 0 ? hd / 2 : 0);
}

uint64_t eng_synth_weight_bytes(const eng_synth_params *p)
{
    synth s;
    if (!build(&s, p))
        return 0;
    free(s.t);
    return s.total;
}

bool eng_synth_type_counts(const eng_synth_params *p, uint32_t counts[ENG_SYNTH_TYPES])
{
    synth s;
    memset(counts, 0, sizeof *counts * ENG_SYNTH_TYPES);
    if (!build(&s, p))
        return false;
    for (uint32_t i = 0; i < s.n; i++)
        if ((uint32_t)s.t[i].type < ENG_SYNTH_TYPES)
            counts[s.t[i].type]++;
    free(s.t);
    return true;
}

/* ---- values ---- */

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Row `row` of tensor `id`: near-Gaussian (the sum of four uniforms, unit variance)
 * times sigma. Depends on nothing but the seed, the tensor and the row. */
static void make_row(uint64_t seed, uint64_t id, uint64_t row, float sigma, float *x, uint64_t k)
{
    uint64_t st = seed ^ (id * 0xd1342543de82ef95ull) ^ (row * 0x9e3779b97f4a7c15ull);
    splitmix64(&st);
    const float scale = sigma * 1.7320508f / 65535.0f; /* sqrt(12 / 4): unit variance */
    for (uint64_t i = 0; i < k; i++) {
        uint64_t r = splitmix64(&st);
        uint32_t u = (uint32_t)(r & 0xffff) + (uint32_t)((r >> 16) & 0xffff) +
                     (uint32_t)((r >> 32) & 0xffff) + (uint32_t)(r >> 48);
        x[i] = ((float)u - 2.0f * 65535.0f) * scale;
    }
}

typedef struct fill_job {
    uint64_t seed;
    const synth_tensor *t;
    uint8_t *dst;
    uint64_t row_bytes;
    float sigma;
} fill_job;

/* One row: made in scratch (k floats), quantized into dst. */
static bool fill_row(void *user, uint64_t r, void *scratch)
{
    const fill_job *j = user;
    make_row(j->seed, j->t->id, r, j->sigma, scratch, j->t->k);
    return cmp_quantize(j->t->type, scratch, j->dst + r * j->row_bytes, j->t->k);
}

static bool fill_tensor(void *user, void *dst, uint64_t bytes, char *err, size_t err_size)
{
    const synth_tensor *t = user;
    synth *s = t->owner;
    if (t->role == CMP_ROLE_VECTOR) {
        float *v = dst;
        bool freqs = strcmp(t->name, "rope_freqs.weight") == 0;
        for (uint64_t i = 0; i < t->k; i++)
            v[i] = freqs ? llama3_rope_factor(s->p->preset, (uint32_t)i) : 1.0f;
    } else {
        fill_job j = {.seed = s->p->seed,
                      .t = t,
                      .dst = dst,
                      .row_bytes = bytes / t->rows,
                      .sigma = t->role == CMP_ROLE_TOKEN_EMBD ? 1.0f : 1.0f / sqrtf((float)t->k)};
        if (!cmp_parallel_rows(t->rows, s->p->threads, sizeof(float) * t->k, fill_row, &j)) {
            snprintf(err, err_size, "out of memory making %s", t->name);
            return false;
        }
    }
    s->done += bytes;
    if (s->p->progress)
        s->p->progress(s->done, s->total, s->p->user);
    return true;
}

/* The vocabulary: <unk>, <s>, </s>, the 256 byte tokens, then made-up words "▁w<n>". */
static bool set_vocab(cmp_gguf_writer *w, uint32_t n_vocab)
{
    char **tok = calloc(n_vocab, sizeof *tok);
    float *score = calloc(n_vocab, sizeof *score);
    int32_t *type = calloc(n_vocab, sizeof *type);
    bool ok = tok && score && type;
    for (uint32_t i = 0; ok && i < n_vocab; i++) {
        char buf[32];
        if (i == 0)
            snprintf(buf, sizeof buf, "<unk>"), type[i] = 2;
        else if (i == 1)
            snprintf(buf, sizeof buf, "<s>"), type[i] = 3;
        else if (i == 2)
            snprintf(buf, sizeof buf, "</s>"), type[i] = 3;
        else if (i < 3 + 256)
            snprintf(buf, sizeof buf, "<0x%02X>", i - 3), type[i] = 6;
        else
            snprintf(buf, sizeof buf, "\xe2\x96\x81w%u", i), type[i] = 1;
        score[i] = i < 3 + 256 ? 0.0f : -(float)i;
        ok = (tok[i] = strdup(buf)) != NULL;
    }
    ok = ok && cmp_gguf_set_str(w, "tokenizer.ggml.model", "llama") &&
         cmp_gguf_set_str_array(w, "tokenizer.ggml.tokens", (const char *const *)tok, n_vocab) &&
         cmp_gguf_set_f32_array(w, "tokenizer.ggml.scores", score, n_vocab) &&
         cmp_gguf_set_i32_array(w, "tokenizer.ggml.token_type", type, n_vocab) &&
         cmp_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 1) &&
         cmp_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 2) &&
         cmp_gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", 0) &&
         cmp_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", true) &&
         cmp_gguf_set_bool(w, "tokenizer.ggml.add_eos_token", false);
    for (uint32_t i = 0; tok && i < n_vocab; i++)
        free(tok[i]);
    free(tok);
    free(score);
    free(type);
    return ok;
}

static bool set_metadata(cmp_gguf_writer *w, const eng_synth_params *p)
{
    const eng_synth_preset *ps = p->preset;
    char name[160];
    snprintf(name, sizeof name, "vkllm synthetic %s %s (random weights, seed %llu)", ps->name,
             p->recipe->name, (unsigned long long)p->seed);
    const char *arch = eng_arch_name(ps->arch);
    uint32_t hd = eng_synth_head_dim(ps);
    /* "{arch}.key" = value, u32 (the head size's keys only where the preset sets it) */
    const struct {
        const char *key;
        uint32_t value;
        bool set;
    } u32s[] = {
        {"vocab_size", ps->n_vocab, true},
        {"context_length", ps->n_ctx_train, true},
        {"embedding_length", ps->n_embd, true},
        {"block_count", ps->n_layer, true},
        {"feed_forward_length", ps->n_ff, true},
        {"rope.dimension_count", hd, true},
        {"attention.head_count", ps->n_head, true},
        {"attention.head_count_kv", ps->n_head_kv, true},
        {"attention.key_length", hd, ps->head_dim != 0},
        {"attention.value_length", hd, ps->head_dim != 0},
        {"attention.sliding_window", ps->n_swa, ps->n_swa != 0},
    };
    char key[64];
    bool ok = cmp_gguf_set_str(w, "general.architecture", arch) &&
              cmp_gguf_set_str(w, "general.name", name) &&
              cmp_gguf_set_u32(w, "general.file_type", p->recipe->file_type) &&
              cmp_gguf_set_u32(w, "general.quantization_version", 2);
    for (size_t i = 0; ok && i < sizeof u32s / sizeof u32s[0]; i++) {
        snprintf(key, sizeof key, "%s.%s", arch, u32s[i].key);
        ok = !u32s[i].set || cmp_gguf_set_u32(w, key, u32s[i].value);
    }
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", arch);
    ok = ok && cmp_gguf_set_f32(w, key, ps->rms_eps);
    /* "{arch}.key" = value, f32, where the preset has it */
    const struct {
        const char *key;
        float value;
    } f32s[] = {
        {"rope.freq_base", ps->rope_base},
        {"rope.scaling.factor", ps->rope_linear},
        {"attn_logit_softcapping", ps->attn_softcap},
        {"final_logit_softcapping", ps->logit_softcap},
    };
    for (size_t i = 0; ok && i < sizeof f32s / sizeof f32s[0]; i++) {
        snprintf(key, sizeof key, "%s.%s", arch, f32s[i].key);
        ok = !(f32s[i].value > 0) || cmp_gguf_set_f32(w, key, f32s[i].value);
    }
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    ok = ok && (!(ps->rope_linear > 0) || cmp_gguf_set_str(w, key, "linear"));
    return ok && set_vocab(w, ps->n_vocab);
}

static eng_status write_model(const eng_synth_params *p, FILE *f, const char *path,
                              const char *what, char *err, size_t err_size)
{
    if (!p->preset || !p->recipe) {
        snprintf(err, err_size, "a synthetic model needs a preset and a type");
        return ENG_ERR_ARGUMENT;
    }
    synth s;
    cmp_gguf_writer *w = cmp_gguf_writer_create();
    if (!w || !build(&s, p)) {
        cmp_gguf_writer_destroy(w);
        snprintf(err, err_size, "out of memory");
        return ENG_ERR_HOST_MEMORY;
    }
    bool ok = set_metadata(w, p);
    for (uint32_t i = 0; ok && i < s.n; i++) {
        synth_tensor *t = &s.t[i];
        t->owner = &s;
        uint64_t ne[2] = {t->k, t->rows};
        ok = cmp_gguf_add_tensor_fill(w, t->name, t->type, t->rows > 1 ? 2 : 1, ne, t->bytes,
                                      fill_tensor, t);
    }
    eng_status st = ENG_OK;
    if (!ok) {
        snprintf(err, err_size, "out of memory");
        st = ENG_ERR_HOST_MEMORY;
    } else if (!(f ? cmp_gguf_write_stream(w, f, what, err, err_size)
                   : cmp_gguf_write_file(w, path, err, err_size))) {
        st = ENG_ERR_IO;
    }
    cmp_gguf_writer_destroy(w);
    free(s.t);
    return st;
}

eng_status eng_synth_write_file(const eng_synth_params *p, const char *path, char *err,
                                size_t err_size)
{
    return write_model(p, NULL, path, path, err, err_size);
}

eng_status eng_synth_write_stream(const eng_synth_params *p, FILE *f, const char *what, char *err,
                                  size_t err_size)
{
    return write_model(p, f, NULL, what, err, err_size);
}
