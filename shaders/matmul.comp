#version 450
// out[n][row0 + m] = sum_k W[m][k] * X[n][k]: the prefill matrix-matrix product, f32
// arithmetic on every device. A workgroup computes a TM x TN tile of out; K goes by in
// steps of TK, W dequantized and X loaded into shared memory once per step; each
// invocation owns an RM x RN block of outputs, strided by TM/RM and TN/RN so neighbours
// read neighbouring shared words: RM + RN shared loads feed RM x RN multiply-adds. With
// OUTS > 1, W holds the rows of several products and out is several buffers
// (vkb_outputs.glsl).
layout(local_size_x_id = 0) in;              // (TM / RM) * (TN / RN)
layout(constant_id = 1) const uint TM = 32u; // rows of W per tile, a multiple of RM
layout(constant_id = 2) const uint TN = 32u; // columns of X per tile, a multiple of RN
layout(constant_id = 3) const uint TK = 16u; // values of K per step, a multiple of 8
layout(constant_id = 4) const uint OUTS = 1u; // outputs (1 to 3; vkb_outputs.glsl)
layout(constant_id = 5) const uint RM = 4u;   // rows of out per invocation
layout(constant_id = 6) const uint RN = 4u;   // columns of out per invocation
const bool ACC = false;

layout(std430, binding = 0) readonly buffer Weights { uint wq[]; };
layout(std430, binding = 1) readonly buffer X { vec4 x4[]; };
#include "vkb_outputs.glsl"

layout(push_constant) uniform Push {
    uint k;         // values per row, a multiple of QK
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

shared float ws[TK * TM];
shared float xs[TK * TN];

void main()
{
    QUANT_TABLES_INIT();
    const uint lid = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x;
    const uint m0 = gl_WorkGroupID.x * TM, n0 = gl_WorkGroupID.y * TN;
    const uint tm = lid % (TM / RM), tn = lid / (TM / RM);

    float acc[RM * RN];
    for (uint i = 0u; i < RM * RN; i++)
        acc[i] = 0.0;

    for (uint k0 = 0u; k0 < pc.k; k0 += TK) {
        for (uint t = lid; t < TM * (TK / 8u); t += wg) {
            uint mr = t / (TK / 8u), kk = (t % (TK / 8u)) * 8u;
            vec4 a = vec4(0.0), b = vec4(0.0);
            if (m0 + mr < pc.rows && k0 + kk < pc.k)
                dequant8((m0 + mr) * pc.row_bytes, k0 + kk, a, b);
            for (uint e = 0u; e < 4u; e++) {
                ws[(kk + e) * TM + mr] = a[e];
                ws[(kk + 4u + e) * TM + mr] = b[e];
            }
        }
        for (uint t = lid; t < TN * (TK / 4u); t += wg) {
            uint nc = t / (TK / 4u), kq = (t % (TK / 4u)) * 4u;
            vec4 v = vec4(0.0);
            if (n0 + nc < pc.n && k0 + kq < pc.k)
                v = x4[((n0 + nc) * pc.x_stride + k0 + kq) / 4u];
            for (uint e = 0u; e < 4u; e++)
                xs[(kq + e) * TN + nc] = v[e];
        }
        barrier();
        for (uint kk = 0u; kk < TK; kk++) {
            float a[RM], b[RN];
            for (uint i = 0u; i < RM; i++)
                a[i] = ws[kk * TM + tm + i * (TM / RM)];
            for (uint j = 0u; j < RN; j++)
                b[j] = xs[kk * TN + tn + j * (TN / RN)];
            for (uint i = 0u; i < RM; i++)
                for (uint j = 0u; j < RN; j++)
                    acc[i * RN + j] += a[i] * b[j];
        }
        barrier();
    }

    for (uint i = 0u; i < RM; i++) {
        uint m = m0 + tm + i * (TM / RM);
        for (uint j = 0u; j < RN; j++) {
            uint n = n0 + tn + j * (TN / RN);
            if (m < pc.rows && n < pc.n)
                store_output(n, pc.row0 + m, acc[i * RN + j], pc.rows_all, pc.split1, pc.split2);
        }
    }
}
