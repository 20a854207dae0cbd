#include "harness.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vkb_ops.h"

vkb_context *t_ctx;
vkb_device *t_dev;
vkb_profile t_profile = VKB_PROFILE_NATIVE;

static int failures_in_case;

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool skipped_case;

void t_fail_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "  FAIL %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    failures_in_case++;
}

void t_skip(const char *why)
{
    fprintf(stderr, "  skipped: %s\n", why);
    skipped_case = true;
}

bool t_coopmat_begin(void)
{
    vkb_op_coopmat_mode(t_dev, VKB_COOPMAT_ON);
    if (!vkb_op_matmul_coopmat(t_dev))
        vkb_op_coopmat_mode(t_dev, VKB_COOPMAT_EMULATED);
    if (vkb_op_matmul_coopmat(t_dev))
        return true;
    vkb_op_coopmat_mode(t_dev, VKB_COOPMAT_AUTO);
    t_skip("no cooperative-matrix path, not even emulated: the device (profile) has no f16 "
           "arithmetic, or subgroups under 8");
    return false;
}

uint64_t t_rand_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

float t_rand_float(uint64_t *s, float lo, float hi)
{
    return lo + (hi - lo) * (float)((double)(t_rand_u64(s) >> 11) * (1.0 / 9007199254740992.0));
}

void t_rand_bytes(uint64_t *s, void *dst, size_t n)
{
    uint8_t *p = dst;
    while (n >= 8) {
        uint64_t v = t_rand_u64(s);
        memcpy(p, &v, 8);
        p += 8;
        n -= 8;
    }
    uint64_t v = t_rand_u64(s);
    memcpy(p, &v, n);
}

char *t_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) {
            char *b = realloc(buf, (cap *= 2) + 1);
            if (!b)
                free(buf);
            buf = b;
        }
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        if (len)
            *len = n;
    }
    return buf;
}

const char *t_shared_dir(void)
{
    const char *d = getenv("VKLLM_SHARED_DIR");
    return d && *d ? d : NULL;
}

bool t_all_variants(void)
{
    const char *sg = getenv("VKLLM_TEST_SUBGROUP");
    return t_profile == VKB_PROFILE_NATIVE && !(sg && *sg);
}

static bool require_device(void)
{
    const char *v = getenv("VKLLM_TEST_REQUIRE_DEVICE");
    return v && strcmp(v, "1") == 0;
}

/* 0 = opened, 77 = no device (skip), 1 = failure */
static int open_fixture(void)
{
    vkb_context_config cfg = {.validation = true, .sync_validation = true};
    vkb_status st = vkb_context_create(&cfg, &t_ctx);
    if (st == VKB_ERR_NO_LOADER || st == VKB_ERR_NO_DEVICE) {
        fprintf(stderr, "%s: %s\n", require_device() ? "error" : "skipping GPU tests",
                vkb_context_errmsg(t_ctx));
        return require_device() ? 1 : 77;
    }
    if (st != VKB_OK) {
        fprintf(stderr, "error: %s\n", vkb_context_errmsg(t_ctx));
        return 1;
    }
    uint32_t index;
    const char *sel = getenv("VKLLM_TEST_DEVICE");
    if (vkb_context_select_device(t_ctx, sel, &index) != VKB_OK) {
        fprintf(stderr, "error: %s\n", vkb_context_errmsg(t_ctx));
        return 1;
    }
    vkb_device_config dc = {.index = index, .profile = t_profile};
    if (vkb_device_open(t_ctx, &dc, &t_dev) != VKB_OK) {
        fprintf(stderr, "error: opening device: %s\n", vkb_device_errmsg(t_dev));
        return 1;
    }
    const vkb_device_info *info = vkb_device_get_info(t_dev);
    fprintf(stderr, "device: %s (%s, %s profile), validation on\n", info->name, info->driver_info,
            vkb_profile_name(t_profile));
    /* a run for one subgroup size (lavapipe's is its SIMD width: LP_NATIVE_VECTOR_WIDTH / 32
     * invocations); other devices have their own and skip it */
    const char *sg = getenv("VKLLM_TEST_SUBGROUP");
    if (sg && *sg && strtoul(sg, NULL, 10) != info->subgroup_size) {
        fprintf(stderr,
                "skipping GPU tests: this run is for subgroups of %s invocations, the device's "
                "are %u (lavapipe's follow LP_NATIVE_VECTOR_WIDTH: 32 x the size)\n",
                sg, info->subgroup_size);
        return 77;
    }
    return 0;
}

/* Any validation message since the last call fails the current case. */
static void drain_validation(const char *when)
{
    if (!t_ctx)
        return;
    uint32_t n = vkb_context_validation_count(t_ctx);
    for (uint32_t i = 0; i < n; i++) {
        const char *m = vkb_context_validation_message(t_ctx, i);
        fprintf(stderr, "  FAIL validation message %s: %s\n", when, m ? m : "(more not kept)");
        if (!m)
            break;
    }
    if (n)
        failures_in_case++;
    vkb_context_validation_clear(t_ctx);
}

int t_main(int argc, char **argv, const t_case *cases, int n_cases)
{
    /* the cases named on the command line, or all */
    const char *only[64];
    int n_only = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--profile") == 0 && i + 1 < argc) {
            if (!vkb_profile_parse(argv[++i], &t_profile)) {
                fprintf(stderr, "unknown profile %s\n", argv[i]);
                return 2;
            }
        } else {
            if (n_only == 64) {
                fprintf(stderr, "more than 64 cases named\n");
                return 2;
            }
            only[n_only++] = argv[i];
        }
    }
    /* a misspelt case would run nothing and pass */
    for (int k = 0; k < n_only; k++) {
        bool known = false;
        for (int i = 0; i < n_cases && !known; i++)
            known = strcmp(only[k], cases[i].name) == 0;
        if (!known) {
            fprintf(stderr, "no case is named %s; the cases:", only[k]);
            for (int i = 0; i < n_cases; i++)
                fprintf(stderr, " %s", cases[i].name);
            fprintf(stderr, "\n");
            return 2;
        }
    }
    bool need_gpu = false;
    for (int i = 0; i < n_cases; i++)
        need_gpu = need_gpu || cases[i].gpu;
    int gpu = need_gpu ? open_fixture() : 0;
    if (gpu == 1) {
        printf("0 passed, 1 failed\n");
        vkb_device_close(t_dev);
        vkb_context_destroy(t_ctx);
        return 1;
    }
    drain_validation("while opening the device");

    int passed = 0, failed = 0, skipped = 0;
    for (int i = 0; i < n_cases; i++) {
        const t_case *c = &cases[i];
        bool named = n_only == 0;
        for (int k = 0; k < n_only && !named; k++)
            named = strcmp(only[k], c->name) == 0;
        if (!named)
            continue;
        if (c->gpu && gpu == 77) {
            skipped++;
            continue;
        }
        failures_in_case = 0;
        skipped_case = false;
        fprintf(stderr, "[ RUN  ] %s\n", c->name);
        double start = seconds_now();
        c->fn();
        drain_validation("during the test");
        const char *verdict = "[  OK  ]";
        if (failures_in_case) {
            failed++;
            verdict = "[ FAIL ]";
        } else if (skipped_case) {
            skipped++;
            verdict = "[ SKIP ]";
        } else {
            passed++;
        }
        /* The time says which cases a cold run (pipelines compiled on first use) spends on. */
        fprintf(stderr, "%s %s (%.1f s)\n", verdict, c->name, seconds_now() - start);
    }
    failures_in_case = 0;
    vkb_device_close(t_dev);
    t_dev = NULL;
    drain_validation("while closing the device");
    failed += failures_in_case;
    vkb_context_destroy(t_ctx);
    t_ctx = NULL;

    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    if (failed)
        return 1;
    return passed == 0 && skipped > 0 ? 77 : 0;
}

float *t_random_floats(size_t n, uint64_t seed, float lo, float hi)
{
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; x && i < n; i++)
        x[i] = t_rand_float(&seed, lo, hi);
    return x;
}

vkb_buffer *t_upload(vkb_arena *arena, const void *data, uint64_t bytes, uint64_t granule)
{
    vkb_buffer *b = NULL;
    CHECK_OK(vkb_buffer_alloc(arena, bytes, granule, &b));
    if (b && data)
        CHECK_OK(vkb_buffer_upload(t_dev, b, 0, data, bytes));
    return b;
}
