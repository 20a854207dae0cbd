#version 450
// Sampling's pick, made where the best logits are and fed to the next step: the host
// sampler's chain (eng_sampler.c, llama.cpp's default order) over the m best logits
// that top_logits.comp wrote, with the draw the host computed ahead for this position:
//
//   penalty   logits of tokens in the history ring: l > 0 ? l / penalty : l * penalty
//   t = 0     the largest (ties to the lowest id): greedy with a penalty
//   else      top-k of the survivors, sorted best first; probabilities exp(l - max);
//             top-p (the shortest prefix whose share reaches top_p) and min-p (those
//             at min_p of the best or more); weights exp((l - max) / t) and the draw
//             r = u · their sum, taking the first entry whose running sum passes r
//
// then, as argmax.comp, with p = pos[0]: ids[0] = the pick, pos[0] = p + 1,
// picked[(p + 1) % picked_len] = the pick (-1 where no logit is valid; ids[0] gets 0),
// and the pick joins the history ring (what eng_sampler_accept does on the host). The
// draw is draws[(p + 1) % picked_len], so steps queued ahead each read their own.
//
// The host computes in double, this kernel in float with the GPU's exp: the pick equals
// the host's except where the draw, the top-p sum, a min-p ratio or two penalized
// logits fall within rounding of each other (vkb_ref_sample measures that margin).
//
// One workgroup. Candidates are ranked by counting those before each (a total order:
// logit, id, then slot), so the sort needs no passes; the sums over the survivors are
// short (top-k of them) and run in one invocation, in the host's order.
layout(local_size_x_id = 0) in;

#define MAX_CAND 512u // vkb_ops.h: VKB_SAMPLE_MAX
#define NONE     0xffffffffu

layout(std430, binding = 0) readonly buffer Best { uvec2 best[]; };   // (id, value bits)
layout(std430, binding = 1) readonly buffer Draws { float draws[]; }; // a ring, as picked
layout(std430, binding = 2) buffer Hist { int hist[]; };              // len, at, tokens[cap]
layout(std430, binding = 3) buffer Pos { int pos[]; };
layout(std430, binding = 4) writeonly buffer Ids { uint ids[]; };
layout(std430, binding = 5) writeonly buffer Picked { int picked[]; };

layout(push_constant) uniform Push {
    uint m;          // entries of best
    uint picked_len; // entries of picked and draws: rings
    uint hist_cap;   // the history ring's size (0: no history)
    uint top_k;      // 0 = off
    float temperature;
    float top_p;
    float min_p;
    float penalty;
} pc;

// the candidates as loaded (penalized), then reused for the probabilities by rank
shared float cand_l[MAX_CAND];
shared uint cand_id[MAX_CAND];
// by rank: the logit and the id
shared float sort_l[MAX_CAND];
shared uint sort_id[MAX_CAND];
shared uint n_valid;

bool valid_logit(float v)
{
    return !isnan(v) && !(isinf(v) && v < 0.0);
}

void main()
{
    const uint lid = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x;
    const uint m = min(pc.m, MAX_CAND);
    const float neg_inf = uintBitsToFloat(0xff800000u);
    const uint h_len = pc.hist_cap == 0u ? 0u : min(uint(hist[0]), pc.hist_cap);
    for (uint i = lid; i < m; i += wg) {
        const uint id = best[i].x;
        float v = uintBitsToFloat(best[i].y);
        const bool ok = id < 0x80000000u && valid_logit(v);
        if (ok && pc.penalty != 1.0 && h_len > 0u) {
            bool seen = false;
            for (uint h = 0u; h < h_len && !seen; h++)
                seen = uint(hist[2u + h]) == id;
            if (seen)
                v = v > 0.0 ? v / pc.penalty : v * pc.penalty;
        }
        cand_l[i] = ok ? v : neg_inf;
        cand_id[i] = ok ? id : NONE;
    }
    barrier();

    // rank = the valid candidates before this one; the count of them, in one invocation
    // (no shared atomics: their device scope needs a feature some drivers lack)
    if (lid == 0u) {
        uint count = 0u;
        for (uint j = 0u; j < m; j++)
            count += cand_id[j] != NONE ? 1u : 0u;
        n_valid = count;
    }
    for (uint i = lid; i < m; i += wg) {
        const uint id = cand_id[i];
        if (id == NONE)
            continue;
        const float v = cand_l[i];
        uint rank = 0u;
        for (uint j = 0u; j < m; j++) {
            const uint jd = cand_id[j];
            const float w = cand_l[j];
            if (jd != NONE && (w > v || (w == v && (jd < id || (jd == id && j < i)))))
                rank++;
        }
        sort_l[rank] = v;
        sort_id[rank] = id;
    }
    barrier();

    uint n = n_valid;
    const bool greedy = pc.temperature <= 0.0;
    if (!greedy && pc.top_k > 0u && pc.top_k < n)
        n = pc.top_k;
    const float top = n > 0u ? sort_l[0] : 0.0;
    // probabilities at temperature 1 (for top-p and min-p) and the draw's weights, by
    // rank, into the load arrays (no longer read)
    if (!greedy)
        for (uint r = lid; r < n; r += wg) {
            const float d = sort_l[r] - top;
            cand_l[r] = exp(d);
            cand_id[r] = floatBitsToUint(exp(d / pc.temperature));
        }
    barrier();

    if (lid != 0u)
        return;
    uint pick = n > 0u ? sort_id[0] : NONE;
    if (!greedy && n > 0u) {
        if (pc.top_p < 1.0) {
            float sum = 0.0, cum = 0.0;
            for (uint r = 0u; r < n; r++)
                sum += cand_l[r];
            for (uint r = 0u; r < n; r++) {
                cum += cand_l[r] / sum;
                if (cum >= pc.top_p) {
                    n = r + 1u;
                    break;
                }
            }
        }
        if (pc.min_p > 0.0) {
            uint keep = 1u; // cand_l[0] is exp(0) = 1, the largest
            while (keep < n && cand_l[keep] >= pc.min_p)
                keep++;
            n = keep;
        }
        float sum = 0.0;
        for (uint r = 0u; r < n; r++)
            sum += uintBitsToFloat(cand_id[r]);
        const int p = pos[0];
        const float target = draws[uint(p + 1) % pc.picked_len] * sum;
        float acc = 0.0;
        pick = sort_id[n - 1u];
        for (uint r = 0u; r < n; r++) {
            acc += uintBitsToFloat(cand_id[r]);
            if (target < acc) {
                pick = sort_id[r];
                break;
            }
        }
    }

    const int p = pos[0];
    ids[0] = pick == NONE ? 0u : pick;
    pos[0] = p + 1;
    picked[uint(p + 1) % pc.picked_len] = pick == NONE ? -1 : int(pick);
    if (pick != NONE && pc.hist_cap > 0u) {
        const uint at = uint(hist[1]) % pc.hist_cap;
        hist[2u + at] = int(pick);
        hist[1] = int((at + 1u) % pc.hist_cap);
        hist[0] = int(min(h_len + 1u, pc.hist_cap));
    }
}
