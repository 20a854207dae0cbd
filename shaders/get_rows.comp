#version 450
// out[i][k] = W[ids[i]][k] dequantized: the embedding lookup, bit-exact with
// cmp_dequantize. One invocation writes eight values; workgroup y is the id. W is one
// part of the matrix, holding rows [row0, row0 + rows); ids outside it are left to the
// dispatches of the other parts.
layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Weights { uint wq[]; };
layout(std430, binding = 1) readonly buffer Ids { uint ids[]; };
layout(std430, binding = 2) writeonly buffer Out { vec4 out4[]; };

layout(push_constant) uniform Push {
    uint k;          // values per row
    uint row_bytes;  // bytes per row of W
    uint row0;       // first row held by this part
    uint rows;       // rows held by this part
    uint out_stride; // floats between rows of out, a multiple of 4
} pc;

#include "vkb_quant.glsl"

void main()
{
    QUANT_TABLES_INIT();
    uint u = gl_GlobalInvocationID.x;
    uint id = ids[gl_WorkGroupID.y];
    if (u * 8u >= pc.k || id < pc.row0 || id - pc.row0 >= pc.rows)
        return;
    vec4 a, b;
    dequant8((id - pc.row0) * pc.row_bytes, u * 8u, a, b);
    uint o = (gl_WorkGroupID.y * pc.out_stride + u * 8u) / 4u;
    out4[o] = a;
    out4[o + 1u] = b;
}
