#version 450
// The attention block's prologue over an f16 KV cache in one dispatch: q rotated in place
// (rope.comp), k rotated and v as they are into the caches as f16 at positions
// row0 .. row0 + tokens (row0 AT_POS: token t's row is its position pos[t]) (store_f16),
// with the same bits as those three ops apart. The
// grid runs over q's pairs, then the words (two f16 values) of k's rows, then v's.
//
// NORM (qwen3): each head of q and of k first goes through its RMS norm, x * w /
// sqrt(mean(x^2) + eps) with the head_dim weights q_norm or k_norm (rms_norm.comp over
// rows of head_dim, within f32 rounding: the sum of squares is added in another order).
// An invocation owns two values of a head (q: the pair it rotates, or dimensions 2i and
// 2i+1 past rot_dims; k: the word it writes) and the head's half_dim invocations add
// their squares through shared memory: the workgroup is a multiple of half_dim, so it
// holds whole heads.
#include "vkb_index.glsl"
#include "vkb_rope.glsl"

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer K { float k[]; };
layout(std430, binding = 2) readonly buffer V { float v[]; };
layout(std430, binding = 3) readonly buffer Pos { int pos[]; };
layout(std430, binding = 4) readonly buffer Freq { float freq[]; };
layout(std430, binding = 5) writeonly buffer KCache { uint k_cache[]; };
layout(std430, binding = 6) writeonly buffer VCache { uint v_cache[]; };
#ifdef NORM
layout(std430, binding = 7) readonly buffer QNorm { float q_norm[]; };
layout(std430, binding = 8) readonly buffer KNorm { float k_norm[]; };
shared float squares[gl_WorkGroupSize.x];
#endif

layout(push_constant) uniform Push {
    uint head_dim; // even
    uint rot_dims; // even, <= head_dim
    uint q_heads;
    uint kv_heads;
    uint tokens;
    uint neox; // 0: pairs (2i, 2i+1); 1: pairs (i, i + rot_dims/2)
    uint row0; // the cache position of the first token, or AT_POS
#ifdef NORM
    float eps;
#endif
} pc;

float head_scale = 1.0; // NORM: 1 / sqrt(mean(x^2) + eps) of the invocation's head

// Dimension d of k's head row at `base` (normalized with NORM).
float k_at(uint base, uint d)
{
#ifdef NORM
    return k[base + d] * head_scale * k_norm[d];
#else
    return k[base + d];
#endif
}

// Dimension d of k's head row at `base`, rotated for position p.
float roped_k(uint base, uint d, int p)
{
    if (d >= pc.rot_dims)
        return k_at(base, d);
    const uint half_rot = pc.rot_dims / 2u;
    const bool neox = pc.neox != 0u;
    const uint i = neox ? (d < half_rot ? d : d - half_rot) : d / 2u;
    const uvec2 pair = rope_pair(i, pc.rot_dims, neox);
    const vec2 r = rope_rotate(k_at(base, pair.x), k_at(base, pair.y), p, freq[i]);
    return d == pair.x ? r.x : r.y;
}

// The dimensions of a q head that invocation i < head_dim / 2 rotates (or, past
// rot_dims, copies).
uvec2 q_dims(uint i)
{
    return 2u * i < pc.rot_dims ? rope_pair(i, pc.rot_dims, pc.neox != 0u)
                                : uvec2(2u * i, 2u * i + 1u);
}

// The cache word of word g of k's (or v's) rows, g in token t's row.
uint cache_word(uint t, uint g)
{
    const uint row = pc.row0 == AT_POS ? uint(pos[t]) : pc.row0 + t;
    return (row - t) * (pc.head_dim / 2u) * pc.kv_heads + g;
}

void main()
{
    const uint half_dim = pc.head_dim / 2u; // pairs of a head, and words of its f16 row
    uint g = flat_group_id() * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    const uint q_pairs = half_dim * pc.q_heads * pc.tokens;
    const uint kv_words = half_dim * pc.kv_heads * pc.tokens;
#ifdef NORM
    // the head's sum of squares, before any invocation writes (q is rotated in place)
    float sq = 0.0;
    if (g < q_pairs) {
        const uvec2 d = q_dims(g % half_dim) + (g / half_dim) * pc.head_dim;
        sq = q[d.x] * q[d.x] + q[d.y] * q[d.y];
    } else if (g - q_pairs < kv_words) {
        const uint w = g - q_pairs;
        sq = k[2u * w] * k[2u * w] + k[2u * w + 1u] * k[2u * w + 1u];
    }
    const uint lid = gl_LocalInvocationID.x, first = lid - lid % half_dim;
    squares[lid] = sq;
    barrier();
    float sum = 0.0;
    for (uint j = 0u; j < half_dim; j++)
        sum += squares[first + j];
    head_scale = 1.0 / sqrt(sum / float(pc.head_dim) + pc.eps);
#endif
    if (g < q_pairs) {
        const uint i = g % half_dim, th = g / half_dim, t = th / pc.q_heads;
        const uint base = th * pc.head_dim;
#ifdef NORM
        const uvec2 d = q_dims(i);
        vec2 x = vec2(q[base + d.x] * head_scale * q_norm[d.x],
                      q[base + d.y] * head_scale * q_norm[d.y]);
        if (2u * i < pc.rot_dims)
            x = rope_rotate(x.x, x.y, pos[t], freq[i]);
        q[base + d.x] = x.x;
        q[base + d.y] = x.y;
#else
        if (2u * i < pc.rot_dims) {
            const uvec2 d = rope_pair(i, pc.rot_dims, pc.neox != 0u);
            const vec2 r = rope_rotate(q[base + d.x], q[base + d.y], pos[t], freq[i]);
            q[base + d.x] = r.x;
            q[base + d.y] = r.y;
        }
#endif
        return;
    }
    g -= q_pairs;
    if (g < kv_words) {
        const uint j = g % half_dim, th = g / half_dim, t = th / pc.kv_heads;
        const uint base = th * pc.head_dim;
        const vec2 r = vec2(roped_k(base, 2u * j, pos[t]), roped_k(base, 2u * j + 1u, pos[t]));
        k_cache[cache_word(t, g)] = packHalf2x16(r);
        return;
    }
    g -= kv_words;
    if (g < kv_words) {
        const uint t = g / (half_dim * pc.kv_heads);
        v_cache[cache_word(t, g)] = packHalf2x16(vec2(v[2u * g], v[2u * g + 1u]));
    }
}
