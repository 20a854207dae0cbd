// GGUF (ggml) weight formats, read straight from the bytes the file holds.
//
// This file mirrors compress/cmp_quant.h name for name: for each cmp_block_<type> there
// is block_<type>_size (bytes) and block_<type>_<field> (the field's byte offset), and
// dequant8() reproduces cmp_dequantize bit for bit. Every multiply-add that C does as
// two rounded operations is `precise` here, so no driver fuses it into an FMA.
//
// The including kernel defines exactly one FORMAT_<TYPE> and declares the weights as
//     layout(std430, binding = N) readonly buffer Weights { uint wq[]; };
// Words are read, not bytes, so no 8- or 16-bit storage feature is needed. Every block
// size and field offset is even, so a 16-bit field never straddles two words.
#ifndef VKB_QUANT_GLSL
#define VKB_QUANT_GLSL

#include "vkb_blocks.glsl"

// ---- reading bytes from uint words -------------------------------------------------------

uint wq_u8(uint off)
{
    return (wq[off >> 2] >> (8u * (off & 3u))) & 0xffu;
}

// `off` even
uint wq_u16(uint off)
{
    return (wq[off >> 2] >> (8u * (off & 2u))) & 0xffffu;
}

// `off` even; two aligned words when it is not a multiple of 4
uint wq_u32(uint off)
{
    uint i = off >> 2;
    if ((off & 2u) == 0u)
        return wq[i];
    return (wq[i] >> 16) | (wq[i + 1u] << 16);
}

float wq_f16(uint off)
{
    return unpackHalf2x16(wq_u16(off)).x;
}

// byte i (0..3) of w as a signed value
int s8_of(uint w, uint i)
{
    return bitfieldExtract(int(w), int(8u * i), 8);
}

// ---- shared pieces -----------------------------------------------------------------------

// The eight bytes at [off, off+8), each shifted right by `shift` and masked: the 4-bit
// values (mask 0xf), single bits (mask 1) or bit pairs (mask 3) the formats pack per byte.
void fields8(uint off, uint shift, uint mask, out uvec4 lo, out uvec4 hi)
{
    uint w0 = wq_u32(off) >> shift, w1 = wq_u32(off + 4u) >> shift;
    lo = uvec4(w0, w0 >> 8, w0 >> 16, w0 >> 24) & mask;
    hi = uvec4(w1, w1 >> 8, w1 >> 16, w1 >> 24) & mask;
}

// a = lo * d + m and b = hi * d + m, the product and the sum each rounded on its own as
// in the C codec (x - m1 there is x + (-m1) here: the same IEEE result).
void scale_add8(uvec4 lo, uvec4 hi, float d, float m, out vec4 a, out vec4 b)
{
    precise vec4 pa = vec4(lo) * d;
    precise vec4 pb = vec4(hi) * d;
    precise vec4 ra = pa + m;
    precise vec4 rb = pb + m;
    a = ra;
    b = rb;
}

// Sub-block j's 6-bit scale (x) and minimum (y) of a q4_K / q5_K block (scale_min_k4 in
// C) from its three scale words: bytes 0-3, 4-7 and 8-11 of scales[12]. Both cases are
// computed and one selected, so invocations at different j do not diverge.
uvec2 k4_scale_min(uint s0, uint s1, uint s2, uint j)
{
    const uint sh = 8u * (j & 3u);
    const uint a = (s0 >> sh) & 0xffu, b = (s1 >> sh) & 0xffu, e = (s2 >> sh) & 0xffu;
    const uvec2 low = uvec2(a, b) & 63u;
    const uvec2 high = uvec2((e & 15u) | ((a >> 6) << 4), (e >> 4) | ((b >> 6) << 4));
    return j < 4u ? low : high;
}

void scale_min_k4(uint scales_off, uint j, out uint sc, out uint m)
{
    const uvec2 v = k4_scale_min(wq_u32(scales_off), wq_u32(scales_off + 4u),
                                 wq_u32(scales_off + 8u), j);
    sc = v.x;
    m = v.y;
}

// ---- dequant8: values k0 .. k0+7 of the row starting at byte `rb` (k0 a multiple of 8) ----
//
// QK is the block size in values; the kernels need K to be a multiple of it.

#if defined(FORMAT_F32)
void dequant8(uint rb, uint k0, out vec4 a, out vec4 b)
{
    uint i = (rb >> 2) + k0;
    a = uintBitsToFloat(uvec4(wq[i], wq[i + 1u], wq[i + 2u], wq[i + 3u]));
    b = uintBitsToFloat(uvec4(wq[i + 4u], wq[i + 5u], wq[i + 6u], wq[i + 7u]));
}

#elif defined(FORMAT_F16) || defined(FORMAT_BF16)
// two halves of a word, the low one first
vec2 half2(uint w)
{
#if defined(FORMAT_F16)
    return unpackHalf2x16(w);
#else
    return uintBitsToFloat(uvec2(w << 16, w & 0xffff0000u)); // bf16: the top bits of an f32
#endif
}
void dequant8(uint rb, uint k0, out vec4 a, out vec4 b)
{
    uint i = (rb >> 2) + k0 / 2u;
    a = vec4(half2(wq[i]), half2(wq[i + 1u]));
    b = vec4(half2(wq[i + 2u]), half2(wq[i + 3u]));
}

#elif defined(FORMAT_Q8_0)
void dequant8(uint rb, uint k0, out vec4 a, out vec4 b)
{
    uint blk = rb + (k0 / 32u) * block_q8_0_size;
    float d = wq_f16(blk + block_q8_0_d);
    uint off = blk + block_q8_0_qs + k0 % 32u;
    uint w0 = wq_u32(off), w1 = wq_u32(off + 4u);
    a = vec4(s8_of(w0, 0u), s8_of(w0, 1u), s8_of(w0, 2u), s8_of(w0, 3u)) * d;
    b = vec4(s8_of(w1, 0u), s8_of(w1, 1u), s8_of(w1, 2u), s8_of(w1, 3u)) * d;
}

#elif defined(FORMAT_Q4_0) || defined(FORMAT_IQ4_NL)
#if defined(FORMAT_IQ4_NL)
// The table is read from shared memory: a constant array indexed at run time is placed in
// per-invocation memory by some compilers (NVIDIA's: IQ4_NL's matvec read 5% of the H100's
// bandwidth with it), while 16 shared words are read at register-like speed.
shared float iq4nl_table[16];
#endif
void dequant8(uint rb, uint k0, out vec4 a, out vec4 b)
{
    uint j = k0 % 32u;
    uint blk = rb + (k0 / 32u) * block_q4_0_size; // q4_0 and iq4_nl share the layout
    float d = wq_f16(blk + block_q4_0_d);
    uvec4 lo, hi;
    fields8(blk + block_q4_0_qs + (j & 15u), j >= 16u ? 4u : 0u, 0xfu, lo, hi);
#if defined(FORMAT_Q4_0)
    a = vec4(ivec4(lo) - 8) * d;
    b = vec4(ivec4(hi) - 8) * d;
#else
    a = d * vec4(iq4nl_table[lo.x], iq4nl_table[lo.y], iq4nl_table[lo.z], iq4nl_table[lo.w]);
    b = d * vec4(iq4nl_table[hi.x], iq4nl_table[hi.y], iq4nl_table[hi.z], iq4nl_table[hi.w]);
#endif
}

#elif defined(FORMAT_Q4_1)
void dequant8(uint rb, uint k0, out vec4 a, out vec4 b)
{
    uint j = k0 % 32u;
    uint blk = rb + (k0 / 32u) * block_q4_1_size;
    float d = wq_f16(blk + block_q4_1_d), m = wq_f16(blk + block_q4_1_m);
    uvec4 lo, hi;
    fields8(blk + block_q4_1_qs + (j & 15u), j >= 16u ? 4u : 0u, 0xfu, lo, hi);
    scale_add8(lo, hi, d, m, a, b);
}

#elif defined(FORMAT_Q5_0) || defined(FORMAT_Q5_1)
void dequant8(uint rb, uint k0, out vec4 a, out vec4 b)
{
    uint j = k0 % 32u;
#if defined(FORMAT_Q5_0)
    uint blk = rb + (k0 / 32u) * block_q5_0_size;
    uint qh = wq_u32(blk + block_q5_0_qh) >> j;
    uint qs = blk + block_q5_0_qs;
#else
    uint blk = rb + (k0 / 32u) * block_q5_1_size;
    uint qh = wq_u32(blk + block_q5_1_qh) >> j;
    uint qs = blk + block_q5_1_qs;
#endif
    float d = wq_f16(blk); // d is the first field of both
    uvec4 lo, hi;
    fields8(qs + (j & 15u), j >= 16u ? 4u : 0u, 0xfu, lo, hi);
    lo |= (uvec4(qh, qh >> 1, qh >> 2, qh >> 3) & 1u) << 4;
    hi |= (uvec4(qh >> 4, qh >> 5, qh >> 6, qh >> 7) & 1u) << 4;
#if defined(FORMAT_Q5_0)
    a = vec4(ivec4(lo) - 16) * d;
    b = vec4(ivec4(hi) - 16) * d;
#else
    float m = wq_f16(blk + block_q5_1_m);
    scale_add8(lo, hi, d, m, a, b);
#endif
}

#elif defined(FORMAT_Q4_K) || defined(FORMAT_Q5_K)
// 64 values per 32 bytes of qs: the first 32 from the low nibbles (sub-block 2c), the next
// 32 from the high nibbles (sub-block 2c+1); q5_K adds bit `sub-block` of qh[l] as 16.
// The sub-block holding value k0: its block's offset, the offset of its 32 quant bytes
// (qs + 32c), the nibble shift, its sub-block index and its scale d1 and minimum m1.
void k4_sub_block(uint rb, uint k0, out uint blk, out uint qbytes, out uint shift,
                  out uint sub, out float d1, out float m1)
{
    uint j = k0 % 256u, c = j / 64u, p = j % 64u;
    sub = 2u * c + p / 32u;
#if defined(FORMAT_Q4_K)
    blk = rb + (k0 / 256u) * block_q4_k_size;
    uint scales = blk + block_q4_k_scales;
    qbytes = blk + block_q4_k_qs + 32u * c;
#else
    blk = rb + (k0 / 256u) * block_q5_k_size;
    uint scales = blk + block_q5_k_scales;
    qbytes = blk + block_q5_k_qs + 32u * c;
#endif
    shift = p >= 32u ? 4u : 0u;
    float d = wq_f16(blk), dmin = wq_f16(blk + 2u); // d and dmin lead both layouts
    uint sc, m;
    scale_min_k4(scales, sub, sc, m);
    precise float pd = d * float(sc);
    precise float pm = dmin * float(m);
    d1 = pd;
    m1 = pm;
}

// Values l .. l+7 of a sub-block (l a multiple of 8) with its scale and minimum.
void k4_values8(uint blk, uint qbytes, uint shift, uint sub, uint l, float d1, float m1,
                out vec4 a, out vec4 b)
{
    uvec4 lo, hi;
    fields8(qbytes + l, shift, 0xfu, lo, hi);
#if defined(FORMAT_Q5_K)
    uvec4 hlo, hhi;
    fields8(blk + block_q5_k_qh + l, sub, 1u, hlo, hhi);
    lo |= hlo << 4;
    hi |= hhi << 4;
#endif
    scale_add8(lo, hi, d1, -m1, a, b);
}

void dequant8(uint rb, uint k0, out vec4 a, out vec4 b)
{
    uint blk, qbytes, shift, sub;
    float d1, m1;
    k4_sub_block(rb, k0, blk, qbytes, shift, sub, d1, m1);
    k4_values8(blk, qbytes, shift, sub, k0 % 32u, d1, m1, a, b);
}

// The 32 values of the sub-block starting at k0 (a multiple of 32), its scale and minimum
// decoded once: v[0..7] hold them four at a time. Same values as dequant8.
#define DEQUANT32
void dequant32(uint rb, uint k0, out vec4 v[8])
{
    uint blk, qbytes, shift, sub;
    float d1, m1;
    k4_sub_block(rb, k0, blk, qbytes, shift, sub, d1, m1);
    for (uint g = 0u; g < 4u; g++)
        k4_values8(blk, qbytes, shift, sub, 8u * g, d1, m1, v[2u * g], v[2u * g + 1u]);
}

#elif defined(FORMAT_Q6_K)
// Each half of 128 values: quarter q of it takes the low (q < 2) or high nibbles of
// ql[32*(q&1) + l] and bits 2q, 2q+1 of qh[l]; scale index l/16 + 2q.
void dequant8(uint rb, uint k0, out vec4 a, out vec4 b)
{
    uint j = k0 % 256u, h = j / 128u, r = j % 128u, q = r / 32u, l = r % 32u;
    uint blk = rb + (k0 / 256u) * block_q6_k_size;
    float d = wq_f16(blk + block_q6_k_d);
    uint sidx = h * 8u + l / 16u + 2u * q;
    int sc = bitfieldExtract(int(wq_u8(blk + block_q6_k_scales + sidx)), 0, 8);
    precise float ds = d * float(sc);
    uvec4 lo, hi;
    fields8(blk + block_q6_k_ql + 64u * h + 32u * (q & 1u) + l, q >= 2u ? 4u : 0u, 0xfu, lo, hi);
    uvec4 hlo, hhi;
    fields8(blk + block_q6_k_qh + 32u * h + l, 2u * q, 3u, hlo, hhi);
    lo |= hlo << 4;
    hi |= hhi << 4;
    a = ds * vec4(ivec4(lo) - 32);
    b = ds * vec4(ivec4(hi) - 32);
}

#else
#error "define one FORMAT_<TYPE>"
#endif

// QUANT_TABLES_INIT(): the first statement of main() in every kernel that calls
// dequant8 (uniform control flow: it holds a barrier). It fills the shared copies of the
// format's lookup tables (IQ4_NL's), and is empty for the other formats.
#if defined(FORMAT_IQ4_NL)
#define QUANT_TABLES_INIT()                                                                    \
    {                                                                                          \
        for (uint i_ = gl_LocalInvocationID.x; i_ < 16u; i_ += gl_WorkGroupSize.x)             \
            iq4nl_table[i_] = iq4nl_values[i_];                                                \
        barrier();                                                                             \
    }
#else
#define QUANT_TABLES_INIT()
#endif

#endif
