/* Device-memory copy bandwidth: the yardstick later benchmarks divide by. */
#include <stdlib.h>
#include <string.h>

#include "tool.h"
#include "vkb_ops.h"

#define WARMUP 2

/* Largest copy that fits one binding, a quarter of the budget, and `want`. */
static unsigned long long pick_bytes(vkb_device *dev, unsigned long long want)
{
    const vkb_device_info *info = vkb_device_get_info(dev);
    unsigned long long b = want ? want : 256ull << 20;
    if (b > info->max_storage_buffer_range)
        b = info->max_storage_buffer_range;
    if (b > info->max_memory_allocation_size)
        b = info->max_memory_allocation_size;
    vkb_memory_stats ms;
    vkb_device_memory_stats(dev, &ms);
    for (uint32_t h = 0; h < ms.heap_count; h++) {
        if (info->heaps[h].device_local && ms.heaps[h].budget / 4 < b)
            b = ms.heaps[h].budget / 4;
    }
    return b / 4096 * 4096;
}

struct copy_case {
    vkb_buffer *dst, *src;
    unsigned long long bytes;
};

static vkb_status rec_copy(vkb_stream *s, void *arg)
{
    struct copy_case *c = arg;
    return vkb_op_copy(s, c->dst, c->src, c->bytes);
}

int tool_measure_bandwidth(vkb_device *dev, unsigned long long bytes, int reps, tool_bandwidth *out)
{
    memset(out, 0, sizeof *out);
    bytes = pick_bytes(dev, bytes);
    if (bytes < 4096 || reps < 1) {
        tool_error("bandwidth: too little device memory for a copy test");
        return 1;
    }
    int rc = 1;
    vkb_arena *arena = NULL;
    vkb_buffer *src, *dst;
    vkb_stream *s = NULL;
    uint32_t *pattern = malloc(bytes), *back = malloc(bytes);
    if (!pattern || !back) {
        tool_error("bandwidth: out of host memory");
        goto out;
    }
    for (size_t i = 0; i < bytes / 4; i++)
        pattern[i] = (uint32_t)(i * 2654435761u) ^ 0x9e3779b9u;

    if (vkb_arena_create(dev, VKB_PURPOSE_SCRATCH, 2 * bytes, &arena) != VKB_OK ||
        vkb_buffer_alloc(arena, bytes, bytes, &src) != VKB_OK ||
        vkb_buffer_alloc(arena, bytes, bytes, &dst) != VKB_OK ||
        vkb_buffer_upload(dev, src, 0, pattern, bytes) != VKB_OK ||
        vkb_stream_create(dev, (uint32_t)(WARMUP + reps), &s) != VKB_OK)
        goto fail;

    /* validate before timing */
    if (vkb_stream_begin(s) != VKB_OK || vkb_op_copy(s, dst, src, bytes) != VKB_OK ||
        vkb_stream_submit(s) != VKB_OK || vkb_stream_wait(s) != VKB_OK ||
        vkb_buffer_download(dev, dst, 0, back, bytes) != VKB_OK)
        goto fail;
    if (memcmp(back, pattern, bytes) != 0) {
        tool_error("bandwidth: the copy kernel produced wrong data on %s; not timing it",
                   vkb_device_get_info(dev)->name);
        goto out;
    }

    out->gpu_timed = vkb_device_get_info(dev)->timestamp_valid_bits != 0;
    struct copy_case c = {dst, src, bytes};
    double best;
    if (tool_time_reps(s, out->gpu_timed, WARMUP, reps, rec_copy, &c, &out->ms_median, &best))
        goto fail;
    out->gbps = out->ms_median > 0 ? 2.0 * (double)bytes / (out->ms_median * 1e6) : 0;
    out->gbps_best = best > 0 ? 2.0 * (double)bytes / (best * 1e6) : 0;
    out->bytes_per_copy = bytes;
    out->reps = reps;
    rc = 0;
    goto out;
fail:
    tool_error("bandwidth: %s", vkb_device_errmsg(dev));
out:
    vkb_stream_destroy(s);
    vkb_arena_destroy(arena);
    free(pattern);
    free(back);
    return rc;
}
