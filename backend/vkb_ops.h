/* vkb ops: kernels named after the math they do, recorded into a stream.
 *
 * Each op checks its arguments, picks the kernel variant the device (under its profile)
 * supports best, and records one or more dispatches. Buffers hold f32 values unless
 * said otherwise; element counts are in values, not bytes. An op's buffers must each be
 * a single part (see vkb_buffer_part_count); larger tensors are split by the caller.
 */
#ifndef VKB_OPS_H
#define VKB_OPS_H

#include "vkb.h"

#ifdef __cplusplus
extern "C" {
#endif

/* dst = src, `bytes` a multiple of 16: a streaming 16-byte-per-load copy, the kernel
 * `vkllm devices --bandwidth` times. */
vkb_status vkb_op_copy(vkb_stream *s, const vkb_buffer *dst, const vkb_buffer *src, uint64_t bytes);

/* out[i] = a[i] + b[i] for i < n. */
vkb_status vkb_op_add(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *a,
                      const vkb_buffer *b, uint64_t n);

/* out[0] = sum of x[0..n), reduced in passes of one partial sum per workgroup.
 * `tmp` must hold vkb_op_sum_tmp_bytes(dev, n) bytes. */
vkb_status vkb_op_sum(vkb_stream *s, const vkb_buffer *out, const vkb_buffer *x, uint64_t n,
                      const vkb_buffer *tmp);
uint64_t vkb_op_sum_tmp_bytes(const vkb_device *dev, uint64_t n);

/* The kernel variant vkb_op_sum uses on this device: "sum_subgroup" where compute
 * shaders have subgroup arithmetic, "sum_shared" (shared-memory tree) otherwise. */
const char *vkb_op_sum_variant(const vkb_device *dev);

#ifdef __cplusplus
}
#endif

#endif /* VKB_OPS_H */
