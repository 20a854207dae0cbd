/* Device enumeration, the capability record, device choice and profiles. */
#include <string.h>

#include "harness.h"

static bool is_pow2(uint32_t v)
{
    return v && !(v & (v - 1));
}

static void test_enumeration(void)
{
    uint32_t n = vkb_context_device_count(t_ctx);
    CHECK(n >= 1);
    for (uint32_t i = 0; i < n; i++) {
        const vkb_device_info *d = vkb_context_device_info(t_ctx, i);
        CHECK(d != NULL);
        CHECK(d->index == i);
        CHECK(d->name[0] != '\0');
        CHECK(d->driver_name[0] != '\0');
        CHECK(d->vendor_name != NULL);
        CHECK(d->api_version >= ((1u << 22) | (1u << 12))); /* ≥ 1.1 */
        CHECK(d->profile == VKB_PROFILE_NATIVE);
        CHECK(d->heap_count >= 1 && d->heap_count <= VKB_MAX_HEAPS);
        CHECK(d->memory_type_count >= 1);
        for (uint32_t h = 0; h < d->heap_count; h++) {
            CHECK(d->heaps[h].size > 0);
            CHECK(d->heaps[h].budget > 0);
            CHECK(d->heaps[h].budget <= d->heaps[h].size);
        }
        for (uint32_t t = 0; t < d->memory_type_count; t++)
            CHECK(d->memory_types[t].heap < d->heap_count);
        /* subgroups: the kernels support 4 to 128; a driver may report 1 on odd hardware */
        CHECK(is_pow2(d->subgroup_size) && d->subgroup_size <= 128);
        CHECK(d->subgroup_size_min <= d->subgroup_size && d->subgroup_size <= d->subgroup_size_max);
        /* Vulkan 1.1 requires basic subgroup operations in compute */
        CHECK(d->subgroup_ops & VKB_SUBGROUP_BASIC);
        /* required minimum limits (Vulkan 1.2, table 53) */
        CHECK(d->max_shared_memory >= 16384);
        CHECK(d->max_workgroup_invocations >= 128);
        CHECK(d->max_workgroup_size[0] >= 128);
        CHECK(d->max_workgroup_count[0] >= 65535);
        CHECK(d->max_storage_buffer_range >= (1u << 27));
        CHECK(d->max_memory_allocation_size >= (1u << 30));
        CHECK(d->max_push_constants_size >= 128);
        CHECK(d->max_storage_buffers >= VKB_MAX_BINDINGS);
        CHECK(is_pow2((uint32_t)d->min_storage_buffer_offset_alignment));
        CHECK(d->min_storage_buffer_offset_alignment <= 256);
        if (d->timestamp_valid_bits)
            CHECK(d->timestamp_period > 0);
        /* accelerated dot products imply dot products */
        if (d->int_dot_4x8_signed_accel)
            CHECK(d->int_dot);
        /* each physical device appears once */
        for (uint32_t j = 0; j < i; j++) {
            const vkb_device_info *e = vkb_context_device_info(t_ctx, j);
            CHECK(memcmp(d->device_uuid, e->device_uuid, 16) != 0 ||
                  strcmp(d->driver_name, e->driver_name) != 0);
        }
    }
    CHECK(vkb_context_device_info(t_ctx, n) == NULL);
}

static void test_selection(void)
{
    uint32_t n = vkb_context_device_count(t_ctx), idx = 99;
    CHECK_OK(vkb_context_select_device(t_ctx, NULL, &idx));
    CHECK(idx < n);
    /* the default is the best kind: nothing ranks above it */
    const vkb_device_info *best = vkb_context_device_info(t_ctx, idx);
    for (uint32_t i = 0; i < n; i++) {
        const vkb_device_info *d = vkb_context_device_info(t_ctx, i);
        if (best->type == VKB_DEVICE_CPU)
            CHECK(d->type == VKB_DEVICE_CPU || d->type == VKB_DEVICE_OTHER);
        if (d->type == VKB_DEVICE_DISCRETE)
            CHECK(best->type == VKB_DEVICE_DISCRETE);
    }
    CHECK_OK(vkb_context_select_device(t_ctx, "0", &idx));
    CHECK(idx == 0);
    /* a name substring, in another case */
    const vkb_device_info *d0 = vkb_context_device_info(t_ctx, 0);
    char part[8] = {0};
    for (int i = 0; i < 3 && d0->name[i]; i++)
        part[i] = (char)(d0->name[i] >= 'a' && d0->name[i] <= 'z' ? d0->name[i] - 32 : d0->name[i]);
    CHECK_OK(vkb_context_select_device(t_ctx, part, &idx));
    /* the chosen device's name holds the part, ignoring case */
    char lower[256];
    const char *chosen = vkb_context_device_info(t_ctx, idx)->name;
    size_t k = 0;
    for (; chosen[k] && k + 1 < sizeof lower; k++)
        lower[k] = (char)(chosen[k] >= 'A' && chosen[k] <= 'Z' ? chosen[k] + 32 : chosen[k]);
    lower[k] = '\0';
    for (int i = 0; part[i]; i++)
        part[i] = (char)(part[i] >= 'A' && part[i] <= 'Z' ? part[i] + 32 : part[i]);
    CHECK_MSG(strstr(lower, part) != NULL, "selected \"%s\" for \"%s\"", chosen, part);
    CHECK(vkb_context_select_device(t_ctx, "no-such-gpu-xyz", &idx) == VKB_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vkb_context_errmsg(t_ctx), "no-such-gpu-xyz") != NULL);
    CHECK(vkb_context_select_device(t_ctx, "4096", &idx) == VKB_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vkb_context_errmsg(t_ctx), "4096") != NULL);
}

static void test_profiles(void)
{
    vkb_profile p;
    CHECK(vkb_profile_parse("mobile", &p) && p == VKB_PROFILE_MOBILE);
    CHECK(vkb_profile_parse("minimal", &p) && p == VKB_PROFILE_MINIMAL);
    CHECK(vkb_profile_parse("native", &p) && p == VKB_PROFILE_NATIVE);
    CHECK(!vkb_profile_parse("fast", &p));
    CHECK(!vkb_profile_parse(NULL, &p));

    const vkb_device_info *native = vkb_context_device_info(t_ctx, 0);
    vkb_device_info same = *native;
    vkb_device_info_apply_profile(&same, VKB_PROFILE_NATIVE);
    CHECK(memcmp(&same, native, sizeof same) == 0);

    vkb_device_info m = *native;
    vkb_device_info_apply_profile(&m, VKB_PROFILE_MOBILE);
    CHECK(m.profile == VKB_PROFILE_MOBILE);
    CHECK(m.max_shared_memory <= 16384);
    CHECK(m.max_storage_buffer_range <= (128u << 20));
    CHECK(m.max_memory_allocation_size <= (256u << 20));
    CHECK(!m.shader_float16 && !m.shader_int8 && !m.int_dot && !m.int_dot_4x8_signed_accel);
    CHECK(!m.coopmat_khr && !m.coopmat_nv && !m.coopmat_nv_f16);
    if (native->subgroup_size_control && native->subgroup_size_min <= 16 &&
        native->subgroup_size_max >= 16)
        CHECK(m.subgroup_size == 16);
    else
        CHECK(m.subgroup_size == native->subgroup_size);

    vkb_device_info z = *native;
    vkb_device_info_apply_profile(&z, VKB_PROFILE_MINIMAL);
    CHECK(z.max_shared_memory == 16384 || z.max_shared_memory == native->max_shared_memory);
    CHECK(z.max_shared_memory <= 16384);
    CHECK(z.max_workgroup_invocations <= 128);
    CHECK(z.max_storage_buffer_range <= (1u << 27));
    CHECK(z.max_push_constants_size <= 128);
    CHECK(z.subgroup_ops == VKB_SUBGROUP_BASIC);
    CHECK(!z.subgroup_size_control && !z.shader_float16 && !z.storage_16bit && !z.int_dot);
    CHECK(!z.coopmat_nv && !z.coopmat_nv_f16 && !z.memory_model);
    /* profiles never raise a capability */
    CHECK(z.max_workgroup_count[0] <= native->max_workgroup_count[0]);
    CHECK(m.max_storage_buffer_range <= native->max_storage_buffer_range);
}

static void test_opened_device(void)
{
    const vkb_device_info *d = vkb_device_get_info(t_dev);
    CHECK(d->profile == t_profile);
    CHECK(!vkb_device_is_lost(t_dev));
    CHECK(vkb_device_pipeline_count(t_dev) == 0); /* pipelines are created lazily */
    vkb_memory_stats ms;
    CHECK_OK(vkb_device_memory_stats(t_dev, &ms));
    CHECK(ms.heap_count == d->heap_count);
    /* the staging ring is the only memory held right after opening */
    CHECK(ms.by_purpose[VKB_PURPOSE_STAGING] > 0);
    CHECK(ms.by_purpose[VKB_PURPOSE_WEIGHTS] == 0 && ms.by_purpose[VKB_PURPOSE_KV] == 0);
    for (uint32_t h = 0; h < ms.heap_count; h++) {
        CHECK(ms.heaps[h].budget_from_driver == d->memory_budget);
        CHECK(ms.heaps[h].budget > 0);
    }
}

static void test_open_errors(void)
{
    vkb_device *dev = NULL;
    vkb_device_config bad = {.index = 1000};
    CHECK(vkb_device_open(t_ctx, &bad, &dev) == VKB_ERR_INVALID_ARGUMENT);
    CHECK(dev && strstr(vkb_device_errmsg(dev), "1000") != NULL);
    vkb_device_close(dev);
    vkb_device_close(NULL);
    vkb_context_destroy(NULL);
    CHECK(strcmp(vkb_status_name(VKB_ERR_CONTRACT), "VKB_ERR_CONTRACT") == 0);
}

int main(int argc, char **argv)
{
    static const t_case cases[] = {
        {"enumeration", test_enumeration, true}, {"selection", test_selection, true},
        {"profiles", test_profiles, true},       {"opened_device", test_opened_device, true},
        {"open_errors", test_open_errors, true},
    };
    return t_main(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
}
