#version 450
// out[n][row0 + m] = sum_k W[m][k] * X[n][k] in integers: the prefill product for q4_0 and
// q8_0 weights with X quantized to 8-bit blocks (vkb_q8.glsl; quantize_q8.comp or a fused
// op made them). A workgroup computes a TM x TN tile of out, K going by TKB blocks of 32
// at a time: each block of W is unpacked once into eight words of four signed bytes and
// its scale, X's words and scales copied as they are, all into shared memory; each
// invocation then owns a 4 x 4 block of outputs (strided by TM/4 and TN/4, so neighbours
// read neighbouring shared words) and dots four values of W with four of X per
// instruction (OpSDot), one shared load of W and of X feeding four such dots each. A
// block's integer sum is scaled once:
//   q8_0: d_w · d_x · Σ q_w q_x
//   q4_0: d_w · (d_x · Σ q_w q_x - 8 · s_x), q_w the unsigned nibbles, s_x = d_x · Σ q_x
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

#if defined(FORMAT_Q4_0)
const uint BLOCK_BYTES = 18u, BLOCK_WORDS = 5u; // words from the aligned one below a block
const float OFFSET = 8.0;
#elif defined(FORMAT_Q8_0)
const uint BLOCK_BYTES = 34u, BLOCK_WORDS = 9u;
const float OFFSET = 0.0;
#else
#error "matmul_int_dot reads q4_0 and q8_0"
#endif

shared uint ws[TKB * 8u * TM]; // W's words: [block][word][row]
shared float wd[TKB * TM];     // W's scales: [block][row]
shared uint xs[TKB * 8u * TN]; // X's words: [block][word][column]
shared vec2 xds[TKB * TN];     // X's d and s: [block][column]

uint pick(uint lo, uint hi, bool whole)
{
    return whole ? hi : (lo >> 16) | (hi << 16);
}

// Block b of row r (both in range) into shared slot (kb, mr).
void load_w_block(uint r, uint b, uint kb, uint mr)
{
    const uint off = r * pc.row_bytes + b * BLOCK_BYTES; // even
    const uint w0 = off >> 2u;
    const bool half_start = (off & 2u) != 0u; // the quants start at the next word
    uint w[BLOCK_WORDS];
    for (uint i = 0u; i < BLOCK_WORDS; i++)
        w[i] = wq[w0 + i];
    wd[kb * TM + mr] = unpackHalf2x16(half_start ? w[0] >> 16 : w[0]).x;
#if defined(FORMAT_Q4_0)
    for (uint j = 0u; j < 4u; j++) {
        const uint q = pick(w[j], w[j + 1u], half_start); // values 4j.. low, 16+4j.. high
        ws[(kb * 8u + j) * TM + mr] = q & 0x0f0f0f0fu;
        ws[(kb * 8u + 4u + j) * TM + mr] = (q >> 4) & 0x0f0f0f0fu;
    }
#else
    for (uint j = 0u; j < 8u; j++)
        ws[(kb * 8u + j) * TM + mr] = pick(w[j], w[j + 1u], half_start);
#endif
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
                wd[kb * TM + mr] = 0.0;
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
            int isum[RM * RN];
            for (uint i = 0u; i < RM * RN; i++)
                isum[i] = 0;
            for (uint j = 0u; j < 8u; j++) {
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
                const float d = wd[kb * TM + tm + i * (TM / RM)];
                for (uint c = 0u; c < RN; c++) {
                    const vec2 xd = xds[kb * TN + tn + c * (TN / RN)];
                    acc[i * RN + c] += d * (xd.x * float(isum[i * RN + c]) - OFFSET * xd.y);
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
