#version 450
// Activations to 8-bit blocks for the integer-dot-product matvec (layout and rounding in
// vkb_q8.glsl). One invocation per four values, eight per block (the workgroup size a
// multiple of 8). With SILU_MUL the values are first silu(gate) · up, written out as f32
// too: the gated FFN's product and its quantization in one dispatch.
#include "vkb_index.glsl"

layout(local_size_x_id = 0) in;

#ifdef SILU_MUL
layout(std430, binding = 0) readonly buffer G { vec4 g4[]; };
layout(std430, binding = 1) readonly buffer U { vec4 u4[]; };
layout(std430, binding = 2) writeonly buffer H { vec4 h4[]; };
layout(std430, binding = 3) writeonly buffer XQ { uint xq[]; };
#else
layout(std430, binding = 0) readonly buffer X { vec4 x4[]; };
layout(std430, binding = 1) writeonly buffer XQ { uint xq[]; };
#endif

layout(push_constant) uniform Push {
    uint k;      // values per column, a multiple of 32
    uint blocks; // columns x k / 32
} pc;

#include "vkb_q8.glsl"

void main()
{
    const uint t = flat_group_id() * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    const bool live = t < pc.blocks * 8u; // columns are contiguous, k a multiple of 32
#ifdef SILU_MUL
    vec4 v = vec4(0.0);
    if (live) {
        const vec4 a = g4[t];
        v = a / (1.0 + exp(-a)) * u4[t]; // as eltwise.comp's OP_SILU_MUL, per value
        h4[t] = v;
    }
#else
    const vec4 v = live ? x4[t] : vec4(0.0);
#endif
    q8_store(v, t, pc.blocks, live);
}
