#version 450
// Elementwise f32 ops over n values, one per invocation; OP_* picks the op:
//   OP_SILU_MUL  out = silu(a) * b   (the gated FFN: silu(gate) * up; vkb_act.glsl)
//   OP_GELU_MUL  out = gelu(a) * b   (gemma's gated FFN)
//   OP_SCALE     out = a * s
//   OP_SOFTCAP   out = s * tanh(a / s)   (gemma 2's final logits; vkb_act.glsl)
//   OP_F32_F16   out[off/2 + i] = half(a), two values per word from the even value offset
//                `off`; n odd leaves the last word's high half 0
//   OP_F16_F32   out = float(a), a read as halves
#include "vkb_act.glsl"
#include "vkb_index.glsl"

layout(local_size_x_id = 0) in;

#if defined(OP_F16_F32)
layout(std430, binding = 0) readonly buffer A { uint a[]; };
#else
layout(std430, binding = 0) readonly buffer A { float a[]; };
#endif
#if defined(OP_SILU_MUL) || defined(OP_GELU_MUL)
layout(std430, binding = 1) readonly buffer B { float b[]; };
#define OUT_BINDING 2
#else
#define OUT_BINDING 1
#endif
#if defined(OP_F32_F16)
layout(std430, binding = OUT_BINDING) writeonly buffer Out { uint dst[]; };
#else
layout(std430, binding = OUT_BINDING) writeonly buffer Out { float dst[]; };
#endif

layout(push_constant) uniform Push {
    uint n;
    float s;
    uint off; // OP_F32_F16: where the output starts, in values (even)
} pc;

void main()
{
    const uint i = flat_group_id() * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
#if defined(OP_F32_F16)
    if (2u * i < pc.n) {
        float hi = 2u * i + 1u < pc.n ? a[2u * i + 1u] : 0.0;
        dst[pc.off / 2u + i] = packHalf2x16(vec2(a[2u * i], hi));
    }
#elif defined(OP_F16_F32)
    if (i < pc.n)
        dst[i] = unpackHalf2x16(a[i / 2u])[i % 2u];
#elif defined(OP_SILU_MUL)
    if (i < pc.n)
        dst[i] = act_mul(ACT_SILU, a[i], b[i]);
#elif defined(OP_GELU_MUL)
    if (i < pc.n)
        dst[i] = act_mul(ACT_GELU, a[i], b[i]);
#elif defined(OP_SCALE)
    if (i < pc.n)
        dst[i] = a[i] * pc.s;
#elif defined(OP_SOFTCAP)
    if (i < pc.n)
        dst[i] = act_softcap(a[i], pc.s);
#else
#error "define one OP_*"
#endif
}
