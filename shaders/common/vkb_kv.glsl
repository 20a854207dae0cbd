// Reading and writing the KV cache in its stored type. A cache row holds one position's
// kv_heads x head_dim values: f16 (two per word), or ggml's q8_0 / q4_0 blocks of 32
// (34 / 18 bytes: an f16 scale, then 32 int8 values / 16 bytes of nibbles, value j in
// the low nibble of byte j and value j + 16 in the high one), rows of row_bytes bytes.
// Quantized rows hold a multiple of 64 values, so every row starts on a word.
#ifndef VKB_KV_GLSL
#define VKB_KV_GLSL

#define KV_F16 0
#define KV_Q8_0 1
#define KV_Q4_0 2

#define KV_BLOCK_BYTES(type) ((type) == KV_Q8_0 ? 34u : 18u)

// The byte at byte offset `off` of a uint buffer, and the 16 bits at an even offset.
#define KV_BYTE(buf, off) ((buf[(off) >> 2u] >> (((off) & 3u) * 8u)) & 0xffu)
#define KV_HALF(buf, off) ((buf[(off) >> 2u] >> (((off) & 2u) * 8u)) & 0xffffu)

// Defines `vec2 NAME(uint row, uint c)`: the values of channels c and c + 1 (c even) of a
// cache row, for a buffer BUF of uints holding rows of type TYPE (a constant).
#define KV_PAIR_FN(NAME, BUF, TYPE)                                                           \
    vec2 NAME(uint row, uint c, uint row_bytes)                                              \
    {                                                                                        \
        if (TYPE == KV_F16)                                                                  \
            return unpackHalf2x16(BUF[(row * row_bytes >> 2u) + (c >> 1u)]);                  \
        const uint blk = row * row_bytes + (c >> 5u) * KV_BLOCK_BYTES(TYPE);                 \
        const float d = unpackHalf2x16(KV_HALF(BUF, blk)).x;                                 \
        const uint e = c & 31u;                                                              \
        if (TYPE == KV_Q8_0) {                                                               \
            const int a = int(KV_BYTE(BUF, blk + 2u + e) << 24u) >> 24;                      \
            const int b = int(KV_BYTE(BUF, blk + 3u + e) << 24u) >> 24;                      \
            return vec2(float(a), float(b)) * d;                                             \
        }                                                                                    \
        const uint sh = e < 16u ? 0u : 4u, k = e & 15u;                                      \
        const uint a = (KV_BYTE(BUF, blk + 2u + k) >> sh) & 15u;                             \
        const uint b = (KV_BYTE(BUF, blk + 3u + k) >> sh) & 15u;                             \
        return vec2(float(int(a) - 8), float(int(b) - 8)) * d;                               \
    }

#endif
