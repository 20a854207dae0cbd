/* Arenas: device memory per lifetime class, sub-allocated by offset, with accounting. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkb_internal.h"

#define DEFAULT_BLOCK_BYTES (256ull << 20)
#define PART_ALIGN          256ull /* ≥ every driver's minStorageBufferOffsetAlignment */

const char *vkb_purpose_name(vkb_purpose purpose)
{
    static const char *const names[VKB_PURPOSE_COUNT] = {"weights", "kv", "scratch", "staging"};
    return (unsigned)purpose < VKB_PURPOSE_COUNT ? names[purpose] : "unknown";
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) / a * a;
}

void vkb_account(vkb_device *dev, uint32_t heap, vkb_purpose purpose, int64_t bytes)
{
    atomic_fetch_add(&dev->heap_allocated[heap], (uint_fast64_t)bytes);
    atomic_fetch_add(&dev->purpose_allocated[purpose], (uint_fast64_t)bytes);
    if (bytes > 0) {
        uint_fast64_t total = 0;
        for (uint32_t h = 0; h < dev->info.heap_count; h++)
            total += atomic_load(&dev->heap_allocated[h]);
        uint_fast64_t peak = atomic_load(&dev->peak_allocated);
        while (total > peak && !atomic_compare_exchange_weak(&dev->peak_allocated, &peak, total))
            ;
    }
}

vkb_status vkb_device_memory_stats(vkb_device *dev, vkb_memory_stats *out)
{
    memset(out, 0, sizeof *out);
    if (dev->info.memory_budget)
        vkb_caps_query_budget(dev->physical, &dev->info);
    out->heap_count = dev->info.heap_count;
    for (uint32_t h = 0; h < dev->info.heap_count; h++) {
        uint64_t mine = atomic_load(&dev->heap_allocated[h]);
        out->heaps[h].size = dev->info.heaps[h].size;
        out->heaps[h].allocated = mine;
        out->heaps[h].budget_from_driver = dev->info.memory_budget;
        out->heaps[h].budget = dev->info.heaps[h].budget;
        out->heaps[h].usage = dev->info.memory_budget ? dev->info.heaps[h].usage : mine;
    }
    for (int p = 0; p < VKB_PURPOSE_COUNT; p++)
        out->by_purpose[p] = atomic_load(&dev->purpose_allocated[p]);
    out->peak_allocated = atomic_load(&dev->peak_allocated);
    return VKB_OK;
}

void vkb_device_memory_reset_peak(vkb_device *dev)
{
    uint_fast64_t total = 0;
    for (uint32_t h = 0; h < dev->info.heap_count; h++)
        total += atomic_load(&dev->heap_allocated[h]);
    atomic_store(&dev->peak_allocated, total);
}

/* Memory type preference: device-local (not host-visible where a choice exists) for
 * device arenas; host-visible and coherent (cached where possible) for staging. */
static int type_score(uint32_t flags, vkb_purpose purpose)
{
    if (purpose == VKB_PURPOSE_STAGING) {
        if (!(flags & VKB_MEMORY_HOST_VISIBLE) || !(flags & VKB_MEMORY_HOST_COHERENT))
            return -1;
        return 1 + ((flags & VKB_MEMORY_HOST_CACHED) ? 2 : 0) +
               ((flags & VKB_MEMORY_DEVICE_LOCAL) ? 0 : 1);
    }
    if (!(flags & VKB_MEMORY_DEVICE_LOCAL))
        return 0; /* usable, but last */
    return 2 + ((flags & VKB_MEMORY_HOST_VISIBLE) ? 0 : 1);
}

static uint32_t pick_memory_type(const vkb_device_info *info, uint32_t allowed, vkb_purpose purpose)
{
    uint32_t best = UINT32_MAX;
    int best_score = -1;
    for (uint32_t t = 0; t < info->memory_type_count; t++) {
        if (!(allowed & (1u << t)))
            continue;
        int s = type_score(info->memory_types[t].flags, purpose);
        if (s > best_score) {
            best_score = s;
            best = t;
        }
    }
    return best;
}

static vkb_status out_of_memory(vkb_arena *arena, uint32_t heap, uint64_t request,
                                uint64_t available, const char *why)
{
    vkb_device *dev = arena->dev;
    char req[32], avail[32], size[32];
    return vkb_dev_fail(dev, VKB_ERR_OUT_OF_DEVICE_MEMORY,
                        "allocating %s for %s on heap %u (%s, %s): %s, %s of the budget left; "
                        "out of device memory: use a smaller model or context, or another device",
                        vkb_format_bytes(request, req, sizeof req),
                        vkb_purpose_name(arena->purpose), heap,
                        dev->info.heaps[heap].device_local ? "device-local" : "host",
                        vkb_format_bytes(dev->info.heaps[heap].size, size, sizeof size), why,
                        vkb_format_bytes(available, avail, sizeof avail));
}

/* Bytes still free on `heap` by the driver's budget, or by vkllm's own accounting. */
static uint64_t heap_available(vkb_device *dev, uint32_t heap)
{
    const vkb_heap_info *h = &dev->info.heaps[heap];
    uint64_t used = dev->info.memory_budget ? h->usage : atomic_load(&dev->heap_allocated[heap]);
    return h->budget > used ? h->budget - used : 0;
}

static vkb_status grow(vkb_arena *arena, uint64_t size)
{
    vkb_device *dev = arena->dev;
    vkb_status st;
    if (arena->block_count == arena->block_cap) {
        uint32_t cap = arena->block_cap ? arena->block_cap * 2 : 4;
        struct vkb_block *b = realloc(arena->blocks, cap * sizeof *b);
        if (!b)
            return vkb_dev_fail(dev, VKB_ERR_OUT_OF_HOST_MEMORY, "out of host memory");
        arena->blocks = b;
        arena->block_cap = cap;
    }
    struct vkb_block blk = {.size = size};
    VkBufferCreateInfo bi = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .size = size,
        .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                 VK_BUFFER_USAGE_TRANSFER_DST_BIT,
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
    };
    st = vkb_dev_check(dev, dev->vk.vkCreateBuffer(dev->device, &bi, NULL, &blk.buffer),
                       "vkCreateBuffer");
    if (st != VKB_OK)
        return st;
    VkMemoryRequirements req;
    dev->vk.vkGetBufferMemoryRequirements(dev->device, blk.buffer, &req);
    uint32_t type = pick_memory_type(&dev->info, req.memoryTypeBits, arena->purpose);
    if (type == UINT32_MAX) {
        dev->vk.vkDestroyBuffer(dev->device, blk.buffer, NULL);
        return vkb_dev_fail(dev, VKB_ERR_UNSUPPORTED, "%s has no memory type for %s buffers",
                            dev->info.name, vkb_purpose_name(arena->purpose));
    }
    uint32_t heap = dev->info.memory_types[type].heap;
    uint64_t available = heap_available(dev, heap);
    if (req.size > available) {
        dev->vk.vkDestroyBuffer(dev->device, blk.buffer, NULL);
        return out_of_memory(arena, heap, req.size, available, "over budget");
    }
    VkMemoryAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
        .allocationSize = req.size,
        .memoryTypeIndex = type,
    };
    VkResult r = dev->vk.vkAllocateMemory(dev->device, &ai, NULL, &blk.memory);
    if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY) {
        dev->vk.vkDestroyBuffer(dev->device, blk.buffer, NULL);
        return out_of_memory(arena, heap, req.size, available, "the driver refused");
    }
    if ((st = vkb_dev_check(dev, r, "vkAllocateMemory")) != VKB_OK) {
        dev->vk.vkDestroyBuffer(dev->device, blk.buffer, NULL);
        return st;
    }
    r = dev->vk.vkBindBufferMemory(dev->device, blk.buffer, blk.memory, 0);
    if (r == VK_SUCCESS && (dev->info.memory_types[type].flags & VKB_MEMORY_HOST_VISIBLE) &&
        arena->purpose == VKB_PURPOSE_STAGING)
        r = dev->vk.vkMapMemory(dev->device, blk.memory, 0, VK_WHOLE_SIZE, 0, &blk.mapped);
    if ((st = vkb_dev_check(dev, r, "vkBindBufferMemory/vkMapMemory")) != VKB_OK) {
        dev->vk.vkDestroyBuffer(dev->device, blk.buffer, NULL);
        dev->vk.vkFreeMemory(dev->device, blk.memory, NULL);
        return st;
    }
    blk.allocated = req.size;
    arena->memory_type = type;
    arena->heap = heap;
    arena->blocks[arena->block_count++] = blk;
    vkb_account(dev, heap, arena->purpose, (int64_t)req.size);
    return VKB_OK;
}

vkb_status vkb_arena_create(vkb_device *dev, vkb_purpose purpose, uint64_t block_bytes,
                            vkb_arena **out)
{
    *out = NULL;
    vkb_status st = vkb_dev_alive(dev);
    if (st != VKB_OK)
        return st;
    if ((unsigned)purpose >= VKB_PURPOSE_COUNT)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT, "unknown memory purpose %d",
                            (int)purpose);
    vkb_arena *a = calloc(1, sizeof *a);
    if (!a)
        return vkb_dev_fail(dev, VKB_ERR_OUT_OF_HOST_MEMORY, "out of host memory");
    uint64_t limit = dev->info.max_memory_allocation_size;
    if (dev->info.max_buffer_size && dev->info.max_buffer_size < limit)
        limit = dev->info.max_buffer_size;
    a->dev = dev;
    a->purpose = purpose;
    a->block_bytes = block_bytes ? block_bytes : DEFAULT_BLOCK_BYTES;
    if (a->block_bytes > limit)
        a->block_bytes = limit;
    a->next = dev->arenas;
    dev->arenas = a;
    *out = a;
    return VKB_OK;
}

void vkb_arena_expect(vkb_arena *arena, uint64_t bytes)
{
    arena->expected = bytes;
}

static void free_buffers(vkb_arena *arena)
{
    struct vkb_buffer *b = arena->buffers;
    while (b) {
        struct vkb_buffer *next = b->next;
        free(b->parts);
        free(b);
        b = next;
    }
    arena->buffers = NULL;
}

static void arena_release(vkb_arena *arena)
{
    vkb_device *dev = arena->dev;
    free_buffers(arena);
    for (uint32_t i = 0; i < arena->block_count; i++) {
        struct vkb_block *b = &arena->blocks[i];
        dev->vk.vkDestroyBuffer(dev->device, b->buffer, NULL);
        if (b->mapped)
            dev->vk.vkUnmapMemory(dev->device, b->memory);
        dev->vk.vkFreeMemory(dev->device, b->memory, NULL);
        vkb_account(dev, arena->heap, arena->purpose, -(int64_t)b->allocated);
    }
    free(arena->blocks);
    free(arena);
}

void vkb_arena_destroy(vkb_arena *arena)
{
    if (!arena)
        return;
    for (vkb_arena **p = &arena->dev->arenas; *p; p = &(*p)->next) {
        if (*p == arena) {
            *p = arena->next;
            break;
        }
    }
    arena_release(arena);
}

void vkb_arenas_free(vkb_device *dev)
{
    while (dev->arenas) {
        vkb_arena *a = dev->arenas;
        dev->arenas = a->next;
        arena_release(a);
    }
}

void vkb_arena_reset(vkb_arena *arena)
{
    if (!arena)
        return;
    free_buffers(arena);
    for (uint32_t i = 0; i < arena->block_count; i++)
        arena->blocks[i].used = 0;
    arena->used = 0;
    arena->current = 0;
}

uint64_t vkb_arena_capacity(const vkb_arena *arena)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < arena->block_count; i++)
        total += arena->blocks[i].size;
    return total;
}

uint64_t vkb_arena_used(const vkb_arena *arena)
{
    return arena->used;
}

/* Largest part one binding may cover, a multiple of granule. */
static uint64_t part_limit(const vkb_device_info *info, uint64_t granule)
{
    return vkb_part_limit(info) / granule * granule;
}

/* Places `size` bytes by bumping through the blocks in order: the block being filled,
 * then the ones a reset emptied, then a new one. Blocks after `current` are empty. */
static vkb_status place(vkb_arena *arena, uint64_t size, struct vkb_part *part)
{
    for (; arena->current < arena->block_count; arena->current++) {
        struct vkb_block *b = &arena->blocks[arena->current];
        uint64_t at = align_up(b->used, PART_ALIGN);
        if (at + size <= b->size) {
            part->block = arena->current;
            part->block_offset = at;
            b->used = at + size;
            return VKB_OK;
        }
    }
    uint64_t bytes = arena->block_bytes;
    if (arena->expected) {
        uint64_t placed = 0;
        for (uint32_t i = 0; i < arena->block_count; i++)
            placed += arena->blocks[i].used;
        uint64_t left = arena->expected > placed ? arena->expected - placed : 0;
        bytes = left < bytes ? align_up(left, PART_ALIGN) : bytes;
    }
    vkb_status st = grow(arena, size > bytes ? size : bytes);
    if (st != VKB_OK)
        return st;
    arena->current = arena->block_count - 1;
    struct vkb_block *b = &arena->blocks[arena->current];
    if (size > b->size)
        return vkb_dev_fail(arena->dev, VKB_ERR_VULKAN, "block of %llu bytes is smaller than asked",
                            (unsigned long long)b->size);
    part->block = arena->current;
    part->block_offset = 0;
    b->used = size;
    return VKB_OK;
}

vkb_status vkb_buffer_alloc(vkb_arena *arena, uint64_t size, uint64_t granule, vkb_buffer **out)
{
    vkb_device *dev = arena->dev;
    *out = NULL;
    vkb_status st = vkb_dev_alive(dev);
    if (st != VKB_OK)
        return st;
    if (size == 0)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT, "buffer of 0 bytes");
    if (granule == 0)
        granule = PART_ALIGN;
    uint64_t part_max = part_limit(&dev->info, granule);
    if (part_max == 0)
        return vkb_dev_fail(dev, VKB_ERR_UNSUPPORTED,
                            "a split granule of %llu bytes exceeds the device's binding range",
                            (unsigned long long)granule);

    /* Refuse early, before any allocation, what can never fit the heap's budget. */
    if (arena->block_count == 0 || size > arena->blocks[arena->block_count - 1].size) {
        uint32_t heap = arena->block_count ? arena->heap : 0;
        if (arena->block_count == 0) {
            /* the heap the arena will use: the first memory type it would pick */
            uint32_t t = pick_memory_type(&dev->info, UINT32_MAX, arena->purpose);
            heap = t == UINT32_MAX ? 0 : dev->info.memory_types[t].heap;
        }
        uint64_t available = heap_available(dev, heap);
        if (size > available)
            return out_of_memory(arena, heap, size, available, "over budget");
    }

    uint32_t n = (uint32_t)((size + part_max - 1) / part_max);
    struct vkb_buffer *buf = calloc(1, sizeof *buf);
    struct vkb_part *parts = calloc(n, sizeof *parts);
    if (!buf || !parts) {
        free(buf);
        free(parts);
        return vkb_dev_fail(dev, VKB_ERR_OUT_OF_HOST_MEMORY, "out of host memory");
    }
    uint32_t saved = arena->current;
    uint64_t saved_used = saved < arena->block_count ? arena->blocks[saved].used : 0;
    for (uint32_t i = 0; i < n; i++) {
        parts[i].offset = (uint64_t)i * part_max;
        parts[i].size = i + 1 < n ? part_max : size - parts[i].offset;
        st = place(arena, parts[i].size, &parts[i]);
        if (st != VKB_OK) {
            /* give back the space; blocks already created stay as free capacity */
            for (uint32_t b = saved + 1; b < arena->block_count; b++)
                arena->blocks[b].used = 0;
            if (saved < arena->block_count)
                arena->blocks[saved].used = saved_used;
            arena->current = saved;
            free(parts);
            free(buf);
            return st;
        }
    }
    buf->arena = arena;
    buf->size = size;
    buf->part_count = n;
    buf->parts = parts;
    buf->next = arena->buffers;
    arena->buffers = buf;
    arena->used += size;
    *out = buf;
    return VKB_OK;
}

uint64_t vkb_buffer_size(const vkb_buffer *buf)
{
    return buf->size;
}

void *vkb_buffer_map(const vkb_buffer *buf)
{
    if (!buf || buf->part_count != 1)
        return NULL;
    const struct vkb_block *b = &buf->arena->blocks[buf->parts[0].block];
    return b->mapped ? (uint8_t *)b->mapped + buf->parts[0].block_offset : NULL;
}

uint32_t vkb_buffer_part_count(const vkb_buffer *buf)
{
    return buf->part_count;
}

void vkb_buffer_part(const vkb_buffer *buf, uint32_t i, uint64_t *offset, uint64_t *size)
{
    *offset = i < buf->part_count ? buf->parts[i].offset : 0;
    *size = i < buf->part_count ? buf->parts[i].size : 0;
}

bool vkb_buffer_locate(const vkb_buffer *buf, uint64_t offset, uint64_t size,
                       const struct vkb_part **part)
{
    for (uint32_t i = 0; i < buf->part_count; i++) {
        const struct vkb_part *p = &buf->parts[i];
        if (offset >= p->offset && offset < p->offset + p->size) {
            *part = p;
            return size <= p->offset + p->size - offset;
        }
    }
    return false;
}

VkBuffer vkb_part_vk_buffer(const vkb_buffer *buf, const struct vkb_part *part)
{
    return buf->arena->blocks[part->block].buffer;
}
