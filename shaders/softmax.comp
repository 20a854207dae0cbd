#version 450
// out[r][i] = exp(v[i] - max v) / sum exp(v - max v), v = x[r][i] * scale + mask[r % mask_rows][i]
// (mask optional): one workgroup per row. A row whose every value is -inf comes out as zeros.
#include "vkb_index.glsl"

layout(local_size_x_id = 0) in;

#include "vkb_reduce.glsl" // after the workgroup size: it sizes shared memory by it

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer Mask { float mask[]; };
layout(std430, binding = 2) writeonly buffer Out { float dst[]; };

layout(push_constant) uniform Push {
    uint n;         // values per row
    uint rows;
    float scale;
    uint mask_rows; // 0: no mask (binding 1 is ignored)
} pc;

float value(uint row, uint i)
{
    float v = x[row * pc.n + i] * pc.scale;
    if (pc.mask_rows != 0u)
        v += mask[(row % pc.mask_rows) * pc.n + i];
    return v;
}

void main()
{
    const uint row = flat_group_id();
    if (row >= pc.rows)
        return;
    const uint lid = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x;
    float mx = uintBitsToFloat(0xff800000u);
    for (uint i = lid; i < pc.n; i += wg)
        mx = max(mx, value(row, i));
    mx = wg_max(mx);
    const bool empty = isinf(mx) && mx < 0.0;
    float sum = 0.0;
    for (uint i = lid; i < pc.n; i += wg)
        sum += empty ? 0.0 : exp(value(row, i) - mx);
    sum = wg_sum(sum);
    const float inv = empty ? 0.0 : 1.0 / sum;
    for (uint i = lid; i < pc.n; i += wg)
        dst[row * pc.n + i] = empty ? 0.0 : exp(value(row, i) - mx) * inv;
}
