#version 450
// The second pass of split-K attention: each split left (m, l, acc[head_dim]) for its
// keys: the running maximum of the scores, the sum of exp(score - m) and the weighted sum
// of values. out[t][h][d] = sum_s acc_s[d] e^(m_s - M) / sum_s l_s e^(m_s - M), M = max m_s.
// One invocation per output value; a split without keys has m = -inf and adds nothing.
#include "vkb_index.glsl"

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Partials { float part[]; };
layout(std430, binding = 1) writeonly buffer Out { float dst[]; };

layout(push_constant) uniform Push {
    uint head_dim;
    uint rows; // tokens x heads
    uint splits;
} pc;

void main()
{
    const uint i = flat_group_id() * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    if (i >= pc.rows * pc.head_dim)
        return;
    const uint r = i / pc.head_dim, d = i % pc.head_dim;
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
    dst[i] = acc / l;
}
