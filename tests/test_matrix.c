/* Weight-matrix kernels (matvec, matmul, get_rows) for every GGUF format against the
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
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmp_half.h"
#include "harness.h"
#include "vkb_ref.h"

static const cmp_type all_types[] = {
    CMP_TYPE_F32,  CMP_TYPE_F16,  CMP_TYPE_BF16, CMP_TYPE_Q4_0, CMP_TYPE_Q4_1, CMP_TYPE_Q5_0,
    CMP_TYPE_Q5_1, CMP_TYPE_Q8_0, CMP_TYPE_Q4_K, CMP_TYPE_Q5_K, CMP_TYPE_Q6_K, CMP_TYPE_IQ4_NL,
};
#define N_TYPES (sizeof all_types / sizeof all_types[0])

static const char *tname(cmp_type t)
{
    return cmp_type_get(t)->name;
}

static uint32_t block_of(cmp_type t)
{
    return cmp_type_get(t)->block_size;
}

/* ---- data ---- */

/* Byte offsets of the half-precision scale fields of a block, and the power of two (as
 * f16 bits) each is set to; the weights are then multiples of 2^-unit_log2. */
struct exact_layout {
    cmp_type type;
    int field[2];
    uint16_t bits[2];
    int unit_log2;
};

static const struct exact_layout exact_layouts[] = {
    {CMP_TYPE_Q4_0, {0, -1}, {0x2C00, 0}, 4},      /* d = 2^-4 */
    {CMP_TYPE_Q4_1, {0, 2}, {0x2C00, 0xB800}, 4},  /* d = 2^-4, m = -1/2 */
    {CMP_TYPE_Q5_0, {0, -1}, {0x2C00, 0}, 4},      /* d = 2^-4 */
    {CMP_TYPE_Q5_1, {0, 2}, {0x2C00, 0xBC00}, 4},  /* d = 2^-4, m = -1 */
    {CMP_TYPE_Q8_0, {0, -1}, {0x2400, 0}, 6},      /* d = 2^-6 */
    {CMP_TYPE_IQ4_NL, {0, -1}, {0x2400, 0}, 6},    /* d = 2^-6 */
    {CMP_TYPE_Q4_K, {0, 2}, {0x1400, 0x1400}, 10}, /* d = dmin = 2^-10 */
    {CMP_TYPE_Q5_K, {0, 2}, {0x1400, 0x1400}, 10}, /* d = dmin = 2^-10 */
    {CMP_TYPE_Q6_K, {208, -1}, {0x0C00, 0}, 12},   /* d = 2^-12 */
    {CMP_TYPE_F32, {-1, -1}, {0, 0}, 4},           /* values k/16 */
    {CMP_TYPE_F16, {-1, -1}, {0, 0}, 4},           {CMP_TYPE_BF16, {-1, -1}, {0, 0}, 4},
};

static const struct exact_layout *exact_layout_of(cmp_type t)
{
    for (size_t i = 0; i < sizeof exact_layouts / sizeof exact_layouts[0]; i++)
        if (exact_layouts[i].type == t)
            return &exact_layouts[i];
    return NULL;
}

/* rows x k weights of type t in GGUF layout, exact kind; *unit_log2 receives the unit. */
static uint8_t *exact_weights(cmp_type t, uint32_t rows, uint32_t k, uint64_t seed, int *unit_log2)
{
    const struct exact_layout *l = exact_layout_of(t);
    size_t bytes = cmp_row_bytes(t, k) * rows;
    uint8_t *w = malloc(bytes + 4);
    if (!w)
        return NULL;
    *unit_log2 = l->unit_log2;
    if (t == CMP_TYPE_F32 || t == CMP_TYPE_F16 || t == CMP_TYPE_BF16) {
        for (size_t i = 0; i < (size_t)rows * k; i++) {
            float v = (float)((int)(t_rand_u64(&seed) % 33) - 16) / 16.0f;
            if (t == CMP_TYPE_F32)
                memcpy(w + 4 * i, &v, 4);
            else {
                uint16_t h = t == CMP_TYPE_F16 ? cmp_f32_to_f16(v) : cmp_f32_to_bf16(v);
                memcpy(w + 2 * i, &h, 2);
            }
        }
        return w;
    }
    t_rand_bytes(&seed, w, bytes);
    uint32_t bb = cmp_type_get(t)->block_bytes;
    for (size_t b = 0; b < bytes / bb; b++)
        for (int f = 0; f < 2; f++)
            if (l->field[f] >= 0)
                memcpy(w + b * bb + l->field[f], &l->bits[f], 2);
    return w;
}

/* n columns of k activations in {-1/2, 0, 1/2}. */
static float *exact_x(uint32_t k, uint32_t n, uint64_t seed)
{
    float *x = malloc((size_t)k * n * sizeof *x);
    for (size_t i = 0; x && i < (size_t)k * n; i++) {
        uint64_t r = t_rand_u64(&seed) % 4;
        x[i] = r == 0 ? -0.5f : r == 1 ? 0.5f : 0.0f;
    }
    return x;
}

/* True when every sum over a row of |w·x| stays below 2^24 units of 2^-(unit_log2+1):
 * then f32 sums in any order are exact. */
static bool exactness_holds(cmp_type t, const uint8_t *w, uint32_t rows, uint32_t k, const float *x,
                            uint32_t n, int unit_log2)
{
    float *row = malloc((size_t)k * sizeof *row);
    double limit = ldexp(1.0, 24 - unit_log2 - 1);
    bool ok = row != NULL;
    for (uint32_t r = 0; ok && r < rows; r++) {
        ok = cmp_dequantize(t, w + cmp_row_bytes(t, k) * r, row, k);
        for (uint32_t c = 0; ok && c < n; c++) {
            double s = 0;
            for (uint32_t i = 0; i < k; i++)
                s += fabs((double)row[i] * x[(size_t)c * k + i]);
            ok = s < limit;
        }
    }
    free(row);
    return ok;
}

/* rows x k random weights in [-1, 1] quantized to t with compress/. */
static uint8_t *quantized_weights(cmp_type t, uint32_t rows, uint32_t k, uint64_t seed)
{
    float *f = t_random_floats((size_t)rows * k, seed, -1.0f, 1.0f);
    uint8_t *w = malloc(cmp_row_bytes(t, k) * rows + 4);
    bool ok = f && w;
    for (uint32_t r = 0; ok && r < rows; r++)
        ok = cmp_quantize(t, f + (size_t)r * k, w + cmp_row_bytes(t, k) * r, k);
    free(f);
    if (!ok) {
        free(w);
        return NULL;
    }
    return w;
}

/* ---- running the ops ---- */

struct fixture {
    vkb_arena *weights, *scratch;
    vkb_stream *stream;
};

static bool setup(struct fixture *f)
{
    memset(f, 0, sizeof *f);
    CHECK_OK(vkb_arena_create(t_dev, VKB_PURPOSE_WEIGHTS, 0, &f->weights));
    CHECK_OK(vkb_arena_create(t_dev, VKB_PURPOSE_SCRATCH, 0, &f->scratch));
    CHECK_OK(vkb_stream_create(t_dev, 0, &f->stream));
    return f->weights && f->scratch && f->stream;
}

static void teardown(struct fixture *f)
{
    vkb_stream_destroy(f->stream);
    vkb_arena_destroy(f->scratch);
    vkb_arena_destroy(f->weights);
}

static bool upload_matrix(struct fixture *f, vkb_matrix *m, cmp_type t, const uint8_t *w,
                          uint32_t rows, uint32_t k)
{
    vkb_arena_reset(f->weights);
    vkb_arena_reset(f->scratch);
    uint64_t bytes = vkb_matrix_bytes(t, k, rows);
    vkb_buffer *b = t_upload(f->weights, NULL, bytes, vkb_matrix_granule(t, k));
    if (!b)
        return false;
    CHECK_OK(vkb_buffer_upload(t_dev, b, 0, w, cmp_row_bytes(t, k) * rows));
    *m = (vkb_matrix){b, t, rows, k};
    return true;
}

enum op { OP_MATVEC, OP_MATMUL };

/* out (n x rows floats) = W x on the GPU; false when something failed (already reported). */
static bool run_matrix_op(struct fixture *f, enum op op, const vkb_matrix *m, const float *x,
                          uint32_t n, float *out)
{
    vkb_buffer *bx = t_upload(f->scratch, x, (uint64_t)n * m->k * 4, 0);
    vkb_buffer *bo = t_upload(f->scratch, NULL, (uint64_t)n * m->rows * 4, 0);
    if (!bx || !bo)
        return false;
    vkb_status st;
    CHECK_OK(vkb_stream_begin(f->stream));
    st = op == OP_MATVEC ? vkb_op_matvec(f->stream, m, bx, bo, n)
                         : vkb_op_matmul(f->stream, m, bx, bo, n);
    CHECK_OK(st);
    CHECK_OK(vkb_stream_submit(f->stream));
    CHECK_OK(vkb_stream_wait(f->stream));
    CHECK_OK(vkb_buffer_download(t_dev, bo, 0, out, (uint64_t)n * m->rows * 4));
    return st == VKB_OK;
}

/* How many of n values differ from want bit for bit; *first (unless NULL): the first that
 * does. */
static size_t bits_differ(const float *got, const float *want, size_t n, size_t *first)
{
    size_t bad = 0;
    for (size_t i = n; i-- > 0;)
        if (memcmp(&got[i], &want[i], 4) != 0) {
            bad++;
            if (first)
                *first = i;
        }
    return bad;
}

/* Error budget of an f32 dot product of k terms against the exact sum: each of at most
 * `depth` sequential roundings (a product, then the adds on the longest chain) adds at
 * most 2^-24 of the running magnitude, itself at most sum |w·x|. matvec's longest chain
 * is k/8 unit sums of an 8-term dot (4 levels) plus the workgroup tree (≤ 8 levels),
 * in the worst case of one invocation per row; matmul adds k products in sequence.
 * Doubled to stay clear of the bound. */
static double accum_budget(enum op op, uint32_t k, double sum_abs)
{
    double depth = op == OP_MATVEC ? k / 8.0 + 12.0 : k + 1.0;
    return 2.0 * depth * ldexp(1.0, -24) * sum_abs;
}

struct shape {
    uint32_t rows, k, n;
};

static const char *op_name(enum op op)
{
    return op == OP_MATVEC ? "matvec" : "matmul";
}

/* One op on one shape and type, exact data: bit-exact with the reference. */
static void check_exact(struct fixture *f, enum op op, cmp_type t, struct shape s, uint64_t seed)
{
    int unit;
    uint8_t *w = exact_weights(t, s.rows, s.k, seed, &unit);
    float *x = exact_x(s.k, s.n, seed + 1);
    size_t outn = (size_t)s.rows * s.n;
    float *got = malloc(outn * 4), *want = malloc(outn * 4);
    vkb_matrix m;
    if (!w || !x || !got || !want || !upload_matrix(f, &m, t, w, s.rows, s.k)) {
        t_fail_at(__FILE__, __LINE__, "setup failed");
    } else {
        CHECK_MSG(exactness_holds(t, w, s.rows, s.k, x, s.n, unit),
                  "test data for %s %u x %u is not exact in f32", tname(t), s.rows, s.k);
        CHECK(vkb_ref_matmul(t, w, s.rows, s.k, x, want, s.n));
        if (run_matrix_op(f, op, &m, x, s.n, got)) {
            size_t first = 0, bad = bits_differ(got, want, outn, &first);
            CHECK_MSG(bad == 0,
                      "%s %s rows=%u k=%u n=%u: %zu of %zu outputs differ; first [col %zu][row "
                      "%zu] = %.9g, want %.9g",
                      op_name(op), tname(t), s.rows, s.k, s.n, bad, outn, first / s.rows,
                      first % s.rows, (double)got[first], (double)want[first]);
        }
    }
    free(w);
    free(x);
    free(got);
    free(want);
}

/* Quantized with compress/, then run: within accum_budget of the reference. */
static void check_quantized(struct fixture *f, enum op op, cmp_type t, struct shape s,
                            uint64_t seed)
{
    uint8_t *w = quantized_weights(t, s.rows, s.k, seed);
    float *x = t_random_floats((size_t)s.k * s.n, seed + 1, -1.0f, 1.0f);
    size_t outn = (size_t)s.rows * s.n;
    float *got = malloc(outn * 4), *want = malloc(outn * 4), *row = malloc(s.k * 4);
    vkb_matrix m;
    if (!w || !x || !got || !want || !row || !upload_matrix(f, &m, t, w, s.rows, s.k)) {
        t_fail_at(__FILE__, __LINE__, "setup failed");
    } else if (vkb_ref_matmul(t, w, s.rows, s.k, x, want, s.n) &&
               run_matrix_op(f, op, &m, x, s.n, got)) {
        size_t bad = 0;
        double worst = 0;
        for (uint32_t r = 0; r < s.rows; r++) {
            cmp_dequantize(t, w + cmp_row_bytes(t, s.k) * r, row, s.k);
            for (uint32_t c = 0; c < s.n; c++) {
                double sum_abs = 0;
                for (uint32_t i = 0; i < s.k; i++)
                    sum_abs += fabs((double)row[i] * x[(size_t)c * s.k + i]);
                double err =
                    fabs((double)got[(size_t)c * s.rows + r] - want[(size_t)c * s.rows + r]);
                double budget = accum_budget(op, s.k, sum_abs);
                bad += !(err <= budget);
                if (budget > 0 && err / budget > worst)
                    worst = err / budget;
            }
        }
        CHECK_MSG(bad == 0, "%s %s rows=%u k=%u n=%u: %zu outputs outside the budget (worst %.2fx)",
                  op_name(op), tname(t), s.rows, s.k, s.n, bad, worst);
    }
    free(w);
    free(x);
    free(got);
    free(want);
    free(row);
}

/* k values in whole blocks near `want`. */
static uint32_t k_for(cmp_type t, uint32_t want)
{
    uint32_t b = block_of(t) < 8 ? 8 : block_of(t);
    return want < b ? b : want / b * b;
}

static void test_matvec(void)
{
    struct fixture f;
    if (!setup(&f))
        return;
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        cmp_type t = all_types[ti];
        uint32_t kb = k_for(t, 1);
        const struct shape shapes[] = {
            {1, kb, 1},    {7, 3 * kb, 1}, {4097, k_for(t, 512), 1}, {7, 11008, 2},
            {3, 14336, 1}, {1, 11008, 8},  {33, k_for(t, 24), 3},
        };
        /* Under the capped profiles what changes is the reduction, the same code for every
         * format, and each column count is another pipeline for lavapipe to compile (a
         * second or more): there the extra counts run for one format in four. */
        bool capped = t_profile != VKB_PROFILE_NATIVE && ti % 4 != 0;
        fprintf(stderr, "  %s\n", vkb_op_matvec_variant(t_dev, t));
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
            if (!capped || shapes[i].n == 1)
                check_exact(&f, OP_MATVEC, t, shapes[i], 1000 * ti + i);
        /* every column count on one shape, for a format of each family (each count is a
         * pipeline to compile: lavapipe takes a while); the shapes above cover 1, 2, 3, 8 */
        bool all_counts =
            !capped && (t == CMP_TYPE_F16 || t == CMP_TYPE_Q4_0 || t == CMP_TYPE_Q4_K);
        for (uint32_t n = 4; all_counts && n <= 7; n++)
            check_exact(&f, OP_MATVEC, t, (struct shape){33, k_for(t, 512), n}, 2000 * ti + n);
        check_quantized(&f, OP_MATVEC, t, (struct shape){65, k_for(t, 4096), capped ? 1 : 2},
                        3000 * ti);
    }
    teardown(&f);
}

/* The staged matvec (rows copied to shared memory with wide loads, then decoded there),
 * forced on for every quantized format: bit-exact like the in-place kernel, with a small
 * workgroup and an odd row count (many chunks, partial last chunks, rows starting on a
 * half word) and with the default-sized one. */
static void test_matvec_staged(void)
{
    struct fixture f;
    if (!setup(&f))
        return;
    static const vkb_matvec_tuning tunings[] = {
        {.wg = 16, .rows = 3, .staged = true, .int_dot = -1},
        {.wg = 64, .rows = 2, .staged = true, .int_dot = -1}};
    for (size_t u = 0; u < 2; u++) {
        vkb_op_matvec_tune(t_dev, &tunings[u]);
        for (size_t ti = 0; ti < N_TYPES; ti++) {
            cmp_type t = all_types[ti];
            if (t == CMP_TYPE_F32 || t == CMP_TYPE_F16 || t == CMP_TYPE_BF16)
                continue;
            if (vkb_op_matvec_plan(t_dev, t, 1).staged != true) {
                t_skip("the device cannot run the staged matvec (subgroup arithmetic)");
                goto done;
            }
            uint32_t kb = k_for(t, 1);
            const struct shape shapes[] = {
                {1, kb, 1}, {7, 3 * kb, 1}, {33, k_for(t, 4096), 1}, {5, 11008, 3}};
            for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
                check_exact(&f, OP_MATVEC, t, shapes[i], 7000 + 100 * u + 10 * ti + i);
        }
    }
done:
    vkb_op_matvec_tune(t_dev, NULL);
    teardown(&f);
}

/* The lanes matvec (each invocation owns whole rows, x broadcast across the subgroup: the
 * CPU drivers' choice) with 1, 3 and 4 rows per invocation, and the subgroup-wide kernel
 * it replaced there: bit-exact for every format, with rows that do not fill the last
 * workgroup, k with a tail past the last 32 values (float formats), several columns. */
static void test_matvec_lanes(void)
{
    struct fixture f;
    if (!setup(&f))
        return;
    static const vkb_matvec_tuning tunings[] = {
        {.wg = 1, .rows = 1, .int_dot = -1, .lanes = true},
        {.wg = 1, .rows = 3, .int_dot = -1, .lanes = true},
        {.wg = 1, .rows = 4, .int_dot = -1, .lanes = true},
        {.wg = 8, .rows = 4, .int_dot = -1},
    };
    for (size_t u = 0; u < sizeof tunings / sizeof tunings[0]; u++) {
        vkb_op_matvec_tune(t_dev, &tunings[u]);
        if (vkb_op_matvec_plan(t_dev, CMP_TYPE_Q4_0, 1).lanes != tunings[u].lanes) {
            t_skip("the device cannot run the lanes matvec (a CPU driver with subgroup "
                   "broadcasts of 8 or more invocations)");
            break;
        }
        for (size_t ti = 0; ti < N_TYPES; ti++) {
            cmp_type t = all_types[ti];
            uint32_t kb = k_for(t, 1);
            const struct shape shapes[] = {
                {1, kb, 1}, {7, k_for(t, 24), 1}, {45, 3 * kb, 3}, {37, 11008, 1}};
            for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
                check_exact(&f, OP_MATVEC, t, shapes[i], 8000 + 100 * u + 10 * ti + i);
        }
    }
    vkb_op_matvec_tune(t_dev, NULL);
    teardown(&f);
}

/* Integer-dot-product matvec, forced on (lavapipe has the instructions but does not
 * accelerate them). First x's 8-bit blocks: the GPU's bit for bit vkb_ref_quantize_q8's
 * (quantize_q8.comp uses only exact or correctly rounded steps). Then the product of the GPU's own
 * blocks against the f64 product of the values they stand for (vkb_ref_dequantize_q8): only f32
 * rounding left, the accum_budget over sum |w · x'|; and against the exact-x product: within the
 * blocks' rounding, sum |w| · d / 2 per block, plus that. */
/* Value i of block b in 8-bit blocks (vkb_q8.glsl: every block's bytes, then d and s). */
static int q8_value(const uint32_t *xq, size_t b, int i)
{
    return (int8_t)(uint8_t)(xq[8 * b + i / 4] >> (8 * (i % 4)));
}

/* Word w (0: d, 1: s) of block b of `blocks`. */
static uint32_t q8_scale_word(const uint32_t *xq, size_t blocks, size_t b, int w)
{
    return xq[8 * blocks + 2 * b + w];
}

/* The device's plan for `t` with integer dot products on (1) or off (-1) and rows staged
 * or not (the plan drops staging where the device cannot); vkb_op_matvec_tune(t_dev,
 * NULL) gives the built-in choice back. */
static void force_path(cmp_type t, uint32_t ncols, int int_dot, bool staged)
{
    vkb_matvec_tuning tune = vkb_op_matvec_plan(t_dev, t, ncols);
    tune.int_dot = int_dot;
    tune.staged = staged;
    vkb_op_matvec_tune(t_dev, &tune);
}

/* x quantized to 8-bit blocks on the GPU (bit-exact with vkb_ref_quantize_q8), then the
 * integer-dot product (matvec up to 8 columns, matmul beyond) against W times x as
 * quantized, and against W·x within x's rounding. */
static void check_int_dot(struct fixture *f, cmp_type t, struct shape sh, uint64_t seed)
{
    bool matmul = sh.n > 8;
    const char *op = matmul ? "matmul_q8" : "matvec_q8";
    uint8_t *w = quantized_weights(t, sh.rows, sh.k, seed);
    float *x = t_random_floats((size_t)sh.k * sh.n, seed + 1, -1.0f, 1.0f);
    uint64_t qb = vkb_q8_bytes(sh.k, sh.n);
    uint32_t *got_q = malloc(qb), *want_q = malloc(qb);
    size_t outn = (size_t)sh.rows * sh.n;
    float *got = malloc(outn * 4), *want = malloc(outn * 4), *exact = malloc(outn * 4);
    float *xr = malloc((size_t)sh.k * sh.n * 4), *row = malloc((size_t)sh.k * 4);
    vkb_matrix m;
    if (!w || !x || !got_q || !want_q || !got || !want || !exact || !xr || !row ||
        !upload_matrix(f, &m, t, w, sh.rows, sh.k)) {
        t_fail_at(__FILE__, __LINE__, "setup failed");
        goto out;
    }
    vkb_buffer *bx = t_upload(f->scratch, x, (uint64_t)sh.k * sh.n * 4, 0);
    vkb_buffer *bq = t_upload(f->scratch, NULL, qb, 0);
    vkb_buffer *bo = t_upload(f->scratch, NULL, outn * 4, 0);
    if (!bx || !bq || !bo)
        goto out;
    vkb_outputs outs = {1, {bo}, {sh.rows}};
    CHECK_OK(vkb_stream_begin(f->stream));
    CHECK_OK(vkb_op_quantize_q8(f->stream, bq, bx, sh.k, sh.n));
    CHECK_OK(matmul ? vkb_op_matmul_q8_split(f->stream, &m, bq, &outs, sh.n)
                    : vkb_op_matvec_q8(f->stream, &m, bq, bo, sh.n));
    CHECK_OK(vkb_stream_submit(f->stream));
    CHECK_OK(vkb_stream_wait(f->stream));
    CHECK_OK(vkb_buffer_download(t_dev, bq, 0, got_q, qb));
    CHECK_OK(vkb_buffer_download(t_dev, bo, 0, got, outn * 4));
    vkb_ref_quantize_q8(x, sh.k, sh.n, want_q);
    size_t bad_q = 0, blocks = (size_t)sh.n * sh.k / 32;
    for (size_t b = 0; b < blocks; b++) {
        for (int i = 0; i < 32; i++)
            bad_q += q8_value(got_q, b, i) != q8_value(want_q, b, i);
        for (int j = 0; j < 2; j++)
            bad_q += q8_scale_word(got_q, blocks, b, j) != q8_scale_word(want_q, blocks, b, j);
    }
    CHECK_MSG(bad_q == 0, "quantize_q8 %u x %u: %zu values off", sh.k, sh.n, bad_q);
    vkb_ref_dequantize_q8(got_q, sh.k, sh.n, xr);
    CHECK(vkb_ref_matmul(t, w, sh.rows, sh.k, xr, want, sh.n));
    CHECK(vkb_ref_matmul(t, w, sh.rows, sh.k, x, exact, sh.n));
    size_t bad = 0, bad_exact = 0;
    for (uint32_t r = 0; r < sh.rows; r++) {
        cmp_dequantize(t, w + cmp_row_bytes(t, sh.k) * r, row, sh.k);
        for (uint32_t c = 0; c < sh.n; c++) {
            double sum_abs = 0, rounding = 0;
            for (uint32_t i = 0; i < sh.k; i++) {
                size_t xi = (size_t)c * sh.k + i;
                sum_abs += fabs((double)row[i] * xr[xi]);
                float d;
                uint32_t dw = q8_scale_word(got_q, blocks, xi / 32, 0);
                memcpy(&d, &dw, 4);
                rounding += fabs((double)row[i]) * d * 0.5;
            }
            size_t o = (size_t)c * sh.rows + r;
            /* integer sums are exact; each block adds a few roundings of its scaled sum */
            double budget = 4.0 * accum_budget(OP_MATVEC, sh.k, sum_abs);
            bad += !(fabs((double)got[o] - want[o]) <= budget);
            bad_exact += !(fabs((double)got[o] - exact[o]) <= rounding * 1.01 + budget);
        }
    }
    CHECK_MSG(bad == 0, "%s %s rows=%u k=%u n=%u: %zu outputs outside the budget", op, tname(t),
              sh.rows, sh.k, sh.n, bad);
    CHECK_MSG(bad_exact == 0,
              "%s %s rows=%u k=%u n=%u: %zu outputs further from W·x than x's rounding allows", op,
              tname(t), sh.rows, sh.k, sh.n, bad_exact);
out:
    free(w);
    free(x);
    free(got_q);
    free(want_q);
    free(got);
    free(want);
    free(exact);
    free(xr);
    free(row);
}

/* The integer-dot matvec's formats; the matmul takes the first two. */
static const cmp_type int_dot_types[] = {CMP_TYPE_Q4_0, CMP_TYPE_Q8_0, CMP_TYPE_Q4_K, CMP_TYPE_Q5_K,
                                         CMP_TYPE_Q6_K};

/* The integer-dot products forced on (the device may not accelerate them). */
static bool int_dot_setup(struct fixture *f)
{
    if (!vkb_device_get_info(t_dev)->int_dot) {
        t_skip("the device has no integer dot products");
        return false;
    }
    if (!setup(f))
        return false;
    force_path(CMP_TYPE_Q4_0, 1, 1, false);
    return true;
}

static void test_matvec_int_dot(void)
{
    struct fixture f;
    if (!int_dot_setup(&f))
        return;
    static const struct shape shapes[] = {{1, 32, 1},    {7, 96, 3},    {4097, 512, 1},
                                          {7, 11008, 2}, {3, 14336, 1}, {33, 4096, 8},
                                          {65, 256, 5},  {2, 768, 7}};
    for (size_t ti = 0; ti < sizeof int_dot_types / sizeof int_dot_types[0]; ti++) {
        cmp_type t = int_dot_types[ti];
        fprintf(stderr, "  %s\n", vkb_op_matvec_variant(t_dev, t));
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
            if (shapes[si].k % cmp_type_get(t)->block_size == 0) /* q4_K: blocks of 256 */
                check_int_dot(&f, t, shapes[si], 5000 + 100 * ti + si);
    }
    vkb_op_matvec_tune(t_dev, NULL);
    teardown(&f);
}

/* matmul_int_dot.comp: tiles cut short in rows, columns and K (two blocks a step). */
static void test_matmul_int_dot(void)
{
    struct fixture f;
    if (!int_dot_setup(&f))
        return;
    bool heavy = t_profile == VKB_PROFILE_NATIVE;
    static const struct shape shapes[] = {{1, 32, 9},      {7, 96, 33},    {65, 512, 17},
                                          {70, 11008, 12}, {4097, 64, 10}, {40, 4096, 512}};
    vkb_coopmat_mode was = vkb_op_coopmat_mode(t_dev, VKB_COOPMAT_OFF);
    for (size_t ti = 0; ti < 2; ti++) {
        fprintf(stderr, "  %s\n", vkb_op_matmul_variant(t_dev, int_dot_types[ti]));
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
            if (heavy || shapes[si].n < 512)
                check_int_dot(&f, int_dot_types[ti], shapes[si], 5500 + 100 * ti + si);
    }
    /* the tiles other devices get (matmul_int_dot_spec), and odd ones (K by TK / 32 blocks) */
    static const vkb_matmul_tuning tiles[] = {
        {64, 64, 64, 4, 4}, {32, 32, 64, 4, 4}, {64, 64, 128, 8, 4}, {16, 64, 32, 2, 8}};
    const vkb_device_info *info = vkb_device_get_info(t_dev);
    for (size_t i = 0; i < sizeof tiles / sizeof tiles[0]; i++) {
        if (vkb_matmul_tuning_wg(&tiles[i]) > info->max_workgroup_invocations)
            continue;
        vkb_op_matmul_tune(t_dev, &tiles[i]);
        fprintf(stderr, "  %ux%ux%u/%ux%u\n", tiles[i].tm, tiles[i].tn, tiles[i].tk, tiles[i].rm,
                tiles[i].rn);
        for (size_t ti = 0; ti < 2; ti++)
            for (size_t si = 0; si < 4; si++)
                check_int_dot(&f, int_dot_types[ti], shapes[si], 5800 + 100 * i + 10 * ti + si);
    }
    vkb_op_matmul_tune(t_dev, NULL);
    vkb_op_coopmat_mode(t_dev, was);
    vkb_op_matvec_tune(t_dev, NULL);
    teardown(&f);
}

/* y += W·x (the residual add fused into the product): exactly y + the product the
 * plain op writes, for the float path (in place and staged), and for the integer-dot path
 * where the device has it. */
static void test_matvec_add(void)
{
    struct fixture f;
    if (!setup(&f))
        return;
    static const struct {
        cmp_type t;
        int int_dot; /* vkb_matvec_tuning.int_dot */
        bool staged;
    } cases[] = {{CMP_TYPE_F32, -1, false}, {CMP_TYPE_Q4_0, -1, false}, {CMP_TYPE_Q4_K, -1, true},
                 {CMP_TYPE_Q4_0, 1, false}, {CMP_TYPE_Q8_0, 1, false},  {CMP_TYPE_Q4_K, 1, false},
                 {CMP_TYPE_Q6_K, 1, false}, {CMP_TYPE_Q5_K, 1, false}};
    const struct shape sh = {65, 512, 2};
    size_t outn = (size_t)sh.rows * sh.n;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cmp_type t = cases[i].t;
        if (cases[i].int_dot > 0 && !vkb_device_get_info(t_dev)->int_dot)
            continue;
        force_path(t, sh.n, cases[i].int_dot, cases[i].staged);
        uint8_t *w = quantized_weights(t, sh.rows, sh.k, 7000 + i);
        float *x = t_random_floats((size_t)sh.k * sh.n, 7100 + i, -1.0f, 1.0f);
        float *y0 = t_random_floats(outn, 7200 + i, -4.0f, 4.0f);
        float *plain = malloc(outn * 4), *added = malloc(outn * 4);
        vkb_matrix m;
        if (!w || !x || !y0 || !plain || !added || !upload_matrix(&f, &m, t, w, sh.rows, sh.k)) {
            t_fail_at(__FILE__, __LINE__, "setup failed");
            goto next;
        }
        vkb_buffer *bx = t_upload(f.scratch, x, (uint64_t)sh.k * sh.n * 4, 0);
        vkb_buffer *bq = t_upload(f.scratch, NULL, vkb_q8_bytes(sh.k, sh.n), 0);
        vkb_buffer *bp = t_upload(f.scratch, NULL, outn * 4, 0);
        vkb_buffer *by = t_upload(f.scratch, y0, outn * 4, 0);
        if (!bx || !bq || !bp || !by)
            goto next;
        CHECK_OK(vkb_stream_begin(f.stream));
        if (cases[i].int_dot > 0) {
            CHECK_OK(vkb_op_quantize_q8(f.stream, bq, bx, sh.k, sh.n));
            CHECK_OK(vkb_op_matvec_q8(f.stream, &m, bq, bp, sh.n));
            CHECK_OK(vkb_op_matvec_q8_add(f.stream, &m, bq, by, sh.n));
        } else {
            CHECK_OK(vkb_op_matvec(f.stream, &m, bx, bp, sh.n));
            CHECK_OK(vkb_op_matvec_add(f.stream, &m, bx, by, sh.n));
        }
        CHECK_OK(vkb_stream_submit(f.stream));
        CHECK_OK(vkb_stream_wait(f.stream));
        CHECK_OK(vkb_buffer_download(t_dev, bp, 0, plain, outn * 4));
        CHECK_OK(vkb_buffer_download(t_dev, by, 0, added, outn * 4));
        size_t bad = 0;
        for (size_t o = 0; o < outn; o++) {
            float want = y0[o] + plain[o];
            bad += memcmp(&want, &added[o], 4) != 0;
        }
        CHECK_MSG(bad == 0, "matvec_add %s%s%s: %zu of %zu outputs are not y + W·x", tname(t),
                  cases[i].int_dot > 0 ? " int-dot" : "", cases[i].staged ? " staged" : "", bad,
                  outn);
    next:
        free(w);
        free(x);
        free(y0);
        free(plain);
        free(added);
    }
    vkb_op_matvec_tune(t_dev, NULL);
    teardown(&f);
}

/* One product, several outputs (q, k and v from their stacked rows): each output holds
 * exactly its rows of the stacked product the plain op writes, for every path (float in
 * place and staged, integer dot, matmul), and writes nothing past its columns. */
static void test_outputs(void)
{
    struct fixture f;
    if (!setup(&f))
        return;
    static const struct {
        cmp_type t;
        int int_dot; /* vkb_matvec_tuning.int_dot */
        bool staged;
        uint32_t n; /* > 8: matmul */
        uint32_t count, rows[3];
    } cases[] = {
        {CMP_TYPE_F32, -1, false, 2, 3, {33, 7, 25}},
        {CMP_TYPE_Q4_0, -1, false, 1, 3, {64, 16, 16}},
        {CMP_TYPE_Q4_K, -1, true, 3, 2, {40, 24}},
        {CMP_TYPE_Q4_0, 1, false, 1, 3, {9, 3, 5}},
        {CMP_TYPE_Q8_0, 1, false, 5, 2, {17, 48}},
        {CMP_TYPE_Q4_K, 1, false, 2, 3, {5, 12, 3}},
        {CMP_TYPE_Q6_K, 1, false, 3, 2, {7, 6}},
        {CMP_TYPE_Q5_K, 1, false, 1, 2, {3, 4}},
        {CMP_TYPE_Q4_0, -1, false, 33, 3, {33, 7, 25}},
        {CMP_TYPE_Q6_K, -1, false, 17, 2, {70, 2}},
        {CMP_TYPE_Q8_0, 1, false, 20, 3, {33, 7, 25}},
    };
    const uint32_t k = 512, guard = 16;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cmp_type t = cases[i].t;
        uint32_t n = cases[i].n, rows = 0;
        if (cases[i].int_dot > 0 && !vkb_device_get_info(t_dev)->int_dot)
            continue;
        for (uint32_t o = 0; o < cases[i].count; o++)
            rows += cases[i].rows[o];
        force_path(t, n <= 8 ? n : 1, cases[i].int_dot, cases[i].staged);
        size_t outn = (size_t)rows * n;
        uint8_t *w = quantized_weights(t, rows, k, 7500 + i);
        float *x = t_random_floats((size_t)k * n, 7600 + i, -1.0f, 1.0f);
        float *plain = malloc(outn * 4), *got = malloc((outn + guard) * 4);
        float *fill = malloc((outn + guard) * 4);
        vkb_matrix m;
        if (!w || !x || !plain || !got || !fill || !upload_matrix(&f, &m, t, w, rows, k)) {
            t_fail_at(__FILE__, __LINE__, "setup failed");
            goto next;
        }
        for (size_t j = 0; j < outn + guard; j++)
            fill[j] = -12345.0f;
        vkb_buffer *bx = t_upload(f.scratch, x, (uint64_t)k * n * 4, 0);
        vkb_buffer *bq = t_upload(f.scratch, NULL, vkb_q8_bytes(k, n), 0);
        vkb_buffer *bp = t_upload(f.scratch, NULL, outn * 4, 0);
        vkb_outputs outs = {cases[i].count, {NULL}, {0}};
        bool ok = bx && bq && bp;
        for (uint32_t o = 0; o < outs.count && ok; o++) {
            outs.rows[o] = cases[i].rows[o];
            outs.y[o] = t_upload(f.scratch, fill, ((uint64_t)n * outs.rows[o] + guard) * 4, 0);
            ok = outs.y[o] != NULL;
        }
        if (!ok)
            goto next;
        CHECK_OK(vkb_stream_begin(f.stream));
        if (n > 8 && cases[i].int_dot > 0) {
            vkb_outputs whole = {1, {bp}, {rows}};
            CHECK_OK(vkb_op_quantize_q8(f.stream, bq, bx, k, n));
            CHECK_OK(vkb_op_matmul_q8_split(f.stream, &m, bq, &whole, n));
            CHECK_OK(vkb_op_matmul_q8_split(f.stream, &m, bq, &outs, n));
        } else if (n > 8) {
            CHECK_OK(vkb_op_matmul(f.stream, &m, bx, bp, n));
            CHECK_OK(vkb_op_matmul_split(f.stream, &m, bx, &outs, n));
        } else if (cases[i].int_dot > 0) {
            CHECK_OK(vkb_op_quantize_q8(f.stream, bq, bx, k, n));
            CHECK_OK(vkb_op_matvec_q8(f.stream, &m, bq, bp, n));
            CHECK_OK(vkb_op_matvec_q8_split(f.stream, &m, bq, &outs, n));
        } else {
            CHECK_OK(vkb_op_matvec(f.stream, &m, bx, bp, n));
            CHECK_OK(vkb_op_matvec_split(f.stream, &m, bx, &outs, n));
        }
        CHECK_OK(vkb_stream_submit(f.stream));
        CHECK_OK(vkb_stream_wait(f.stream));
        CHECK_OK(vkb_buffer_download(t_dev, bp, 0, plain, outn * 4));
        size_t bad = 0, spoiled = 0;
        for (uint32_t o = 0, base = 0; o < outs.count; base += outs.rows[o], o++) {
            size_t len = (size_t)n * outs.rows[o];
            CHECK_OK(vkb_buffer_download(t_dev, outs.y[o], 0, got, (len + guard) * 4));
            for (uint32_t c = 0; c < n; c++)
                for (uint32_t r = 0; r < outs.rows[o]; r++)
                    bad += memcmp(&got[(size_t)c * outs.rows[o] + r],
                                  &plain[(size_t)c * rows + base + r], 4) != 0;
            for (size_t j = len; j < len + guard; j++)
                spoiled += got[j] != -12345.0f;
        }
        CHECK_MSG(bad == 0, "%s %s%s, %u outputs, n=%u: %zu values differ from the stacked product",
                  n > 8 ? "matmul" : "matvec", tname(t), cases[i].int_dot > 0 ? " int-dot" : "",
                  outs.count, n, bad);
        CHECK_MSG(spoiled == 0, "%s %s: %zu values written past an output's columns",
                  n > 8 ? "matmul" : "matvec", tname(t), spoiled);
    next:
        free(w);
        free(x);
        free(plain);
        free(got);
        free(fill);
    }
    vkb_op_matvec_tune(t_dev, NULL);
    teardown(&f);
}

/* A matvec choice forced for a test, and its name in messages. */
struct forced_path {
    vkb_matvec_tuning tune;
    const char *name;
};

/* Forces p's choice; false, with a line saying so, where the device's plan cannot take it
 * (lanes or staging unavailable). vkb_op_matvec_tune(t_dev, NULL) gives the built-in
 * choice back. */
static bool force_tuning(const struct forced_path *p)
{
    vkb_op_matvec_tune(t_dev, &p->tune);
    vkb_matvec_tuning plan = vkb_op_matvec_plan(t_dev, CMP_TYPE_Q4_0, 1);
    if (plan.lanes == p->tune.lanes && plan.staged == p->tune.staged)
        return true;
    printf("  %s: not on this device\n", p->name);
    return false;
}

/* The norm fused into the products that read it (vkb_op_matvec_norm_split): against the
 * f64 product of W with rms_norm(x)·g for every format on the device's own plan, and on
 * each path forced (in place, staged, lanes with 3 rows per invocation; q4_K takes the
 * K-quant 32-value units), with several outputs, 1 to 8 columns and k past the last 32 values.
 * Budget: twice accum_budget over sum |w·xn|, which holds the rounding of x·g and of the
 * scale (a sum of k squares, a square root and a division) on top of the product's, and
 * that of the reference's xn to f32. */
static void check_norm(struct fixture *f, cmp_type t, uint32_t k, uint32_t n, uint32_t count,
                       const uint32_t *rows_of, uint64_t seed, const char *path)
{
    uint32_t rows = 0;
    for (uint32_t o = 0; o < count; o++)
        rows += rows_of[o];
    const float eps = 1e-5f;
    uint8_t *w = quantized_weights(t, rows, k, seed);
    float *x = t_random_floats((size_t)k * n, seed + 1, -3.0f, 3.0f);
    float *g = t_random_floats(k, seed + 2, -2.0f, 2.0f);
    float *got = malloc((size_t)rows * n * 4), *row = malloc((size_t)k * 4);
    float *xn = malloc((size_t)k * n * sizeof *xn);
    vkb_matrix m;
    if (!w || !x || !g || !got || !row || !xn || !upload_matrix(f, &m, t, w, rows, k)) {
        t_fail_at(__FILE__, __LINE__, "setup failed");
        goto done;
    }
    vkb_ref_rms_norm(xn, x, g, k, n, eps); /* f64 inside, rounded once to f32 */
    vkb_buffer *bx = t_upload(f->scratch, x, (uint64_t)k * n * 4, 0);
    vkb_buffer *bg = t_upload(f->scratch, g, (uint64_t)k * 4, 0);
    vkb_outputs outs = {count, {NULL}, {0}};
    bool ok = bx && bg;
    for (uint32_t o = 0; o < count && ok; o++) {
        outs.rows[o] = rows_of[o];
        ok = (outs.y[o] = t_upload(f->scratch, NULL, (uint64_t)n * rows_of[o] * 4, 0)) != NULL;
    }
    if (!ok)
        goto done;
    CHECK_OK(vkb_stream_begin(f->stream));
    CHECK_OK(vkb_op_matvec_norm_split(f->stream, &m, bx, bg, eps, &outs, n));
    CHECK_OK(vkb_stream_submit(f->stream));
    CHECK_OK(vkb_stream_wait(f->stream));
    size_t bad = 0;
    double worst = 0;
    for (uint32_t o = 0, base = 0; o < count; base += rows_of[o], o++) {
        CHECK_OK(vkb_buffer_download(t_dev, outs.y[o], 0, got, (uint64_t)n * rows_of[o] * 4));
        for (uint32_t r = 0; r < rows_of[o]; r++) {
            cmp_dequantize(t, w + cmp_row_bytes(t, k) * (base + r), row, k);
            for (uint32_t c = 0; c < n; c++) {
                double want = 0, sum_abs = 0;
                for (uint32_t i = 0; i < k; i++) {
                    double term = (double)row[i] * xn[(size_t)c * k + i];
                    want += term;
                    sum_abs += fabs(term);
                }
                double err = fabs(got[(size_t)c * rows_of[o] + r] - want);
                double budget = 2.0 * accum_budget(OP_MATVEC, k, sum_abs);
                bad += !(err <= budget);
                if (budget > 0 && err / budget > worst)
                    worst = err / budget;
            }
        }
    }
    CHECK_MSG(bad == 0,
              "matvec_norm %s (%s) k=%u n=%u, %u outputs: %zu values outside the budget (worst "
              "%.2fx)",
              tname(t), path, k, n, count, bad, worst);
done:
    free(w);
    free(x);
    free(g);
    free(got);
    free(row);
    free(xn);
}

static void test_matvec_norm(void)
{
    struct fixture f;
    if (!setup(&f))
        return;
    /* the device's own plan, every format; under the capped profiles (where the reduction
     * is what changes, and each pipeline takes lavapipe a second or more to compile) one
     * format in four */
    bool capped = t_profile != VKB_PROFILE_NATIVE;
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        cmp_type t = all_types[ti];
        const uint32_t rows[1] = {37};
        if (!capped || ti % 4 == 0)
            check_norm(&f, t, k_for(t, 512), 2, 1, rows, 9000 + 10 * ti, "plan");
    }
    /* each path forced, on formats that take it: f16's k ends 8 values past a block of 32 */
    static const struct forced_path paths[] = {
        {{.wg = 16, .rows = 3, .int_dot = -1}, "in place"},
        {{.wg = 16, .rows = 3, .staged = true, .int_dot = -1}, "staged"},
        {{.wg = 1, .rows = 3, .int_dot = -1, .lanes = true}, "lanes, 3 rows made 4"},
    };
    static const cmp_type types[] = {CMP_TYPE_F16, CMP_TYPE_Q4_0, CMP_TYPE_Q4_K};
    for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) {
        if (!force_tuning(&paths[p]))
            continue;
        for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
            cmp_type t = types[ti];
            const uint32_t three[3] = {40, 9, 17}, one[1] = {45};
            uint32_t k = t == CMP_TYPE_F16 ? 520 : k_for(t, 768);
            if (capped && t == CMP_TYPE_Q4_0)
                continue;
            check_norm(&f, t, k, 3, 3, three, 9500 + 100 * p + 10 * ti, paths[p].name);
            if (ti == 1)
                check_norm(&f, t, k_for(t, 4096), 8, 1, one, 9550 + 100 * p, paths[p].name);
        }
    }
    vkb_op_matvec_tune(t_dev, NULL);
    teardown(&f);
}

/* Gate and up stacked, silu·mul in the product's epilogue (vkb_op_matvec_glu): the same
 * bits as the split product into gate and up, then vkb_op_silu_mul; with the norm fused
 * too, as the norm-fused split product then silu·mul; from 8-bit blocks (forced on), as
 * the q8 split product. On the device's plan and each path forced (rows per workgroup or
 * per invocation made even), ff not a multiple of the rows per workgroup. */
static void check_glu(struct fixture *f, cmp_type t, uint32_t ff, uint32_t k, uint32_t n,
                      bool with_norm, bool q8, uint64_t seed, const char *path)
{
    uint32_t rows = 2 * ff;
    size_t outn = (size_t)ff * n;
    uint8_t *w = quantized_weights(t, rows, k, seed);
    float *x = t_random_floats((size_t)k * n, seed + 1, -2.0f, 2.0f);
    float *g = t_random_floats(k, seed + 2, -2.0f, 2.0f);
    float *want = malloc(outn * 4), *got = malloc(outn * 4);
    vkb_matrix m;
    if (!w || !x || !g || !want || !got || !upload_matrix(f, &m, t, w, rows, k)) {
        t_fail_at(__FILE__, __LINE__, "setup failed");
        goto done;
    }
    vkb_buffer *bx = t_upload(f->scratch, x, (uint64_t)k * n * 4, 0);
    vkb_buffer *bg = t_upload(f->scratch, g, (uint64_t)k * 4, 0);
    vkb_buffer *bq = t_upload(f->scratch, NULL, vkb_q8_bytes(k, n), 0);
    vkb_buffer *gate = t_upload(f->scratch, NULL, outn * 4, 0);
    vkb_buffer *up = t_upload(f->scratch, NULL, outn * 4, 0);
    vkb_buffer *bw = t_upload(f->scratch, NULL, outn * 4, 0);
    vkb_buffer *bh = t_upload(f->scratch, NULL, outn * 4, 0);
    if (!bx || !bg || !bq || !gate || !up || !bw || !bh)
        goto done;
    vkb_outputs split = {2, {gate, up}, {ff, ff}};
    CHECK_OK(vkb_stream_begin(f->stream));
    if (q8) {
        CHECK_OK(vkb_op_quantize_q8(f->stream, bq, bx, k, n));
        CHECK_OK(vkb_op_matvec_q8_split(f->stream, &m, bq, &split, n));
        CHECK_OK(vkb_op_matvec_q8_glu(f->stream, &m, bq, bh, n));
    } else if (with_norm) {
        CHECK_OK(vkb_op_matvec_norm_split(f->stream, &m, bx, bg, 1e-5f, &split, n));
        CHECK_OK(vkb_op_matvec_glu(f->stream, &m, bx, bg, 1e-5f, bh, n));
    } else {
        CHECK_OK(vkb_op_matvec_split(f->stream, &m, bx, &split, n));
        CHECK_OK(vkb_op_matvec_glu(f->stream, &m, bx, NULL, 0.0f, bh, n));
    }
    CHECK_OK(vkb_op_silu_mul(f->stream, bw, gate, up, outn));
    CHECK_OK(vkb_stream_submit(f->stream));
    CHECK_OK(vkb_stream_wait(f->stream));
    CHECK_OK(vkb_buffer_download(t_dev, bw, 0, want, outn * 4));
    CHECK_OK(vkb_buffer_download(t_dev, bh, 0, got, outn * 4));
    size_t first = 0, bad = bits_differ(got, want, outn, &first);
    CHECK_MSG(bad == 0,
              "matvec_glu %s (%s%s%s) ff=%u k=%u n=%u: %zu of %zu values differ from the split "
              "product and silu_mul; first [col %zu][row %zu] = %.9g, want %.9g",
              tname(t), path, with_norm ? ", norm" : "", q8 ? ", 8-bit x" : "", ff, k, n, bad, outn,
              first / ff, first % ff, (double)got[first], (double)want[first]);
done:
    free(w);
    free(x);
    free(g);
    free(want);
    free(got);
}

static void test_matvec_glu(void)
{
    struct fixture f;
    if (!setup(&f))
        return;
    bool capped = t_profile != VKB_PROFILE_NATIVE;
    static const cmp_type plan_types[] = {CMP_TYPE_F16,  CMP_TYPE_Q4_0, CMP_TYPE_Q8_0,
                                          CMP_TYPE_Q4_K, CMP_TYPE_Q6_K, CMP_TYPE_IQ4_NL};
    for (size_t ti = 0; ti < sizeof plan_types / sizeof plan_types[0]; ti++) {
        cmp_type t = plan_types[ti];
        if (capped && ti % 3 != 0)
            continue;
        check_glu(&f, t, 45, k_for(t, 512), 1, true, false, 9700 + 10 * ti, "plan");
        check_glu(&f, t, 45, k_for(t, 512), 3, false, false, 9705 + 10 * ti, "plan");
    }
    static const struct forced_path paths[] = {
        {{.wg = 16, .rows = 1, .int_dot = -1}, "in place, 1 row made 2"},
        {{.wg = 16, .rows = 3, .staged = true, .int_dot = -1}, "staged, 3 rows made 2"},
        {{.wg = 1, .rows = 1, .int_dot = -1, .lanes = true}, "lanes, 1 row made 2"},
        {{.wg = 1, .rows = 3, .int_dot = -1, .lanes = true}, "lanes, 3 rows made 4"},
    };
    for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) {
        if (!force_tuning(&paths[p]))
            continue;
        check_glu(&f, CMP_TYPE_Q4_0, 37, 512, 2, p % 2 == 0, false, 9800 + 10 * p, paths[p].name);
        if (!capped)
            check_glu(&f, CMP_TYPE_Q4_K, 19, 768, 1, p % 2 == 1, false, 9805 + 10 * p,
                      paths[p].name);
    }
    vkb_op_matvec_tune(t_dev, NULL);
    /* from 8-bit blocks, the integer-dot kernel forced on */
    if (vkb_device_get_info(t_dev)->int_dot) {
        static const cmp_type q8_types[] = {CMP_TYPE_Q4_0, CMP_TYPE_Q4_K, CMP_TYPE_Q6_K};
        for (size_t ti = 0; ti < sizeof q8_types / sizeof q8_types[0]; ti++) {
            if (capped && ti > 0)
                break;
            force_path(q8_types[ti], 2, 1, false);
            check_glu(&f, q8_types[ti], 21, 512, 2, false, true, 9900 + 10 * ti, "int-dot");
        }
        vkb_op_matvec_tune(t_dev, NULL);
    }
    teardown(&f);
}

/* The attention prologue in the q, k, v product's epilogue (vkb_op_matvec_rope): the same
 * bits in q and in both caches as the split product (plain, norm-fused or from 8-bit blocks)
 * then vkb_op_rope_store_f16. Caches pre-filled with a pattern: rows outside row0 .. row0
 * + n must keep it. */
struct rope_case {
    uint32_t heads, kv_heads, head_dim, rot_dims;
    bool neox;
    uint32_t n, row0;
    bool bias;
};

static void check_rope(struct fixture *f, cmp_type t, uint32_t k, const struct rope_case *rc,
                       bool with_norm, bool q8, bool at_pos, uint64_t seed, const char *path)
{
    uint32_t n = rc->n, qw = rc->heads * rc->head_dim, kvw = rc->kv_heads * rc->head_dim;
    uint32_t rows = qw + 2 * kvw;
    size_t qn = (size_t)qw * n, cache_words = (size_t)(rc->row0 + n + 2) * kvw / 2;
    uint8_t *w = quantized_weights(t, rows, k, seed);
    float *x = t_random_floats((size_t)k * n, seed + 1, -2.0f, 2.0f);
    float *g = t_random_floats(k, seed + 2, -2.0f, 2.0f);
    float *bias = t_random_floats(rows, seed + 3, -1.0f, 1.0f);
    float *freqs = malloc(rc->rot_dims / 2 * sizeof *freqs);
    int32_t pos[8];
    uint32_t *fill = malloc(cache_words * 4);
    float *got = malloc(2 * cache_words * 4 + qn * 4), *want = malloc(2 * cache_words * 4 + qn * 4);
    vkb_matrix m;
    if (!w || !x || !g || !bias || !freqs || !fill || !got || !want || n > 8 ||
        !upload_matrix(f, &m, t, w, rows, k)) {
        t_fail_at(__FILE__, __LINE__, "setup failed");
        goto done;
    }
    vkb_rope_freqs(freqs, rc->rot_dims, 10000.0f, 1.0f);
    /* large angles, not the cache row; or (at_pos) the fused op reads its cache rows from
     * the positions (VKB_AT_POS), the reference writes them from row0 */
    for (uint32_t c = 0; c < n; c++)
        pos[c] = at_pos ? (int32_t)(rc->row0 + c) : (int32_t)(rc->row0 + c) * 37 + 3;
    for (size_t i = 0; i < cache_words; i++)
        fill[i] = 0xa5a5a5a5u ^ (uint32_t)i;
    vkb_buffer *bx = t_upload(f->scratch, x, (uint64_t)k * n * 4, 0);
    vkb_buffer *bg = t_upload(f->scratch, g, (uint64_t)k * 4, 0);
    vkb_buffer *bxq = t_upload(f->scratch, NULL, vkb_q8_bytes(k, n), 0);
    vkb_buffer *bpos = t_upload(f->scratch, pos, n * 4, 0);
    vkb_buffer *bfreq = t_upload(f->scratch, freqs, rc->rot_dims / 2 * 4, 0);
    /* the biases stacked as W's rows, and q's, k's and v's apart for vkb_op_add_bias */
    vkb_buffer *bb[4] = {t_upload(f->scratch, bias, (uint64_t)rows * 4, 0),
                         t_upload(f->scratch, bias, (uint64_t)qw * 4, 0),
                         t_upload(f->scratch, bias + qw, (uint64_t)kvw * 4, 0),
                         t_upload(f->scratch, bias + qw + kvw, (uint64_t)kvw * 4, 0)};
    vkb_buffer *split[3], *q = t_upload(f->scratch, NULL, qn * 4, 0), *cache[4];
    split[0] = t_upload(f->scratch, NULL, qn * 4, 0);
    split[1] = t_upload(f->scratch, NULL, (size_t)kvw * n * 4, 0);
    split[2] = t_upload(f->scratch, NULL, (size_t)kvw * n * 4, 0);
    bool ok = bx && bg && bxq && bpos && bfreq && bb[0] && bb[1] && bb[2] && bb[3] && q &&
              split[0] && split[1] && split[2];
    for (int i = 0; i < 4 && ok; i++)
        ok = (cache[i] = t_upload(f->scratch, fill, cache_words * 4, 0)) != NULL;
    if (!ok)
        goto done;
    vkb_outputs outs = {3, {split[0], split[1], split[2]}, {qw, kvw, kvw}};
    vkb_rope_shape shape = {rc->head_dim, rc->rot_dims, rc->heads, n, rc->neox};
    vkb_kv_write kv = {.pos = bpos,
                       .freqs = bfreq,
                       .bias = rc->bias ? bb[0] : NULL,
                       .shape = shape,
                       .kv_heads = rc->kv_heads,
                       .k_cache = cache[2],
                       .v_cache = cache[3],
                       .row0 = at_pos ? VKB_AT_POS : rc->row0};
    CHECK_OK(vkb_stream_begin(f->stream));
    if (q8) {
        CHECK_OK(vkb_op_quantize_q8(f->stream, bxq, bx, k, n));
        CHECK_OK(vkb_op_matvec_q8_split(f->stream, &m, bxq, &outs, n));
        CHECK_OK(vkb_op_matvec_q8_rope(f->stream, &m, bxq, q, &kv, n));
    } else if (with_norm) {
        CHECK_OK(vkb_op_matvec_norm_split(f->stream, &m, bx, bg, 1e-5f, &outs, n));
        CHECK_OK(vkb_op_matvec_rope(f->stream, &m, bx, bg, 1e-5f, q, &kv, n));
    } else {
        CHECK_OK(vkb_op_matvec_split(f->stream, &m, bx, &outs, n));
        CHECK_OK(vkb_op_matvec_rope(f->stream, &m, bx, NULL, 0.0f, q, &kv, n));
    }
    for (uint32_t i = 0; i < 3 && rc->bias; i++)
        CHECK_OK(vkb_op_add_bias(f->stream, split[i], split[i], bb[1 + i], outs.rows[i], n));
    CHECK_OK(vkb_op_rope_store_f16(f->stream, split[0], split[1], split[2], bpos, bfreq, &shape,
                                   rc->kv_heads, cache[0], cache[1], rc->row0));
    CHECK_OK(vkb_stream_submit(f->stream));
    CHECK_OK(vkb_stream_wait(f->stream));
    /* q, then the k cache's words, then the v cache's, as floats for bits_differ */
    CHECK_OK(vkb_buffer_download(t_dev, q, 0, got, qn * 4));
    CHECK_OK(vkb_buffer_download(t_dev, split[0], 0, want, qn * 4));
    for (int i = 0; i < 2; i++) {
        CHECK_OK(vkb_buffer_download(t_dev, cache[2 + i], 0, got + qn + i * cache_words,
                                     cache_words * 4));
        CHECK_OK(
            vkb_buffer_download(t_dev, cache[i], 0, want + qn + i * cache_words, cache_words * 4));
    }
    size_t first = 0, bad = bits_differ(got, want, qn + 2 * cache_words, &first);
    const char *where = first < qn ? "q" : first < qn + cache_words ? "k cache" : "v cache";
    size_t at = first < qn ? first : (first - qn) % cache_words;
    CHECK_MSG(bad == 0,
              "matvec_rope %s (%s%s%s%s%s) %u/%u heads of %u, rot %u %s, n=%u from row %u: %zu "
              "values differ from the split product and rope_store_f16; first %s[%zu] = 0x%08x, "
              "want 0x%08x",
              tname(t), path, with_norm ? ", norm" : "", q8 ? ", 8-bit x" : "",
              rc->bias ? ", biases" : "", at_pos ? ", rows at pos" : "", rc->heads, rc->kv_heads,
              rc->head_dim, rc->rot_dims, rc->neox ? "neox" : "normal", n, rc->row0, bad, where, at,
              ((uint32_t *)got)[first], ((uint32_t *)want)[first]);
done:
    free(w);
    free(x);
    free(g);
    free(bias);
    free(freqs);
    free(fill);
    free(got);
    free(want);
}

static void test_matvec_rope(void)
{
    struct fixture f;
    if (!setup(&f))
        return;
    bool capped = t_profile != VKB_PROFILE_NATIVE;
    /* GQA, partial rotation (normal with rot_dims % 4 == 2), MHA, 1 to 8 tokens, biases */
    static const struct rope_case cases[] = {
        {4, 2, 32, 32, false, 1, 5, false}, {4, 2, 32, 32, true, 3, 0, true},
        {3, 1, 20, 18, false, 2, 7, true},  {2, 2, 24, 16, true, 8, 1, false},
        {6, 2, 16, 8, true, 1, 0, true},
    };
    static const cmp_type plan_types[] = {CMP_TYPE_F16, CMP_TYPE_Q4_0, CMP_TYPE_Q8_0, CMP_TYPE_Q4_K,
                                          CMP_TYPE_Q6_K};
    for (size_t ti = 0; ti < sizeof plan_types / sizeof plan_types[0]; ti++) {
        if (capped && ti % 2 != 0)
            continue;
        cmp_type t = plan_types[ti];
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
            check_rope(&f, t, k_for(t, 512), &cases[c], (c + ti) % 2 == 0, false, (c + ti) % 3 == 0,
                       10000 + 100 * ti + 10 * c, "plan");
    }
    static const struct forced_path paths[] = {
        {{.wg = 16, .rows = 1, .int_dot = -1}, "in place, 1 row made 4"},
        {{.wg = 16, .rows = 6, .staged = true, .int_dot = -1}, "staged, 6 rows made 4"},
        {{.wg = 1, .rows = 1, .int_dot = -1, .lanes = true}, "lanes, 1 row made 4"},
        {{.wg = 1, .rows = 3, .int_dot = -1, .lanes = true}, "lanes, 3 rows made 4"},
    };
    for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) {
        if (!force_tuning(&paths[p]))
            continue;
        check_rope(&f, CMP_TYPE_Q4_0, 512, &cases[p % 2], p % 2 == 0, false, p % 2 == 1,
                   10600 + 10 * p, paths[p].name);
        check_rope(&f, CMP_TYPE_Q4_K, 768, &cases[2 + p % 3], p % 2 == 1, false, p % 2 == 0,
                   10605 + 10 * p, paths[p].name);
    }
    vkb_op_matvec_tune(t_dev, NULL);
    /* from 8-bit blocks, the integer-dot kernel forced on */
    if (vkb_device_get_info(t_dev)->int_dot) {
        static const cmp_type q8_types[] = {CMP_TYPE_Q4_0, CMP_TYPE_Q4_K, CMP_TYPE_Q8_0};
        for (size_t ti = 0; ti < sizeof q8_types / sizeof q8_types[0]; ti++) {
            if (capped && ti > 0)
                break;
            force_path(q8_types[ti], 2, 1, false);
            check_rope(&f, q8_types[ti], 512, &cases[1 + ti], false, true, ti == 1, 10700 + 10 * ti,
                       "int-dot");
        }
        vkb_op_matvec_tune(t_dev, NULL);
    }
    teardown(&f);
}

static void test_matmul(void)
{
    struct fixture f;
    if (!setup(&f))
        return;
    bool heavy = t_profile == VKB_PROFILE_NATIVE;
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        cmp_type t = all_types[ti];
        uint32_t kb = k_for(t, 1);
        const struct shape shapes[] = {
            {1, kb, 1},     {7, 3 * kb, 3}, {33, k_for(t, 40), 33},
            {70, 11008, 5}, {4097, kb, 2},  {65, k_for(t, 512), 512},
        };
        fprintf(stderr, "  %s\n", vkb_op_matmul_variant(t_dev, t));
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
            check_exact(&f, OP_MATMUL, t, shapes[i], 5000 * ti + i);
        check_quantized(&f, OP_MATMUL, t, (struct shape){33, k_for(t, 1024), 17}, 6000 * ti);
    }
    /* the longest K of the real shapes, a full prefill batch: a few formats only (time) */
    static const cmp_type heavy_types[] = {CMP_TYPE_Q4_K, CMP_TYPE_Q8_0, CMP_TYPE_F16};
    for (size_t i = 0; heavy && i < sizeof heavy_types / sizeof heavy_types[0]; i++)
        check_exact(&f, OP_MATMUL, heavy_types[i], (struct shape){40, 14336, 512}, 7000 + i);
    teardown(&f);
}

/* The tiles other devices get (vkb_ops_matrix.c's matmul_plan), and odd ones: the f32
 * kernel for a format of each family, on shapes cut short every way. */
static void test_matmul_tiles(void)
{
    static const vkb_matmul_tuning tiles[] = {
        {128, 64, 16, 8, 8},  /* discrete GPUs */
        {32, 32, 32, 4, 4},   /* integrated and mobile GPUs */
        {128, 64, 16, 16, 8}, /* CPU drivers */
        {64, 32, 8, 8, 2},    {16, 48, 24, 2, 12},
    };
    static const cmp_type types[] = {CMP_TYPE_F32, CMP_TYPE_Q4_0, CMP_TYPE_Q4_K, CMP_TYPE_Q6_K};
    struct fixture f;
    if (!setup(&f))
        return;
    vkb_coopmat_mode was = vkb_op_coopmat_mode(t_dev, VKB_COOPMAT_OFF);
    for (size_t i = 0; i < sizeof tiles / sizeof tiles[0]; i++) {
        vkb_op_matmul_tune(t_dev, &tiles[i]);
        const vkb_device_info *info = vkb_device_get_info(t_dev);
        if (vkb_matmul_tuning_wg(&tiles[i]) > info->max_workgroup_invocations ||
            4ull * tiles[i].tk * (tiles[i].tm + tiles[i].tn) > info->max_shared_memory)
            continue; /* the minimal profile's 128 invocations */
        fprintf(stderr, "  %ux%ux%u/%ux%u\n", tiles[i].tm, tiles[i].tn, tiles[i].tk, tiles[i].rm,
                tiles[i].rn);
        for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
            cmp_type t = types[ti];
            uint32_t kb = k_for(t, 1);
            const struct shape shapes[] = {
                {1, kb, 1}, {7, 3 * kb, 70}, {130, k_for(t, 40), 33}, {67, k_for(t, 512), 129}};
            for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
                check_exact(&f, OP_MATMUL, t, shapes[si], 7100 + 100 * i + 10 * ti + si);
        }
    }
    vkb_op_coopmat_mode(t_dev, was);
    vkb_op_matmul_tune(t_dev, NULL);
    teardown(&f);
}

/* ---- matmul_coopmat.comp ---- */

static float round_f16(float v)
{
    return cmp_f16_to_f32(cmp_f32_to_f16(v));
}

/* The coopmat kernel multiplies W and x rounded to f16. Against the product of those
 * rounded values (summed in double): exact data whose values f16 holds gives exact f32
 * sums in any order, so the bits must match; otherwise (random weights, or exact data
 * f16 cannot hold, q6_K's 12-bit units) the budget is matmul's f32 accumulation plus one
 * f16 step of each factor, the rounding direction of the GPU's f32 -> f16 conversion
 * being the implementation's. */
static void check_coopmat(struct fixture *f, cmp_type t, struct shape s, uint64_t seed, bool exact)
{
    int unit = 0;
    uint8_t *w = exact ? exact_weights(t, s.rows, s.k, seed, &unit)
                       : quantized_weights(t, s.rows, s.k, seed);
    float *x = exact ? exact_x(s.k, s.n, seed + 1)
                     : t_random_floats((size_t)s.k * s.n, seed + 1, -1.0f, 1.0f);
    size_t outn = (size_t)s.rows * s.n;
    float *got = malloc(outn * 4), *wf = malloc((size_t)s.rows * s.k * 4);
    vkb_matrix m;
    if (!w || !x || !got || !wf || !upload_matrix(f, &m, t, w, s.rows, s.k)) {
        t_fail_at(__FILE__, __LINE__, "setup failed");
        goto done;
    }
    bool held = true; /* f16 holds every value */
    for (uint32_t r = 0; r < s.rows; r++)
        CHECK(cmp_dequantize(t, w + cmp_row_bytes(t, s.k) * r, wf + (size_t)r * s.k, s.k));
    for (size_t i = 0; i < (size_t)s.rows * s.k; i++) {
        held = held && round_f16(wf[i]) == wf[i];
        wf[i] = round_f16(wf[i]);
    }
    for (size_t i = 0; i < (size_t)s.k * s.n; i++) {
        held = held && round_f16(x[i]) == x[i];
        x[i] = round_f16(x[i]);
    }
    bool bits = exact && held;
    if (exact)
        CHECK_MSG(exactness_holds(t, w, s.rows, s.k, x, s.n, unit),
                  "test data for %s %u x %u is not exact in f32", tname(t), s.rows, s.k);
    if (!run_matrix_op(f, OP_MATMUL, &m, x, s.n, got))
        goto done;
    size_t bad = 0, first = 0;
    double worst = 0;
    for (uint32_t c = 0; c < s.n; c++)
        for (uint32_t r = 0; r < s.rows; r++) {
            double sum = 0, sum_abs = 0;
            for (uint32_t i = 0; i < s.k; i++) {
                double p = (double)wf[(size_t)r * s.k + i] * x[(size_t)c * s.k + i];
                sum += p;
                sum_abs += fabs(p);
            }
            float want = (float)sum, v = got[(size_t)c * s.rows + r];
            double budget = accum_budget(OP_MATMUL, s.k, sum_abs) + 2.0 * ldexp(1.0, -10) * sum_abs;
            double err = fabs((double)v - want);
            bool ok = bits ? memcmp(&v, &want, 4) == 0 : err <= budget;
            if (!ok && bad++ == 0)
                first = (size_t)c * s.rows + r;
            if (budget > 0 && err / budget > worst)
                worst = err / budget;
        }
    CHECK_MSG(bad == 0,
              "%s %s rows=%u k=%u n=%u (%s): %zu of %zu outputs wrong (worst %.2fx the budget); "
              "first [col %zu][row %zu] = %.9g",
              vkb_op_matmul_variant(t_dev, t), exact ? "exact" : "quantized", s.rows, s.k, s.n,
              bits ? "bit for bit" : "within the budget", bad, outn, worst, first / s.rows,
              first % s.rows, (double)got[first]);
done:
    free(w);
    free(x);
    free(got);
    free(wf);
}

/* Every format through the coopmat kernel: on matrix units where the device has them, and
 * emulated (the same kernel, the fragments in plain code) wherever f16 arithmetic is. Tiles
 * (64 x 64, K by 32) cut short in rows, columns and K; several tiles each way. */
static void test_matmul_coopmat(void)
{
    const vkb_device_info *info = vkb_device_get_info(t_dev);
    static const vkb_coopmat_mode modes[] = {VKB_COOPMAT_ON, VKB_COOPMAT_EMULATED};
    struct fixture f;
    bool ran = false;
    vkb_coopmat_mode parsed;
    CHECK(vkb_coopmat_mode_parse("emu", &parsed) && parsed == VKB_COOPMAT_EMULATED);
    CHECK(vkb_coopmat_mode_parse("1", &parsed) && parsed == VKB_COOPMAT_ON);
    CHECK(vkb_coopmat_mode_parse("0", &parsed) && parsed == VKB_COOPMAT_OFF);
    CHECK(!vkb_coopmat_mode_parse("2", &parsed) && !vkb_coopmat_mode_parse("", &parsed));
    if (!info->coopmat_nv_f16) { /* the real kernel is refused with the reason */
        vkb_pipeline *p;
        CHECK_STATUS(vkb_pipeline_get(t_dev, "matmul_q4_0_coopmat", NULL, &p), VKB_ERR_UNSUPPORTED);
        CHECK_MSG(strstr(vkb_device_errmsg(t_dev), "VK_NV_cooperative_matrix") != NULL, "%s",
                  vkb_device_errmsg(t_dev));
    }
    if (!setup(&f))
        return;
    for (size_t mi = 0; mi < 2; mi++) {
        vkb_op_coopmat_mode(t_dev, modes[mi]);
        if (!vkb_op_matmul_coopmat(t_dev)) {
            fprintf(stderr, "  %s: not on %s (%s profile: coopmat NV f16 %s, f16 math %s)\n",
                    mi ? "emulated" : "matrix units", info->name, vkb_profile_name(info->profile),
                    info->coopmat_nv_f16 ? "yes" : "no", info->shader_float16 ? "yes" : "no");
            continue;
        }
        ran = true;
        CHECK(!vkb_op_matmul_int_dot(t_dev, CMP_TYPE_Q4_0));
        for (size_t ti = 0; ti < N_TYPES; ti++) {
            cmp_type t = all_types[ti];
            uint32_t kb = k_for(t, 1);
            const struct shape shapes[] = {
                {1, kb, 1},     {7, 3 * kb, 3}, {33, k_for(t, 40), 33},
                {70, 11008, 5}, {130, kb, 65},  {65, k_for(t, 512), 130},
            };
            fprintf(stderr, "  %s\n", vkb_op_matmul_variant(t_dev, t));
            for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
                check_coopmat(&f, t, shapes[i], 8000 + 100 * ti + i, true);
            check_coopmat(&f, t, (struct shape){67, k_for(t, 1024), 70}, 9000 + ti, false);
        }
        /* other tiles (VKLLM_MATMUL's TM, TN, TK): 128 x 128 (4 x 4 fragments per
         * subgroup), uneven ones, K by 16 and 64 */
        static const vkb_matmul_tuning tiles[] = {
            {128, 128, 32, 1, 1}, {32, 96, 16, 1, 1}, {96, 32, 64, 1, 1}};
        static const cmp_type tile_types[] = {CMP_TYPE_F16, CMP_TYPE_Q4_0, CMP_TYPE_Q6_K};
        for (size_t i = 0; i < sizeof tiles / sizeof tiles[0]; i++) {
            vkb_op_matmul_tune(t_dev, &tiles[i]);
            fprintf(stderr, "  %ux%ux%u\n", tiles[i].tm, tiles[i].tn, tiles[i].tk);
            for (size_t ti = 0; ti < sizeof tile_types / sizeof tile_types[0]; ti++) {
                cmp_type t = tile_types[ti];
                const struct shape shapes[] = {
                    {7, k_for(t, 40), 3}, {130, k_for(t, 512), 200}, {257, k_for(t, 96), 129}};
                for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
                    check_coopmat(&f, t, shapes[si], 9100 + 100 * i + 10 * ti + si, true);
            }
        }
        vkb_op_matmul_tune(t_dev, NULL);
    }
    vkb_op_coopmat_mode(t_dev, VKB_COOPMAT_AUTO);
    teardown(&f);
    if (!ran)
        t_skip("no cooperative-matrix path, not even emulated: the device (profile) has no f16 "
               "arithmetic, or subgroups under 8");
}

/* get_rows: bit-exact with cmp_dequantize; ids past the end leave their row alone. */
static void check_get_rows(struct fixture *f, cmp_type t, const uint8_t *w, uint32_t rows,
                           uint32_t k, const uint32_t *ids, uint32_t n_ids)
{
    size_t outn = (size_t)n_ids * k;
    float *got = malloc(outn * 4), *want = malloc(outn * 4);
    vkb_matrix m;
    if (!got || !want || !upload_matrix(f, &m, t, w, rows, k)) {
        t_fail_at(__FILE__, __LINE__, "setup failed");
        free(got);
        free(want);
        return;
    }
    for (size_t i = 0; i < outn; i++)
        got[i] = want[i] = -12345.0f; /* what an unwritten row keeps */
    CHECK(vkb_ref_get_rows(t, w, rows, k, ids, n_ids, want));
    vkb_buffer *bi = t_upload(f->scratch, ids, (uint64_t)n_ids * 4, 0);
    vkb_buffer *bo = t_upload(f->scratch, got, outn * 4, 0);
    if (bi && bo) {
        CHECK_OK(vkb_stream_begin(f->stream));
        CHECK_OK(vkb_op_get_rows(f->stream, &m, bi, n_ids, bo));
        CHECK_OK(vkb_stream_submit(f->stream));
        CHECK_OK(vkb_stream_wait(f->stream));
        CHECK_OK(vkb_buffer_download(t_dev, bo, 0, got, outn * 4));
        size_t bad = bits_differ(got, want, outn, NULL);
        CHECK_MSG(bad == 0, "get_rows %s %u x %u: %zu of %zu values differ", tname(t), rows, k, bad,
                  outn);
    }
    free(got);
    free(want);
}

static void test_get_rows(void)
{
    struct fixture f;
    if (!setup(&f))
        return;
    static const uint32_t ids[] = {0, 6, 3, 3, 7, 100000, 1, 5};
    const uint32_t rows = 7, n_ids = sizeof ids / sizeof ids[0];
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        cmp_type t = all_types[ti];
        uint32_t k = k_for(t, 1) * 3;
        int unit;
        uint8_t *w = exact_weights(t, rows, k, 40 + ti, &unit);
        uint8_t *q = quantized_weights(t, rows, k, 80 + ti);
        if (w && q) {
            check_get_rows(&f, t, w, rows, k, ids, n_ids); /* every bit pattern of the codes */
            check_get_rows(&f, t, q, rows, k, ids, n_ids); /* real scales */
        } else {
            t_fail_at(__FILE__, __LINE__, "setup failed");
        }
        free(w);
        free(q);
    }
    teardown(&f);
}

/* A matrix larger than maxStorageBufferRange under the mobile and minimal profiles
 * (128 MiB): bound as parts, one dispatch each. */
static void test_split_matrix(void)
{
    const vkb_device_info *info = vkb_device_get_info(t_dev);
    const cmp_type t = CMP_TYPE_Q4_0;
    const uint32_t k = 4096, n = 3;
    uint64_t row_bytes = cmp_row_bytes(t, k);
    uint32_t rows = (uint32_t)(info->max_storage_buffer_range / row_bytes) + 1001;
    if (info->max_storage_buffer_range > (256ull << 20)) {
        t_skip("the device binds more than 256 MiB at once; the mobile and minimal profiles "
               "run this case");
        return;
    }
    struct fixture f;
    if (!setup(&f))
        return;
    int unit;
    uint8_t *w = exact_weights(t, rows, k, 99, &unit);
    float *x = exact_x(k, n, 100);
    float *got = malloc((size_t)rows * n * 4), *want = malloc((size_t)rows * n * 4);
    vkb_matrix m;
    if (w && x && got && want && upload_matrix(&f, &m, t, w, rows, k)) {
        CHECK(vkb_buffer_part_count(m.buffer) >= 2);
        CHECK(vkb_ref_matmul(t, w, rows, k, x, want, n));
        for (int op = OP_MATVEC; op <= OP_MATMUL; op++) {
            if (!run_matrix_op(&f, (enum op)op, &m, x, n, got))
                continue;
            size_t bad = bits_differ(got, want, (size_t)rows * n, NULL);
            CHECK_MSG(bad == 0, "%s of a %u-part matrix: %zu outputs differ", op_name(op),
                      vkb_buffer_part_count(m.buffer), bad);
        }
        uint32_t ids[4] = {0, rows - 1, rows / 2, 12345};
        check_get_rows(&f, t, w, rows, k, ids, 4);
    } else {
        t_fail_at(__FILE__, __LINE__, "setup failed");
    }
    free(w);
    free(x);
    free(got);
    free(want);
    teardown(&f);
}

/* Bad arguments: a status and a message, no dispatch. */
static void test_matrix_errors(void)
{
    struct fixture f;
    if (!setup(&f))
        return;
    vkb_buffer *w = t_upload(f.weights, NULL, 1 << 16, 0),
               *x = t_upload(f.scratch, NULL, 1 << 16, 0),
               *y = t_upload(f.scratch, NULL, 1 << 16, 0);
    CHECK_OK(vkb_stream_begin(f.stream));
    vkb_matrix m = {w, CMP_TYPE_Q4_0, 4, 48};
    CHECK_STATUS(vkb_op_matvec(f.stream, &m, x, y, 1), VKB_ERR_INVALID_ARGUMENT); /* k % 32 */
    m = (vkb_matrix){w, (cmp_type)17, 4, 256};
    CHECK_STATUS(vkb_op_matvec(f.stream, &m, x, y, 1), VKB_ERR_UNSUPPORTED);
    CHECK(strstr(vkb_device_errmsg(t_dev), "17") != NULL);
    m = (vkb_matrix){w, CMP_TYPE_Q8_0, 4, 256};
    CHECK_STATUS(vkb_op_matvec(f.stream, &m, x, y, 9), VKB_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(vkb_op_matvec(f.stream, &m, x, y, 0), VKB_ERR_INVALID_ARGUMENT);
    m = (vkb_matrix){w, CMP_TYPE_F32, 1000, 256}; /* 1 MB of weights in 64 KiB */
    CHECK_STATUS(vkb_op_matmul(f.stream, &m, x, y, 4), VKB_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vkb_device_errmsg(t_dev), "needs") != NULL);
    m = (vkb_matrix){w, CMP_TYPE_F32, 16, 256};
    CHECK_STATUS(vkb_op_matmul(f.stream, &m, x, y, 100), VKB_ERR_INVALID_ARGUMENT); /* x short */
    /* 8-bit x for weights the integer kernels do not read: the message lists those they do */
    CHECK_STATUS(vkb_op_matvec_q8(f.stream, &m, x, y, 1), VKB_ERR_UNSUPPORTED);
    CHECK(strstr(vkb_device_errmsg(t_dev), "q4_0, q8_0, q4_K, q5_K, q6_K weights, not f32"));
    m = (vkb_matrix){w, CMP_TYPE_Q4_K, 16, 256};
    vkb_outputs one = {1, {y}, {16}};
    CHECK_STATUS(vkb_op_matmul_q8_split(f.stream, &m, x, &one, 9), VKB_ERR_UNSUPPORTED);
    CHECK(strstr(vkb_device_errmsg(t_dev), "q4_0, q8_0 weights, not q4_k"));
    m = (vkb_matrix){w, CMP_TYPE_F32, 16, 256};
    vkb_outputs outs = {2, {y, y}, {10, 5}}; /* 15 rows of 16 */
    CHECK_STATUS(vkb_op_matvec_split(f.stream, &m, x, &outs, 1), VKB_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vkb_device_errmsg(t_dev), "15 rows") != NULL);
    outs = (vkb_outputs){4, {y, y}, {10, 6}};
    CHECK_STATUS(vkb_op_matmul_split(f.stream, &m, x, &outs, 9), VKB_ERR_INVALID_ARGUMENT);
    outs = (vkb_outputs){2, {y, y}, {16, 0}};
    CHECK_STATUS(vkb_op_matvec_split(f.stream, &m, x, &outs, 1), VKB_ERR_INVALID_ARGUMENT);
    /* the fused prologue: 2 q heads and 1 kv head of 4 rows make W's 16 */
    vkb_kv_write kv = {.pos = x,
                       .freqs = x,
                       .shape = {4, 4, 2, 1, true},
                       .kv_heads = 1,
                       .k_cache = y,
                       .v_cache = y};
    CHECK_STATUS(vkb_op_matvec_rope(f.stream, &m, x, NULL, 0.0f, y, NULL, 1),
                 VKB_ERR_INVALID_ARGUMENT);
    kv.shape.rot_dims = 2; /* neox quads need rot_dims % 4 == 0 */
    CHECK_STATUS(vkb_op_matvec_rope(f.stream, &m, x, NULL, 0.0f, y, &kv, 1),
                 VKB_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vkb_device_errmsg(t_dev), "multiple of 4 in neox order") != NULL);
    kv.shape.rot_dims = 4;
    kv.shape.heads = 3; /* 12 + 2 x 4 rows where W has 16 */
    CHECK_STATUS(vkb_op_matvec_rope(f.stream, &m, x, NULL, 0.0f, y, &kv, 1),
                 VKB_ERR_INVALID_ARGUMENT);
    kv.shape.heads = 2;
    CHECK_STATUS(vkb_op_matvec_rope(f.stream, &m, x, NULL, 0.0f, y, &kv, 2), /* tokens 1 */
                 VKB_ERR_INVALID_ARGUMENT);
    kv.pos = NULL;
    CHECK(vkb_op_matvec_rope(f.stream, &m, x, NULL, 0.0f, y, &kv, 1) != VKB_OK);
    CHECK(strstr(vkb_device_errmsg(t_dev), "pos") != NULL);
    CHECK_OK(vkb_stream_submit(f.stream));
    CHECK_OK(vkb_stream_wait(f.stream));
    teardown(&f);
}

int main(int argc, char **argv)
{
    static const t_case cases[] = {
        {"get_rows", test_get_rows, true},
        {"matvec", test_matvec, true},
        {"matvec_staged", test_matvec_staged, true},
        {"matvec_lanes", test_matvec_lanes, true},
        {"matvec_int_dot", test_matvec_int_dot, true},
        {"matmul_int_dot", test_matmul_int_dot, true},
        {"matvec_add", test_matvec_add, true},
        {"outputs", test_outputs, true},
        {"matvec_norm", test_matvec_norm, true},
        {"matvec_glu", test_matvec_glu, true},
        {"matvec_rope", test_matvec_rope, true},
        {"matmul", test_matmul, true},
        {"matmul_tiles", test_matmul_tiles, true},
        {"matmul_coopmat", test_matmul_coopmat, true},
        {"split_matrix", test_split_matrix, true},
        {"errors", test_matrix_errors, true},
    };
    return t_main(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
}
