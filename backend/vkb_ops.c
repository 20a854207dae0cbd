/* Ops: argument checks, variant choice per device, dispatches. */
#include <math.h>
#include <stdio.h>

#include "vkb_internal.h"
#include "vkb_ops.h"

#define SUM_ELEMS_PER_INVOCATION 4 /* ELEMS in shaders/sum_f32.comp */

uint32_t vkb_op_wg_size(const vkb_device *dev, uint32_t want, uint32_t shared_per_invocation)
{
    const vkb_device_info *info = &dev->info;
    uint32_t lim = vkb_max_workgroup_x(info);
    uint32_t wg = want < lim ? want : lim;
    while (shared_per_invocation && wg > 1 && wg * shared_per_invocation > info->max_shared_memory)
        wg /= 2;
    return wg;
}

vkb_status vkb_op_need_single_part(vkb_device *dev, const char *op, const char *what,
                                   const vkb_buffer *buf, uint64_t bytes)
{
    const struct vkb_part *p;
    if (!buf)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, what);
    if (bytes > buf->size)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT, "%s: %s holds %llu bytes, needs %llu",
                            op, what, (unsigned long long)buf->size, (unsigned long long)bytes);
    if (!vkb_buffer_locate(buf, 0, bytes, &p))
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "%s: %s is split into parts; pass one part at a time", op, what);
    return VKB_OK;
}

uint64_t vkb_op_caches_bytes(const vkb_buffer *a, const vkb_buffer *b)
{
    if (!a || !b)
        return 0;
    return a->size < b->size ? a->size : b->size;
}

vkb_status vkb_op_check_count(vkb_device *dev, const char *op, uint64_t n)
{
    if (n == 0 || n > UINT32_MAX)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "%s: %llu elements (must be 1 to 2^32-1)", op, (unsigned long long)n);
    return VKB_OK;
}

vkb_status vkb_op_check_act(vkb_device *dev, const char *op, vkb_act act)
{
    if (act != VKB_ACT_SILU && act != VKB_ACT_GELU)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT, "%s: activation %d (silu %d, gelu %d)",
                            op, (int)act, VKB_ACT_SILU, VKB_ACT_GELU);
    return VKB_OK;
}

static vkb_status pipeline(vkb_device *dev, const char *name, uint32_t wg, vkb_pipeline **out)
{
    vkb_spec spec = {.count = 1, .values = {wg}};
    return vkb_pipeline_get(dev, name, &spec, out);
}

bool vkb_op_use_subgroups(const vkb_device *dev)
{
    uint32_t need = VKB_SUBGROUP_BASIC | VKB_SUBGROUP_ARITHMETIC;
    return (dev->info.subgroup_ops & need) == need;
}

const char *vkb_op_sum_variant(const vkb_device *dev)
{
    return vkb_op_use_subgroups(dev) ? "sum_subgroup" : "sum_shared";
}

static uint64_t align256(uint64_t v)
{
    return (v + 255) / 256 * 256;
}

/* Bytes of partial sums the reduction of n values needs, and its workgroup size. */
static uint64_t sum_plan(const vkb_device *dev, uint64_t n, uint32_t *wg_out)
{
    uint32_t wg = vkb_op_wg_size(dev, 256, 4);
    uint64_t per_group = (uint64_t)wg * SUM_ELEMS_PER_INVOCATION;
    uint64_t tmp = 0;
    for (uint64_t m = n; m > per_group;) {
        uint64_t groups = (m + per_group - 1) / per_group;
        tmp += align256(groups * 4);
        m = groups;
    }
    if (wg_out)
        *wg_out = wg;
    return tmp;
}

uint64_t vkb_op_sum_tmp_bytes(const vkb_device *dev, uint64_t n)
{
    uint64_t t = sum_plan(dev, n, NULL);
    return t ? t : 256;
}

vkb_status vkb_op_sum(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *x, uint64_t n,
                      const vkb_buffer *tmp)
{
    vkb_device *dev = vkb_stream_device(s);
    vkb_status st;
    uint32_t wg;
    uint64_t tmp_bytes = sum_plan(dev, n, &wg);
    if ((st = vkb_op_check_count(dev, "sum", n)) != VKB_OK ||
        (st = vkb_op_need_single_part(dev, "sum", "x", x, n * 4)) != VKB_OK ||
        (st = vkb_op_need_single_part(dev, "sum", "out", out, 4)) != VKB_OK ||
        (tmp_bytes && (st = vkb_op_need_single_part(dev, "sum", "tmp", tmp, tmp_bytes)) != VKB_OK))
        return st;
    vkb_pipeline *p;
    if ((st = pipeline(dev, vkb_op_sum_variant(dev), wg, &p)) != VKB_OK)
        return st;
    uint64_t per_group = (uint64_t)wg * SUM_ELEMS_PER_INVOCATION;
    vkb_binding in = {x, 0, n * 4};
    uint64_t tmp_at = 0;
    for (uint64_t m = n;;) {
        uint64_t groups = (m + per_group - 1) / per_group;
        vkb_binding dst =
            groups == 1 ? (vkb_binding){out, 0, 4} : (vkb_binding){tmp, tmp_at, groups * 4};
        vkb_binding b[2] = {in, dst};
        uint32_t m32 = (uint32_t)m;
        uint64_t elems[3] = {m, 1, 1};
        if ((st = vkb_stream_dispatch(s, p, b, 2, &m32, sizeof m32, elems, "sum")) != VKB_OK)
            return st;
        if (groups == 1)
            return VKB_OK;
        in = dst;
        tmp_at += align256(groups * 4);
        m = groups;
    }
}

/* ---- the small ops of a transformer ---- */

const char *vkb_op_row_variant(const vkb_device *dev)
{
    return vkb_op_use_subgroups(dev) ? "subgroup" : "shared";
}

/* One buffer argument of an elementwise op and the bytes it must hold. */
struct op_arg {
    const char *what;
    const vkb_buffer *buf;
    uint64_t bytes;
};

/* Checks each argument (one part holding its bytes) and binds it from offset 0. */
static vkb_status bind_args(vkb_device *dev, const char *op, const struct op_arg *args,
                            uint32_t nargs, vkb_binding *b)
{
    vkb_status st;
    for (uint32_t i = 0; i < nargs; i++) {
        if ((st = vkb_op_need_single_part(dev, op, args[i].what, args[i].buf, args[i].bytes)))
            return st;
        b[i] = (vkb_binding){args[i].buf, 0, args[i].bytes};
    }
    return VKB_OK;
}

/* Checks each argument (one part holding its bytes) and records `kernel` over `elems`
 * invocations in x with its default spec at workgroup `wg` (0 = 256 capped). */
static vkb_status dispatch_simple(vkb_stream *s, const char *op, const char *kernel,
                                  const struct op_arg *args, uint32_t nargs, const void *push,
                                  uint32_t push_size, uint64_t elems, uint32_t wg)
{
    vkb_device *dev = vkb_stream_device(s);
    vkb_status st;
    vkb_binding b[VKB_MAX_BINDINGS];
    if ((st = bind_args(dev, op, args, nargs, b)) != VKB_OK)
        return st;
    vkb_pipeline *p;
    if ((st = pipeline(dev, kernel, wg ? wg : vkb_op_wg_size(dev, 256, 0), &p)) != VKB_OK)
        return st;
    uint64_t e[3] = {elems, 1, 1};
    return vkb_stream_dispatch(s, p, b, nargs, push, push_size, e, op);
}

/* Workgroup size for one-workgroup-per-row kernels: enough invocations for the row, a
 * multiple of the subgroup, at most 1024 on GPUs and 256 on CPU drivers. On a GPU a decode
 * step has a single row, and a workgroup that walks 4096 values 256 at a time waits on 16
 * loads in a row (12 us per rms_norm on an H100); 1024 invocations wait on 4. A CPU driver
 * runs a workgroup on one thread. */
static uint32_t row_wg(const vkb_device *dev, uint32_t n)
{
    uint32_t wg = vkb_op_wg_size(dev, dev->info.type == VKB_DEVICE_CPU ? 256 : 1024, 4);
    uint32_t sg = dev->info.subgroup_size ? dev->info.subgroup_size : 1;
    while (wg > sg && wg / 2 >= n)
        wg /= 2;
    return wg;
}

static vkb_status check_rows(vkb_device *dev, const char *op, uint32_t n, uint32_t rows)
{
    if (n == 0 || rows == 0 || (uint64_t)n * rows > UINT32_MAX)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "%s: %u rows of %u values (each must be at least 1, the product "
                            "below 2^32)",
                            op, rows, n);
    return VKB_OK;
}

/* The workgroup of quantize_q8.comp and its fusions: a multiple of 8 (a block's eight). */
static uint32_t q8_wg(const vkb_device *dev, uint32_t want)
{
    return vkb_op_wg_size(dev, want, 8) / 8 * 8;
}

static vkb_status check_q8(vkb_device *dev, const char *op, uint32_t k, uint32_t ncols)
{
    if (k == 0 || k % 32 || ncols == 0 || (uint64_t)k * ncols > UINT32_MAX)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "%s: %u columns of %u values (k must be a positive multiple of 32)", op,
                            ncols, k);
    return VKB_OK;
}

/* The variants of rms_norm.comp: plain; Q8, out also quantized into `extra` (xq); ADD,
 * out = `extra` (res) + the norm. */
enum norm_variant { NORM_PLAIN, NORM_Q8, NORM_ADD };

static vkb_status rms_norm(vkb_stream *s, enum norm_variant variant, const vkb_buffer *out,
                           const vkb_buffer *extra, const vkb_buffer *x, const vkb_buffer *w,
                           uint32_t n, uint32_t rows, float eps)
{
    static const char *const ops[] = {"rms_norm", "rms_norm_q8", "rms_norm_add"};
    const char *op = ops[variant];
    vkb_device *dev = vkb_stream_device(s);
    bool q8 = variant == NORM_Q8;
    vkb_status st;
    if (variant != NORM_PLAIN && !extra)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, q8 ? "xq" : "res");
    if ((st = check_rows(dev, op, n, rows)) != VKB_OK ||
        (q8 && (st = check_q8(dev, op, n, rows)) != VKB_OK))
        return st;
    if (!(eps >= 0.0f))
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT, "%s: eps %g is negative", op, eps);
    uint64_t bytes = (uint64_t)n * rows * 4;
    struct op_arg a[4] = {{"x", x, bytes},
                          {"w", w, (uint64_t)n * 4},
                          {"out", out, bytes},
                          {q8 ? "xq" : "res", extra, q8 ? vkb_q8_bytes(n, rows) : bytes}};
    struct {
        uint32_t n, rows;
        float eps;
    } push = {n, rows, eps};
    char kernel[32];
    snprintf(kernel, sizeof kernel, "%s_%s", op, vkb_op_row_variant(dev));
    /* the same workgroup with and without xq, so out is the same bits */
    uint32_t wg = row_wg(dev, n);
    if (q8 && wg % 8)
        return vkb_dev_fail(dev, VKB_ERR_UNSUPPORTED,
                            "%s: rows of %u values take a workgroup of %u, not a multiple of 8", op,
                            n, wg);
    return dispatch_simple(s, op, kernel, a, variant == NORM_PLAIN ? 3 : 4, &push, sizeof push,
                           rows, wg);
}

vkb_status vkb_op_rms_norm(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *x,
                           const vkb_buffer *w, uint32_t n, uint32_t rows, float eps)
{
    return rms_norm(s, NORM_PLAIN, out, NULL, x, w, n, rows, eps);
}

vkb_status vkb_op_rms_norm_add(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *res,
                               const vkb_buffer *x, const vkb_buffer *w, uint32_t n, uint32_t rows,
                               float eps)
{
    return rms_norm(s, NORM_ADD, out, res, x, w, n, rows, eps);
}

vkb_status vkb_op_rms_norm_q8(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *xq,
                              const vkb_buffer *x, const vkb_buffer *w, uint32_t n, uint32_t rows,
                              float eps)
{
    return rms_norm(s, NORM_Q8, out, xq, x, w, n, rows, eps);
}

/* quantize_q8.comp's variants: args end with xq; k values per column, ncols columns. */
static vkb_status quantize_q8(vkb_stream *s, const char *op, struct op_arg *a, uint32_t nargs,
                              uint32_t k, uint32_t ncols)
{
    vkb_device *dev = vkb_stream_device(s);
    vkb_status st = check_q8(dev, op, k, ncols);
    if (st != VKB_OK)
        return st;
    uint64_t n = (uint64_t)k * ncols;
    for (uint32_t i = 0; i + 1 < nargs; i++)
        a[i].bytes = n * 4;
    a[nargs - 1].bytes = vkb_q8_bytes(k, ncols);
    uint32_t push[2] = {k, (uint32_t)(n / 32)};
    return dispatch_simple(s, op, op, a, nargs, push, sizeof push, n / 4, q8_wg(dev, 64));
}

vkb_status vkb_op_quantize_q8(vkb_stream *s, const vkb_buffer *xq, const vkb_buffer *x, uint32_t k,
                              uint32_t ncols)
{
    struct op_arg a[2] = {{"x", x, 0}, {"xq", xq, 0}};
    return quantize_q8(s, "quantize_q8", a, 2, k, ncols);
}

vkb_status vkb_op_glu_mul_q8(vkb_stream *s, vkb_act act, const vkb_buffer *out,
                             const vkb_buffer *xq, const vkb_buffer *gate, const vkb_buffer *up,
                             uint32_t k, uint32_t ncols)
{
    const char *op = act == VKB_ACT_GELU ? "gelu_mul_q8" : "silu_mul_q8";
    struct op_arg a[4] = {{"gate", gate, 0}, {"up", up, 0}, {"out", out, 0}, {"xq", xq, 0}};
    vkb_status st = vkb_op_check_act(vkb_stream_device(s), op, act);
    return st ? st : quantize_q8(s, op, a, 4, k, ncols);
}

vkb_status vkb_op_softmax(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *x,
                          const vkb_buffer *mask, uint32_t mask_rows, uint32_t n, uint32_t rows,
                          float scale)
{
    vkb_device *dev = vkb_stream_device(s);
    vkb_status st;
    if ((st = check_rows(dev, "softmax", n, rows)) != VKB_OK)
        return st;
    if (mask && (mask_rows == 0 || mask_rows > rows))
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "softmax: mask of %u rows for %u rows (must be 1 to rows)", mask_rows,
                            rows);
    uint64_t bytes = (uint64_t)n * rows * 4;
    /* without a mask, x is bound in its place: the kernel does not read it */
    struct op_arg a[3] = {{"x", x, bytes},
                          {"mask", mask ? mask : x, mask ? (uint64_t)n * mask_rows * 4 : bytes},
                          {"out", out, bytes}};
    struct {
        uint32_t n, rows;
        float scale;
        uint32_t mask_rows;
    } push = {n, rows, scale, mask ? mask_rows : 0};
    char kernel[32];
    snprintf(kernel, sizeof kernel, "softmax_%s", vkb_op_row_variant(dev));
    return dispatch_simple(s, "softmax", kernel, a, 3, &push, sizeof push, rows, row_wg(dev, n));
}

vkb_status vkb_op_argmax_feed(vkb_stream *s, const vkb_buffer *x, uint32_t n, const vkb_buffer *pos,
                              const vkb_buffer *ids, const vkb_buffer *picked, uint32_t picked_len,
                              const vkb_buffer *best)
{
    vkb_device *dev = vkb_stream_device(s);
    if (n == 0 || picked_len == 0)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "argmax: %u values, a ring of %u picks (each must be at least 1)", n,
                            picked_len);
    /* without best, the ids are bound in its place: the kernel does not write it */
    struct op_arg a[5] = {{"x", x, (uint64_t)n * 4},
                          {"pos", pos, 4},
                          {"ids", ids, 4},
                          {"picked", picked, (uint64_t)picked_len * 4},
                          {best ? "best" : "ids", best ? best : ids, best ? 8 : 4}};
    struct {
        uint32_t n, picked_len, write_best;
    } push = {n, picked_len, best != NULL};
    return dispatch_simple(s, "argmax", "argmax", a, 5, &push, sizeof push, 1, row_wg(dev, n));
}

/* Slices of at least 2048 logits, about sqrt(n·m) each so that the second pass (groups ×
 * m pairs in one workgroup) is as long as a first-pass slice, at most 64 of them. */
uint32_t vkb_top_logits_groups(uint32_t n, uint32_t m, uint32_t groups)
{
    if (groups == 0) {
        double slice = sqrt((double)n * m);
        slice = slice < 2048 ? 2048 : slice;
        groups = (uint32_t)ceil(n / slice);
        groups = groups < 1 ? 1 : groups > 64 ? 64 : groups;
    }
    /* every workgroup's slice starts inside the row */
    uint32_t slice = (n + groups - 1) / groups;
    return n ? (n + slice - 1) / slice : 1;
}

uint64_t vkb_top_logits_scratch_bytes(uint32_t n, uint32_t m, uint32_t groups)
{
    groups = vkb_top_logits_groups(n, m, groups);
    return groups > 1 ? (uint64_t)groups * m * sizeof(vkb_top_logit) : 0;
}

vkb_status vkb_op_top_logits(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *scratch,
                             const vkb_buffer *x, uint32_t n, uint32_t m, uint32_t groups)
{
    vkb_device *dev = vkb_stream_device(s);
    if (n == 0 || m == 0 || groups > 65535 || (uint64_t)groups * m > UINT32_MAX / 8)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "top_logits: the best %u of %u values over %u workgroups (n and m "
                            "must be at least 1)",
                            m, n, groups);
    groups = vkb_top_logits_groups(n, m, groups);
    uint32_t slice = (n + groups - 1) / groups;
    uint64_t out_bytes = (uint64_t)m * sizeof(vkb_top_logit);
    if (groups > 1 && !scratch)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "top_logits: %u workgroups need scratch (%llu bytes)", groups,
                            (unsigned long long)vkb_top_logits_scratch_bytes(n, m, groups));
    /* the first pass's unused pair input is bound to x, which it does not read */
    struct op_arg a[3] = {{"x", x, (uint64_t)n * 4},
                          {"x", x, (uint64_t)n * 4},
                          {groups > 1 ? "scratch" : "out", groups > 1 ? scratch : out,
                           groups > 1 ? groups * out_bytes : out_bytes}};
    uint32_t push[4] = {n, slice, m, 0};
    uint32_t wg = row_wg(dev, slice);
    vkb_status st =
        dispatch_simple(s, "top_logits", "top_logits", a, 3, push, sizeof push, groups, wg);
    if (st != VKB_OK || groups == 1)
        return st;
    struct op_arg b[3] = {{"x", x, (uint64_t)n * 4},
                          {"scratch", scratch, groups * out_bytes},
                          {"out", out, out_bytes}};
    uint32_t push2[4] = {groups * m, groups * m, m, 1};
    return dispatch_simple(s, "top_logits", "top_logits", b, 3, push2, sizeof push2, 1,
                           row_wg(dev, groups * m));
}

_Static_assert(VKB_SAMPLE_MAX == 512, "sample.comp's MAX_CAND, and the message below");

vkb_status vkb_op_sample_feed(vkb_stream *s, const vkb_buffer *best, uint32_t m,
                              const vkb_buffer *draws, const vkb_buffer *hist,
                              const vkb_buffer *pos, const vkb_buffer *ids,
                              const vkb_buffer *picked, uint32_t picked_len,
                              const vkb_sample_params *p)
{
    vkb_device *dev = vkb_stream_device(s);
    const char *why = NULL;
    if (!p)
        why = "no parameters";
    else if (m == 0 || m > VKB_SAMPLE_MAX)
        why = "1 to 512 best logits (VKB_SAMPLE_MAX)";
    else if (picked_len == 0)
        why = "a ring of at least 1 pick";
    else if (!(p->temperature >= 0.0f) || isinf(p->temperature))
        why = "a temperature of 0 (greedy) or above";
    else if (!(p->top_p > 0.0f && p->top_p <= 1.0f) || !(p->min_p >= 0.0f && p->min_p <= 1.0f))
        why = "top-p in (0, 1] and min-p in [0, 1]";
    else if (!(p->penalty > 0.0f) || isinf(p->penalty))
        why = "a positive penalty";
    else if (p->history > (UINT32_MAX - 2) / 4)
        why = "a smaller history";
    if (why)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT, "sample: %s (%u best logits, %u picks)",
                            why, m, picked_len);
    struct op_arg a[6] = {{"best", best, (uint64_t)m * sizeof(vkb_top_logit)},
                          {"draws", draws, (uint64_t)picked_len * 4},
                          {"history", hist, (2ull + p->history) * 4},
                          {"pos", pos, 4},
                          {"ids", ids, 4},
                          {"picked", picked, (uint64_t)picked_len * 4}};
    struct {
        uint32_t m, picked_len, history, top_k;
        float temperature, top_p, min_p, penalty;
    } push = {m, picked_len, p->history, p->top_k, p->temperature, p->top_p, p->min_p, p->penalty};
    uint32_t wg = vkb_op_wg_size(dev, m > 64 ? 256 : 64, 0);
    return dispatch_simple(s, "sample", "sample", a, 6, &push, sizeof push, 1, wg);
}

void vkb_rope_freqs(float *freqs, uint32_t rot_dims, float base, float freq_scale)
{
    for (uint32_t i = 0; i < rot_dims / 2; i++)
        freqs[i] = (float)((double)freq_scale * pow((double)base, -2.0 * i / (double)rot_dims));
}

static vkb_status check_rope(vkb_device *dev, const char *op, const vkb_rope_shape *sh)
{
    if (!sh || sh->head_dim == 0 || sh->head_dim % 2 || sh->rot_dims % 2 ||
        sh->rot_dims > sh->head_dim || sh->rot_dims == 0 || sh->heads == 0 || sh->tokens == 0)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "%s: head_dim %u, rot_dims %u (both even, 0 < rot_dims <= head_dim), "
                            "%u heads, %u tokens",
                            op, sh ? sh->head_dim : 0, sh ? sh->rot_dims : 0, sh ? sh->heads : 0,
                            sh ? sh->tokens : 0);
    return vkb_op_check_count(dev, op, (uint64_t)sh->head_dim * sh->heads * sh->tokens);
}

vkb_status vkb_op_rope(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *x,
                       const vkb_buffer *pos, const vkb_buffer *freqs, const vkb_rope_shape *sh)
{
    vkb_status st = check_rope(vkb_stream_device(s), "rope", sh);
    if (st != VKB_OK)
        return st;
    uint64_t values = (uint64_t)sh->head_dim * sh->heads * sh->tokens;
    struct op_arg a[4] = {{"x", x, values * 4},
                          {"pos", pos, (uint64_t)sh->tokens * 4},
                          {"freqs", freqs, (uint64_t)sh->rot_dims / 2 * 4},
                          {"out", out, values * 4}};
    uint32_t push[5] = {sh->head_dim, sh->rot_dims, sh->heads, sh->tokens, sh->neox ? 1u : 0u};
    return dispatch_simple(s, "rope", "rope_f32", a, 4, push, sizeof push, values / 2, 0);
}

/* f16 values are packed two per 32-bit word; an odd count still fills its last word. */
static uint64_t f16_bytes(uint64_t n)
{
    return (n + 1) / 2 * 4;
}

/* vkb_op_rope_store_f16, with norms (not NULL) vkb_op_norm_rope_store_f16. */
static vkb_status rope_store_f16(vkb_stream *s, const char *op, const vkb_buffer *q,
                                 const vkb_buffer *k, const vkb_buffer *v,
                                 const vkb_head_norms *norms, const vkb_buffer *pos,
                                 const vkb_buffer *freqs, const vkb_rope_shape *sh,
                                 uint32_t kv_heads, const vkb_buffer *k_cache,
                                 const vkb_buffer *v_cache, uint32_t row0)
{
    vkb_device *dev = vkb_stream_device(s);
    vkb_status st = check_rope(dev, op, sh);
    if (st != VKB_OK)
        return st;
    uint64_t q_values = (uint64_t)sh->head_dim * sh->heads * sh->tokens;
    uint64_t kv_values = (uint64_t)sh->head_dim * kv_heads * sh->tokens;
    /* rows at pos: the caches bound whole (where the positions point is the caller's) */
    bool at_pos = row0 == VKB_AT_POS;
    uint64_t cache_values = ((uint64_t)row0 + sh->tokens) * sh->head_dim * kv_heads;
    if (at_pos)
        cache_values = vkb_op_caches_bytes(k_cache, v_cache) / 2;
    if (kv_heads == 0 || q_values / 2 + kv_values > UINT32_MAX || cache_values > UINT32_MAX ||
        cache_values < kv_values)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "%s: %u kv heads of %u tokens from %s %u (1 or more heads; q, k, v "
                            "and the caches below 2^32 values)",
                            op, kv_heads, sh->tokens, at_pos ? "positions" : "row",
                            at_pos ? 0 : row0);
    /* with norms, a workgroup holds whole heads: a multiple of head_dim / 2 invocations */
    uint32_t half = sh->head_dim / 2, wg = 0;
    if (norms) {
        wg = vkb_op_wg_size(dev, 256, 4);
        wg -= wg % half;
        if (wg == 0 || !(norms->eps >= 0.0f))
            return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                                "%s: head size %u (at most twice the workgroup limit %u), eps %g "
                                "(not negative)",
                                op, sh->head_dim, vkb_op_wg_size(dev, 256, 4), norms->eps);
    }
    struct op_arg a[9] = {{"q", q, q_values * 4},
                          {"k", k, kv_values * 4},
                          {"v", v, kv_values * 4},
                          {"pos", pos, (uint64_t)sh->tokens * 4},
                          {"freqs", freqs, (uint64_t)sh->rot_dims / 2 * 4},
                          {"k_cache", k_cache, f16_bytes(cache_values)},
                          {"v_cache", v_cache, f16_bytes(cache_values)},
                          {"q_norm", norms ? norms->q : NULL, (uint64_t)sh->head_dim * 4},
                          {"k_norm", norms ? norms->k : NULL, (uint64_t)sh->head_dim * 4}};
    struct {
        uint32_t u[7];
        float eps;
    } push = {{sh->head_dim, sh->rot_dims, sh->heads, kv_heads, sh->tokens, sh->neox, row0},
              norms ? norms->eps : 0.0f};
    return dispatch_simple(s, op, norms ? "rope_store_norm_f16" : "rope_store_f16", a,
                           norms ? 9 : 7, &push, norms ? 32 : 28, q_values / 2 + kv_values, wg);
}

vkb_status vkb_op_rope_store_f16(vkb_stream *s, const vkb_buffer *q, const vkb_buffer *k,
                                 const vkb_buffer *v, const vkb_buffer *pos,
                                 const vkb_buffer *freqs, const vkb_rope_shape *sh,
                                 uint32_t kv_heads, const vkb_buffer *k_cache,
                                 const vkb_buffer *v_cache, uint32_t row0)
{
    return rope_store_f16(s, "rope_store_f16", q, k, v, NULL, pos, freqs, sh, kv_heads, k_cache,
                          v_cache, row0);
}

vkb_status vkb_op_norm_rope_store_f16(vkb_stream *s, const vkb_buffer *q, const vkb_buffer *k,
                                      const vkb_buffer *v, const vkb_head_norms *norms,
                                      const vkb_buffer *pos, const vkb_buffer *freqs,
                                      const vkb_rope_shape *sh, uint32_t kv_heads,
                                      const vkb_buffer *k_cache, const vkb_buffer *v_cache,
                                      uint32_t row0)
{
    if (!norms)
        return vkb_dev_fail(vkb_stream_device(s), VKB_ERR_INVALID_ARGUMENT,
                            "norm_rope_store_f16: norms is NULL");
    return rope_store_f16(s, "norm_rope_store_f16", q, k, v, norms, pos, freqs, sh, kv_heads,
                          k_cache, v_cache, row0);
}

/* The push constants of eltwise.comp. */
struct eltwise_push {
    uint32_t n;
    float s;
    uint32_t off;
};

vkb_status vkb_op_glu_mul(vkb_stream *s, vkb_act act, const vkb_buffer *out, const vkb_buffer *gate,
                          const vkb_buffer *up, uint64_t n)
{
    bool gelu = act == VKB_ACT_GELU;
    const char *op = gelu ? "gelu_mul" : "silu_mul";
    vkb_status st;
    if ((st = vkb_op_check_act(vkb_stream_device(s), op, act)) ||
        (st = vkb_op_check_count(vkb_stream_device(s), op, n)))
        return st;
    struct op_arg a[3] = {{"gate", gate, n * 4}, {"up", up, n * 4}, {"out", out, n * 4}};
    struct eltwise_push push = {(uint32_t)n, 0.0f, 0};
    return dispatch_simple(s, op, gelu ? "gelu_mul_f32" : "silu_mul_f32", a, 3, &push, sizeof push,
                           n, 0);
}

/* eltwise.comp's one-input ops with a float parameter */
static vkb_status eltwise1(vkb_stream *s, const char *op, const char *kernel, const vkb_buffer *out,
                           const vkb_buffer *x, uint64_t n, float param)
{
    vkb_status st = vkb_op_check_count(vkb_stream_device(s), op, n);
    if (st != VKB_OK)
        return st;
    struct op_arg a[2] = {{"x", x, n * 4}, {"out", out, n * 4}};
    struct eltwise_push push = {(uint32_t)n, param, 0};
    return dispatch_simple(s, op, kernel, a, 2, &push, sizeof push, n, 0);
}

vkb_status vkb_op_scale(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *x, uint64_t n,
                        float scale)
{
    return eltwise1(s, "scale", "scale_f32", out, x, n, scale);
}

vkb_status vkb_op_softcap(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *x, uint64_t n,
                          float cap)
{
    if (!(cap > 0.0f && cap < INFINITY))
        return vkb_dev_fail(vkb_stream_device(s), VKB_ERR_INVALID_ARGUMENT,
                            "softcap: cap %g (positive and finite)", (double)cap);
    return eltwise1(s, "softcap", "softcap_f32", out, x, n, cap);
}

vkb_status vkb_op_store_f16(vkb_stream *s, const vkb_buffer *out, uint64_t out_offset,
                            const vkb_buffer *x, uint64_t n)
{
    vkb_device *dev = vkb_stream_device(s);
    vkb_status st = vkb_op_check_count(dev, "store_f16", n);
    if (st != VKB_OK)
        return st;
    if (out_offset % 2 || out_offset + n > UINT32_MAX)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "store_f16: output offset %llu (must be even, offset + n below 2^32)",
                            (unsigned long long)out_offset);
    struct op_arg a[2] = {{"x", x, n * 4}, {"out", out, f16_bytes(out_offset + n)}};
    struct eltwise_push push = {(uint32_t)n, 0.0f, (uint32_t)out_offset};
    return dispatch_simple(s, "store_f16", "convert_f32_f16", a, 2, &push, sizeof push, (n + 1) / 2,
                           0);
}

vkb_status vkb_op_convert_f32_f16(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *x,
                                  uint64_t n)
{
    return vkb_op_store_f16(s, out, 0, x, n);
}

vkb_status vkb_op_convert_f16_f32(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *x,
                                  uint64_t n)
{
    vkb_status st = vkb_op_check_count(vkb_stream_device(s), "convert_f16_f32", n);
    if (st != VKB_OK)
        return st;
    struct op_arg a[2] = {{"x", x, f16_bytes(n)}, {"out", out, n * 4}};
    struct eltwise_push push = {(uint32_t)n, 0.0f, 0};
    return dispatch_simple(s, "convert_f16_f32", "convert_f16_f32", a, 2, &push, sizeof push, n, 0);
}

vkb_status vkb_op_copy(vkb_stream *s, const vkb_buffer *dst, const vkb_buffer *src, uint64_t bytes)
{
    vkb_device *dev = vkb_stream_device(s);
    vkb_status st;
    if (bytes % 16 != 0)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "copy: %llu bytes is not a multiple of 16", (unsigned long long)bytes);
    if ((st = vkb_op_check_count(dev, "copy", bytes / 16)) != VKB_OK)
        return st;
    uint32_t n = (uint32_t)(bytes / 16);
    struct op_arg a[2] = {{"src", src, bytes}, {"dst", dst, bytes}};
    return dispatch_simple(s, "copy", "copy_vec4", a, 2, &n, sizeof n, n, 0);
}

vkb_status vkb_op_add_bias(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *x,
                           const vkb_buffer *bias, uint32_t n, uint32_t rows)
{
    vkb_device *dev = vkb_stream_device(s);
    vkb_status st;
    if ((st = check_rows(dev, "add_bias", n, rows)) != VKB_OK)
        return st;
    uint64_t bytes = (uint64_t)n * rows * 4;
    struct op_arg args[3] = {{"x", x, bytes}, {"bias", bias, (uint64_t)n * 4}, {"out", out, bytes}};
    uint32_t push[2] = {n * rows, n};
    return dispatch_simple(s, "add_bias", "add_f32", args, 3, push, sizeof push, (uint64_t)n * rows,
                           0);
}

vkb_status vkb_op_add(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *a,
                      const vkb_buffer *b, uint64_t n)
{
    vkb_status st = vkb_op_check_count(vkb_stream_device(s), "add", n);
    if (st != VKB_OK)
        return st;
    uint32_t push[2] = {(uint32_t)n, (uint32_t)n};
    struct op_arg args[3] = {{"a", a, n * 4}, {"b", b, n * 4}, {"out", out, n * 4}};
    return dispatch_simple(s, "add", "add_f32", args, 3, push, sizeof push, n, 0);
}

#define ATTN_MAX_HEAD_DIM 256 /* MAX_HEAD_DIM in shaders/attention.comp */
#define ATTN_DIMS_PER_INV 4   /* DIMS_PER_INVOCATION there */
#define ATTN_ROWS         8   /* R_MAX there: query rows per workgroup */
/* Split-K decode: each split at least this many keys (the kernel's tiles are 64 keys: a
 * few tiles amortize loading q and writing the partial result), and enough splits that
 * the dispatch has about ATTN_SPLIT_GROUPS workgroups: a large GPU holds 16 or more
 * workgroups of 64 invocations on each of its 100+ compute units, and a memory-bound
 * kernel needs them all resident to keep enough reads in flight. */
#define ATTN_SPLIT_MIN_KEYS 256
#define ATTN_SPLIT_GROUPS   2048

struct attention_push {
    uint32_t head_dim, heads, kv_heads, tokens, n_kv, pos0;
    float scale;
    uint32_t k_row_bytes, v_row_bytes, split_len;
    uint32_t kv_nq, ring_rows, group; /* KIVI: positions quantized, window ring, group size */
    uint32_t window;                  /* sliding window, 0 none */
    float softcap;                    /* 0 none */
};

/* The shape's part of the push constants (the rest zero). */
static struct attention_push attention_push_of(const vkb_attention_shape *sh)
{
    return (struct attention_push){.head_dim = sh->head_dim,
                                   .heads = sh->heads,
                                   .kv_heads = sh->kv_heads,
                                   .tokens = sh->tokens,
                                   .n_kv = sh->n_kv,
                                   .pos0 = sh->pos0,
                                   .scale = sh->scale,
                                   .window = sh->window,
                                   .softcap = sh->softcap};
}

uint32_t vkb_attention_first_key(const vkb_attention_shape *sh, uint32_t p)
{
    return sh->window && p >= sh->window ? p + 1 - sh->window : 0;
}

/* The first key any query of the shape reads: its first query's first (0 where the
 * positions are read on the GPU: the kernel cuts from there). */
static uint32_t first_read_key(const vkb_attention_shape *sh)
{
    return sh->pos0 == VKB_AT_POS ? 0 : vkb_attention_first_key(sh, sh->pos0);
}

/* The shape checks of both attention paths; head_dim_limit: the largest head the kernel
 * takes (the fused one: ATTN_DIMS_PER_INV values per invocation of its workgroup). */
static vkb_status check_attention(vkb_device *dev, const char *op, const vkb_attention_shape *sh,
                                  uint32_t head_dim_limit)
{
    if (!sh || sh->head_dim == 0 || sh->head_dim % 2 || sh->head_dim > ATTN_MAX_HEAD_DIM ||
        sh->head_dim > head_dim_limit || sh->heads == 0 || sh->kv_heads == 0 ||
        sh->heads % sh->kv_heads || sh->tokens == 0 || sh->n_kv == 0 ||
        (uint64_t)(sh->pos0 == VKB_AT_POS ? 0 : sh->pos0) + sh->tokens > sh->n_kv ||
        (sh->pos0 == VKB_AT_POS && !sh->pos) || !(sh->softcap >= 0.0f && sh->softcap < INFINITY))
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "%s: head_dim %u (even, at most %u), %u heads over %u kv heads "
                            "(a multiple), %u tokens from position %u, %u keys (at least pos0 + "
                            "tokens; pos0 VKB_AT_POS with a positions buffer), soft cap %g "
                            "(0 or positive)",
                            op, sh ? sh->head_dim : 0, ATTN_MAX_HEAD_DIM, sh ? sh->heads : 0,
                            sh ? sh->kv_heads : 0, sh ? sh->tokens : 0, sh ? sh->pos0 : 0,
                            sh ? sh->n_kv : 0, sh ? (double)sh->softcap : 0.0);
    return VKB_OK;
}

const char *vkb_kv_type_name(vkb_kv_type t)
{
    static const char *names[VKB_KV_TYPE_COUNT] = {"f16", "q8_0", "q4_0", "kivi4", "kivi2"};
    return (unsigned)t < VKB_KV_TYPE_COUNT ? names[t] : "?";
}

cmp_type vkb_kv_block_type(vkb_kv_type t)
{
    return t == VKB_KV_Q8_0 ? CMP_TYPE_Q8_0 : t == VKB_KV_Q4_0 ? CMP_TYPE_Q4_0 : CMP_TYPE_F16;
}

/* A KIVI cache's f16 window ring: window + group rows, at most the positions it holds. */
static uint32_t kivi_ring_rows(const vkb_kv_layout *l)
{
    uint64_t ring = (uint64_t)l->window + l->group;
    return (uint32_t)(ring < l->n_ctx ? ring : l->n_ctx);
}

static bool kv_is_kivi(vkb_kv_type t)
{
    return t == VKB_KV_KIVI4 || t == VKB_KV_KIVI2;
}

bool vkb_kv_geometry_of(const vkb_kv_layout *l, vkb_kv_geometry *g, char *why, size_t why_size)
{
    char tmp[8];
    if (!why)
        why = tmp, why_size = sizeof tmp;
    *g = (vkb_kv_geometry){0};
    if (!l || (unsigned)l->type >= VKB_KV_TYPE_COUNT || l->values == 0 || l->values % 2 ||
        l->n_ctx == 0) {
        snprintf(why, why_size,
                 "a KV cache needs a known type, an even number of values per "
                 "position and at least one position");
        return false;
    }
    const char *name = vkb_kv_type_name(l->type);
    if (l->type == VKB_KV_F16) {
        g->stride = (uint64_t)l->values * 2;
        return true;
    }
    if (!kv_is_kivi(l->type)) {
        if (l->values % 64) {
            snprintf(why, why_size,
                     "a %s cache needs the values per position (kv heads x head size, here %u) "
                     "to be a multiple of 64",
                     name, l->values);
            return false;
        }
        g->stride = cmp_row_bytes(vkb_kv_block_type(l->type), l->values);
        return true;
    }
    if (l->group < 32 || l->group > 256 || l->group % 32 || l->window % l->group) {
        snprintf(why, why_size,
                 "a %s cache needs a group size of 32 to 256 in steps of 32 (got %u) and a "
                 "window that is a multiple of it (got %u)",
                 name, l->group, l->window);
        return false;
    }
    if (!l->keys && l->values % l->group) {
        snprintf(why, why_size,
                 "a %s value cache groups each position's values: %u values per position (kv "
                 "heads x head size) are not a multiple of the group size %u (use a group "
                 "that divides them)",
                 name, l->values, l->group);
        return false;
    }
    g->bits = l->type == VKB_KV_KIVI4 ? 4 : 2;
    g->ring_rows = kivi_ring_rows(l);
    g->store = (uint64_t)g->ring_rows * l->values * 2;
    g->stride = l->keys ? (uint64_t)l->values * (4 + l->group * g->bits / 8)
                        : (uint64_t)l->values / l->group * 4 + (uint64_t)l->values * g->bits / 8;
    return true;
}

uint32_t vkb_kv_quantized(const vkb_kv_layout *l, uint32_t n)
{
    if (!kv_is_kivi(l->type))
        return n;
    return n > l->window && l->group ? (n - l->window) / l->group * l->group : 0;
}

uint32_t vkb_kv_keep(const vkb_kv_layout *l, uint32_t n_written, uint32_t n)
{
    if (n > n_written)
        n = n_written;
    if (!kv_is_kivi(l->type))
        return n;
    /* the ring holds the last ring_rows positions written */
    return (uint64_t)vkb_kv_quantized(l, n) + kivi_ring_rows(l) >= n_written ? n : 0;
}

uint64_t vkb_kv_span(const vkb_kv_layout *l, const vkb_kv_geometry *g, uint32_t n)
{
    uint64_t units = vkb_kv_quantized(l, n);
    if (kv_is_kivi(l->type) && l->keys)
        units /= l->group;
    return (g->store + units * g->stride + 3) / 4 * 4;
}

uint64_t vkb_kv_bytes(const vkb_kv_layout *l, char *why, size_t why_size)
{
    vkb_kv_geometry g;
    if (!vkb_kv_geometry_of(l, &g, why, why_size))
        return 0;
    uint64_t span = vkb_kv_span(l, &g, l->n_ctx);
    return span ? span : 4;
}

/* Checks a cache argument: a valid layout of `values` per position whose buffer holds its
 * first n positions; fills the geometry. */
static vkb_status check_kv(vkb_device *dev, const char *op, const char *what,
                           const vkb_kv_layout *l, uint32_t values, uint32_t n, vkb_kv_geometry *g)
{
    char why[200];
    if (!vkb_kv_geometry_of(l, g, why, sizeof why))
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT, "%s: %s: %s", op, what, why);
    if (l->values != values || n > l->n_ctx)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "%s: %s: a layout of %u values per position and %u positions, used "
                            "for %u values and %u positions",
                            op, what, l->values, l->n_ctx, values, n);
    return VKB_OK;
}

/* The KIVI fold and window kernels' push constants (shaders/kv_kivi.comp). */
struct kivi_push {
    uint32_t values, group, bits, ring_rows;
    uint32_t p0, x_rows; /* x holds positions p0 .. p0 + x_rows */
    uint32_t f0, f1;     /* the positions this dispatch handles */
};

static vkb_status kivi_store(vkb_stream *s, const vkb_buffer *cache, const vkb_kv_layout *l,
                             const vkb_kv_geometry *g, uint32_t row0, const vkb_buffer *x,
                             uint32_t rows)
{
    uint32_t q0 = vkb_kv_quantized(l, row0), q1 = vkb_kv_quantized(l, row0 + rows);
    uint64_t bytes = vkb_kv_span(l, g, row0 + rows);
    struct op_arg a[2] = {{"x", x, (uint64_t)rows * l->values * 4}, {"cache", cache, bytes}};
    struct kivi_push push = {l->values, l->group, g->bits, g->ring_rows, row0, rows, q0, q1};
    vkb_status st;
    /* what leaves the window (from the ring and from x) into the store, then the window */
    if (q1 > q0) {
        uint64_t n = l->keys ? (uint64_t)(q1 - q0) / l->group * l->values
                             : (uint64_t)(q1 - q0) * (l->values / l->group);
        if ((st = dispatch_simple(s, "kv_store", l->keys ? "kv_fold_keys" : "kv_fold_values", a, 2,
                                  &push, sizeof push, n, 64)) != VKB_OK)
            return st;
    }
    push.f0 = q1 > row0 ? q1 : row0;
    push.f1 = row0 + rows;
    if (push.f1 <= push.f0)
        return VKB_OK;
    return dispatch_simple(s, "kv_store", "kv_window", a, 2, &push, sizeof push,
                           (uint64_t)(push.f1 - push.f0) * (l->values / 2), 0);
}

/* kv_store and kv_store_at: rows of x into rows row0 + r of the cache, or (pos not NULL)
 * into rows pos[r]. */
static vkb_status kv_store(vkb_stream *s, const char *op, const vkb_buffer *cache,
                           const vkb_kv_layout *l, uint32_t row0, const vkb_buffer *pos,
                           const vkb_buffer *x, uint32_t rows)
{
    vkb_device *dev = vkb_stream_device(s);
    vkb_kv_geometry g;
    vkb_status st;
    if ((st = check_kv(dev, op, "cache", l, l ? l->values : 0, 0, &g)) != VKB_OK)
        return st;
    if (rows == 0 || (uint64_t)(pos ? 0 : row0) + rows > l->n_ctx)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "%s: %u rows from position %u do not fit a cache of %u positions", op,
                            rows, pos ? 0 : row0, l->n_ctx);
    if (pos && (kv_is_kivi(l->type) || l->values % 64))
        return vkb_dev_fail(dev, VKB_ERR_UNSUPPORTED,
                            "%s: rows at positions read on the GPU are written into f16, q8_0 "
                            "and q4_0 caches of a multiple of 64 values per position (this one: "
                            "%s, %u values)",
                            op, vkb_kv_type_name(l->type), l->values);
    if (kv_is_kivi(l->type))
        return kivi_store(s, cache, l, &g, row0, x, rows);
    if (l->type == VKB_KV_F16 && !pos)
        return vkb_op_store_f16(s, cache, (uint64_t)row0 * l->values, x,
                                (uint64_t)rows * l->values);
    uint64_t cache_rows = pos ? l->n_ctx : (uint64_t)row0 + rows;
    struct op_arg a[3] = {{"x", x, (uint64_t)rows * l->values * 4},
                          {"pos", pos ? pos : x, pos ? (uint64_t)rows * 4 : 4},
                          {"cache", cache, cache_rows * g.stride}};
    struct {
        uint32_t row_len, rows, row0, row_bytes;
    } push = {l->values, rows, pos ? VKB_AT_POS : row0, (uint32_t)g.stride};
    const char *kernel = l->type == VKB_KV_Q8_0   ? "kv_store_q8_0"
                         : l->type == VKB_KV_Q4_0 ? "kv_store_q4_0"
                                                  : "kv_store_f16";
    return dispatch_simple(s, op, kernel, a, 3, &push, sizeof push,
                           (uint64_t)rows * (l->values / 64), 0);
}

vkb_status vkb_op_kv_store(vkb_stream *s, const vkb_buffer *cache, const vkb_kv_layout *l,
                           uint32_t row0, const vkb_buffer *x, uint32_t rows)
{
    return kv_store(s, "kv_store", cache, l, row0, NULL, x, rows);
}

vkb_status vkb_op_kv_store_at(vkb_stream *s, const vkb_buffer *cache, const vkb_kv_layout *l,
                              const vkb_buffer *pos, const vkb_buffer *x, uint32_t rows)
{
    if (!pos)
        return vkb_dev_fail(vkb_stream_device(s), VKB_ERR_INVALID_ARGUMENT,
                            "kv_store_at: no positions buffer");
    return kv_store(s, "kv_store_at", cache, l, 0, pos, x, rows);
}

/* The workgroups of one attention dispatch before split-K: one per ATTN_ROWS query rows
 * sharing a KV head (the heads of its group, then consecutive tokens: R_MAX in
 * shaders/attention.comp): e[0] KV heads x chunks of their groups, e[1] tiles of tokens. */
static void attention_groups(const vkb_attention_shape *sh, uint64_t e[2])
{
    uint32_t group = sh->heads / sh->kv_heads;
    uint32_t nh = group < ATTN_ROWS ? group : ATTN_ROWS, tq = ATTN_ROWS / nh;
    e[0] = (uint64_t)sh->kv_heads * ((group + nh - 1) / nh);
    e[1] = (sh->tokens + tq - 1) / tq;
}

/* out: floats, or (q8) the 8-bit blocks of vkb_op_quantize_q8 */
static vkb_status attention_kv(vkb_stream *s, const vkb_buffer *out, bool q8, const vkb_buffer *q,
                               const vkb_buffer *k_cache, const vkb_kv_layout *kl,
                               const vkb_buffer *v_cache, const vkb_kv_layout *vl,
                               const vkb_buffer *partials, uint32_t splits,
                               const vkb_attention_shape *sh)
{
    vkb_device *dev = vkb_stream_device(s);
    uint32_t wg = vkb_op_wg_size(dev, 64, 0);
    vkb_status st;
    if ((st = check_attention(dev, "attention", sh, ATTN_DIMS_PER_INV * wg)) != VKB_OK)
        return st;
    if (q8 && (sh->head_dim % 32 || wg % 8))
        return vkb_dev_fail(dev, VKB_ERR_UNSUPPORTED,
                            "attention_q8: head_dim %u (a multiple of 32: whole blocks per head) "
                            "and a workgroup of %u (a multiple of 8)",
                            sh->head_dim, wg);
    uint32_t kv_values = sh->kv_heads * sh->head_dim;
    vkb_kv_geometry kg, vg;
    if ((st = check_kv(dev, "attention", "key cache", kl, kv_values, sh->n_kv, &kg)) ||
        (st = check_kv(dev, "attention", "value cache", vl, kv_values, sh->n_kv, &vg)))
        return st;
    const vkb_kv_layout *kivi = kg.bits ? kl : vg.bits ? vl : NULL;
    if (kg.bits && vg.bits && (kl->group != vl->group || kl->window != vl->window))
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "attention: KIVI keys and values with different groups (%u, %u) or "
                            "windows (%u, %u)",
                            kl->group, vl->group, kl->window, vl->window);
    if ((kg.bits && !kl->keys) || (vg.bits && vl->keys))
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "attention: a KIVI key cache must be grouped per channel and a value "
                            "cache per position");
    if (sh->pos0 == VKB_AT_POS && kivi)
        return vkb_dev_fail(dev, VKB_ERR_UNSUPPORTED,
                            "attention: positions read on the GPU (VKB_AT_POS) over a KIVI "
                            "cache: its quantized share depends on the position when recorded");
    if (splits > 1 && (!partials || splits > 1024))
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "attention: %u splits (at most 1024, with a partials buffer)", splits);
    uint64_t q_bytes = (uint64_t)sh->tokens * sh->heads * sh->head_dim * 4;
    uint64_t out_bytes = q8 ? vkb_q8_bytes(sh->heads * sh->head_dim, sh->tokens) : q_bytes;
    uint64_t part_bytes = vkb_attention_partials_bytes(sh, splits);
    bool at_pos = sh->pos0 == VKB_AT_POS;
    struct op_arg a[5] = {{"q", q, q_bytes},
                          {"k_cache", k_cache, vkb_kv_span(kl, &kg, sh->n_kv)},
                          {"v_cache", v_cache, vkb_kv_span(vl, &vg, sh->n_kv)},
                          {splits > 1 ? "partials" : "out", splits > 1 ? partials : out,
                           splits > 1 ? part_bytes : out_bytes},
                          {"pos", at_pos ? sh->pos : q, at_pos ? 4 : q_bytes}};
    vkb_binding b[5];
    if ((st = bind_args(dev, "attention", a, 5, b)) != VKB_OK)
        return st;
    char kernel[32];
    snprintf(kernel, sizeof kernel, "attention_%s", vkb_op_row_variant(dev));
    /* the cache types are specialization constants 1 and 2 (0 = f16, the default), the
     * 8-bit output 3, the soft cap 4 */
    vkb_spec spec = {.count = 5,
                     .values = {wg, kl->type, vl->type, q8 && splits <= 1, sh->softcap > 0.0f}};
    /* prefill on cooperative matrices (attention_coopmat.comp): a workgroup per head and
     * 32 tokens, the cache types as specialization constants 1 and 2 there too */
    const char *suffix;
    bool cm = splits <= 1 && sh->tokens > 1 && !at_pos && !q8 && sh->head_dim % 16 == 0 &&
              sh->head_dim <= 128 && vkb_coopmat_spec(dev, 2, &spec, &suffix);
    if (cm) {
        snprintf(kernel, sizeof kernel, "attention_%s", suffix);
        spec.count = 3;
        spec.values[1] = kl->type;
        spec.values[2] = vl->type;
    }
    vkb_pipeline *p;
    if ((st = vkb_pipeline_get(dev, kernel, &spec, &p)) != VKB_OK)
        return st;
    /* the splits cut the keys from the first query's first (with a window; the kernel cuts
     * again from its tile's, which is no earlier) */
    uint32_t split_len = splits > 1 ? (sh->n_kv - first_read_key(sh) + splits - 1) / splits : 0;
    struct attention_push push = attention_push_of(sh);
    push.k_row_bytes = (uint32_t)kg.stride;
    push.v_row_bytes = (uint32_t)vg.stride;
    push.split_len = split_len;
    push.kv_nq = kivi ? vkb_kv_quantized(kivi, sh->n_kv) : sh->n_kv;
    push.ring_rows = kivi ? (kg.bits ? kg.ring_rows : vg.ring_rows) : 1;
    push.group = kivi ? kivi->group : 32;
    uint64_t e[3];
    attention_groups(sh, e);
    if (cm)
        e[0] = sh->heads, e[1] = (sh->tokens + 31) / 32;
    e[2] = splits > 1 ? splits : 1;
    if ((st = vkb_stream_dispatch(s, p, b, 5, &push, sizeof push, e, "attention")) != VKB_OK ||
        splits <= 1)
        return st;
    struct op_arg m[2] = {{"partials", partials, part_bytes}, {"out", out, out_bytes}};
    uint32_t mpush[3] = {sh->head_dim, sh->tokens * sh->heads, splits};
    return dispatch_simple(s, "attention_merge", q8 ? "attention_merge_q8" : "attention_merge", m,
                           2, mpush, sizeof mpush, (uint64_t)sh->tokens * sh->heads * sh->head_dim,
                           q8 ? 64 : 0);
}

vkb_status vkb_op_attention_kv(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *q,
                               const vkb_buffer *k_cache, const vkb_kv_layout *kl,
                               const vkb_buffer *v_cache, const vkb_kv_layout *vl,
                               const vkb_attention_shape *sh)
{
    return attention_kv(s, out, false, q, k_cache, kl, v_cache, vl, NULL, 1, sh);
}

vkb_status vkb_op_attention_split(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *q,
                                  const vkb_buffer *k_cache, const vkb_kv_layout *kl,
                                  const vkb_buffer *v_cache, const vkb_kv_layout *vl,
                                  const vkb_buffer *partials, uint32_t splits,
                                  const vkb_attention_shape *sh)
{
    return attention_kv(s, out, false, q, k_cache, kl, v_cache, vl, partials, splits, sh);
}

vkb_status vkb_op_attention_split_q8(vkb_stream *s, const vkb_buffer *xq, const vkb_buffer *q,
                                     const vkb_buffer *k_cache, const vkb_kv_layout *kl,
                                     const vkb_buffer *v_cache, const vkb_kv_layout *vl,
                                     const vkb_buffer *partials, uint32_t splits,
                                     const vkb_attention_shape *sh)
{
    return attention_kv(s, xq, true, q, k_cache, kl, v_cache, vl, partials, splits, sh);
}

uint64_t vkb_attention_partials_bytes(const vkb_attention_shape *sh, uint32_t splits)
{
    return (uint64_t)sh->tokens * sh->heads * (splits ? splits : 1) * (sh->head_dim + 2) * 4;
}

uint32_t vkb_attention_splits(const vkb_device *dev, const vkb_attention_shape *sh)
{
    /* CPU drivers run workgroups on a few threads: nothing to gain. Elsewhere, enough
     * splits for about ATTN_SPLIT_GROUPS workgroups, each over ATTN_SPLIT_MIN_KEYS keys or
     * more, and at most VKB_ATTENTION_PARTIAL_ROWS partial results. (Counting query rows
     * instead of workgroups gave Llama-3-8B's decode 64 workgroups of 64 invocations on an
     * H100: half its compute units idle and 1-5% of its bandwidth.) */
    /* the keys read: from the first query's first (a sliding window's) */
    uint32_t keys = sh ? sh->n_kv - first_read_key(sh) : 0;
    if (!sh || dev->info.type == VKB_DEVICE_CPU || keys < 2 * ATTN_SPLIT_MIN_KEYS ||
        !sh->kv_heads || !sh->heads || !sh->tokens)
        return 1;
    uint64_t e[2];
    attention_groups(sh, e);
    uint64_t groups = e[0] * e[1], rows = (uint64_t)sh->heads * sh->tokens;
    uint64_t want = (ATTN_SPLIT_GROUPS + groups - 1) / groups;
    uint64_t most = keys / ATTN_SPLIT_MIN_KEYS, room = VKB_ATTENTION_PARTIAL_ROWS / rows;
    want = want < most ? want : most;
    want = want < room ? want : room;
    return want > 1024 ? 1024 : want < 1 ? 1 : (uint32_t)want;
}

vkb_status vkb_op_attention(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *q,
                            const vkb_buffer *k_cache, const vkb_buffer *v_cache,
                            const vkb_attention_shape *sh)
{
    uint32_t values = sh ? sh->kv_heads * sh->head_dim : 0, n = sh ? sh->n_kv : 0;
    vkb_kv_layout l = {VKB_KV_F16, false, values, n, 0, 0};
    return vkb_op_attention_kv(s, out, q, k_cache, &l, v_cache, &l, sh);
}

uint64_t vkb_attention_scores_bytes(const vkb_attention_shape *sh)
{
    return (uint64_t)sh->tokens * sh->heads * sh->n_kv * 4;
}

vkb_status vkb_op_attention_unfused(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *q,
                                    const vkb_buffer *k_cache, const vkb_buffer *v_cache,
                                    const vkb_buffer *scores, const vkb_attention_shape *sh)
{
    vkb_device *dev = vkb_stream_device(s);
    vkb_status st;
    if ((st = check_attention(dev, "attention_unfused", sh, ATTN_MAX_HEAD_DIM)) != VKB_OK)
        return st;
    if (sh->pos0 == VKB_AT_POS)
        return vkb_dev_fail(dev, VKB_ERR_UNSUPPORTED,
                            "attention_unfused: positions read on the GPU (VKB_AT_POS): its "
                            "scores' rows are as long as the keys when recorded");
    uint64_t n_scores = (uint64_t)sh->tokens * sh->heads * sh->n_kv;
    uint64_t n_out = (uint64_t)sh->tokens * sh->heads * sh->head_dim;
    if (n_scores > UINT32_MAX)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "attention_unfused: %llu scores (tokens x heads x keys) is more "
                            "than 2^32",
                            (unsigned long long)n_scores);
    uint64_t kv_bytes = (uint64_t)sh->n_kv * sh->kv_heads * sh->head_dim * 2;
    struct attention_push push = attention_push_of(sh);
    struct op_arg a1[3] = {
        {"q", q, n_out * 4}, {"k_cache", k_cache, kv_bytes}, {"scores", scores, n_scores * 4}};
    if ((st = dispatch_simple(s, "attention_scores", "attention_scores", a1, 3, &push, sizeof push,
                              n_scores, 0)) != VKB_OK)
        return st;
    if ((st = vkb_op_softmax(s, scores, scores, NULL, 0, sh->n_kv, sh->tokens * sh->heads, 1.0f)) !=
        VKB_OK)
        return st;
    struct op_arg a2[3] = {
        {"scores", scores, n_scores * 4}, {"v_cache", v_cache, kv_bytes}, {"out", out, n_out * 4}};
    return dispatch_simple(s, "attention_values", "attention_values", a2, 3, &push, sizeof push,
                           n_out, 0);
}

#define FMA_ITERS 256 /* ITERS in shaders/fma_peak.comp */

vkb_status vkb_op_fma_peak(vkb_stream *s, const vkb_buffer *out, uint32_t n, double *flops)
{
    vkb_status st = vkb_op_check_count(vkb_stream_device(s), "fma_peak", n);
    if (st != VKB_OK)
        return st;
    struct op_arg a[1] = {{"out", out, (uint64_t)n * 4}};
    float push[2] = {0.99999988f, 1e-3f};
    if ((st = dispatch_simple(s, "fma_peak", "fma_peak", a, 1, push, sizeof push, n, 0)) != VKB_OK)
        return st;
    if (flops)
        *flops = (double)n * 8 * 4 * FMA_ITERS * 2;
    return VKB_OK;
}
