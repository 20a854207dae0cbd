#version 450
// Greedy decoding's pick, made where the logits are and fed to the next step:
//
//   t = the index of the largest of x[0..n): ties to the lowest index, NaN and -inf never
//       chosen (the host sampler's greedy choice, eng_sampler.c)
//   p = pos[0];  ids[0] = t;  pos[0] = p + 1;  picked[(p + 1) % picked_len] = t
//   best[0] = (t, x[t]) where write_best is set (the best 1 logit: what top_logits.comp
//             writes for m = 1, so that a step that picks needs no second selection)
//
// so a decode step recorded once and submitted again runs at the next position on the
// token it picked, without the host between; the host reads only the picks. Where every
// value is NaN or -inf the pick is -1 (ids[0] gets 0, a valid row, so that a step already
// queued after this one reads inside the embeddings; best[0] gets (-1, NaN).
//
// One workgroup. Each invocation keeps the best of the values it visits, four loads in
// flight at a time (a GPU waits on memory once per four); a shared-memory tree joins them
// (any workgroup size), comparing the index where the values are equal.
layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) buffer Pos { int pos[]; };
layout(std430, binding = 2) writeonly buffer Ids { uint ids[]; };
layout(std430, binding = 3) writeonly buffer Picked { int picked[]; };
layout(std430, binding = 4) writeonly buffer Best { uvec2 best[]; }; // (id, value bits)

layout(push_constant) uniform Push {
    uint n;          // values in x
    uint picked_len; // entries of picked: a ring
    uint write_best; // 0: best is not written (bound to another buffer)
} pc;

#define NONE 0xffffffffu
#define LOADS 4u

shared float best_v[gl_WorkGroupSize.x];
shared uint best_i[gl_WorkGroupSize.x];

// (v, i) before (w, j): larger, or as large at a lower index; (-inf, NONE) is before nothing
bool before(float v, uint i, float w, uint j)
{
    return v > w || (v == w && i < j);
}

void main()
{
    const uint lid = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x;
    const float neg_inf = uintBitsToFloat(0xff800000u);
    float bv = neg_inf;
    uint bi = NONE;
    for (uint i0 = lid; i0 < pc.n; i0 += LOADS * wg) {
        float v[LOADS];
        for (uint u = 0u; u < LOADS; u++) {
            const uint i = i0 + u * wg;
            v[u] = i < pc.n ? x[i] : neg_inf;
        }
        // this invocation's indices rise, so > keeps the first of equal values; NaN and
        // -inf never compare greater
        for (uint u = 0u; u < LOADS; u++)
            if (v[u] > bv) {
                bv = v[u];
                bi = i0 + u * wg;
            }
    }
    best_v[lid] = bv;
    best_i[lid] = bi;
    barrier();
    uint half_size = 1u;
    while (half_size * 2u < wg)
        half_size *= 2u;
    for (uint s = half_size; s > 0u; s >>= 1) {
        if (lid < s && lid + s < wg &&
            before(best_v[lid + s], best_i[lid + s], best_v[lid], best_i[lid])) {
            best_v[lid] = best_v[lid + s];
            best_i[lid] = best_i[lid + s];
        }
        barrier();
    }
    if (lid == 0u) {
        const uint t = best_i[0];
        const int p = pos[0];
        ids[0] = t == NONE ? 0u : t;
        pos[0] = p + 1;
        picked[uint(p + 1) % pc.picked_len] = t == NONE ? -1 : int(t);
        if (pc.write_best != 0u)
            best[0] = t == NONE ? uvec2(NONE, 0x7fc00000u) : uvec2(t, floatBitsToUint(best_v[0]));
    }
}
