#version 450
// Writing a KIVI KV cache (layout in vkb_kv.glsl and backend/vkb_ops.h). x holds the new
// rows, positions p0 .. p0 + x_rows; a store first folds positions f0 .. f1 (whole groups
// leaving the f16 window) into the quantized store, reading each value from x or, for
// older positions, from the window ring; then writes its surviving new rows, f0 .. f1,
// into the ring. The arithmetic is compress/cmp_kivi.c's:
//   d = (max - min) / (2^bits - 1), d and min stored as f16;
//   q = clamp(floor((x - min) / d + 0.5), 0, 2^bits - 1) with the stored d and min.
//   FOLD_KEYS:   one invocation per (group of positions, channel)
//   FOLD_VALUES: one invocation per (position, group of channels)
//   WINDOW:      one invocation per two values of a row
#include "vkb_index.glsl"
#include "vkb_kv.glsl"

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) buffer Cache { uint cache[]; };

layout(push_constant) uniform Push {
    uint values; // per position, even
    uint group;  // values per scale, a multiple of 32
    uint bits;   // 4 or 2
    uint ring_rows;
    uint p0; // position of x's first row
    uint x_rows;
    uint f0, f1; // the positions handled
} pc;

// Value c of position p, from x or from the window.
float value_at(uint p, uint c)
{
    if (p >= pc.p0)
        return x[(p - pc.p0) * pc.values + c];
    return unpackHalf2x16(cache[((p % pc.ring_rows) * pc.values + c) >> 1u])[c & 1u];
}

#if defined(FOLD_KEYS) || defined(FOLD_VALUES)
// Quantizes the group of pc.group values starting at (p, c), stepping along positions
// (keys) or channels (values): the scale word, then the packed words from word `data`.
void fold(uint p, uint c, uint scale_at, uint data)
{
    float mn = uintBitsToFloat(0x7f800000u), mx = -mn;
    for (uint i = 0u; i < pc.group; i++) {
#ifdef FOLD_KEYS
        const float v = value_at(p + i, c);
#else
        const float v = value_at(p, c + i);
#endif
        mn = min(mn, v);
        mx = max(mx, v);
    }
    const uint top = (1u << pc.bits) - 1u;
    precise float d = (mx - mn) / float(top);
    const uint sw = kv_pack_rne(vec2(d, mn));
    const vec2 dm = unpackHalf2x16(sw);
    precise float id = dm.x != 0.0 ? 1.0 / dm.x : 0.0;
    cache[scale_at] = sw;
    const uint per_word = 32u / pc.bits;
    for (uint w = 0u; w < pc.group / per_word; w++) {
        uint word = 0u;
        for (uint k = 0u; k < per_word; k++) {
            const uint i = w * per_word + k;
#ifdef FOLD_KEYS
            const float v = value_at(p + i, c);
#else
            const float v = value_at(p, c + i);
#endif
            precise float f = floor((v - dm.y) * id + 0.5);
            const uint q = uint(clamp(f, 0.0, float(top)));
            word |= q << (k * pc.bits);
        }
        cache[data + w] = word;
    }
}
#endif

void main()
{
    const uint i = flat_group_id() * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    const uint store = pc.ring_rows * pc.values / 2u; // words
#if defined(FOLD_KEYS)
    // a block per group of positions: the channels' scale words, then their packed values
    const uint b = i / pc.values, c = i % pc.values;
    if (pc.f0 + b * pc.group >= pc.f1)
        return;
    const uint per = pc.group * pc.bits / 32u;
    const uint blk = store + ((pc.f0 / pc.group) + b) * pc.values * (1u + per);
    fold(pc.f0 + b * pc.group, c, blk + c, blk + pc.values + c * per);
#elif defined(FOLD_VALUES)
    // a row per position: its scale words, then its packed values
    const uint groups = pc.values / pc.group;
    const uint p = pc.f0 + i / groups, g = i % groups;
    if (p >= pc.f1)
        return;
    const uint row = store + p * (groups + pc.values * pc.bits / 32u);
    fold(p, g * pc.group, row + g, row + groups + g * pc.group * pc.bits / 32u);
#else
    const uint half_row = pc.values / 2u;
    const uint p = pc.f0 + i / half_row, k = i % half_row;
    if (p >= pc.f1)
        return;
    const uint at = (p - pc.p0) * pc.values + 2u * k;
    cache[(p % pc.ring_rows) * half_row + k] = kv_pack_rne(vec2(x[at], x[at + 1u]));
#endif
}
