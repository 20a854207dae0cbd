#version 450
// y[group] = sum of the group's ELEMS * workgroup-size slice of x: one pass of a
// reduction. USE_SUBGROUP reduces with subgroup arithmetic (any subgroup size, 4 to 128)
// and shared memory across subgroups; without it, a shared-memory tree (any workgroup
// size, not only powers of two).
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#include "vkb_index.glsl"

#define ELEMS 4

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
    uint n;
} pc;

shared float partial[gl_WorkGroupSize.x];

void main()
{
    const uint group = flat_group_id();
    const uint lid = gl_LocalInvocationID.x;
    const uint base = group * gl_WorkGroupSize.x * ELEMS + lid;

    float acc = 0.0;
    for (uint k = 0; k < ELEMS; k++) {
        uint i = base + k * gl_WorkGroupSize.x;
        if (i < pc.n)
            acc += x[i];
    }

#ifdef USE_SUBGROUP
    acc = subgroupAdd(acc);
    if (subgroupElect())
        partial[gl_SubgroupID] = acc;
    barrier();
    if (gl_SubgroupID == 0) {
        float v = 0.0;
        for (uint s = gl_SubgroupInvocationID; s < gl_NumSubgroups; s += gl_SubgroupSize)
            v += partial[s];
        v = subgroupAdd(v);
        if (subgroupElect())
            y[group] = v;
    }
#else
    partial[lid] = acc;
    barrier();
    uint half_size = 1;
    while (half_size * 2 < gl_WorkGroupSize.x)
        half_size *= 2;
    for (uint s = half_size; s > 0; s >>= 1) {
        if (lid < s && lid + s < gl_WorkGroupSize.x)
            partial[lid] += partial[lid + s];
        barrier();
    }
    if (lid == 0)
        y[group] = partial[0];
#endif
}
