/* GGUF block formats: sizes, hand-built golden blocks (layout), and the reference
 * quantizers' error on random data. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmp_gguf.h"
#include "cmp_half.h"
#include "cmp_quant.h"
#include "harness.h"

static void test_type_table(void)
{
    static const struct {
        cmp_type t;
        const char *name;
        uint32_t block, bytes;
    } want[] = {
        {CMP_TYPE_F32, "f32", 1, 4},         {CMP_TYPE_F16, "f16", 1, 2},
        {CMP_TYPE_BF16, "bf16", 1, 2},       {CMP_TYPE_Q4_0, "q4_0", 32, 18},
        {CMP_TYPE_Q4_1, "q4_1", 32, 20},     {CMP_TYPE_Q5_0, "q5_0", 32, 22},
        {CMP_TYPE_Q5_1, "q5_1", 32, 24},     {CMP_TYPE_Q8_0, "q8_0", 32, 34},
        {CMP_TYPE_IQ4_NL, "iq4_nl", 32, 18}, {CMP_TYPE_Q4_K, "q4_K", 256, 144},
        {CMP_TYPE_Q5_K, "q5_K", 256, 176},   {CMP_TYPE_Q6_K, "q6_K", 256, 210},
    };
    size_t n;
    cmp_type_list(&n);
    CHECK(n == sizeof want / sizeof want[0]);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const cmp_type_info *t = cmp_type_get(want[i].t);
        CHECK_MSG(t && strcmp(t->name, want[i].name) == 0 && t->block_size == want[i].block &&
                      t->block_bytes == want[i].bytes,
                  "type %d", (int)want[i].t);
        CHECK(cmp_type_find(want[i].name) == t);
    }
    CHECK(cmp_type_find("Q4_k") == cmp_type_get(CMP_TYPE_Q4_K));
    CHECK(cmp_type_find("q3_K") == NULL && cmp_type_get((cmp_type)10) == NULL);
    CHECK(cmp_row_bytes(CMP_TYPE_Q4_0, 4096) == 4096 / 32 * 18);
    CHECK(cmp_row_bytes(CMP_TYPE_Q4_K, 11008) == 11008 / 256 * 144);
    CHECK(cmp_row_bytes(CMP_TYPE_Q4_K, 172) == 0);
    float y[32];
    CHECK(!cmp_dequantize(CMP_TYPE_Q8_0, y, y, 31));
    CHECK(!cmp_quantize((cmp_type)10, y, y, 32));
}

/* Blocks written byte by byte from ggml's documented layouts, decoded by hand. */
static void test_golden_blocks(void)
{
    float y[256];
    /* q4_0, d = 0.5: low nibble j -> x[j] = (j - 8)/2, high nibble 15 - j -> x[j+16] */
    cmp_block_q4_0 q40 = {.d = 0x3800};
    for (int j = 0; j < 16; j++)
        q40.qs[j] = (uint8_t)(j | (15 - j) << 4);
    CHECK(cmp_dequantize(CMP_TYPE_Q4_0, &q40, y, 32));
    for (int j = 0; j < 16; j++) {
        CHECK(y[j] == (float)(j - 8) * 0.5f);
        CHECK(y[j + 16] == (float)(7 - j) * 0.5f);
    }
    /* q5_0, d = 1: qh bit 3 and bit 20 set -> x[3] = (3 | 16) - 16 = 3, x[20] = (qs[4]>>4 | 16) -
     * 16 */
    cmp_block_q5_0 q50 = {.d = 0x3c00, .qh = {0x08, 0x00, 0x10, 0x00}};
    for (int j = 0; j < 16; j++)
        q50.qs[j] = (uint8_t)(j | j << 4);
    CHECK(cmp_dequantize(CMP_TYPE_Q5_0, &q50, y, 32));
    CHECK(y[0] == -16.0f && y[3] == 3.0f && y[4] == -12.0f);
    CHECK(y[20] == 4.0f && y[21] == -11.0f);
    /* q5_1 with m = -2: x = q·d + m */
    cmp_block_q5_1 q51 = {.d = 0x3c00, .m = 0xc000, .qh = {0, 0, 0, 0x80}};
    memset(q51.qs, 0x21, sizeof q51.qs);
    CHECK(cmp_dequantize(CMP_TYPE_Q5_1, &q51, y, 32));
    CHECK(y[0] == -1.0f && y[16] == 0.0f && y[31] == 16.0f + 2.0f - 2.0f);
    /* q8_0, d = 2 */
    cmp_block_q8_0 q80 = {.d = 0x4000};
    for (int j = 0; j < 32; j++)
        q80.qs[j] = (int8_t)(j * 8 - 128);
    CHECK(cmp_dequantize(CMP_TYPE_Q8_0, &q80, y, 32));
    CHECK(y[0] == -256.0f && y[31] == 240.0f);
    /* iq4_nl, d = 1: indices 0 and 15 */
    cmp_block_iq4_nl iq = {.d = 0x3c00};
    memset(iq.qs, 0xf0, sizeof iq.qs);
    CHECK(cmp_dequantize(CMP_TYPE_IQ4_NL, &iq, y, 32));
    CHECK(y[0] == -127.0f && y[16] == 113.0f);
    /* q4_K: sub-block 0 scale 1 min 0; sub-block 5 scale 33 (low 4 bits 1 in byte 9, top
     * 2 bits 2 in byte 1), min 17 (low nibble 1 in byte 9, top bits 1 in byte 5) */
    cmp_block_q4_k q4k = {.d = 0x3c00, .dmin = 0x3c00};
    memset(q4k.scales, 0, sizeof q4k.scales);
    q4k.scales[0] = 1;
    q4k.scales[1] = 2 << 6;
    q4k.scales[5] = 1 << 6;
    q4k.scales[9] = 0x11;
    memset(q4k.qs, 0, sizeof q4k.qs);
    q4k.qs[0] = 0x07;      /* x[0] = 1·7 − 0 */
    q4k.qs[64 + 3] = 0x50; /* sub-block 5 = chunk 2 high nibbles: x[160 + 3] = 33·5 − 17 */
    CHECK(cmp_dequantize(CMP_TYPE_Q4_K, &q4k, y, 256));
    CHECK(y[0] == 7.0f && y[1] == 0.0f);
    CHECK(y[163] == 33.0f * 5.0f - 17.0f && y[162] == -17.0f);
    /* q5_K: same scales, fifth bit of x[160 + 3] is qh[3] bit 5 */
    cmp_block_q5_k q5k = {.d = 0x3c00, .dmin = 0x3c00};
    memcpy(q5k.scales, q4k.scales, sizeof q5k.scales);
    memcpy(q5k.qs, q4k.qs, sizeof q5k.qs);
    memset(q5k.qh, 0, sizeof q5k.qh);
    q5k.qh[3] = 1 << 5;
    CHECK(cmp_dequantize(CMP_TYPE_Q5_K, &q5k, y, 256));
    CHECK(y[0] == 7.0f && y[163] == 33.0f * 21.0f - 17.0f);
    /* q6_K, d = 1, scales 1..16: x[k] = sc[k/16] · (q − 32) */
    cmp_block_q6_k q6k = {.d = 0x3c00};
    for (int j = 0; j < 16; j++)
        q6k.scales[j] = (int8_t)(j + 1);
    memset(q6k.ql, 0, sizeof q6k.ql);
    memset(q6k.qh, 0xaa, sizeof q6k.qh); /* every q = 32 → 0 */
    q6k.ql[5] = 0x31;                    /* x[5]: q low 1; x[64 + 5]: q low 3 */
    q6k.qh[5] = 0x8b;       /* x[5] high 3 → q 49; x[37] 2; x[69] 0 → q 3; x[101] 2 */
    q6k.ql[64 + 40] = 0x0f; /* second half, x[128 + 32 + 8] low 15 */
    CHECK(cmp_dequantize(CMP_TYPE_Q6_K, &q6k, y, 256));
    CHECK(y[5] == 1.0f * 17.0f);           /* sub-block 0 */
    CHECK(y[37] == 0.0f);                  /* q = 32 */
    CHECK(y[69] == 5.0f * (3.0f - 32.0f)); /* sub-block 4 */
    CHECK(y[160 + 8] == 11.0f * 15.0f);    /* sub-block 10 */
    CHECK(y[0] == 0.0f && y[255] == 0.0f);
    /* f16/bf16 rows decode element-wise */
    uint16_t h[2] = {0x3c00, 0xc000};
    CHECK(cmp_dequantize(CMP_TYPE_F16, h, y, 2) && y[0] == 1.0f && y[1] == -2.0f);
    uint16_t bh[2] = {0x3f80, 0xc000};
    CHECK(cmp_dequantize(CMP_TYPE_BF16, bh, y, 2) && y[0] == 1.0f && y[1] == -2.0f);
}

/* Normalized mean squared error, sum (x − y)² / sum x², of quantize → dequantize on
 * bell-shaped data (sum of 4 uniforms, like trained weights). Budgets are about twice the
 * error of uniform rounding with each format's step (step²/12 over the data's variance,
 * with blocks' absmax near 2.5σ), leaving room for the scale's own rounding:
 *   8 bits: 3e-5 → 1e-4;  6 bits: 5e-4 → 1.5e-3;  5 bits: 2e-3 → 5e-3;  4 bits: 8e-3 →
 *   2e-2;  f16: 11 bits → 1e-6;  bf16: 8 bits of mantissa → 2e-5. */
static void test_round_trip_error(void)
{
    static const struct {
        cmp_type t;
        double budget;
    } cases[] = {
        {CMP_TYPE_F32, 0.0},   {CMP_TYPE_F16, 1e-6},    {CMP_TYPE_BF16, 2e-5},
        {CMP_TYPE_Q8_0, 1e-4}, {CMP_TYPE_Q6_K, 1.5e-3}, {CMP_TYPE_Q5_0, 5e-3},
        {CMP_TYPE_Q5_1, 5e-3}, {CMP_TYPE_Q5_K, 5e-3},   {CMP_TYPE_Q4_0, 2e-2},
        {CMP_TYPE_Q4_1, 2e-2}, {CMP_TYPE_Q4_K, 2e-2},   {CMP_TYPE_IQ4_NL, 2e-2},
    };
    const uint64_t n = 256 * 64;
    float *x = malloc(n * 4), *y = malloc(n * 4);
    void *q = malloc(n * 4);
    uint64_t seed = 99;
    for (uint64_t i = 0; x && i < n; i++) {
        float s = 0;
        for (int k = 0; k < 4; k++)
            s += t_rand_float(&seed, -1.f, 1.f);
        /* vary the scale per block of 32 and add an offset to some, as real rows do */
        x[i] = s * (0.01f + 0.05f * (float)((i / 32) % 7)) + ((i / 256) % 3 == 0 ? 0.02f : 0.0f);
    }
    for (size_t c = 0; x && y && q && c < sizeof cases / sizeof cases[0]; c++) {
        const cmp_type_info *t = cmp_type_get(cases[c].t);
        memset(q, 0, n * 4);
        CHECK(cmp_quantize(cases[c].t, x, q, n));
        CHECK(cmp_dequantize(cases[c].t, q, y, n));
        double se = 0, sx = 0;
        for (uint64_t i = 0; i < n; i++) {
            se += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
            sx += (double)x[i] * x[i];
        }
        double nmse = se / sx;
        fprintf(stderr, "  %-7s %6.3f bits/value  nmse %.3g (budget %.3g)\n", t->name,
                8.0 * t->block_bytes / t->block_size, nmse, cases[c].budget);
        CHECK_MSG(nmse <= cases[c].budget, "%s: nmse %.3g over budget %.3g", t->name, nmse,
                  cases[c].budget);
        /* deterministic */
        void *q2 = malloc(n * 4);
        if (q2) {
            memset(q2, 0, n * 4);
            cmp_quantize(cases[c].t, x, q2, n);
            CHECK(memcmp(q, q2, cmp_row_bytes(cases[c].t, n)) == 0);
            free(q2);
        }
    }
    /* all-zero input stays zero */
    float z[256] = {0}, out[256];
    uint8_t buf[256 * 4];
    size_t count;
    const cmp_type_info *all = cmp_type_list(&count);
    for (size_t i = 0; i < count; i++) {
        CHECK(cmp_quantize(all[i].type, z, buf, 256) && cmp_dequantize(all[i].type, buf, out, 256));
        float worst = 0;
        for (int j = 0; j < 256; j++)
            worst = fabsf(out[j]) > worst ? fabsf(out[j]) : worst;
        CHECK_MSG(worst == 0.0f, "%s: zeros decode to %g", all[i].name, (double)worst);
    }
    free(x);
    free(y);
    free(q);
}

/* llama.cpp's own Q8_0 output: TinyStories-656K-Q8_0.gguf was written by llama.cpp's
 * quantizer. Q8_0 of its dequantized values must give its bytes back (d = max|x| / 127 is
 * the stored d again, every q comes back), so every row of every Q8_0 tensor requantized
 * by compress/ equals the file's byte for byte. (Its IQ4_NL sibling is not such a fixed
 * point: the scale search ran on the original values.) */
static void test_llamacpp_q8_0(void)
{
    const char *dir = t_shared_dir();
    if (!dir) {
        t_skip("../shared not found (set VKLLM_SHARED_DIR); this case reads a llama.cpp file");
        return;
    }
    char path[1024], err[256] = "";
    snprintf(path, sizeof path, "%s/models/TinyStories-656K-Q8_0.gguf", dir);
    cmp_gguf *g = NULL;
    if (cmp_gguf_open(path, &g, err, sizeof err) != CMP_GGUF_OK) {
        t_fail_at(__FILE__, __LINE__, "%s", err);
        return;
    }
    uint64_t tensors = 0, rows = 0, differ = 0;
    for (uint64_t i = 0; i < cmp_gguf_tensor_count(g); i++) {
        const cmp_gguf_tensor *t = cmp_gguf_tensor_at(g, i);
        if (t->type != CMP_TYPE_Q8_0)
            continue;
        uint64_t k = t->ne[0], rb = cmp_row_bytes(CMP_TYPE_Q8_0, k);
        float *f = malloc(sizeof *f * k);
        uint8_t *q = malloc(rb);
        for (uint64_t r = 0; f && q && r < t->ne[1]; r++) {
            const uint8_t *src = (const uint8_t *)t->data + r * rb;
            CHECK(cmp_dequantize(CMP_TYPE_Q8_0, src, f, k) && cmp_quantize(CMP_TYPE_Q8_0, f, q, k));
            differ += memcmp(q, src, rb) != 0;
            rows++;
        }
        free(f);
        free(q);
        tensors++;
    }
    CHECK_MSG(tensors == 15 && differ == 0, "%llu of %llu rows in %llu Q8_0 tensors differ",
              (unsigned long long)differ, (unsigned long long)rows, (unsigned long long)tensors);
    cmp_gguf_close(g);
}

int main(int argc, char **argv)
{
    static const t_case cases[] = {
        {"type_table", test_type_table, false},
        {"golden_blocks", test_golden_blocks, false},
        {"round_trip_error", test_round_trip_error, false},
        {"llamacpp_q8_0", test_llamacpp_q8_0, false},
    };
    return t_main(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
}
