/* Command streams: dispatches and copies recorded with the barriers they need, one
 * submission, one wait, named GPU timestamps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkb_internal.h"

#define SETS_PER_POOL 256
#define LABEL_SIZE    48

enum stream_state { STREAM_IDLE, STREAM_RECORDING, STREAM_SUBMITTED };

/* A range touched since the last barrier. */
struct access {
    VkBuffer buffer;
    uint64_t begin, end;
    bool write;
};

struct vkb_stream {
    vkb_device *dev;
    enum stream_state state;
    VkCommandPool pool;
    VkCommandBuffer cmd;
    VkFence fence;
    bool executable; /* a recording ended and not begun again: it may be submitted again */

    VkDescriptorPool *desc_pools;
    uint32_t desc_pool_count, desc_pool_cur;

    VkQueryPool queries;
    uint32_t max_timings;
    uint32_t timing_count; /* recorded this time */
    uint32_t result_count; /* in results, from the last completed recording */
    char (*labels)[LABEL_SIZE];
    double *results_ms;
    uint64_t *ticks; /* (max_timings + 1) */
    double total_ms;

    struct access *accesses;
    uint32_t access_count, access_cap;

    struct vkb_stream *next;
};

static vkb_status stream_fail(vkb_stream *s, vkb_status st, const char *what)
{
    return vkb_dev_fail(s->dev, st, "%s", what);
}

vkb_status vkb_stream_create(vkb_device *dev, uint32_t max_timings, vkb_stream **out)
{
    *out = NULL;
    vkb_status st = vkb_dev_alive(dev);
    if (st != VKB_OK)
        return st;
    vkb_stream *s = calloc(1, sizeof *s);
    if (!s)
        return vkb_dev_fail(dev, VKB_ERR_OUT_OF_HOST_MEMORY, "out of host memory");
    s->dev = dev;
    s->next = dev->streams;
    dev->streams = s;
    *out = s;

    VkCommandPoolCreateInfo pi = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
        .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
        .queueFamilyIndex = dev->queue_family,
    };
    st = vkb_dev_check(dev, dev->vk.vkCreateCommandPool(dev->device, &pi, NULL, &s->pool),
                       "vkCreateCommandPool");
    if (st != VKB_OK)
        return st;
    VkCommandBufferAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = s->pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    st = vkb_dev_check(dev, dev->vk.vkAllocateCommandBuffers(dev->device, &ai, &s->cmd),
                       "vkAllocateCommandBuffers");
    if (st != VKB_OK)
        return st;
    VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    st = vkb_dev_check(dev, dev->vk.vkCreateFence(dev->device, &fi, NULL, &s->fence),
                       "vkCreateFence");
    if (st != VKB_OK)
        return st;

    if (max_timings && dev->info.timestamp_valid_bits) {
        s->max_timings = max_timings;
        s->labels = calloc(max_timings, sizeof *s->labels);
        s->results_ms = calloc(max_timings, sizeof *s->results_ms);
        s->ticks = calloc(max_timings + 1, sizeof *s->ticks);
        if (!s->labels || !s->results_ms || !s->ticks)
            return vkb_dev_fail(dev, VKB_ERR_OUT_OF_HOST_MEMORY, "out of host memory");
        VkQueryPoolCreateInfo qi = {
            .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
            .queryType = VK_QUERY_TYPE_TIMESTAMP,
            .queryCount = max_timings + 1,
        };
        st = vkb_dev_check(dev, dev->vk.vkCreateQueryPool(dev->device, &qi, NULL, &s->queries),
                           "vkCreateQueryPool");
    }
    return st;
}

static void stream_release(vkb_stream *s)
{
    vkb_device *dev = s->dev;
    if (s->state == STREAM_SUBMITTED)
        dev->vk.vkWaitForFences(dev->device, 1, &s->fence, VK_TRUE, UINT64_MAX);
    for (uint32_t i = 0; i < s->desc_pool_count; i++)
        dev->vk.vkDestroyDescriptorPool(dev->device, s->desc_pools[i], NULL);
    if (s->queries)
        dev->vk.vkDestroyQueryPool(dev->device, s->queries, NULL);
    if (s->fence)
        dev->vk.vkDestroyFence(dev->device, s->fence, NULL);
    if (s->pool)
        dev->vk.vkDestroyCommandPool(dev->device, s->pool, NULL);
    free(s->desc_pools);
    free(s->labels);
    free(s->results_ms);
    free(s->ticks);
    free(s->accesses);
    free(s);
}

void vkb_stream_destroy(vkb_stream *s)
{
    if (!s)
        return;
    for (vkb_stream **p = &s->dev->streams; *p; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            break;
        }
    }
    stream_release(s);
}

void vkb_streams_free(vkb_device *dev)
{
    while (dev->streams) {
        vkb_stream *s = dev->streams;
        dev->streams = s->next;
        stream_release(s);
    }
}

#define WORK_STAGES (VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT)

static VkAccessFlags writes_of(VkPipelineStageFlags stages)
{
    if (stages & VK_PIPELINE_STAGE_ALL_COMMANDS_BIT)
        return VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
    return ((stages & VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT) ? VK_ACCESS_SHADER_WRITE_BIT : 0) |
           ((stages & VK_PIPELINE_STAGE_TRANSFER_BIT) ? VK_ACCESS_TRANSFER_WRITE_BIT : 0);
}

static VkAccessFlags accesses_of(VkPipelineStageFlags stages)
{
    VkAccessFlags a = writes_of(stages);
    if (stages & (VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_ALL_COMMANDS_BIT))
        a |= VK_ACCESS_SHADER_READ_BIT;
    if (stages & (VK_PIPELINE_STAGE_TRANSFER_BIT | VK_PIPELINE_STAGE_ALL_COMMANDS_BIT))
        a |= VK_ACCESS_TRANSFER_READ_BIT;
    if (stages & VK_PIPELINE_STAGE_HOST_BIT)
        a |= VK_ACCESS_HOST_READ_BIT;
    return a;
}

void vkb_cmd_barrier(vkb_device *dev, VkCommandBuffer cmd, VkPipelineStageFlags src,
                     VkPipelineStageFlags dst)
{
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = writes_of(src),
        .dstAccessMask = accesses_of(dst),
    };
    dev->vk.vkCmdPipelineBarrier(cmd, src, dst, 0, 1, &mb, 0, NULL, 0, NULL);
}

static void full_barrier(vkb_stream *s)
{
    vkb_cmd_barrier(s->dev, s->cmd, WORK_STAGES, WORK_STAGES);
    s->access_count = 0;
}

vkb_status vkb_stream_begin(vkb_stream *s)
{
    vkb_device *dev = s->dev;
    vkb_status st = vkb_dev_alive(dev);
    if (st != VKB_OK)
        return st;
    if (s->state == STREAM_SUBMITTED)
        return stream_fail(
            s, VKB_ERR_INVALID_ARGUMENT,
            "the stream's last recording is still running: call vkb_stream_wait first");
    st = vkb_dev_check(dev, dev->vk.vkResetCommandBuffer(s->cmd, 0), "vkResetCommandBuffer");
    for (uint32_t i = 0; i < s->desc_pool_count && st == VKB_OK; i++)
        st = vkb_dev_check(dev, dev->vk.vkResetDescriptorPool(dev->device, s->desc_pools[i], 0),
                           "vkResetDescriptorPool");
    if (st != VKB_OK)
        return st;
    s->desc_pool_cur = 0;
    s->access_count = 0;
    s->timing_count = 0;
    s->executable = false;
    /* not one-time: a recording may be submitted again (vkb_stream_submit) */
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    st = vkb_dev_check(dev, dev->vk.vkBeginCommandBuffer(s->cmd, &bi), "vkBeginCommandBuffer");
    if (st != VKB_OK)
        return st;
    /* Work from earlier submissions (streams, uploads) becomes visible to this one. */
    vkb_cmd_barrier(dev, s->cmd, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, WORK_STAGES);
    if (s->queries) {
        dev->vk.vkCmdResetQueryPool(s->cmd, s->queries, 0, s->max_timings + 1);
        dev->vk.vkCmdWriteTimestamp(s->cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, s->queries, 0);
    }
    s->state = STREAM_RECORDING;
    return VKB_OK;
}

static vkb_status check_recording(vkb_stream *s)
{
    vkb_status st = vkb_dev_alive(s->dev);
    if (st == VKB_OK && s->state != STREAM_RECORDING)
        st = stream_fail(s, VKB_ERR_INVALID_ARGUMENT,
                         "the stream is not recording: call vkb_stream_begin");
    return st;
}

static bool conflicts(const vkb_stream *s, VkBuffer buffer, uint64_t begin, uint64_t end,
                      bool write)
{
    for (uint32_t i = 0; i < s->access_count; i++) {
        const struct access *a = &s->accesses[i];
        if (a->buffer == buffer && begin < a->end && a->begin < end && (write || a->write))
            return true;
    }
    return false;
}

static vkb_status note_access(vkb_stream *s, VkBuffer buffer, uint64_t begin, uint64_t end,
                              bool write)
{
    if (s->access_count == s->access_cap) {
        uint32_t cap = s->access_cap ? s->access_cap * 2 : 32;
        struct access *a = realloc(s->accesses, cap * sizeof *a);
        if (!a)
            return stream_fail(s, VKB_ERR_OUT_OF_HOST_MEMORY, "out of host memory");
        s->accesses = a;
        s->access_cap = cap;
    }
    s->accesses[s->access_count++] = (struct access){buffer, begin, end, write};
    return VKB_OK;
}

static void write_timing(vkb_stream *s, const char *label)
{
    if (!s->queries || s->timing_count >= s->max_timings)
        return;
    snprintf(s->labels[s->timing_count], LABEL_SIZE, "%s", label);
    s->timing_count++;
    s->dev->vk.vkCmdWriteTimestamp(s->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, s->queries,
                                   s->timing_count);
}

static vkb_status alloc_set(vkb_stream *s, VkDescriptorSetLayout layout, VkDescriptorSet *set)
{
    vkb_device *dev = s->dev;
    for (;;) {
        if (s->desc_pool_cur < s->desc_pool_count) {
            VkDescriptorSetAllocateInfo ai = {
                .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                .descriptorPool = s->desc_pools[s->desc_pool_cur],
                .descriptorSetCount = 1,
                .pSetLayouts = &layout,
            };
            VkResult r = dev->vk.vkAllocateDescriptorSets(dev->device, &ai, set);
            if (r == VK_SUCCESS)
                return VKB_OK;
            if (r != VK_ERROR_OUT_OF_POOL_MEMORY && r != VK_ERROR_FRAGMENTED_POOL)
                return vkb_dev_check(dev, r, "vkAllocateDescriptorSets");
            s->desc_pool_cur++;
            continue;
        }
        VkDescriptorPool *pools = realloc(s->desc_pools, (s->desc_pool_count + 1) * sizeof *pools);
        if (!pools)
            return stream_fail(s, VKB_ERR_OUT_OF_HOST_MEMORY, "out of host memory");
        s->desc_pools = pools;
        VkDescriptorPoolSize size = {
            .type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .descriptorCount = SETS_PER_POOL * VKB_MAX_BINDINGS,
        };
        VkDescriptorPoolCreateInfo pi = {
            .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
            .maxSets = SETS_PER_POOL,
            .poolSizeCount = 1,
            .pPoolSizes = &size,
        };
        vkb_status st = vkb_dev_check(
            dev, dev->vk.vkCreateDescriptorPool(dev->device, &pi, NULL, &pools[s->desc_pool_count]),
            "vkCreateDescriptorPool");
        if (st != VKB_OK)
            return st;
        s->desc_pool_count++;
    }
}

/* Resolves a binding to one part of its buffer, or explains why it cannot. */
static vkb_status resolve_binding(vkb_stream *s, const vkb_pipeline_contract *c, uint32_t i,
                                  const vkb_binding *b, VkDescriptorBufferInfo *out)
{
    const vkb_device_info *info = &s->dev->info;
    if (!b->buffer)
        return vkb_dev_fail(s->dev, VKB_ERR_CONTRACT, "%s: binding %u has no buffer", c->name, i);
    const vkb_buffer *buf = b->buffer;
    if (b->offset >= buf->size)
        return vkb_dev_fail(s->dev, VKB_ERR_CONTRACT,
                            "%s: binding %u starts at %llu, past the buffer's %llu bytes", c->name,
                            i, (unsigned long long)b->offset, (unsigned long long)buf->size);
    const struct vkb_part *part;
    vkb_buffer_locate(buf, b->offset, 1, &part);
    uint64_t size = b->size ? b->size : part->offset + part->size - b->offset;
    if (b->size && b->size > buf->size - b->offset)
        return vkb_dev_fail(s->dev, VKB_ERR_CONTRACT,
                            "%s: binding %u range [%llu, +%llu) runs past the buffer's %llu bytes",
                            c->name, i, (unsigned long long)b->offset, (unsigned long long)b->size,
                            (unsigned long long)buf->size);
    if (!vkb_buffer_locate(buf, b->offset, size, &part))
        return vkb_dev_fail(s->dev, VKB_ERR_CONTRACT,
                            "%s: binding %u range [%llu, +%llu) crosses a part boundary of a split "
                            "buffer; bind each part separately",
                            c->name, i, (unsigned long long)b->offset, (unsigned long long)size);
    uint64_t in_block = part->block_offset + (b->offset - part->offset);
    if (in_block % info->min_storage_buffer_offset_alignment != 0)
        return vkb_dev_fail(s->dev, VKB_ERR_CONTRACT,
                            "%s: binding %u offset %llu is not a multiple of the device's storage "
                            "offset alignment (%llu)",
                            c->name, i, (unsigned long long)b->offset,
                            (unsigned long long)info->min_storage_buffer_offset_alignment);
    if (size > info->max_storage_buffer_range)
        return vkb_dev_fail(s->dev, VKB_ERR_CONTRACT,
                            "%s: binding %u covers %llu bytes, beyond maxStorageBufferRange (%llu)",
                            c->name, i, (unsigned long long)size,
                            (unsigned long long)info->max_storage_buffer_range);
    out->buffer = vkb_part_vk_buffer(buf, part);
    out->offset = in_block;
    out->range = size;
    return VKB_OK;
}

/* Workgroup counts for `elems`, folding x into y for flattening kernels. */
static vkb_status grid(vkb_stream *s, const vkb_pipeline_contract *c, const uint64_t elems[3],
                       uint32_t groups[3])
{
    const vkb_device_info *info = &s->dev->info;
    uint64_t g[3];
    for (int d = 0; d < 3; d++) {
        uint64_t e = elems[d] ? elems[d] : 1;
        g[d] = (e + c->elems_per_workgroup[d] - 1) / c->elems_per_workgroup[d];
    }
    if (c->flatten_x && g[0] > info->max_workgroup_count[0] && g[1] == 1) {
        uint64_t y = (g[0] + info->max_workgroup_count[0] - 1) / info->max_workgroup_count[0];
        g[0] = (g[0] + y - 1) / y;
        g[1] = y;
    }
    for (int d = 0; d < 3; d++) {
        if (g[d] > info->max_workgroup_count[d])
            return vkb_dev_fail(s->dev, VKB_ERR_CONTRACT,
                                "%s: %llu workgroups in %c exceed the device's limit of %u",
                                c->name, (unsigned long long)g[d], "xyz"[d],
                                info -> max_workgroup_count[d]);
        groups[d] = (uint32_t)g[d];
    }
    return VKB_OK;
}

vkb_status vkb_stream_dispatch(vkb_stream *s, vkb_pipeline *pipe, const vkb_binding *bindings,
                               uint32_t binding_count, const void *push, uint32_t push_size,
                               const uint64_t elems[3], const char *label)
{
    vkb_device *dev = s->dev;
    vkb_status st = check_recording(s);
    if (st != VKB_OK)
        return st;
    if (!pipe)
        return vkb_dev_fail(dev, VKB_ERR_CONTRACT, "dispatch without a pipeline");
    const vkb_pipeline_contract *c = &pipe->contract;
    if (binding_count != c->binding_count)
        return vkb_dev_fail(dev, VKB_ERR_CONTRACT, "%s takes %u bindings, got %u", c->name,
                            c->binding_count, binding_count);
    if (push_size != c->push_size || (push_size && !push))
        return vkb_dev_fail(dev, VKB_ERR_CONTRACT, "%s takes %u bytes of push constants, got %u",
                            c->name, c->push_size, push ? push_size : 0);
    VkDescriptorBufferInfo infos[VKB_MAX_BINDINGS];
    for (uint32_t i = 0; i < binding_count; i++)
        if ((st = resolve_binding(s, c, i, &bindings[i], &infos[i])) != VKB_OK)
            return st;
    uint32_t groups[3];
    if ((st = grid(s, c, elems, groups)) != VKB_OK)
        return st;

    VkDescriptorSet set;
    if ((st = alloc_set(s, pipe->set_layout, &set)) != VKB_OK)
        return st;
    VkWriteDescriptorSet writes[VKB_MAX_BINDINGS];
    for (uint32_t i = 0; i < binding_count; i++)
        writes[i] = (VkWriteDescriptorSet){
            .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
            .dstSet = set,
            .dstBinding = i,
            .descriptorCount = 1,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .pBufferInfo = &infos[i],
        };
    dev->vk.vkUpdateDescriptorSets(dev->device, binding_count, writes, 0, NULL);

    bool hazard = false;
    for (uint32_t i = 0; i < binding_count && !hazard; i++)
        hazard = conflicts(s, infos[i].buffer, infos[i].offset, infos[i].offset + infos[i].range,
                           c->binding_writes[i]);
    if (hazard)
        full_barrier(s);
    for (uint32_t i = 0; i < binding_count; i++)
        if ((st = note_access(s, infos[i].buffer, infos[i].offset, infos[i].offset + infos[i].range,
                              c->binding_writes[i])) != VKB_OK)
            return st;

    dev->vk.vkCmdBindPipeline(s->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipe->pipeline);
    dev->vk.vkCmdBindDescriptorSets(s->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipe->layout, 0, 1,
                                    &set, 0, NULL);
    if (push_size)
        dev->vk.vkCmdPushConstants(s->cmd, pipe->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, push_size,
                                   push);
    dev->vk.vkCmdDispatch(s->cmd, groups[0], groups[1], groups[2]);
    write_timing(s, label ? label : c->name);
    return VKB_OK;
}

vkb_status vkb_stream_copy(vkb_stream *s, const vkb_buffer *src, uint64_t src_offset,
                           const vkb_buffer *dst, uint64_t dst_offset, uint64_t size)
{
    vkb_device *dev = s->dev;
    vkb_status st = check_recording(s);
    if (st != VKB_OK)
        return st;
    const struct vkb_part *sp, *dp;
    if (!src || !dst || size == 0 || src_offset >= src->size || dst_offset >= dst->size ||
        !vkb_buffer_locate(src, src_offset, size, &sp) ||
        !vkb_buffer_locate(dst, dst_offset, size, &dp))
        return vkb_dev_fail(dev, VKB_ERR_CONTRACT,
                            "copy of %llu bytes: source or destination range is empty, outside its "
                            "buffer, or crosses a part boundary",
                            (unsigned long long)size);
    VkBufferCopy region = {
        .srcOffset = sp->block_offset + (src_offset - sp->offset),
        .dstOffset = dp->block_offset + (dst_offset - dp->offset),
        .size = size,
    };
    VkBuffer sb = vkb_part_vk_buffer(src, sp), db = vkb_part_vk_buffer(dst, dp);
    if (sb == db && region.srcOffset < region.dstOffset + size &&
        region.dstOffset < region.srcOffset + size)
        return vkb_dev_fail(dev, VKB_ERR_CONTRACT, "copy source and destination overlap");
    if (conflicts(s, sb, region.srcOffset, region.srcOffset + size, false) ||
        conflicts(s, db, region.dstOffset, region.dstOffset + size, true))
        full_barrier(s);
    if ((st = note_access(s, sb, region.srcOffset, region.srcOffset + size, false)) != VKB_OK ||
        (st = note_access(s, db, region.dstOffset, region.dstOffset + size, true)) != VKB_OK)
        return st;
    dev->vk.vkCmdCopyBuffer(s->cmd, sb, db, 1, &region);
    write_timing(s, "copy");
    return VKB_OK;
}

vkb_status vkb_stream_submit(vkb_stream *s)
{
    vkb_device *dev = s->dev;
    vkb_status st = vkb_dev_alive(dev);
    if (st != VKB_OK)
        return st;
    if (s->state == STREAM_IDLE && !s->executable)
        return stream_fail(s, VKB_ERR_INVALID_ARGUMENT,
                           "the stream holds no recording: call vkb_stream_begin");
    if (s->state == STREAM_SUBMITTED)
        return stream_fail(s, VKB_ERR_INVALID_ARGUMENT,
                           "the stream's recording is still running: call vkb_stream_wait first");
    if (s->state == STREAM_RECORDING) {
        /* results become visible to host reads and to later submissions */
        vkb_cmd_barrier(dev, s->cmd, WORK_STAGES,
                        VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_ALL_COMMANDS_BIT);
        st = vkb_dev_check(dev, dev->vk.vkEndCommandBuffer(s->cmd), "vkEndCommandBuffer");
        if (st != VKB_OK) {
            s->state = STREAM_IDLE;
            return st;
        }
        s->executable = true;
    }
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &s->cmd,
    };
    st = vkb_dev_check(dev, dev->vk.vkQueueSubmit(dev->queue, 1, &si, s->fence), "vkQueueSubmit");
    s->state = st == VKB_OK ? STREAM_SUBMITTED : STREAM_IDLE;
    return st;
}

vkb_status vkb_stream_wait(vkb_stream *s)
{
    vkb_device *dev = s->dev;
    if (s->state != STREAM_SUBMITTED)
        return stream_fail(s, VKB_ERR_INVALID_ARGUMENT, "the stream was not submitted");
    s->state = STREAM_IDLE;
    VkResult r = dev->vk.vkWaitForFences(dev->device, 1, &s->fence, VK_TRUE, UINT64_MAX);
    if (r == VK_SUCCESS)
        r = dev->vk.vkResetFences(dev->device, 1, &s->fence);
    vkb_status st = vkb_dev_check(dev, r, "vkWaitForFences");
    if (st != VKB_OK || !s->queries || s->timing_count == 0) {
        s->result_count = 0;
        s->total_ms = 0;
        return st;
    }
    uint64_t *ticks = s->ticks;
    r = dev->vk.vkGetQueryPoolResults(dev->device, s->queries, 0, s->timing_count + 1,
                                      (s->timing_count + 1) * sizeof *ticks, ticks, sizeof *ticks,
                                      VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
    if ((st = vkb_dev_check(dev, r, "vkGetQueryPoolResults")) != VKB_OK)
        return st;
    uint32_t bits = dev->info.timestamp_valid_bits;
    uint64_t mask = bits >= 64 ? ~0ull : (1ull << bits) - 1;
    double ns_per_tick = dev->info.timestamp_period;
    for (uint32_t i = 0; i < s->timing_count; i++)
        s->results_ms[i] = (double)((ticks[i + 1] - ticks[i]) & mask) * ns_per_tick * 1e-6;
    s->total_ms = (double)((ticks[s->timing_count] - ticks[0]) & mask) * ns_per_tick * 1e-6;
    s->result_count = s->timing_count;
    return VKB_OK;
}

vkb_device *vkb_stream_device(const vkb_stream *s)
{
    return s->dev;
}

uint32_t vkb_stream_recorded_timings(const vkb_stream *s)
{
    return s->timing_count;
}

uint32_t vkb_stream_timing_count(const vkb_stream *s)
{
    return s->result_count;
}

vkb_timing vkb_stream_timing(const vkb_stream *s, uint32_t i)
{
    if (i >= s->result_count)
        return (vkb_timing){"", 0.0};
    return (vkb_timing){s->labels[i], s->results_ms[i]};
}

double vkb_stream_total_ms(const vkb_stream *s)
{
    return s->total_ms;
}
