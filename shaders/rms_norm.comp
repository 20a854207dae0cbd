#version 450
// out[r][i] = x[r][i] * (1 / sqrt(mean_i(x[r][i]^2) + eps)) * w[i]: one workgroup per row.
#include "vkb_index.glsl"

layout(local_size_x_id = 0) in;

#include "vkb_reduce.glsl" // after the workgroup size: it sizes shared memory by it

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer W { float w[]; };
layout(std430, binding = 2) writeonly buffer Out { float dst[]; };

layout(push_constant) uniform Push {
    uint n;    // values per row
    uint rows;
    float eps;
} pc;

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
    for (uint i = gl_LocalInvocationID.x; i < pc.n; i += gl_WorkGroupSize.x)
        dst[base + i] = x[base + i] * scale * w[i];
}
