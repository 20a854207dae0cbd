/* Kernels and their pipelines: the kernel table (each kernel's contract), lazy pipeline
 * creation from embedded SPIR-V with specialization constants. */
#include <stdlib.h>
#include <string.h>

#include "vkb_internal.h"
#include "vkb_spirv.h"

static const struct vkb_spirv_entry *spirv_find(const char *name)
{
    for (size_t i = 0; i < vkb_spirv_table_count; i++)
        if (strcmp(vkb_spirv_table[i].name, name) == 0)
            return &vkb_spirv_table[i];
    return NULL;
}

uint32_t vkb_device_pipeline_count(const vkb_device *dev)
{
    return dev->pipeline_count;
}

const vkb_pipeline_contract *vkb_pipeline_get_contract(const vkb_pipeline *pipe)
{
    return &pipe->contract;
}

/* Whether a workgroup of wg fits in the subgroups the device allows at size sg
 * (maxComputeWorkgroupSubgroups; 0 = not reported). */
static bool subgroups_hold(const vkb_device_info *info, uint32_t wg, uint32_t sg)
{
    return !info->max_compute_workgroup_subgroups ||
           wg <= sg * info->max_compute_workgroup_subgroups;
}

/* The spec with defaults filled in and the profile's subgroup size applied. */
static vkb_spec resolve_spec(const vkb_device *dev, const struct vkb_kernel *k, const vkb_spec *in)
{
    vkb_spec s = {.count = k->spec_count};
    for (uint32_t i = 0; i < k->spec_count; i++)
        s.values[i] = in && i < in->count && in->values[i] ? in->values[i] : k->spec_defaults[i];
    /* a default workgroup size shrinks to what the device allows; an explicit one does not */
    if (!(in && in->count && in->values[0])) {
        uint32_t lim = vkb_max_workgroup_x(&dev->info);
        while (s.values[0] > lim && s.values[0] > 1)
            s.values[0] /= 2;
    }
    s.required_subgroup_size = in ? in->required_subgroup_size : 0;
    /* the mobile profile fixes the subgroup size, as mobile drivers do, where the
     * workgroup fits in the subgroups allowed at that size (lavapipe at subgroups of 4
     * allows 32: 128 invocations, fewer than a 256-invocation kernel's) */
    const vkb_device_info *info = &dev->info;
    if (!s.required_subgroup_size && info->profile == VKB_PROFILE_MOBILE &&
        info->subgroup_size_control && subgroups_hold(info, s.values[0], info->subgroup_size))
        s.required_subgroup_size = info->subgroup_size;
    return s;
}

static vkb_status check_spec(vkb_device *dev, const struct vkb_kernel *k, const vkb_spec *s)
{
    const vkb_device_info *info = &dev->info;
    uint32_t wg = s->values[0];
    if ((k->needs_subgroup_ops & info->subgroup_ops) != k->needs_subgroup_ops)
        return vkb_dev_fail(dev, VKB_ERR_UNSUPPORTED,
                            "kernel %s needs subgroup operations 0x%x; %s (%s profile) offers 0x%x",
                            k->name, k->needs_subgroup_ops, info->name,
                            vkb_profile_name(info->profile), info->subgroup_ops);
    if (k->needs_int_dot && !info->int_dot)
        return vkb_dev_fail(dev, VKB_ERR_UNSUPPORTED,
                            "kernel %s needs integer dot products (VK_KHR_shader_integer_dot_"
                            "product); %s (%s profile) has none",
                            k->name, info->name, vkb_profile_name(info->profile));
    if (k->needs_coopmat_nv && !(info->coopmat_nv_f16 && info->memory_model))
        return vkb_dev_fail(dev, VKB_ERR_UNSUPPORTED,
                            "kernel %s needs VK_NV_cooperative_matrix with 16x16x16 f16 fragments "
                            "and the Vulkan memory model; %s (%s profile) has %s",
                            k->name, info->name, vkb_profile_name(info->profile),
                            !info->coopmat_nv       ? "no NV cooperative matrices"
                            : !info->coopmat_nv_f16 ? "not that shape"
                                                    : "no memory model");
    if (k->needs_float16 && !info->shader_float16)
        return vkb_dev_fail(dev, VKB_ERR_UNSUPPORTED,
                            "kernel %s needs f16 arithmetic (shaderFloat16); %s (%s profile) has "
                            "none",
                            k->name, info->name, vkb_profile_name(info->profile));
    if (k->needs_int64 && !info->shader_int64)
        return vkb_dev_fail(dev, VKB_ERR_UNSUPPORTED,
                            "kernel %s needs 64-bit integers (shaderInt64); %s (%s profile) has "
                            "none",
                            k->name, info->name, vkb_profile_name(info->profile));
    if (wg == 0 || wg > info->max_workgroup_size[0] || wg > info->max_workgroup_invocations)
        return vkb_dev_fail(dev, VKB_ERR_UNSUPPORTED,
                            "kernel %s: workgroup of %u exceeds the device's limit (%u)", k->name,
                            wg, info->max_workgroup_invocations);
    uint64_t shared = k->shared_bytes ? k->shared_bytes(s->values)
                                      : (uint64_t)wg * k->shared_bytes_per_invocation;
    if (shared > info->max_shared_memory)
        return vkb_dev_fail(dev, VKB_ERR_UNSUPPORTED,
                            "kernel %s: %llu bytes of shared memory exceed the device's %u",
                            k->name, (unsigned long long)shared, info->max_shared_memory);
    if (k->binding_count > info->max_storage_buffers)
        return vkb_dev_fail(dev, VKB_ERR_UNSUPPORTED,
                            "kernel %s binds %u storage buffers; %s allows %u per shader stage",
                            k->name, k->binding_count, info->name, info->max_storage_buffers);
    if (k->push_size > info->max_push_constants_size)
        return vkb_dev_fail(dev, VKB_ERR_UNSUPPORTED,
                            "kernel %s: %u bytes of push constants exceed the device's %u", k->name,
                            k->push_size, info->max_push_constants_size);
    uint32_t sg = s->required_subgroup_size;
    if (sg && (!info->subgroup_size_control || sg < info->subgroup_size_min ||
               sg > info->subgroup_size_max || (sg & (sg - 1)) != 0))
        return vkb_dev_fail(dev, VKB_ERR_UNSUPPORTED,
                            "kernel %s: subgroup size %u is not available on %s (%u to %u%s)",
                            k->name, sg, info->name, info->subgroup_size_min,
                            info->subgroup_size_max,
                            info->subgroup_size_control ? "" : ", no size control");
    if (sg && !subgroups_hold(info, wg, sg))
        return vkb_dev_fail(dev, VKB_ERR_UNSUPPORTED,
                            "kernel %s: a workgroup of %u needs more than %u subgroups of %u",
                            k->name, wg, info->max_compute_workgroup_subgroups, sg);
    return VKB_OK;
}

static void destroy_pipeline(vkb_device *dev, struct vkb_pipeline *p)
{
    if (p->pipeline)
        dev->vk.vkDestroyPipeline(dev->device, p->pipeline, NULL);
    if (p->layout)
        dev->vk.vkDestroyPipelineLayout(dev->device, p->layout, NULL);
    if (p->set_layout)
        dev->vk.vkDestroyDescriptorSetLayout(dev->device, p->set_layout, NULL);
    free(p);
}

static vkb_status build_pipeline(vkb_device *dev, struct vkb_pipeline *p,
                                 const struct vkb_spirv_entry *spv)
{
    const struct vkb_kernel *k = p->kernel;
    vkb_status st;
    VkDescriptorSetLayoutBinding b[VKB_MAX_BINDINGS];
    for (uint32_t i = 0; i < k->binding_count; i++)
        b[i] = (VkDescriptorSetLayoutBinding){
            .binding = i,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .descriptorCount = 1,
            .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
        };
    VkDescriptorSetLayoutCreateInfo dsl = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
        .bindingCount = k->binding_count,
        .pBindings = b,
    };
    st = vkb_dev_check(dev,
                       dev->vk.vkCreateDescriptorSetLayout(dev->device, &dsl, NULL, &p->set_layout),
                       "vkCreateDescriptorSetLayout");
    if (st != VKB_OK)
        return st;
    VkPushConstantRange push = {
        .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
        .size = k->push_size,
    };
    VkPipelineLayoutCreateInfo pl = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
        .setLayoutCount = 1,
        .pSetLayouts = &p->set_layout,
        .pushConstantRangeCount = k->push_size ? 1 : 0,
        .pPushConstantRanges = &push,
    };
    st = vkb_dev_check(dev, dev->vk.vkCreatePipelineLayout(dev->device, &pl, NULL, &p->layout),
                       "vkCreatePipelineLayout");
    if (st != VKB_OK)
        return st;

    VkShaderModuleCreateInfo mi = {
        .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
        .codeSize = *spv->size,
        .pCode = spv->words,
    };
    VkShaderModule module;
    st = vkb_dev_check(dev, dev->vk.vkCreateShaderModule(dev->device, &mi, NULL, &module),
                       "vkCreateShaderModule");
    if (st != VKB_OK)
        return st;

    VkSpecializationMapEntry entries[VKB_MAX_SPEC_CONSTANTS];
    for (uint32_t i = 0; i < p->spec.count; i++)
        entries[i] = (VkSpecializationMapEntry){.constantID = i, .offset = 4 * i, .size = 4};
    VkSpecializationInfo spec = {
        .mapEntryCount = p->spec.count,
        .pMapEntries = entries,
        .dataSize = 4 * p->spec.count,
        .pData = p->spec.values,
    };
    VkPipelineShaderStageRequiredSubgroupSizeCreateInfo sg = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_REQUIRED_SUBGROUP_SIZE_CREATE_INFO,
        .requiredSubgroupSize = p->spec.required_subgroup_size,
    };
    VkPipelineShaderStageCreateFlags stage_flags = 0;
    if (p->spec.required_subgroup_size && dev->info.subgroup_full &&
        p->spec.values[0] % p->spec.required_subgroup_size == 0)
        stage_flags |= VK_PIPELINE_SHADER_STAGE_CREATE_REQUIRE_FULL_SUBGROUPS_BIT;
    VkComputePipelineCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage =
            {
                .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                .pNext = p->spec.required_subgroup_size ? &sg : NULL,
                .flags = stage_flags,
                .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                .module = module,
                .pName = "main",
                .pSpecializationInfo = &spec,
            },
        .layout = p->layout,
    };
    VkResult r = dev->vk.vkCreateComputePipelines(dev->device, dev->pipeline_cache, 1, &ci, NULL,
                                                  &p->pipeline);
    dev->vk.vkDestroyShaderModule(dev->device, module, NULL);
    return vkb_dev_check(dev, r, "vkCreateComputePipelines");
}

vkb_status vkb_pipeline_get(vkb_device *dev, const char *name, const vkb_spec *spec,
                            vkb_pipeline **out)
{
    *out = NULL;
    vkb_status st = vkb_dev_alive(dev);
    if (st != VKB_OK)
        return st;
    const struct vkb_kernel *k = name ? vkb_kernel_find(name) : NULL;
    const struct vkb_spirv_entry *spv = name ? spirv_find(name) : NULL;
    if (!k || !spv)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT, "unknown kernel \"%s\"",
                            name ? name : "(null)");
    vkb_spec s = resolve_spec(dev, k, spec);
    for (struct vkb_pipeline *p = dev->pipelines; p; p = p->next) {
        if (p->kernel == k && memcmp(&p->spec, &s, sizeof s) == 0) {
            *out = p;
            return VKB_OK;
        }
    }
    if ((st = check_spec(dev, k, &s)) != VKB_OK)
        return st;

    struct vkb_pipeline *p = calloc(1, sizeof *p);
    if (!p)
        return vkb_dev_fail(dev, VKB_ERR_OUT_OF_HOST_MEMORY, "out of host memory");
    p->kernel = k;
    p->spec = s;
    vkb_pipeline_contract *c = &p->contract;
    c->name = k->name;
    c->binding_count = k->binding_count;
    memcpy(c->binding_writes, k->writes, sizeof c->binding_writes);
    c->push_size = k->push_size;
    c->workgroup_size[0] = s.values[0];
    c->workgroup_size[1] = c->workgroup_size[2] = 1;
    c->elems_per_workgroup[0] = k->group_per_elem  ? 1
                                : k->elems_spec[0] ? s.values[k->elems_spec[0]]
                                                   : s.values[0] * k->elems_per_invocation;
    c->elems_per_workgroup[1] = k->elems_spec[1] ? s.values[k->elems_spec[1]] : 1;
    c->elems_per_workgroup[2] = 1;
    c->flatten_x = k->flatten_x;
    c->required_subgroup_size = s.required_subgroup_size;

    if ((st = build_pipeline(dev, p, spv)) != VKB_OK) {
        destroy_pipeline(dev, p);
        return st;
    }
    p->next = dev->pipelines;
    dev->pipelines = p;
    dev->pipeline_count++;
    *out = p;
    return VKB_OK;
}

void vkb_pipelines_free(vkb_device *dev)
{
    while (dev->pipelines) {
        struct vkb_pipeline *p = dev->pipelines;
        dev->pipelines = p->next;
        destroy_pipeline(dev, p);
    }
    dev->pipeline_count = 0;
}
