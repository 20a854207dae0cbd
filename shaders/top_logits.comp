#version 450
#extension GL_KHR_memory_scope_semantics : require
// The best m logits of a row, so that a sampler whose choice depends on no others (top-k,
// with or without a repetition penalty: eng_sampler_best_needed) reads m (id, logit)
// pairs instead of the whole vocabulary.
//
//   best = the m largest valid values by (value descending, index ascending), the host
//          sampler's total order (eng_sampler.c by_logit); NaN and -inf are not valid,
//          -0 equals +0. Fewer than m when fewer are valid.
//   out  = best as (id, value bits) pairs in ascending id order, then (0xffffffff, NaN)
//          to m entries.
//
// Each workgroup selects from a slice of slice entries and writes its m at its own
// m-entry place, so that a first dispatch over the logits (pairs = 0: x[i] with id i) in
// several slices and a second over the first's output (pairs = 1: one slice of
// (id, bits) pairs, ascending in id where valid) give the row's best.
//
// Selection is a radix select on a 32-bit key that orders as the values do (the sign bit
// flips a positive value's key above every negative one and reverses the negatives):
// four passes of eight bits count the slice's keys under the prefix chosen so far into
// 256 bins, and the bins from the top hold the m-th largest. It stops early where the
// bins above and the chosen bin hold exactly the entries still wanted (or the slice holds
// no more than m valid entries). Then one pass writes, in index order, the entries above
// the threshold and the first of those equal to it: each invocation counts a run of them,
// and an exclusive prefix sum of the counts over the workgroup gives each run its place. The bins' atomics name the workgroup scope: glslang's
// default, the device scope, is invalid where the memory model lacks it.
layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer X { uint x[]; };         // pairs = 0: value bits
layout(std430, binding = 1) readonly buffer In { uvec2 cand_in[]; }; // pairs = 1: (id, bits)
layout(std430, binding = 2) writeonly buffer Out { uvec2 cand_out[]; };

layout(push_constant) uniform Push {
    uint n;     // entries in the input
    uint slice; // entries per workgroup
    uint m;     // entries each workgroup writes
    uint pairs; // 0: x, 1: cand_in
} pc;

#define NONE     0xffffffffu
#define NAN_BITS 0x7fc00000u
#define BINS     256u
#define RUN      16u // entries per invocation in the writing pass: wg × RUN < 2^16

shared uint hist[BINS];
shared uint scan[gl_WorkGroupSize.x];
shared uint s_threshold, s_ties, s_done, s_written, s_ties_seen;

struct entry {
    bool valid;
    uint key, id, bits;
};

entry load(uint i)
{
    entry e;
    if (pc.pairs != 0u) {
        const uvec2 p = cand_in[i];
        e.id = p.x;
        e.bits = p.y;
    } else {
        e.id = i;
        e.bits = x[i];
    }
    // bit tests, not float compares: a driver that flushes subnormals keeps them here
    const uint mag = e.bits & 0x7fffffffu;
    e.valid = mag <= 0x7f800000u && e.bits != 0xff800000u;
    const uint b = mag == 0u ? 0u : e.bits;
    e.key = (b & 0x80000000u) != 0u ? ~b : b | 0x80000000u;
    return e;
}

void main()
{
    const uint lid = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x;
    const uint base = gl_WorkGroupID.x * pc.slice, end = min(base + pc.slice, pc.n);
    const uint out0 = gl_WorkGroupID.x * pc.m;

    // taken: key > threshold, and the first `ties` entries with key == threshold
    uint prefix = 0u, mask = 0u, want = pc.m;
    uint threshold = 0u, ties = 0u;
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (uint b = lid; b < BINS; b += wg)
            hist[b] = 0u;
        barrier();
        for (uint i = base + lid; i < end; i += wg) {
            const entry e = load(i);
            if (e.valid && (e.key & mask) == prefix)
                atomicAdd(hist[(e.key >> shift) & 0xffu], 1u, gl_ScopeWorkgroup, 0, 0);
        }
        barrier();
        if (lid == 0u) {
            uint total = 0u;
            for (uint b = 0u; b < BINS; b++)
                total += hist[b];
            uint b = BINS - 1u, w = want;
            while (w > hist[b] && b > 0u) {
                w -= hist[b];
                b--;
            }
            const uint p = prefix | (b << uint(shift));
            if (shift == 24 && total <= want) { // every valid entry is taken
                s_done = 1u;
                s_threshold = 0u; // below every valid key (the least is 0x00800000)
                s_ties = 0u;
            } else if (w == hist[b]) { // bin b is taken whole: key >= p
                s_done = 1u;
                // p > 0: where the first pass's bin 0 held all that is wanted, the
                // total did; under a prefix of 0 valid keys are 0x008xxxxx and above
                s_threshold = p - 1u;
                s_ties = 0u;
            } else {
                s_done = shift == 0 ? 1u : 0u;
                s_threshold = p;
                s_ties = w;
            }
        }
        barrier();
        threshold = s_threshold;
        ties = s_ties;
        if (s_done != 0u)
            break;
        prefix = threshold;
        want = ties;
        mask |= 0xffu << uint(shift);
        barrier(); // s_done is read by all before the next pass's lane 0 writes it
    }

    if (lid == 0u) {
        s_written = 0u;
        s_ties_seen = 0u;
    }
    barrier();
    // each invocation a run of RUN entries: counted, a prefix sum of the counts over the
    // workgroup (one per wg × RUN entries: barriers are dear on CPU drivers), then the
    // run again, writing what it takes
    for (uint c0 = base; c0 < end; c0 += wg * RUN) {
        const uint lo = min(c0 + lid * RUN, end), hi = min(lo + RUN, end);
        uint n_above = 0u, n_ties = 0u;
        for (uint i = lo; i < hi; i++) {
            const entry e = load(i);
            n_above += e.valid && e.key > threshold ? 1u : 0u;
            n_ties += e.valid && ties > 0u && e.key == threshold ? 1u : 0u;
        }
        // the entries above in the high half, the ties in the low (each under 2^16)
        const uint count = n_above << 16 | n_ties;
        scan[lid] = count;
        barrier();
        for (uint d = 1u; d < wg; d <<= 1) {
            const uint add = lid >= d ? scan[lid - d] : 0u;
            barrier();
            scan[lid] += add;
            barrier();
        }
        const uint before = scan[lid] - count, total = scan[wg - 1u];
        const uint written = s_written, seen = s_ties_seen;
        const uint left = ties > seen ? ties - seen : 0u; // ties still to take
        // the place of an entry: written + the entries above before it + the ties taken
        // before it (the first `left` ties are taken)
        uint a = before >> 16, t = before & 0xffffu;
        for (uint i = lo; i < hi && (n_above | n_ties) != 0u; i++) {
            const entry e = load(i);
            if (!e.valid)
                continue;
            if (e.key > threshold) {
                cand_out[out0 + written + a + min(t, left)] = uvec2(e.id, e.bits);
                a++;
            } else if (ties > 0u && e.key == threshold) {
                if (t < left)
                    cand_out[out0 + written + a + t] = uvec2(e.id, e.bits);
                t++;
            }
        }
        barrier(); // every lane has read s_written and scan
        if (lid == 0u) {
            s_written = written + (total >> 16) + min(total & 0xffffu, left);
            s_ties_seen = seen + (total & 0xffffu);
        }
        barrier();
    }
    for (uint j = s_written + lid; j < pc.m; j += wg)
        cand_out[out0 + j] = uvec2(NONE, NAN_BITS);
}
