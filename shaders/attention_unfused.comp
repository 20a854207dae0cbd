#version 450
// Attention in three passes, scores in memory: the unfused path (the reference the fused
// kernel is measured against, and what `vkllm bench -fa 0` runs). This file makes the
// first and the last pass; vkb_op_softmax is the middle one.
//
//   SCORES: p[t][h][j] = scale · q[t][h] · k[j][g] for j ≤ pos0 + t (and j within the
//           sliding window, pos0 + t - j < window, where window > 0), else -inf; soft-capped
//           where softcap > 0 (one invocation per (t, h, j), j < n_kv)
//   VALUES: out[t][h][d] = sum_j p[t][h][j] · v[j][g][d]  over j ≤ min(n_kv - 1, pos0 + t)
//           (one invocation per (t, h, d))
//
// g = h / (heads / kv_heads); q and out are f32 [tokens][heads][head_dim]; the caches
// hold [position][kv_heads][head_dim] halves, two per 32-bit word.
#include "vkb_act.glsl"
#include "vkb_index.glsl"

layout(local_size_x_id = 0) in;

#if defined(SCORES)
layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer K { uint kc[]; };
layout(std430, binding = 2) writeonly buffer Out { float dst[]; };
#else
layout(std430, binding = 0) readonly buffer P { float p[]; };
layout(std430, binding = 1) readonly buffer V { uint vc[]; };
layout(std430, binding = 2) writeonly buffer Out { float dst[]; };
#endif

layout(push_constant) uniform Push {
    uint head_dim; // even
    uint heads;
    uint kv_heads;
    uint tokens;
    uint n_kv;
    uint pos0;
    float scale;
    uint k_row_bytes; // the fused kernel's; f16 rows here
    uint v_row_bytes;
    uint split_len;
    uint kv_nq, ring_rows, group; // the fused kernel's
    uint window;                  // sliding window: 0 none
    float softcap;                // 0 none
} pc;

void main()
{
    const uint i = flat_group_id() * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    const uint half_dim = pc.head_dim / 2u;
    const uint row_words = pc.kv_heads * half_dim; // words per cache position
#if defined(SCORES)
    if (i >= pc.tokens * pc.heads * pc.n_kv)
        return;
    const uint j = i % pc.n_kv, r = i / pc.n_kv; // r = t * heads + h
    const uint h = r % pc.heads, t = r / pc.heads;
    const uint g = h / (pc.heads / pc.kv_heads);
    if (j > pc.pos0 + t || (pc.window != 0u && j + pc.window <= pc.pos0 + t)) {
        dst[i] = uintBitsToFloat(0xff800000u); // -inf: the causal mask, or the window's
        return;
    }
    const uint q_at = r * pc.head_dim, k_at = j * row_words + g * half_dim;
    float s = 0.0;
    for (uint d = 0u; d < half_dim; d++)
        s += dot(unpackHalf2x16(kc[k_at + d]), vec2(q[q_at + 2u * d], q[q_at + 2u * d + 1u]));
    s *= pc.scale;
    dst[i] = pc.softcap > 0.0 ? act_softcap(s, pc.softcap) : s;
#else
    if (i >= pc.tokens * pc.heads * pc.head_dim)
        return;
    const uint d = i % pc.head_dim, r = i / pc.head_dim;
    const uint h = r % pc.heads, t = r / pc.heads;
    const uint g = h / (pc.heads / pc.kv_heads);
    const uint limit = min(pc.n_kv, pc.pos0 + t + 1u);
    const uint v_at = g * half_dim + d / 2u;
    const bool high = (d & 1u) != 0u;
    float acc = 0.0;
    for (uint j = 0u; j < limit; j++) {
        vec2 v = unpackHalf2x16(vc[j * row_words + v_at]);
        acc += p[r * pc.n_kv + j] * (high ? v.y : v.x);
    }
    dst[i] = acc;
#endif
}
