/* vkb: the Vulkan backend.
 *
 * Owns everything Vulkan: the loader (opened at run time through volk), the instance,
 * device choice and capabilities, memory arenas, pipelines built from embedded SPIR-V,
 * command streams and GPU timestamps. Nothing in this header names a Vulkan type, so
 * engine/ and tools/ use the GPU without including Vulkan headers (DESIGN.md).
 *
 * Ownership is a tree: context → devices → arenas → buffers, device → pipelines,
 * device → streams. Every fallible call returns a vkb_status; the message explaining a
 * failure is kept on the object the call was made on (vkb_context_errmsg,
 * vkb_device_errmsg) until the next failing call there. Destroy functions accept NULL.
 *
 * Thread safety: a context and everything under it are used from one thread at a time,
 * except the counters copied out by vkb_device_memory_stats, which are safe to read
 * from any thread.
 */
#ifndef VKB_H
#define VKB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum vkb_status {
    VKB_OK = 0,
    VKB_ERR_NO_LOADER,        /* libvulkan.so.1 could not be opened */
    VKB_ERR_NO_DEVICE,        /* no Vulkan driver, or it offers no device */
    VKB_ERR_INVALID_ARGUMENT, /* a caller passed something out of range */
    VKB_ERR_CONTRACT,         /* a dispatch broke its pipeline's contract */
    VKB_ERR_UNSUPPORTED,      /* the device (or its profile) lacks a capability */
    VKB_ERR_OUT_OF_DEVICE_MEMORY,
    VKB_ERR_OUT_OF_HOST_MEMORY,
    VKB_ERR_DEVICE_LOST, /* the device is gone; every later call fails fast */
    VKB_ERR_VULKAN,      /* any other Vulkan error; the message names the call */
    VKB_ERR_IO,          /* a file could not be read or written */
} vkb_status;

/* Upper-case name of a status ("VKB_ERR_CONTRACT"); never NULL. */
const char *vkb_status_name(vkb_status status);

/* ---- capability record -------------------------------------------------------------- */

typedef enum vkb_device_type {
    VKB_DEVICE_OTHER = 0,
    VKB_DEVICE_INTEGRATED,
    VKB_DEVICE_DISCRETE,
    VKB_DEVICE_VIRTUAL,
    VKB_DEVICE_CPU,
} vkb_device_type;

/* Subgroup operations, bit for bit the same as VkSubgroupFeatureFlagBits. */
enum {
    VKB_SUBGROUP_BASIC = 1u << 0,
    VKB_SUBGROUP_VOTE = 1u << 1,
    VKB_SUBGROUP_ARITHMETIC = 1u << 2,
    VKB_SUBGROUP_BALLOT = 1u << 3,
    VKB_SUBGROUP_SHUFFLE = 1u << 4,
    VKB_SUBGROUP_SHUFFLE_RELATIVE = 1u << 5,
    VKB_SUBGROUP_CLUSTERED = 1u << 6,
    VKB_SUBGROUP_QUAD = 1u << 7,
};

/* Memory property flags, bit for bit the same as VkMemoryPropertyFlagBits. */
enum {
    VKB_MEMORY_DEVICE_LOCAL = 1u << 0,
    VKB_MEMORY_HOST_VISIBLE = 1u << 1,
    VKB_MEMORY_HOST_COHERENT = 1u << 2,
    VKB_MEMORY_HOST_CACHED = 1u << 3,
};

typedef enum vkb_profile {
    VKB_PROFILE_NATIVE = 0, /* what the driver reports */
    VKB_PROFILE_MOBILE,     /* a typical phone GPU: 16 KiB shared memory, 128 MiB binding
                               range, 256 MiB allocations, no fp16/int8 arithmetic, no
                               integer dot product or cooperative matrix, subgroup 16 */
    VKB_PROFILE_MINIMAL,    /* only what the Vulkan 1.2 specification guarantees */
    VKB_PROFILE_COUNT
} vkb_profile;

#define VKB_MAX_HEAPS        16
#define VKB_MAX_MEMORY_TYPES 32

typedef struct vkb_heap_info {
    uint64_t size; /* bytes */
    bool device_local;
    uint64_t budget; /* bytes this process may use; from VK_EXT_memory_budget, else size */
    uint64_t usage;  /* bytes in use by this process (driver's view, when reported) */
} vkb_heap_info;

typedef struct vkb_memory_type_info {
    uint32_t heap;
    uint32_t flags; /* VKB_MEMORY_* */
} vkb_memory_type_info;

/* Everything the backend and the kernels' variant choice depend on, for one physical
 * device. A profile caps these values (vkb_device_info_apply_profile). */
typedef struct vkb_device_info {
    uint32_t index; /* position in vkb_context's list */
    char name[256];
    uint32_t vendor_id, device_id;
    const char *vendor_name; /* "NVIDIA", "AMD", ... or "unknown"; static storage */
    vkb_device_type type;
    uint32_t driver_id; /* VkDriverId, 0 when not reported */
    char driver_name[256];
    char driver_info[256];
    uint32_t api_version;    /* VK_MAKE_API_VERSION encoding */
    uint32_t driver_version; /* vendor-specific encoding */
    uint8_t device_uuid[16];
    uint8_t driver_uuid[16];
    uint8_t pipeline_cache_uuid[16];
    bool has_pci;
    uint32_t pci_domain, pci_bus, pci_device, pci_function;
    char also_via[256];  /* other drivers exposing the same device, comma-separated */
    vkb_profile profile; /* the profile applied to this record */

    /* subgroups */
    uint32_t subgroup_size;                        /* default size in compute shaders */
    uint32_t subgroup_size_min, subgroup_size_max; /* VK_EXT_subgroup_size_control */
    bool subgroup_size_control;                    /* a pipeline may require a size in [min, max] */
    bool subgroup_full;                            /* computeFullSubgroups */
    uint32_t max_compute_workgroup_subgroups;
    uint32_t subgroup_ops; /* VKB_SUBGROUP_*, 0 when compute lacks subgroups */

    /* arithmetic and storage */
    bool shader_float16, shader_int8, shader_int16, shader_int64;
    bool storage_16bit, storage_8bit;

    /* integer dot product: supported, and which forms run accelerated */
    bool int_dot;
    bool int_dot_4x8_signed_accel, int_dot_4x8_unsigned_accel, int_dot_4x8_mixed_accel;
    bool int_dot_8bit_signed_accel, int_dot_8bit_unsigned_accel;

    /* cooperative matrices */
    bool coopmat_khr, coopmat_nv;
    bool coopmat_nv_f16; /* NV lists 16x16x16 f16 x f16 + f32 at subgroup scope */
    bool memory_model;   /* vulkanMemoryModel (the NV cooperative-matrix kernels need it) */

    /* memory */
    uint32_t heap_count;
    vkb_heap_info heaps[VKB_MAX_HEAPS];
    uint32_t memory_type_count;
    vkb_memory_type_info memory_types[VKB_MAX_MEMORY_TYPES];
    bool memory_budget; /* VK_EXT_memory_budget present */

    /* limits the kernels depend on */
    uint32_t max_shared_memory; /* maxComputeSharedMemorySize, bytes */
    uint32_t max_workgroup_size[3];
    uint32_t max_workgroup_invocations;
    uint32_t max_workgroup_count[3];
    uint64_t max_storage_buffer_range;   /* bytes */
    uint64_t max_memory_allocation_size; /* bytes */
    uint64_t max_buffer_size;            /* bytes (maxBufferSize, or allocation size) */
    uint32_t max_push_constants_size;    /* bytes */
    /* maxPerStageDescriptorStorageBuffers: the weight products bind up to 9 (Vulkan
     * promises 4; every desktop and mobile driver in use allows 24 or more). The profiles
     * keep the device's count: a device with fewer could run no product at all. */
    uint32_t max_storage_buffers;
    uint64_t min_storage_buffer_offset_alignment;
    float timestamp_period;        /* nanoseconds per tick */
    uint32_t timestamp_valid_bits; /* of the compute queue, 0 = no timestamps */
} vkb_device_info;

const char *vkb_device_type_name(vkb_device_type type); /* "discrete", ... */
const char *vkb_profile_name(vkb_profile profile);      /* "native", "mobile", "minimal" */

/* Parses "native", "mobile" or "minimal". Returns false for anything else. */
bool vkb_profile_parse(const char *name, vkb_profile *out);

/* Caps `info` to what `profile` allows, in place. Applying VKB_PROFILE_NATIVE changes
 * nothing; profiles only lower capabilities, never raise them. */
void vkb_device_info_apply_profile(vkb_device_info *info, vkb_profile profile);

/* ---- context ------------------------------------------------------------------------- */

typedef struct vkb_context vkb_context;

typedef struct vkb_context_config {
    bool validation;      /* enable VK_LAYER_KHRONOS_validation and collect its messages */
    bool sync_validation; /* also enable its synchronization checks (needs validation) */
} vkb_context_config;

/* Loads Vulkan, creates an instance and enumerates the devices.
 * *out is set whenever memory allows, even on failure, so the caller can read
 * vkb_context_errmsg and must call vkb_context_destroy. Returns VKB_ERR_NO_LOADER when
 * libvulkan is missing, VKB_ERR_NO_DEVICE when no driver offers a device,
 * VKB_ERR_UNSUPPORTED when validation was asked for but the layer is not installed. */
vkb_status vkb_context_create(const vkb_context_config *config, vkb_context **out);
void vkb_context_destroy(vkb_context *ctx);

/* The last failure's message on this context; "" when none. Owned by the context. */
const char *vkb_context_errmsg(const vkb_context *ctx);

/* Devices, deduplicated (one entry per physical device even when two drivers expose it)
 * and in the driver's order. Records are owned by the context. */
uint32_t vkb_context_device_count(const vkb_context *ctx);
const vkb_device_info *vkb_context_device_info(const vkb_context *ctx, uint32_t index);

/* Chooses a device: NULL or "" picks the best kind (discrete, integrated, virtual, CPU;
 * then the largest device-local heap); all digits picks that index; anything else
 * picks the first device whose name contains it (case-insensitive). */
vkb_status vkb_context_select_device(vkb_context *ctx, const char *selector, uint32_t *index);

/* Validation messages collected since creation or the last clear (only with validation
 * on). The count includes messages beyond those kept; text is owned by the context. */
uint32_t vkb_context_validation_count(const vkb_context *ctx);
const char *vkb_context_validation_message(const vkb_context *ctx, uint32_t i);
void vkb_context_validation_clear(vkb_context *ctx);

/* ---- device -------------------------------------------------------------------------- */

typedef struct vkb_device vkb_device;

typedef struct vkb_device_config {
    uint32_t index; /* from vkb_context_select_device */
    vkb_profile profile;
    const char *pipeline_cache_dir; /* folder for the on-disk pipeline cache, NULL = none */
    uint64_t staging_bytes;         /* staging ring size, 0 = default (64 MiB) */
} vkb_device_config;

/* Opens a logical device with one compute queue. The device must not outlive ctx.
 * *out is set whenever memory allows (read vkb_device_errmsg on failure, then close). */
vkb_status vkb_device_open(vkb_context *ctx, const vkb_device_config *config, vkb_device **out);

/* Waits for the device, saves the pipeline cache, frees everything the device owns
 * (arenas, streams, pipelines). Accepts NULL. */
void vkb_device_close(vkb_device *dev);

const char *vkb_device_errmsg(const vkb_device *dev);

/* The capability record with the device's profile applied. Owned by the device. */
const vkb_device_info *vkb_device_get_info(const vkb_device *dev);

/* True once the driver reported VK_ERROR_DEVICE_LOST; every call then fails fast. */
bool vkb_device_is_lost(const vkb_device *dev);

/* ---- memory -------------------------------------------------------------------------- */

typedef enum vkb_purpose {
    VKB_PURPOSE_WEIGHTS = 0, /* lives as long as the model */
    VKB_PURPOSE_KV,          /* lives as long as a session */
    VKB_PURPOSE_SCRATCH,     /* reset every step */
    VKB_PURPOSE_STAGING,     /* host-visible transfer memory */
    VKB_PURPOSE_COUNT
} vkb_purpose;

const char *vkb_purpose_name(vkb_purpose purpose); /* "weights", "kv", ... */

typedef struct vkb_memory_stats {
    uint32_t heap_count;
    struct {
        uint64_t size;
        uint64_t budget;         /* bytes */
        uint64_t usage;          /* driver-reported, or equal to `allocated` */
        uint64_t allocated;      /* bytes vkllm holds on this heap */
        bool budget_from_driver; /* VK_EXT_memory_budget, else vkllm's own accounting */
    } heaps[VKB_MAX_HEAPS];
    uint64_t by_purpose[VKB_PURPOSE_COUNT]; /* bytes of device memory held */
    uint64_t peak_allocated;                /* bytes, all heaps, since open */
} vkb_memory_stats;

/* Copies the current counters; refreshes the driver's budget when it has one. */
vkb_status vkb_device_memory_stats(vkb_device *dev, vkb_memory_stats *out);

/* Starts peak_allocated again from what is held now (to measure one piece of work). */
void vkb_device_memory_reset_peak(vkb_device *dev);

typedef struct vkb_arena vkb_arena;
typedef struct vkb_buffer vkb_buffer;

/* An arena holds device memory of one lifetime class in blocks of `block_bytes`
 * (0 = default: 256 MiB, capped by the device's allocation limit); buffers are
 * sub-allocated by offset. Staging arenas are host-visible, others device-local. */
vkb_status vkb_arena_create(vkb_device *dev, vkb_purpose purpose, uint64_t block_bytes,
                            vkb_arena **out);

/* Says the arena will be asked for about `bytes` in all (the buffers' sizes plus 256 per
 * buffer for alignment). A new block then holds no more than what is still to come, so
 * the last block ends near that total instead of up to a whole block past it (a 620 MiB
 * model took 768 MiB in 256 MiB blocks). Blocks stay large enough for what is placed in
 * them; asking for more than `bytes` still works, in blocks of just that size. */
void vkb_arena_expect(vkb_arena *arena, uint64_t bytes);

/* Frees the arena's blocks and invalidates its buffers. Accepts NULL. The caller must
 * make sure no submitted stream still uses them. */
void vkb_arena_destroy(vkb_arena *arena);

/* Forgets every buffer but keeps the blocks, for per-step scratch. */
void vkb_arena_reset(vkb_arena *arena);

/* Bytes of device memory the arena holds, and bytes handed out to buffers. */
uint64_t vkb_arena_capacity(const vkb_arena *arena);
uint64_t vkb_arena_used(const vkb_arena *arena);

/* Allocates `size` bytes. A buffer larger than one binding may hold
 * (maxStorageBufferRange, maxMemoryAllocationSize) is split into parts, each a multiple
 * of `granule` bytes (0 = 256) except the last, so a row of a matrix never straddles two
 * parts when granule is the row size. Returns VKB_ERR_OUT_OF_DEVICE_MEMORY with a message
 * naming the request, the heap and its budget when it does not fit. The buffer belongs to
 * the arena and lives until the arena is reset or destroyed. */
vkb_status vkb_buffer_alloc(vkb_arena *arena, uint64_t size, uint64_t granule, vkb_buffer **out);

uint64_t vkb_buffer_size(const vkb_buffer *buf);
uint32_t vkb_buffer_part_count(const vkb_buffer *buf);
/* Byte offset and size of part i within the buffer. */
void vkb_buffer_part(const vkb_buffer *buf, uint32_t i, uint64_t *offset, uint64_t *size);

/* The buffer's bytes in host memory, for buffers of a staging arena (host-visible and
 * coherent) that are one part; NULL otherwise. Kernels may bind such buffers directly:
 * the host writes inputs before vkb_stream_submit and reads outputs after
 * vkb_stream_wait, with no copy of their own. */
void *vkb_buffer_map(const vkb_buffer *buf);

/* Copies host memory into the buffer (upload) or out of it (download) through the
 * device's staging ring, in chunks; any size. Waits until the copy is complete. */
vkb_status vkb_buffer_upload(vkb_device *dev, vkb_buffer *dst, uint64_t dst_offset, const void *src,
                             uint64_t size);
vkb_status vkb_buffer_download(vkb_device *dev, const vkb_buffer *src, uint64_t src_offset,
                               void *dst, uint64_t size);

/* ---- pipelines ----------------------------------------------------------------------- */

typedef struct vkb_pipeline vkb_pipeline;

#define VKB_MAX_BINDINGS       9
#define VKB_MAX_SPEC_CONSTANTS 8

/* A kernel's contract, fixed by the kernel's descriptor in backend/. */
typedef struct vkb_pipeline_contract {
    const char *name; /* SPIR-V variant name */
    uint32_t binding_count;
    bool binding_writes[VKB_MAX_BINDINGS];
    uint32_t push_size;              /* bytes of push constants a dispatch must pass */
    uint32_t workgroup_size[3];      /* after specialization */
    uint32_t elems_per_workgroup[3]; /* elements one workgroup covers in x, y, z */
    bool flatten_x;                  /* x may be folded into y when it exceeds the group limit */
    uint32_t required_subgroup_size; /* 0 = driver's choice */
} vkb_pipeline_contract;

/* Specialization values for a kernel; constant_id i gets values[i] for i < count.
 * constant_id 0 is the workgroup's x size in every kernel; 0 values take the kernel's
 * default. */
typedef struct vkb_spec {
    uint32_t count;
    uint32_t values[VKB_MAX_SPEC_CONSTANTS];
    uint32_t required_subgroup_size; /* 0 = any; else needs subgroup size control */
} vkb_spec;

/* Returns the pipeline for kernel `name` with `spec` (NULL = defaults), creating it on
 * first use (and caching it on the device and, when configured, on disk).
 * VKB_ERR_INVALID_ARGUMENT for an unknown kernel, VKB_ERR_UNSUPPORTED when the spec
 * asks for more than the device (under its profile) offers. Owned by the device. */
vkb_status vkb_pipeline_get(vkb_device *dev, const char *name, const vkb_spec *spec,
                            vkb_pipeline **out);

const vkb_pipeline_contract *vkb_pipeline_get_contract(const vkb_pipeline *pipe);

/* Number of pipelines created so far on the device (for tests of lazy creation). */
uint32_t vkb_device_pipeline_count(const vkb_device *dev);

/* ---- command streams ----------------------------------------------------------------- */

typedef struct vkb_stream vkb_stream;

/* A byte range of a buffer bound to one binding; size 0 means "to the end of the part
 * that holds offset". The range must lie inside one part of the buffer. */
typedef struct vkb_binding {
    const vkb_buffer *buffer;
    uint64_t offset;
    uint64_t size;
} vkb_binding;

typedef struct vkb_timing {
    const char *label; /* as given to the dispatch; owned by the stream */
    double ms;         /* GPU time between the end of the previous command and this one's */
} vkb_timing;

/* A stream records many dispatches and copies into one command buffer with the barriers
 * they need, submits once and waits once. `max_timings` named timestamps per recording
 * (0 = no timestamps). */
vkb_status vkb_stream_create(vkb_device *dev, uint32_t max_timings, vkb_stream **out);
void vkb_stream_destroy(vkb_stream *s);

/* Starts a new recording; the previous one must have completed (vkb_stream_wait). */
vkb_status vkb_stream_begin(vkb_stream *s);

/* Records a dispatch covering `elems` elements in x, y, z (grid sizes derive from the
 * contract's elements per workgroup). Refuses with VKB_ERR_CONTRACT, recording nothing,
 * a call that breaks the contract: wrong binding count or push size, a range outside
 * the buffer or across parts, misaligned offsets, a range beyond maxStorageBufferRange,
 * or more workgroups than the device allows. A barrier is recorded first when a binding
 * overlaps a range written by an earlier command. `label` names the dispatch's timing
 * (NULL = the kernel's name). */
vkb_status vkb_stream_dispatch(vkb_stream *s, vkb_pipeline *pipe, const vkb_binding *bindings,
                               uint32_t binding_count, const void *push, uint32_t push_size,
                               const uint64_t elems[3], const char *label);

/* Records a buffer-to-buffer copy (with barriers as for dispatches). */
vkb_status vkb_stream_copy(vkb_stream *s, const vkb_buffer *src, uint64_t src_offset,
                           const vkb_buffer *dst, uint64_t dst_offset, uint64_t size);

/* Ends the recording and submits it. Called again after vkb_stream_wait with no
 * vkb_stream_begin between, it submits the same commands again: a recording whose ops read
 * what changes between submissions from buffers (positions: VKB_AT_POS) serves them all. */
vkb_status vkb_stream_submit(vkb_stream *s);

/* Waits for the submitted recording and collects its timings. */
vkb_status vkb_stream_wait(vkb_stream *s);

/* Timings of the last completed recording, in dispatch order; 0 when timestamps are
 * off or the queue has none. */
uint32_t vkb_stream_timing_count(const vkb_stream *s);
vkb_timing vkb_stream_timing(const vkb_stream *s, uint32_t i);

/* Timed commands recorded so far in the current recording: the index the next one's
 * timing will have (benchmarks group timings by it). */
uint32_t vkb_stream_recorded_timings(const vkb_stream *s);

/* GPU time in milliseconds from the recording's start to its last timed command. */
double vkb_stream_total_ms(const vkb_stream *s);

#ifdef __cplusplus
}
#endif

#endif /* VKB_H */
