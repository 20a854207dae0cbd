/* vkllm bench: prompt processing (pp) and generation (tg) speed of models, GGUF files or
 * synthetic ones, over a matrix of settings, llama-bench style, on every device asked
 * for, each first proven correct against the CPU reference. */
#define _GNU_SOURCE
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "eng_model.h"
#include "eng_ref.h"
#include "eng_synth.h"
#include "tool.h"

#ifndef VKLLM_BUILD_COMMIT
#define VKLLM_BUILD_COMMIT "unknown"
#endif

static const char usage[] =
    "usage: vkllm bench [-m FILE | --synthetic PRESET:TYPE] ... [flags]\n"
    "       vkllm bench kernels [flags]          (the weight kernels alone; --help there)\n"
    "       vkllm bench attention [flags]        (decode attention by KV cache type)\n"
    "       vkllm bench compare A.json B.json ... (side by side; --help there)\n"
    "\n"
    "Times prompt processing (ppN: N prompt tokens in one go) and generation (tgN: N tokens\n"
    "one at a time) like llama-bench, for every combination of the lists given, and prints\n"
    "a row per test: tokens/s (mean and standard deviation over the repetitions) and what\n"
    "llama-bench lacks: for generation the bytes read per second (weights and KV cache per\n"
    "token x tokens/s) and that as a share of the device's copy bandwidth measured in the\n"
    "same run (the decode speed limit); the time to the first token for prompts; the peak\n"
    "device memory; and the device's identity. Before timing, each device runs a real tiny\n"
    "model and its logits must match the CPU reference: a device that fails is reported as\n"
    "failing and not timed.\n"
    "\n"
    "models (each may repeat; lists are comma-separated):\n"
    "  -m, --model FILE          a GGUF model\n"
    "  --synthetic PRESET:TYPE   a model made in memory with random weights, as\n"
    "                            `vkllm synth` would write it (no file): e.g.\n"
    "                            llama2-7b:Q4_0 (vkllm synth --list shows the presets)\n"
    "  --seed N                  seed of synthetic weights and of the prompt tokens (1)\n"
    "\n"
    "tests (lists; every combination runs):\n"
    "  -p, --n-prompt LIST       prompt lengths (default 512; 0 = none)\n"
    "  -n, --n-gen LIST          generation lengths (default 128; 0 = none)\n"
    "  -d, --n-depth LIST        tokens already in the context before the test (default 0)\n"
    "  -b, --batch-size LIST     prompt tokens per GPU submission (default 512)\n"
    "  -ctk, --cache-type-k LIST KV cache key types: f16 (default), q8_0, q4_0, kivi4,\n"
    "                            kivi2\n"
    "  -ctv, --cache-type-v LIST KV cache value types: the same\n"
    "  --kv-group N, --kv-window N   the kivi caches' group size and f16 window (as\n"
    "                            in `vkllm run`; defaults 64 and 128)\n"
    "  -fa, --flash-attn LIST    1: the fused attention kernel (default); 0: the unfused\n"
    "                            path (scores in memory, softmax, value product)\n"
    "  --unfused-products        each rms_norm its own dispatch before the products\n"
    "                            that read it, silu·mul after gate and up, rope and\n"
    "                            the KV write after q/k/v, instead of fused into the\n"
    "                            products: the reference point (rows say \"products\n"
    "                            unfused\")\n"
    "  --record-each-step        record every decode step's commands (while the step\n"
    "                            before runs) instead of submitting one recording\n"
    "                            again with its positions read on the GPU: the\n"
    "                            reference point (rows say \"recorded each step\")\n"
    "  --gpu-picks               tg: greedy decoding with each token picked on the GPU\n"
    "                            and fed to the next step there, the next step queued\n"
    "                            behind the running one (as `vkllm run --greedy`),\n"
    "                            instead of llama-bench's given tokens with a wait per\n"
    "                            step (rows say \"GPU picks\"); with --sample best, each\n"
    "                            token sampled on the GPU that way (CPU drivers too)\n"
    "  --sample best|all         tg: each token sampled from the one before with\n"
    "                            llama.cpp's default sampler (top-k 40, seed 1), by the\n"
    "                            host from the best 40 logits (best) or from every logit\n"
    "                            read back (all); rows say so\n"
    "  -r, --repetitions N       timed runs per test (default 5, at most 64)\n"
    "  --no-warmup               skip the untimed warm-up (17 tokens) per session\n"
    "  --profile-ops             after each generation test, print (stderr) the GPU time\n"
    "                            per token of every op, and for the weight products the\n"
    "                            GB/s they reach and their share of the copy bandwidth\n"
    "\n";

/* The rest of --help (one literal each stays within the 4095 characters C requires). */
static const char usage_devices[] =
    "devices:\n"
    "  --device LIST             indexes or name parts, or all (default: the fastest)\n"
    "  --profile P               native, mobile or minimal: cap the capabilities\n"
    "  --validation              Khronos validation layer on (slow; for debugging)\n"
    "  --gate-model FILE         the gate's model (default: TinyStories-656K-Q8_0 from\n"
    "                            ../shared/models or $VKLLM_SHARED_DIR/models, else a\n"
    "                            synthetic tiny Q8_0 model)\n"
    "\n"
    "output:\n"
    "  -o, --output FORMAT       md (default), csv, json or jsonl, to stdout; progress\n"
    "                            and notes go to stderr\n"
    "\n"
    "Example: vkllm bench --synthetic llama2-7b:Q4_0,llama2-7b:Q4_K_M -p 512 -n 128 -o json\n";

#define MAX_LIST   16
#define MAX_MODELS 32

typedef struct uint_list {
    uint32_t v[MAX_LIST];
    uint32_t n;
} uint_list;

typedef struct bench_opts {
    char models[MAX_MODELS][TOOL_ITEM_MAX]; /* files, or "PRESET:TYPE" when synthetic[i] */
    bool synthetic[MAX_MODELS];
    uint32_t n_models;
    uint_list n_prompt, n_gen, n_depth, n_batch, fa, type_k, type_v;
    tool_kv_opts kv; /* group and window of kivi caches */
    const char *devices;
    const char *gate_model;
    int reps;
    bool warmup, profile, unfused_products, record_each_step, gpu_picks;
    const char *sample; /* --sample: "best", "all" or NULL */
    uint64_t seed;
    bench_format fmt;
    tool_gpu_opts gpu;
} bench_opts;

static bool parse_uint_list(const char *flag, const char *s, uint32_t lo, uint32_t hi,
                            uint_list *out)
{
    char item[TOOL_ITEM_MAX];
    out->n = 0;
    int got;
    while ((got = tool_next_item(&s, item)) != 0) {
        long v;
        if (got < 0 || out->n == MAX_LIST || !tool_parse_long(flag, item, lo, hi, &v)) {
            if (got < 0 || out->n == MAX_LIST)
                tool_error("%s: at most %d values, each a number", flag, MAX_LIST);
            return false;
        }
        out->v[out->n++] = (uint32_t)v;
    }
    if (out->n == 0) {
        tool_error("%s needs at least one value", flag);
        return false;
    }
    return true;
}

/* A list of KV cache types into out (eng_kv_type values). */
static bool parse_kv_types(const char *flag, const char *list, uint_list *out)
{
    char item[TOOL_ITEM_MAX];
    out->n = 0;
    for (const char *p = list; tool_next_item(&p, item) != 0;) {
        eng_kv_type t;
        if (!eng_kv_type_parse(item, &t) || out->n == MAX_LIST) {
            tool_error("%s: \"%s\": the KV cache types are f16, q8_0, q4_0, kivi4 and kivi2", flag,
                       item);
            return false;
        }
        out->v[out->n++] = (uint32_t)t;
    }
    return out->n > 0;
}

static bool add_models(bench_opts *o, const char *list, bool synthetic)
{
    char item[TOOL_ITEM_MAX];
    int got = 1;
    while (synthetic ? (got = tool_next_item(&list, item)) != 0 : got-- > 0) {
        if (got < 0 || (!synthetic && strlen(list) >= TOOL_ITEM_MAX)) {
            tool_error("bench: the model name is too long");
            return false;
        }
        if (o->n_models == MAX_MODELS) {
            tool_error("bench: at most %d models", MAX_MODELS);
            return false;
        }
        if (synthetic) {
            /* checked here, so a typo fails before any work */
            char *colon = strchr(item, ':');
            if (colon)
                *colon = '\0';
            if (!colon || !eng_synth_preset_find(item) || !cmp_recipe_find(colon + 1)) {
                tool_error("bench: --synthetic wants PRESET:TYPE such as llama2-7b:Q4_0; "
                           "\"%s%s%s\" is not one (see vkllm synth --list and --help)",
                           item, colon ? ":" : "", colon ? colon + 1 : "");
                return false;
            }
            *colon = ':';
        }
        snprintf(o->models[o->n_models], TOOL_ITEM_MAX, "%s", synthetic ? item : list);
        o->synthetic[o->n_models++] = synthetic;
    }
    return true;
}

/* Returns 0 to go on, 1 after --help, 2 on a bad flag. */
static int parse_flags(int argc, char **argv, bench_opts *o)
{
    for (int i = 1; i < argc; i++) {
        /* -d is the depth here, as in llama-bench, not the device */
        int took = strcmp(argv[i], "-d") ? tool_parse_gpu_flag(argc, argv, &i, &o->gpu) : 0;
        if (took < 0)
            return 2;
        if (took)
            continue;
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
#define IS(s) (strcmp(a, s) == 0)
#define NEEDS_VALUE                                                                                \
    if (!val) {                                                                                    \
        tool_error("bench: %s needs a value", a);                                                  \
        return 2;                                                                                  \
    }                                                                                              \
    i++
        if (IS("-h") || IS("--help")) {
            fputs(usage, stdout);
            fputs(usage_devices, stdout);
            return 1;
        } else if (IS("-m") || IS("--model")) {
            NEEDS_VALUE;
            if (!add_models(o, val, false))
                return 2;
        } else if (IS("--synthetic")) {
            NEEDS_VALUE;
            if (!add_models(o, val, true))
                return 2;
        } else if (IS("-p") || IS("--n-prompt")) {
            NEEDS_VALUE;
            if (!parse_uint_list(a, val, 0, 1 << 20, &o->n_prompt))
                return 2;
        } else if (IS("-n") || IS("--n-gen")) {
            NEEDS_VALUE;
            if (!parse_uint_list(a, val, 0, 1 << 20, &o->n_gen))
                return 2;
        } else if (IS("-d") || IS("--n-depth")) {
            NEEDS_VALUE;
            if (!parse_uint_list(a, val, 0, 1 << 20, &o->n_depth))
                return 2;
        } else if (IS("-b") || IS("--batch-size")) {
            NEEDS_VALUE;
            if (!parse_uint_list(a, val, 1, 65535, &o->n_batch))
                return 2;
        } else if (IS("-fa") || IS("--flash-attn")) {
            NEEDS_VALUE;
            if (!parse_uint_list(a, val, 0, 1, &o->fa))
                return 2;
        } else if (IS("--unfused-products")) {
            o->unfused_products = true;
        } else if (IS("--record-each-step")) {
            o->record_each_step = true;
        } else if (IS("--gpu-picks")) {
            o->gpu_picks = true;
        } else if (IS("--sample")) {
            NEEDS_VALUE;
            if (strcmp(val, "best") != 0 && strcmp(val, "all") != 0) {
                tool_error("bench: --sample takes best or all, not \"%s\"", val);
                return 2;
            }
            o->sample = val;
        } else if (IS("-ctk") || IS("--cache-type-k")) {
            NEEDS_VALUE;
            if (!parse_kv_types(a, val, &o->type_k))
                return 2;
        } else if (IS("-ctv") || IS("--cache-type-v")) {
            NEEDS_VALUE;
            if (!parse_kv_types(a, val, &o->type_v))
                return 2;
        } else if (IS("--kv-group") || IS("--kv-window")) {
            if (tool_parse_kv_flag(argc, argv, &i, &o->kv) <= 0)
                return 2;
        } else if (IS("-r") || IS("--repetitions")) {
            NEEDS_VALUE;
            long n;
            if (!tool_parse_long(a, val, 1, BENCH_MAX_REPS, &n))
                return 2;
            o->reps = (int)n;
        } else if (IS("--seed")) {
            NEEDS_VALUE;
            long n;
            if (!tool_parse_long(a, val, 0, LONG_MAX, &n))
                return 2;
            o->seed = (uint64_t)n;
        } else if (IS("--profile-ops")) {
            o->profile = true;
        } else if (IS("--no-warmup")) {
            o->warmup = false;
        } else if (IS("--gate-model")) {
            NEEDS_VALUE;
            o->gate_model = val;
        } else if (IS("-o") || IS("--output")) {
            NEEDS_VALUE;
            if (!bench_format_parse(val, &o->fmt)) {
                tool_error("bench: -o takes md, csv, json or jsonl, not \"%s\"", val);
                return 2;
            }
        } else {
            tool_error("bench: unknown flag \"%s\" (see vkllm bench --help)", a);
            return 2;
        }
#undef IS
#undef NEEDS_VALUE
    }
    o->devices = o->gpu.device;
    if (o->sample && o->gpu_picks && strcmp(o->sample, "all") == 0) {
        tool_error("bench: --sample all reads every logit on the host; --gpu-picks picks on "
                   "the GPU: not both (--sample best --gpu-picks samples on the GPU)");
        return 2;
    }
    if (o->n_models == 0) {
        tool_error("bench: give a model: -m FILE.gguf, or --synthetic PRESET:TYPE such as "
                   "llama-1b:Q4_0 (see vkllm bench --help)");
        return 2;
    }
    return 0;
}

/* ---- models ---- */

/* ../shared beside the checkout: $VKLLM_SHARED_DIR, ./../shared, or two folders above the
 * executable (build/vkllm in a checkout). Writes the path of `rel` under it. */
static bool find_shared(const char *rel, char *out, size_t size)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    const char *env = getenv("VKLLM_SHARED_DIR");
    const char *bases[3] = {env, "../shared", NULL};
    char from_exe[PATH_MAX + 16];
    if (exe[0]) {
        snprintf(from_exe, sizeof from_exe, "%s/../../shared", exe);
        bases[2] = from_exe;
    }
    for (int i = 0; i < 3; i++) {
        if (!bases[i] || !bases[i][0])
            continue;
        snprintf(out, size, "%s/%s", bases[i], rel);
        if (access(out, R_OK) == 0)
            return true;
    }
    return false;
}

/* A synthetic model written into an anonymous in-memory file and opened from there. */
static eng_model *open_synthetic(const char *spec, uint64_t seed, bool bar, char *name,
                                 size_t name_size, char *err, size_t err_size)
{
    char preset[TOOL_ITEM_MAX];
    snprintf(preset, sizeof preset, "%s", spec);
    char *colon = strchr(preset, ':');
    *colon = '\0';
    eng_synth_params p = {.preset = eng_synth_preset_find(preset),
                          .recipe = cmp_recipe_find(colon + 1),
                          .seed = seed,
                          .progress = bar ? tool_progress : NULL,
                          .user = "making the synthetic model"};
    snprintf(name, name_size, "%s %s (synthetic)", p.preset->name, p.recipe->name);
    int fd = memfd_create("vkllm-synthetic", MFD_CLOEXEC);
    FILE *f = fd >= 0 ? fdopen(dup(fd), "wb") : NULL;
    if (!f) {
        snprintf(err, err_size, "cannot make an in-memory file for the synthetic model");
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    eng_status st = eng_synth_write_stream(&p, f, "the synthetic model", err, err_size);
    fclose(f);
    eng_model *m = NULL;
    if (st == ENG_OK) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        m = eng_model_open(path, &st, err, err_size);
    }
    close(fd); /* the model's mapping keeps the memory */
    return m;
}

static void format_params(uint64_t n, char *out, size_t size)
{
    if (n >= 1000000000)
        snprintf(out, size, "%.2fB", n / 1e9);
    else if (n >= 1000000)
        snprintf(out, size, "%.1fM", n / 1e6);
    else
        snprintf(out, size, "%.0fK", n / 1e3);
}

static const char *file_type_name(const eng_model *m)
{
    uint32_t n;
    const cmp_recipe *r = cmp_recipe_list(&n);
    for (uint32_t i = 0; i < n; i++)
        if (r[i].file_type == eng_model_hparams(m)->file_type)
            return r[i].name;
    return eng_model_type_name(m);
}

/* Weight bytes a decode step reads: every matrix, but only one row of the embedding
 * (unless it is also the output matrix). */
static double weight_bytes_per_token(const eng_model *m)
{
    const eng_weight *e = eng_model_token_embd(m);
    double b = (double)eng_model_weight_bytes(m);
    if (!eng_model_hparams(m)->tied_output)
        b -= (double)e->bytes - (double)e->bytes / e->rows;
    return b;
}

/* KV cache bytes attention reads per generated token, averaged over n_gen tokens after
 * `depth`: the token at position p reads every layer's keys and values of positions
 * 0..p, in the session's cache types (on average depth + (n_gen + 1) / 2 positions). */
static double kv_bytes_per_token(const eng_session *s, uint32_t depth, uint32_t n_gen)
{
    eng_kv_info kv;
    eng_session_kv_info(s, &kv);
    return (double)kv.bytes / kv.capacity * (depth + (n_gen + 1.0) / 2.0);
}

/* ---- the correctness gate ---- */

#define GATE_BUDGET 1e-2 /* max |GPU - CPU| over the logits, in units of their rms */

static double logit_error(const float *gpu, const float *ref, uint32_t n)
{
    double ss = 0, worst = 0;
    for (uint32_t i = 0; i < n; i++) {
        ss += (double)ref[i] * ref[i];
        double d = fabs((double)gpu[i] - ref[i]);
        if (!(d <= worst))
            worst = isnan(d) ? INFINITY : d;
    }
    double rms = sqrt(ss / n);
    return rms > 0 ? worst / rms : worst;
}

/* Runs the gate model on dev and compares logits with the CPU reference after a prompt
 * (matrix-matrix path) and after each of three decode steps (matrix-vector path). */
static bool run_gate(vkb_device *dev, const bench_opts *o, char *msg, size_t size)
{
    char path[PATH_MAX], name[160], err[512];
    eng_model *m = NULL;
    if (o->gate_model || find_shared("models/TinyStories-656K-Q8_0.gguf", path, sizeof path)) {
        const char *p = o->gate_model ? o->gate_model : path;
        eng_status st;
        m = eng_model_open(p, &st, err, sizeof err);
        const char *slash = strrchr(p, '/');
        snprintf(name, sizeof name, "%.150s", slash ? slash + 1 : p);
    } else {
        m = open_synthetic("tiny:Q8_0", 1, false, name, sizeof name, err, sizeof err);
    }
    eng_session *s = NULL;
    eng_ref *ref = NULL;
    float *want = NULL;
    bool ok = false;
    if (!m) {
        snprintf(msg, size, "FAIL: the gate model did not open: %.110s", err);
        return false;
    }
    const eng_hparams *hp = eng_model_hparams(m);
    /* matmul_min 1: the 12 prompt tokens through the matrix-matrix kernels, as pp tests */
    eng_session_params sp = {.n_ctx = 64, .n_batch = 64, .matmul_min = 1};
    if (eng_model_upload(m, dev, NULL, NULL, err, sizeof err) != ENG_OK ||
        eng_session_create(m, &sp, &s, err, sizeof err) != ENG_OK ||
        !(ref = eng_ref_create(m, 64, err, sizeof err))) {
        snprintf(msg, size, "FAIL: %.60s: %.90s", name, err);
        goto done;
    }
    eng_ref_mirror_session(ref, s); /* 8-bit activations where s's products use them */
    if (!(want = malloc(sizeof *want * hp->n_vocab))) {
        snprintf(msg, size, "FAIL: out of memory");
        goto done;
    }
    int32_t tok[15];
    for (int i = 0; i < 15; i++)
        tok[i] = (int32_t)((1 + 37u * (uint32_t)i) % hp->n_vocab);
    double worst = 0;
    /* 12 prompt tokens (more than 8: the matrix-matrix kernels), then 3 decode steps */
    for (int step = 0, at = 0; step < 4; step++) {
        uint32_t n = step == 0 ? 12 : 1;
        if (eng_session_eval(s, tok + at, n) != ENG_OK) {
            snprintf(msg, size, "FAIL: %.60s: %.90s", name, eng_session_errmsg(s));
            goto done;
        }
        if (eng_ref_eval(ref, tok + at, n, want, NULL) != ENG_OK) {
            snprintf(msg, size, "FAIL: %.80s: the CPU reference failed", name);
            goto done;
        }
        double e = logit_error(eng_session_logits(s), want, hp->n_vocab);
        worst = e > worst || isnan(e) ? e : worst;
        at += (int)n;
    }
    ok = worst <= GATE_BUDGET;
    snprintf(msg, size, "%s: %.80s, worst logit error %.2g x rms (budget %.0e)",
             ok ? "pass" : "FAIL", name, worst, GATE_BUDGET);
done:
    free(want);
    eng_ref_destroy(ref);
    eng_session_destroy(s);
    eng_model_close(m);
    return ok;
}

/* ---- timing ---- */

static void fill_device(vkb_device *dev, bench_device *d)
{
    const vkb_device_info *in = vkb_device_get_info(dev);
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "%s", in->name);
    snprintf(d->vendor, sizeof d->vendor, "%s", in->vendor_name);
    snprintf(d->type, sizeof d->type, "%s", vkb_device_type_name(in->type));
    snprintf(d->driver, sizeof d->driver, "%.120s%s%.120s", in->driver_name,
             in->driver_info[0] ? " " : "", in->driver_info);
    snprintf(d->api, sizeof d->api, "%u.%u.%u", in->api_version >> 22,
             (in->api_version >> 12) & 0x3ffu, in->api_version & 0xfffu);
    snprintf(d->profile, sizeof d->profile, "%s", vkb_profile_name(in->profile));
    d->subgroup_size = in->subgroup_size;
    d->shared_memory_kib = in->max_shared_memory / 1024;
    d->fp16 = in->shader_float16;
    d->int_dot = in->int_dot_4x8_signed_accel || in->int_dot_8bit_signed_accel;
    d->coopmat = in->coopmat_khr || in->coopmat_nv;
}

static void stats(bench_row *r, uint32_t n_tokens)
{
    double sum = 0, sum_ts = 0;
    for (uint32_t i = 0; i < r->reps; i++) {
        sum += r->samples_ns[i];
        sum_ts += n_tokens * 1e9 / r->samples_ns[i];
    }
    r->avg_ns = sum / r->reps;
    r->avg_ts = sum_ts / r->reps;
    double v = 0, v_ts = 0;
    for (uint32_t i = 0; i < r->reps; i++) {
        double ts = n_tokens * 1e9 / r->samples_ns[i];
        v += (r->samples_ns[i] - r->avg_ns) * (r->samples_ns[i] - r->avg_ns);
        v_ts += (ts - r->avg_ts) * (ts - r->avg_ts);
    }
    r->stddev_ns = r->reps > 1 ? sqrt(v / (r->reps - 1)) : 0;
    r->stddev_ts = r->reps > 1 ? sqrt(v_ts / (r->reps - 1)) : 0;
}

/* eng_session_generate's receiver for --gpu-picks: every pick, none kept. */
static bool take_all(void *user, int32_t token)
{
    (void)user, (void)token;
    return true;
}

/* --sample: n tokens, each sampled from the logits of the one before (the best where
 * the session brings back only those). */
static bool sample_tokens(eng_session *s, eng_sampler *smp, int32_t token, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (eng_session_eval(s, &token, 1) != ENG_OK)
            return false;
        token = eng_session_sample(s, smp);
        if (token < 0)
            return false;
        eng_sampler_accept(smp, token);
    }
    return true;
}

/* One test's repetitions into r. tok holds depth + max(n_prompt, n_gen) tokens; smp is
 * the sampler of --sample. */
static bool run_test(eng_session *s, eng_sampler *smp, const int32_t *tok, bench_row *r, int reps)
{
    for (int rep = 0; rep < reps; rep++) {
        eng_session_reset(s);
        if (r->n_depth && eng_session_eval(s, tok, r->n_depth) != ENG_OK)
            return false;
        double t0 = tool_now_s();
        if (r->n_prompt) {
            if (eng_session_eval(s, tok + r->n_depth, r->n_prompt) != ENG_OK)
                return false;
        } else if (r->sample[0] && !r->gpu_picks) {
            eng_sampler_reset(smp);
            if (!sample_tokens(s, smp, tok[r->n_depth], r->n_gen))
                return false;
        } else if (r->gpu_picks) {
            uint32_t got = 0;
            if (smp)
                eng_sampler_reset(smp);
            if (eng_session_generate(s, tok[r->n_depth], r->n_gen, smp, take_all, NULL, &got) !=
                ENG_OK)
                return false;
            if (got != r->n_gen)
                return false;
        } else {
            for (uint32_t i = 0; i < r->n_gen; i++)
                if (eng_session_eval(s, tok + r->n_depth + i, 1) != ENG_OK)
                    return false;
        }
        r->samples_ns[rep] = (tool_now_s() - t0) * 1e9;
    }
    r->reps = (uint32_t)reps;
    stats(r, r->n_prompt ? r->n_prompt : r->n_gen);
    return true;
}

static void utc_now(char *out, size_t size)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

typedef struct bench_run {
    const bench_opts *o;
    FILE *out;
    size_t rows;
    bool failed;
} bench_run;

static void emit(bench_run *b, const bench_row *r)
{
    bench_write_row(b->out, b->o->fmt, r, b->rows++);
    fflush(b->out);
}

/* The last decode step's GPU time per op (--profile-ops): where a token's time goes, and
 * how close the weight products (matvec) come to the copy bandwidth. */
static void print_profile(eng_session *s, const bench_row *r, double weight_bytes, double copy_gbps)
{
    eng_stats st;
    eng_session_stats(s, &st);
    char test[64];
    bench_test_name(r, test, sizeof test);
    fprintf(stderr, "\nprofile of %s %s, last decode step (GPU timestamps): %.3f ms\n",
            r->model_type, test, st.last_step_gpu_ms);
    fprintf(stderr,
            "  host: %.3f ms recording the step (%s), %.3f ms from its submission to its end\n",
            st.last_step_record_ms,
            st.last_step_reused           ? "reused: recorded for an earlier step"
            : st.last_step_recorded_ahead ? "while the step before it ran"
                                          : "before submitting it",
            st.last_step_wait_ms);
    fprintf(stderr, "  %-14s %9s %7s %10s\n", "op", "ms", "share", "dispatches");
    double total = 0;
    for (uint32_t i = 0; i < st.op_count; i++)
        total += st.ops[i].ms;
    for (uint32_t i = 0; i < st.op_count; i++) {
        const eng_op_stat *op = &st.ops[i];
        fprintf(stderr, "  %-14s %9.3f %6.1f%% %10u", op->name, op->ms,
                total > 0 ? 100.0 * op->ms / total : 0.0, op->calls);
        if (strcmp(op->name, "matvec") == 0 && op->ms > 0) {
            double gbps = weight_bytes / (op->ms * 1e-3) / 1e9;
            fprintf(stderr, "   %.1f GB/s of weights, %.1f%% of copy bandwidth", gbps,
                    copy_gbps > 0 ? 100.0 * gbps / copy_gbps : 0.0);
        }
        fputc('\n', stderr);
    }
    if (!st.op_count)
        fprintf(stderr, "  (the device has no timestamps)\n");
}

/* Every test of one model on one device. */
static void bench_model(bench_run *b, vkb_device *dev, const bench_device *bd, const char *gate,
                        uint32_t mi)
{
    const bench_opts *o = b->o;
    char err[512], name[160];
    bool bar = isatty(2);
    eng_status st = ENG_OK;
    eng_model *m;
    if (o->synthetic[mi]) {
        m = open_synthetic(o->models[mi], o->seed, bar, name, sizeof name, err, sizeof err);
    } else {
        m = eng_model_open(o->models[mi], &st, err, sizeof err);
    }
    if (!m || eng_model_upload(m, dev, bar ? tool_progress : NULL, "loading weights", err,
                               sizeof err) != ENG_OK) {
        tool_error("bench: %s: %s", o->models[mi], err);
        eng_model_close(m);
        b->failed = true;
        return;
    }
    const eng_hparams *hp = eng_model_hparams(m);
    bench_row base = {.dev = *bd, .gate_ok = true};
    snprintf(base.gate, sizeof base.gate, "%s", gate);
    snprintf(base.build_commit, sizeof base.build_commit, "%s", VKLLM_BUILD_COMMIT);
    if (o->synthetic[mi]) {
        /* a preset name is short; the precision keeps the compiler's truncation check quiet */
        snprintf(base.model_filename, sizeof base.model_filename, "synthetic:%.*s",
                 (int)sizeof base.model_filename - 11, o->models[mi]);
        snprintf(base.model_type, sizeof base.model_type, "%.95s", name);
    } else {
        char params[32];
        format_params(eng_model_param_count(m), params, sizeof params);
        snprintf(base.model_filename, sizeof base.model_filename, "%s", o->models[mi]);
        snprintf(base.model_type, sizeof base.model_type, "%s %s %s", hp->arch_name, params,
                 file_type_name(m));
    }
    base.model_size = eng_model_weight_bytes(m);
    base.model_n_params = eng_model_param_count(m);
    /* --sample's sampler: llama.cpp's defaults, seed 1, restarted for every repetition */
    eng_sampler_params smp_params = eng_sampler_params_default();
    smp_params.seed = 1;
    eng_sampler *smp =
        o->sample ? eng_sampler_create(&smp_params, hp->n_vocab, err, sizeof err) : NULL;
    if (o->sample && !smp) {
        tool_error("bench: %s", err);
        b->failed = true;
    }

    /* the tokens: random ids, as llama-bench uses */
    uint32_t need = 1, most = 17; /* the warm-up's tokens */
    for (uint32_t d = 0; d < o->n_depth.n; d++)
        for (uint32_t k = 0; k < o->n_prompt.n || k < o->n_gen.n; k++) {
            uint32_t pp = k < o->n_prompt.n ? o->n_prompt.v[k] : 0;
            uint32_t tg = k < o->n_gen.n ? o->n_gen.v[k] : 0;
            uint32_t t = o->n_depth.v[d] + (pp > tg ? pp : tg);
            most = t > most ? t : most;
        }
    need = most + 1;
    int32_t *tok = malloc(sizeof *tok * need);
    uint64_t rng = o->seed * 0x9e3779b97f4a7c15ull + 1;
    for (uint32_t i = 0; tok && i < need; i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        tok[i] = (int32_t)(rng % hp->n_vocab);
    }
    double w_bytes = weight_bytes_per_token(m);
    uint32_t runs = o->n_batch.n * o->fa.n * o->type_k.n * o->type_v.n;
    for (uint32_t run = 0; tok && (smp || !o->sample) && run < runs; run++) {
        uint32_t at = run, tv = o->type_v.v[at % o->type_v.n];
        at /= o->type_v.n;
        uint32_t tk = o->type_k.v[at % o->type_k.n];
        at /= o->type_k.n;
        uint32_t fa = o->fa.v[at % o->fa.n], bi = at / o->fa.n;
        eng_session *s = NULL;
        eng_session_params sp = {.n_ctx = (most + 255) / 256 * 256,
                                 .n_batch = o->n_batch.v[bi],
                                 .unfused_attention = fa == 0,
                                 .unfused_products = o->unfused_products,
                                 .record_each_step = o->record_each_step,
                                 .kv_k = (eng_kv_type)tk,
                                 .kv_v = (eng_kv_type)tv,
                                 .kv_group = o->kv.group,
                                 .kv_window = o->kv.window,
                                 .profile = o->profile,
                                 /* the logits stay on the device where only the best
                                  * (or the GPU's picks) are read, as in vkllm run */
                                 .best_logits = o->sample && strcmp(o->sample, "best") == 0
                                                    ? eng_sampler_best_needed(&smp_params)
                                                : o->gpu_picks ? 1
                                                               : 0,
                                 /* --gpu-picks: on the GPU, whatever the device */
                                 .best_place = o->gpu_picks ? ENG_BEST_GPU : ENG_BEST_AUTO};
        vkb_device_memory_reset_peak(dev);
        if (eng_session_create(m, &sp, &s, err, sizeof err) != ENG_OK) {
            /* a combination the model or the path cannot take: said, and skipped */
            tool_error("bench: %s, -fa %u, %s keys, %s values: %s", base.model_type, fa,
                       eng_kv_type_name(sp.kv_k), eng_kv_type_name(sp.kv_v), err);
            b->failed = true;
            continue;
        }
        bool session_failed = false;
        char why[256];
        if (o->gpu_picks && smp && !eng_session_gpu_picks(s, smp, why, sizeof why)) {
            tool_error("bench: --gpu-picks: the GPU cannot sample here: %s", why);
            b->failed = session_failed = true;
        }
        /* warm-up: pipelines are created on first use; 16 tokens take the matrix-matrix
         * path (when a prompt test will), one more the matrix-vector path */
        if (o->warmup) {
            uint32_t longest = 0;
            for (uint32_t k = 0; k < o->n_prompt.n; k++)
                longest = o->n_prompt.v[k] > longest ? o->n_prompt.v[k] : longest;
            uint32_t n = longest > 8 && o->n_batch.v[bi] > 8 ? 16 : 0;
            if ((n && eng_session_eval(s, tok, n) != ENG_OK) ||
                eng_session_eval(s, tok + n, 1) != ENG_OK) {
                tool_error("bench: warm-up: %s", eng_session_errmsg(s));
                b->failed = session_failed = true;
            }
        }
        /* a failure ends this session's tests; the other combinations still run */
        for (uint32_t d = 0; !session_failed && d < o->n_depth.n; d++)
            for (int kind = 0; kind < 2; kind++) {
                const uint_list *l = kind == 0 ? &o->n_prompt : &o->n_gen;
                for (uint32_t k = 0; k < l->n && !session_failed; k++) {
                    if (l->v[k] == 0)
                        continue;
                    bench_row r = base;
                    r.n_batch = o->n_batch.v[bi];
                    r.flash_attn = (int)fa;
                    r.unfused_products = o->unfused_products;
                    r.record_each_step = o->record_each_step;
                    r.gpu_picks = o->gpu_picks;
                    snprintf(r.sample, sizeof r.sample, "%s", o->sample ? o->sample : "");
                    snprintf(r.type_k, sizeof r.type_k, "%s", eng_kv_type_name(sp.kv_k));
                    snprintf(r.type_v, sizeof r.type_v, "%s", eng_kv_type_name(sp.kv_v));
                    eng_kv_info kvi;
                    eng_session_kv_info(s, &kvi);
                    r.kv_group = kvi.group, r.kv_window = kvi.window;
                    r.n_depth = o->n_depth.v[d];
                    *(kind == 0 ? &r.n_prompt : &r.n_gen) = l->v[k];
                    utc_now(r.test_time, sizeof r.test_time);
                    if (bar) {
                        char t[64];
                        bench_test_name(&r, t, sizeof t);
                        fprintf(stderr, "\r%s: %s ...\033[K", base.model_type, t);
                    }
                    if (!run_test(s, smp, tok, &r, o->reps)) {
                        tool_error("bench: %s: %s", base.model_type, eng_session_errmsg(s));
                        b->failed = session_failed = true;
                        break;
                    }
                    if (kind == 0) {
                        r.ttft_ms = r.avg_ns / 1e6;
                    } else {
                        double kv = kv_bytes_per_token(s, r.n_depth, r.n_gen);
                        r.decode_gbps = (w_bytes + kv) * r.avg_ts / 1e9;
                        r.bandwidth_pct =
                            bd->copy_gbps > 0 ? 100.0 * r.decode_gbps / bd->copy_gbps : 0;
                    }
                    vkb_memory_stats ms;
                    vkb_device_memory_stats(dev, &ms);
                    r.peak_memory = ms.peak_allocated;
                    if (bar)
                        fprintf(stderr, "\r\033[K");
                    emit(b, &r);
                    if (o->profile && kind == 1)
                        print_profile(s, &r, w_bytes, bd->copy_gbps);
                }
            }
        eng_session_destroy(s);
    }
    if (!tok) {
        tool_error("bench: out of memory");
        b->failed = true;
    }
    free(tok);
    eng_sampler_destroy(smp);
    eng_model_close(m);
}

static void bench_device_sel(bench_run *b, vkb_context *ctx, const char *sel)
{
    const bench_opts *o = b->o;
    tool_gpu_opts g = o->gpu;
    g.device = sel;
    vkb_device *dev;
    if (tool_open_device(ctx, &g, &dev) != 0) {
        b->failed = true;
        return;
    }
    bench_device bd;
    fill_device(dev, &bd);
    bool bar = isatty(2);
    if (bar)
        fprintf(stderr, "%s: measuring copy bandwidth, then the correctness gate ...", bd.name);
    tool_bandwidth bw;
    if (tool_measure_bandwidth(dev, 0, 5, &bw) == 0)
        bd.copy_gbps = bw.gbps;
    bench_row gate = {.dev = bd};
    snprintf(gate.build_commit, sizeof gate.build_commit, "%s", VKLLM_BUILD_COMMIT);
    gate.gate_ok = run_gate(dev, o, gate.gate, sizeof gate.gate);
    if (bar)
        fprintf(stderr, "\r\033[K");
    fprintf(stderr, "%s: copy %.1f GB/s; gate %s\n", bd.name, bd.copy_gbps, gate.gate);
    if (!gate.gate_ok) {
        utc_now(gate.test_time, sizeof gate.test_time);
        emit(b, &gate);
        b->failed = true;
    } else {
        for (uint32_t mi = 0; mi < o->n_models; mi++)
            bench_model(b, dev, &bd, gate.gate, mi);
    }
    vkb_device_close(dev);
}

static int model_bench(int argc, char **argv)
{
    bench_opts o = {.reps = 5, .warmup = true, .seed = 1, .fmt = BENCH_MD};
    o.n_prompt = (uint_list){{512}, 1};
    o.n_gen = (uint_list){{128}, 1};
    o.n_depth = (uint_list){{0}, 1};
    o.n_batch = (uint_list){{512}, 1};
    o.fa = (uint_list){{1}, 1};
    o.type_k = (uint_list){{ENG_KV_F16}, 1};
    o.type_v = (uint_list){{ENG_KV_F16}, 1};
    int r = parse_flags(argc, argv, &o);
    if (r)
        return r == 1 ? 0 : 2;
    vkb_context *ctx;
    if (tool_open_context(&o.gpu, &ctx) != 0)
        return 1;
    bench_run b = {.o = &o, .out = stdout};
    bench_write_begin(stdout, o.fmt);
    if (o.devices && strcmp(o.devices, "all") == 0) {
        for (uint32_t i = 0; i < vkb_context_device_count(ctx); i++) {
            char sel[16];
            snprintf(sel, sizeof sel, "%u", i);
            bench_device_sel(&b, ctx, sel);
        }
    } else {
        char sel[TOOL_ITEM_MAX];
        const char *p = o.devices ? o.devices : "";
        if (!*p)
            bench_device_sel(&b, ctx, NULL);
        while (tool_next_item(&p, sel) > 0)
            bench_device_sel(&b, ctx, sel);
    }
    bench_write_end(stdout, o.fmt);
    if (o.gpu.validation && tool_report_validation(ctx) > 0)
        b.failed = true;
    vkb_context_destroy(ctx);
    return b.failed ? 1 : 0;
}

int cmd_bench(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "kernels") == 0)
        return bench_kernels(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "attention") == 0)
        return bench_attention(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "compare") == 0)
        return bench_compare(argc - 1, argv + 1);
    return model_bench(argc, argv);
}
