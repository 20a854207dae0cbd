/* Loader, instance, validation messages, device enumeration and choice. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkb_internal.h"

#define NO_DEVICE_HELP                                                                             \
    "install your GPU's Vulkan driver (Debian: mesa-vulkan-drivers for AMD, Intel and "            \
    "the CPU, nvidia-driver for NVIDIA) or check VK_DRIVER_FILES / VK_ICD_FILENAMES"

const char *vkb_status_name(vkb_status status)
{
    switch (status) {
    case VKB_OK: return "VKB_OK";
    case VKB_ERR_NO_LOADER: return "VKB_ERR_NO_LOADER";
    case VKB_ERR_NO_DEVICE: return "VKB_ERR_NO_DEVICE";
    case VKB_ERR_INVALID_ARGUMENT: return "VKB_ERR_INVALID_ARGUMENT";
    case VKB_ERR_CONTRACT: return "VKB_ERR_CONTRACT";
    case VKB_ERR_UNSUPPORTED: return "VKB_ERR_UNSUPPORTED";
    case VKB_ERR_OUT_OF_DEVICE_MEMORY: return "VKB_ERR_OUT_OF_DEVICE_MEMORY";
    case VKB_ERR_OUT_OF_HOST_MEMORY: return "VKB_ERR_OUT_OF_HOST_MEMORY";
    case VKB_ERR_DEVICE_LOST: return "VKB_ERR_DEVICE_LOST";
    case VKB_ERR_VULKAN: return "VKB_ERR_VULKAN";
    case VKB_ERR_IO: return "VKB_ERR_IO";
    }
    return "VKB_ERR_UNKNOWN";
}

vkb_status vkb_fail_buf(char *buf, vkb_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, VKB_ERRMSG_SIZE, fmt, ap);
    va_end(ap);
    return status;
}

const char *vkb_result_name(VkResult result)
{
    switch (result) {
#define R(x)                                                                                       \
    case x: return #x;
        // clang-format off
    R(VK_SUCCESS)
    R(VK_NOT_READY)
    R(VK_TIMEOUT)
    R(VK_INCOMPLETE)
    R(VK_ERROR_OUT_OF_HOST_MEMORY)
    R(VK_ERROR_OUT_OF_DEVICE_MEMORY)
    R(VK_ERROR_INITIALIZATION_FAILED)
    R(VK_ERROR_DEVICE_LOST)
    R(VK_ERROR_MEMORY_MAP_FAILED)
    R(VK_ERROR_LAYER_NOT_PRESENT)
    R(VK_ERROR_EXTENSION_NOT_PRESENT)
    R(VK_ERROR_FEATURE_NOT_PRESENT)
    R(VK_ERROR_INCOMPATIBLE_DRIVER)
    R(VK_ERROR_TOO_MANY_OBJECTS)
    R(VK_ERROR_FORMAT_NOT_SUPPORTED)
    R(VK_ERROR_FRAGMENTED_POOL)
    R(VK_ERROR_OUT_OF_POOL_MEMORY)
    R(VK_ERROR_INVALID_EXTERNAL_HANDLE)
    R(VK_ERROR_FRAGMENTATION)
    R(VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS)
    R(VK_PIPELINE_COMPILE_REQUIRED)
    R(VK_ERROR_UNKNOWN)
        // clang-format on
#undef R
    default: return "VkResult(other)";
    }
}

const char *vkb_format_bytes(uint64_t bytes, char *buf, size_t size)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, size, "%.2f %s", v, units[u]);
    return buf;
}

static VKAPI_ATTR VkBool32 VKAPI_CALL on_debug_message(
    VkDebugUtilsMessageSeverityFlagBitsEXT severity, VkDebugUtilsMessageTypeFlagsEXT types,
    const VkDebugUtilsMessengerCallbackDataEXT *data, void *user)
{
    vkb_context *ctx = user;
    (void)types;
    unsigned i = atomic_fetch_add(&ctx->message_count, 1);
    if (i < VKB_KEPT_MESSAGES) {
        const char *level =
            severity >= VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT ? "error" : "warning";
        const char *text = data && data->pMessage ? data->pMessage : "(no text)";
        size_t n = strlen(text) + 16;
        char *m = malloc(n);
        if (m)
            snprintf(m, n, "%s: %s", level, text);
        ctx->messages[i] = m;
    }
    return VK_FALSE;
}

static bool has_layer(const char *name)
{
    uint32_t n = 0;
    if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || n == 0)
        return false;
    VkLayerProperties *props = calloc(n, sizeof *props);
    if (!props)
        return false;
    bool found = false;
    if (vkEnumerateInstanceLayerProperties(&n, props) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++)
            found = strcmp(props[i].layerName, name) == 0;
    free(props);
    return found;
}

static bool has_instance_extension(const char *layer, const char *name)
{
    uint32_t n = 0;
    if (vkEnumerateInstanceExtensionProperties(layer, &n, NULL) != VK_SUCCESS || n == 0)
        return false;
    VkExtensionProperties *props = calloc(n, sizeof *props);
    if (!props)
        return false;
    bool found = false;
    if (vkEnumerateInstanceExtensionProperties(layer, &n, props) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++)
            found = strcmp(props[i].extensionName, name) == 0;
    free(props);
    return found;
}

static vkb_status create_instance(vkb_context *ctx, const vkb_context_config *cfg)
{
    static const char *validation_layer = "VK_LAYER_KHRONOS_validation";
    const char *extensions[4];
    uint32_t n_ext = 0;
    VkInstanceCreateFlags flags = 0;

    if (cfg->validation && !has_layer(validation_layer))
        return vkb_ctx_fail(ctx, VKB_ERR_UNSUPPORTED,
                            "validation asked for, but %s is not installed "
                            "(Debian: apt-get install vulkan-validationlayers)",
                            validation_layer);
    if (cfg->validation)
        extensions[n_ext++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
    bool sync = cfg->validation && cfg->sync_validation &&
                has_instance_extension(validation_layer, VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME);
    if (sync)
        extensions[n_ext++] = VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME;
    if (has_instance_extension(NULL, VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME)) {
        extensions[n_ext++] = VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME;
        flags |= VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR;
    }

    VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "vkllm",
        .pEngineName = "vkllm",
        .apiVersion = ctx->instance_api,
    };
    VkDebugUtilsMessengerCreateInfoEXT messenger_info = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                           VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = on_debug_message,
        .pUserData = ctx,
    };
    VkValidationFeatureEnableEXT enables[] = {
        VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT,
    };
    VkValidationFeaturesEXT features = {
        .sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT,
        .pNext = &messenger_info,
        .enabledValidationFeatureCount = 1,
        .pEnabledValidationFeatures = enables,
    };
    VkInstanceCreateInfo info = {
        .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
        .pNext = cfg->validation ? (sync ? (void *)&features : (void *)&messenger_info) : NULL,
        .flags = flags,
        .pApplicationInfo = &app,
        .enabledLayerCount = cfg->validation ? 1 : 0,
        .ppEnabledLayerNames = &validation_layer,
        .enabledExtensionCount = n_ext,
        .ppEnabledExtensionNames = extensions,
    };
    VkResult r = vkCreateInstance(&info, NULL, &ctx->instance);
    if (r == VK_ERROR_INCOMPATIBLE_DRIVER)
        return vkb_ctx_fail(ctx, VKB_ERR_NO_DEVICE, "no Vulkan driver or device found: %s",
                            NO_DEVICE_HELP);
    if (r != VK_SUCCESS)
        return vkb_ctx_fail(
            ctx, r == VK_ERROR_OUT_OF_HOST_MEMORY ? VKB_ERR_OUT_OF_HOST_MEMORY : VKB_ERR_VULKAN,
            "vkCreateInstance: %s", vkb_result_name(r));
    volkLoadInstanceOnly(ctx->instance);

    if (cfg->validation) {
        r = vkCreateDebugUtilsMessengerEXT(ctx->instance, &messenger_info, NULL, &ctx->messenger);
        if (r != VK_SUCCESS)
            return vkb_ctx_fail(ctx, VKB_ERR_VULKAN, "vkCreateDebugUtilsMessengerEXT: %s",
                                vkb_result_name(r));
    }
    ctx->validation = cfg->validation;
    return VKB_OK;
}

/* Two entries are one physical device when their PCI address matches, or, without
 * one, their device UUIDs do. */
static bool same_device(const vkb_device_info *a, const vkb_device_info *b)
{
    if (a->has_pci && b->has_pci)
        return a->pci_domain == b->pci_domain && a->pci_bus == b->pci_bus &&
               a->pci_device == b->pci_device && a->pci_function == b->pci_function;
    static const uint8_t zero[16];
    return memcmp(a->device_uuid, zero, 16) != 0 && memcmp(a->device_uuid, b->device_uuid, 16) == 0;
}

static void note_alias(vkb_device_info *kept, const char *driver)
{
    size_t len = strlen(kept->also_via);
    snprintf(kept->also_via + len, sizeof kept->also_via - len, "%s%s", len ? ", " : "", driver);
}

static vkb_status enumerate_devices(vkb_context *ctx)
{
    uint32_t n = 0;
    VkResult r = vkEnumeratePhysicalDevices(ctx->instance, &n, NULL);
    if (r == VK_ERROR_INITIALIZATION_FAILED || (r == VK_SUCCESS && n == 0))
        return vkb_ctx_fail(ctx, VKB_ERR_NO_DEVICE, "no Vulkan driver or device found: %s",
                            NO_DEVICE_HELP);
    if (r != VK_SUCCESS)
        return vkb_ctx_fail(ctx, VKB_ERR_VULKAN, "vkEnumeratePhysicalDevices: %s",
                            vkb_result_name(r));
    VkPhysicalDevice *all = calloc(n, sizeof *all);
    ctx->physical = calloc(n, sizeof *ctx->physical);
    ctx->infos = calloc(n, sizeof *ctx->infos);
    if (!all || !ctx->physical || !ctx->infos) {
        free(all);
        return vkb_ctx_fail(ctx, VKB_ERR_OUT_OF_HOST_MEMORY, "out of host memory");
    }
    r = vkEnumeratePhysicalDevices(ctx->instance, &n, all);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
        free(all);
        return vkb_ctx_fail(ctx, VKB_ERR_VULKAN, "vkEnumeratePhysicalDevices: %s",
                            vkb_result_name(r));
    }
    for (uint32_t i = 0; i < n; i++) {
        vkb_device_info info;
        vkb_caps_query(all[i], ctx->instance_api, &info);
        bool duplicate = false;
        for (uint32_t j = 0; j < ctx->device_count && !duplicate; j++) {
            if (!same_device(&ctx->infos[j], &info))
                continue;
            duplicate = true;
            /* keep the driver with the newer API version; remember the other */
            if (info.api_version > ctx->infos[j].api_version) {
                memcpy(info.also_via, ctx->infos[j].also_via, sizeof info.also_via);
                note_alias(&info, ctx->infos[j].driver_name);
                info.index = j;
                ctx->infos[j] = info;
                ctx->physical[j] = all[i];
            } else {
                note_alias(&ctx->infos[j], info.driver_name);
            }
        }
        if (duplicate)
            continue;
        info.index = ctx->device_count;
        ctx->infos[ctx->device_count] = info;
        ctx->physical[ctx->device_count] = all[i];
        ctx->device_count++;
    }
    free(all);
    return VKB_OK;
}

vkb_status vkb_context_create(const vkb_context_config *config, vkb_context **out)
{
    static const vkb_context_config defaults = {0};
    const vkb_context_config *cfg = config ? config : &defaults;
    *out = NULL;
    vkb_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return VKB_ERR_OUT_OF_HOST_MEMORY;
    *out = ctx;
    atomic_init(&ctx->message_count, 0);

    if (volkInitialize() != VK_SUCCESS)
        return vkb_ctx_fail(ctx, VKB_ERR_NO_LOADER,
                            "no Vulkan loader (libvulkan.so.1) found: install it and a driver "
                            "(Debian: apt-get install libvulkan1 mesa-vulkan-drivers)");
    uint32_t loader_api = volkGetInstanceVersion();
    if (loader_api < VK_API_VERSION_1_1)
        return vkb_ctx_fail(ctx, VKB_ERR_UNSUPPORTED,
                            "the Vulkan loader offers API %u.%u; vkllm needs 1.1 or newer",
                            VK_API_VERSION_MAJOR(loader_api), VK_API_VERSION_MINOR(loader_api));
    ctx->instance_api = loader_api < VK_API_VERSION_1_3 ? loader_api : VK_API_VERSION_1_3;

    vkb_status st = create_instance(ctx, cfg);
    if (st != VKB_OK)
        return st;
    return enumerate_devices(ctx);
}

void vkb_context_destroy(vkb_context *ctx)
{
    if (!ctx)
        return;
    if (ctx->messenger)
        vkDestroyDebugUtilsMessengerEXT(ctx->instance, ctx->messenger, NULL);
    if (ctx->instance)
        vkDestroyInstance(ctx->instance, NULL);
    vkb_context_validation_clear(ctx);
    free(ctx->infos);
    free(ctx->physical);
    free(ctx);
}

const char *vkb_context_errmsg(const vkb_context *ctx)
{
    return ctx ? ctx->errmsg : "out of host memory";
}

uint32_t vkb_context_device_count(const vkb_context *ctx)
{
    return ctx->device_count;
}

const vkb_device_info *vkb_context_device_info(const vkb_context *ctx, uint32_t index)
{
    return index < ctx->device_count ? &ctx->infos[index] : NULL;
}

static int type_rank(vkb_device_type t)
{
    switch (t) {
    case VKB_DEVICE_DISCRETE: return 4;
    case VKB_DEVICE_INTEGRATED: return 3;
    case VKB_DEVICE_VIRTUAL: return 2;
    case VKB_DEVICE_CPU: return 1;
    default: return 0;
    }
}

static uint64_t device_local_bytes(const vkb_device_info *info)
{
    uint64_t best = 0;
    for (uint32_t h = 0; h < info->heap_count; h++)
        if (info->heaps[h].device_local && info->heaps[h].size > best)
            best = info->heaps[h].size;
    return best;
}

static bool contains_nocase(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] &&
               tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return true;
    }
    return n == 0;
}

vkb_status vkb_context_select_device(vkb_context *ctx, const char *selector, uint32_t *index)
{
    if (ctx->device_count == 0)
        return vkb_ctx_fail(ctx, VKB_ERR_NO_DEVICE, "no Vulkan driver or device found: %s",
                            NO_DEVICE_HELP);
    if (!selector || !*selector) {
        uint32_t best = 0;
        for (uint32_t i = 1; i < ctx->device_count; i++) {
            const vkb_device_info *a = &ctx->infos[i], *b = &ctx->infos[best];
            int ra = type_rank(a->type), rb = type_rank(b->type);
            if (ra > rb || (ra == rb && device_local_bytes(a) > device_local_bytes(b)))
                best = i;
        }
        *index = best;
        return VKB_OK;
    }
    bool digits = true;
    for (const char *p = selector; *p; p++)
        digits = digits && isdigit((unsigned char)*p);
    if (digits) {
        unsigned long i = strtoul(selector, NULL, 10);
        if (i >= ctx->device_count)
            return vkb_ctx_fail(ctx, VKB_ERR_INVALID_ARGUMENT,
                                "device %lu does not exist: there are %u (see vkllm devices)", i,
                                ctx->device_count);
        *index = (uint32_t)i;
        return VKB_OK;
    }
    for (uint32_t i = 0; i < ctx->device_count; i++) {
        if (contains_nocase(ctx->infos[i].name, selector)) {
            *index = i;
            return VKB_OK;
        }
    }
    return vkb_ctx_fail(ctx, VKB_ERR_INVALID_ARGUMENT,
                        "no device's name contains \"%s\" (see vkllm devices)", selector);
}

uint32_t vkb_context_validation_count(const vkb_context *ctx)
{
    return atomic_load(&ctx->message_count);
}

const char *vkb_context_validation_message(const vkb_context *ctx, uint32_t i)
{
    if (i >= VKB_KEPT_MESSAGES || i >= atomic_load(&ctx->message_count))
        return NULL;
    return ctx->messages[i] ? ctx->messages[i] : "(message lost: out of host memory)";
}

void vkb_context_validation_clear(vkb_context *ctx)
{
    for (uint32_t i = 0; i < VKB_KEPT_MESSAGES; i++) {
        free(ctx->messages[i]);
        ctx->messages[i] = NULL;
    }
    atomic_store(&ctx->message_count, 0);
}
