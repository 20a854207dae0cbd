#version 450
// Rotary position embedding of x[t][h][0 .. head_dim): for pair i < rot_dims / 2, the
// angle pos[t] * freq[i] rotates (x[2i], x[2i+1]) (normal order) or (x[i], x[i + rot/2])
// (neox order); dimensions from rot_dims on are copied. freq[] comes from the host
// (vkb_rope_freqs), so frequency base and scaling cost nothing here. The rotation itself
// is vkb_rope.glsl's. One invocation per pair.
#include "vkb_index.glsl"
#include "vkb_rope.glsl"

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer Pos { int pos[]; };
layout(std430, binding = 2) readonly buffer Freq { float freq[]; };
layout(std430, binding = 3) writeonly buffer Out { float dst[]; };

layout(push_constant) uniform Push {
    uint head_dim;
    uint rot_dims; // even, <= head_dim
    uint heads;
    uint tokens;
    uint neox;     // 0: pairs (2i, 2i+1); 1: pairs (i, i + rot_dims/2)
} pc;

void main()
{
    const uint pairs = pc.head_dim / 2u;
    const uint g = flat_group_id() * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    if (g >= pairs * pc.heads * pc.tokens)
        return;
    const uint i = g % pairs, th = g / pairs, t = th / pc.heads;
    const uint base = th * pc.head_dim;
    const uint half_rot = pc.rot_dims / 2u;
    if (i >= half_rot) {
        uint d = pc.rot_dims + 2u * (i - half_rot);
        dst[base + d] = x[base + d];
        dst[base + d + 1u] = x[base + d + 1u];
        return;
    }
    const uvec2 d = rope_pair(i, pc.rot_dims, pc.neox != 0u);
    const vec2 r = rope_rotate(x[base + d.x], x[base + d.y], pos[t], freq[i]);
    dst[base + d.x] = r.x;
    dst[base + d.y] = r.y;
}
