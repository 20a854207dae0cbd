#version 450
// out[n][row0 + m] = sum_k W[m][k] * X[n][k] in integers: the prefill product for the
// quantized weight formats with X quantized to 8-bit blocks (vkb_q8.glsl; quantize_q8.comp
// or a fused op made them). A workgroup computes a TM x TN tile of out, K going by TKB
// blocks of 32 at a time: each 32 values of W (a block, or a K-quant's sub-block) are
// unpacked once into eight words of four signed bytes (w_block below) and their scales,
// X's words and scales copied as they are, all into shared memory; each invocation then
// owns an RM x RN block of outputs (strided by TM/RM and TN/RN, so neighbours read
// neighbouring shared words) and dots four values of W with four of X per instruction
// (OpSDot), one shared load of W and of X feeding RN and RM such dots. W's 32 values
// stand for d·q + m (q the signed bytes, m a minimum of the block's own where the format
// has one, else 0; q6_K: a scale per 16 values), so a block's integer sum is scaled once:
//   d_w · d_x · Σ q_w q_x  (+ m_w · s_x, s_x = d_x · Σ q_x)
// Outputs through vkb_outputs.glsl (several products stacked in W).
#extension GL_EXT_spirv_intrinsics : require

layout(local_size_x_id = 0) in;               // (TM / RM) * (TN / RN)
layout(constant_id = 1) const uint TM = 32u;  // rows of W per tile, a multiple of RM
layout(constant_id = 2) const uint TN = 32u;  // columns of X per tile, a multiple of RN
layout(constant_id = 3) const uint TKB = 2u;  // blocks of 32 values of K per step
layout(constant_id = 4) const uint OUTS = 1u; // outputs (1 to 3)
layout(constant_id = 5) const uint RM = 4u;   // rows of out per invocation
layout(constant_id = 6) const uint RN = 4u;   // columns of out per invocation
const bool ACC = false;

layout(std430, binding = 0) readonly buffer Weights { uint wq[]; };
layout(std430, binding = 1) readonly buffer XQ { uint xq[]; };
layout(std430, binding = 1) readonly buffer XQ4 { uvec4 xq4[]; }; // the blocks' bytes
#include "vkb_outputs.glsl"

layout(push_constant) uniform Push {
    uint k;         // values per row, a multiple of 32
    uint row_bytes; // bytes per row of W
    uint row0;      // index of this part's first row among all of W's
    uint rows;      // rows in this part of W
    uint n;         // columns of X
    uint x_stride;  // unused (X's blocks follow one another)
    uint rows_all;  // rows of W in all its parts
    uint split1;    // W's first row written to the second output, the third's
    uint split2;
} pc;

// OpSDot (SPV_KHR_integer_dot_product) on two words of four signed bytes; fmt 0 is
// PackedVectorFormat4x8Bit
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018],
                  id = 4450) int dot4x8(int a, int b, spirv_literal int fmt);

#include "vkb_quant.glsl" // the block layouts, k4_scale_min, wq_u16, wq_f16

#if defined(FORMAT_Q4_1) || defined(FORMAT_Q5_1) || defined(FORMAT_Q4_K) || defined(FORMAT_Q5_K)
#define HAS_MIN // d·q + m with m the block's own (the others fold their offset into q)
#endif
#if defined(FORMAT_Q6_K)
const uint HALVES = 2u; // a scale per 16 values: wd holds both
#else
const uint HALVES = 1u; // wd holds d and m
#endif
#if !defined(FORMAT_Q4_0) && !defined(FORMAT_Q4_1) && !defined(FORMAT_Q5_0) &&                    \
    !defined(FORMAT_Q5_1) && !defined(FORMAT_Q8_0) && !defined(FORMAT_IQ4_NL) &&                   \
    !defined(FORMAT_Q4_K) && !defined(FORMAT_Q5_K) && !defined(FORMAT_Q6_K)
#error "matmul_int_dot reads the quantized formats"
#endif

shared uint ws[TKB * 8u * TM]; // W's words: [block][word][row]
shared vec2 wd[TKB * TM];      // W's d and m (q6_K: d of each half): [block][row]
shared uint xs[TKB * 8u * TN]; // X's words: [block][word][column]
shared vec2 xds[TKB * TN];     // X's d and s: [block][column]

// A word of a block's fields from the two aligned words under it: `hi` itself where the
// fields start on a word (whole), else lo's high half and hi's low half
uint pick(uint lo, uint hi, bool whole)
{
    return whole ? hi : (lo >> 16) | (hi << 16);
}

// The four bytes at an even byte offset: the aligned words under them, combined without a
// divergent branch (one word read twice where `off` is aligned, never past the binding).
uint word_at(uint off)
{
    const uint lo = wq[off >> 2u], hi = wq[(off + 3u) >> 2u];
    return (off & 2u) == 0u ? lo : (lo >> 16) | (hi << 16);
}

// Four bytes below 128 less `o` each, as signed bytes (no borrow crosses a byte).
uint sub_bytes(uint v, uint o)
{
    return ((v | 0x80808080u) - o * 0x01010101u) ^ 0x80808080u;
}

// Bits 0-3 of b moved to bit 4 of bytes 0-3: the fifth bits of four 5-bit values.
uint spread4(uint b)
{
    return ((b & 1u) | ((b & 2u) << 7) | ((b & 4u) << 14) | ((b & 8u) << 21)) << 4;
}

// Block b (32 values) of row r: q[j] holds values 4j..4j+3 as signed bytes, s their d and m
// (q6_K: d·scale of values 0-15 and of 16-31).
void w_block(uint r, uint b, out uint q[8], out vec2 s)
{
#if defined(FORMAT_Q4_K) || defined(FORMAT_Q5_K)
    // sub-block j of a 256-value block (which starts on a word): the low (j even) or high
    // nibbles of 32 bytes of qs, q5_K's fifth bits bit j of qh's bytes; d·sc and -dmin·m
    const uint j = b % 8u, w0 = (r * pc.row_bytes + (b / 8u) * BLOCK_BYTES) >> 2u;
    const vec2 dm = unpackHalf2x16(wq[w0]);
    const uvec2 sm = k4_scale_min(wq[w0 + 1u], wq[w0 + 2u], wq[w0 + 3u], j);
    precise float d1 = dm.x * float(sm.x);
    precise float m1 = dm.y * float(sm.y);
    s = vec2(d1, -m1);
#if defined(FORMAT_Q4_K)
    const uint qs = w0 + block_q4_k_qs / 4u + 8u * (j / 2u);
#else
    const uint qs = w0 + block_q5_k_qs / 4u + 8u * (j / 2u), qh = w0 + block_q5_k_qh / 4u;
#endif
    for (uint i = 0u; i < 8u; i++) {
        q[i] = (wq[qs + i] >> (4u * (j & 1u))) & 0x0f0f0f0fu;
#if defined(FORMAT_Q5_K)
        q[i] |= ((wq[qh + i] >> j) & 0x01010101u) << 4;
#endif
    }
#elif defined(FORMAT_Q6_K)
    // quarter t of half h of a 256-value block (210 bytes: it starts on a word or half
    // one): the low (t < 2) or high nibbles of 32 bytes of ql, bit pair t of qh's bytes,
    // two signed scales; x = d·sc·(v - 32)
    const uint sub = b % 8u, h = sub / 4u, t = sub % 4u;
    const uint o = r * pc.row_bytes + (b / 8u) * BLOCK_BYTES;
    const uint ql = o + block_q6_k_ql + 64u * h + 32u * (t & 1u), qh = o + block_q6_k_qh + 32u * h;
    const uint sc = wq_u16(o + block_q6_k_scales + 8u * h + 2u * t);
    const float d = wq_f16(o + block_q6_k_d);
    precise float d0 = d * float(bitfieldExtract(int(sc), 0, 8));
    precise float d1 = d * float(bitfieldExtract(int(sc), 8, 8));
    s = vec2(d0, d1);
    for (uint i = 0u; i < 8u; i++) {
        const uint lo = (word_at(ql + 4u * i) >> (t >= 2u ? 4u : 0u)) & 0x0f0f0f0fu;
        const uint hi = ((word_at(qh + 4u * i) >> (2u * t)) & 0x03030303u) << 4;
        q[i] = sub_bytes(lo | hi, 32u);
    }
#elif defined(FORMAT_Q4_1) || defined(FORMAT_Q5_1)
    // 20 or 24 bytes, on a word: d and m, (q5_1) qh, the nibbles
    const uint w0 = (r * pc.row_bytes + b * BLOCK_BYTES) >> 2u;
    s = unpackHalf2x16(wq[w0]);
#if defined(FORMAT_Q4_1)
    const uint qs = w0 + block_q4_1_qs / 4u;
#else
    const uint qs = w0 + block_q5_1_qs / 4u, qh = wq[w0 + block_q5_1_qh / 4u];
#endif
    for (uint i = 0u; i < 4u; i++) {
        const uint v = wq[qs + i];
        q[i] = v & 0x0f0f0f0fu;
        q[4u + i] = (v >> 4) & 0x0f0f0f0fu;
#if defined(FORMAT_Q5_1)
        q[i] |= spread4(qh >> (4u * i));
        q[4u + i] |= spread4(qh >> (16u + 4u * i));
#endif
    }
#else
    // q4_0, iq4_nl (18 bytes), q5_0 (22), q8_0 (34): on a word or half a word, read from the
    // aligned word below (the words end within the binding, which ends on a word)
    const uint off = r * pc.row_bytes + b * BLOCK_BYTES, w0 = off >> 2u;
    const bool half_start = (off & 2u) != 0u; // d ends a word: the fields after it start one
    const uint BW = (BLOCK_BYTES + 2u + 3u) / 4u;
    uint w[BW];
    for (uint i = 0u; i < BW; i++)
        w[i] = wq[w0 + i];
    s = vec2(unpackHalf2x16(half_start ? w[0] >> 16 : w[0]).x, 0.0);
#if defined(FORMAT_Q8_0)
    for (uint i = 0u; i < 8u; i++)
        q[i] = pick(w[i], w[i + 1u], half_start);
#else
#if defined(FORMAT_Q5_0)
    const uint qh = pick(w[0], w[1], half_start); // bit i: the fifth bit of value i
    const uint n0 = 1u;                           // the nibbles' first word in w
#else
    const uint n0 = 0u;
#endif
    for (uint i = 0u; i < 4u; i++) {
        const uint v = pick(w[n0 + i], w[n0 + i + 1u], half_start);
        uint lo = v & 0x0f0f0f0fu, hi = (v >> 4) & 0x0f0f0f0fu; // values 4i.. and 16+4i..
#if defined(FORMAT_Q4_0)
        q[i] = sub_bytes(lo, 8u);
        q[4u + i] = sub_bytes(hi, 8u);
#elif defined(FORMAT_Q5_0)
        q[i] = sub_bytes(lo | spread4(qh >> (4u * i)), 16u);
        q[4u + i] = sub_bytes(hi | spread4(qh >> (16u + 4u * i)), 16u);
#else // iq4_nl: each nibble's value from the table
        uint a = 0u, c = 0u;
        for (uint e = 0u; e < 4u; e++) {
            const uint x = (lo >> (8u * e)) & 15u, y = (hi >> (8u * e)) & 15u;
            a |= ((IQ4NL_BYTES[x >> 2] >> (8u * (x & 3u))) & 0xffu) << (8u * e);
            c |= ((IQ4NL_BYTES[y >> 2] >> (8u * (y & 3u))) & 0xffu) << (8u * e);
        }
        q[i] = a;
        q[4u + i] = c;
#endif
    }
#endif
#endif
}

// Block b of row r (both in range) into shared slot (kb, mr).
void load_w_block(uint r, uint b, uint kb, uint mr)
{
    uint q[8];
    vec2 s;
    w_block(r, b, q, s);
    wd[kb * TM + mr] = s;
    for (uint j = 0u; j < 8u; j++)
        ws[(kb * 8u + j) * TM + mr] = q[j];
}

void main()
{
    const uint lid = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x;
    const uint m0 = gl_WorkGroupID.x * TM, n0 = gl_WorkGroupID.y * TN;
    const uint tm = lid % (TM / RM), tn = lid / (TM / RM);
    const uint nb = pc.k / 32u, ds0 = 8u * pc.n * nb; // X's d and s follow all its bytes

    float acc[RM * RN];
    for (uint i = 0u; i < RM * RN; i++)
        acc[i] = 0.0;

    for (uint b0 = 0u; b0 < nb; b0 += TKB) {
        for (uint t = lid; t < TM * TKB; t += wg) {
            const uint mr = t % TM, kb = t / TM;
            if (m0 + mr < pc.rows && b0 + kb < nb) {
                load_w_block(m0 + mr, b0 + kb, kb, mr);
            } else {
                wd[kb * TM + mr] = vec2(0.0);
                for (uint j = 0u; j < 8u; j++)
                    ws[(kb * 8u + j) * TM + mr] = 0u;
            }
        }
        // X's blocks half at a time (16 bytes), neighbouring invocations on neighbouring
        // columns so that their shared stores fall in different banks
        for (uint t = lid; t < TN * TKB * 2u; t += wg) {
            const uint nc = t % TN, h = (t / TN) % 2u, kb = t / (2u * TN);
            const bool live = n0 + nc < pc.n && b0 + kb < nb;
            const uvec4 v = live ? xq4[2u * ((n0 + nc) * nb + b0 + kb) + h] : uvec4(0u);
            for (uint e = 0u; e < 4u; e++)
                xs[(kb * 8u + 4u * h + e) * TN + nc] = v[e];
        }
        for (uint t = lid; t < TN * TKB; t += wg) {
            const uint nc = t % TN, kb = t / TN;
            const uint g = (n0 + nc) * nb + b0 + kb;
            const bool live = n0 + nc < pc.n && b0 + kb < nb;
            xds[kb * TN + nc] = live ? uintBitsToFloat(uvec2(xq[ds0 + 2u * g], xq[ds0 + 2u * g + 1u]))
                                     : vec2(0.0);
        }
        barrier();
        for (uint kb = 0u; kb < TKB; kb++) {
            for (uint h = 0u; h < HALVES; h++) { // q6_K: values 0-15, then 16-31
                int isum[RM * RN];
                for (uint i = 0u; i < RM * RN; i++)
                    isum[i] = 0;
                for (uint j = h * (8u / HALVES); j < (h + 1u) * (8u / HALVES); j++) {
                    int a[RM], x[RN];
                    for (uint i = 0u; i < RM; i++)
                        a[i] = int(ws[(kb * 8u + j) * TM + tm + i * (TM / RM)]);
                    for (uint c = 0u; c < RN; c++)
                        x[c] = int(xs[(kb * 8u + j) * TN + tn + c * (TN / RN)]);
                    for (uint i = 0u; i < RM; i++)
                        for (uint c = 0u; c < RN; c++)
                            isum[i * RN + c] += dot4x8(a[i], x[c], 0);
                }
                for (uint i = 0u; i < RM; i++) {
                    const vec2 dm = wd[kb * TM + tm + i * (TM / RM)];
                    const float d = h == 0u ? dm.x : dm.y;
                    for (uint c = 0u; c < RN; c++) {
                        const vec2 xd = xds[kb * TN + tn + c * (TN / RN)];
                        float t = d * (xd.x * float(isum[i * RN + c]));
#if defined(HAS_MIN)
                        t += dm.y * xd.y;
#endif
                        acc[i * RN + c] += t;
                    }
                }
            }
        }
        barrier();
    }

    for (uint i = 0u; i < RM; i++) {
        const uint m = m0 + tm + i * (TM / RM);
        for (uint c = 0u; c < RN; c++) {
            const uint col = n0 + tn + c * (TN / RN);
            if (m < pc.rows && col < pc.n)
                store_output(col, pc.row0 + m, acc[i * RN + c], pc.rows_all, pc.split1,
                             pc.split2);
        }
    }
}
