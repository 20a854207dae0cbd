/* vkllm bench attention: one layer's decode attention over a filled KV cache of each type,
 * at long contexts, against the cache bytes it reads and the unfused reference path. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "tool.h"
#include "vkb_ops.h"

static const char attention_usage[] =
    "usage: vkllm bench attention [flags]\n"
    "\n"
    "Times one layer's attention for one new token (a decode step) over a KV cache already\n"
    "holding CTX positions, for each cache type, and prints the median time, the cache\n"
    "bytes the step reads per second and that as a share of the device's copy bandwidth\n"
    "(measured in the same run): decode attention is bounded by that bandwidth, so a\n"
    "cache of fewer bits per value should be as much faster as it is smaller. The unfused\n"
    "path (scores in memory, softmax, value product) over an f16 cache is the reference.\n"
    "The cache is filled with random keys and values by the quantize-on-write kernel.\n"
    "\n"
    "  --ctx LIST       positions in the cache (default 1024,4096,16384,32768)\n"
    "  --kv-types LIST  cache types, each for keys and values (default\n"
    "                   f16,q8_0,q4_0,kivi4,kivi2)\n"
    "  --shape HxKxD    query heads x KV heads x head size (default 32x8x128: Llama 3 8B,\n"
    "                   Mistral 7B; 32x32x128 is Llama 2 7B)\n"
    "  --kv-group N, --kv-window N   the kivi caches' group size and f16 window (as in\n"
    "                   `vkllm run`; defaults 64 and 128)\n"
    "  --tokens N       new tokens per step (default 1: decode; N > 1: the last N of a\n"
    "                   prefill chunk, each seeing the keys up to its own position)\n"
    "  --splits N       split-K workgroups per query row (default: as the device suits)\n"
    "  --reps N         timed repetitions per case, after 2 warm-ups (default 10)\n"
    "  --no-unfused     skip the unfused reference\n"
    "  --device SEL     device index or part of its name (default: the fastest)\n"
    "  --profile P      native, mobile or minimal: cap the device's capabilities\n"
    "  --validation     Khronos validation layer on (slow; for debugging)\n"
    "\n"
    "Example: vkllm bench attention --ctx 32768 --kv-types f16,kivi4\n";

#define WARMUP    2
#define FILL_ROWS 1024 /* positions written per fill step */

struct attn_case {
    vkb_buffer *q, *out, *k, *v, *partials, *scores;
    vkb_kv_layout kl, vl;
    vkb_attention_shape sh;
    uint32_t splits;
    bool unfused;
};

static vkb_status rec_attention(vkb_stream *s, void *arg)
{
    struct attn_case *c = arg;
    if (c->unfused)
        return vkb_op_attention_unfused(s, c->out, c->q, c->k, c->v, c->scores, &c->sh);
    return vkb_op_attention_split(s, c->out, c->q, c->k, &c->kl, c->v, &c->vl, c->partials,
                                  c->splits, &c->sh);
}

static void random_fill(float *x, size_t n, uint64_t *seed)
{
    for (size_t i = 0; i < n; i++) {
        *seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((double)(*seed >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
    }
}

/* Writes ctx positions of random keys and values into the caches (one submission per
 * FILL_ROWS positions, through `x`). */
static vkb_status fill(vkb_device *dev, vkb_stream *st, struct attn_case *c, vkb_buffer *x,
                       float *host, uint32_t ctx)
{
    uint64_t seed = 0x243f6a8885a308d3ull;
    vkb_status s = VKB_OK;
    for (uint32_t at = 0; s == VKB_OK && at < ctx; at += FILL_ROWS)
        for (int side = 0; s == VKB_OK && side < 2; side++) {
            uint32_t rows = ctx - at < FILL_ROWS ? ctx - at : FILL_ROWS;
            const vkb_kv_layout *l = side ? &c->vl : &c->kl;
            random_fill(host, (size_t)rows * l->values, &seed);
            if ((s = vkb_buffer_upload(dev, x, 0, host, (uint64_t)rows * l->values * 4)) ||
                (s = vkb_stream_begin(st)) ||
                (s = vkb_op_kv_store(st, side ? c->v : c->k, l, at, x, rows)) ||
                (s = vkb_stream_submit(st)))
                break;
            s = vkb_stream_wait(st);
        }
    return s;
}

struct attn_opts {
    const char *ctx, *types;
    uint32_t heads, kv_heads, head_dim, splits, tokens;
    tool_kv_opts kv;
    int reps;
    bool unfused;
};

/* Runs every type at one context; returns false when the device failed. */
static bool run_ctx(vkb_device *dev, vkb_stream *st, const struct attn_opts *o, uint32_t ctx,
                    double copy_gbps)
{
    const vkb_device_info *info = vkb_device_get_info(dev);
    bool gpu_timed = info->timestamp_valid_bits != 0;
    uint32_t values = o->kv_heads * o->head_dim;
    uint32_t tokens = o->tokens < ctx ? o->tokens : ctx;
    vkb_attention_shape sh = {o->head_dim,
                              o->heads,
                              o->kv_heads,
                              tokens,
                              ctx - tokens,
                              ctx,
                              1.0f / sqrtf((float)o->head_dim),
                              NULL,
                              0,
                              0.0f};
    uint32_t splits = o->splits ? o->splits : vkb_attention_splits(dev, &sh);
    double f16_ms = 0;
    char item[TOOL_ITEM_MAX];
    const char *p = o->types;
    for (int pass = 0;; pass++) {
        /* the unfused reference first, then each type */
        bool unfused = pass == 0;
        eng_kv_type t = ENG_KV_F16;
        if (unfused && !o->unfused)
            continue;
        if (!unfused) {
            if (tool_next_item(&p, item) <= 0)
                break;
            eng_kv_type_parse(item, &t); /* checked before any work */
        }
        struct attn_case c = {.sh = sh, .splits = splits, .unfused = unfused};
        char why[256];
        if (eng_kv_layouts(values, ctx, t, t, o->kv.group, o->kv.window, &c.kl, &c.vl, why,
                           sizeof why) != ENG_OK) {
            printf("%-9s %6u %-7s  %s\n", "attention", ctx, eng_kv_type_name(t), why);
            continue;
        }
        vkb_arena *arena = NULL;
        vkb_buffer *x = NULL;
        float *host = malloc((size_t)FILL_ROWS * values * 4);
        uint64_t kb = vkb_kv_bytes(&c.kl, NULL, 0), vb = vkb_kv_bytes(&c.vl, NULL, 0);
        uint64_t q_bytes = (uint64_t)tokens * o->heads * o->head_dim * 4;
        vkb_status s =
            host ? vkb_arena_create(dev, VKB_PURPOSE_KV, 0, &arena) : VKB_ERR_OUT_OF_HOST_MEMORY;
        if (s == VKB_OK && (s = vkb_buffer_alloc(arena, kb, 0, &c.k)) == VKB_OK &&
            (s = vkb_buffer_alloc(arena, vb, 0, &c.v)) == VKB_OK &&
            (s = vkb_buffer_alloc(arena, (uint64_t)FILL_ROWS * values * 4, 0, &x)) == VKB_OK &&
            (s = vkb_buffer_alloc(arena, q_bytes, 0, &c.q)) == VKB_OK &&
            (s = vkb_buffer_alloc(arena, q_bytes, 0, &c.out)) == VKB_OK &&
            (s = vkb_buffer_alloc(arena, vkb_attention_partials_bytes(&sh, splits), 0,
                                  &c.partials)) == VKB_OK &&
            (s = vkb_buffer_alloc(arena, unfused ? vkb_attention_scores_bytes(&sh) : 4, 0,
                                  &c.scores)) == VKB_OK)
            s = fill(dev, st, &c, x, host, ctx);
        if (s == VKB_OK) {
            uint64_t seed = 7;
            float *qh = malloc(q_bytes);
            if (qh) {
                random_fill(qh, q_bytes / 4, &seed);
                s = vkb_buffer_upload(dev, c.q, 0, qh, q_bytes);
            } else {
                s = VKB_ERR_OUT_OF_HOST_MEMORY;
            }
            free(qh);
        }
        free(host);
        double ms = -1;
        if (s == VKB_OK &&
            tool_time_reps(st, gpu_timed, WARMUP, o->reps, rec_attention, &c, &ms, NULL) != 0)
            ms = -1;
        if (ms < 0) {
            printf("%-9s %6u %-7s  failed: %s\n", "attention", ctx,
                   unfused ? "unfused" : eng_kv_type_name(t), vkb_device_errmsg(dev));
            vkb_arena_destroy(arena);
            return false;
        }
        /* bytes a step reads: both caches' first ctx positions */
        double bytes = (double)(kb + vb);
        double gbps = bytes / (ms * 1e6);
        if (!unfused && t == ENG_KV_F16)
            f16_ms = ms;
        printf("%-9s %6u %-7s %9.2f MiB %6.2f %10.3f %9.1f %7.1f%% %6u", "attention", ctx,
               unfused ? "unfused" : eng_kv_type_name(t), bytes / 1048576.0,
               8.0 * bytes / (2.0 * ctx * values), ms, gbps,
               copy_gbps > 0 ? 100.0 * gbps / copy_gbps : 0.0, unfused ? 1 : splits);
        if (!unfused && t != ENG_KV_F16 && f16_ms > 0)
            printf("  %.2fx f16's speed", f16_ms / ms);
        printf("\n");
        fflush(stdout);
        vkb_arena_destroy(arena);
    }
    return true;
}

static bool parse_shape3(const char *s, uint32_t *h, uint32_t *kvh, uint32_t *d)
{
    unsigned a, b, c;
    char tail;
    if (sscanf(s, "%ux%ux%u%c", &a, &b, &c, &tail) != 3 || !a || !b || !c || a % b || c % 2 ||
        c > 256 || a > 1024)
        return false;
    *h = a, *kvh = b, *d = c;
    return true;
}

int bench_attention(int argc, char **argv)
{
    tool_gpu_opts gpu = {0};
    struct attn_opts o = {.ctx = "1024,4096,16384,32768",
                          .types = "f16,q8_0,q4_0,kivi4,kivi2",
                          .heads = 32,
                          .kv_heads = 8,
                          .head_dim = 128,
                          .reps = 10,
                          .tokens = 1,
                          .unfused = true};
    for (int i = 1; i < argc; i++) {
        int took = tool_parse_gpu_flag(argc, argv, &i, &gpu);
        if (took == 0 && (!strcmp(argv[i], "--kv-group") || !strcmp(argv[i], "--kv-window")))
            took = tool_parse_kv_flag(argc, argv, &i, &o.kv);
        if (took < 0)
            return 2;
        if (took)
            continue;
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(attention_usage, stdout);
            return 0;
        } else if (!strcmp(a, "--no-unfused")) {
            o.unfused = false;
        } else if (!v &&
                   (!strcmp(a, "--ctx") || !strcmp(a, "--kv-types") || !strcmp(a, "--shape") ||
                    !strcmp(a, "--splits") || !strcmp(a, "--reps"))) {
            tool_error("bench attention: %s needs a value", a);
            return 2;
        } else if (!strcmp(a, "--ctx")) {
            o.ctx = argv[++i];
        } else if (!strcmp(a, "--kv-types")) {
            o.types = argv[++i];
        } else if (!strcmp(a, "--shape")) {
            if (!parse_shape3(argv[++i], &o.heads, &o.kv_heads, &o.head_dim)) {
                tool_error("bench attention: --shape %s: want HEADSxKV_HEADSxHEAD_SIZE with "
                           "HEADS a multiple of KV_HEADS and an even head size up to 256 (e.g. "
                           "32x8x128)",
                           argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--splits")) {
            if (!tool_parse_long(a, argv[++i], 1, 1024, &n))
                return 2;
            o.splits = (uint32_t)n;
        } else if (!strcmp(a, "--tokens")) {
            if (!tool_parse_long(a, argv[++i], 1, 4096, &n))
                return 2;
            o.tokens = (uint32_t)n;
        } else if (!strcmp(a, "--reps")) {
            if (!tool_parse_long(a, argv[++i], 1, 1000, &n))
                return 2;
            o.reps = (int)n;
        } else {
            tool_error("bench attention: unknown flag %s\n\n%s", a, attention_usage);
            return 2;
        }
    }
    char item[TOOL_ITEM_MAX];
    for (const char *p = o.types; tool_next_item(&p, item) != 0;) {
        eng_kv_type t;
        if (!eng_kv_type_parse(item, &t)) {
            tool_error("bench attention: \"%s\": the KV cache types are f16, q8_0, q4_0, kivi4 "
                       "and kivi2",
                       item);
            return 2;
        }
    }
    for (const char *p = o.ctx; tool_next_item(&p, item) != 0;) {
        long n;
        if (!tool_parse_long("--ctx", item, 1, 1 << 20, &n))
            return 2;
    }

    vkb_context *ctx;
    if (tool_open_context(&gpu, &ctx) != 0)
        return 1;
    vkb_device *dev = NULL;
    vkb_stream *st = NULL;
    int rc = 1;
    if (tool_open_device(ctx, &gpu, &dev) != 0)
        goto out;
    if (vkb_stream_create(dev, 4096, &st) != VKB_OK) {
        tool_error("bench: %s", vkb_device_errmsg(dev));
        goto out;
    }
    const vkb_device_info *info = vkb_device_get_info(dev);
    printf("vkllm %s bench attention\n", TOOL_VERSION);
    printf("device: %s (%s, %s %s), %s profile\n", info->name, vkb_device_type_name(info->type),
           info->driver_name, info->driver_info, vkb_profile_name(info->profile));
    fprintf(stderr, "measuring copy bandwidth ...\n");
    tool_bandwidth bw;
    double copy = tool_measure_bandwidth(dev, 0, 10, &bw) == 0 ? bw.gbps : 0;
    printf("copy bandwidth: %.1f GB/s; shape %u query heads over %u KV heads of %u; one "
           "layer, %u new token%s\n",
           copy, o.heads, o.kv_heads, o.head_dim, o.tokens, o.tokens == 1 ? "" : "s");
    printf("timing: %s, median of %d after %d warm-ups\n\n",
           info->timestamp_valid_bits ? "GPU timestamps" : "host clock", o.reps, WARMUP);
    printf("%-9s %6s %-7s %13s %6s %10s %9s %8s %6s\n", "op", "ctx", "cache", "K+V read", "bits",
           "median ms", "GB/s", "of copy", "splits");
    rc = 0;
    for (const char *p = o.ctx; tool_next_item(&p, item) > 0;) {
        uint32_t n = (uint32_t)strtoul(item, NULL, 10);
        fprintf(stderr, "  context %u ...\n", n);
        if (!run_ctx(dev, st, &o, n, copy))
            rc = 1;
    }
out:
    vkb_stream_destroy(st);
    vkb_device_close(dev);
    if (gpu.validation && tool_report_validation(ctx) > 0)
        rc = 1;
    vkb_context_destroy(ctx);
    return rc;
}
