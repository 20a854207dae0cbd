/* vkllm bench kernels: the weight kernels on model-sized matrices, against the device's
 * measured copy bandwidth (matvec) and FMA rate (matmul). */
#include <stdlib.h>
#include <string.h>

#include "tool.h"
#include "vkb_ops.h"

static const char kernels_usage[] =
    "usage: vkllm bench kernels [flags]\n"
    "\n"
    "Times the weight kernels on matrices the size of real models' and prints, per format\n"
    "and shape, the median time, the weight bytes read per second and that as a share of\n"
    "the device's copy bandwidth (measured in the same run). Decode speed is bounded by\n"
    "that bandwidth divided by the weight bytes per token, so matvec near 100% is the goal.\n"
    "matmul (prefill) reports GFLOP/s and its share of the device's measured f32 FMA rate.\n"
    "Where the device dots 8-bit integers faster (or VKLLM_MATVEC=...i forces it), the\n"
    "paths the engine then takes follow their rows: mv-int8 and mm-int8, x already in\n"
    "8-bit blocks. Where the device has NVIDIA's cooperative matrices, mm-cm times\n"
    "matmul on them (W and x in f16; VKLLM_COOPMAT=1 makes prefill take it).\n"
    "\n"
    "  --formats LIST   comma-separated, from f32,f16,bf16,q4_0,q4_1,q5_0,q5_1,q8_0,q4_K,\n"
    "                   q5_K,q6_K,iq4_nl (default: all)\n"
    "  --shapes LIST    ROWSxK matrices, comma-separated (default: 4096x4096,4096x11008,\n"
    "                   11008x4096,4096x14336,14336x4096,4096x32000,4096x128256; ROWS\n"
    "                   outputs of K inputs, as GGUF stores a weight)\n"
    "  --reps N         timed repetitions per case, after 2 warm-ups (default 10)\n"
    "  --matmul-n N     activation columns for matmul (default 512; 0 skips matmul)\n"
    "  --no-baseline    skip the comparison with dequantizing to f32 and multiplying\n"
    "  --tune           instead: time every matvec choice (workgroup size, rows per\n"
    "                   workgroup, staged rows, whole rows per invocation, integer dot\n"
    "                   products) for each format on\n"
    "                   the shapes (default 4096x4096,4096x11008), store the fastest in\n"
    "                   this device's tuning file beside the pipeline cache, which every\n"
    "                   later run on this device and driver reads\n"
    "  --device SEL     device index or part of its name (default: the fastest)\n"
    "  --profile P      native, mobile or minimal: cap the device's capabilities\n"
    "  --validation     Khronos validation layer on (slow; for debugging)\n"
    "\n"
    "Example: vkllm bench kernels --formats q4_0,q4_K --shapes 4096x4096 --reps 20\n";

#define WARMUP 2

static const char *default_shapes =
    "4096x4096,4096x11008,11008x4096,4096x14336,14336x4096,4096x32000,4096x128256";
/* --tune's default: a square and a wide product, as a decode step's mix */
static const char *tune_shapes = "4096x4096,4096x11008";
static const char *default_formats = "f32,f16,bf16,q4_0,q4_1,q5_0,q5_1,q8_0,q4_K,q5_K,q6_K,iq4_nl";

/* One benchmark case's buffers. */
struct bench {
    vkb_device *dev;
    vkb_arena *weights, *scratch;
    vkb_stream *stream;
    int reps;
    bool gpu_timed;
};

/* Median milliseconds of b->reps repetitions of rec; < 0 on failure (the device's
 * message says why). */
static double time_median(struct bench *b, tool_record_fn rec, void *arg)
{
    double median;
    if (tool_time_reps(b->stream, b->gpu_timed, WARMUP, b->reps, rec, arg, &median, NULL) != 0)
        return -1;
    return median;
}

/* ---- the cases ---- */

struct matrix_case {
    vkb_matrix w, w_f32; /* w_f32: the baseline's dequantized copy */
    vkb_buffer *x, *y, *ids, *xq;
    uint32_t n;
};

static vkb_status rec_matvec(vkb_stream *s, void *arg)
{
    struct matrix_case *c = arg;
    return vkb_op_matvec(s, &c->w, c->x, c->y, 1);
}

/* The integer-dot-product matvec from x already in 8-bit blocks (a decode step quantizes
 * each input once for several products). */
static vkb_status rec_matvec_q8(vkb_stream *s, void *arg)
{
    struct matrix_case *c = arg;
    return vkb_op_matvec_q8(s, &c->w, c->xq, c->y, 1);
}

static vkb_status rec_matmul(vkb_stream *s, void *arg)
{
    struct matrix_case *c = arg;
    return vkb_op_matmul(s, &c->w, c->x, c->y, c->n);
}

/* The integer-dot-product matmul from x already in 8-bit blocks (the norm before it made
 * them). */
static vkb_status rec_matmul_q8(vkb_stream *s, void *arg)
{
    struct matrix_case *c = arg;
    vkb_outputs out = {1, {c->y}, {c->w.rows}};
    return vkb_op_matmul_q8_split(s, &c->w, c->xq, &out, c->n);
}

/* The naive way: every row dequantized to f32 in memory, then an f32 matvec. */
static vkb_status rec_baseline(vkb_stream *s, void *arg)
{
    struct matrix_case *c = arg;
    vkb_status st = vkb_op_get_rows(s, &c->w, c->ids, c->w.rows, c->w_f32.buffer);
    return st != VKB_OK ? st : vkb_op_matvec(s, &c->w_f32, c->x, c->y, 1);
}

/* Weights that look like a model's: a pool of rows of random values quantized with
 * compress/, repeated down the matrix (quantizing gigabytes on the CPU would take
 * longer than the benchmark). */
#define POOL_ROWS 64

static vkb_status upload_weights(struct bench *b, vkb_matrix *w, cmp_type type, uint32_t rows,
                                 uint32_t k)
{
    size_t rb = cmp_row_bytes(type, k);
    float *f = malloc((size_t)k * sizeof *f);
    uint8_t *pool = malloc(rb * POOL_ROWS);
    vkb_status st = VKB_ERR_OUT_OF_HOST_MEMORY;
    if (!f || !pool)
        goto out;
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (int r = 0; r < POOL_ROWS; r++) {
        for (uint32_t i = 0; i < k; i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            f[i] = (float)((double)(seed >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
        }
        cmp_quantize(type, f, pool + rb * r, k);
    }
    vkb_buffer *buf;
    st = vkb_buffer_alloc(b->weights, vkb_matrix_bytes(type, k, rows), vkb_matrix_granule(type, k),
                          &buf);
    for (uint32_t r = 0; st == VKB_OK && r < rows; r += POOL_ROWS) {
        uint32_t n = rows - r < POOL_ROWS ? rows - r : POOL_ROWS;
        st = vkb_buffer_upload(b->dev, buf, (uint64_t)r * rb, pool, rb * n);
    }
    *w = (vkb_matrix){buf, type, rows, k};
out:
    free(f);
    free(pool);
    return st;
}

static vkb_buffer *alloc_zero(struct bench *b, uint64_t bytes, vkb_status *st)
{
    vkb_buffer *buf = NULL;
    if (*st == VKB_OK)
        *st = vkb_buffer_alloc(b->scratch, bytes, 0, &buf);
    return buf;
}

struct yardsticks {
    double copy_gbps, fma_gflops;
};

/* One matmul timing: GFLOP/s (two per multiply-add, integer ones too) against the f32
 * FMA rate. */
static void print_matmul_row(struct bench *b, const struct yardsticks *ys, const char *label,
                             const char *tn, struct matrix_case *c,
                             vkb_status (*rec)(vkb_stream *, void *), const char *note)
{
    uint32_t rows = c->w.rows, k = c->w.k;
    double ms = time_median(b, rec, c);
    if (ms < 0) {
        printf("%-7s %-7s %6ux%-7u  n=%u: %s\n", label, tn, rows, k, c->n,
               vkb_device_errmsg(b->dev));
        return;
    }
    double gflops = 2.0 * rows * k * c->n / (ms * 1e6);
    printf("%-7s %-7s %6ux%-7u %9s n=%-5u %10.3f %9.1f GFLOP/s %5.1f%% of FMA%s\n", label, tn, rows,
           k, "", c->n, ms, gflops, ys->fma_gflops > 0 ? 100.0 * gflops / ys->fma_gflops : 0.0,
           note);
    fflush(stdout);
}

static void print_matrix_case(struct bench *b, const struct yardsticks *ys, cmp_type type,
                              uint32_t rows, uint32_t k, uint32_t matmul_n, bool baseline)
{
    const char *tn = cmp_type_get(type)->name;
    struct matrix_case c = {.n = matmul_n};
    vkb_arena_reset(b->weights);
    vkb_arena_reset(b->scratch);
    vkb_status st = upload_weights(b, &c.w, type, rows, k);
    double bytes = (double)cmp_row_bytes(type, k) * rows;
    c.x = alloc_zero(b, (uint64_t)k * 4 * (matmul_n > 1 ? matmul_n : 1), &st);
    c.y = alloc_zero(b, (uint64_t)rows * 4 * (matmul_n > 1 ? matmul_n : 1), &st);
    double ms = st == VKB_OK ? time_median(b, rec_matvec, &c) : -1;
    if (ms < 0) {
        printf("%-7s %-7s %6ux%-7u  failed: %s\n", "matvec", tn, rows, k,
               vkb_device_errmsg(b->dev));
        return;
    }
    double gbps = bytes / (ms * 1e6);
    printf("%-7s %-7s %6ux%-7u %9.1f MiB %10.3f %9.1f %7.1f%%", "matvec", tn, rows, k,
           bytes / 1048576.0, ms, gbps, ys->copy_gbps > 0 ? 100.0 * gbps / ys->copy_gbps : 0.0);
    if (baseline && type != CMP_TYPE_F32) {
        vkb_status bst = VKB_OK;
        uint32_t *ids = malloc((size_t)rows * 4);
        c.ids = alloc_zero(b, (uint64_t)rows * 4, &bst);
        vkb_buffer *f32 = alloc_zero(b, (uint64_t)rows * k * 4, &bst);
        for (uint32_t i = 0; ids && i < rows; i++)
            ids[i] = i;
        if (!ids)
            bst = VKB_ERR_OUT_OF_HOST_MEMORY;
        if (bst == VKB_OK)
            bst = vkb_buffer_upload(b->dev, c.ids, 0, ids, (uint64_t)rows * 4);
        free(ids);
        c.w_f32 = (vkb_matrix){f32, CMP_TYPE_F32, rows, k};
        double bms = bst == VKB_OK ? time_median(b, rec_baseline, &c) : -1;
        if (bms >= 0)
            printf("  dequant+f32 %.3f ms (%.1fx slower)", bms, bms / ms);
        else
            printf("  dequant+f32: does not fit one binding");
    }
    printf("\n");
    if (vkb_op_matvec_int_dot(b->dev, type) && k % 32 == 0) {
        /* the path decode takes on this device: x as 8-bit blocks */
        vkb_status qst = VKB_OK;
        c.xq = alloc_zero(b, vkb_q8_bytes(k, 1), &qst);
        double qms = qst == VKB_OK ? time_median(b, rec_matvec_q8, &c) : -1;
        if (qms >= 0) {
            double qgbps = bytes / (qms * 1e6);
            printf("%-7s %-7s %6ux%-7u %9.1f MiB %10.3f %9.1f %7.1f%%  x as 8-bit blocks\n",
                   "mv-int8", tn, rows, k, bytes / 1048576.0, qms, qgbps,
                   ys->copy_gbps > 0 ? 100.0 * qgbps / ys->copy_gbps : 0.0);
        } else {
            printf("%-7s %-7s %6ux%-7u  failed: %s\n", "mv-int8", tn, rows, k,
                   vkb_device_errmsg(b->dev));
        }
    }
    fflush(stdout);
    if (matmul_n == 0)
        return;
    vkb_coopmat_mode mode = vkb_op_coopmat_mode(b->dev, VKB_COOPMAT_OFF);
    print_matmul_row(b, ys, "matmul", tn, &c, rec_matmul, "");
    if (vkb_op_matmul_int_dot(b->dev, type) && k % 32 == 0) {
        /* the path prefill takes on this device: x as 8-bit blocks */
        vkb_status qst = VKB_OK;
        c.xq = alloc_zero(b, vkb_q8_bytes(k, matmul_n), &qst);
        if (qst == VKB_OK)
            print_matmul_row(b, ys, "mm-int8", tn, &c, rec_matmul_q8, "  x as 8-bit blocks");
    }
    vkb_op_coopmat_mode(b->dev, VKB_COOPMAT_ON);
    if (vkb_op_matmul_coopmat(b->dev))
        print_matmul_row(b, ys, "mm-cm", tn, &c, rec_matmul, "  matrix units, f16 W and x");
    vkb_op_coopmat_mode(b->dev, mode);
}

/* The FMA-rate kernel over n invocations, and the operations it does. */
struct fma_case {
    vkb_buffer *out;
    uint32_t n;
    double flops;
};

static vkb_status rec_fma(vkb_stream *s, void *arg)
{
    struct fma_case *f = arg;
    return vkb_op_fma_peak(s, f->out, f->n, &f->flops);
}

/* The f32 FMA rate, with enough invocations to run 20 ms or more. */
static double measure_fma(struct bench *b)
{
    struct fma_case f = {NULL, 1u << 14, 0};
    vkb_arena_reset(b->scratch);
    if (vkb_buffer_alloc(b->scratch, (1u << 24) * 4ull, 0, &f.out) != VKB_OK)
        return 0;
    for (;;) {
        double ms = time_median(b, rec_fma, &f);
        if (ms < 0)
            return 0;
        if (ms >= 20 || f.n >= (1u << 24))
            return f.flops / (ms * 1e6);
        f.n *= ms < 2 ? 8 : 2;
        if (f.n > (1u << 24))
            f.n = 1u << 24;
    }
}

/* "4096x11008" → rows, k. */
static bool parse_shape(const char *s, uint32_t *rows, uint32_t *k)
{
    char *end;
    unsigned long r = strtoul(s, &end, 10);
    if (end == s || (*end != 'x' && *end != 'X'))
        return false;
    const char *ks = end + 1;
    unsigned long kk = strtoul(ks, &end, 10);
    if (end == ks || *end != '\0' || r == 0 || kk == 0 || r > 1u << 30 || kk > 1u << 30)
        return false;
    *rows = (uint32_t)r;
    *k = (uint32_t)kk;
    return true;
}

/* ---- --tune ---- */

#define MAX_CANDIDATES 64

/* The plan `t` gives for `type`, as the engine would run it (the int-dot kernel reads in
 * place; the plan already drops whole rows per invocation for it). */
static vkb_matvec_tuning effective_plan(vkb_device *dev, cmp_type type, const vkb_matvec_tuning *t)
{
    vkb_op_matvec_tune(dev, t);
    vkb_matvec_tuning e = vkb_op_matvec_plan(dev, type, 1);
    e.int_dot = vkb_op_matvec_int_dot(dev, type) ? 1 : -1;
    e.staged = e.staged && e.int_dot < 0;
    return e;
}

static bool same_tuning(const vkb_matvec_tuning *a, const vkb_matvec_tuning *b)
{
    return a->wg == b->wg && a->rows == b->rows && a->staged == b->staged &&
           a->int_dot == b->int_dot && a->lanes == b->lanes;
}

/* Every matvec choice the device allows for `type` that differs in effect from the ones
 * before it (the plan may shrink a workgroup, drop staging or whole rows per invocation). */
static uint32_t tune_candidates(vkb_device *dev, cmp_type type, vkb_matvec_tuning *out)
{
    static const uint32_t wgs[] = {32, 64, 128, 256}, rows[] = {1, 2, 4};
    vkb_matvec_tuning asks[2 * (2 * 4 * 3 + VKB_LANE_ROWS)];
    uint32_t n_asks = 0, n = 1;
    for (int i = -1; i <= 1; i += 2) {
        for (int staged = 0; staged < 2; staged++)
            for (size_t w = 0; w < sizeof wgs / sizeof wgs[0]; w++)
                for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++)
                    asks[n_asks++] = (vkb_matvec_tuning){
                        .wg = wgs[w], .rows = rows[r], .staged = staged != 0, .int_dot = i};
        /* whole rows per invocation (the plan sets the workgroup to the subgroup) */
        for (uint32_t r = 1; r <= VKB_LANE_ROWS; r++)
            asks[n_asks++] = (vkb_matvec_tuning){.wg = 1, .rows = r, .int_dot = i, .lanes = true};
    }
    /* the choice in force first (the built-in one, or one stored before) */
    out[0] = effective_plan(dev, type, NULL);
    for (uint32_t a = 0; a < n_asks; a++) {
        vkb_matvec_tuning e = effective_plan(dev, type, &asks[a]);
        /* int-dot or whole rows asked for and not available */
        bool seen = e.int_dot != asks[a].int_dot || e.lanes != asks[a].lanes;
        for (uint32_t j = 0; j < n && !seen; j++)
            seen = same_tuning(&out[j], &e);
        if (!seen && n < MAX_CANDIDATES)
            out[n++] = e;
    }
    vkb_op_matvec_tune(dev, NULL);
    return n;
}

static vkb_status rec_tuned(vkb_stream *s, void *arg)
{
    struct matrix_case *c = arg;
    return c->xq ? rec_matvec_q8(s, arg) : rec_matvec(s, arg);
}

/* Times every candidate on each shape (their times added decide) and stores the fastest
 * as the device's choice for `type`; false when nothing could be timed. */
static bool tune_format(struct bench *b, cmp_type type, const char *shapes)
{
    vkb_matvec_tuning cand[MAX_CANDIDATES];
    double total[MAX_CANDIDATES] = {0};
    uint32_t n = tune_candidates(b->dev, type, cand);
    const char *tn = cmp_type_get(type)->name;
    char shape[TOOL_ITEM_MAX], name[32];
    for (const char *q = shapes; tool_next_item(&q, shape) > 0;) {
        uint32_t rows, k;
        parse_shape(shape, &rows, &k);
        struct matrix_case c = {.n = 1};
        vkb_arena_reset(b->weights);
        vkb_arena_reset(b->scratch);
        vkb_status st = upload_weights(b, &c.w, type, rows, k);
        c.x = alloc_zero(b, (uint64_t)k * 4, &st);
        c.y = alloc_zero(b, (uint64_t)rows * 4, &st);
        vkb_buffer *xq = k % 32 == 0 ? alloc_zero(b, vkb_q8_bytes(k, 1), &st) : NULL;
        if (st != VKB_OK) {
            printf("tune %-7s %ux%u: %s\n", tn, rows, k, vkb_device_errmsg(b->dev));
            return false;
        }
        fprintf(stderr, "  %s %ux%u: %u choices ...\n", tn, rows, k, n);
        for (uint32_t i = 0; i < n; i++) {
            if (total[i] < 0)
                continue;
            vkb_op_matvec_tune(b->dev, &cand[i]);
            c.xq = cand[i].int_dot > 0 ? xq : NULL;
            double ms = time_median(b, rec_tuned, &c);
            total[i] = ms < 0 ? -1 : total[i] + ms;
        }
        vkb_op_matvec_tune(b->dev, NULL);
    }
    uint32_t best = n;
    for (uint32_t i = 0; i < n; i++)
        if (total[i] >= 0 && (best == n || total[i] < total[best]))
            best = i;
    if (best == n) {
        printf("tune %-7s nothing could be timed: %s\n", tn, vkb_device_errmsg(b->dev));
        return false;
    }
    for (uint32_t i = 0; i < n; i++) {
        vkb_matvec_tuning_format(&cand[i], name, sizeof name);
        printf("tune %-7s %-8s %10.3f ms%s%s\n", tn, name, total[i],
               i == best ? "  <- fastest" : "", i == 0 ? "  (the choice before tuning)" : "");
    }
    vkb_matvec_tuning_format(&cand[best], name, sizeof name);
    printf("tune %-7s stored %s", tn, name);
    if (total[0] > 0)
        printf(": %.2fx the speed of the choice before tuning", total[0] / total[best]);
    printf("\n\n");
    fflush(stdout);
    vkb_op_matvec_tune_format(b->dev, type, &cand[best]);
    return true;
}

/* --tune: every format's best choice, then the device's tuning file written. */
static int run_tune(struct bench *b, const char *formats, const char *shapes)
{
    char fmt[TOOL_ITEM_MAX];
    printf("tuning matvec: every choice of workgroup size, rows per workgroup, staging and "
           "integer dot products, median ms summed over %s\n\n",
           shapes);
    for (const char *p = formats; tool_next_item(&p, fmt) > 0;)
        if (!tune_format(b, cmp_type_find(fmt)->type, shapes))
            return 1;
    if (vkb_tuning_save(b->dev, NULL) != VKB_OK) {
        tool_error("bench: %s", vkb_device_errmsg(b->dev));
        return 1;
    }
    printf("saved: %s\n", vkb_tuning_path(b->dev));
    printf("every later run on this device and driver reads it (VKLLM_MATVEC still overrides "
           "it); delete the file to go back to the built-in choices\n");
    return 0;
}

/* Checks every item of the two lists before any work starts. */
static bool check_lists(const char *formats, const char *shapes)
{
    char item[TOOL_ITEM_MAX];
    int got;
    while ((got = tool_next_item(&formats, item)) != 0) {
        const cmp_type_info *ti = got > 0 ? cmp_type_find(item) : NULL;
        if (!ti || !vkb_op_type_supported(ti->type)) {
            tool_error("bench: unknown format \"%s\" (formats: %s)", item, default_formats);
            return false;
        }
    }
    uint32_t r, k;
    while ((got = tool_next_item(&shapes, item)) != 0) {
        if (got < 0 || !parse_shape(item, &r, &k)) {
            tool_error("bench: bad shape \"%s\" (want ROWSxK, e.g. 4096x11008)", item);
            return false;
        }
    }
    return true;
}

int bench_kernels(int argc, char **argv)
{
    tool_gpu_opts opts = {0};
    const char *formats = default_formats, *shapes = default_shapes;
    bool tune = false, shapes_given = false;
    int reps = 10;
    long matmul_n = 512;
    bool baseline = true;
    for (int i = 1; i < argc; i++) {
        int took = tool_parse_gpu_flag(argc, argv, &i, &opts);
        if (took < 0)
            return 2;
        if (took)
            continue;
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(kernels_usage, stdout);
            return 0;
        } else if (strcmp(a, "--no-baseline") == 0) {
            baseline = false;
        } else if (strcmp(a, "--tune") == 0) {
            tune = true;
        } else if (!v && (strcmp(a, "--formats") == 0 || strcmp(a, "--shapes") == 0 ||
                          strcmp(a, "--reps") == 0 || strcmp(a, "--matmul-n") == 0)) {
            tool_error("bench: %s needs a value", a);
            return 2;
        } else if (strcmp(a, "--formats") == 0) {
            formats = argv[++i];
        } else if (strcmp(a, "--shapes") == 0) {
            shapes = argv[++i];
            shapes_given = true;
        } else if (strcmp(a, "--reps") == 0) {
            reps = atoi(argv[++i]);
            if (reps < 1 || reps > 1000) {
                tool_error("bench: --reps %s: want 1 to 1000", argv[i]);
                return 2;
            }
        } else if (strcmp(a, "--matmul-n") == 0) {
            char *end;
            matmul_n = strtol(argv[++i], &end, 10);
            if (*end || matmul_n < 0 || matmul_n > 65536) {
                tool_error("bench: --matmul-n %s: want 0 to 65536", argv[i]);
                return 2;
            }
        } else {
            tool_error("bench kernels: unknown flag %s\n\n%s", a, kernels_usage);
            return 2;
        }
    }
    if (tune && !shapes_given)
        shapes = tune_shapes;
    if (!check_lists(formats, shapes))
        return 2;

    vkb_context *ctx;
    if (tool_open_context(&opts, &ctx) != 0)
        return 1;
    struct bench b = {.reps = reps};
    int rc = 1;
    if (tool_open_device(ctx, &opts, &b.dev) != 0)
        goto out;
    const vkb_device_info *info = vkb_device_get_info(b.dev);
    b.gpu_timed = info->timestamp_valid_bits != 0;
    if (vkb_arena_create(b.dev, VKB_PURPOSE_WEIGHTS, 0, &b.weights) != VKB_OK ||
        vkb_arena_create(b.dev, VKB_PURPOSE_SCRATCH, 0, &b.scratch) != VKB_OK ||
        vkb_stream_create(b.dev, 4096, &b.stream) != VKB_OK) {
        tool_error("bench: %s", vkb_device_errmsg(b.dev));
        goto out;
    }

    printf("vkllm %s bench kernels\n", TOOL_VERSION);
    printf("device: %s (%s, %s %s), %s profile\n", info->name, vkb_device_type_name(info->type),
           info->driver_name, info->driver_info, vkb_profile_name(info->profile));
    printf("matvec choices: %s\n", vkb_tuning_status(b.dev));
    vkb_matmul_tuning mt = vkb_op_matmul_plan(b.dev);
    const char *mm_env = getenv("VKLLM_MATMUL");
    printf("matmul tiles: %ux%ux%u/%ux%u (TMxTNxTK/RMxRN%s); cooperative matrices: %s\n", mt.tm,
           mt.tn, mt.tk, mt.rm, mt.rn, mm_env && *mm_env ? ", VKLLM_MATMUL" : ", by device type",
           vkb_op_matmul_coopmat(b.dev) ? "prefill takes them" : "off for prefill");
    if (tune) {
        rc = run_tune(&b, formats, shapes);
        goto out;
    }
    fprintf(stderr, "measuring copy bandwidth and FMA rate ...\n");
    tool_bandwidth bw;
    struct yardsticks ys = {0};
    if (tool_measure_bandwidth(b.dev, 0, 10, &bw) == 0)
        ys.copy_gbps = bw.gbps;
    ys.fma_gflops = measure_fma(&b);
    printf("copy bandwidth: %.1f GB/s (read + written, median of %d copies of %.0f MiB)\n",
           ys.copy_gbps, bw.reps, bw.bytes_per_copy / 1048576.0);
    printf("f32 FMA rate:   %.1f GFLOP/s\n", ys.fma_gflops);
    printf("timing: %s, median of %d after %d warm-ups\n\n",
           b.gpu_timed ? "GPU timestamps" : "host clock", reps, WARMUP);
    printf("%-7s %-7s %14s %13s %10s %9s %8s\n", "kernel", "format", "rows x k", "weights",
           "median ms", "GB/s", "of copy");

    char fmt[TOOL_ITEM_MAX], shape[TOOL_ITEM_MAX];
    for (const char *p = formats; tool_next_item(&p, fmt) > 0;) {
        cmp_type type = cmp_type_find(fmt)->type;
        for (const char *q = shapes; tool_next_item(&q, shape) > 0;) {
            uint32_t rows, k;
            parse_shape(shape, &rows, &k);
            fprintf(stderr, "  %s %ux%u ...\n", fmt, rows, k);
            print_matrix_case(&b, &ys, type, rows, k, (uint32_t)matmul_n, baseline);
        }
    }
    rc = 0;
out:
    vkb_stream_destroy(b.stream);
    vkb_arena_destroy(b.scratch);
    vkb_arena_destroy(b.weights);
    vkb_device_close(b.dev);
    if (opts.validation && tool_report_validation(ctx) > 0)
        rc = 1;
    vkb_context_destroy(ctx);
    return rc;
}
