#version 450
// y[c][row0 + r] = sum_k W[r][k] * x[c][k] for the rows of one part of W and 1 to 8
// activation columns c: the decode matrix-vector product. Each workgroup takes ROWS
// rows; its invocations walk each row eight values at a time (neighbouring invocations
// read neighbouring bytes, so a subgroup's loads coalesce and each weight byte comes from
// memory once), accumulate in f32 and reduce with wg_sum. LANE_ROWS (CPU drivers) instead
// gives each invocation whole rows and broadcasts x across the subgroup. With ACC the
// product is added to y (y += W·x: the residual add fused into the product that feeds
// it); with OUTS > 1 W holds the rows of several products and y is several buffers
// (vkb_outputs.glsl). With NORM x is the residual stream and the product reads
// rms_norm(x)·g: each workgroup sums the squares of x as it loads it, multiplies x by the
// norm's weights g and scales its sums by 1 / sqrt(mean(x²) + eps) at the end (the norm
// that feeds the product fused into it; not with INT_DOT, whose x the norm quantizes).
// With GLU W is the gated FFN's gate and up matrices stacked (gate's rows, then up's) and
// y = act(gate·x) · (up·x), act silu or gelu: each workgroup takes matching rows of both and
// writes their product (the two products and the op between them in one dispatch).
// With ROPE W is q, k and v stacked (outputs split1 and split2 apart) and the product is
// the attention block's prologue too: the biases added where there are some, q's and k's
// rows rotated (rope.comp), q written as floats, k and v as f16 into the caches at
// positions cache_row0 + c (rope_store.comp's bits). Rows are taken in quads that hold
// both dimensions of two rotated pairs, so each workgroup rotates and packs its own sums.
#include "vkb_act.glsl"
#include "vkb_index.glsl"
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#ifdef LANE_ROWS
#extension GL_KHR_shader_subgroup_ballot : require
#endif

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint ROWS = 1;  // rows per workgroup
layout(constant_id = 2) const uint NCOLS = 1; // activation columns
layout(constant_id = 3) const bool ACC = false; // add to y instead of writing it
layout(constant_id = 4) const uint OUTS = 1;    // outputs (1 to 3)
layout(constant_id = 5) const bool NORM = false; // y = W·(rms_norm(x)·g)
// y = act(gate·x) · (up·x), ROWS even: GLU_MODE 1 silu, 2 gelu (vkb_act.glsl); 0 none
layout(constant_id = 6) const uint GLU_MODE = 0u;
layout(constant_id = 7) const bool ROPE = false; // y = q, k and v roped and stored; ROWS % 4 == 0
const uint ACCS = ROWS * NCOLS;
const bool GLU = GLU_MODE != 0u;
const uint PAIR = GLU ? ROWS / 2u : ROWS; // output rows per workgroup

#ifndef LANE_ROWS
// All ROWS x NCOLS sums (with NORM each column's sum of squares after them) are reduced
// together, one barrier per step: partial sums of accumulator a at red[a * WG + i].
const uint REDS = ACCS + (NORM ? NCOLS : 0u);
shared float red[REDS * gl_WorkGroupSize.x];

// Accumulator a's partial sums added, in order (the same order for every accumulator).
float red_sum(uint a, uint parts)
{
    float t = 0.0;
    for (uint i = 0u; i < parts; i++)
        t += red[a * gl_WorkGroupSize.x + i];
    return t;
}
#endif

#include "vkb_blocks.glsl"

#ifdef STAGED
// Quantized formats on GPUs: a workgroup copies a chunk of each of its rows into shared
// memory with coalesced loads (16 bytes per invocation where rows and chunks are 16-byte
// aligned, else 4), then decodes from there. Blocks of 18 or 34 bytes read in place cost
// several unaligned word loads per 8 values; staged, every weight byte is one part of a
// full-width load. Units of work: 8 values (a sub-block of 32 for Q4_K/Q5_K, whose scale
// is decoded once), UPT per invocation per chunk.
#if defined(FORMAT_Q4_K) || defined(FORMAT_Q5_K)
const uint UNIT = 32u, UPT = 1u;
#else
const uint UNIT = 8u, UPT = 2u;
#endif
const uint CHUNK = gl_WorkGroupSize.x * UNIT * UPT; // values of a row per stage (QK | CHUNK)
const uint CHUNK_BYTES = CHUNK / QK * BLOCK_BYTES;
const uint ROW_WORDS = CHUNK_BYTES / 4u + 2u; // + a leading half word and a tail word
shared uint wq[ROWS * ROW_WORDS];             // vkb_quant.glsl reads these words
// Binding offsets of weight parts are multiples of 256 (backend/vkb_memory.c).
layout(std430, binding = 0) readonly buffer Weights { uint wsrc[]; };
layout(std430, binding = 0) readonly buffer Weights4 { uvec4 wsrc4[]; };
#else
layout(std430, binding = 0) readonly buffer Weights { uint wq[]; };
#ifdef LANE_ROWS
// A CPU driver pays per load, not per byte: 8-byte loads of W and x where they stay within
// the binding
#extension GL_ARB_gpu_shader_int64 : require
layout(std430, binding = 0) readonly buffer Weights8 { uint64_t wq8[]; };
#endif
#endif
#ifdef INT_DOT
// x quantized to 8-bit blocks (vkb_q8.glsl: the bytes of all blocks, then d and s of each);
// each weight block's integers are dotted with them four at a time.
#extension GL_EXT_spirv_intrinsics : require
layout(std430, binding = 1) readonly buffer XQ { uint xq[]; };
// OpSDot (SPV_KHR_integer_dot_product) on two words of four signed bytes each; fmt 0 is
// PackedVectorFormat4x8Bit
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018],
                  id = 4450) int dot4x8(int a, int b, spirv_literal int fmt);
#else
layout(std430, binding = 1) readonly buffer X { vec4 x4[]; };
#ifdef LANE_ROWS
layout(std430, binding = 1) readonly buffer X8 { uint64_t x8[]; };
#endif
// NORM: the norm's weights, k floats (without NORM the backend binds x here)
layout(std430, binding = 5) readonly buffer Gain { vec4 g4[]; };
#ifdef LANE_ROWS
layout(std430, binding = 5) readonly buffer Gain8 { uint64_t g8[]; };
#endif
#endif
#include "vkb_outputs.glsl"

layout(push_constant) uniform Push {
    uint k;         // values per row, a multiple of QK
    uint row_bytes; // bytes per row of W
    uint row0;      // index of this part's first row among all of W's
    uint rows;      // rows in this part of W
    uint x_stride;  // floats between columns of x, a multiple of 4
    uint rows_all;  // rows of W in all its parts
    uint split1;    // W's first row written to the second output, the third's
    uint split2;
    float eps; // NORM: added to the mean of squares
    // ROPE: q's and k's heads of head_dim rows, the first rot_dims of each rotated in
    // GPT-NeoX's pair order where neox (rope.comp); the caches' row of column 0
    uint head_dim;
    uint rot_dims;
    uint neox;
    uint cache_row0;
    uint bias; // ROPE: 1 where binding 8 holds the biases of W's rows
} pc;

// ROPE: the positions of the columns, the rotation's frequencies (vkb_rope_freqs), and the
// caches as words of two f16 values (vkb_outputs.glsl's out1 and out2)
layout(std430, binding = 6) readonly buffer Pos { int pos[]; };
layout(std430, binding = 7) readonly buffer Freq { float freq[]; };
layout(std430, binding = 8) readonly buffer Bias { float bias[]; };
layout(std430, binding = 3) writeonly buffer KCache { uint k_cache[]; };
layout(std430, binding = 4) writeonly buffer VCache { uint v_cache[]; };

#include "vkb_quant.glsl"
#include "vkb_rope.glsl"

#ifndef INT_DOT
// x's four values at x4[xi] (column c); with NORM times the norm's weights, their squares
// added to ss where `count` (each value of x is counted once per workgroup)
vec4 x_load(uint c, uint xi, bool count, inout float ss)
{
    vec4 v = x4[xi];
    if (NORM) {
        if (count)
            ss += dot(v, v);
        v *= g4[xi - c * (pc.x_stride / 4u)];
    }
    return v;
}
#endif

// ROPE: the dimension of a head that its row l sits at in the order the kernel takes
// them. GPT-NeoX's pairs (i, i + rot_dims/2) are far apart: the quad from l (a multiple of
// 4) holds dimensions i, i + 1, i + rot_dims/2 and i + 1 + rot_dims/2 (i = l / 2), two
// pairs and two f16 words. llama's pairs (2i, 2i+1) and the unrotated dimensions stay.
uint rope_dim(uint l)
{
    if (pc.neox == 0u || l >= pc.rot_dims)
        return l;
    return l / 4u * 2u + (l & 1u) + ((l & 2u) != 0u ? pc.rot_dims / 2u : 0u);
}

// Row r (of ROWS) of the workgroup whose first output row is `first`, counted in this part
// of W: with GLU the first PAIR are gate rows, the rest the up rows that pair with them
// (from pc.rows / 2 on); with ROPE in rope_dim's order within each head.
uint w_row(uint first, uint r)
{
    if (ROPE) {
        const uint l = first + r, d = l % pc.head_dim;
        return l - d + rope_dim(d);
    }
    return GLU && r >= PAIR ? pc.rows / 2u + first + r - PAIR : first + r;
}

// Whether that row exists.
bool w_live(uint first, uint r)
{
    return GLU ? first + r % PAIR < pc.rows / 2u : first + r < pc.rows;
}

// GLU: the gated FFN's activation of a gate and an up sum (eltwise.comp's OP_SILU_MUL or
// OP_GELU_MUL)
float glu_mul(float g, float u)
{
    return act_mul(GLU_MODE == 2u ? ACT_GELU : ACT_SILU, g, u);
}

// ROPE: the sums v of the quad of rows from l (rope_dim's order; W in one part) for column
// c, with their biases, rotated where they are q's or k's, stored: q as floats, k and v as
// two f16 words each in their cache's row cache_row0 + c (cache_row0 AT_POS: pos[c]).
void rope_store4(uint c, uint l, vec4 v)
{
    const uint row = pc.cache_row0 == AT_POS ? uint(pos[c]) : pc.cache_row0 + c;
    const uint d = l % pc.head_dim, head0 = l - d;
    // W's rows of (v.x, v.y) and of (v.z, v.w): each pair of neighbouring dimensions
    const uint r0 = head0 + rope_dim(d), r2 = head0 + rope_dim(d + 2u);
    if (pc.bias != 0u)
        v += vec4(bias[r0], bias[r0 + 1u], bias[r2], bias[r2 + 1u]);
    if (l < pc.split2 && d < pc.rot_dims) {
        const int p = pos[c];
        if (pc.neox != 0u) { // pairs (x, z) and (y, w)
            const vec2 a = rope_rotate(v.x, v.z, p, freq[d / 2u]);
            const vec2 b = rope_rotate(v.y, v.w, p, freq[d / 2u + 1u]);
            v = vec4(a.x, b.x, a.y, b.y);
        } else { // pairs (x, y) and (z, w); the second past rot_dims where rot_dims % 4 == 2
            v.xy = rope_rotate(v.x, v.y, p, freq[d / 2u]);
            if (d + 2u < pc.rot_dims)
                v.zw = rope_rotate(v.z, v.w, p, freq[d / 2u + 1u]);
        }
    }
    if (l < pc.split1) {
        const uint at = c * pc.split1;
        out0[at + r0] = v.x;
        out0[at + r0 + 1u] = v.y;
        out0[at + r2] = v.z;
        out0[at + r2 + 1u] = v.w;
    } else if (l < pc.split2) {
        const uint kvw = pc.split2 - pc.split1, at = row * kvw - pc.split1;
        k_cache[(at + r0) / 2u] = packHalf2x16(v.xy);
        k_cache[(at + r2) / 2u] = packHalf2x16(v.zw);
    } else {
        const uint kvw = pc.rows_all - pc.split2, at = row * kvw - pc.split2;
        v_cache[(at + r0) / 2u] = packHalf2x16(v.xy);
        v_cache[(at + r2) / 2u] = packHalf2x16(v.zw);
    }
}

// NORM: what a row's sums are scaled by, from their column's sum of squares (rms_norm.comp's
// formula)
float norm_scale(float ss)
{
    return 1.0 / sqrt(ss / float(pc.k) + pc.eps);
}

#ifdef INT_DOT
// Each format spreads its blocks over neighbouring invocations so that a subgroup's loads
// read neighbouring words of W and of x.
#if defined(FORMAT_Q4_K) || defined(FORMAT_Q5_K)
// q4_K and q5_K: one word of a block's quants per invocation. Word w of the 128 quant
// bytes holds, in its low nibbles, values 4(w%8)..+3 of sub-block 2(w/8) and, in its high
// nibbles, the same values of sub-block 2(w/8)+1 (q5_K: fifth bits from qh's word w%8):
// each is dotted with x's word of those values, and x = (d·sc)·q − dmin·m is summed as
// d·sc·Σq·x − dmin·m·Σx per sub-block, the integer sums exact. 32 invocations read a
// whole block: 128 contiguous bytes and the same head. The scales and minimums come from
// the block's three scale words (k4_scale_min, vkb_quant.glsl).
#elif defined(FORMAT_Q6_K)
// q6_K: an invocation per four positions l..l+3 (l = 4·(u%8)) of one half h of a block:
// 16 values, four in each quarter of the half, from ql's words at l and l + 32 (low
// nibbles: quarters 0 and 1, high: 2 and 3) and qh's word at l (bit pairs 0-1, 2-3, 4-5,
// 6-7). Each quarter's four 6-bit values are dotted with x's word of them, and
// d·sc·(Σq·x − 32·Σx) summed per quarter. 16 invocations cover one 210-byte block.

// The four bytes at an even byte offset (blocks of 210 bytes start on a word or half a
// word): the aligned words under them, combined without a divergent branch.
uint k6_word(uint off)
{
    const uint lo = wq[off >> 2u], hi = wq[(off + 3u) >> 2u];
    return (off & 2u) == 0u ? lo : (lo >> 16) | (hi << 16);
}
#else
// q4_0 and q8_0: four invocations per block of 32 values, each taking one word of its
// quants (q4_0: 16 bytes, word j holding values 4j..4j+3 in its low nibbles and 16+4j.. in
// its high ones; q8_0: 32 bytes, words 2j and 2j+1 holding values 8j..8j+7): eight blocks
// of W (144 or 272 bytes) per subgroup load, where one block per invocation spread each
// load over 576 bytes and its x over 1280.
//
// Blocks of 18 and 34 bytes start at a word or half a word: the words are read from the
// aligned word below either way, and the integers picked out without a divergent branch.
#if defined(FORMAT_Q4_0)
#define FORMAT_WORDS 3u
#else
#define FORMAT_WORDS 4u
#endif
uint pick(uint lo, uint hi, bool whole)
{
    return whole ? hi : (lo >> 16) | (hi << 16);
}

// The words of W that quarter j of the block at byte `off` (even) needs: the scale's word,
// then the quants' words from the aligned word below them (q4_0 two, q8_0 three).
const uint QW = FORMAT_WORDS;
void quarter_load(uint off, uint j, out uint w[QW])
{
    const uint w0 = off >> 2;
    w[0] = wq[w0];
#if defined(FORMAT_Q4_0)
    w[1] = wq[w0 + j];
    w[2] = wq[w0 + j + 1u];
#else
    w[1] = wq[w0 + 2u * j];
    w[2] = wq[w0 + 2u * j + 1u];
    w[3] = wq[w0 + 2u * j + 2u];
#endif
}

// Those words dotted with x's words xa, xb of the same values; xd, xs: d and s of x's block.
float quarter_dot(uint off, const uint w[QW], uint xa, uint xb, float xd, float xs)
{
    const bool half_start = (off & 2u) != 0u; // the quants start at the next word
    const float d = unpackHalf2x16(half_start ? w[0] >> 16 : w[0]).x;
#if defined(FORMAT_Q4_0)
    const uint q = pick(w[1], w[2], half_start);
    const int sum = dot4x8(int(q & 0x0f0f0f0fu), int(xa), 0) +
                    dot4x8(int((q >> 4) & 0x0f0f0f0fu), int(xb), 0);
    return d * (xd * float(sum) - 2.0 * xs); // a quarter of the block's offset, -8 · s
#elif defined(FORMAT_Q8_0)
    const int sum = dot4x8(int(pick(w[1], w[2], half_start)), int(xa), 0) +
                    dot4x8(int(pick(w[2], w[3], half_start)), int(xb), 0);
    return d * xd * float(sum);
#else
#error "INT_DOT reads q4_0, q8_0, q4_K, q5_K and q6_K"
#endif
}
#endif // FORMAT_Q4_K, FORMAT_Q5_K, FORMAT_Q6_K
#endif

#ifdef LANE_ROWS
#define LANE_RPI 4u // rows per invocation at most (VKB_LANE_ROWS)

#if defined(FORMAT_IQ4_NL)
// iq4nl_values (IQ4NL_BYTES) picked by selects and a shift, not by an indexed load (a CPU
// driver loads for each invocation on its own)
vec4 iq4nl_lane4(uvec4 v)
{
    const uvec4 lo = mix(uvec4(IQ4NL_BYTES.x), uvec4(IQ4NL_BYTES.y), greaterThan(v, uvec4(3u)));
    const uvec4 hi = mix(uvec4(IQ4NL_BYTES.z), uvec4(IQ4NL_BYTES.w), greaterThan(v, uvec4(11u)));
    const uvec4 w = mix(lo, hi, greaterThan(v, uvec4(7u)));
    return vec4(ivec4(w << (24u - 8u * (v & 3u))) >> 24);
}
#endif

// The nine aligned words from the one holding byte `off` on, which with the 4 bytes after
// them lie within the row: five 8-byte loads and a select.
void lane_words9(uint off, out uint w[9])
{
    uint a[10];
    for (uint i = 0u; i < 5u; i++) {
        const uvec2 v = unpackUint2x32(wq8[(off >> 3u) + i]);
        a[2u * i] = v.x;
        a[2u * i + 1u] = v.y;
    }
    const bool sw = (off & 4u) != 0u;
    for (uint i = 0u; i < 9u; i++)
        w[i] = sw ? a[i + 1u] : a[i];
}

// The eight words at byte `off` (even), which with the 8 bytes after them lie within the
// row, combined without a branch.
void lane_words8(uint off, out uint w[8])
{
    uint b[9];
    lane_words9(off, b);
    const bool odd = (off & 2u) != 0u;
    for (uint i = 0u; i < 8u; i++)
        w[i] = odd ? (b[i] >> 16) | (b[i + 1u] << 16) : b[i];
}

#if defined(FORMAT_Q4_0) || defined(FORMAT_Q4_K) || defined(FORMAT_Q5_K) || defined(FORMAT_Q6_K)
// x's values come scaled so that a quantized value masked in place, v·2^s, converts to
// float exactly and its product is v·x without a shift: value 4i + e (byte e of a word)
// by 2^-8e, and a high nibble (q4_0's values 16-31, q4_K's odd sub-blocks) by a further
// 2^-4. Powers of two: the products are those of the values.
#define LANE_X_SCALED
vec4 lane_x_scale(uint lid, uint b)
{
    const vec4 bytes = vec4(1.0, 1.0 / 256.0, 1.0 / 65536.0, 1.0 / 16777216.0);
#if defined(FORMAT_Q4_0)
    return lid >= 4u ? bytes * (1.0 / 16.0) : bytes;
#elif defined(FORMAT_Q4_K)
    return (b & 1u) != 0u ? bytes * (1.0 / 16.0) : bytes;
#else
    return bytes;
#endif
}
const uvec4 LANE_BYTES = uvec4(0xffu, 0xff00u, 0xff0000u, 0xff000000u);
#endif

// W's values k0 .. k0+31 of the row at byte rb dotted with xv (xs: the sums of x's values
// 0-15 and 16-31); tail: the row's last block, which must not read past the row's end;
// hdr: Q4_K/Q5_K's first 16 bytes of the block (d, dmin, scales), read once per block
float lane_dot32(uint rb, uint k0, const vec4 xv[8], vec2 xs, bool tail, uvec4 hdr)
{
#if defined(FORMAT_Q4_0) || defined(FORMAT_IQ4_NL)
    // the whole block: three 8-byte words (18 bytes from a word or half a word); a row's
    // last block (tail) in five 4-byte words, which end within the binding
    const uint o = rb + (k0 / 32u) * block_q4_0_size;
    uvec4 lo4;
    uint v4;
    if (tail) {
        const uint w0 = o >> 2u;
        lo4 = uvec4(wq[w0], wq[w0 + 1u], wq[w0 + 2u], wq[w0 + 3u]);
        v4 = wq[w0 + 4u];
    } else {
        const uint e = o >> 3u;
        const uvec2 a = unpackUint2x32(wq8[e]), b = unpackUint2x32(wq8[e + 1u]),
                    c = unpackUint2x32(wq8[e + 2u]);
        const bool sw = (o & 4u) != 0u;
        lo4 = sw ? uvec4(a.y, b, c.x) : uvec4(a, b);
        v4 = sw ? c.y : c.x;
    }
    const bool odd = (o & 2u) != 0u;
    const float d = unpackHalf2x16(odd ? lo4.x >> 16 : lo4.x).x;
    const uvec4 hi4 = uvec4(lo4.yzw, v4);
    const uvec4 q = odd ? hi4 : (lo4 >> 16) | (hi4 << 16);
#if defined(FORMAT_Q4_0)
    vec4 acc = vec4(0.0);
    for (uint i = 0u; i < 4u; i++) {
        const uvec4 w = uvec4(q[i]);
        acc = fma(vec4(w & uvec4(0xfu, 0xf00u, 0xf0000u, 0xf000000u)), xv[i], acc);
        acc = fma(vec4(w & uvec4(0xf0u, 0xf000u, 0xf00000u, 0xf0000000u)), xv[4u + i], acc);
    }
    return d * ((acc.x + acc.y) + (acc.z + acc.w) - 8.0 * (xs.x + xs.y));
#else
    float s = 0.0;
    for (uint i = 0u; i < 4u; i++) {
        const uvec4 lo = (uvec4(q[i]) >> uvec4(0u, 8u, 16u, 24u)) & 0xfu;
        const uvec4 hi = (uvec4(q[i]) >> uvec4(4u, 12u, 20u, 28u)) & 0xfu;
        s += dot(iq4nl_lane4(lo), xv[i]) + dot(iq4nl_lane4(hi), xv[4u + i]);
    }
    return d * s;
#endif
#elif defined(FORMAT_Q8_0)
    // the whole block: five 8-byte words (34 bytes from any even byte); a row's last block
    // in nine 4-byte words, which end within the binding
    const uint o = rb + (k0 / 32u) * block_q8_0_size;
    uint w[9];
    if (tail) {
        for (uint i = 0u; i < 9u; i++)
            w[i] = wq[(o >> 2u) + i];
    } else {
        lane_words9(o, w);
    }
    const bool odd = (o & 2u) != 0u;
    const float d = unpackHalf2x16(odd ? w[0] >> 16 : w[0]).x;
    // each signed byte moved to the top of its word converts to v·2^24 exactly; d carries
    // the 2^-24
    vec4 acc = vec4(0.0);
    for (uint i = 0u; i < 8u; i++) {
        const uint q = odd ? w[i + 1u] : (w[i] >> 16) | (w[i + 1u] << 16);
        const uvec4 top = uvec4(q << 24u, q << 16u, q << 8u, q) & 0xff000000u;
        acc += vec4(ivec4(top)) * xv[i];
    }
    return (d * (1.0 / 16777216.0)) * ((acc.x + acc.y) + (acc.z + acc.w));
#elif defined(FORMAT_Q6_K)
    // a quarter of a half: 32 bytes of ql (low or high nibbles), 32 of qh (bit pair 2q),
    // two scales (values 0-15 and 16-31)
    const uint j = k0 % 256u, h = j / 128u, q = (j % 128u) / 32u;
    const uint blk = rb + (k0 / 256u) * block_q6_k_size;
    uint ql[8], qh[8];
    lane_words8(blk + block_q6_k_ql + 64u * h + 32u * (q & 1u), ql);
    lane_words8(blk + block_q6_k_qh + 32u * h, qh);
    const uint sc = wq_u16(blk + block_q6_k_scales + 8u * h + 2u * q);
    const float d = wq_f16(blk + block_q6_k_d);
    const uint lsh = q >= 2u ? 4u : 0u, hsh = 2u * q;
    // four 6-bit values to a word, each masked in place against x scaled by its byte
    vec4 a0 = vec4(0.0), a1 = vec4(0.0);
    for (uint i = 0u; i < 8u; i++) {
        const uint v = ((ql[i] >> lsh) & 0x0f0f0f0fu) | (((qh[i] >> hsh) & 0x03030303u) << 4u);
        const vec4 t = vec4(uvec4(v) & LANE_BYTES) * xv[i];
        if (i < 4u)
            a0 += t;
        else
            a1 += t;
    }
    const float s0 = (a0.x + a0.y) + (a0.z + a0.w) - 32.0 * xs.x;
    const float s1 = (a1.x + a1.y) + (a1.z + a1.w) - 32.0 * xs.y;
    const float sc0 = float(bitfieldExtract(int(sc), 0, 8));
    const float sc1 = float(bitfieldExtract(int(sc), 8, 8));
    return d * (sc0 * s0 + sc1 * s1);
#elif defined(FORMAT_Q4_K) || defined(FORMAT_Q5_K)
    // sub-block sb: the low (sb even) or high nibbles of 32 bytes of qs, its 6-bit scale
    // and minimum; x = (d·sc)·q − dmin·m summed as (d·sc)·Σq·x − (dmin·m)·Σx
    const uint sb = (k0 % 256u) / 32u, sh = 4u * (sb & 1u);
    const uint b8 = (rb + (k0 / 256u) * BLOCK_BYTES) >> 3u; // blocks start on 8 bytes
    const vec2 dm = unpackHalf2x16(hdr.x);
    const uvec2 scm = k4_scale_min(hdr.y, hdr.z, hdr.w, sb);
#if defined(FORMAT_Q4_K)
    const uint qs = b8 + block_q4_k_qs / 8u + 4u * (sb / 2u);
    const uvec4 m = uvec4(0xfu, 0xf00u, 0xf0000u, 0xf000000u) << sh; // in place
#else
    const uint qs = b8 + block_q5_k_qs / 8u + 4u * (sb / 2u), qh = b8 + block_q5_k_qh / 8u;
#endif
    vec4 acc = vec4(0.0);
    for (uint i = 0u; i < 4u; i++) {
        uvec2 v = unpackUint2x32(wq8[qs + i]);
#if defined(FORMAT_Q4_K)
        acc += vec4(uvec4(v.x) & m) * xv[2u * i] + vec4(uvec4(v.y) & m) * xv[2u * i + 1u];
#else
        // the fifth bits: bit sb of qh's bytes
        const uvec2 h = unpackUint2x32(wq8[qh + i]);
        v = ((v >> sh) & 0x0f0f0f0fu) | (((h >> sb) & 0x01010101u) << 4u);
        acc += vec4(uvec4(v.x) & LANE_BYTES) * xv[2u * i] +
               vec4(uvec4(v.y) & LANE_BYTES) * xv[2u * i + 1u];
#endif
    }
    const float sq = (acc.x + acc.y) + (acc.z + acc.w), sx = xs.x + xs.y;
    precise float d1 = dm.x * float(scm.x);
    precise float m1 = dm.y * float(scm.y);
    return d1 * sq - m1 * sx;
#elif defined(FORMAT_Q4_1) || defined(FORMAT_Q5_0) || defined(FORMAT_Q5_1)
    // the whole block in the words it spans: q4_1 (20 bytes) and q5_1 (24) start on a word,
    // q5_0 (22) on a word or half a word; x = d·v + m (q5_0: d·(v − 16)) summed as
    // d·Σv·x + m·Σx
    const uint o = rb + (k0 / 32u) * BLOCK_BYTES, w0 = o >> 2u;
#if defined(FORMAT_Q4_1)
    const vec2 dm = unpackHalf2x16(wq[w0]);
    const uvec4 q = uvec4(wq[w0 + 1u], wq[w0 + 2u], wq[w0 + 3u], wq[w0 + 4u]);
    const uint qh = 0u;
#elif defined(FORMAT_Q5_1)
    const vec2 dm = unpackHalf2x16(wq[w0]);
    const uint qh = wq[w0 + 1u];
    const uvec4 q = uvec4(wq[w0 + 2u], wq[w0 + 3u], wq[w0 + 4u], wq[w0 + 5u]);
#else
    const uvec4 a = uvec4(wq[w0], wq[w0 + 1u], wq[w0 + 2u], wq[w0 + 3u]);
    const uvec2 b = uvec2(wq[w0 + 4u], wq[w0 + 5u]);
    const bool odd = (o & 2u) != 0u;
    const vec2 dm = vec2(unpackHalf2x16(odd ? a.x >> 16 : a.x).x, 0.0);
    const uint qh = odd ? a.y : (a.x >> 16) | (a.y << 16);
    const uvec4 q = odd ? uvec4(a.zw, b) : (uvec4(a.yzw, b.x) >> 16) | (uvec4(a.zw, b) << 16);
#endif
    float sq = 0.0;
    const float sx = xs.x + xs.y;
    for (uint i = 0u; i < 4u; i++) {
        const uvec4 sh = uvec4(0u, 8u, 16u, 24u);
        uvec4 lo = (uvec4(q[i]) >> sh) & 0xfu, hi = (uvec4(q[i]) >> (sh + 4u)) & 0xfu;
        // fifth bits: value 4i + e from bit 4i + e of qh, value 16 + 4i + e from bit 16 + 4i + e
        lo |= ((uvec4(qh >> (4u * i)) >> uvec4(0u, 1u, 2u, 3u)) & 1u) << 4u;
        hi |= ((uvec4(qh >> (16u + 4u * i)) >> uvec4(0u, 1u, 2u, 3u)) & 1u) << 4u;
        sq += dot(vec4(lo), xv[i]) + dot(vec4(hi), xv[4u + i]);
    }
#if defined(FORMAT_Q5_0)
    return dm.x * (sq - 16.0 * sx);
#else
    return dm.x * sq + dm.y * sx;
#endif
#elif defined(FORMAT_F32)
    // 128 bytes in sixteen 8-byte loads (rows of f32 start on 32 bytes). Scalar loads, 32
    // per row, made each of these pipelines take LLVM 20 s to compile at four rows per
    // invocation.
    const uint e = (rb >> 3u) + k0 / 2u;
    vec4 acc = vec4(0.0);
    for (uint i = 0u; i < 8u; i++) {
        const uvec2 lo = unpackUint2x32(wq8[e + 2u * i]), hi = unpackUint2x32(wq8[e + 2u * i + 1u]);
        acc = fma(uintBitsToFloat(uvec4(lo, hi)), xv[i], acc);
    }
    return (acc.x + acc.y) + (acc.z + acc.w);
#else
    // f16, bf16: 64 bytes in eight 8-byte loads (rows start on 16 bytes)
    const uint e = (rb >> 3u) + k0 / 4u;
    vec4 acc = vec4(0.0);
    for (uint i = 0u; i < 8u; i++) {
        const uvec2 w = unpackUint2x32(wq8[e + i]);
        acc = fma(vec4(half2(w.x), half2(w.y)), xv[i], acc);
    }
    return (acc.x + acc.y) + (acc.z + acc.w);
#endif
}

// One step of 32 values of column c for the invocation's rows (first byte of each in rb):
// invocation i loads x's values 4i .. 4i+3 and broadcasts them to the others. With NORM
// invocations 0-7 add the squares of theirs to ss and multiply them by g.
void lane_step(uint c, uint b, bool tail, const uint rb[LANE_RPI], uint rpi,
               const uvec4 hdr[LANE_RPI], inout float s[LANE_RPI], inout float ss)
{
    const uint lid = gl_LocalInvocationID.x;
#if defined(FORMAT_F32) || defined(FORMAT_F16) || defined(FORMAT_BF16)
    // (the float formats ran 10-25% slower on lavapipe with x in two 8-byte loads)
    vec4 xl = x4[(c * pc.x_stride + b * 32u) / 4u + min(lid, 7u)];
    if (NORM) {
        ss += lid < 8u ? dot(xl, xl) : 0.0;
        xl *= g4[b * 8u + min(lid, 7u)];
    }
#else
    const uint xw = (c * pc.x_stride + b * 32u) / 2u + 2u * min(lid, 7u);
    const uvec2 x01 = unpackUint2x32(x8[xw]), x23 = unpackUint2x32(x8[xw + 1u]);
    vec4 xl = uintBitsToFloat(uvec4(x01, x23));
    if (NORM) {
        ss += lid < 8u ? dot(xl, xl) : 0.0;
        const uint gw = b * 16u + 2u * min(lid, 7u);
        xl *= uintBitsToFloat(uvec4(unpackUint2x32(g8[gw]), unpackUint2x32(g8[gw + 1u])));
    }
#endif
    // the sums of the step's values 0-15 and 16-31 (in a fixed order: the same on every
    // invocation)
    const float xl4 = (xl.x + xl.y) + (xl.z + xl.w);
    vec2 xs = vec2(0.0);
    for (uint v = 0u; v < 4u; v++)
        xs += vec2(subgroupBroadcast(xl4, v), subgroupBroadcast(xl4, v + 4u));
#ifdef LANE_X_SCALED
    xl *= lane_x_scale(lid, b);
#endif
    vec4 xv[8];
    for (uint v = 0u; v < 8u; v++)
        xv[v] = subgroupBroadcast(xl, v);
    for (uint j = 0u; j < LANE_RPI; j++) {
        if (j < rpi)
            s[j] += lane_dot32(rb[j], b * 32u, xv, xs, tail, hdr[j]);
    }
}
#endif

void main()
{
    QUANT_TABLES_INIT();
    const uint first = flat_group_id() * PAIR;
    if (first >= (GLU ? pc.rows / 2u : pc.rows))
        return; // the whole workgroup leaves together
    const uint lid = gl_LocalInvocationID.x;

    float acc[ROWS * NCOLS];
    for (uint i = 0u; i < ROWS * NCOLS; i++)
        acc[i] = 0.0;
    float ss[NCOLS]; // NORM: this invocation's part of each column's sum of squares
    for (uint c = 0u; c < NCOLS; c++)
        ss[c] = 0.0;

#if defined(INT_DOT) && (defined(FORMAT_Q4_K) || defined(FORMAT_Q5_K))
    const uint nb = pc.k / 32u, ds0 = 8u * NCOLS * nb; // x's d and s follow all its bytes
    for (uint t = lid; t < 4u * nb; t += gl_WorkGroupSize.x) {
        const uint blk = t >> 5u, w = t & 31u, c = w >> 3u, jj = w & 7u;
        // x: the words of the two sub-blocks' values, their scales, the sums of their bytes
        uint xa[NCOLS], xb[NCOLS];
        float xd0[NCOLS], xd1[NCOLS];
        int xsum0[NCOLS], xsum1[NCOLS];
        for (uint col = 0u; col < NCOLS; col++) {
            const uint g = col * nb + 8u * blk + 2u * c; // x's block of the low nibbles
            xa[col] = xq[8u * g + jj];
            xb[col] = xq[8u * g + 8u + jj];
            xd0[col] = uintBitsToFloat(xq[ds0 + 2u * g]);
            xd1[col] = uintBitsToFloat(xq[ds0 + 2u * g + 2u]);
            xsum0[col] = dot4x8(0x01010101, int(xa[col]), 0);
            xsum1[col] = dot4x8(0x01010101, int(xb[col]), 0);
        }
        for (uint r = 0u; r < ROWS; r++) {
            if (w_live(first, r)) {
                // blocks of 144 (176) bytes in rows of whole blocks: each starts on a word
                const uint bw = (w_row(first, r) * pc.row_bytes + blk * BLOCK_BYTES) >> 2u;
                const vec2 dm = unpackHalf2x16(wq[bw]); // d, dmin
                const uint s0 = wq[bw + 1u], s1 = wq[bw + 2u], s2 = wq[bw + 3u];
                const uvec2 sm0 = k4_scale_min(s0, s1, s2, 2u * c);
                const uvec2 sm1 = k4_scale_min(s0, s1, s2, 2u * c + 1u);
#if defined(FORMAT_Q4_K)
                const uint q = wq[bw + block_q4_k_qs / 4u + 8u * c + jj];
                const int lo = int(q & 0x0f0f0f0fu), hi = int((q >> 4) & 0x0f0f0f0fu);
#else
                // q5_K: bit s of qh[l] is the fifth bit of value l of sub-block s
                const uint q = wq[bw + block_q5_k_qs / 4u + 8u * c + jj];
                const uint qh = wq[bw + block_q5_k_qh / 4u + jj] >> (2u * c);
                const int lo = int((q & 0x0f0f0f0fu) | ((qh & 0x01010101u) << 4));
                const int hi = int(((q >> 4) & 0x0f0f0f0fu) | ((qh & 0x02020202u) << 3));
#endif
                for (uint col = 0u; col < NCOLS; col++) {
                    const int i0 = dot4x8(lo, int(xa[col]), 0), i1 = dot4x8(hi, int(xb[col]), 0);
                    acc[r * NCOLS + col] +=
                        xd0[col] * (dm.x * float(int(sm0.x) * i0) -
                                    dm.y * float(int(sm0.y) * xsum0[col])) +
                        xd1[col] *
                            (dm.x * float(int(sm1.x) * i1) - dm.y * float(int(sm1.y) * xsum1[col]));
                }
            }
        }
    }
#elif defined(INT_DOT) && defined(FORMAT_Q6_K)
    const uint nb = pc.k / 32u, ds0 = 8u * NCOLS * nb; // x's d and s follow all its bytes
    for (uint t = lid; t < 2u * nb; t += gl_WorkGroupSize.x) {
        const uint blk = t >> 4u, h = (t >> 3u) & 1u, jj = t & 7u;
        // x: each quarter's word of these positions, its block's scale, the sum of its bytes
        uint xw[4u * NCOLS];
        float xd[4u * NCOLS];
        int xsum[4u * NCOLS];
        for (uint col = 0u; col < NCOLS; col++) {
            for (uint qt = 0u; qt < 4u; qt++) {
                const uint g = col * nb + 8u * blk + 4u * h + qt, i = 4u * col + qt;
                xw[i] = xq[8u * g + jj];
                xd[i] = uintBitsToFloat(xq[ds0 + 2u * g]);
                xsum[i] = dot4x8(0x01010101, int(xw[i]), 0);
            }
        }
        for (uint r = 0u; r < ROWS; r++) {
            if (w_live(first, r)) {
                const uint bo = w_row(first, r) * pc.row_bytes + blk * block_q6_k_size;
                const uint la = k6_word(bo + block_q6_k_ql + 64u * h + 4u * jj);
                const uint lb = k6_word(bo + block_q6_k_ql + 64u * h + 32u + 4u * jj);
                const uint hb = k6_word(bo + block_q6_k_qh + 32u * h + 4u * jj);
                // the eight scales of this half: quarter qt's at byte jj / 4 + 2·qt
                const uint s_lo = k6_word(bo + block_q6_k_scales + 8u * h);
                const uint s_hi = k6_word(bo + block_q6_k_scales + 8u * h + 4u);
                const float d = wq_f16(bo + block_q6_k_d);
                const uint sb = 8u * (jj >> 2u);
                const int sc[4] = int[4](bitfieldExtract(int(s_lo), int(sb), 8),
                                         bitfieldExtract(int(s_lo), int(sb + 16u), 8),
                                         bitfieldExtract(int(s_hi), int(sb), 8),
                                         bitfieldExtract(int(s_hi), int(sb + 16u), 8));
                const int q[4] = int[4](int((la & 0x0f0f0f0fu) | ((hb << 4) & 0x30303030u)),
                                        int((lb & 0x0f0f0f0fu) | ((hb << 2) & 0x30303030u)),
                                        int(((la >> 4) & 0x0f0f0f0fu) | (hb & 0x30303030u)),
                                        int(((lb >> 4) & 0x0f0f0f0fu) | ((hb >> 2) & 0x30303030u)));
                for (uint col = 0u; col < NCOLS; col++) {
                    float sum = 0.0;
                    for (uint qt = 0u; qt < 4u; qt++) {
                        const uint i = 4u * col + qt;
                        const int dq = dot4x8(q[qt], int(xw[i]), 0) - 32 * xsum[i];
                        sum += xd[i] * float(sc[qt] * dq);
                    }
                    acc[r * NCOLS + col] += d * sum;
                }
            }
        }
    }
#elif defined(INT_DOT)
    const uint nb = pc.k / 32u, ds0 = 8u * NCOLS * nb; // x's d and s follow all its bytes
    for (uint t = lid; t < 4u * nb; t += gl_WorkGroupSize.x) {
        const uint b = t >> 2u, j = t & 3u;
        for (uint c = 0u; c < NCOLS; c++) {
            const uint g = c * nb + b; // x's block
#if defined(FORMAT_Q4_0)
            const uint xa = xq[8u * g + j], xb = xq[8u * g + 4u + j];
#else
            const uint xa = xq[8u * g + 2u * j], xb = xq[8u * g + 2u * j + 1u];
#endif
            const float xd = uintBitsToFloat(xq[ds0 + 2u * g]);
            const float xs = uintBitsToFloat(xq[ds0 + 2u * g + 1u]);
            for (uint r = 0u; r < ROWS; r++) {
                if (w_live(first, r)) {
                    const uint off = w_row(first, r) * pc.row_bytes + b * BLOCK_BYTES;
                    uint w[QW];
                    quarter_load(off, j, w);
                    acc[r * NCOLS + c] += quarter_dot(off, w, xa, xb, xd, xs);
                }
            }
        }
    }
#elif defined(STAGED)
    const bool wide = ((pc.row_bytes | CHUNK_BYTES) & 15u) == 0u;
    const uint n_words = wsrc.length();
    for (uint k0 = 0u; k0 < pc.k; k0 += CHUNK) {
        const uint bytes = (min(CHUNK, pc.k - k0) / QK) * BLOCK_BYTES; // of each row
        const uint chunk_at = (k0 / QK) * BLOCK_BYTES;
        barrier(); // the previous chunk has been read
        if (wide) {
            const uint nv = bytes / 16u;
            for (uint i = lid; i < ROWS * nv; i += gl_WorkGroupSize.x) {
                uint r = i / nv, j = i - r * nv;
                if (w_live(first, r)) {
                    uvec4 v = wsrc4[(w_row(first, r) * pc.row_bytes + chunk_at) / 16u + j];
                    uint o = r * ROW_WORDS + 4u * j;
                    wq[o] = v.x;
                    wq[o + 1u] = v.y;
                    wq[o + 2u] = v.z;
                    wq[o + 3u] = v.w;
                }
            }
        } else {
            const uint nw = (bytes + 2u + 3u) / 4u; // a row may start at a half word
            for (uint i = lid; i < ROWS * nw; i += gl_WorkGroupSize.x) {
                uint r = i / nw, j = i - r * nw;
                uint w = (w_row(first, r) * pc.row_bytes + chunk_at) / 4u + j;
                if (w_live(first, r) && w < n_words)
                    wq[r * ROW_WORDS + j] = wsrc[w];
            }
        }
        barrier();
        for (uint u = lid; u * UNIT < CHUNK && k0 + u * UNIT < pc.k; u += gl_WorkGroupSize.x) {
#ifndef DEQUANT32
            vec4 xa[NCOLS], xb[NCOLS];
            for (uint c = 0u; c < NCOLS; c++) {
                uint xi = (c * pc.x_stride + k0 + u * 8u) / 4u;
                xa[c] = x_load(c, xi, true, ss[c]);
                xb[c] = x_load(c, xi + 1u, true, ss[c]);
            }
#endif
            for (uint r = 0u; r < ROWS; r++) {
                if (!w_live(first, r))
                    continue;
                uint rb = r * ROW_WORDS * 4u + ((w_row(first, r) * pc.row_bytes + chunk_at) & 3u);
#ifdef DEQUANT32
                vec4 v[8];
                dequant32(rb, u * 32u, v);
                for (uint c = 0u; c < NCOLS; c++) {
                    uint xi = (c * pc.x_stride + k0 + u * 32u) / 4u;
                    float s = 0.0;
                    for (uint i = 0u; i < 8u; i++)
                        s += dot(v[i], x_load(c, xi + i, r == 0u, ss[c]));
                    acc[r * NCOLS + c] += s;
                }
#else
                vec4 a, b;
                dequant8(rb, u * 8u, a, b);
                for (uint c = 0u; c < NCOLS; c++)
                    acc[r * NCOLS + c] += dot(a, xa[c]) + dot(b, xb[c]);
#endif
            }
        }
    }
#elif defined(LANE_ROWS)
    // CPU drivers: invocation i owns rows first + i, first + i + WG, ... (up to LANE_RPI;
    // with ROPE the quad first + 4i .. first + 4i + 3) and walks each whole row. Each step
    // of 32 values, invocation i loads x's values 4i .. 4i+3 and broadcasts them to the
    // others (lane_step): a CPU driver gives every invocation its own scalar load, so x
    // loaded once per subgroup instead of once per invocation is the saving.
    // Needs a workgroup of one subgroup of at least 8 invocations.
    const uint wg = gl_WorkGroupSize.x, rpi = ROWS / wg, nb = pc.k / 32u;
    // each row's first byte; rows past the end read the last row (no divergent branch)
    // and are not stored
    uint rb[LANE_RPI];
    for (uint j = 0u; j < LANE_RPI; j++) {
        const uint r = ROPE ? 4u * lid + j : lid + j * wg;
        rb[j] = (w_live(first, r) ? w_row(first, r) : 0u) * pc.row_bytes;
    }
    for (uint c = 0u; c < NCOLS; c++) {
        float s[LANE_RPI], ss = 0.0;
        for (uint j = 0u; j < LANE_RPI; j++)
            s[j] = 0.0;
        uvec4 hdr[LANE_RPI];
        for (uint j = 0u; j < LANE_RPI; j++)
            hdr[j] = uvec4(0u);
#if defined(FORMAT_Q4_K) || defined(FORMAT_Q5_K)
        // each row's d, dmin and scales once per block of 256 values (blocks start on 8
        // bytes and hold their reads: no tail)
        for (uint bb = 0u; bb < nb / 8u; bb++) {
            for (uint j = 0u; j < LANE_RPI; j++) {
                if (j < rpi) {
                    const uint b8 = (rb[j] + bb * BLOCK_BYTES) >> 3u;
                    hdr[j] = uvec4(unpackUint2x32(wq8[b8]), unpackUint2x32(wq8[b8 + 1u]));
                }
            }
            for (uint sb = 0u; sb < 8u; sb++)
                lane_step(c, 8u * bb + sb, false, rb, rpi, hdr, s, ss);
        }
#elif defined(FORMAT_F32) || defined(FORMAT_F16) || defined(FORMAT_BF16)
        // aligned 8-byte words of the row: no tail (one copy of the step, not two)
        for (uint b = 0u; b < nb; b++)
            lane_step(c, b, false, rb, rpi, hdr, s, ss);
#else
        // the last block apart: its loads must end within the row
        for (uint b = 0u; b + 1u < nb; b++)
            lane_step(c, b, false, rb, rpi, hdr, s, ss);
        if (nb > 0u)
            lane_step(c, nb - 1u, true, rb, rpi, hdr, s, ss);
#endif
        // float formats: the last k % 32 values, eight at a time
        for (uint u = nb * 4u; u < pc.k / 8u; u++) {
            const uint xi = (c * pc.x_stride + u * 8u) / 4u;
            const vec4 xa = x_load(c, xi, lid == 0u, ss), xb = x_load(c, xi + 1u, lid == 0u, ss);
            for (uint j = 0u; j < LANE_RPI; j++) {
                if (j < rpi) {
                    vec4 a, b;
                    dequant8(rb[j], u * 8u, a, b);
                    s[j] += dot(a, xa) + dot(b, xb);
                }
            }
        }
        float scale = 1.0;
        if (NORM) {
            float sum = 0.0; // invocations 0-7 hold the squares (and 0 the tail's)
            for (uint v = 0u; v < 8u; v++)
                sum += subgroupBroadcast(ss, v);
            scale = norm_scale(sum);
        }
        // with GLU rows j and j + rpi / 2 are a gate row and its up row; with ROPE the
        // four rows are a quad (rpi is 4)
        if (ROPE && w_live(first, 4u * lid))
            rope_store4(c, first + 4u * lid, vec4(s[0], s[1], s[2], s[3]) * scale);
        const uint outs = GLU ? rpi / 2u : rpi;
        for (uint j = 0u; j < LANE_RPI; j++) {
            const uint r = lid + j * wg;
            if (!ROPE && j < outs && w_live(first, r)) {
                float v = s[j] * scale;
                if (GLU) {
                    float up = 0.0;
                    for (uint i = 0u; i < LANE_RPI; i++)
                        up = i == j + outs ? s[i] : up; // no dynamic index into s
                    v = glu_mul(v, up * scale);
                }
                store_output(c, pc.row0 + first + r, v, pc.rows_all, pc.split1, pc.split2);
            }
        }
    }
#elif defined(DEQUANT32)
    // K-quant sub-blocks of 32 values: each invocation decodes a sub-block's scale and
    // minimum once for its 32 values (neighbouring invocations, neighbouring 16 bytes)
    const uint units32 = pc.k / 32u;
    for (uint u = lid; u < units32; u += gl_WorkGroupSize.x) {
        for (uint r = 0u; r < ROWS; r++) {
            if (w_live(first, r)) {
                vec4 v[8];
                dequant32(w_row(first, r) * pc.row_bytes, u * 32u, v);
                for (uint c = 0u; c < NCOLS; c++) {
                    uint xi = (c * pc.x_stride + u * 32u) / 4u;
                    float s = 0.0;
                    for (uint i = 0u; i < 8u; i++)
                        s += dot(v[i], x_load(c, xi + i, r == 0u, ss[c]));
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
            xa[c] = x_load(c, xi, true, ss[c]);
            xb[c] = x_load(c, xi + 1u, true, ss[c]);
        }
        for (uint r = 0u; r < ROWS; r++) {
            if (w_live(first, r)) {
                vec4 a, b;
                dequant8(w_row(first, r) * pc.row_bytes, u * 8u, a, b);
                for (uint c = 0u; c < NCOLS; c++)
                    acc[r * NCOLS + c] += dot(a, xa[c]) + dot(b, xb[c]);
            }
        }
    }
#endif

#ifndef LANE_ROWS
    const uint wg = gl_WorkGroupSize.x;
#ifdef USE_SUBGROUP
    // each subgroup sums its invocations; the first ACCS invocations add the subgroups
    for (uint a = 0u; a < REDS; a++) {
        float t = subgroupAdd(a < ACCS ? acc[a] : ss[a - ACCS]);
        if (subgroupElect())
            red[a * wg + gl_SubgroupID] = t;
    }
    barrier();
    const uint parts = gl_NumSubgroups;
#else
    // a tree over the workgroup, any size
    for (uint a = 0u; a < REDS; a++)
        red[a * wg + lid] = a < ACCS ? acc[a] : ss[a - ACCS];
    barrier();
    uint half_size = 1u;
    while (half_size * 2u < wg)
        half_size *= 2u;
    for (uint s = half_size; s > 1u; s >>= 1) {
        if (lid < s && lid + s < wg)
            for (uint a = 0u; a < REDS; a++)
                red[a * wg + lid] += red[a * wg + lid + s];
        barrier();
    }
    const uint parts = min(wg, 2u);
#endif
    // with ROPE four rows' accumulators, a quad, make one (rope_store4)
    for (uint a = lid; ROPE && a < ROWS / 4u * NCOLS; a += wg) {
        const uint r = a / NCOLS * 4u, c = a % NCOLS;
        const float scale = NORM ? norm_scale(red_sum(ACCS + c, parts)) : 1.0;
        const vec4 t = vec4(red_sum(r * NCOLS + c, parts), red_sum((r + 1u) * NCOLS + c, parts),
                            red_sum((r + 2u) * NCOLS + c, parts),
                            red_sum((r + 3u) * NCOLS + c, parts));
        if (first + r < pc.rows)
            rope_store4(c, first + r, t * scale);
    }
    // with GLU accumulator a (a gate row's) and a + PAIR * NCOLS (its up row's) make one
    for (uint a = lid; !ROPE && a < PAIR * NCOLS; a += wg) {
        uint r = a / NCOLS, c = a % NCOLS;
        const float scale = NORM ? norm_scale(red_sum(ACCS + c, parts)) : 1.0;
        float t = red_sum(a, parts) * scale;
        if (GLU)
            t = glu_mul(t, red_sum(a + PAIR * NCOLS, parts) * scale);
        if (w_live(first, r))
            store_output(c, pc.row0 + first + r, t, pc.rows_all, pc.split1, pc.split2);
    }
#endif
}
