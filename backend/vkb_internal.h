/* Private to backend/: the structures behind vkb.h's handles. */
#ifndef VKB_INTERNAL_H
#define VKB_INTERNAL_H

#include <stdarg.h>
#include <stdatomic.h>

#include <volk.h>

#include "vkb.h"
#include "vkb_compat.h"
#include "vkb_ops.h"

#define VKB_ERRMSG_SIZE   1024
#define VKB_KEPT_MESSAGES 64

struct vkb_context {
    VkInstance instance;
    uint32_t instance_api;
    bool validation;
    VkDebugUtilsMessengerEXT messenger;
    uint32_t device_count;
    vkb_device_info *infos;     /* (device_count) */
    VkPhysicalDevice *physical; /* (device_count) */
    atomic_uint message_count;
    char *messages[VKB_KEPT_MESSAGES];
    char errmsg[VKB_ERRMSG_SIZE];
};

/* A kernel's fixed description: what its SPIR-V expects. The table is in vkb_kernels.c. */
struct vkb_kernel {
    const char *name; /* SPIR-V variant name */
    uint32_t binding_count;
    bool writes[VKB_MAX_BINDINGS]; /* bindings the kernel writes (others read-only) */
    uint32_t push_size;
    uint32_t spec_count; /* constant_id 0 is local_size_x */
    uint32_t spec_defaults[VKB_MAX_SPEC_CONSTANTS];
    /* Elements one workgroup covers: in x, workgroup size × elems_per_invocation, or
     * the spec constant elems_spec[0] names (0 = none), or 1 when group_per_elem (one
     * workgroup per row); in y, the spec constant elems_spec[1] names, else 1. */
    uint32_t elems_per_invocation;
    uint8_t elems_spec[2];
    bool group_per_elem;
    bool flatten_x;              /* kernel folds gl_WorkGroupID.y into its x index */
    uint32_t needs_subgroup_ops; /* VKB_SUBGROUP_* the kernel uses */
    bool needs_int_dot;          /* OpSDot on packed 4x8-bit integers */
    bool needs_float16;          /* f16 arithmetic (shaderFloat16) */
    bool needs_int64;            /* 64-bit integers (shaderInt64) */
    bool needs_coopmat_nv; /* NV cooperative matrices of vkb_device_info.coopmat_nv_f16's shape
                            * and the Vulkan memory model */
    uint32_t shared_bytes_per_invocation;           /* shared memory the kernel declares ... */
    uint64_t (*shared_bytes)(const uint32_t *spec); /* ... or this, when it is not per invocation */
};

const struct vkb_kernel *vkb_kernel_find(const char *name);

/* For the kernels on cooperative matrices (matmul_coopmat.comp, attention_coopmat.comp):
 * false unless vkb_op_matmul_coopmat says they run now; else *spec gets a workgroup of
 * `subgroups` subgroups of the device's size (pinned where the device can pin it: the
 * tiles need exactly that many) and *suffix the variant ("coopmat" or "coopmat_emu"). */
bool vkb_coopmat_spec(const vkb_device *dev, uint32_t subgroups, vkb_spec *spec,
                      const char **suffix);

/* Shared memory of matvec.comp with NORM (the most it takes): red[(ROWS + 1) x NCOLS x
 * workgroup] floats, and when STAGED the stage, ROWS x (a chunk of at most 32 bytes per
 * invocation + 8) bytes. vkb_op_matvec_plan's choice uses it, so a plan fits with and
 * without NORM. */
uint64_t vkb_matvec_shared_bytes(uint32_t wg, uint32_t rows, uint32_t ncols, bool staged);

struct vkb_pipeline {
    const struct vkb_kernel *kernel;
    vkb_spec spec;
    vkb_pipeline_contract contract;
    VkDescriptorSetLayout set_layout;
    VkPipelineLayout layout;
    VkPipeline pipeline;
    struct vkb_pipeline *next;
};

/* One VkDeviceMemory with one VkBuffer over all of it. */
struct vkb_block {
    VkDeviceMemory memory;
    VkBuffer buffer;
    uint64_t size;      /* bytes the VkBuffer covers */
    uint64_t allocated; /* bytes of the VkDeviceMemory (≥ size) */
    uint64_t used;
    void *mapped; /* host pointer for host-visible arenas, else NULL */
};

struct vkb_part {
    uint32_t block;
    uint64_t block_offset; /* where the part starts in its block */
    uint64_t offset;       /* where the part starts in the buffer */
    uint64_t size;
};

struct vkb_buffer {
    vkb_arena *arena;
    uint64_t size;
    uint32_t part_count;
    struct vkb_part *parts;
    struct vkb_buffer *next;
};

struct vkb_arena {
    vkb_device *dev;
    vkb_purpose purpose;
    uint32_t memory_type;
    uint32_t heap;
    uint64_t block_bytes;
    uint64_t expected; /* vkb_arena_expect's total, 0 when not given */
    uint32_t block_count, block_cap;
    uint32_t current; /* the block being filled; those after it are empty */
    struct vkb_block *blocks;
    uint64_t used;
    struct vkb_buffer *buffers;
    struct vkb_arena *next;
};

#define VKB_TUNED_TYPES 32 /* cmp_type values below this may have a stored tuning */

struct vkb_device {
    vkb_context *ctx;
    vkb_device_info info; /* with the profile applied */
    VkPhysicalDevice physical;
    VkDevice device;
    struct VolkDeviceTable vk;
    VkQueue queue;
    uint32_t queue_family;
    bool lost;
    vkb_matvec_tuning matvec_tuning; /* wg 0: the built-in choice */
    vkb_coopmat_mode coopmat;        /* vkb_op_coopmat_mode */
    uint32_t matmul_min;             /* VKLLM_MATMUL_MIN; 0: vkb_op_matmul_min_columns's own */
    vkb_matmul_tuning matmul_tuning; /* tm 0: the built-in choice */
    /* per weight type (indexed by cmp_type), from the device's tuning file; wg 0: none */
    vkb_matvec_tuning format_tuning[VKB_TUNED_TYPES];
    char *tuning_path;        /* the device's tuning file; NULL without a cache folder */
    char tuning_status[1400]; /* what vkb_tuning_status says */

    VkPipelineCache pipeline_cache;
    char *pipeline_cache_path;
    struct vkb_pipeline *pipelines;
    uint32_t pipeline_count;

    struct vkb_arena *arenas;
    struct vkb_stream *streams;

    /* accounting, readable from any thread */
    atomic_uint_fast64_t heap_allocated[VKB_MAX_HEAPS];
    atomic_uint_fast64_t purpose_allocated[VKB_PURPOSE_COUNT];
    atomic_uint_fast64_t peak_allocated;

    /* staging ring: two slots used alternately so a copy overlaps the next memcpy */
    uint64_t staging_bytes;
    vkb_arena *staging_arena;
    vkb_buffer *staging;
    VkCommandPool transfer_pool;
    VkCommandBuffer transfer_cmd[2];
    VkFence transfer_fence[2];
    bool transfer_pending[2];

    char errmsg[VKB_ERRMSG_SIZE];
};

/* Writes a message into a message buffer and returns `status`. */
vkb_status vkb_fail_buf(char *buf, vkb_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define vkb_ctx_fail(ctx, status, ...) vkb_fail_buf((ctx)->errmsg, (status), __VA_ARGS__)
#define vkb_dev_fail(dev, status, ...) vkb_fail_buf((dev)->errmsg, (status), __VA_ARGS__)

/* Turns a failed VkResult from `call` into a status and a message on the device;
 * VK_ERROR_DEVICE_LOST marks the device lost. Returns VKB_OK for VK_SUCCESS. */
vkb_status vkb_dev_check(vkb_device *dev, VkResult result, const char *call);

/* Returns VKB_ERR_DEVICE_LOST (with a message) once the device is lost, else VKB_OK. */
vkb_status vkb_dev_alive(vkb_device *dev);

const char *vkb_result_name(VkResult result);

/* Fills `info` from the driver (vkb_caps.c). */
void vkb_caps_query(VkPhysicalDevice physical, uint32_t instance_api, vkb_device_info *info);

/* A physical device's extension list, enumerated once. */
struct vkb_extensions {
    uint32_t count;
    VkExtensionProperties *props;
};
void vkb_extensions_load(VkPhysicalDevice physical, struct vkb_extensions *ext);
bool vkb_extensions_has(const struct vkb_extensions *ext, const char *name);
void vkb_extensions_free(struct vkb_extensions *ext);

/* The queue family vkllm uses (the first with compute) and its timestamp bits. */
bool vkb_compute_queue(VkPhysicalDevice physical, uint32_t *family, uint32_t *timestamp_bits);

/* Bytes one binding of one buffer part may cover: the least of maxStorageBufferRange,
 * maxMemoryAllocationSize and maxBufferSize. */
uint64_t vkb_part_limit(const vkb_device_info *info);

/* The largest workgroup x size: maxComputeWorkGroupInvocations and maxComputeWorkGroupSize[0]. */
uint32_t vkb_max_workgroup_x(const vkb_device_info *info);

/* ---- op helpers (vkb_ops.c) ---- */

/* The bytes the smaller of two caches holds (0 where either is NULL): what an op that
 * writes rows at positions read on the GPU (VKB_AT_POS) binds of each. */
uint64_t vkb_op_caches_bytes(const vkb_buffer *a, const vkb_buffer *b);
/* Workgroup size for simple kernels: `want`, capped by the device's limits and by its
 * shared memory at `shared_per_invocation` bytes each. */
uint32_t vkb_op_wg_size(const vkb_device *dev, uint32_t want, uint32_t shared_per_invocation);
/* `bytes` from the start of `buf` must lie in its first part. */
vkb_status vkb_op_need_single_part(vkb_device *dev, const char *op, const char *what,
                                   const vkb_buffer *buf, uint64_t bytes);
/* 1 to 2^32-1 elements. */
vkb_status vkb_op_check_count(vkb_device *dev, const char *op, uint64_t n);
/* One of the vkb_act values. */
vkb_status vkb_op_check_act(vkb_device *dev, const char *op, vkb_act act);
/* Subgroup arithmetic in compute shaders, under the device's profile. */
bool vkb_op_use_subgroups(const vkb_device *dev);

/* Refreshes heaps[].budget/usage from VK_EXT_memory_budget when present. */
void vkb_caps_query_budget(VkPhysicalDevice physical, vkb_device_info *info);

/* Formats a byte count as "4.20 GiB" into buf. */
const char *vkb_format_bytes(uint64_t bytes, char *buf, size_t size);

/* Memory accounting (vkb_memory.c). */
void vkb_account(vkb_device *dev, uint32_t heap, vkb_purpose purpose, int64_t bytes);

/* Staging ring (vkb_transfer.c). */
vkb_status vkb_transfer_init(vkb_device *dev);
void vkb_transfer_free(vkb_device *dev);

/* Locate the part of `buf` holding [offset, offset + size); false if it straddles. */
bool vkb_buffer_locate(const vkb_buffer *buf, uint64_t offset, uint64_t size,
                       const struct vkb_part **part);

VkBuffer vkb_part_vk_buffer(const vkb_buffer *buf, const struct vkb_part *part);

/* Records a memory barrier making writes by `src` stages (compute, transfer, all) visible
 * to reads and writes by `dst` stages (compute, transfer, host, all). */
void vkb_cmd_barrier(vkb_device *dev, VkCommandBuffer cmd, VkPipelineStageFlags src,
                     VkPipelineStageFlags dst);

/* The device a stream records for. */
vkb_device *vkb_stream_device(const vkb_stream *s);

/* Where the parts of a KV cache with a valid layout lie (vkb_kv_layout). */
typedef struct vkb_kv_geometry {
    uint32_t ring_rows; /* KIVI: rows of the f16 window ring; 0 otherwise */
    uint64_t store;     /* byte offset of the rows or groups (after the ring) */
    uint64_t stride;    /* bytes per position, or per group of positions (KIVI keys) */
    uint32_t bits;      /* KIVI: bits per value */
} vkb_kv_geometry;
bool vkb_kv_geometry_of(const vkb_kv_layout *l, vkb_kv_geometry *g, char *why, size_t why_size);
/* The block format of a q8_0 / q4_0 cache's rows (CMP_TYPE_F16 for f16 and KIVI). */
cmp_type vkb_kv_block_type(vkb_kv_type t);
/* Bytes from the start of the cache that its first n positions occupy. */
uint64_t vkb_kv_span(const vkb_kv_layout *l, const vkb_kv_geometry *g, uint32_t n);

void vkb_pipelines_free(vkb_device *dev);
void vkb_streams_free(vkb_device *dev);
void vkb_arenas_free(vkb_device *dev);

/* mkdir -p; 0 on success. */
int vkb_make_dirs(const char *path);

/* vkb_tuning.c: at device open, the stored tuning in `dir` (NULL: none). */
void vkb_tuning_open(vkb_device *dev, const char *dir);

#endif /* VKB_INTERNAL_H */
