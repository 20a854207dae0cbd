/* The capability record: queried from the driver, capped by device profiles. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkb_internal.h"

const char *vkb_device_type_name(vkb_device_type type)
{
    switch (type) {
    case VKB_DEVICE_INTEGRATED: return "integrated";
    case VKB_DEVICE_DISCRETE: return "discrete";
    case VKB_DEVICE_VIRTUAL: return "virtual";
    case VKB_DEVICE_CPU: return "cpu";
    default: return "other";
    }
}

static const char *const profile_names[VKB_PROFILE_COUNT] = {"native", "mobile", "minimal"};

const char *vkb_profile_name(vkb_profile profile)
{
    return (unsigned)profile < VKB_PROFILE_COUNT ? profile_names[profile] : "unknown";
}

bool vkb_profile_parse(const char *name, vkb_profile *out)
{
    for (int p = 0; p < VKB_PROFILE_COUNT; p++) {
        if (name && strcmp(name, profile_names[p]) == 0) {
            *out = (vkb_profile)p;
            return true;
        }
    }
    return false;
}

static const char *vendor_name(uint32_t id)
{
    switch (id) {
    case 0x1002: return "AMD";
    case 0x1010: return "ImgTec";
    case 0x10de: return "NVIDIA";
    case 0x13b5: return "ARM";
    case 0x5143: return "Qualcomm";
    case 0x8086: return "Intel";
    case 0x106b: return "Apple";
    case 0x10005: return "Mesa";
    case 0x1af4: return "VirtIO";
    case 0x144d: return "Samsung";
    default: return "unknown";
    }
}

static vkb_device_type device_type(VkPhysicalDeviceType t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return VKB_DEVICE_INTEGRATED;
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return VKB_DEVICE_DISCRETE;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return VKB_DEVICE_VIRTUAL;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return VKB_DEVICE_CPU;
    default: return VKB_DEVICE_OTHER;
    }
}

void vkb_extensions_load(VkPhysicalDevice physical, struct vkb_extensions *ext)
{
    ext->count = 0;
    ext->props = NULL;
    uint32_t n = 0;
    if (vkEnumerateDeviceExtensionProperties(physical, NULL, &n, NULL) != VK_SUCCESS || n == 0)
        return;
    ext->props = calloc(n, sizeof *ext->props);
    if (ext->props &&
        vkEnumerateDeviceExtensionProperties(physical, NULL, &n, ext->props) == VK_SUCCESS)
        ext->count = n;
}

bool vkb_extensions_has(const struct vkb_extensions *ext, const char *name)
{
    for (uint32_t i = 0; i < ext->count; i++)
        if (strcmp(ext->props[i].extensionName, name) == 0)
            return true;
    return false;
}

void vkb_extensions_free(struct vkb_extensions *ext)
{
    free(ext->props);
    ext->props = NULL;
    ext->count = 0;
}

uint64_t vkb_part_limit(const vkb_device_info *info)
{
    uint64_t lim = info->max_storage_buffer_range;
    if (info->max_memory_allocation_size < lim)
        lim = info->max_memory_allocation_size;
    if (info->max_buffer_size && info->max_buffer_size < lim)
        lim = info->max_buffer_size;
    return lim;
}

uint32_t vkb_max_workgroup_x(const vkb_device_info *info)
{
    return info->max_workgroup_invocations < info->max_workgroup_size[0]
               ? info->max_workgroup_invocations
               : info->max_workgroup_size[0];
}

static void chain(void **tail_next, void *node)
{
    /* every Vulkan structure begins with sType, pNext */
    VkBaseOutStructure *n = node;
    n->pNext = *tail_next;
    *tail_next = n;
}

void vkb_caps_query_budget(VkPhysicalDevice physical, vkb_device_info *info)
{
    VkPhysicalDeviceMemoryBudgetPropertiesEXT budget = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT,
    };
    VkPhysicalDeviceMemoryProperties2 mem = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2,
        .pNext = info->memory_budget ? &budget : NULL,
    };
    vkGetPhysicalDeviceMemoryProperties2(physical, &mem);
    info->heap_count = mem.memoryProperties.memoryHeapCount;
    if (info->heap_count > VKB_MAX_HEAPS)
        info->heap_count = VKB_MAX_HEAPS;
    for (uint32_t h = 0; h < info->heap_count; h++) {
        const VkMemoryHeap *heap = &mem.memoryProperties.memoryHeaps[h];
        info->heaps[h].size = heap->size;
        info->heaps[h].device_local = heap->flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT;
        info->heaps[h].budget = info->memory_budget ? budget.heapBudget[h] : heap->size;
        info->heaps[h].usage = info->memory_budget ? budget.heapUsage[h] : 0;
    }
    info->memory_type_count = mem.memoryProperties.memoryTypeCount;
    for (uint32_t t = 0; t < info->memory_type_count && t < VKB_MAX_MEMORY_TYPES; t++) {
        info->memory_types[t].heap = mem.memoryProperties.memoryTypes[t].heapIndex;
        info->memory_types[t].flags = mem.memoryProperties.memoryTypes[t].propertyFlags &
                                      (VKB_MEMORY_DEVICE_LOCAL | VKB_MEMORY_HOST_VISIBLE |
                                       VKB_MEMORY_HOST_COHERENT | VKB_MEMORY_HOST_CACHED);
    }
}

bool vkb_compute_queue(VkPhysicalDevice physical, uint32_t *family, uint32_t *timestamp_bits)
{
    uint32_t n = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(physical, &n, NULL);
    VkQueueFamilyProperties *q = calloc(n ? n : 1, sizeof *q);
    if (!q)
        return false;
    vkGetPhysicalDeviceQueueFamilyProperties(physical, &n, q);
    bool found = false;
    for (uint32_t i = 0; i < n && !found; i++) {
        if (q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) {
            *family = i;
            *timestamp_bits = q[i].timestampValidBits;
            found = true;
        }
    }
    free(q);
    return found;
}

/* Whether VK_NV_cooperative_matrix lists the shape matmul_coopmat.comp multiplies: 16 x 16
 * x 16, f16 A and B, f32 C and result, subgroup scope. */
static bool coopmat_nv_f16(VkPhysicalDevice physical)
{
    if (!vkGetPhysicalDeviceCooperativeMatrixPropertiesNV)
        return false;
    uint32_t n = 0;
    if (vkGetPhysicalDeviceCooperativeMatrixPropertiesNV(physical, &n, NULL) != VK_SUCCESS || !n)
        return false;
    VkCooperativeMatrixPropertiesNV *p = calloc(n, sizeof *p);
    if (!p)
        return false;
    for (uint32_t i = 0; i < n; i++)
        p[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV;
    bool found = false;
    if (vkGetPhysicalDeviceCooperativeMatrixPropertiesNV(physical, &n, p) >= VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++)
            found = p[i].MSize == 16 && p[i].NSize == 16 && p[i].KSize == 16 &&
                    p[i].AType == VK_COMPONENT_TYPE_FLOAT16_NV &&
                    p[i].BType == VK_COMPONENT_TYPE_FLOAT16_NV &&
                    p[i].CType == VK_COMPONENT_TYPE_FLOAT32_NV &&
                    p[i].DType == VK_COMPONENT_TYPE_FLOAT32_NV &&
                    p[i].scope == VK_SCOPE_SUBGROUP_NV;
    free(p);
    return found;
}

void vkb_caps_query(VkPhysicalDevice physical, uint32_t instance_api, vkb_device_info *info)
{
    memset(info, 0, sizeof *info);

    struct vkb_extensions ext;
    vkb_extensions_load(physical, &ext);

    VkPhysicalDeviceProperties base;
    vkGetPhysicalDeviceProperties(physical, &base);
    uint32_t api = base.apiVersion < instance_api ? base.apiVersion : instance_api;
    bool v12 = api >= VK_API_VERSION_1_2, v13 = api >= VK_API_VERSION_1_3;

    /* properties */
    VkPhysicalDeviceProperties2 props = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
    VkPhysicalDeviceSubgroupProperties subgroup = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceIDProperties ids = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_ID_PROPERTIES};
    VkPhysicalDeviceMaintenance3Properties m3 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
    VkPhysicalDeviceMaintenance4Properties m4 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_4_PROPERTIES};
    VkPhysicalDeviceDriverProperties driver = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
    VkPhysicalDeviceSubgroupSizeControlProperties sg_size = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES};
    VkPhysicalDeviceShaderIntegerDotProductProperties dot = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_PROPERTIES};
    VkPhysicalDevicePCIBusInfoPropertiesEXT pci = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PCI_BUS_INFO_PROPERTIES_EXT};

    bool has_driver = v12 || vkb_extensions_has(&ext, VK_KHR_DRIVER_PROPERTIES_EXTENSION_NAME);
    bool has_sg_size = v13 || vkb_extensions_has(&ext, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME);
    bool has_dot =
        v13 || vkb_extensions_has(&ext, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME);
    bool has_m4 = v13 || vkb_extensions_has(&ext, VK_KHR_MAINTENANCE_4_EXTENSION_NAME);
    bool has_pci = vkb_extensions_has(&ext, VK_EXT_PCI_BUS_INFO_EXTENSION_NAME);
    chain(&props.pNext, &subgroup);
    chain(&props.pNext, &ids);
    chain(&props.pNext, &m3);
    if (has_m4)
        chain(&props.pNext, &m4);
    if (has_driver)
        chain(&props.pNext, &driver);
    if (has_sg_size)
        chain(&props.pNext, &sg_size);
    if (has_dot)
        chain(&props.pNext, &dot);
    if (has_pci)
        chain(&props.pNext, &pci);
    vkGetPhysicalDeviceProperties2(physical, &props);

    /* features */
    VkPhysicalDeviceFeatures2 feats = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    VkPhysicalDevice16BitStorageFeatures s16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
    VkPhysicalDevice8BitStorageFeatures s8 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES};
    VkPhysicalDeviceShaderFloat16Int8Features f16i8 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
    VkPhysicalDeviceSubgroupSizeControlFeatures sg_feat = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES};
    VkPhysicalDeviceShaderIntegerDotProductFeatures dot_feat = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES};
    VkPhysicalDeviceCooperativeMatrixFeaturesKHR cm_khr = {
        .sType = VKB_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR};
    VkPhysicalDeviceCooperativeMatrixFeaturesNV cm_nv = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
    VkPhysicalDeviceVulkanMemoryModelFeatures mm = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES};
    bool has_mm = v12 || vkb_extensions_has(&ext, VK_KHR_VULKAN_MEMORY_MODEL_EXTENSION_NAME);
    bool has_s8 = v12 || vkb_extensions_has(&ext, VK_KHR_8BIT_STORAGE_EXTENSION_NAME);
    bool has_f16i8 = v12 || vkb_extensions_has(&ext, VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME);
    bool has_cm_khr = vkb_extensions_has(&ext, VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME);
    bool has_cm_nv = vkb_extensions_has(&ext, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME);
    chain(&feats.pNext, &s16);
    if (has_s8)
        chain(&feats.pNext, &s8);
    if (has_f16i8)
        chain(&feats.pNext, &f16i8);
    if (has_sg_size)
        chain(&feats.pNext, &sg_feat);
    if (has_dot)
        chain(&feats.pNext, &dot_feat);
    if (has_cm_khr)
        chain(&feats.pNext, &cm_khr);
    if (has_cm_nv)
        chain(&feats.pNext, &cm_nv);
    if (has_mm)
        chain(&feats.pNext, &mm);
    vkGetPhysicalDeviceFeatures2(physical, &feats);

    const VkPhysicalDeviceLimits *lim = &base.limits;
    snprintf(info->name, sizeof info->name, "%s", base.deviceName);
    info->vendor_id = base.vendorID;
    info->device_id = base.deviceID;
    info->vendor_name = vendor_name(base.vendorID);
    info->type = device_type(base.deviceType);
    info->api_version = base.apiVersion;
    info->driver_version = base.driverVersion;
    memcpy(info->pipeline_cache_uuid, base.pipelineCacheUUID, 16);
    memcpy(info->device_uuid, ids.deviceUUID, 16);
    memcpy(info->driver_uuid, ids.driverUUID, 16);
    if (has_driver) {
        info->driver_id = driver.driverID;
        snprintf(info->driver_name, sizeof info->driver_name, "%s", driver.driverName);
        snprintf(info->driver_info, sizeof info->driver_info, "%s", driver.driverInfo);
    } else {
        snprintf(info->driver_name, sizeof info->driver_name, "%s driver", info->vendor_name);
    }
    if (has_pci) {
        info->has_pci = true;
        info->pci_domain = pci.pciDomain;
        info->pci_bus = pci.pciBus;
        info->pci_device = pci.pciDevice;
        info->pci_function = pci.pciFunction;
    }
    info->profile = VKB_PROFILE_NATIVE;

    info->subgroup_size = subgroup.subgroupSize;
    info->subgroup_size_min = subgroup.subgroupSize;
    info->subgroup_size_max = subgroup.subgroupSize;
    if (subgroup.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT)
        info->subgroup_ops = subgroup.supportedOperations & 0xffu;
    if (has_sg_size && sg_feat.subgroupSizeControl &&
        (sg_size.requiredSubgroupSizeStages & VK_SHADER_STAGE_COMPUTE_BIT)) {
        info->subgroup_size_control = true;
        info->subgroup_full = sg_feat.computeFullSubgroups;
        info->subgroup_size_min = sg_size.minSubgroupSize;
        info->subgroup_size_max = sg_size.maxSubgroupSize;
        info->max_compute_workgroup_subgroups = sg_size.maxComputeWorkgroupSubgroups;
    }

    info->shader_float16 = has_f16i8 && f16i8.shaderFloat16;
    info->shader_int8 = has_f16i8 && f16i8.shaderInt8;
    info->shader_int16 = feats.features.shaderInt16;
    info->shader_int64 = feats.features.shaderInt64;
    info->storage_16bit = s16.storageBuffer16BitAccess;
    info->storage_8bit = has_s8 && s8.storageBuffer8BitAccess;

    info->int_dot = has_dot && dot_feat.shaderIntegerDotProduct;
    if (info->int_dot) {
        info->int_dot_4x8_signed_accel = dot.integerDotProduct4x8BitPackedSignedAccelerated;
        info->int_dot_4x8_unsigned_accel = dot.integerDotProduct4x8BitPackedUnsignedAccelerated;
        info->int_dot_4x8_mixed_accel = dot.integerDotProduct4x8BitPackedMixedSignednessAccelerated;
        info->int_dot_8bit_signed_accel = dot.integerDotProduct8BitSignedAccelerated;
        info->int_dot_8bit_unsigned_accel = dot.integerDotProduct8BitUnsignedAccelerated;
    }
    info->coopmat_khr = has_cm_khr && cm_khr.cooperativeMatrix;
    info->coopmat_nv = has_cm_nv && cm_nv.cooperativeMatrix;
    info->memory_model = has_mm && mm.vulkanMemoryModel;
    info->coopmat_nv_f16 = info->coopmat_nv && coopmat_nv_f16(physical);

    info->memory_budget = vkb_extensions_has(&ext, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
    vkb_caps_query_budget(physical, info);

    info->max_shared_memory = lim->maxComputeSharedMemorySize;
    for (int i = 0; i < 3; i++) {
        info->max_workgroup_size[i] = lim->maxComputeWorkGroupSize[i];
        info->max_workgroup_count[i] = lim->maxComputeWorkGroupCount[i];
    }
    info->max_workgroup_invocations = lim->maxComputeWorkGroupInvocations;
    info->max_storage_buffer_range = lim->maxStorageBufferRange;
    info->max_memory_allocation_size = m3.maxMemoryAllocationSize;
    info->max_buffer_size = has_m4 ? m4.maxBufferSize : m3.maxMemoryAllocationSize;
    info->max_push_constants_size = lim->maxPushConstantsSize;
    info->max_storage_buffers = lim->maxPerStageDescriptorStorageBuffers;
    info->min_storage_buffer_offset_alignment = lim->minStorageBufferOffsetAlignment;
    info->timestamp_period = lim->timestampPeriod;
    uint32_t family;
    vkb_compute_queue(physical, &family, &info->timestamp_valid_bits);

    vkb_extensions_free(&ext);
}

#define CAP(field, value)                                                                          \
    do {                                                                                           \
        if ((field) > (value))                                                                     \
            (field) = (value);                                                                     \
    } while (0)

void vkb_device_info_apply_profile(vkb_device_info *info, vkb_profile profile)
{
    switch (profile) {
    case VKB_PROFILE_NATIVE:
    case VKB_PROFILE_COUNT: return;
    case VKB_PROFILE_MOBILE:
        CAP(info->max_shared_memory, 16384u);
        CAP(info->max_storage_buffer_range, 128ull << 20);
        CAP(info->max_memory_allocation_size, 256ull << 20);
        CAP(info->max_buffer_size, 256ull << 20);
        info->shader_float16 = false;
        info->shader_int8 = false;
        info->int_dot = false;
        info->int_dot_4x8_signed_accel = info->int_dot_4x8_unsigned_accel = false;
        info->int_dot_4x8_mixed_accel = false;
        info->int_dot_8bit_signed_accel = info->int_dot_8bit_unsigned_accel = false;
        info->coopmat_khr = info->coopmat_nv = info->coopmat_nv_f16 = false;
        if (info->subgroup_size_control && info->subgroup_size_min <= 16 &&
            info->subgroup_size_max >= 16)
            info->subgroup_size = info->subgroup_size_min = info->subgroup_size_max = 16;
        break;
    case VKB_PROFILE_MINIMAL:
        /* Vulkan 1.2 required limits (Table "Required Limits") and required features */
        CAP(info->max_shared_memory, 16384u);
        for (int i = 0; i < 3; i++)
            CAP(info->max_workgroup_count[i], 65535u);
        CAP(info->max_workgroup_size[0], 128u);
        CAP(info->max_workgroup_size[1], 128u);
        CAP(info->max_workgroup_size[2], 64u);
        CAP(info->max_workgroup_invocations, 128u);
        CAP(info->max_storage_buffer_range, 1ull << 27);
        CAP(info->max_memory_allocation_size, 1ull << 30);
        CAP(info->max_buffer_size, 1ull << 30);
        CAP(info->max_push_constants_size, 128u);
        if (info->min_storage_buffer_offset_alignment < 256)
            info->min_storage_buffer_offset_alignment = 256;
        info->subgroup_ops &= VKB_SUBGROUP_BASIC;
        info->subgroup_size_control = false;
        info->subgroup_full = false;
        info->subgroup_size_min = info->subgroup_size_max = info->subgroup_size;
        info->shader_float16 = info->shader_int8 = false;
        info->shader_int16 = info->shader_int64 = false;
        info->storage_16bit = info->storage_8bit = false;
        info->int_dot = false;
        info->int_dot_4x8_signed_accel = info->int_dot_4x8_unsigned_accel = false;
        info->int_dot_4x8_mixed_accel = false;
        info->int_dot_8bit_signed_accel = info->int_dot_8bit_unsigned_accel = false;
        info->coopmat_khr = info->coopmat_nv = info->coopmat_nv_f16 = false;
        info->memory_model = false;
        break;
    }
    info->profile = profile;
}
