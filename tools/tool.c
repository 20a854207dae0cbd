#include "tool.h"

#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

void tool_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(TOOL_NAME ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int tool_parse_gpu_flag(int argc, char **argv, int *i, tool_gpu_opts *opts)
{
    const char *a = argv[*i];
    if (strcmp(a, "--validation") == 0) {
        opts->validation = true;
        return 1;
    }
    bool is_device = strcmp(a, "--device") == 0 || strcmp(a, "-d") == 0;
    bool is_profile = strcmp(a, "--profile") == 0;
    if (!is_device && !is_profile)
        return 0;
    if (*i + 1 >= argc) {
        tool_error("%s needs a value", a);
        return -1;
    }
    const char *v = argv[++*i];
    if (is_device) {
        opts->device = v;
        return 1;
    }
    if (!vkb_profile_parse(v, &opts->profile)) {
        tool_error("unknown profile \"%s\": use native, mobile or minimal", v);
        return -1;
    }
    return 1;
}

const char *tool_cache_dir(void)
{
    static char buf[1024];
    const char *v = getenv("VKLLM_CACHE_DIR");
    if (v && *v)
        return v;
    v = getenv("XDG_CACHE_HOME");
    if (v && *v) {
        snprintf(buf, sizeof buf, "%s/vkllm", v);
        return buf;
    }
    v = getenv("HOME");
    if (v && *v) {
        snprintf(buf, sizeof buf, "%s/.cache/vkllm", v);
        return buf;
    }
    return NULL;
}

int tool_open_context(const tool_gpu_opts *opts, vkb_context **ctx)
{
    vkb_context_config cfg = {.validation = opts->validation};
    vkb_status st = vkb_context_create(&cfg, ctx);
    if (st != VKB_OK) {
        tool_error("%s", vkb_context_errmsg(*ctx));
        vkb_context_destroy(*ctx);
        *ctx = NULL;
        return 1;
    }
    return 0;
}

int tool_open_device(vkb_context *ctx, const tool_gpu_opts *opts, vkb_device **dev)
{
    uint32_t index;
    *dev = NULL;
    if (vkb_context_select_device(ctx, opts->device, &index) != VKB_OK) {
        tool_error("%s", vkb_context_errmsg(ctx));
        return 1;
    }
    vkb_device_config cfg = {
        .index = index,
        .profile = opts->profile,
        .pipeline_cache_dir = tool_cache_dir(),
    };
    if (vkb_device_open(ctx, &cfg, dev) != VKB_OK) {
        tool_error("opening device %u: %s", index, vkb_device_errmsg(*dev));
        vkb_device_close(*dev);
        *dev = NULL;
        return 1;
    }
    return 0;
}

unsigned tool_report_validation(vkb_context *ctx)
{
    unsigned n = vkb_context_validation_count(ctx);
    for (unsigned i = 0; i < n; i++) {
        const char *m = vkb_context_validation_message(ctx, i);
        if (!m) {
            fprintf(stderr, "validation: ... %u more\n", n - i);
            break;
        }
        fprintf(stderr, "validation: %s\n", m);
    }
    return n;
}

static double now_ms(void)
{
    return tool_now_s() * 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* GPU time of each repetition: one submission, the timings between repetitions summed. */
static int time_gpu(vkb_stream *s, int warmup, int reps, tool_record_fn rec, void *arg, double *ms)
{
    uint32_t *ends = calloc((size_t)(warmup + reps), sizeof *ends);
    int rc = 1;
    if (!ends || vkb_stream_begin(s) != VKB_OK)
        goto out;
    for (int i = 0; i < warmup + reps; i++) {
        if (rec(s, arg) != VKB_OK)
            goto out;
        ends[i] = vkb_stream_recorded_timings(s);
    }
    if (vkb_stream_submit(s) != VKB_OK || vkb_stream_wait(s) != VKB_OK)
        goto out;
    for (int i = warmup; i < warmup + reps; i++)
        for (uint32_t t = i ? ends[i - 1] : 0; t < ends[i]; t++)
            ms[i - warmup] += vkb_stream_timing(s, t).ms;
    rc = 0;
out:
    free(ends);
    return rc;
}

int tool_time_reps(vkb_stream *s, bool gpu_timed, int warmup, int reps, tool_record_fn rec,
                   void *arg, double *median, double *best)
{
    double *ms = calloc((size_t)reps, sizeof *ms);
    int rc = ms ? 0 : 1;
    if (rc == 0 && gpu_timed) {
        rc = time_gpu(s, warmup, reps, rec, arg, ms);
    } else {
        for (int i = 0; i < warmup + reps && rc == 0; i++) {
            double t0 = now_ms();
            if (vkb_stream_begin(s) != VKB_OK || rec(s, arg) != VKB_OK ||
                vkb_stream_submit(s) != VKB_OK || vkb_stream_wait(s) != VKB_OK)
                rc = 1;
            else if (i >= warmup)
                ms[i - warmup] = now_ms() - t0;
        }
    }
    if (rc == 0) {
        qsort(ms, (size_t)reps, sizeof *ms, cmp_double);
        *median = ms[reps / 2];
        if (best)
            *best = ms[0];
    }
    free(ms);
    return rc;
}

bool tool_parse_long(const char *flag, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || *end || end == s || errno || v < lo || v > hi) {
        tool_error("%s needs a whole number from %ld to %ld, got \"%s\"", flag, lo, hi, s ? s : "");
        return false;
    }
    *out = v;
    return true;
}

bool tool_parse_float(const char *flag, const char *s, float lo, float hi, float *out)
{
    char *end;
    float v = s ? strtof(s, &end) : 0.0f;
    if (!s || *end || end == s || !(v >= lo && v <= hi)) {
        tool_error("%s needs a number from %g to %g, got \"%s\"", flag, lo, hi, s ? s : "");
        return false;
    }
    *out = v;
    return true;
}

double tool_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void tool_progress(uint64_t done, uint64_t total, void *label)
{
    int width = 30, filled = total ? (int)((double)done / (double)total * width) : width;
    fprintf(stderr, "\r%s [%.*s%*s] %3d%%  %.1f / %.1f MiB", (const char *)label, filled,
            "##############################", width - filled, "",
            total ? (int)(100.0 * (double)done / (double)total) : 100, done / 1048576.0,
            total / 1048576.0);
    if (done >= total)
        fputc('\n', stderr);
}

int tool_next_item(const char **list, char item[TOOL_ITEM_MAX])
{
    const char *p = *list;
    if (!*p)
        return 0;
    size_t n = strcspn(p, ",");
    snprintf(item, TOOL_ITEM_MAX, "%.*s", (int)(n < TOOL_ITEM_MAX ? n : TOOL_ITEM_MAX - 1), p);
    *list = p + n + (p[n] == ',');
    return n < TOOL_ITEM_MAX ? 1 : -1;
}

char *tool_read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        tool_error("cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - 1 - n, f)) > 0;) {
        n += got;
        if (n == cap - 1) {
            char *b = realloc(buf, cap *= 2);
            if (!b)
                free(buf);
            buf = b;
        }
    }
    fclose(f);
    if (!buf) {
        tool_error("out of memory reading %s", path);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

int32_t *tool_tokenize(const eng_vocab *v, const char *text, size_t len, bool add_special,
                       bool parse_special, size_t extra, int64_t *n)
{
    size_t cap = len + 3; /* a token per byte, the space prefix, BOS, EOS: the usual most */
    for (int pass = 0; pass < 2; pass++) {
        int32_t *tok = malloc(sizeof *tok * (cap + extra));
        int64_t got = tok ? eng_tokenize(v, text, len, add_special, parse_special, tok, cap) : -1;
        if (got >= 0 && (size_t)got <= cap) {
            *n = got;
            return tok;
        }
        free(tok);
        if (got < 0)
            break;
        cap = (size_t)got;
    }
    return NULL;
}

int tool_parse_kv_flag(int argc, char **argv, int *i, tool_kv_opts *kv)
{
    const char *a = argv[*i], *val = *i + 1 < argc ? argv[*i + 1] : NULL;
    bool group = strcmp(a, "--kv-group") == 0, window = strcmp(a, "--kv-window") == 0;
    if (group || window) {
        long n;
        if (!val) {
            tool_error("%s takes a number", a);
            return -1;
        }
        if (!tool_parse_long(a, val, group ? 32 : 0, group ? 256 : 1 << 20, &n))
            return -1;
        ++*i;
        if (group)
            kv->group = (uint32_t)n;
        else
            kv->window = n ? (uint32_t)n : ENG_KV_WINDOW_NONE;
        return 1;
    }
    bool both = strcmp(a, "--kv-type") == 0, ko = strcmp(a, "--kv-type-k") == 0,
         vo = strcmp(a, "--kv-type-v") == 0;
    if (!both && !ko && !vo)
        return 0;
    eng_kv_type t;
    if (!val || !eng_kv_type_parse(val, &t)) {
        tool_error("%s takes f16, q8_0, q4_0, kivi4 or kivi2%s%s%s", a, val ? ", not \"" : "",
                   val ? val : "", val ? "\"" : "");
        return -1;
    }
    ++*i;
    if (both || ko)
        kv->k = t;
    if (both || vo)
        kv->v = t;
    return 1;
}

int tool_parse_sampling_flag(int argc, char **argv, int *i, eng_sampler_params *sp,
                             bool *seed_given)
{
    const char *a = argv[*i], *val = *i + 1 < argc ? argv[*i + 1] : NULL;
    if (strcmp(a, "--greedy") == 0) {
        sp->temperature = 0.0f;
        return 1;
    }
    static const char *const flags[] = {"--temp",           "--top-k",         "--top-p", "--min-p",
                                        "--repeat-penalty", "--repeat-last-n", "--seed"};
    int f = 0;
    while (f < 7 && strcmp(a, flags[f]) != 0)
        f++;
    if (f == 7)
        return 0;
    if (!val) {
        tool_error("%s needs a value", a);
        return -1;
    }
    long n = 0;
    bool ok = true;
    switch (f) {
    case 0: ok = tool_parse_float(a, val, 0.0f, 100.0f, &sp->temperature); break;
    case 1:
        if ((ok = tool_parse_long(a, val, 0, INT32_MAX, &n)))
            sp->top_k = (int32_t)n;
        break;
    case 2: ok = tool_parse_float(a, val, 0.0f, 1.0f, &sp->top_p); break;
    case 3: ok = tool_parse_float(a, val, 0.0f, 1.0f, &sp->min_p); break;
    case 4: ok = tool_parse_float(a, val, 0.0f, 100.0f, &sp->repeat_penalty); break;
    case 5:
        if ((ok = tool_parse_long(a, val, 0, INT32_MAX, &n)))
            sp->repeat_last_n = (int32_t)n;
        break;
    default:
        if ((ok = tool_parse_long(a, val, 0, LONG_MAX, &n))) {
            sp->seed = (uint64_t)n;
            *seed_given = true;
        }
    }
    if (!ok)
        return -1;
    ++*i;
    return 1;
}

bool tool_output_ok(const char *cmd, const char *in, const char *out, bool force)
{
    struct stat a, b;
    bool exists = stat(out, &b) == 0;
    if (in && (strcmp(in, out) == 0 ||
               (exists && stat(in, &a) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino))) {
        tool_error("%s: %s is the input; write the output somewhere else", cmd, out);
        return false;
    }
    if (exists && !force) {
        tool_error("%s: %s exists; pass --force to overwrite it", cmd, out);
        return false;
    }
    return true;
}

int tool_parse_generation_flag(int argc, char **argv, int *i, tool_gpu_opts *gpu, tool_kv_opts *kv,
                               eng_sampler_params *sp, bool *seed_given)
{
    int g = tool_parse_gpu_flag(argc, argv, i, gpu);
    if (g == 0)
        g = tool_parse_kv_flag(argc, argv, i, kv);
    if (g == 0)
        g = tool_parse_sampling_flag(argc, argv, i, sp, seed_given);
    return g;
}

eng_model *tool_open_model(const char *path)
{
    char err[512] = "";
    eng_status st;
    eng_model *m = eng_model_open(path, &st, err, sizeof err);
    if (m)
        return m;
    /* messages from the file layer name the path already */
    if (strncmp(err, path, strlen(path)) == 0)
        tool_error("%s", err);
    else
        tool_error("%s: %s", path, err);
    return NULL;
}
