#version 450
// Activations to 8-bit blocks for the integer-dot-product matvec (layout and rounding in
// vkb_q8.glsl). One invocation per four values, eight per block (the workgroup size a
// multiple of 8). With SILU_MUL (GELU_MUL) the values are first silu(gate) · up (gelu), written
// out as f32 too: the gated FFN's product and its quantization in one dispatch.
#include "vkb_act.glsl"
#include "vkb_index.glsl"

layout(local_size_x_id = 0) in;

#if defined(SILU_MUL) || defined(GELU_MUL)
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
#if defined(SILU_MUL) || defined(GELU_MUL)
    vec4 v = vec4(0.0);
    if (live) {
#ifdef GELU_MUL
        v = act_mul4(ACT_GELU, g4[t], u4[t]); // as eltwise.comp's OP_GELU_MUL, per value
#else
        v = act_mul4(ACT_SILU, g4[t], u4[t]);
#endif
        h4[t] = v;
    }
#else
    const vec4 v = live ? x4[t] : vec4(0.0);
#endif
    q8_store(v, t, pc.blocks, live);
}
