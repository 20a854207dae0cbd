/* The weight-matrix tests' data and runners (test_matrix.c, test_matrix_fused.c): exact
 * and quantized weights, the fixture, one op run against its reference. What "exact"
 * data is: matrix_common.h. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmp_half.h"
#include "matrix_common.h"
#include "vkb_ref.h"

const cmp_type all_types[] = {
    CMP_TYPE_F32,  CMP_TYPE_F16,  CMP_TYPE_BF16, CMP_TYPE_Q4_0, CMP_TYPE_Q4_1, CMP_TYPE_Q5_0,
    CMP_TYPE_Q5_1, CMP_TYPE_Q8_0, CMP_TYPE_Q4_K, CMP_TYPE_Q5_K, CMP_TYPE_Q6_K, CMP_TYPE_IQ4_NL,
};
_Static_assert(sizeof all_types / sizeof all_types[0] == N_TYPES, "N_TYPES counts all_types");

const char *tname(cmp_type t)
{
    return cmp_type_get(t)->name;
}

bool format_in_run(size_t ti)
{
    return t_all_variants() || ti % 4 == 0;
}

uint32_t block_of(cmp_type t)
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
uint8_t *exact_weights(cmp_type t, uint32_t rows, uint32_t k, uint64_t seed, int *unit_log2)
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
float *exact_x(uint32_t k, uint32_t n, uint64_t seed)
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
bool exactness_holds(cmp_type t, const uint8_t *w, uint32_t rows, uint32_t k, const float *x,
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
uint8_t *quantized_weights(cmp_type t, uint32_t rows, uint32_t k, uint64_t seed)
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

bool setup(struct fixture *f)
{
    memset(f, 0, sizeof *f);
    CHECK_OK(vkb_arena_create(t_dev, VKB_PURPOSE_WEIGHTS, 0, &f->weights));
    CHECK_OK(vkb_arena_create(t_dev, VKB_PURPOSE_SCRATCH, 0, &f->scratch));
    CHECK_OK(vkb_stream_create(t_dev, 0, &f->stream));
    return f->weights && f->scratch && f->stream;
}

void teardown(struct fixture *f)
{
    vkb_stream_destroy(f->stream);
    vkb_arena_destroy(f->scratch);
    vkb_arena_destroy(f->weights);
}

bool upload_matrix(struct fixture *f, vkb_matrix *m, cmp_type t, const uint8_t *w, uint32_t rows,
                   uint32_t k)
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

/* out (n x rows floats) = W x on the GPU; false when something failed (already reported). */
bool run_matrix_op(struct fixture *f, enum op op, const vkb_matrix *m, const float *x, uint32_t n,
                   float *out)
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
size_t bits_differ(const float *got, const float *want, size_t n, size_t *first)
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
double accum_budget(enum op op, uint32_t k, double sum_abs)
{
    double depth = op == OP_MATVEC ? k / 8.0 + 12.0 : k + 1.0;
    return 2.0 * depth * ldexp(1.0, -24) * sum_abs;
}

const char *op_name(enum op op)
{
    return op == OP_MATVEC ? "matvec" : "matmul";
}

/* One op on one shape and type, exact data: bit-exact with the reference. */
void check_exact(struct fixture *f, enum op op, cmp_type t, struct shape s, uint64_t seed)
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
void check_quantized(struct fixture *f, enum op op, cmp_type t, struct shape s, uint64_t seed)
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
uint32_t k_for(cmp_type t, uint32_t want)
{
    uint32_t b = block_of(t) < 8 ? 8 : block_of(t);
    return want < b ? b : want / b * b;
}
