// Reading and writing the KV cache in its stored type. A cache row holds one position's
// kv_heads x head_dim values: f16 (two per word), or ggml's q8_0 / q4_0 blocks of 32
// (34 / 18 bytes: an f16 scale, then 32 int8 values / 16 bytes of nibbles, value j in
// the low nibble of byte j and value j + 16 in the high one), rows of row_bytes bytes.
// Quantized rows hold a multiple of 64 values, so every row starts on a word.
//
// KIVI caches (kivi4, kivi2; compress/cmp_kivi.h, backend/vkb_ops.h): an f16 window ring
// of RING rows (position p in row p % RING), then the quantized store. Keys: a block per
// group of GROUP positions: one scale word (f16 scale, f16 minimum) per channel, then each
// channel's GROUP packed values. Values: a row per position: a scale word per GROUP
// channels, then the row's packed values. A value is q * scale + minimum.
#ifndef VKB_KV_GLSL
#define VKB_KV_GLSL

#define KV_F16 0
#define KV_Q8_0 1
#define KV_Q4_0 2
#define KV_KIVI4 3
#define KV_KIVI2 4

#define KV_IS_KIVI(type) ((type) >= KV_KIVI4)
#define KV_BITS(type) ((type) == KV_KIVI4 ? 4u : 2u)

// f32 -> f16 bits rounded to nearest even whatever packHalf2x16's rounding on this driver
// (the specification leaves it open; compress/'s codec rounds to nearest even): the
// driver's result or its neighbour toward x, whichever is nearer (finite values).
uint kv_half_rne(float x)
{
    uint h = packHalf2x16(vec2(x, 0.0)) & 0xffffu;
    const float a = unpackHalf2x16(h).x;
    if (isinf(a) || a == x)
        return h;
    const uint n = abs(x) > abs(a) ? h + 1u : h - 1u; // magnitude up or down, same sign
    const float b = unpackHalf2x16(n).x, da = abs(x - a), db = abs(x - b);
    return db < da || (db == da && (n & 1u) == 0u) ? n : h;
}

uint kv_pack_rne(vec2 v)
{
    return kv_half_rne(v.x) | (kv_half_rne(v.y) << 16u);
}

// The bits-bit value at bit `bit` of packed words starting at word `w`.
#define KV_PACKED(buf, w, bit, bits) ((buf[(w) + ((bit) >> 5u)] >> ((bit) & 31u)) & ((1u << (bits)) - 1u))

#define KV_BLOCK_BYTES(type) ((type) == KV_Q8_0 ? 34u : 18u)

// The 16 bits at an even byte offset `off` of a uint buffer.
#define KV_HALF(buf, off) ((buf[(off) >> 2u] >> (((off) & 2u) * 8u)) & 0xffffu)

// Defines `vec2 NAME(uint row, uint c, uint row_bytes)`: the values of channels c and
// c + 1 (c even) at position `row` of a cache of type TYPE (a constant) in a buffer BUF of
// uints: rows of row_bytes bytes, or for KIVI, row_bytes per row or group of the store,
// and push constants pc.kv_nq (positions in the store), pc.ring_rows, pc.group,
// pc.kv_heads x pc.head_dim values per position. PER_CHANNEL: KIVI groups run along
// positions (keys).
#define KV_PAIR_FN(NAME, BUF, TYPE, PER_CHANNEL)                                              \
    vec2 NAME(uint row, uint c, uint row_bytes)                                              \
    {                                                                                        \
        if (KV_IS_KIVI(TYPE)) {                                                              \
            const uint values = pc.kv_heads * pc.head_dim;                                   \
            if (row >= pc.kv_nq)                                                             \
                return unpackHalf2x16(BUF[((row % pc.ring_rows) * values + c) >> 1u]);       \
            const uint bits = KV_BITS(TYPE), store = pc.ring_rows * values / 2u;             \
            if (PER_CHANNEL) {                                                               \
                const uint blk = store + (row / pc.group) * (row_bytes >> 2u);               \
                const uint per = pc.group * bits / 32u, i = (row % pc.group) * bits;          \
                const uint data = blk + values + c * per;                                    \
                const vec2 s0 = unpackHalf2x16(BUF[blk + c]);                                \
                const vec2 s1 = unpackHalf2x16(BUF[blk + c + 1u]);                           \
                return vec2(float(KV_PACKED(BUF, data, i, bits)) * s0.x + s0.y,              \
                            float(KV_PACKED(BUF, data + per, i, bits)) * s1.x + s1.y);       \
            }                                                                                \
            const uint base = store + row * (row_bytes >> 2u);                               \
            const vec2 s = unpackHalf2x16(BUF[base + c / pc.group]);                         \
            const uint data = base + values / pc.group;                                      \
            return vec2(float(KV_PACKED(BUF, data, c * bits, bits)),                         \
                        float(KV_PACKED(BUF, data, (c + 1u) * bits, bits))) * s.x + s.y;     \
        }                                                                                    \
        if (TYPE == KV_F16)                                                                  \
            return unpackHalf2x16(BUF[(row * row_bytes >> 2u) + (c >> 1u)]);                  \
        const uint blk = row * row_bytes + (c >> 5u) * KV_BLOCK_BYTES(TYPE);                 \
        const float d = unpackHalf2x16(KV_HALF(BUF, blk)).x;                                 \
        /* the pair's two bytes (c even: an even offset) in one 16-bit read */            \
        const uint e = c & 31u;                                                              \
        if (TYPE == KV_Q8_0) {                                                               \
            const uint h = KV_HALF(BUF, blk + 2u + e);                                       \
            return vec2(float(int(h << 24u) >> 24), float(int(h << 16u) >> 24)) * d;         \
        }                                                                                    \
        const uint h = KV_HALF(BUF, blk + 2u + (e & 15u)) >> (e < 16u ? 0u : 4u);            \
        return vec2(float(int(h & 15u) - 8), float(int((h >> 8u) & 15u) - 8)) * d;           \
    }

#endif
