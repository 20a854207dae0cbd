/* Host ↔ device copies through a staging ring of two slots: while the GPU copies one
 * slot, the host fills (upload) or drains (download) the other. */
#include <string.h>

#include "vkb_internal.h"

#define SLOTS 2

vkb_status vkb_transfer_init(vkb_device *dev)
{
    vkb_status st;
    uint64_t bytes = dev->staging_bytes;
    uint64_t lim = vkb_part_limit(&dev->info);
    if (bytes > lim)
        bytes = lim;
    bytes = bytes / (SLOTS * 256) * (SLOTS * 256);
    if (bytes == 0)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "staging ring of %llu bytes is too small",
                            (unsigned long long)dev->staging_bytes);
    dev->staging_bytes = bytes;
    st = vkb_arena_create(dev, VKB_PURPOSE_STAGING, bytes, &dev->staging_arena);
    if (st == VKB_OK)
        st = vkb_buffer_alloc(dev->staging_arena, bytes, bytes, &dev->staging);
    if (st != VKB_OK)
        return st;

    VkCommandPoolCreateInfo pi = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
        .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
        .queueFamilyIndex = dev->queue_family,
    };
    st =
        vkb_dev_check(dev, dev->vk.vkCreateCommandPool(dev->device, &pi, NULL, &dev->transfer_pool),
                      "vkCreateCommandPool");
    if (st != VKB_OK)
        return st;
    VkCommandBufferAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = dev->transfer_pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = SLOTS,
    };
    st = vkb_dev_check(dev, dev->vk.vkAllocateCommandBuffers(dev->device, &ai, dev->transfer_cmd),
                       "vkAllocateCommandBuffers");
    for (int i = 0; i < SLOTS && st == VKB_OK; i++) {
        VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
        st = vkb_dev_check(dev,
                           dev->vk.vkCreateFence(dev->device, &fi, NULL, &dev->transfer_fence[i]),
                           "vkCreateFence");
    }
    return st;
}

void vkb_transfer_free(vkb_device *dev)
{
    for (int i = 0; i < SLOTS; i++)
        if (dev->transfer_fence[i])
            dev->vk.vkDestroyFence(dev->device, dev->transfer_fence[i], NULL);
    if (dev->transfer_pool)
        dev->vk.vkDestroyCommandPool(dev->device, dev->transfer_pool, NULL);
    vkb_arena_destroy(dev->staging_arena);
    dev->staging_arena = NULL;
    dev->staging = NULL;
}

static uint8_t *slot_ptr(vkb_device *dev, int slot)
{
    const struct vkb_part *p = &dev->staging->parts[0];
    struct vkb_block *b = &dev->staging_arena->blocks[p->block];
    return (uint8_t *)b->mapped + p->block_offset + (uint64_t)slot * (dev->staging_bytes / SLOTS);
}

static vkb_status slot_wait(vkb_device *dev, int slot)
{
    if (!dev->transfer_pending[slot])
        return VKB_OK;
    VkResult r =
        dev->vk.vkWaitForFences(dev->device, 1, &dev->transfer_fence[slot], VK_TRUE, UINT64_MAX);
    if (r == VK_SUCCESS)
        r = dev->vk.vkResetFences(dev->device, 1, &dev->transfer_fence[slot]);
    dev->transfer_pending[slot] = false;
    return vkb_dev_check(dev, r, "vkWaitForFences (transfer)");
}

/* Records and submits copies between the staging slot and [offset, offset + size) of
 * `buf`, splitting at part boundaries. */
static vkb_status slot_submit(vkb_device *dev, int slot, const vkb_buffer *buf, uint64_t offset,
                              uint64_t size, bool to_device)
{
    VkCommandBuffer cmd = dev->transfer_cmd[slot];
    VkCommandBufferBeginInfo bi = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
        .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
    };
    vkb_status st =
        vkb_dev_check(dev, dev->vk.vkBeginCommandBuffer(cmd, &bi), "vkBeginCommandBuffer");
    if (st != VKB_OK)
        return st;
    const struct vkb_part *sp = &dev->staging->parts[0];
    VkBuffer staging = vkb_part_vk_buffer(dev->staging, sp);
    uint64_t staging_base = sp->block_offset + (uint64_t)slot * (dev->staging_bytes / SLOTS);

    /* make earlier GPU work on the buffer visible to the copy, and the copy to later work */
    vkb_cmd_barrier(dev, cmd, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT);
    uint64_t done = 0;
    while (done < size) {
        const struct vkb_part *p;
        uint64_t at = offset + done;
        vkb_buffer_locate(buf, at, 1, &p);
        uint64_t in_part = p->offset + p->size - at;
        uint64_t n = size - done < in_part ? size - done : in_part;
        VkBufferCopy region = {
            .srcOffset = to_device ? staging_base + done : p->block_offset + (at - p->offset),
            .dstOffset = to_device ? p->block_offset + (at - p->offset) : staging_base + done,
            .size = n,
        };
        VkBuffer dev_buf = vkb_part_vk_buffer(buf, p);
        dev->vk.vkCmdCopyBuffer(cmd, to_device ? staging : dev_buf, to_device ? dev_buf : staging,
                                1, &region);
        done += n;
    }
    vkb_cmd_barrier(dev, cmd, VK_PIPELINE_STAGE_TRANSFER_BIT,
                    VK_PIPELINE_STAGE_ALL_COMMANDS_BIT | VK_PIPELINE_STAGE_HOST_BIT);
    st = vkb_dev_check(dev, dev->vk.vkEndCommandBuffer(cmd), "vkEndCommandBuffer");
    if (st != VKB_OK)
        return st;
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &cmd,
    };
    st = vkb_dev_check(dev, dev->vk.vkQueueSubmit(dev->queue, 1, &si, dev->transfer_fence[slot]),
                       "vkQueueSubmit (transfer)");
    if (st == VKB_OK)
        dev->transfer_pending[slot] = true;
    return st;
}

static vkb_status check_range(vkb_device *dev, const vkb_buffer *buf, uint64_t offset,
                              uint64_t size, const char *what)
{
    vkb_status st = vkb_dev_alive(dev);
    if (st != VKB_OK)
        return st;
    if (!buf || offset > buf->size || size > buf->size - offset)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "%s of %llu bytes at offset %llu is outside the buffer (%llu bytes)",
                            what, (unsigned long long)size, (unsigned long long)offset,
                            (unsigned long long)(buf ? buf->size : 0));
    return VKB_OK;
}

vkb_status vkb_buffer_upload(vkb_device *dev, vkb_buffer *dst, uint64_t dst_offset, const void *src,
                             uint64_t size)
{
    vkb_status st = check_range(dev, dst, dst_offset, size, "upload");
    uint64_t chunk = dev->staging_bytes / SLOTS;
    int slot = 0;
    for (uint64_t done = 0; st == VKB_OK && done < size; done += chunk, slot ^= 1) {
        uint64_t n = size - done < chunk ? size - done : chunk;
        st = slot_wait(dev, slot);
        if (st == VKB_OK) {
            memcpy(slot_ptr(dev, slot), (const uint8_t *)src + done, n);
            st = slot_submit(dev, slot, dst, dst_offset + done, n, true);
        }
    }
    for (int s = 0; s < SLOTS; s++) {
        vkb_status w = slot_wait(dev, s);
        if (st == VKB_OK)
            st = w;
    }
    return st;
}

vkb_status vkb_buffer_download(vkb_device *dev, const vkb_buffer *src, uint64_t src_offset,
                               void *dst, uint64_t size)
{
    vkb_status st = check_range(dev, src, src_offset, size, "download");
    uint64_t chunk = dev->staging_bytes / SLOTS;
    uint64_t n_chunks = (size + chunk - 1) / chunk;
    /* chunk i is copied into slot i % 2; it is drained after chunk i + 1 was submitted */
    for (uint64_t i = 0; st == VKB_OK && i <= n_chunks; i++) {
        if (i < n_chunks) {
            uint64_t off = i * chunk;
            uint64_t n = size - off < chunk ? size - off : chunk;
            st = slot_wait(dev, (int)(i % SLOTS));
            if (st == VKB_OK)
                st = slot_submit(dev, (int)(i % SLOTS), src, src_offset + off, n, false);
        }
        if (st == VKB_OK && i > 0) {
            uint64_t prev = i - 1, off = prev * chunk;
            uint64_t n = size - off < chunk ? size - off : chunk;
            st = slot_wait(dev, (int)(prev % SLOTS));
            if (st == VKB_OK)
                memcpy((uint8_t *)dst + off, slot_ptr(dev, (int)(prev % SLOTS)), n);
        }
    }
    for (int s = 0; s < SLOTS; s++) {
        vkb_status w = slot_wait(dev, s);
        if (st == VKB_OK)
            st = w;
    }
    return st;
}
