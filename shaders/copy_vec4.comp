#version 450
// dst = src, 16 bytes per invocation: the streaming kernel behind
// `vkllm devices --bandwidth`.
#include "vkb_index.glsl"

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Src { uvec4 src[]; };
layout(std430, binding = 1) writeonly buffer Dst { uvec4 dst[]; };

layout(push_constant) uniform Push {
    uint n; // 16-byte elements
} pc;

void main()
{
    uint i = flat_group_id() * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    if (i < pc.n)
        dst[i] = src[i];
}
