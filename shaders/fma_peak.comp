#version 450
// The device's non-matrix f32 FMA rate: eight independent vec4 chains of ITERS fused
// multiply-adds per invocation, nothing read from memory, one sum written so the work
// is not removed. Each invocation does 8 * 4 * ITERS FMAs = 2 * that FLOPs.
#include "vkb_index.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint ITERS = 256u;

layout(std430, binding = 0) writeonly buffer Out { float dst[]; };

layout(push_constant) uniform Push {
    float a; // 1 - 2^-20 or so: chains stay finite
    float b;
} pc;

void main()
{
    const uint g = flat_group_id() * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    vec4 v[8];
    for (uint c = 0u; c < 8u; c++)
        v[c] = vec4(float(g & 255u), float(c), 1.0, 2.0) * 1e-3;
    for (uint i = 0u; i < ITERS; i++)
        for (uint c = 0u; c < 8u; c++)
            v[c] = fma(v[c], vec4(pc.a), vec4(pc.b));
    vec4 s = vec4(0.0);
    for (uint c = 0u; c < 8u; c++)
        s += v[c];
    dst[g] = s.x + s.y + s.z + s.w;
}
