/* Weight-matrix kernels (matvec, matmul, get_rows) for every GGUF format against the
 * plain-C references in vkb_ref.h; the integer-dot path and the fusions are in
 * test_matrix_fused.c.
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
#include "matrix_common.h"
#include "vkb_ref.h"

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
        /* the extra column counts for the formats in this run (format_in_run) */
        bool capped = !format_in_run(ti);
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
            if (!format_in_run(ti))
                continue; /* q4_1 and q4_K stage as the others do */
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
            if (!format_in_run(ti))
                continue; /* the subgroup's broadcasts are the same code for every format */
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

static void test_matmul(void)
{
    struct fixture f;
    if (!setup(&f))
        return;
    bool heavy = t_all_variants();
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
    vkb_outputs one = {1, {y}, {16}};
    CHECK_STATUS(vkb_op_matmul_q8_split(f.stream, &m, x, &one, 9), VKB_ERR_UNSUPPORTED);
    CHECK(strstr(vkb_device_errmsg(t_dev),
                 "q4_0, q4_1, q5_0, q5_1, q8_0, q4_K, q5_K, q6_K, iq4_nl weights, not f32"));
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
        {"matmul", test_matmul, true},
        {"matmul_tiles", test_matmul_tiles, true},
        {"matmul_coopmat", test_matmul_coopmat, true},
        {"split_matrix", test_split_matrix, true},
        {"errors", test_matrix_errors, true},
    };
    return t_main(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
}
