#version 450
// Causal attention over a KV cache:
//
//   out[t][h] = sum_j softmax_j(q[t][h] · k[j][g] · scale) · v[j][g],  g = h / (heads / kv_heads),
//   over the keys j < min(n_kv, pos0 + t + 1); with a sliding window (window > 0) only
//   those with pos0 + t - j < window (gemma's local layers); with softcap > 0 each score s
//   becomes softcap · tanh(s / softcap) first (gemma 2)
//
// A workgroup serves up to R_MAX query rows that share a KV head: the query heads of its
// group (grouped-query attention) and, when the group has fewer than R_MAX heads,
// consecutive tokens (prefill tiles of query rows). Each key and value it reads, and
// dequantizes, serves all of its rows. x counts kv heads x chunks of their groups, y tiles
// of tokens, z splits of the keys (split-K decode).
//
// Keys are visited in tiles of one key per invocation with an online softmax (running
// maximum and sum per row), so any context length runs in fixed shared memory. q and out
// are f32 [tokens][heads][head_dim]; the caches hold [position][kv_heads][head_dim] values
// in their stored type (K_TYPE, V_TYPE, specialization constants: f16, q8_0, q4_0, kivi4
// or kivi2; vkb_kv.glsl), dequantized here as they are read. Invocation i accumulates
// output dimensions 2i, 2i + 1, 2(i + wg) and 2(i + wg) + 1 of each row.
//
// pos0 AT_POS: the queries are at pos[0] + t, read here, and the keys j < min(n_kv,
// pos[0] + tokens) (n_kv then bounds them: the cache's rows), the splits re-cut to them:
// one recording serves every decode step.
//
// OUT_Q8 (specialization constant 3): without splits, out gets the rows as the 8-bit
// blocks of vkb_q8.glsl (the integer-dot-product matvec's input) instead of floats: the
// bits of writing floats and quantize_q8.comp after (head_dim a multiple of 32, the
// workgroup of 8).
#include "vkb_act.glsl"
#include "vkb_index.glsl"
#include "vkb_kv.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint K_TYPE = KV_F16;
layout(constant_id = 2) const uint V_TYPE = KV_F16;
layout(constant_id = 3) const bool OUT_Q8 = false;
// soft-capped scores (pc.softcap > 0): compiled in only where a model caps them, so that
// the others' kernels are what they were
layout(constant_id = 4) const bool SOFTCAP = false;

#include "vkb_reduce.glsl" // after the workgroup size: it sizes shared memory by it

#define MAX_HEAD_DIM 256
#define DIMS_PER_INVOCATION 4

layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer K { uint kc[]; };
layout(std430, binding = 2) readonly buffer V { uint vc[]; };
layout(std430, binding = 3) writeonly buffer Out { float dst[]; };
layout(std430, binding = 3) writeonly buffer OutQ8 { uint xq[]; }; // OUT_Q8
layout(std430, binding = 4) readonly buffer Pos { int pos[]; };

layout(push_constant) uniform Push {
    uint head_dim; // even, at most MAX_HEAD_DIM and DIMS_PER_INVOCATION x workgroup
    uint heads;
    uint kv_heads;
    uint tokens;
    uint n_kv; // keys in the cache (pos0 AT_POS: at most)
    uint pos0; // position of query token 0, or AT_POS
    float scale;
    uint k_row_bytes; // bytes per cache position
    uint v_row_bytes;
    uint split_len; // 0: all keys; else keys per split (workgroup z), partial results out
    uint kv_nq;     // KIVI: positions in the quantized store; the rest in the f16 window
    uint ring_rows; // KIVI: rows of the window ring
    uint group;     // KIVI: values per scale
    uint window;    // sliding window: 0 none
    float softcap;  // 0 none
} pc;

#include "vkb_q8.glsl"

KV_PAIR_FN(k_pair, kc, K_TYPE, true)
KV_PAIR_FN(v_pair, vc, V_TYPE, false)

#define R_MAX 8u // query rows per workgroup
// Cache reads issued together before their products: a GPU does not reorder loads past
// the arithmetic waiting on them, so a loop of one read and its use per step waits on
// memory once per step (on an H100, 29 us of decode attention at a 40-key context).
#define UNROLL 8u
// Loops over the rows run R_MAX times with the rows past `rows` skipped (uniformly), so
// that the per-row arrays are indexed by constants and stay in registers: a loop to
// `rows` indexes them at run time, which puts them in memory.
#define FOR_ROWS(r) for (uint r = 0u; r < R_MAX; r++) if (r < rows)

shared vec2 qs[R_MAX * (MAX_HEAD_DIM / 2)];
shared float ps[R_MAX * gl_WorkGroupSize.x];

void main()
{
    // rows: nh heads sharing KV head g (all of the group, or R_MAX of it) x nt tokens;
    // row r is head h0 + r % nh at token t0 + r / nh
    const uint group = pc.heads / pc.kv_heads;
    const uint nh_max = min(group, R_MAX), tq = R_MAX / nh_max;
    const uint chunks = (group + nh_max - 1u) / nh_max;
    const uint g = gl_WorkGroupID.x / chunks;
    const uint h0 = g * group + (gl_WorkGroupID.x % chunks) * nh_max;
    const uint nh = min(nh_max, g * group + group - h0);
    const uint t0 = gl_WorkGroupID.y * tq;
    const uint nt = min(tq, pc.tokens - t0), rows = nh * nt;
    const uint lid = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x;
    const uint half_dim = pc.head_dim / 2u;
    for (uint r = 0u; r < rows; r++) {
        const uint q_at = ((t0 + r / nh) * pc.heads + h0 + r % nh) * pc.head_dim;
        for (uint i = lid; i < half_dim; i += wg)
            qs[r * (MAX_HEAD_DIM / 2u) + i] =
                vec2(q[q_at + 2u * i], q[q_at + 2u * i + 1u]) * pc.scale;
    }
    barrier();

    const float neg_inf = uintBitsToFloat(0xff800000u);
    float m[R_MAX], l[R_MAX], corr[R_MAX];
    float acc[R_MAX][DIMS_PER_INVOCATION];
    for (uint r = 0u; r < R_MAX; r++) {
        m[r] = neg_inf;
        l[r] = 0.0;
        corr[r] = 1.0;
        for (uint i = 0u; i < DIMS_PER_INVOCATION; i++)
            acc[r][i] = 0.0;
    }

    // the keys of this workgroup: all, or its split's (split-K decode: one query row's
    // keys spread over many workgroups, merged by attention_merge.comp); each row stops
    // at its own causal limit
    const bool at_pos = pc.pos0 == AT_POS;
    const uint pos0 = at_pos ? uint(pos[0]) : pc.pos0;
    const uint n_kv = at_pos ? min(pc.n_kv, pos0 + pc.tokens) : pc.n_kv;
    // with a window, the first key this tile's first query sees: the splits cut from there
    // (the host's split_len from the first query's, no later)
    const uint lo = pc.window != 0u && pos0 + t0 >= pc.window ? pos0 + t0 + 1u - pc.window : 0u;
    const uint split_len = at_pos && pc.split_len != 0u
                               ? (n_kv - lo + gl_NumWorkGroups.z - 1u) / gl_NumWorkGroups.z
                               : pc.split_len;
    const uint k0 = lo + (split_len == 0u ? 0u : gl_WorkGroupID.z * split_len);
    const uint k_end = split_len == 0u ? n_kv : min(n_kv, k0 + split_len);
    const uint k1 = min(k_end, pos0 + t0 + nt); // the last token's limit: the furthest
    const uint c0 = g * pc.head_dim;
    for (uint base = k0; base < k1; base += wg) {
        const uint j = base + lid;
        float s[R_MAX];
        for (uint r = 0u; r < R_MAX; r++)
            s[r] = neg_inf;
        if (j < k1) {
            FOR_ROWS(r)
                s[r] = 0.0;
            if ((K_TYPE == KV_Q8_0 || K_TYPE == KV_Q4_0) && (pc.head_dim & 31u) == 0u) {
                // a block of 32 channels at a time, read in the aligned words it spans (q8_0:
                // 34 bytes in 9, q4_0: 18 in 5; a block starts on a word or half a word):
                // its scale once, its integers four at a time, the sums scaled
                const uint bb = KV_BLOCK_BYTES(K_TYPE), nw = K_TYPE == KV_Q8_0 ? 9u : 5u;
                for (uint b = 0u; b < pc.head_dim / 32u; b++) {
                    const uint blk = j * pc.k_row_bytes + ((c0 >> 5u) + b) * bb;
                    const bool odd = (blk & 2u) != 0u;
                    uint w[9];
                    for (uint i = 0u; i < 9u; i++)
                        w[i] = i < nw ? kc[(blk >> 2u) + i] : 0u;
                    const float d = unpackHalf2x16(odd ? w[0] >> 16u : w[0]).x;
                    const uint qo = b * 16u; // the block's first pair in qs
                    float part[R_MAX];
                    for (uint r = 0u; r < R_MAX; r++)
                        part[r] = 0.0;
                    for (uint i = 0u; i < nw - 1u; i++) {
                        // bytes 4i .. 4i + 3 of the integers
                        const uint q = odd ? w[i + 1u] : (w[i] >> 16u) | (w[i + 1u] << 16u);
                        if (K_TYPE == KV_Q8_0) {
                            // values 4i .. 4i + 3: pairs 2i, 2i + 1
                            const vec4 v = vec4(ivec4(uvec4(q) << uvec4(24u, 16u, 8u, 0u)) >> 24);
                            FOR_ROWS(r) {
                                const uint at = r * (MAX_HEAD_DIM / 2u) + qo + 2u * i;
                                part[r] += dot(v.xy, qs[at]) + dot(v.zw, qs[at + 1u]);
                            }
                        } else {
                            // low nibbles: values 4i .. 4i + 3, high: 16 + 4i ..
                            const uvec4 sh = uvec4(0u, 8u, 16u, 24u);
                            const vec4 lo = vec4(ivec4((uvec4(q) >> sh) & 15u) - 8);
                            const vec4 hi = vec4(ivec4((uvec4(q) >> (sh + 4u)) & 15u) - 8);
                            FOR_ROWS(r) {
                                const uint at = r * (MAX_HEAD_DIM / 2u) + qo + 2u * i;
                                part[r] += dot(lo.xy, qs[at]) + dot(lo.zw, qs[at + 1u]) +
                                           dot(hi.xy, qs[at + 8u]) + dot(hi.zw, qs[at + 9u]);
                            }
                        }
                    }
                    FOR_ROWS(r)
                        s[r] += d * part[r];
                }
            } else {
                // UNROLL pairs' loads issued together, then summed in order: one wait on
                // memory per UNROLL pairs instead of one per pair
                uint i = 0u;
                for (; i + UNROLL <= half_dim; i += UNROLL) {
                    vec2 kv[UNROLL];
                    for (uint u = 0u; u < UNROLL; u++)
                        kv[u] = k_pair(j, c0 + 2u * (i + u), pc.k_row_bytes);
                    for (uint u = 0u; u < UNROLL; u++)
                        FOR_ROWS(r)
                            s[r] += dot(kv[u], qs[r * (MAX_HEAD_DIM / 2u) + i + u]);
                }
                for (; i < half_dim; i++) {
                    const vec2 kv = k_pair(j, c0 + 2u * i, pc.k_row_bytes);
                    FOR_ROWS(r)
                        s[r] += dot(kv, qs[r * (MAX_HEAD_DIM / 2u) + i]);
                }
            }
            if (SOFTCAP)
                FOR_ROWS(r)
                    s[r] = act_softcap(s[r], pc.softcap);
            FOR_ROWS(r) {
                const uint p = pos0 + t0 + r / nh; // this row's position
                if (j >= min(k_end, p + 1u) || (pc.window != 0u && j + pc.window <= p))
                    s[r] = neg_inf; // after this row's token, or before its window
            }
        }
        FOR_ROWS(r) { // rows is the same for the whole workgroup
            const float m_new = max(m[r], wg_max(s[r]));
            // a row whose keys have not started (its limit is before this split) adds nothing
            const bool live = m_new != neg_inf;
            const float p = live && s[r] != neg_inf ? exp(s[r] - m_new) : 0.0;
            corr[r] = live ? exp(m[r] - m_new) : 1.0;
            l[r] = l[r] * corr[r] + wg_sum(p);
            m[r] = m_new;
            ps[r * wg + lid] = p; // the previous tile's reads of ps ended at its last barrier
        }
        barrier();
        const uint n = min(wg, k1 - base);
        // each invocation takes pairs of output dimensions (both values of a cache read)
        for (uint i = 0u; i < DIMS_PER_INVOCATION / 2u; i++) {
            const uint d = 2u * (lid + i * wg);
            if (d >= pc.head_dim)
                break;
            float a0[R_MAX], a1[R_MAX];
            for (uint r = 0u; r < R_MAX; r++) {
                a0[r] = acc[r][2u * i] * corr[r];
                a1[r] = acc[r][2u * i + 1u] * corr[r];
            }
            uint jj = 0u;
            for (; jj + UNROLL <= n; jj += UNROLL) { // loads together, sums in order
                vec2 v[UNROLL];
                for (uint u = 0u; u < UNROLL; u++)
                    v[u] = v_pair(base + jj + u, c0 + d, pc.v_row_bytes);
                for (uint u = 0u; u < UNROLL; u++)
                    FOR_ROWS(r) {
                        const float p = ps[r * wg + jj + u];
                        a0[r] += p * v[u].x;
                        a1[r] += p * v[u].y;
                    }
            }
            for (; jj < n; jj++) {
                const vec2 v = v_pair(base + jj, c0 + d, pc.v_row_bytes);
                FOR_ROWS(r) {
                    const float p = ps[r * wg + jj];
                    a0[r] += p * v.x;
                    a1[r] += p * v.y;
                }
            }
            for (uint r = 0u; r < R_MAX; r++) {
                acc[r][2u * i] = a0[r];
                acc[r][2u * i + 1u] = a1[r];
            }
        }
        barrier(); // every invocation has read ps before the next tile writes it
    }

    FOR_ROWS(r) {
        const uint h = h0 + r % nh, t = t0 + r / nh;
        if (pc.split_len != 0u) {
            // partial: running maximum, sum of weights, unnormalized accumulator
            const uint at = ((t * pc.heads + h) * gl_NumWorkGroups.z + gl_WorkGroupID.z) *
                            (pc.head_dim + 2u);
            if (lid == 0u) {
                dst[at] = m[r];
                dst[at + 1u] = l[r];
            }
            for (uint i = 0u; i < DIMS_PER_INVOCATION; i++) {
                const uint d = 2u * (lid + (i >> 1u) * wg) + (i & 1u);
                if (d < pc.head_dim)
                    dst[at + 2u + d] = acc[r][i];
            }
        } else if (!OUT_Q8) {
            const float inv = 1.0 / l[r];
            const uint q_at = (t * pc.heads + h) * pc.head_dim;
            for (uint i = 0u; i < DIMS_PER_INVOCATION; i++) {
                const uint d = 2u * (lid + (i >> 1u) * wg) + (i & 1u);
                if (d < pc.head_dim)
                    dst[q_at + d] = acc[r][i] * inv;
            }
        } else {
            // the row's values into qs (free after the last tile's barrier), for the quads
            const float inv = 1.0 / l[r];
            for (uint i = 0u; i < DIMS_PER_INVOCATION; i += 2u) {
                const uint pair = lid + (i >> 1u) * wg;
                if (2u * pair < pc.head_dim)
                    qs[r * (MAX_HEAD_DIM / 2u) + pair] = vec2(acc[r][i], acc[r][i + 1u]) * inv;
            }
        }
    }
    if (!OUT_Q8 || pc.split_len != 0u)
        return;
    // quad j of the rows (four values in a row: rows of a multiple of 32 values keep
    // eight of them per block) by invocation j % wg, at its place in the output
    barrier();
    const uint quads = pc.head_dim / 4u, blocks = pc.tokens * pc.heads * pc.head_dim / 32u;
    for (uint j0 = 0u; j0 < rows * quads; j0 += wg) {
        const uint j = j0 + lid, r = j / quads, c = j % quads;
        const bool live = j < rows * quads;
        vec4 v = vec4(0.0);
        uint quad = 0u;
        if (live) {
            const uint at = r * (MAX_HEAD_DIM / 2u) + 2u * c;
            v = vec4(qs[at], qs[at + 1u]);
            quad = ((t0 + r / nh) * pc.heads + h0 + r % nh) * quads + c;
        }
        q8_store(v, quad, blocks, live);
    }
}
