#version 450
// Quantize-on-write: rows of f32 values (new keys or values) into the KV cache as ggml's
// q8_0 or q4_0 blocks (TYPE; KV_F16: f16 values), from cache row row0 on (row0 AT_POS: row r of x into the
// cache's row pos[r]). One invocation makes two blocks (64 values; 17 / 9 whole words,
// so no two invocations share a word):
//   q8_0: d = max |x| / 127, q = round(x / d) (half away from zero), in [-127, 127]
//   q4_0: d = m / -8 with m the value of largest |x|, q = min(15, trunc(x / d + 8.5))
// the arithmetic of compress/'s reference quantizers, d stored as f16.
#include "vkb_index.glsl"
#include "vkb_kv.glsl"

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer Pos { int pos[]; };
layout(std430, binding = 2) writeonly buffer Cache { uint cache[]; };

layout(push_constant) uniform Push {
    uint row_len; // values per row, a multiple of 64
    uint rows;
    uint row0;      // first cache row written, or AT_POS
    uint row_bytes; // bytes per cache row
} pc;

#if TYPE == KV_F16
#define PAIR_WORDS 32u
#elif TYPE == KV_Q8_0
#define PAIR_WORDS 17u
#else
#define PAIR_WORDS 9u
#endif

uint words[PAIR_WORDS];

void put_byte(uint off, uint v)
{
    words[off >> 2u] |= (v & 0xffu) << ((off & 3u) * 8u);
}

void main()
{
    const uint i = flat_group_id() * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    const uint pairs = pc.row_len / 64u;
    if (i >= pc.rows * pairs)
        return;
    const uint r = i / pairs, p = i % pairs;
#if TYPE == KV_F16
    // f16 (for rows at positions read here; vkb_op_store_f16 writes the others): the
    // values as they are, two to a word, by the conversion store_f16 uses
    for (uint w = 0u; w < PAIR_WORDS; w++) {
        const uint at = r * pc.row_len + p * 64u + 2u * w;
        words[w] = packHalf2x16(vec2(x[at], x[at + 1u]));
    }
#else
    for (uint w = 0u; w < PAIR_WORDS; w++)
        words[w] = 0u;
    for (uint b = 0u; b < 2u; b++) {
        const uint at = r * pc.row_len + p * 64u + b * 32u;
        const uint off = b * KV_BLOCK_BYTES(TYPE);
        float amax = 0.0, mx = 0.0;
        for (uint j = 0u; j < 32u; j++) {
            const float v = x[at + j];
            if (abs(v) > amax) {
                amax = abs(v);
                mx = v;
            }
        }
#if TYPE == KV_Q8_0
        precise float d = amax / 127.0;
#else
        precise float d = mx / -8.0;
#endif
        precise float id = d != 0.0 ? 1.0 / d : 0.0;
        const uint dh = kv_half_rne(d);
        put_byte(off, dh);
        put_byte(off + 1u, dh >> 8u);
#if TYPE == KV_Q8_0
        for (uint j = 0u; j < 32u; j++) {
            precise float v = x[at + j] * id;
            const int q = clamp(int(sign(v) * floor(abs(v) + 0.5)), -127, 127);
            put_byte(off + 2u + j, uint(q));
        }
#else
        for (uint j = 0u; j < 16u; j++) {
            precise float v0 = x[at + j] * id + 8.5, v1 = x[at + j + 16u] * id + 8.5;
            const uint q0 = uint(clamp(int(v0), 0, 15)), q1 = uint(clamp(int(v1), 0, 15));
            put_byte(off + 2u + j, q0 | q1 << 4u);
        }
#endif
    }
#endif
    const uint row = pc.row0 == AT_POS ? uint(pos[r]) : pc.row0 + r;
    const uint base = (row * pc.row_bytes + p * PAIR_WORDS * 4u) >> 2u;
    for (uint w = 0u; w < PAIR_WORDS; w++)
        cache[base + w] = words[w];
}
