/* Synthetic models and quantization recipes: llama.cpp's type mix (tensor counts of its
 * Llama-2-7B files), the shape fallback, determinism across thread counts and seeds,
 * files the engine opens with the preset's shapes, and the writer's all-or-nothing
 * file replacement. The GPU forward pass of synthetic models is in test_model. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmp_gguf.h"
#include "cmp_gguf_write.h"
#include "cmp_lowrank.h"
#include "cmp_prune.h"
#include "cmp_quantize_model.h"
#include "cmp_recipe.h"
#include "eng_synth.h"
#include "harness.h"

static void counts_for(const char *preset, const char *recipe, bool pure,
                       uint32_t counts[ENG_SYNTH_TYPES])
{
    eng_synth_params p = {
        .preset = eng_synth_preset_find(preset), .recipe = cmp_recipe_find(recipe), .pure = pure};
    CHECK(p.preset && p.recipe);
    CHECK(eng_synth_type_counts(&p, counts));
}

/* llama.cpp's loader prints these for its Llama-2-7B files: Q4_0 "f32: 65, q4_0: 225,
 * q6_K: 1"; Q4_K_M "f32: 65, q4_K: 193, q6_K: 33"; Q8_0 "f32: 65, q8_0: 226". */
static void test_llama2_7b_mix(void)
{
    uint32_t c[ENG_SYNTH_TYPES];
    counts_for("llama2-7b", "Q4_0", false, c);
    CHECK_MSG(c[CMP_TYPE_F32] == 65 && c[CMP_TYPE_Q4_0] == 225 && c[CMP_TYPE_Q6_K] == 1,
              "Q4_0: f32 %u q4_0 %u q6_K %u", c[CMP_TYPE_F32], c[CMP_TYPE_Q4_0], c[CMP_TYPE_Q6_K]);
    counts_for("llama2-7b", "q4_k_m", false, c);
    CHECK_MSG(c[CMP_TYPE_F32] == 65 && c[CMP_TYPE_Q4_K] == 193 && c[CMP_TYPE_Q6_K] == 33,
              "Q4_K_M: f32 %u q4_K %u q6_K %u", c[CMP_TYPE_F32], c[CMP_TYPE_Q4_K],
              c[CMP_TYPE_Q6_K]);
    counts_for("llama2-7b", "Q8_0", false, c);
    CHECK(c[CMP_TYPE_F32] == 65 && c[CMP_TYPE_Q8_0] == 226);
    counts_for("llama2-7b", "Q4_0", true, c);
    CHECK(c[CMP_TYPE_F32] == 65 && c[CMP_TYPE_Q4_0] == 226 && c[CMP_TYPE_Q6_K] == 0);
}

static void test_recipe_rules(void)
{
    const cmp_recipe *km = cmp_recipe_find("Q4_K_M");
    CHECK(km && km->file_type == 15 && cmp_recipe_find("q4_k") == km);
    CHECK(!cmp_recipe_find("Q3_K_M") && !cmp_recipe_find(""));
    cmp_recipe_model m32 = {32, 1, false};
    /* attn_v gets Q6_K in layers 0-3, 28-31 and every third from 6 */
    static const uint32_t more[] = {0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31};
    for (uint32_t l = 0, k = 0; l < 32; l++) {
        bool want = k < 16 && more[k] == l;
        k += want;
        cmp_type t = cmp_recipe_type(km, &m32, CMP_ROLE_ATTN_V, l, 4096, false);
        CHECK_MSG(t == (want ? CMP_TYPE_Q6_K : CMP_TYPE_Q4_K), "layer %u attn_v %d", l, t);
        CHECK(cmp_recipe_type(km, &m32, CMP_ROLE_ATTN_Q, l, 4096, false) == CMP_TYPE_Q4_K);
    }
    /* the output: Q6_K; Q8_0 when its rows do not fit 256 or the recipe is Q8_0 */
    CHECK(cmp_recipe_type(km, &m32, CMP_ROLE_OUTPUT, 0, 4096, false) == CMP_TYPE_Q6_K);
    CHECK(cmp_recipe_type(km, &m32, CMP_ROLE_OUTPUT, 0, 896, false) == CMP_TYPE_Q8_0);
    CHECK(cmp_recipe_type(cmp_recipe_find("Q8_0"), &m32, CMP_ROLE_OUTPUT, 0, 4096, false) ==
          CMP_TYPE_Q8_0);
    /* a tied embedding is the output; an untied one keeps the base type */
    cmp_recipe_model tied = {24, 7, true};
    CHECK(cmp_recipe_type(km, &tied, CMP_ROLE_TOKEN_EMBD, 0, 2048, false) == CMP_TYPE_Q6_K);
    CHECK(cmp_recipe_type(km, &m32, CMP_ROLE_TOKEN_EMBD, 0, 4096, false) == CMP_TYPE_Q4_K);
    /* the shape fallback */
    CHECK(cmp_recipe_type(km, &m32, CMP_ROLE_ATTN_Q, 0, 896, false) == CMP_TYPE_Q5_0);
    CHECK(cmp_type_fallback(CMP_TYPE_Q5_K, 896) == CMP_TYPE_Q5_1);
    CHECK(cmp_type_fallback(CMP_TYPE_Q6_K, 896) == CMP_TYPE_Q8_0);
    CHECK(cmp_type_fallback(CMP_TYPE_Q4_K, 100) == CMP_TYPE_F16);
    CHECK(cmp_type_fallback(CMP_TYPE_Q4_0, 4096) == CMP_TYPE_Q4_0);
    /* IQ4_NL: Q5_K attn_v with 4+ query heads per KV head, Q5_K early ffn_down */
    const cmp_recipe *nl = cmp_recipe_find("IQ4_NL");
    cmp_recipe_model gqa = {32, 4, false};
    CHECK(cmp_recipe_type(nl, &gqa, CMP_ROLE_ATTN_V, 10, 4096, false) == CMP_TYPE_Q5_K);
    CHECK(cmp_recipe_type(nl, &m32, CMP_ROLE_ATTN_V, 10, 4096, false) == CMP_TYPE_IQ4_NL);
    CHECK(cmp_recipe_type(nl, &m32, CMP_ROLE_FFN_DOWN, 3, 11008, false) == CMP_TYPE_Q5_K);
    CHECK(cmp_recipe_type(nl, &m32, CMP_ROLE_FFN_DOWN, 4, 11008, false) == CMP_TYPE_IQ4_NL);
    /* vectors stay f32; F16 recipes convert every matrix, output included */
    CHECK(cmp_recipe_type(km, &m32, CMP_ROLE_VECTOR, 0, 4096, false) == CMP_TYPE_F32);
    CHECK(cmp_recipe_type(cmp_recipe_find("F16"), &m32, CMP_ROLE_OUTPUT, 0, 4096, false) ==
          CMP_TYPE_F16);
}

static bool write_preset(const char *path, const char *preset, const char *recipe, uint64_t seed,
                         unsigned threads)
{
    eng_synth_params p = {.preset = eng_synth_preset_find(preset),
                          .recipe = cmp_recipe_find(recipe),
                          .seed = seed,
                          .threads = threads};
    char err[256] = "";
    eng_status st = eng_synth_write_file(&p, path, err, sizeof err);
    CHECK_MSG(st == ENG_OK, "synth %s %s: %s", preset, recipe, err);
    return st == ENG_OK;
}

static bool write_tiny(const char *path, const char *recipe, uint64_t seed, unsigned threads)
{
    return write_preset(path, "tiny", recipe, seed, threads);
}

static bool same_file(const char *a, const char *b)
{
    size_t na, nb;
    char *x = t_read_file(a, &na), *y = t_read_file(b, &nb);
    bool same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

static void test_deterministic(void)
{
    char dir[] = "/tmp/vkllm-synth-XXXXXX";
    CHECK(mkdtemp(dir));
    char a[64], b[64], c[64];
    snprintf(a, sizeof a, "%s/a.gguf", dir);
    snprintf(b, sizeof b, "%s/b.gguf", dir);
    snprintf(c, sizeof c, "%s/c.gguf", dir);
    if (write_tiny(a, "Q4_K_M", 7, 1) && write_tiny(b, "Q4_K_M", 7, 3) &&
        write_tiny(c, "Q4_K_M", 8, 2)) {
        CHECK_MSG(same_file(a, b), "one thread and three threads wrote different bytes");
        CHECK_MSG(!same_file(a, c), "seeds 7 and 8 wrote the same bytes");
    }
    unlink(a), unlink(b), unlink(c), rmdir(dir);
}

/* The engine opens every preset-shaped file with the preset's hyper-parameters, and
 * counts the bytes and parameters synth says it wrote. */
static void check_llama3_rope(const char *path, const eng_synth_preset *ps);
static void check_gemma(const eng_model *m, const eng_synth_preset *ps);

static void test_engine_opens(void)
{
    char path[] = "/tmp/vkllm-synth-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    /* the tiny qwen3 in one type: its heads (128) are wider than the width over the heads */
    static const struct {
        const char *preset, *recipe;
    } cases[] = {{"tiny", "Q4_0"},        {"tiny", "Q4_K_M"},       {"tiny", "IQ4_NL"},
                 {"tiny", "BF16"},        {"tiny-qwen3", "Q4_K_M"}, {"tiny-llama3", "Q4_0"},
                 {"tiny-gemma2", "Q8_0"}, {"tiny-gemma3", "Q4_K_M"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *recipe = cases[i].recipe;
        if (!write_preset(path, cases[i].preset, recipe, 1, 0))
            continue;
        char err[256] = "";
        eng_status st;
        eng_model *m = eng_model_open(path, &st, err, sizeof err);
        CHECK_MSG(m, "%s %s: %s", cases[i].preset, recipe, err);
        if (!m)
            continue;
        const eng_synth_preset *ps = eng_synth_preset_find(cases[i].preset);
        eng_synth_params p = {.preset = ps, .recipe = cmp_recipe_find(recipe)};
        const eng_hparams *hp = eng_model_hparams(m);
        CHECK(hp->n_embd == ps->n_embd && hp->n_layer == ps->n_layer && hp->n_head == ps->n_head &&
              hp->n_head_kv == ps->n_head_kv && hp->n_ff == ps->n_ff &&
              hp->n_vocab == ps->n_vocab && hp->rope_base == ps->rope_base &&
              hp->rms_eps == ps->rms_eps && hp->head_dim == eng_synth_head_dim(ps) &&
              hp->arch == ps->arch && hp->rope_neox == (ps->arch != ENG_ARCH_LLAMA) &&
              hp->tied_output == ps->tied_output);
        if (ps->arch >= ENG_ARCH_GEMMA)
            check_gemma(m, ps);
        CHECK(hp->file_type == cmp_recipe_find(recipe)->file_type);
        CHECK_MSG(eng_model_weight_bytes(m) == eng_synth_weight_bytes(&p),
                  "%s %s: engine counts %llu bytes, synth %llu", cases[i].preset, recipe,
                  (unsigned long long)eng_model_weight_bytes(m),
                  (unsigned long long)eng_synth_weight_bytes(&p));
        CHECK(eng_model_param_count(m) == eng_synth_param_count(ps));
        eng_model_close(m);
        if (ps->rope_factor > 0)
            check_llama3_rope(path, ps);
    }
    unlink(path);
}

/* gemma's hyper-parameters as llama.cpp reads them from the file synth wrote: GELU, the
 * embedding scaled by sqrt(n_embd), the norms after the blocks, the window and its layers
 * (gemma 2: every other one from the first; gemma 3: five of each six), soft caps
 * (gemma 2), and gemma 3's local layers rotating at base 10000 unscaled while the global
 * ones take the file's base and linear scaling. */
static void check_gemma(const eng_model *m, const eng_synth_preset *ps)
{
    const eng_hparams *hp = eng_model_hparams(m);
    bool g3 = ps->arch == ENG_ARCH_GEMMA3;
    CHECK_MSG(hp->act == VKB_ACT_GELU && hp->embd_scale == sqrtf((float)ps->n_embd) &&
                  hp->post_norms && hp->n_swa == ps->n_swa &&
                  hp->attn_softcap == ps->attn_softcap && hp->logit_softcap == ps->logit_softcap &&
                  hp->attn_scale == 1.0f / sqrtf((float)eng_synth_head_dim(ps)),
              "%s: gemma's hyper-parameters not as written", ps->name);
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        bool want = g3 ? l % 6 != 5 : l % 2 == 0;
        CHECK_MSG(eng_layer_local(hp, l) == want, "%s: layer %u %s", ps->name, l,
                  want ? "should be local" : "should be global");
    }
    uint32_t half = hp->n_rot / 2;
    float *global = malloc(sizeof *global * half), *local = malloc(sizeof *local * half);
    if (!global || !local) {
        free(global), free(local);
        return;
    }
    eng_model_rope_freqs(m, false, global);
    eng_model_rope_freqs(m, true, local);
    double worst = 0;
    for (uint32_t i = 0; i < half; i++) {
        double scale = ps->rope_linear > 0 ? 1.0 / ps->rope_linear : 1.0;
        double want_g = scale * pow(ps->rope_base, -2.0 * i / hp->n_rot);
        double want_l = g3 ? pow(10000.0, -2.0 * i / hp->n_rot) : want_g;
        double e1 = fabs(global[i] - want_g) / want_g, e2 = fabs(local[i] - want_l) / want_l;
        worst = e1 > worst ? e1 : e2 > worst ? e2 : worst;
    }
    CHECK_MSG(worst < 1e-5, "%s: rope frequencies off by %.2g (relative)", ps->name, worst);
    free(global), free(local);
}

/* Llama 3.1's rope scaling, as Meta's reference computes it: each pair's frequency
 * divided by 1 for wavelengths under 8192/4 positions, by the factor over 8192, by a
 * blend between. The model's frequencies (eng_model_rope_freqs, what the GPU and the CPU
 * reference rotate by) must be those: synth wrote the divisors, the engine applied them. */
static void check_llama3_rope(const char *path, const eng_synth_preset *ps)
{
    char err[256] = "";
    eng_status st;
    eng_model *m = eng_model_open(path, &st, err, sizeof err);
    const eng_hparams *hp = m ? eng_model_hparams(m) : NULL;
    uint32_t half = hp ? hp->n_rot / 2 : 0, scaled = 0, kept = 0;
    float *got = malloc(sizeof *got * (half + 1));
    if (!m || !got) {
        eng_model_close(m);
        free(got);
        return;
    }
    eng_model_rope_freqs(m, false, got);
    double worst = 0;
    for (uint32_t i = 0; i < half; i++) {
        double freq = pow(hp->rope_base, -2.0 * i / hp->n_rot),
               wavelen = 2 * 3.14159265358979 / freq;
        double div = ps->rope_factor;
        if (wavelen < 8192 / 4.0)
            div = 1;
        else if (wavelen <= 8192) {
            double smooth = (8192 / wavelen - 1) / 3;
            div = 1 / ((1 - smooth) / ps->rope_factor + smooth);
        }
        scaled += div == ps->rope_factor;
        kept += div == 1;
        double rel = fabs(got[i] - freq / div) / (freq / div);
        worst = rel > worst ? rel : worst;
    }
    CHECK_MSG(worst < 1e-5, "%s: rope frequencies off by %.2g (relative)", ps->name, worst);
    CHECK_MSG(scaled > 0 && kept > 0, "%s: %u pairs scaled, %u kept: the case tests nothing",
              ps->name, scaled, kept);
    free(got);
    eng_model_close(m);
    /* a file whose factor is 0 (a divide by zero) or negative is refused, naming it */
    cmp_gguf *g = NULL;
    const cmp_gguf_tensor *t = NULL;
    uint64_t at = 0;
    if (cmp_gguf_open(path, &g, err, sizeof err) == CMP_GGUF_OK &&
        (t = cmp_gguf_find_tensor(g, "rope_freqs.weight")))
        at = cmp_gguf_data_offset(g) + t->offset + 4 * (half - 1);
    cmp_gguf_close(g);
    CHECK_MSG(at > 0, "%s: no rope_freqs.weight in %s", ps->name, path);
    static const float bad[] = {0.0f, -8.0f};
    for (int i = 0; at > 0 && i < 2; i++) {
        FILE *f = fopen(path, "r+b");
        CHECK(f && fseek(f, (long)at, SEEK_SET) == 0 && fwrite(&bad[i], 4, 1, f) == 1);
        if (f)
            fclose(f);
        m = eng_model_open(path, &st, err, sizeof err);
        CHECK_MSG(!m && st == ENG_ERR_FORMAT && strstr(err, "rope_freqs.weight holds"),
                  "a factor of %g: %s", (double)bad[i], m ? "opened" : err);
        eng_model_close(m);
    }
}

static bool fail_fill(void *user, void *dst, uint64_t bytes, char *err, size_t err_size)
{
    (void)user, (void)dst, (void)bytes;
    snprintf(err, err_size, "made to fail");
    return false;
}

/* A failed write leaves the file that was there untouched, and no partial file. */
static void test_write_all_or_nothing(void)
{
    char dir[] = "/tmp/vkllm-synth-XXXXXX";
    CHECK(mkdtemp(dir));
    char path[64], partial[80];
    snprintf(path, sizeof path, "%s/m.gguf", dir);
    snprintf(partial, sizeof partial, "%s.partial", path);
    FILE *f = fopen(path, "wb");
    CHECK(f && fputs("precious", f) >= 0 && fclose(f) == 0);
    cmp_gguf_writer *w = cmp_gguf_writer_create();
    uint64_t ne[1] = {8};
    CHECK(cmp_gguf_set_str(w, "general.architecture", "llama"));
    CHECK(cmp_gguf_add_tensor_fill(w, "x", CMP_TYPE_F32, 1, ne, 32, fail_fill, NULL));
    char err[128] = "";
    CHECK(!cmp_gguf_write_file(w, path, err, sizeof err));
    CHECK_MSG(strstr(err, "made to fail"), "error: %s", err);
    size_t n;
    char *text = t_read_file(path, &n);
    CHECK(text && n == 8 && memcmp(text, "precious", 8) == 0);
    CHECK(access(partial, F_OK) != 0);
    free(text);
    cmp_gguf_writer_destroy(w);
    unlink(path), rmdir(dir);
}

/* vkllm quantize's library on stories260K: every metadata pair but the three it sets is
 * copied value for value; vectors byte for byte; Q8_0 matrices are exactly the reference
 * quantizer's bytes; ffn_down (rows of 172) falls back to F16. */
static void test_quantize_model(void)
{
    const char *dir = t_shared_dir();
    if (!dir) {
        t_skip("../shared not found (set VKLLM_SHARED_DIR)");
        return;
    }
    char in[1024], out[] = "/tmp/vkllm-quant-XXXXXX", err[256] = "";
    snprintf(in, sizeof in, "%s/models/stories260K.gguf", dir);
    int fd = mkstemp(out);
    CHECK(fd >= 0);
    close(fd);
    cmp_quantize_params p = {.recipe = cmp_recipe_find("Q8_0"), .threads = 3};
    cmp_quantize_report rep;
    cmp_gguf *a = NULL, *b = NULL;
    if (!cmp_quantize_model(in, out, &p, &rep, err, sizeof err) ||
        cmp_gguf_open(in, &a, err, sizeof err) != CMP_GGUF_OK ||
        cmp_gguf_open(out, &b, err, sizeof err) != CMP_GGUF_OK) {
        t_fail_at(__FILE__, __LINE__, "%s", err);
        goto done;
    }
    uint32_t ft = 0;
    CHECK(cmp_gguf_get_u32(b, "general.file_type", &ft) == CMP_GGUF_OK && ft == 7);
    CHECK(cmp_gguf_find(b, "general.quantization_version"));
    CHECK(cmp_gguf_kv_count(b) == cmp_gguf_kv_count(a) + 2); /* the file had neither */
    for (uint64_t i = 0; i < cmp_gguf_kv_count(a); i++) {
        const cmp_gguf_kv *x = cmp_gguf_kv_at(a, i);
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)x->key.len, x->key.ptr);
        const cmp_gguf_kv *y = cmp_gguf_find(b, key);
        CHECK_MSG(y && y->value.type == x->value.type, "%s missing or retyped", key);
        if (!y || y->value.type != x->value.type)
            continue;
        const cmp_gguf_value *u = &x->value, *v = &y->value;
        bool same = u->type == CMP_GGUF_STRING
                        ? u->s.len == v->s.len && memcmp(u->s.ptr, v->s.ptr, u->s.len) == 0
                    : u->type == CMP_GGUF_ARRAY
                        ? u->arr.count == v->arr.count && u->arr.bytes == v->arr.bytes &&
                              memcmp(u->arr.data, v->arr.data, u->arr.bytes) == 0
                        : u->u == v->u;
        CHECK_MSG(same, "%s changed", key);
    }
    CHECK(rep.count[CMP_TYPE_Q8_0] == 32 && rep.count[CMP_TYPE_F16] == 5 &&
          rep.count[CMP_TYPE_F32] == 11);
    for (uint64_t i = 0; i < cmp_gguf_tensor_count(a); i++) {
        const cmp_gguf_tensor *x = cmp_gguf_tensor_at(a, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)x->name.len, x->name.ptr);
        const cmp_gguf_tensor *y = cmp_gguf_find_tensor(b, name);
        CHECK_MSG(y, "%s missing", name);
        if (!y)
            continue;
        uint64_t n = x->ne[0] * x->ne[1];
        void *want = malloc(y->bytes);
        CHECK(want && cmp_quantize((cmp_type)y->type, (const float *)x->data, want, n));
        CHECK_MSG(want && memcmp(want, y->data, y->bytes) == 0,
                  "%s (%s) is not the reference quantizer's bytes", name,
                  cmp_ggml_type_name(y->type));
        free(want);
    }
done:
    cmp_gguf_close(a);
    cmp_gguf_close(b);
    unlink(out);
}

/* Importance-weighted quantization lowers the weighted error against plain rounding on
 * random blocks with skewed random importances, for the types that use weights: measured
 * 27% lower for Q4_0, 25% for Q5_0, 6.5% for IQ4_NL (whose plain quantizer already
 * searches its scale), 12% for Q4_K, 8% for Q5_K and Q6_K; at least 3% is required. */
static void test_weighted_quantize(void)
{
    const uint64_t n = 32 * 512;
    float *x = t_random_floats(n, 11, -1.f, 1.f), *imp = t_random_floats(n, 12, 0.f, 1.f);
    float *back = malloc(sizeof *back * n);
    uint8_t *q = malloc(n * 2);
    static const cmp_type types[] = {CMP_TYPE_Q4_0, CMP_TYPE_Q5_0, CMP_TYPE_IQ4_NL,
                                     CMP_TYPE_Q4_K, CMP_TYPE_Q5_K, CMP_TYPE_Q6_K};
    for (uint64_t i = 0; imp && i < n; i++)
        imp[i] = imp[i] * imp[i] * imp[i] * 10.0f; /* skewed: a few columns matter */
    for (size_t t = 0; x && imp && back && q && t < sizeof types / sizeof types[0]; t++) {
        double err[2];
        for (int weighted = 0; weighted < 2; weighted++) {
            CHECK(cmp_quantize_weighted(types[t], x, q, n, weighted ? imp : NULL));
            CHECK(cmp_dequantize(types[t], q, back, n));
            err[weighted] = 0;
            for (uint64_t i = 0; i < n; i++)
                err[weighted] += (double)imp[i] * (x[i] - back[i]) * (x[i] - back[i]);
        }
        CHECK_MSG(err[1] < 0.97 * err[0], "%s: weighted error %.4g, plain %.4g",
                  cmp_type_get(types[t])->name, err[1], err[0]);
        printf("  %s: importance-weighted error %.4g vs plain %.4g\n", cmp_type_get(types[t])->name,
               err[1], err[0]);
    }
    CHECK(cmp_type_uses_weights(CMP_TYPE_Q4_0) && !cmp_type_uses_weights(CMP_TYPE_Q8_0));
    free(x), free(imp), free(back), free(q);
}

/* Pruning a row zeroes exactly the requested count, the lowest scores first. */
static void test_prune_rows(void)
{
    float w[2][8] = {{0.5f, -0.1f, 0.3f, -0.9f, 0.05f, 0.7f, -0.2f, 0.4f},
                     {1, 1, 1, 1, 1, 1, 1, 1}};
    float norm[8] = {1, 1, 1, 1, 1, 1, 1, 100};
    /* magnitude, half of each row: -0.1, 0.05, -0.2, 0.3 go; ties (row 2) cut to the count */
    float a[2][8];
    memcpy(a, w, sizeof a);
    CHECK(cmp_prune_rows(&a[0][0], 2, 8, 0.5f, NULL) == 8);
    CHECK(a[0][1] == 0 && a[0][4] == 0 && a[0][6] == 0 && a[0][2] == 0);
    CHECK(a[0][0] == 0.5f && a[0][3] == -0.9f && a[0][5] == 0.7f && a[0][7] == 0.4f);
    /* Wanda: column 7's activations are large, so 0.4 there outranks 0.5 elsewhere */
    memcpy(a, w, sizeof a);
    cmp_prune_rows(&a[0][0], 1, 8, 0.75f, norm);
    CHECK(a[0][7] == 0.4f && a[0][3] == -0.9f && a[0][0] == 0 && a[0][5] == 0);
}

/* Removing attention heads: whole KV groups, the same count per layer; the kept q, k, v
 * rows and attention-output columns are the originals' of the kept groups, byte for byte
 * (F32), everything else untouched; head counts and the head size written; the engine
 * opens the result. */
static const float *tensor_f32(const cmp_gguf *g, const char *fmt, uint32_t l, uint64_t *rows,
                               uint64_t *k)
{
    char name[64];
    snprintf(name, sizeof name, fmt, l);
    const cmp_gguf_tensor *t = cmp_gguf_find_tensor(g, name);
    CHECK_MSG(t && t->type == CMP_TYPE_F32, "%s missing or not F32", name);
    if (!t)
        return NULL;
    *rows = t->n_dims == 1 ? 1 : t->ne[1], *k = t->ne[0];
    return (const float *)t->data;
}

static void test_prune_heads(void)
{
    char dir[] = "/tmp/vkllm-prune-XXXXXX";
    CHECK(mkdtemp(dir));
    char a[64], b[64], err[256] = "";
    snprintf(a, sizeof a, "%s/a.gguf", dir);
    snprintf(b, sizeof b, "%s/b.gguf", dir);
    const eng_synth_preset *ps = eng_synth_preset_find("tiny");
    uint32_t hd = ps->n_embd / ps->n_head, group = ps->n_head / ps->n_head_kv;
    cmp_prune_params p = {.heads_remove = 0.5f, .threads = 1};
    cmp_prune_report *rep = malloc(sizeof *rep);
    cmp_gguf *ga = NULL, *gb = NULL;
    if (!rep || !write_tiny(a, "F32", 3, 1))
        goto done;
    CHECK_MSG(cmp_prune_model(a, b, &p, rep, err, sizeof err), "%s", err);
    CHECK(rep->n_head_before == ps->n_head && rep->n_head_kv_before == ps->n_head_kv);
    uint32_t kv_keep = ps->n_head_kv / 2;
    CHECK(rep->n_head_kv_after == kv_keep && rep->n_head_after == kv_keep * group);
    if (cmp_gguf_open(a, &ga, err, sizeof err) != CMP_GGUF_OK ||
        cmp_gguf_open(b, &gb, err, sizeof err) != CMP_GGUF_OK) {
        t_fail_at(__FILE__, __LINE__, "%s", err);
        goto done;
    }
    CHECK(cmp_gguf_arch_u32(gb, "attention.head_count", 0) == kv_keep * group);
    CHECK(cmp_gguf_arch_u32(gb, "attention.head_count_kv", 0) == kv_keep);
    CHECK(cmp_gguf_arch_u32(gb, "attention.key_length", 0) == hd);
    CHECK(cmp_gguf_arch_u32(gb, "attention.value_length", 0) == hd);
    CHECK(cmp_gguf_tensor_count(ga) == cmp_gguf_tensor_count(gb));
    for (uint32_t l = 0; l < ps->n_layer; l++) {
        uint64_t ra = 0, ka = 0, rb = 0, kb = 0;
        /* which groups were kept: find each kept k head among the original ones */
        const float *ka_w = tensor_f32(ga, "blk.%u.attn_k.weight", l, &ra, &ka);
        const float *kb_w = tensor_f32(gb, "blk.%u.attn_k.weight", l, &rb, &kb);
        if (!ka_w || !kb_w)
            break;
        CHECK(rb == (uint64_t)kv_keep * hd && kb == ka);
        uint32_t kept[8];
        for (uint32_t i = 0; i < kv_keep && i < 8; i++) {
            kept[i] = UINT32_MAX;
            for (uint32_t g = 0; g < ps->n_head_kv; g++)
                if (!memcmp(kb_w + (uint64_t)i * hd * kb, ka_w + (uint64_t)g * hd * ka,
                            sizeof(float) * hd * ka))
                    kept[i] = g;
            CHECK_MSG(kept[i] != UINT32_MAX && (i == 0 || kept[i] > kept[i - 1]),
                      "layer %u: kept k head %u is no original group, or out of order", l, i);
            if (kept[i] == UINT32_MAX)
                goto done;
        }
        const float *va = tensor_f32(ga, "blk.%u.attn_v.weight", l, &ra, &ka);
        const float *vb = tensor_f32(gb, "blk.%u.attn_v.weight", l, &rb, &kb);
        const float *qa = tensor_f32(ga, "blk.%u.attn_q.weight", l, &ra, &ka);
        const float *qb = tensor_f32(gb, "blk.%u.attn_q.weight", l, &rb, &kb);
        CHECK(qa && qb && va && vb && rb == (uint64_t)kv_keep * group * hd);
        for (uint32_t i = 0; qa && qb && va && vb && i < kv_keep; i++) {
            CHECK(!memcmp(vb + (uint64_t)i * hd * kb, va + (uint64_t)kept[i] * hd * ka,
                          sizeof(float) * hd * ka));
            CHECK(!memcmp(qb + (uint64_t)i * group * hd * kb,
                          qa + (uint64_t)kept[i] * group * hd * ka,
                          sizeof(float) * group * hd * ka));
        }
        const float *oa = tensor_f32(ga, "blk.%u.attn_output.weight", l, &ra, &ka);
        const float *ob = tensor_f32(gb, "blk.%u.attn_output.weight", l, &rb, &kb);
        CHECK(oa && ob && rb == ra && kb == (uint64_t)kv_keep * group * hd);
        for (uint64_t r = 0; oa && ob && r < rb; r++)
            for (uint64_t c = 0; c < kb; c++) {
                uint64_t src = (uint64_t)kept[c / (group * hd)] * group * hd + c % (group * hd);
                if (ob[r * kb + c] != oa[r * ka + src]) {
                    t_fail_at(__FILE__, __LINE__,
                              "layer %u: output column %llu is not the kept "
                              "head's",
                              l, (unsigned long long)c);
                    goto done;
                }
            }
        const float *da = tensor_f32(ga, "blk.%u.ffn_down.weight", l, &ra, &ka);
        const float *db = tensor_f32(gb, "blk.%u.ffn_down.weight", l, &rb, &kb);
        CHECK(da && db && ra == rb && ka == kb && !memcmp(da, db, sizeof(float) * ra * ka));
    }
    eng_status st;
    eng_model *m = eng_model_open(b, &st, err, sizeof err);
    CHECK_MSG(m, "the engine refused the pruned model: %s", err);
    if (m) {
        const eng_hparams *hp = eng_model_hparams(m);
        CHECK(hp->n_head == kv_keep * group && hp->n_head_kv == kv_keep && hp->head_dim == hd);
        eng_model_close(m);
    }
done:
    cmp_gguf_close(ga);
    cmp_gguf_close(gb);
    free(rep);
    unlink(a), unlink(b), rmdir(dir);
}

/* The truncated SVD: a matrix of rank 5 comes back from 5 factors (to f32 rounding);
 * singular values of a matrix with known ones (orthogonal rows scaled 9, 4, 1, 0.5);
 * the product of the factors keeps the largest part of a random matrix first. */
static void test_svd(void)
{
    enum { R = 70, K = 50 };
    float *w = malloc(sizeof *w * R * K), *a = malloc(sizeof *a * K * K),
          *b = malloc(sizeof *b * R * K);
    float *u = t_random_floats(R * 5, 11, -1.f, 1.f), *v = t_random_floats(5 * K, 12, -1.f, 1.f);
    double s[K];
    if (!w || !a || !b || !u || !v) {
        t_fail_at(__FILE__, __LINE__, "out of memory");
        goto done;
    }
    for (int i = 0; i < R; i++)
        for (int j = 0; j < K; j++) {
            double d = 0;
            for (int x = 0; x < 5; x++)
                d += (double)u[i * 5 + x] * v[x * K + j];
            w[i * K + j] = (float)d;
        }
    CHECK(cmp_svd_factors(w, R, K, 5, 1, a, b, s));
    double worst = 0, scale = 0;
    for (int i = 0; i < R; i++)
        for (int j = 0; j < K; j++) {
            double d = 0;
            for (int x = 0; x < 5; x++)
                d += (double)b[i * 5 + x] * a[x * K + j];
            worst = fabs(d - w[i * K + j]) > worst ? fabs(d - w[i * K + j]) : worst;
            scale = fabs(w[i * K + j]) > scale ? fabs(w[i * K + j]) : scale;
        }
    CHECK_MSG(worst <= 1e-5 * scale, "rank-5 matrix from 5 factors: worst error %g of %g", worst,
              scale);
    CHECK(s[0] >= s[1] && s[1] >= s[2] && s[2] >= s[3] && s[3] >= s[4] && s[4] > 0);
    /* rows of a scaled orthogonal basis: e_0 9, e_1 4, e_2 1, e_3 0.5 (and a rotation) */
    static const double sv[4] = {9, 4, 1, 0.5};
    memset(w, 0, sizeof *w * R * K);
    for (int i = 0; i < 4; i++) {
        w[(2 * i + 1) * K + 3 * i] = (float)(sv[i] * 0.6);
        w[(2 * i + 1) * K + 3 * i + 1] = (float)(sv[i] * 0.8);
    }
    CHECK(cmp_svd_factors(w, R, K, 4, 2, a, b, s));
    for (int i = 0; i < 4; i++)
        CHECK_MSG(fabs(s[i] - sv[i]) < 1e-5 * sv[0], "singular value %d: %g, want %g", i, s[i],
                  sv[i]);
    CHECK(!cmp_svd_factors(w, R, K, 0, 1, a, b, s) && !cmp_svd_factors(w, R, K, K + 1, 1, a, b, s));
done:
    free(w), free(a), free(b), free(u), free(v);
}

static void test_presets(void)
{
    size_t n;
    const eng_synth_preset *ps = eng_synth_presets(&n);
    CHECK(n >= 6);
    static const char *wanted[] = {"tiny",       "llama-1b",   "llama2-7b",  "llama3-8b",
                                   "qwen2-0.5b", "mistral-7b", "qwen3-0.6b", "qwen3-8b"};
    for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++)
        CHECK_MSG(eng_synth_preset_find(wanted[i]), "no preset %s", wanted[i]);
    for (size_t i = 0; i < n; i++) {
        CHECK(ps[i].n_embd % ps[i].n_head == 0 && ps[i].n_head % ps[i].n_head_kv == 0);
        eng_synth_params p = {.preset = &ps[i], .recipe = cmp_recipe_find("Q4_K_M")};
        CHECK(eng_synth_weight_bytes(&p) > 0);
    }
    /* Llama 2 7B has 6.74 B parameters; Qwen3 0.6B 596 M (its model card: 0.6 B, 0.44 B
     * without the embedding), Qwen3 8B 8.19 B (8.2 B, 6.95 B without the embeddings) */
    uint64_t params = eng_synth_param_count(eng_synth_preset_find("llama2-7b"));
    CHECK_MSG(params == 6738415616ull, "llama2-7b: %llu parameters", (unsigned long long)params);
    const eng_synth_preset *q06 = eng_synth_preset_find("qwen3-0.6b");
    params = eng_synth_param_count(q06);
    uint64_t embd = (uint64_t)q06->n_vocab * q06->n_embd;
    CHECK_MSG(params > 590000000ull && params < 600000000ull && params - embd > 435000000ull &&
                  params - embd < 445000000ull,
              "qwen3-0.6b: %llu parameters", (unsigned long long)params);
}

int main(int argc, char **argv)
{
    static const t_case cases[] = {
        {"llama2_7b_mix", test_llama2_7b_mix, false},
        {"recipe_rules", test_recipe_rules, false},
        {"deterministic", test_deterministic, false},
        {"prune_heads", test_prune_heads, false},
        {"svd", test_svd, false},
        {"engine_opens", test_engine_opens, false},
        {"write_all_or_nothing", test_write_all_or_nothing, false},
        {"presets", test_presets, false},
        {"quantize_model", test_quantize_model, false},
        {"weighted_quantize", test_weighted_quantize, false},
        {"prune_rows", test_prune_rows, false},
    };
    return t_main(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
}
