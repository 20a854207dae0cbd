/* The weight products' integer-dot path (activations quantized to 8-bit blocks on the
 * GPU) and the fusions into them (the residual add, several outputs from one read of x,
 * the rms_norm before, silu·mul after gate and up, rope and the KV cache write after
 * q/k/v), each against the plain op and the plain-C references, for every format and the
 * forced paths (matrix_common.h says what the exact data is). */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmp_half.h"
#include "matrix_common.h"
#include "vkb_ref.h"

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

/* The integer-dot matvec's formats; the matmul takes these and the rest of the quantized
 * ones. */
static const cmp_type int_dot_types[] = {CMP_TYPE_Q4_0, CMP_TYPE_Q8_0, CMP_TYPE_Q4_K, CMP_TYPE_Q5_K,
                                         CMP_TYPE_Q6_K};
static const cmp_type matmul_int_dot_types[] = {CMP_TYPE_Q4_0, CMP_TYPE_Q8_0, CMP_TYPE_Q4_1,
                                                CMP_TYPE_Q5_0, CMP_TYPE_Q5_1, CMP_TYPE_IQ4_NL,
                                                CMP_TYPE_Q4_K, CMP_TYPE_Q5_K, CMP_TYPE_Q6_K};

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

/* matmul_int_dot.comp: tiles cut short in rows, columns and K, for every quantized format
 * (the K-quants where K holds their 256-value blocks). */
static void test_matmul_int_dot(void)
{
    struct fixture f;
    if (!int_dot_setup(&f))
        return;
    bool heavy = t_all_variants();
    static const struct shape shapes[] = {{1, 32, 9},      {7, 96, 33},  {65, 512, 17},
                                          {70, 11008, 12}, {3, 768, 20}, {4097, 64, 10},
                                          {40, 4096, 512}};
    const size_t n_types = sizeof matmul_int_dot_types / sizeof matmul_int_dot_types[0];
    vkb_coopmat_mode was = vkb_op_coopmat_mode(t_dev, VKB_COOPMAT_OFF);
    for (size_t ti = 0; ti < n_types; ti++) {
        cmp_type t = matmul_int_dot_types[ti];
        CHECK(vkb_op_matmul_int_dot(t_dev, t));
        fprintf(stderr, "  %s\n", vkb_op_matmul_variant(t_dev, t));
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
            if (shapes[si].k % cmp_type_get(t)->block_size == 0 && (heavy || shapes[si].n < 512) &&
                (ti < 2 || shapes[si].n < 512)) /* n = 512 for q4_0 and q8_0 */
                check_int_dot(&f, t, shapes[si], 5500 + 100 * ti + si);
    }
    /* the tiles other devices get (matmul_int_dot_spec), and odd ones (K by TK / 32 blocks),
     * for a format of each kind the tile loop treats apart: q4_0 and q8_0 (one scale), q4_1
     * (a minimum), q6_K (a scale per 16 values) */
    static const vkb_matmul_tuning tiles[] = {
        {64, 64, 64, 4, 4}, {32, 32, 64, 4, 4}, {64, 64, 128, 8, 4}, {16, 64, 32, 2, 8}};
    static const cmp_type tile_types[] = {CMP_TYPE_Q4_0, CMP_TYPE_Q8_0, CMP_TYPE_Q4_1,
                                          CMP_TYPE_Q6_K};
    const vkb_device_info *info = vkb_device_get_info(t_dev);
    for (size_t i = 0; i < sizeof tiles / sizeof tiles[0]; i++) {
        if (vkb_matmul_tuning_wg(&tiles[i]) > info->max_workgroup_invocations)
            continue;
        vkb_op_matmul_tune(t_dev, &tiles[i]);
        fprintf(stderr, "  %ux%ux%u/%ux%u\n", tiles[i].tm, tiles[i].tn, tiles[i].tk, tiles[i].rm,
                tiles[i].rn);
        for (size_t ti = 0; ti < sizeof tile_types / sizeof tile_types[0]; ti++) {
            cmp_type t = tile_types[ti];
            for (size_t si = 0; si < 5; si++)
                if (shapes[si].k % cmp_type_get(t)->block_size == 0)
                    check_int_dot(&f, t, shapes[si], 5800 + 100 * i + 10 * ti + si);
        }
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
 * its rows of the stacked product the plain op writes, for every path (float in place and
 * staged, integer dot, matmul), and writes nothing past its columns. Within rounding, not
 * bit for bit: the two are specializations of one shader with the same sums, but Vulkan
 * promises no invariance between two shaders, and lavapipe at subgroup 4 rounds them
 * differently (1 in 10^7). The budget, 2^-16 of the value's magnitude (|y| + 1), is over
 * 100 times that and 10^4 times below a misplaced row or a block left out. */
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
                for (uint32_t r = 0; r < outs.rows[o]; r++) {
                    float g = got[(size_t)c * outs.rows[o] + r],
                          p = plain[(size_t)c * rows + base + r];
                    bad += !(fabsf(g - p) <= 0x1p-16f * (fabsf(p) + 1.0f));
                }
            for (size_t j = len; j < len + guard; j++)
                spoiled += got[j] != -12345.0f;
        }
        CHECK_MSG(bad == 0,
                  "%s %s%s, %u outputs, n=%u: %zu values differ from the stacked product by more "
                  "than 2^-16 of their magnitude",
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
    /* the device's own plan, for the formats in this run (format_in_run) */
    bool capped = !t_all_variants();
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        cmp_type t = all_types[ti];
        const uint32_t rows[1] = {37};
        if (format_in_run(ti))
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

/* Gate and up stacked, act·mul in the product's epilogue (vkb_op_matvec_glu, silu or gelu):
 * the same bits as the split product into gate and up, then vkb_op_glu_mul; with the norm fused
 * too, as the norm-fused split product then silu·mul; from 8-bit blocks (forced on), as
 * the q8 split product. On the device's plan and each path forced (rows per workgroup or
 * per invocation made even), ff not a multiple of the rows per workgroup. */
static void check_glu(struct fixture *f, vkb_act act, cmp_type t, uint32_t ff, uint32_t k,
                      uint32_t n, bool with_norm, bool q8, uint64_t seed, const char *path)
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
        CHECK_OK(vkb_op_matvec_q8_glu(f->stream, act, &m, bq, bh, n));
    } else if (with_norm) {
        CHECK_OK(vkb_op_matvec_norm_split(f->stream, &m, bx, bg, 1e-5f, &split, n));
        CHECK_OK(vkb_op_matvec_glu(f->stream, act, &m, bx, bg, 1e-5f, bh, n));
    } else {
        CHECK_OK(vkb_op_matvec_split(f->stream, &m, bx, &split, n));
        CHECK_OK(vkb_op_matvec_glu(f->stream, act, &m, bx, NULL, 0.0f, bh, n));
    }
    CHECK_OK(vkb_op_glu_mul(f->stream, act, bw, gate, up, outn));
    CHECK_OK(vkb_stream_submit(f->stream));
    CHECK_OK(vkb_stream_wait(f->stream));
    CHECK_OK(vkb_buffer_download(t_dev, bw, 0, want, outn * 4));
    CHECK_OK(vkb_buffer_download(t_dev, bh, 0, got, outn * 4));
    size_t first = 0, bad = bits_differ(got, want, outn, &first);
    CHECK_MSG(bad == 0,
              "matvec_glu %s %s (%s%s%s) ff=%u k=%u n=%u: %zu of %zu values differ from the "
              "split product and glu_mul; first [col %zu][row %zu] = %.9g, want %.9g",
              act == VKB_ACT_GELU ? "gelu" : "silu", tname(t), path, with_norm ? ", norm" : "",
              q8 ? ", 8-bit x" : "", ff, k, n, bad, outn, first / ff, first % ff,
              (double)got[first], (double)want[first]);
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
    bool capped = !t_all_variants();
    static const cmp_type plan_types[] = {CMP_TYPE_F16,  CMP_TYPE_Q4_0, CMP_TYPE_Q8_0,
                                          CMP_TYPE_Q4_K, CMP_TYPE_Q6_K, CMP_TYPE_IQ4_NL};
    for (size_t ti = 0; ti < sizeof plan_types / sizeof plan_types[0]; ti++) {
        cmp_type t = plan_types[ti];
        if (capped && ti % 3 != 0)
            continue;
        check_glu(&f, VKB_ACT_SILU, t, 45, k_for(t, 512), 1, true, false, 9700 + 10 * ti, "plan");
        check_glu(&f, VKB_ACT_GELU, t, 45, k_for(t, 512), 3, false, false, 9705 + 10 * ti, "plan");
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
        vkb_act act = p % 2 ? VKB_ACT_GELU : VKB_ACT_SILU;
        check_glu(&f, act, CMP_TYPE_Q4_0, 37, 512, 2, p % 2 == 0, false, 9800 + 10 * p,
                  paths[p].name);
        if (!capped)
            check_glu(&f, p % 2 ? VKB_ACT_SILU : VKB_ACT_GELU, CMP_TYPE_Q4_K, 19, 768, 1,
                      p % 2 == 1, false, 9805 + 10 * p, paths[p].name);
    }
    vkb_op_matvec_tune(t_dev, NULL);
    /* from 8-bit blocks, the integer-dot kernel forced on */
    if (vkb_device_get_info(t_dev)->int_dot) {
        static const cmp_type q8_types[] = {CMP_TYPE_Q4_0, CMP_TYPE_Q4_K, CMP_TYPE_Q6_K};
        for (size_t ti = 0; ti < sizeof q8_types / sizeof q8_types[0]; ti++) {
            if (capped && ti > 0)
                break;
            force_path(q8_types[ti], 2, 1, false);
            check_glu(&f, VKB_ACT_SILU, q8_types[ti], 21, 512, 2, false, true, 9900 + 10 * ti,
                      "int-dot");
            check_glu(&f, VKB_ACT_GELU, q8_types[ti], 21, 512, 1, false, true, 9905 + 10 * ti,
                      "int-dot");
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
    bool capped = !t_all_variants();
    /* GQA, partial rotation (normal with rot_dims % 4 == 2), MHA, 1 to 8 tokens, biases */
    static const struct rope_case cases[] = {
        {4, 2, 32, 32, false, 1, 5, false}, {4, 2, 32, 32, true, 3, 0, true},
        {3, 1, 20, 18, false, 2, 7, true},  {2, 2, 24, 16, true, 8, 1, false},
        {6, 2, 16, 8, true, 1, 0, true},
    };
    static const cmp_type plan_types[] = {CMP_TYPE_F16, CMP_TYPE_Q4_0, CMP_TYPE_Q8_0, CMP_TYPE_Q4_K,
                                          CMP_TYPE_Q6_K};
    /* each format takes the cases of its parity, so every case runs for two or three
     * formats (the epilogue is the same code for all: each pairing is another pipeline
     * for lavapipe to compile, and there were 25) */
    for (size_t ti = 0; ti < sizeof plan_types / sizeof plan_types[0]; ti++) {
        if (capped && ti % 2 != 0)
            continue;
        cmp_type t = plan_types[ti];
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
            if ((c + ti) % 2 == 0 || capped)
                check_rope(&f, t, k_for(t, 512), &cases[c], (c + ti) / 2 % 2 == 0, false,
                           (c + ti) % 3 == 0, 10000 + 100 * ti + 10 * c, "plan");
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

int main(int argc, char **argv)
{
    static const t_case cases[] = {
        {"matvec_int_dot", test_matvec_int_dot, true},
        {"matmul_int_dot", test_matmul_int_dot, true},
        {"matvec_add", test_matvec_add, true},
        {"outputs", test_outputs, true},
        {"matvec_norm", test_matvec_norm, true},
        {"matvec_glu", test_matvec_glu, true},
        {"matvec_rope", test_matvec_rope, true},
    };
    return t_main(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
}
