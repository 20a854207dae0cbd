#version 450
// out[n][row0 + m] = sum_k W[m][k] * X[n][k] on the matrix units: the prefill product
// through cooperative matrices (VK_NV_cooperative_matrix), 16 x 16 x 16 fragments of f16
// W and X with f32 sums.
//
// A workgroup of four subgroups computes a TM x TN tile of out (64 x 64 by default), K
// going by TK a step: W's TM rows dequantized (vkb_quant.glsl) and X's TN columns
// converted to f16 into shared memory, each as rows of K. Subgroup s owns the quarter at
// (s & 1, s >> 1) of the tile: FM x FN accumulator fragments (TM = 32 FM, TN = 32 FN), fed
// per 16 values of K by FM fragments of W (row-major: A(r, k) = ws[r * LDK + k]) and FN
// of X (column-major: B(k, c) = xs[c * LDK + k]). At the end each accumulator goes through the subgroup's own 16 x 16 scratch
// (column-major, so neighbouring invocations write neighbouring rows of out) to
// vkb_outputs.glsl's store_output, which cuts the tile's edges.
//
// COOPMAT_EMU replaces the fragment types and operations by plain code with the same
// meaning (a loaded fragment is where it lies in shared memory; an accumulator is 256 /
// subgroup size floats per invocation), so the tile logic around them runs and is tested
// on devices without matrix units. Only the few macros below differ between the two.
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_shader_subgroup_basic : require
#if !defined(COOPMAT_EMU)
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#endif

layout(local_size_x_id = 0) in;               // four subgroups
layout(constant_id = 1) const uint TM = 64u;  // rows of W per tile: 32 FM
layout(constant_id = 2) const uint TN = 64u;  // columns of X per tile: 32 FN
layout(constant_id = 3) const uint TK = 32u;  // values of K per step, a multiple of 16
layout(constant_id = 4) const uint OUTS = 1u; // outputs (1 to 3; vkb_outputs.glsl)
layout(constant_id = 5) const uint FM = 2u;   // fragments down a subgroup's part
layout(constant_id = 6) const uint FN = 2u;   // fragments across it
const bool ACC = false;

const uint LDK = TK + 8u; // f16 per row of ws and xs: a multiple of 8 (16 bytes)
const uint SUBGROUPS = 4u;
const uint FR = 16u; // fragment side

layout(std430, binding = 0) readonly buffer Weights { uint wq[]; };
layout(std430, binding = 1) readonly buffer X { vec4 x4[]; };
#include "vkb_outputs.glsl"

layout(push_constant) uniform Push {
    uint k;         // values per row, a multiple of 8
    uint row_bytes; // bytes per row of W
    uint row0;      // index of this part's first row among all of W's
    uint rows;      // rows in this part of W
    uint n;         // columns of X
    uint x_stride;  // floats between columns of X, a multiple of 4
    uint rows_all;  // rows of W in all its parts
    uint split1;    // W's first row written to the second output, the third's
    uint split2;
} pc;

#include "vkb_quant.glsl"

shared float16_t ws[TM * LDK];
shared float16_t xs[TN * LDK];
shared float cs[SUBGROUPS * FR * FR];

#if defined(COOPMAT_EMU)
const uint EMU_MAX = FR * FR / 8u; // accumulator floats per invocation (subgroups of 8 up)
struct cm_view {
    uint at; // a fragment's first element in ws (A) or xs (B), rows of LDK
};
struct cm_acc {
    float v[EMU_MAX]; // element lane + i * subgroup size: row e % 16, column e / 16
};
#define CM_A cm_view
#define CM_B cm_view
#define CM_ACC cm_acc
#define CM_LOAD_A(f, at_) f.at = (at_)
#define CM_LOAD_B(f, at_) f.at = (at_)

void cm_zero(out cm_acc c)
{
    for (uint i = 0u; i < EMU_MAX; i++)
        c.v[i] = 0.0;
}

cm_acc cm_mul_add(cm_view a, cm_view b, cm_acc c)
{
    for (uint i = 0u; i < FR * FR / gl_SubgroupSize; i++) {
        const uint e = gl_SubgroupInvocationID + i * gl_SubgroupSize;
        const uint r = e % FR, col = e / FR;
        float s = c.v[i];
        for (uint kk = 0u; kk < FR; kk++)
            s += float(ws[a.at + r * LDK + kk]) * float(xs[b.at + col * LDK + kk]);
        c.v[i] = s;
    }
    return c;
}

// Column-major into cs at `at`: element (r, c) at cs[at + c * 16 + r].
void cm_store(cm_acc c, uint at)
{
    for (uint i = 0u; i < FR * FR / gl_SubgroupSize; i++) {
        const uint e = gl_SubgroupInvocationID + i * gl_SubgroupSize;
        cs[at + (e / FR) * FR + e % FR] = c.v[i];
    }
}
#else
#define CM_A fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#define CM_B fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#define CM_ACC fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>
#define CM_LOAD_A(f, at) coopMatLoadNV(f, ws, at, LDK, false)
#define CM_LOAD_B(f, at) coopMatLoadNV(f, xs, at, LDK, true)
#define cm_zero(c) c = CM_ACC(0.0)
#define cm_mul_add(a, b, c) coopMatMulAddNV(a, b, c)
#define cm_store(c, at) coopMatStoreNV(c, cs, at, FR, true)
#endif

void main()
{
    QUANT_TABLES_INIT();
    const uint lid = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x;
    const uint m0 = gl_WorkGroupID.x * TM, n0 = gl_WorkGroupID.y * TN;
    const uint sg = gl_SubgroupID, sm = (sg & 1u) * FM * FR, sn = (sg >> 1u) * FN * FR;
    if (gl_NumSubgroups != SUBGROUPS) {
        // The tile needs exactly four subgroups (the backend sizes the workgroup from the
        // device's subgroup size): say so in the output rather than leave holes in it.
        for (uint e = lid; e < TM * TN; e += wg)
            if (m0 + e % TM < pc.rows && n0 + e / TM < pc.n)
                store_output(n0 + e / TM, pc.row0 + m0 + e % TM, uintBitsToFloat(0x7fc00000u),
                             pc.rows_all, pc.split1, pc.split2);
        return;
    }

    CM_ACC acc[FM * FN]; // fragment (i, j) of the subgroup's quarter at acc[i * FN + j]
    for (uint f = 0u; f < FM * FN; f++)
        cm_zero(acc[f]);

    for (uint k0 = 0u; k0 < pc.k; k0 += TK) {
        for (uint t = lid; t < TM * (TK / 8u); t += wg) {
            const uint mr = t / (TK / 8u), kk = (t % (TK / 8u)) * 8u;
            vec4 a = vec4(0.0), b = vec4(0.0);
            if (m0 + mr < pc.rows && k0 + kk < pc.k)
                dequant8((m0 + mr) * pc.row_bytes, k0 + kk, a, b);
            for (uint e = 0u; e < 4u; e++) {
                ws[mr * LDK + kk + e] = float16_t(a[e]);
                ws[mr * LDK + kk + 4u + e] = float16_t(b[e]);
            }
        }
        for (uint t = lid; t < TN * (TK / 4u); t += wg) {
            const uint nc = t / (TK / 4u), kq = (t % (TK / 4u)) * 4u;
            vec4 v = vec4(0.0);
            if (n0 + nc < pc.n && k0 + kq < pc.k)
                v = x4[((n0 + nc) * pc.x_stride + k0 + kq) / 4u];
            for (uint e = 0u; e < 4u; e++)
                xs[nc * LDK + kq + e] = float16_t(v[e]);
        }
        barrier();
        for (uint kk = 0u; kk < TK; kk += FR) {
            CM_A a[FM];
            CM_B b[FN];
            for (uint i = 0u; i < FM; i++)
                CM_LOAD_A(a[i], (sm + i * FR) * LDK + kk);
            for (uint j = 0u; j < FN; j++)
                CM_LOAD_B(b[j], (sn + j * FR) * LDK + kk);
            for (uint i = 0u; i < FM; i++)
                for (uint j = 0u; j < FN; j++)
                    acc[i * FN + j] = cm_mul_add(a[i], b[j], acc[i * FN + j]);
        }
        barrier();
    }

    const uint at = sg * FR * FR;
    for (uint f = 0u; f < FM * FN; f++) {
        cm_store(acc[f], at);
        subgroupMemoryBarrierShared();
        subgroupBarrier();
        for (uint e = gl_SubgroupInvocationID; e < FR * FR; e += gl_SubgroupSize) {
            const uint m = m0 + sm + (f / FN) * FR + e % FR;
            const uint n = n0 + sn + (f % FN) * FR + e / FR;
            if (m < pc.rows && n < pc.n)
                store_output(n, pc.row0 + m, cs[at + e], pc.rows_all, pc.split1, pc.split2);
        }
        subgroupBarrier();
    }
}
