#version 450
// Causal attention over a KV cache, one workgroup per (KV head, query token) and up to
// G_MAX of the query heads that share that KV head (grouped-query attention: each key and
// value is read once for all of them):
//
//   out[t][h] = sum_j softmax_j(q[t][h] · k[j][g] · scale) · v[j][g],  g = h / (heads / kv_heads),
//   over the keys j < min(n_kv, pos0 + t + 1)
//
// Keys are visited in tiles of one key per invocation with an online softmax (running
// maximum and sum), so any context length runs in fixed shared memory. q and out are f32
// [tokens][heads][head_dim]; the caches hold [position][kv_heads][head_dim] values in
// their stored type (K_TYPE, V_TYPE, specialization constants: f16, q8_0, q4_0, kivi4 or
// kivi2; vkb_kv.glsl), dequantized here as they are read. Invocation i accumulates output dimensions i, i + wg, i + 2wg, i + 3wg
// of each of the workgroup's heads. Groups of more than G_MAX heads take several
// workgroups (x = kv head x chunks of the group).
#include "vkb_index.glsl"
#include "vkb_kv.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint K_TYPE = KV_F16;
layout(constant_id = 2) const uint V_TYPE = KV_F16;

#include "vkb_reduce.glsl" // after the workgroup size: it sizes shared memory by it

#define MAX_HEAD_DIM 256
#define DIMS_PER_INVOCATION 4

layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer K { uint kc[]; };
layout(std430, binding = 2) readonly buffer V { uint vc[]; };
layout(std430, binding = 3) writeonly buffer Out { float dst[]; };

layout(push_constant) uniform Push {
    uint head_dim; // even, at most MAX_HEAD_DIM and DIMS_PER_INVOCATION x workgroup
    uint heads;
    uint kv_heads;
    uint tokens;
    uint n_kv; // keys in the cache
    uint pos0; // position of query token 0
    float scale;
    uint k_row_bytes; // bytes per cache position
    uint v_row_bytes;
    uint split_len; // 0: all keys; else keys per split (workgroup z), partial results out
    uint kv_nq;     // KIVI: positions in the quantized store; the rest in the f16 window
    uint ring_rows; // KIVI: rows of the window ring
    uint group;     // KIVI: values per scale
} pc;

KV_PAIR_FN(k_pair, kc, K_TYPE, true)
KV_PAIR_FN(v_pair, vc, V_TYPE, false)

#define G_MAX 4u

shared vec2 qs[G_MAX * (MAX_HEAD_DIM / 2)];
shared float ps[G_MAX * gl_WorkGroupSize.x];

void main()
{
    const uint group = pc.heads / pc.kv_heads;
    const uint chunks = (group + G_MAX - 1u) / G_MAX;
    const uint g = gl_WorkGroupID.x / chunks;
    const uint h0 = g * group + (gl_WorkGroupID.x % chunks) * G_MAX;
    const uint nh = min(G_MAX, g * group + group - h0); // heads of this workgroup
    const uint t = gl_WorkGroupID.y;
    const uint lid = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x;
    const uint half_dim = pc.head_dim / 2u;
    for (uint hh = 0u; hh < nh; hh++) {
        const uint q_at = (t * pc.heads + h0 + hh) * pc.head_dim;
        for (uint i = lid; i < half_dim; i += wg)
            qs[hh * (MAX_HEAD_DIM / 2u) + i] =
                vec2(q[q_at + 2u * i], q[q_at + 2u * i + 1u]) * pc.scale;
    }
    barrier();

    const uint limit = min(pc.n_kv, pc.pos0 + t + 1u);
    const float neg_inf = uintBitsToFloat(0xff800000u);
    float m[G_MAX], l[G_MAX], corr[G_MAX];
    float acc[G_MAX][DIMS_PER_INVOCATION];
    for (uint hh = 0u; hh < G_MAX; hh++) {
        m[hh] = neg_inf;
        l[hh] = 0.0;
        corr[hh] = 1.0;
        for (uint i = 0u; i < DIMS_PER_INVOCATION; i++)
            acc[hh][i] = 0.0;
    }

    // the keys of this workgroup: all, or its split's (split-K decode: one query row's
    // keys spread over many workgroups, merged by attention_merge.comp)
    const uint k0 = pc.split_len == 0u ? 0u : gl_WorkGroupID.z * pc.split_len;
    const uint k1 = pc.split_len == 0u ? limit : min(limit, k0 + pc.split_len);
    const uint c0 = g * pc.head_dim;
    for (uint base = k0; base < k1; base += wg) {
        const uint j = base + lid;
        float s[G_MAX];
        for (uint hh = 0u; hh < G_MAX; hh++)
            s[hh] = j < k1 ? 0.0 : neg_inf;
        if (j < k1) {
            for (uint i = 0u; i < half_dim; i++) {
                const vec2 kv = k_pair(j, c0 + 2u * i, pc.k_row_bytes);
                for (uint hh = 0u; hh < nh; hh++)
                    s[hh] += dot(kv, qs[hh * (MAX_HEAD_DIM / 2u) + i]);
            }
        }
        for (uint hh = 0u; hh < nh; hh++) { // nh is the same for the whole workgroup
            const float m_new = max(m[hh], wg_max(s[hh])); // key `base` is in range: finite
            const float p = j < k1 ? exp(s[hh] - m_new) : 0.0;
            corr[hh] = exp(m[hh] - m_new);
            l[hh] = l[hh] * corr[hh] + wg_sum(p);
            m[hh] = m_new;
            ps[hh * wg + lid] = p; // the previous tile's reads of ps ended at its last barrier
        }
        barrier();
        const uint n = min(wg, k1 - base);
        for (uint i = 0u; i < DIMS_PER_INVOCATION; i++) {
            const uint d = lid + i * wg;
            if (d >= pc.head_dim)
                break;
            const uint c = c0 + (d & ~1u);
            float a[G_MAX];
            for (uint hh = 0u; hh < G_MAX; hh++)
                a[hh] = acc[hh][i] * corr[hh];
            for (uint jj = 0u; jj < n; jj++) {
                const float v = v_pair(base + jj, c, pc.v_row_bytes)[d & 1u];
                for (uint hh = 0u; hh < nh; hh++)
                    a[hh] += ps[hh * wg + jj] * v;
            }
            for (uint hh = 0u; hh < G_MAX; hh++)
                acc[hh][i] = a[hh];
        }
        barrier(); // every invocation has read ps before the next tile writes it
    }

    for (uint hh = 0u; hh < nh; hh++) {
        const uint h = h0 + hh;
        if (pc.split_len != 0u) {
            // partial: running maximum, sum of weights, unnormalized accumulator
            const uint at = ((t * pc.heads + h) * gl_NumWorkGroups.z + gl_WorkGroupID.z) *
                            (pc.head_dim + 2u);
            if (lid == 0u) {
                dst[at] = m[hh];
                dst[at + 1u] = l[hh];
            }
            for (uint i = 0u; i < DIMS_PER_INVOCATION; i++) {
                const uint d = lid + i * wg;
                if (d < pc.head_dim)
                    dst[at + 2u + d] = acc[hh][i];
            }
        } else {
            const float inv = 1.0 / l[hh];
            const uint q_at = (t * pc.heads + h) * pc.head_dim;
            for (uint i = 0u; i < DIMS_PER_INVOCATION; i++) {
                const uint d = lid + i * wg;
                if (d < pc.head_dim)
                    dst[q_at + d] = acc[hh][i] * inv;
            }
        }
    }
}
