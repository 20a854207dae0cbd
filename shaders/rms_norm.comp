#version 450
// out[r][i] = x[r][i] * (1 / sqrt(mean_i(x[r][i]^2) + eps)) * w[i]: one workgroup per row.
// With Q8 the normalized row is also quantized to 8-bit blocks for the integer-dot-product
// matvec (vkb_q8.glsl): the norm and the quantization of the products' input in one
// dispatch. Q8 needs rows of a multiple of 32 values and a workgroup of a multiple of 8;
// out is the same either way. With ADD the normalized row is added to a residual row:
// out = res + rms_norm(x) · w (gemma 2 and 3's norms after the attention and the FFN, fed
// to the residual stream; out may be res).
#include "vkb_index.glsl"

layout(local_size_x_id = 0) in;

#include "vkb_reduce.glsl" // after the workgroup size: it sizes shared memory by it

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer W { float w[]; };
layout(std430, binding = 2) writeonly buffer Out { float dst[]; };
#ifdef Q8
layout(std430, binding = 3) writeonly buffer XQ { uint xq[]; };
#endif
#ifdef ADD
layout(std430, binding = 3) readonly buffer Res { float res[]; };
#endif

layout(push_constant) uniform Push {
    uint n;    // values per row
    uint rows;
    float eps;
} pc;

#ifdef Q8
#include "vkb_q8.glsl"
#endif

void main()
{
    const uint row = flat_group_id();
    if (row >= pc.rows)
        return;
    const uint base = row * pc.n;
    float ss = 0.0;
    for (uint i = gl_LocalInvocationID.x; i < pc.n; i += gl_WorkGroupSize.x)
        ss += x[base + i] * x[base + i];
    ss = wg_sum(ss);
    const float scale = 1.0 / sqrt(ss / float(pc.n) + pc.eps);
#ifdef Q8
    // four values per invocation; every invocation runs every round (q8_store's barriers)
    const uint quads = pc.n / 4u;
    for (uint q0 = 0u; q0 < quads; q0 += gl_WorkGroupSize.x) {
        const uint q = q0 + gl_LocalInvocationID.x;
        const bool live = q < quads;
        vec4 v = vec4(0.0);
        if (live) {
            for (uint j = 0u; j < 4u; j++) {
                const uint i = 4u * q + j;
                v[j] = x[base + i] * scale * w[i];
                dst[base + i] = v[j];
            }
        }
        q8_store(v, row * quads + q, pc.rows * (pc.n / 32u), live);
    }
#elif defined(ADD)
    for (uint i = gl_LocalInvocationID.x; i < pc.n; i += gl_WorkGroupSize.x) {
        precise float v = x[base + i] * scale * w[i]; // not contracted into the sum
        dst[base + i] = res[base + i] + v;
    }
#else
    for (uint i = gl_LocalInvocationID.x; i < pc.n; i += gl_WorkGroupSize.x)
        dst[base + i] = x[base + i] * scale * w[i];
#endif
}
