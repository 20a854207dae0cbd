/* The backend's kernels against plain-C references on seeded random data. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "vkb_ops.h"

/* Error budget of a float reduction of n values: every partial sum is a float, and each
 * value passes through at most ELEMS sequential adds plus about log2(n) tree levels, each
 * adding at most one rounding (FLT_EPSILON/2 relative) of a partial bounded by sum|x|.
 * Twice that, to stay clear of the bound. */
static double sum_budget(uint64_t n, double sum_abs)
{
    return 2.0 * (4.0 + log2((double)n + 1.0)) * (FLT_EPSILON / 2.0) * sum_abs;
}

struct bufs {
    vkb_arena *arena;
    vkb_stream *stream;
};

static bool setup(struct bufs *b, uint32_t timings)
{
    memset(b, 0, sizeof *b);
    CHECK_OK(vkb_arena_create(t_dev, VKB_PURPOSE_SCRATCH, 0, &b->arena));
    CHECK_OK(vkb_stream_create(t_dev, timings, &b->stream));
    return b->arena && b->stream;
}

static void teardown(struct bufs *b)
{
    vkb_stream_destroy(b->stream);
    vkb_arena_destroy(b->arena);
}

static vkb_buffer *upload_floats(struct bufs *b, const float *x, uint64_t n)
{
    return t_upload(b->arena, x, n * 4, 0);
}

static void test_add(void)
{
    /* 1, primes, around the workgroup, and past 65535 workgroups of 256 (folded grid) */
    static const uint64_t sizes[] = {1, 7, 255, 256, 257, 100003, (65535u * 256u) + 1001};
    struct bufs b;
    if (!setup(&b, 0))
        return;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        uint64_t n = sizes[k];
        float *x = t_random_floats(n, 10 + k, -100.f, 100.f),
              *y = t_random_floats(n, 20 + k, -1.f, 1.f);
        float *out = malloc(n * sizeof *out);
        vkb_arena_reset(b.arena);
        vkb_buffer *bx = upload_floats(&b, x, n), *by = upload_floats(&b, y, n),
                   *bo = upload_floats(&b, NULL, n);
        if (!x || !y || !out || !bx || !by || !bo) {
            t_fail_at(__FILE__, __LINE__, "setup failed for n=%llu", (unsigned long long)n);
        } else {
            CHECK_OK(vkb_stream_begin(b.stream));
            CHECK_OK(vkb_op_add(b.stream, bo, bx, by, n));
            CHECK_OK(vkb_stream_submit(b.stream));
            CHECK_OK(vkb_stream_wait(b.stream));
            CHECK_OK(vkb_buffer_download(t_dev, bo, 0, out, n * 4));
            /* one f32 add, correctly rounded on every Vulkan device: bit-exact */
            uint64_t bad = 0;
            for (uint64_t i = 0; i < n; i++)
                bad += out[i] != x[i] + y[i];
            CHECK_MSG(bad == 0, "add n=%llu: %llu of %llu values differ", (unsigned long long)n,
                      (unsigned long long)bad, (unsigned long long)n);
        }
        free(x);
        free(y);
        free(out);
    }
    teardown(&b);
}

static void check_sum(struct bufs *b, uint64_t n, uint64_t seed)
{
    float *x = t_random_floats(n, seed, -1.f, 2.f);
    vkb_arena_reset(b->arena);
    vkb_buffer *bx = upload_floats(b, x, n), *bo = upload_floats(b, NULL, 1), *bt = NULL;
    CHECK_OK(vkb_buffer_alloc(b->arena, vkb_op_sum_tmp_bytes(t_dev, n), 0, &bt));
    if (!x || !bx || !bo || !bt) {
        t_fail_at(__FILE__, __LINE__, "setup failed for n=%llu", (unsigned long long)n);
        free(x);
        return;
    }
    CHECK_OK(vkb_stream_begin(b->stream));
    CHECK_OK(vkb_op_sum(b->stream, bo, bx, n, bt));
    CHECK_OK(vkb_stream_submit(b->stream));
    CHECK_OK(vkb_stream_wait(b->stream));
    float got = 0;
    CHECK_OK(vkb_buffer_download(t_dev, bo, 0, &got, 4));
    double ref = 0, abs_sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        ref += x[i];
        abs_sum += fabs(x[i]);
    }
    double err = fabs((double)got - ref), budget = sum_budget(n, abs_sum);
    CHECK_MSG(err <= budget, "%s n=%llu: got %.9g, want %.9g (error %.3g > budget %.3g)",
              vkb_op_sum_variant(t_dev), (unsigned long long)n, (double)got, ref, err, budget);
    free(x);
}

static void test_sum(void)
{
    static const uint64_t sizes[] = {1, 2, 7, 1023, 1024, 1025, 4097, 1000003, 20000000};
    struct bufs b;
    if (!setup(&b, 0))
        return;
    fprintf(stderr, "  variant: %s\n", vkb_op_sum_variant(t_dev));
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
        check_sum(&b, sizes[k], 100 + k);
    teardown(&b);
}

/* Both variants where the device has both: the fallback stays correct on GPUs that
 * could use the fast one. */
static void test_sum_variants_agree(void)
{
    const vkb_device_info *info = vkb_device_get_info(t_dev);
    if (t_profile == VKB_PROFILE_MINIMAL)
        CHECK(strcmp(vkb_op_sum_variant(t_dev), "sum_shared") == 0);
    if ((info->subgroup_ops & VKB_SUBGROUP_ARITHMETIC) && t_profile != VKB_PROFILE_MINIMAL)
        CHECK(strcmp(vkb_op_sum_variant(t_dev), "sum_subgroup") == 0);
    /* run the shared-memory kernel directly over one workgroup's slice, odd sizes */
    struct bufs b;
    if (!setup(&b, 0))
        return;
    static const uint32_t wgs[] = {1, 3, 64, 96, 128};
    for (size_t k = 0; k < sizeof wgs / sizeof wgs[0]; k++) {
        vkb_spec spec = {.count = 1, .values = {wgs[k]}};
        vkb_pipeline *p = NULL;
        CHECK_OK(vkb_pipeline_get(t_dev, "sum_shared", &spec, &p));
        uint32_t n = wgs[k] * 4 - 1;
        float *x = t_random_floats(n, 300 + k, -3.f, 3.f);
        vkb_arena_reset(b.arena);
        vkb_buffer *bx = upload_floats(&b, x, n), *bo = upload_floats(&b, NULL, 1);
        if (p && x && bx && bo) {
            vkb_binding bind[2] = {{bx, 0, 0}, {bo, 0, 4}};
            uint64_t elems[3] = {n, 1, 1};
            CHECK_OK(vkb_stream_begin(b.stream));
            CHECK_OK(vkb_stream_dispatch(b.stream, p, bind, 2, &n, 4, elems, NULL));
            CHECK_OK(vkb_stream_submit(b.stream));
            CHECK_OK(vkb_stream_wait(b.stream));
            float got = 0;
            double ref = 0, abs_sum = 0;
            CHECK_OK(vkb_buffer_download(t_dev, bo, 0, &got, 4));
            for (uint32_t i = 0; i < n; i++) {
                ref += x[i];
                abs_sum += fabs(x[i]);
            }
            CHECK_MSG(fabs(got - ref) <= sum_budget(n, abs_sum), "sum_shared wg=%u: %g vs %g",
                      wgs[k], (double)got, ref);
        }
        free(x);
    }
    teardown(&b);
}

static void test_copy_and_chain(void)
{
    /* copy → add → add → sum in one stream: every step reads the previous one's output,
     * so the stream must place barriers (synchronization validation checks them) */
    const uint64_t n = 300000;
    struct bufs b;
    if (!setup(&b, 16))
        return;
    float *x = t_random_floats(n, 5, -1.f, 1.f), *y = t_random_floats(n, 6, -1.f, 1.f);
    float *out = malloc(n * 4);
    vkb_buffer *bx = upload_floats(&b, x, n), *by = upload_floats(&b, y, n),
               *bc = upload_floats(&b, NULL, n), *bd = upload_floats(&b, NULL, n),
               *bs = upload_floats(&b, NULL, 1), *bt = NULL;
    CHECK_OK(vkb_buffer_alloc(b.arena, vkb_op_sum_tmp_bytes(t_dev, n), 0, &bt));
    if (x && y && out && bx && by && bc && bd && bs && bt) {
        CHECK_OK(vkb_stream_begin(b.stream));
        CHECK_OK(vkb_op_copy(b.stream, bc, bx, n * 4)); /* c = x */
        CHECK_OK(vkb_op_add(b.stream, bd, bc, by, n));  /* d = x + y */
        CHECK_OK(vkb_op_add(b.stream, bc, bd, by, n));  /* c = x + 2y (c was read above) */
        CHECK_OK(vkb_op_sum(b.stream, bs, bc, n, bt));
        CHECK_OK(vkb_stream_copy(b.stream, bc, 0, bd, 0, n * 4)); /* d = c */
        CHECK_OK(vkb_stream_submit(b.stream));
        CHECK_OK(vkb_stream_wait(b.stream));
        CHECK_OK(vkb_buffer_download(t_dev, bd, 0, out, n * 4));
        uint64_t bad = 0;
        double ref = 0, abs_sum = 0;
        for (uint64_t i = 0; i < n; i++) {
            float want = (x[i] + y[i]) + y[i];
            bad += out[i] != want;
            ref += want;
            abs_sum += fabs(want);
        }
        CHECK_MSG(bad == 0, "chain: %llu values differ", (unsigned long long)bad);
        float s = 0;
        CHECK_OK(vkb_buffer_download(t_dev, bs, 0, &s, 4));
        CHECK(fabs(s - ref) <= sum_budget(n, abs_sum));

        /* named timings, in dispatch order */
        uint32_t nt = vkb_stream_timing_count(b.stream);
        if (vkb_device_get_info(t_dev)->timestamp_valid_bits) {
            CHECK(nt >= 5);
            CHECK(strcmp(vkb_stream_timing(b.stream, 0).label, "copy") == 0);
            CHECK(strcmp(vkb_stream_timing(b.stream, 1).label, "add") == 0);
            CHECK(strcmp(vkb_stream_timing(b.stream, nt - 1).label, "copy") == 0);
            double total = 0;
            for (uint32_t i = 0; i < nt; i++) {
                CHECK(vkb_stream_timing(b.stream, i).ms >= 0);
                total += vkb_stream_timing(b.stream, i).ms;
            }
            CHECK(total > 0);
            CHECK(fabs(total - vkb_stream_total_ms(b.stream)) < 1e-6 + 1e-9 * total);
        } else {
            CHECK(nt == 0);
        }
    } else {
        t_fail_at(__FILE__, __LINE__, "setup failed");
    }
    free(x);
    free(y);
    free(out);
    teardown(&b);
}

int main(int argc, char **argv)
{
    static const t_case cases[] = {
        {"add", test_add, true},
        {"sum", test_sum, true},
        {"sum_variants", test_sum_variants_agree, true},
        {"copy_and_chain", test_copy_and_chain, true},
    };
    return t_main(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
}
