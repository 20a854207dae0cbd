// Activations as 8-bit blocks for the integer-dot-product matvec (matvec.comp INT_DOT),
// made by quantize_q8.comp and by the kernels that fuse it (rms_norm.comp Q8, the
// silu·mul variant of quantize_q8.comp). Each block of 32 values of a column becomes a
// scale d = max|x| / 127 rounded to f16 (as ggml's q8_0 activations) and 32 signed bytes
// q = x / d rounded to nearest, ties to even, clamped to ±127; with them s = d * sum(q)
// (weight formats with an offset, q4_0's -8, subtract it through s).
//
// Layout of B blocks (columns one after the other, k / 32 blocks each), chosen so that
// neighbouring invocations of the matvec read neighbouring words:
//   words [0, 8B)   the bytes, four to a word, lowest first: word i holds values 4i..4i+3
//   words [8B, 10B) per block, d then s as f32
//
// Every step is exact or correctly rounded, so vkb_ref_quantize_q8 gives the same bytes on
// any driver: max|x| · (1/127) is one correctly rounded product, the f16 rounding is done
// to nearest even by hand, and q is chosen by comparing x with the midpoints (q ± ½)·d,
// products of at most 8 and 11 significant bits, exact in f32. (x · 1/d only proposes q:
// a division or reciprocal may be off by ulps on a GPU.)
//
// The includer declares `uint xq[]` (writable) and includes this after its
// `layout(local_size_x_id = 0) in;` with a workgroup size that is a multiple of 8.
#ifndef VKB_Q8_GLSL
#define VKB_Q8_GLSL

#include "vkb_kv.glsl" // kv_half_rne

shared float q8_part_max[gl_WorkGroupSize.x];
shared int q8_part_sum[gl_WorkGroupSize.x];

int q8_nearest(float x, float d, float id)
{
    float q = roundEven(x * id);
    precise float hi = (q + 0.5) * d, lo = (q - 0.5) * d;
    if (x > hi || (x == hi && mod(q, 2.0) != 0.0))
        q += 1.0;
    else if (x < lo || (x == lo && mod(q, 2.0) != 0.0))
        q -= 1.0;
    return clamp(int(q), -127, 127);
}

// Quantizes the four values v, quad `quad` of the B = `blocks` blocks (values 4·quad to
// 4·quad + 3). Eight neighbouring invocations make a block: quad % 8 must equal the
// local invocation index % 8. Call in uniform control flow (it has barriers); `live`
// false takes part in the barriers only.
void q8_store(vec4 v, uint quad, uint blocks, bool live)
{
    const uint lid = gl_LocalInvocationID.x, part = lid % 8u, first = lid - part;
    if (!live)
        v = vec4(0.0);
    const vec4 a = abs(v);
    barrier(); // a previous call has read the shared arrays
    q8_part_max[lid] = max(max(a.x, a.y), max(a.z, a.w));
    barrier();
    float amax = 0.0;
    for (uint j = 0u; j < 8u; j++)
        amax = max(amax, q8_part_max[first + j]);
    precise float d32 = amax * (1.0 / 127.0);
    const float d = unpackHalf2x16(kv_half_rne(d32)).x;
    const float id = d > 0.0 ? 1.0 / d : 0.0;
    const ivec4 q = d > 0.0 ? ivec4(q8_nearest(v.x, d, id), q8_nearest(v.y, d, id),
                                    q8_nearest(v.z, d, id), q8_nearest(v.w, d, id))
                            : ivec4(0);
    if (live)
        xq[quad] = uint(q.x & 255) | uint(q.y & 255) << 8 | uint(q.z & 255) << 16 |
                   uint(q.w & 255) << 24;
    q8_part_sum[lid] = q.x + q.y + q.z + q.w;
    barrier();
    if (live && part == 0u) {
        int sum = 0;
        for (uint j = 0u; j < 8u; j++)
            sum += q8_part_sum[first + j];
        const uint at = 8u * blocks + 2u * (quad / 8u);
        xq[at] = floatBitsToUint(d);
        xq[at + 1u] = floatBitsToUint(d * float(sum));
    }
}

#endif
