#version 450
// y[c][row0 + r] = sum_k W[r][k] * x[c][k] for the rows of one part of W and 1 to 8
// activation columns c: the decode matrix-vector product. Each workgroup takes ROWS
// rows; its invocations walk each row eight values at a time (neighbouring invocations
// read neighbouring bytes, so a subgroup's loads coalesce and each weight byte comes from
// memory once), accumulate in f32 and reduce with wg_sum.
#include "vkb_index.glsl"
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint ROWS = 1;  // rows per workgroup
layout(constant_id = 2) const uint NCOLS = 1; // activation columns
const uint ACCS = ROWS * NCOLS;

// All ROWS x NCOLS sums are reduced together, one barrier per step: partial sums of
// accumulator a at red[a * WG + i].
shared float red[ACCS * gl_WorkGroupSize.x];

layout(std430, binding = 0) readonly buffer Weights { uint wq[]; };
layout(std430, binding = 1) readonly buffer X { vec4 x4[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
    uint k;         // values per row, a multiple of QK
    uint row_bytes; // bytes per row of W
    uint row0;      // index in y of this part's first row
    uint rows;      // rows in this part of W
    uint x_stride;  // floats between columns of x, a multiple of 4
    uint y_stride;  // floats between columns of y
} pc;

#include "vkb_quant.glsl"

void main()
{
    const uint first = flat_group_id() * ROWS;
    if (first >= pc.rows)
        return; // the whole workgroup leaves together
    const uint lid = gl_LocalInvocationID.x;

    float acc[ROWS * NCOLS];
    for (uint i = 0u; i < ROWS * NCOLS; i++)
        acc[i] = 0.0;

#ifdef DEQUANT32
    // K-quant sub-blocks of 32 values: each invocation decodes a sub-block's scale and
    // minimum once for its 32 values (neighbouring invocations, neighbouring 16 bytes)
    const uint units32 = pc.k / 32u;
    for (uint u = lid; u < units32; u += gl_WorkGroupSize.x) {
        for (uint r = 0u; r < ROWS; r++) {
            if (first + r < pc.rows) {
                vec4 v[8];
                dequant32((first + r) * pc.row_bytes, u * 32u, v);
                for (uint c = 0u; c < NCOLS; c++) {
                    uint xi = (c * pc.x_stride + u * 32u) / 4u;
                    float s = 0.0;
                    for (uint i = 0u; i < 8u; i++)
                        s += dot(v[i], x4[xi + i]);
                    acc[r * NCOLS + c] += s;
                }
            }
        }
    }
#else
    const uint units = pc.k / 8u;
    for (uint u = lid; u < units; u += gl_WorkGroupSize.x) {
        vec4 xa[NCOLS], xb[NCOLS];
        for (uint c = 0u; c < NCOLS; c++) {
            uint xi = (c * pc.x_stride + u * 8u) / 4u;
            xa[c] = x4[xi];
            xb[c] = x4[xi + 1u];
        }
        for (uint r = 0u; r < ROWS; r++) {
            if (first + r < pc.rows) {
                vec4 a, b;
                dequant8((first + r) * pc.row_bytes, u * 8u, a, b);
                for (uint c = 0u; c < NCOLS; c++)
                    acc[r * NCOLS + c] += dot(a, xa[c]) + dot(b, xb[c]);
            }
        }
    }
#endif

    const uint wg = gl_WorkGroupSize.x;
#ifdef USE_SUBGROUP
    // each subgroup sums its invocations; the first ACCS invocations add the subgroups
    for (uint a = 0u; a < ACCS; a++) {
        float t = subgroupAdd(acc[a]);
        if (subgroupElect())
            red[a * wg + gl_SubgroupID] = t;
    }
    barrier();
    const uint parts = gl_NumSubgroups;
#else
    // a tree over the workgroup, any size
    for (uint a = 0u; a < ACCS; a++)
        red[a * wg + lid] = acc[a];
    barrier();
    uint half_size = 1u;
    while (half_size * 2u < wg)
        half_size *= 2u;
    for (uint s = half_size; s > 1u; s >>= 1) {
        if (lid < s && lid + s < wg)
            for (uint a = 0u; a < ACCS; a++)
                red[a * wg + lid] += red[a * wg + lid + s];
        barrier();
    }
    const uint parts = min(wg, 2u);
#endif
    for (uint a = lid; a < ACCS; a += wg) {
        uint r = a / NCOLS, c = a % NCOLS;
        float t = 0.0;
        for (uint i = 0u; i < parts; i++)
            t += red[a * wg + i];
        if (first + r < pc.rows)
            y[c * pc.y_stride + pc.row0 + first + r] = t;
    }
}
