#version 450
// Activations quantized to 8-bit blocks for the integer-dot-product matvec: each block of
// 32 values of a column becomes a scale d = max|x| / 127 rounded to f16 (as ggml's q8_0
// activations) and 32 signed bytes q = x / d rounded to nearest, ties to even, clamped to
// ±127; with them s = d * sum(q) (the weight formats with an offset, q4_0's -8, subtract
// it through s). Block b of column c is 10 words at xq[10 * (c * k / 32 + b)]: the bytes
// four to a word, lowest first, then d and s as f32. Eight invocations per block, four
// values each (the workgroup size a multiple of 8).
//
// Every step is exact or correctly rounded, so vkb_ref_quantize_q8 gives the same bytes on
// any driver: max|x| · (1/127) is one correctly rounded product, the f16 rounding is done
// to nearest even by hand, and q is chosen by comparing x with the midpoints (q ± ½)·d,
// products of at most 8 and 11 significant bits, exact in f32. (x · 1/d only proposes q:
// a division or reciprocal may be off by ulps on a GPU.)
#include "vkb_index.glsl"
#include "vkb_kv.glsl" // kv_half_rne

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer X { vec4 x4[]; };
layout(std430, binding = 1) writeonly buffer XQ { uint xq[]; };

layout(push_constant) uniform Push {
    uint k;      // values per column, a multiple of 32
    uint blocks; // columns x k / 32
} pc;

int nearest(float x, float d, float id)
{
    float q = roundEven(x * id);
    precise float hi = (q + 0.5) * d, lo = (q - 0.5) * d;
    if (x > hi || (x == hi && mod(q, 2.0) != 0.0))
        q += 1.0;
    else if (x < lo || (x == lo && mod(q, 2.0) != 0.0))
        q -= 1.0;
    return clamp(int(q), -127, 127);
}

shared float part_max[gl_WorkGroupSize.x];
shared int part_sum[gl_WorkGroupSize.x];

void main()
{
    const uint lid = gl_LocalInvocationID.x, t = flat_group_id() * gl_WorkGroupSize.x + lid;
    const uint i = t / 8u, part = t % 8u, first = lid - part; // block, word, block's first
    const bool live = i < pc.blocks;
    const vec4 v = live ? x4[t] : vec4(0.0); // columns are contiguous, k a multiple of 32
    const vec4 a = abs(v);
    part_max[lid] = max(max(a.x, a.y), max(a.z, a.w));
    barrier();
    float amax = 0.0;
    for (uint j = 0u; j < 8u; j++)
        amax = max(amax, part_max[first + j]);
    precise float d32 = amax * (1.0 / 127.0);
    const float d = unpackHalf2x16(kv_half_rne(d32)).x;
    const float id = d > 0.0 ? 1.0 / d : 0.0;
    const ivec4 q = d > 0.0 ? ivec4(nearest(v.x, d, id), nearest(v.y, d, id),
                                    nearest(v.z, d, id), nearest(v.w, d, id))
                            : ivec4(0);
    if (live)
        xq[10u * i + part] = uint(q.x & 255) | uint(q.y & 255) << 8 | uint(q.z & 255) << 16 |
                             uint(q.w & 255) << 24;
    part_sum[lid] = q.x + q.y + q.z + q.w;
    barrier();
    if (live && part == 0u) {
        int sum = 0;
        for (uint j = 0u; j < 8u; j++)
            sum += part_sum[first + j];
        xq[10u * i + 8u] = floatBitsToUint(d);
        xq[10u * i + 9u] = floatBitsToUint(d * float(sum));
    }
}
