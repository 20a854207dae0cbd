/* Ops: argument checks, variant choice per device, dispatches. */
#include "vkb_internal.h"
#include "vkb_ops.h"

#define SUM_ELEMS_PER_INVOCATION 4 /* ELEMS in shaders/sum_f32.comp */

/* Workgroup size for simple 1-D kernels: `want`, capped by the device's limits. */
static uint32_t wg_size(const vkb_device *dev, uint32_t want, uint32_t shared_per_invocation)
{
    const vkb_device_info *info = &dev->info;
    uint32_t lim = vkb_max_workgroup_x(info);
    uint32_t wg = want < lim ? want : lim;
    while (shared_per_invocation && wg > 1 && wg * shared_per_invocation > info->max_shared_memory)
        wg /= 2;
    return wg;
}

/* `bytes` from the start of `buf` must lie in its first part. */
static vkb_status need_single_part(vkb_device *dev, const char *op, const char *what,
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

static vkb_status check_count(vkb_device *dev, const char *op, uint64_t n)
{
    if (n == 0 || n > UINT32_MAX)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "%s: %llu elements (must be 1 to 2^32-1)", op, (unsigned long long)n);
    return VKB_OK;
}

static vkb_status pipeline(vkb_device *dev, const char *name, uint32_t wg, vkb_pipeline **out)
{
    vkb_spec spec = {.count = 1, .values = {wg}};
    return vkb_pipeline_get(dev, name, &spec, out);
}

vkb_status vkb_op_copy(vkb_stream *s, const vkb_buffer *dst, const vkb_buffer *src, uint64_t bytes)
{
    vkb_device *dev = vkb_stream_device(s);
    vkb_status st;
    if (bytes % 16 != 0)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "copy: %llu bytes is not a multiple of 16", (unsigned long long)bytes);
    if ((st = check_count(dev, "copy", bytes / 16)) != VKB_OK ||
        (st = need_single_part(dev, "copy", "src", src, bytes)) != VKB_OK ||
        (st = need_single_part(dev, "copy", "dst", dst, bytes)) != VKB_OK)
        return st;
    vkb_pipeline *p;
    if ((st = pipeline(dev, "copy_vec4", wg_size(dev, 256, 0), &p)) != VKB_OK)
        return st;
    uint32_t n = (uint32_t)(bytes / 16);
    vkb_binding b[2] = {{src, 0, bytes}, {dst, 0, bytes}};
    uint64_t elems[3] = {n, 1, 1};
    return vkb_stream_dispatch(s, p, b, 2, &n, sizeof n, elems, "copy");
}

vkb_status vkb_op_add(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *a,
                      const vkb_buffer *b, uint64_t n)
{
    vkb_device *dev = vkb_stream_device(s);
    vkb_status st;
    if ((st = check_count(dev, "add", n)) != VKB_OK ||
        (st = need_single_part(dev, "add", "a", a, n * 4)) != VKB_OK ||
        (st = need_single_part(dev, "add", "b", b, n * 4)) != VKB_OK ||
        (st = need_single_part(dev, "add", "out", out, n * 4)) != VKB_OK)
        return st;
    vkb_pipeline *p;
    if ((st = pipeline(dev, "add_f32", wg_size(dev, 256, 0), &p)) != VKB_OK)
        return st;
    uint32_t n32 = (uint32_t)n;
    vkb_binding bind[3] = {{a, 0, n * 4}, {b, 0, n * 4}, {out, 0, n * 4}};
    uint64_t elems[3] = {n, 1, 1};
    return vkb_stream_dispatch(s, p, bind, 3, &n32, sizeof n32, elems, "add");
}

const char *vkb_op_sum_variant(const vkb_device *dev)
{
    uint32_t need = VKB_SUBGROUP_BASIC | VKB_SUBGROUP_ARITHMETIC;
    return (dev->info.subgroup_ops & need) == need ? "sum_subgroup" : "sum_shared";
}

static uint64_t align256(uint64_t v)
{
    return (v + 255) / 256 * 256;
}

/* Bytes of partial sums the reduction of n values needs, and its workgroup size. */
static uint64_t sum_plan(const vkb_device *dev, uint64_t n, uint32_t *wg_out)
{
    uint32_t wg = wg_size(dev, 256, 4);
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
    if ((st = check_count(dev, "sum", n)) != VKB_OK ||
        (st = need_single_part(dev, "sum", "x", x, n * 4)) != VKB_OK ||
        (st = need_single_part(dev, "sum", "out", out, 4)) != VKB_OK ||
        (tmp_bytes && (st = need_single_part(dev, "sum", "tmp", tmp, tmp_bytes)) != VKB_OK))
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
