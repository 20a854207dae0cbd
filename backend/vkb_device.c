/* Logical device: queue, features under the profile, errors, the on-disk pipeline cache. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vkb_internal.h"

vkb_status vkb_dev_check(vkb_device *dev, VkResult result, const char *call)
{
    switch (result) {
    case VK_SUCCESS: return VKB_OK;
    case VK_ERROR_DEVICE_LOST:
        dev->lost = true;
        return vkb_dev_fail(dev, VKB_ERR_DEVICE_LOST,
                            "%s: the device was lost (driver reset or crash); reopen it", call);
    case VK_ERROR_OUT_OF_DEVICE_MEMORY:
        return vkb_dev_fail(dev, VKB_ERR_OUT_OF_DEVICE_MEMORY, "%s: out of device memory", call);
    case VK_ERROR_OUT_OF_HOST_MEMORY:
        return vkb_dev_fail(dev, VKB_ERR_OUT_OF_HOST_MEMORY, "%s: out of host memory", call);
    default: return vkb_dev_fail(dev, VKB_ERR_VULKAN, "%s: %s", call, vkb_result_name(result));
    }
}

vkb_status vkb_dev_alive(vkb_device *dev)
{
    if (!dev->lost)
        return VKB_OK;
    return vkb_dev_fail(dev, VKB_ERR_DEVICE_LOST,
                        "the device %s was lost earlier; close and reopen it", dev->info.name);
}

const char *vkb_device_errmsg(const vkb_device *dev)
{
    return dev ? dev->errmsg : "out of host memory";
}

const vkb_device_info *vkb_device_get_info(const vkb_device *dev)
{
    return &dev->info;
}

bool vkb_device_is_lost(const vkb_device *dev)
{
    return dev->lost;
}

/* ---- pipeline cache on disk ---------------------------------------------------------- */

int vkb_make_dirs(const char *path)
{
    char buf[1024];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return -1;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* The cache blob's header must name this device and driver, else the blob is ignored. */
static bool cache_blob_matches(const vkb_device_info *info, const uint8_t *data, size_t size)
{
    if (size < 32)
        return false;
    uint32_t header_size, version, vendor, device;
    memcpy(&header_size, data, 4);
    memcpy(&version, data + 4, 4);
    memcpy(&vendor, data + 8, 4);
    memcpy(&device, data + 12, 4);
    return header_size >= 32 && header_size <= size &&
           version == VK_PIPELINE_CACHE_HEADER_VERSION_ONE && vendor == info->vendor_id &&
           device == info->device_id && memcmp(data + 16, info->pipeline_cache_uuid, 16) == 0;
}

static void *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    void *data = NULL;
    long n;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && n < (256l << 20) &&
        fseek(f, 0, SEEK_SET) == 0) {
        data = malloc((size_t)n);
        if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
            free(data);
            data = NULL;
        }
        *size = (size_t)n;
    }
    fclose(f);
    return data;
}

/* The device's cache file as it is on disk now, or NULL where it is missing, unreadable or
 * made for another device or driver. */
static void *read_cache_blob(const vkb_device *dev, size_t *size)
{
    *size = 0;
    if (!dev->pipeline_cache_path)
        return NULL;
    void *blob = read_file(dev->pipeline_cache_path, size);
    if (blob && !cache_blob_matches(&dev->info, blob, *size)) {
        free(blob);
        blob = NULL;
    }
    if (!blob)
        *size = 0;
    return blob;
}

static VkResult new_cache(vkb_device *dev, const void *blob, size_t size, VkPipelineCache *out)
{
    VkPipelineCacheCreateInfo info = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
        .initialDataSize = size,
        .pInitialData = blob,
    };
    return dev->vk.vkCreatePipelineCache(dev->device, &info, NULL, out);
}

static vkb_status create_pipeline_cache(vkb_device *dev, const char *dir)
{
    if (dir && *dir) {
        char name[1024];
        int len = snprintf(name, sizeof name, "%s/pipelines-%04x-%04x-", dir, dev->info.vendor_id,
                           dev->info.device_id);
        for (int i = 0; i < 16 && len > 0 && len < (int)sizeof name - 3; i++)
            len += snprintf(name + len, sizeof name - (size_t)len, "%02x",
                            dev->info.pipeline_cache_uuid[i]);
        if (len > 0 && len < (int)sizeof name - 5)
            snprintf(name + len, sizeof name - (size_t)len, ".bin");
        dev->pipeline_cache_path = strdup(name);
    }
    size_t size;
    void *blob = read_cache_blob(dev, &size);
    VkResult r = new_cache(dev, blob, size, &dev->pipeline_cache);
    if (r != VK_SUCCESS && blob) /* a driver may still refuse a blob it does not like */
        r = new_cache(dev, NULL, 0, &dev->pipeline_cache);
    free(blob);
    return vkb_dev_check(dev, r, "vkCreatePipelineCache");
}

/* Another process on the same device (a test suite, bench beside run) may have saved its
 * pipelines since this one read the file: merge them in first, so that the last to close
 * does not drop the others' work. A blob the driver refuses is left out. */
static void merge_saved_pipelines(vkb_device *dev)
{
    size_t size;
    void *blob = read_cache_blob(dev, &size);
    if (!blob)
        return;
    VkPipelineCache saved;
    if (new_cache(dev, blob, size, &saved) == VK_SUCCESS) {
        dev->vk.vkMergePipelineCaches(dev->device, dev->pipeline_cache, 1, &saved);
        dev->vk.vkDestroyPipelineCache(dev->device, saved, NULL);
    }
    free(blob);
}

/* Written to a file of this device's own, then renamed over the cache: a reader sees the
 * old blob or the new one whole, never two writers' bytes interleaved. */
static void save_pipeline_cache(vkb_device *dev)
{
    if (!dev->pipeline_cache || !dev->pipeline_cache_path || dev->lost)
        return;
    merge_saved_pipelines(dev);
    size_t size = 0;
    if (dev->vk.vkGetPipelineCacheData(dev->device, dev->pipeline_cache, &size, NULL) !=
            VK_SUCCESS ||
        size == 0)
        return;
    void *data = malloc(size);
    if (!data)
        return;
    if (dev->vk.vkGetPipelineCacheData(dev->device, dev->pipeline_cache, &size, data) ==
        VK_SUCCESS) {
        char dir[1024], tmp[1100];
        snprintf(dir, sizeof dir, "%s", dev->pipeline_cache_path);
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        snprintf(tmp, sizeof tmp, "%s.%ld-%p.tmp", dev->pipeline_cache_path, (long)getpid(),
                 (void *)dev);
        FILE *f = (!slash || vkb_make_dirs(dir) == 0) ? fopen(tmp, "wb") : NULL;
        if (f) {
            bool ok = fwrite(data, 1, size, f) == size;
            ok = fclose(f) == 0 && ok;
            if (!ok || rename(tmp, dev->pipeline_cache_path) != 0)
                remove(tmp);
        }
    }
    free(data);
}

/* ---- open and close ------------------------------------------------------------------ */

static vkb_status create_logical_device(vkb_device *dev)
{
    const vkb_device_info *info = &dev->info;
    VkPhysicalDevice pd = dev->physical;
    uint32_t api =
        info->api_version < dev->ctx->instance_api ? info->api_version : dev->ctx->instance_api;
    bool v12 = api >= VK_API_VERSION_1_2, v13 = api >= VK_API_VERSION_1_3;

    struct vkb_extensions ext;
    vkb_extensions_load(pd, &ext);
    const char *exts[16];
    uint32_t n_ext = 0;
#define WANT_EXT(cond, name)                                                                       \
    do {                                                                                           \
        if ((cond) && vkb_extensions_has(&ext, name))                                              \
            exts[n_ext++] = name;                                                                  \
    } while (0)
    WANT_EXT(info->memory_budget, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
    WANT_EXT(!v13 && info->subgroup_size_control, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME);
    WANT_EXT(!v12 && (info->shader_float16 || info->shader_int8),
             VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME);
    WANT_EXT(!v12 && info->storage_8bit, VK_KHR_8BIT_STORAGE_EXTENSION_NAME);
    WANT_EXT(!v13 && info->int_dot, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME);
    WANT_EXT(info->coopmat_khr, VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME);
    WANT_EXT(info->coopmat_nv, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME);
    WANT_EXT(!v12 && info->memory_model, VK_KHR_VULKAN_MEMORY_MODEL_EXTENSION_NAME);
    WANT_EXT(true, "VK_KHR_portability_subset"); /* must be enabled where it exists */
#undef WANT_EXT

    /* Enable only what the profile leaves, so a kernel that uses more fails validation. */
    VkPhysicalDeviceFeatures2 feats = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    feats.features.shaderInt16 = info->shader_int16;
    feats.features.shaderInt64 = info->shader_int64;
    VkPhysicalDevice16BitStorageFeatures s16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
        .storageBuffer16BitAccess = info->storage_16bit,
    };
    VkPhysicalDevice8BitStorageFeatures s8 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES,
        .storageBuffer8BitAccess = info->storage_8bit,
    };
    VkPhysicalDeviceShaderFloat16Int8Features f16i8 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES,
        .shaderFloat16 = info->shader_float16,
        .shaderInt8 = info->shader_int8,
    };
    VkPhysicalDeviceSubgroupSizeControlFeatures sg = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES,
        .subgroupSizeControl = info->subgroup_size_control,
        .computeFullSubgroups = info->subgroup_full,
    };
    VkPhysicalDeviceShaderIntegerDotProductFeatures dot = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES,
        .shaderIntegerDotProduct = info->int_dot,
    };
    VkPhysicalDeviceCooperativeMatrixFeaturesKHR cm_khr = {
        .sType = VKB_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR,
        .cooperativeMatrix = VK_TRUE,
    };
    VkPhysicalDeviceCooperativeMatrixFeaturesNV cm_nv = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV,
        .cooperativeMatrix = VK_TRUE,
    };
    VkPhysicalDeviceVulkanMemoryModelFeatures mm = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES,
        .vulkanMemoryModel = VK_TRUE,
    };
    void **tail = &feats.pNext;
#define LINK(cond, s)                                                                              \
    do {                                                                                           \
        if (cond) {                                                                                \
            *tail = &(s);                                                                          \
            tail = &(s).pNext;                                                                     \
        }                                                                                          \
    } while (0)
    LINK(info->storage_16bit, s16);
    LINK(info->storage_8bit, s8);
    LINK(info->shader_float16 || info->shader_int8, f16i8);
    LINK(info->subgroup_size_control, sg);
    LINK(info->int_dot, dot);
    LINK(info->coopmat_khr, cm_khr);
    LINK(info->coopmat_nv, cm_nv);
    LINK(info->memory_model, mm);
#undef LINK

    float priority = 1.0f;
    VkDeviceQueueCreateInfo queue = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
        .queueFamilyIndex = dev->queue_family,
        .queueCount = 1,
        .pQueuePriorities = &priority,
    };
    VkDeviceCreateInfo create = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
        .pNext = &feats,
        .queueCreateInfoCount = 1,
        .pQueueCreateInfos = &queue,
        .enabledExtensionCount = n_ext,
        .ppEnabledExtensionNames = exts,
    };
    VkResult r = vkCreateDevice(pd, &create, NULL, &dev->device);
    vkb_extensions_free(&ext);
    if (r != VK_SUCCESS)
        return vkb_dev_check(dev, r, "vkCreateDevice");
    volkLoadDeviceTable(&dev->vk, dev->device);
    dev->vk.vkGetDeviceQueue(dev->device, dev->queue_family, 0, &dev->queue);
    return VKB_OK;
}

vkb_status vkb_device_open(vkb_context *ctx, const vkb_device_config *config, vkb_device **out)
{
    *out = NULL;
    vkb_device *dev = calloc(1, sizeof *dev);
    if (!dev)
        return VKB_ERR_OUT_OF_HOST_MEMORY;
    *out = dev;
    dev->ctx = ctx;
    for (int h = 0; h < VKB_MAX_HEAPS; h++)
        atomic_init(&dev->heap_allocated[h], 0);
    for (int p = 0; p < VKB_PURPOSE_COUNT; p++)
        atomic_init(&dev->purpose_allocated[p], 0);
    atomic_init(&dev->peak_allocated, 0);

    if (config->index >= ctx->device_count)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT, "device %u does not exist: there are %u",
                            config->index, ctx->device_count);
    if ((unsigned)config->profile >= VKB_PROFILE_COUNT)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT, "unknown device profile %d",
                            (int)config->profile);
    dev->info = ctx->infos[config->index];
    dev->physical = ctx->physical[config->index];
    vkb_device_info_apply_profile(&dev->info, config->profile);
    const char *tune = getenv("VKLLM_MATVEC");
    if (tune && *tune && !vkb_matvec_tuning_parse(tune, &dev->matvec_tuning))
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "VKLLM_MATVEC=%s: want WGxROWS (ROWS up to 16), then s for the "
                            "staged kernel or l for whole rows per invocation (ROWS up to 4 x "
                            "WG), then i or f for integer dot products on or off (e.g. 128x2s, "
                            "8x16l, 128x2i)",
                            tune);
    const char *mm = getenv("VKLLM_MATMUL");
    if (mm && *mm && !vkb_matmul_tuning_parse(mm, &dev->matmul_tuning))
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "VKLLM_MATMUL=%s: want TMxTNxTK/RMxRN (e.g. 128x64x16/8x8): TM, TN "
                            "multiples of RM, RN; TK of 8; RM x RN at most 256",
                            mm);
    const char *mmin = getenv("VKLLM_MATMUL_MIN");
    if (mmin && *mmin) {
        char *end;
        unsigned long v = strtoul(mmin, &end, 10);
        if (*end || v < 1 || v > 65536)
            return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                                "VKLLM_MATMUL_MIN=%s: want the fewest columns that take the "
                                "matmul, 1 to 65536 (9 or less: every product of more than 8)",
                                mmin);
        dev->matmul_min = (uint32_t)v;
    }
    const char *cm = getenv("VKLLM_COOPMAT");
    if (cm && *cm && !vkb_coopmat_mode_parse(cm, &dev->coopmat))
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "VKLLM_COOPMAT=%s: want 0 (off), 1 (on) or emu (emulated)", cm);
    vkb_tuning_open(dev, config->pipeline_cache_dir);
    uint32_t ts_bits;
    if (!vkb_compute_queue(dev->physical, &dev->queue_family, &ts_bits))
        return vkb_dev_fail(dev, VKB_ERR_UNSUPPORTED, "%s has no compute queue", dev->info.name);

    vkb_status st = create_logical_device(dev);
    if (st == VKB_OK)
        st = create_pipeline_cache(dev, config->pipeline_cache_dir);
    if (st == VKB_OK) {
        dev->staging_bytes = config->staging_bytes ? config->staging_bytes : 64ull << 20;
        st = vkb_transfer_init(dev);
    }
    return st;
}

void vkb_device_close(vkb_device *dev)
{
    if (!dev)
        return;
    if (dev->device) {
        dev->vk.vkDeviceWaitIdle(dev->device);
        vkb_streams_free(dev);
        vkb_transfer_free(dev);
        vkb_arenas_free(dev);
        save_pipeline_cache(dev);
        vkb_pipelines_free(dev);
        if (dev->pipeline_cache)
            dev->vk.vkDestroyPipelineCache(dev->device, dev->pipeline_cache, NULL);
        dev->vk.vkDestroyDevice(dev->device, NULL);
    }
    free(dev->pipeline_cache_path);
    free(dev->tuning_path);
    free(dev);
}
