#version 450
// out[i] = a[i] + b[i % bn], elementwise over n f32 values: bn = n adds two vectors,
// bn = row length adds one row (a bias) to every row of a.
#include "vkb_index.glsl"

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer A { float a[]; };
layout(std430, binding = 1) readonly buffer B { float b[]; };
layout(std430, binding = 2) writeonly buffer Out { float dst[]; };

layout(push_constant) uniform Push {
    uint n;
    uint bn;
} pc;

void main()
{
    uint i = flat_group_id() * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    if (i < pc.n)
        dst[i] = a[i] + b[pc.bn == pc.n ? i : i % pc.bn];
}
