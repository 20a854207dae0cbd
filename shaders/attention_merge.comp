#version 450
// The second pass of split-K attention: each split left (m, l, acc[head_dim]) for its
// keys: the running maximum of the scores, the sum of exp(score - m) and the weighted sum
// of values. out[t][h][d] = sum_s acc_s[d] e^(m_s - M) / sum_s l_s e^(m_s - M), M = max m_s.
// One invocation per output value; a split without keys has m = -inf and adds nothing.
// Q8: one invocation per four values, written as the 8-bit blocks of vkb_q8.glsl (the
// integer-dot-product matvec's input; head_dim a multiple of 32): the bits of the float
// output quantized by quantize_q8.comp.
#include "vkb_index.glsl"

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Partials { float part[]; };
#ifdef Q8
layout(std430, binding = 1) writeonly buffer XQ { uint xq[]; };
#include "vkb_q8.glsl"
#else
layout(std430, binding = 1) writeonly buffer Out { float dst[]; };
#endif

layout(push_constant) uniform Push {
    uint head_dim;
    uint rows; // tokens x heads
    uint splits;
} pc;

// Output value d of row r.
float merged(uint r, uint d)
{
    const uint stride = pc.head_dim + 2u, base = r * pc.splits * stride;
    float mx = part[base];
    for (uint s = 1u; s < pc.splits; s++)
        mx = max(mx, part[base + s * stride]);
    float l = 0.0, acc = 0.0;
    for (uint s = 0u; s < pc.splits; s++) {
        const uint at = base + s * stride;
        const float w = part[at + 1u] > 0.0 ? exp(part[at] - mx) : 0.0;
        l += part[at + 1u] * w;
        acc += part[at + 2u + d] * w;
    }
    return acc / l;
}

void main()
{
    const uint i = flat_group_id() * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
#ifdef Q8
    // quad i: values 4i .. 4i + 3, in one row (head_dim a multiple of 32)
    const bool live = i < pc.rows * pc.head_dim / 4u;
    vec4 v = vec4(0.0);
    if (live) {
        const uint r = 4u * i / pc.head_dim, d = 4u * i % pc.head_dim;
        v = vec4(merged(r, d), merged(r, d + 1u), merged(r, d + 2u), merged(r, d + 3u));
    }
    q8_store(v, i, pc.rows * pc.head_dim / 32u, live);
#else
    if (i >= pc.rows * pc.head_dim)
        return;
    dst[i] = merged(i / pc.head_dim, i % pc.head_dim);
#endif
}
