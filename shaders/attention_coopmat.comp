#version 450
// Causal attention for prefill on the matrix units: attention.comp's result, with q·kᵀ
// and p·v as 16 x 16 x 16 cooperative-matrix products (VK_NV_cooperative_matrix; f16
// factors, f32 sums). The caches are read in their stored types (vkb_kv.glsl: f16, q8_0,
// q4_0, KIVI) and their values rounded to f16 as they are staged.
//
// A workgroup of two subgroups serves 32 consecutive query tokens of one head h (KV head
// g = h / (heads / kv_heads)); subgroup s owns tokens t0 + 16s .. t0 + 16s + 15. Keys go
// by in tiles of 32, staged with their values into shared memory as f16. Two passes over
// the tiles:
//  1. the scores S = q·kᵀ (q pre-scaled, as f16), each row's maximum m over its keys;
//  2. the scores again, p = exp(S - m) rounded to f16 (0 after the row's causal limit),
//     l = Σp, and O += p·v in accumulator fragments.
// Computing S twice costs a third more products and spares the running rescale of O,
// which opaque fragments cannot do per row. Then out = O / l.
//
// A sliding window (window > 0) starts the tiles at the first token's first key and masks
// each row's keys before its own; softcap > 0 caps the scores (attention.comp's).
// head_dim a multiple of 16, at most 128 (the backend takes attention.comp otherwise).
// q and out are f32 [tokens][heads][head_dim]; the caches [position][kv_heads][head_dim]
// in K_TYPE and V_TYPE (specialization constants, as attention.comp's). COOPMAT_EMU: the fragment operations in plain code (as matmul_coopmat.comp), for
// the tests on devices without matrix units.
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_shader_subgroup_basic : require
#if !defined(COOPMAT_EMU)
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#endif

#include "vkb_act.glsl"
#include "vkb_kv.glsl"

layout(local_size_x_id = 0) in; // two subgroups
layout(constant_id = 1) const uint K_TYPE = KV_F16;
layout(constant_id = 2) const uint V_TYPE = KV_F16;

layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer K { uint kc[]; };
layout(std430, binding = 2) readonly buffer V { uint vc[]; };
layout(std430, binding = 3) writeonly buffer Out { float dst[]; };

layout(push_constant) uniform Push { // attention.comp's
    uint head_dim;
    uint heads;
    uint kv_heads;
    uint tokens;
    uint n_kv;
    uint pos0;
    float scale;
    uint k_row_bytes; // bytes per cache position (KIVI: per row or group of the store)
    uint v_row_bytes;
    uint split_len; // unused: prefill is not split
    uint kv_nq;     // KIVI: positions in the quantized store; the rest in the f16 window
    uint ring_rows; // KIVI: rows of the window ring
    uint group;     // KIVI: values per scale
    uint window;    // sliding window: 0 none (attention.comp)
    float softcap;  // 0 none
} pc;

KV_PAIR_FN(k_pair, kc, K_TYPE, true)
KV_PAIR_FN(v_pair, vc, V_TYPE, false)

const uint FR = 16u;                // fragment side
const uint SUBGROUPS = 2u;          // each with 16 query rows
const uint BR = SUBGROUPS * FR;     // query rows per workgroup
const uint BC = 32u;                // keys per tile
const uint MAX_D = 128u;            // head_dim limit
const uint LD = MAX_D + 8u;         // f16 per row of qs, ks, vs (16-byte multiple)
const uint SS = FR * BC;            // floats of a subgroup's score (and output) scratch
const uint MAX_FRAGS = MAX_D / FR;  // fragments across head_dim

shared float16_t qs[BR * LD]; // the queries, scaled: [row][dim]
shared float16_t ks[BC * LD]; // the tile's keys: [key][dim]
shared float16_t vs[BC * LD]; // its values: [key][dim]
shared float ss[SUBGROUPS * SS];        // per subgroup: S [row][key], later O's fragments
shared float16_t ps[SUBGROUPS * FR * BC]; // per subgroup: p [row][key]
shared float ls[BR];                     // each row's l, for the output

#if defined(COOPMAT_EMU)
const uint EMU_MAX = FR * FR / 8u; // accumulator floats per invocation (subgroups of 8 up)
const uint ID_qs = 0u, ID_ks = 1u, ID_vs = 2u, ID_ps = 3u; // which array a view is of
struct cm_view { // a loaded fragment: where it lies, element (r, c) at at + r * ld + c (or
    uint arr;    // at + c * ld + r column-major)
    uint at;
    uint ld;
    bool col;
};
struct cm_acc {
    float v[EMU_MAX]; // element lane + i * subgroup size: row e / 16, column e % 16
};
#define CM_A cm_view
#define CM_B cm_view
#define CM_ACC cm_acc
#define CM_LOAD(f, arr_, at_, ld_, col_) f = cm_view(ID_##arr_, at_, ld_, col_)

// Element (r, c) of a view of array X.
#define CM_ELEM(X, f, r, c) float(X[(f).at + ((f).col ? (c) * (f).ld + (r) : (r) * (f).ld + (c))])

void cm_zero(out cm_acc c)
{
    for (uint i = 0u; i < EMU_MAX; i++)
        c.v[i] = 0.0;
}

// The kernel multiplies q by keys and p by values: one loop for each.
cm_acc cm_mul_add(cm_view a, cm_view b, cm_acc c)
{
    for (uint i = 0u; i < FR * FR / gl_SubgroupSize; i++) {
        const uint e = gl_SubgroupInvocationID + i * gl_SubgroupSize, r = e / FR, col = e % FR;
        float s = c.v[i];
        if (a.arr == ID_qs)
            for (uint kk = 0u; kk < FR; kk++)
                s += CM_ELEM(qs, a, r, kk) * CM_ELEM(ks, b, kk, col);
        else
            for (uint kk = 0u; kk < FR; kk++)
                s += CM_ELEM(ps, a, r, kk) * CM_ELEM(vs, b, kk, col);
        c.v[i] = s;
    }
    return c;
}

// Row-major into ss at `at`, rows `ld` apart.
void cm_store(cm_acc c, uint at, uint ld)
{
    for (uint i = 0u; i < FR * FR / gl_SubgroupSize; i++) {
        const uint e = gl_SubgroupInvocationID + i * gl_SubgroupSize;
        ss[at + (e / FR) * ld + e % FR] = c.v[i];
    }
}
#else
#define CM_A fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#define CM_B fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#define CM_ACC fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>
#define CM_LOAD(f, arr, at, ld, col) coopMatLoadNV(f, arr, at, ld, col)
#define cm_zero(c) c = CM_ACC(0.0)
#define cm_mul_add(a, b, c) coopMatMulAddNV(a, b, c)
#define cm_store(c, at, ld) coopMatStoreNV(c, ss, at, ld, false)
#endif

// Stages the tile of keys (and, with values, their values) from `base`: rows past `k1`
// are zero, so that a masked key's weight 0 meets a finite value.
void stage(uint base, uint k1, uint g, bool values)
{
    const uint lid = gl_LocalInvocationID.x, pairs = pc.head_dim / 2u;
    for (uint t = lid; t < BC * pairs; t += gl_WorkGroupSize.x) {
        const uint key = t / pairs, d = 2u * (t % pairs), j = base + key;
        vec2 kv = vec2(0.0), vv = vec2(0.0);
        if (j < k1) {
            kv = k_pair(j, g * pc.head_dim + d, pc.k_row_bytes);
            if (values)
                vv = v_pair(j, g * pc.head_dim + d, pc.v_row_bytes);
        }
        ks[key * LD + d] = float16_t(kv.x);
        ks[key * LD + d + 1u] = float16_t(kv.y);
        if (values) {
            vs[key * LD + d] = float16_t(vv.x);
            vs[key * LD + d + 1u] = float16_t(vv.y);
        }
    }
}

// The first key the query at position p sees (its sliding window's; 0 without one).
uint first_key(uint p)
{
    return pc.window != 0u && p >= pc.window ? p + 1u - pc.window : 0u;
}

// A score as the softmax takes it: soft-capped where the model caps them.
float score(float s)
{
    return pc.softcap > 0.0 ? act_softcap(s, pc.softcap) : s;
}

void main()
{
    const uint lid = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x;
    const uint h = gl_WorkGroupID.x, g = h / (pc.heads / pc.kv_heads);
    const uint t0 = gl_WorkGroupID.y * BR, nt = min(BR, pc.tokens - t0);
    const uint sg = gl_SubgroupID, lane = gl_SubgroupInvocationID, sgs = gl_SubgroupSize;
    const uint D = pc.head_dim, nf = D / FR;
    const float neg_inf = uintBitsToFloat(0xff800000u);

    if (gl_NumSubgroups != SUBGROUPS) { // the backend sizes the workgroup: say it failed
        for (uint i = lid; i < nt * D; i += wg)
            dst[((t0 + i / D) * pc.heads + h) * D + i % D] = uintBitsToFloat(0x7fc00000u);
        return;
    }

    for (uint i = lid; i < BR * D; i += wg) {
        const uint r = i / D, d = i % D;
        qs[r * LD + d] =
            r < nt ? float16_t(q[((t0 + r) * pc.heads + h) * D + d] * pc.scale) : float16_t(0.0);
    }
    barrier();
    CM_A qf[MAX_FRAGS];
    for (uint f = 0u; f < MAX_FRAGS; f++)
        if (f < nf)
            CM_LOAD(qf[f], qs, (sg * FR) * LD + f * FR, LD, false);

    // rows of this subgroup handled by this invocation: 16 / subgroup size of them (none
    // for lanes past 16), row sg * 16 + lane + i * sgs; a row's limit: its causal one
    const uint k1 = min(pc.n_kv, pc.pos0 + t0 + nt); // the furthest row's
    // with a sliding window, each row's first key; the tiles start at the first row's
    const uint k0 = first_key(pc.pos0 + t0);
    float m[4], l[4];
    for (uint i = 0u; i < 4u; i++) {
        m[i] = neg_inf;
        l[i] = 0.0;
    }
    const uint at_s = sg * SS;

    CM_ACC o[MAX_FRAGS]; // the output's fragments, summed in the second pass
    for (uint f = 0u; f < MAX_FRAGS; f++)
        cm_zero(o[f]);
    for (uint pass = 0u; pass < 2u; pass++) {
        for (uint base = k0; base < k1; base += BC) {
            stage(base, k1, g, pass == 1u);
            barrier();
            for (uint kf = 0u; kf < BC / FR; kf++) {
                CM_ACC s;
                cm_zero(s);
                for (uint f = 0u; f < MAX_FRAGS; f++)
                    if (f < nf) {
                        CM_B kb;
                        CM_LOAD(kb, ks, (kf * FR) * LD + f * FR, LD, true);
                        s = cm_mul_add(qf[f], kb, s);
                    }
                cm_store(s, at_s + kf * FR, BC);
            }
            subgroupMemoryBarrierShared();
            subgroupBarrier();
            for (uint i = 0u; i < 4u; i++) {
                const uint r = lane + i * sgs;
                if (r >= FR)
                    break;
                const uint row = sg * FR + r;
                const uint lim = row < nt ? min(pc.n_kv, pc.pos0 + t0 + row + 1u) : 0u;
                const uint from = first_key(pc.pos0 + t0 + row);
                if (pass == 0u) {
                    for (uint c = 0u; c < BC; c++)
                        if (base + c < lim && base + c >= from)
                            m[i] = max(m[i], score(ss[at_s + r * BC + c]));
                } else {
                    for (uint c = 0u; c < BC; c++) {
                        const float16_t p =
                            base + c < lim && base + c >= from
                                ? float16_t(exp(score(ss[at_s + r * BC + c]) - m[i]))
                                : float16_t(0.0);
                        ps[sg * FR * BC + r * BC + c] = p;
                        l[i] += float(p);
                    }
                }
            }
            if (pass == 1u) {
                subgroupMemoryBarrierShared();
                subgroupBarrier();
                for (uint kf = 0u; kf < BC / FR; kf++) {
                    CM_A pa;
                    CM_LOAD(pa, ps, sg * FR * BC + kf * FR, BC, false);
                    for (uint f = 0u; f < MAX_FRAGS; f++)
                        if (f < nf) {
                            CM_B vb;
                            CM_LOAD(vb, vs, (kf * FR) * LD + f * FR, LD, false);
                            o[f] = cm_mul_add(pa, vb, o[f]);
                        }
                }
            }
            barrier(); // the tile's reads done before the next one is staged
        }
        if (pass == 0u)
            continue;

        for (uint i = 0u; i < 4u; i++) {
            const uint r = lane + i * sgs;
            if (r < FR)
                ls[sg * FR + r] = l[i];
        }
        for (uint f = 0u; f < MAX_FRAGS; f++) {
            if (f >= nf)
                break;
            subgroupMemoryBarrierShared();
            subgroupBarrier();
            cm_store(o[f], at_s, FR);
            subgroupMemoryBarrierShared();
            subgroupBarrier();
            for (uint e = lane; e < FR * FR; e += sgs) {
                const uint row = sg * FR + e / FR;
                if (row < nt)
                    dst[((t0 + row) * pc.heads + h) * D + f * FR + e % FR] =
                        ss[at_s + e] / ls[row];
            }
        }
    }
}
