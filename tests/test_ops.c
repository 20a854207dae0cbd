/* The transformer's small ops (rms_norm, softmax, rope, silu·mul and gelu·mul, scale, soft
 * caps, f32↔f16) against the references in vkb_ref.h, on awkward shapes, within budgets derived
 * from the precision the Vulkan specification promises (Precision and Operation of SPIR-V
 * Instructions): a, b, a·b correctly rounded; 1/x and x/y 2.5 ULP; inversesqrt 2 ULP
 * (sqrt inherits it through 1/inversesqrt); exp(x) 3 + 2·|x| ULP; sin and cos an
 * absolute 2^-11 inside [-π, π]. U below is one ULP of 1, 2^-23. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmp_half.h"
#include "harness.h"
#include "ops_common.h"
#include "vkb_ref.h"

static const uint32_t row_sizes[] = {1, 7, 33, 4097, 32000};
static const uint32_t row_counts[] = {1, 3, 17};

static void test_rms_norm(void)
{
    struct fixture f;
    if (!setup(&f))
        return;
    fprintf(stderr, "  variant: %s\n", vkb_op_row_variant(t_dev));
    for (size_t a = 0; a < 5; a++)
        for (size_t b = 0; b < 3; b++) {
            uint32_t n = row_sizes[a], rows = row_counts[b];
            size_t total = (size_t)n * rows;
            float *x = t_random_floats(total, a * 7 + b, -3.f, 3.f),
                  *w = t_random_floats(n, 99, .5f, 2.f);
            float *got = malloc(total * 4), *want = malloc(total * 4);
            begin(&f);
            vkb_buffer *bx = upload(&f, x, total * 4), *bw = upload(&f, w, n * 4),
                       *bo = upload(&f, NULL, total * 4);
            if (!x || !w || !got || !want || !bx || !bw || !bo) {
                t_fail_at(__FILE__, __LINE__, "setup failed");
            } else {
                CHECK_OK(vkb_op_rms_norm(f.stream, bo, bx, bw, n, rows, 1e-5f));
                finish(&f, bo, got, total * 4);
                vkb_ref_rms_norm(want, x, w, n, rows, 1e-5f);
                /* the sum of squares: at most n sequential roundings (U/2 each); its
                 * error halves through sqrt; then /n, +eps, sqrt (2.5 + 2 ULP), 1/x (2.5),
                 * two products: 10 ULP. Doubled. */
                char what[64];
                snprintf(what, sizeof what, "rms_norm n=%u rows=%u", n, rows);
                compare(what, got, want, total, 2.0 * (n / 4.0 + 10.0) * U, 0.0);
                /* rms_norm_add, in place over a residual: the norm's bits, then the add's */
                float *res = t_random_floats(total, a * 7 + b + 500, -3.f, 3.f);
                float *added = malloc(total * 4);
                vkb_buffer *br = upload(&f, res, total * 4), *bs = upload(&f, NULL, total * 4);
                if (res && added && br && bs) {
                    CHECK_OK(vkb_stream_begin(f.stream));
                    CHECK_OK(vkb_op_add(f.stream, bs, br, bo, total));
                    CHECK_OK(vkb_op_rms_norm_add(f.stream, br, br, bx, bw, n, rows, 1e-5f));
                    finish(&f, bs, want, total * 4);
                    CHECK_OK(vkb_buffer_download(t_dev, br, 0, added, total * 4));
                    CHECK_MSG(memcmp(added, want, total * 4) == 0,
                              "rms_norm_add n=%u rows=%u: not rms_norm then add, bit for bit", n,
                              rows);
                }
                free(res), free(added);
            }
            free(x), free(w), free(got), free(want);
        }
    teardown(&f);
}

static void test_softmax(void)
{
    struct fixture f;
    if (!setup(&f))
        return;
    for (size_t a = 0; a < 5; a++)
        for (size_t b = 0; b < 3; b++)
            for (int masked = 0; masked < 2; masked++) {
                uint32_t n = row_sizes[a], rows = row_counts[b];
                size_t total = (size_t)n * rows;
                const float scale = 0.5f;
                float *x = t_random_floats(total, 300 + a * 7 + b, -10.f, 10.f);
                float *mask = malloc(total * 4), *got = malloc(total * 4),
                      *want = malloc(total * 4);
                /* a causal mask over the row's positions, its first row fully masked */
                for (size_t r = 0; mask && r < rows; r++)
                    for (size_t i = 0; i < n; i++)
                        mask[r * n + i] =
                            (r == 0 && rows > 1) || i > r * n / rows + 1 ? -INFINITY : -0.25f;
                begin(&f);
                vkb_buffer *bx = upload(&f, x, total * 4), *bm = upload(&f, mask, total * 4),
                           *bo = upload(&f, NULL, total * 4);
                if (!x || !mask || !got || !want || !bx || !bm || !bo) {
                    t_fail_at(__FILE__, __LINE__, "setup failed");
                } else {
                    CHECK_OK(
                        vkb_op_softmax(f.stream, bo, bx, masked ? bm : NULL, rows, n, rows, scale));
                    finish(&f, bo, got, total * 4);
                    vkb_ref_softmax(want, x, masked ? mask : NULL, rows, n, rows, scale);
                    /* each term: x·scale, + mask, - max (3 roundings), exp of an argument
                     * within [-10, 0] (3 + 20 ULP); the sum of n terms (n roundings at
                     * worst); 1/sum and one product (3.5 ULP). Doubled. Masked values are
                     * exactly 0 on both sides. */
                    char what[80];
                    snprintf(what, sizeof what, "softmax n=%u rows=%u%s", n, rows,
                             masked ? " masked" : "");
                    compare(what, got, want, total, 2.0 * (n + 30.0) * U, 0.0);
                }
                free(x), free(mask), free(got), free(want);
            }
    teardown(&f);
}

/* Greedy decoding's pick on the GPU against vkb_ref_argmax (the host sampler's greedy
 * rule), exact: random rows, the maximum planted at several indices (the lowest must
 * win, wherever the invocations' strides put them), NaN and -inf among the values and
 * before the maximum, +inf twice, and rows with nothing to pick. Two picks recorded one
 * after the other: the second reads the position the first advanced, and the ring of
 * picks wraps. The first also writes the best logit, as vkb_ref_top_logits for m = 1
 * (id and value bits, or {-1, NaN}); the second, without, leaves it. */
static void test_argmax(void)
{
    struct fixture f;
    if (!setup(&f))
        return;
    static const uint32_t sizes[] = {1, 7, 33, 1000, 4097, 32000, 151936};
    const float nan = NAN, inf = INFINITY;
    for (size_t a = 0; a < sizeof sizes / sizeof sizes[0]; a++)
        for (int kind = 0; kind < 5; kind++) {
            uint32_t n = sizes[a];
            float *x = t_random_floats((size_t)n * 2, 900 + a * 5 + kind, -30.f, 30.f);
            if (!x) {
                t_fail_at(__FILE__, __LINE__, "out of memory");
                return;
            }
            float *y = x + n; /* the second row */
            for (uint32_t i = 0; i < n; i++) {
                if (kind == 1 && i % 97 == 3) /* ties at 3, 100, 197, ... */
                    x[i] = 31.f;
                if (kind == 2 && (i % 5 == 0 || i == n - 1))
                    x[i] = i % 2 ? -inf : nan;
                if (kind == 3 && (i == n / 3 || i == n - 1))
                    x[i] = inf;
                if (kind == 4)
                    x[i] = i % 2 ? nan : -inf;
                if (kind == 1 && i % 61 == 60)
                    y[i] = 30.5f;
            }
            int32_t want[2] = {vkb_ref_argmax(x, n), vkb_ref_argmax(y, n)};
            const uint32_t ring = 3;
            int32_t start = 4 + (int32_t)kind, pos_got = 0;
            int32_t picked[3] = {-7, -7, -7}, ids_got = -7;
            vkb_top_logit best = {-7, 7.f};
            begin(&f);
            vkb_buffer *bx = upload(&f, x, (uint64_t)n * 4), *by = upload(&f, y, (uint64_t)n * 4),
                       *bp = upload(&f, &start, 4), *bi = upload(&f, &ids_got, 4),
                       *bk = upload(&f, picked, sizeof picked), *bb = upload(&f, &best, 8);
            if (bx && by && bp && bi && bk && bb) {
                /* the first writes the best logit too, the second (NULL) leaves it */
                CHECK_OK(vkb_op_argmax_feed(f.stream, bx, n, bp, bi, bk, ring, bb));
                CHECK_OK(vkb_op_argmax_feed(f.stream, by, n, bp, bi, bk, ring, NULL));
                finish(&f, bk, picked, sizeof picked);
                CHECK_OK(vkb_buffer_download(t_dev, bp, 0, &pos_got, 4));
                CHECK_OK(vkb_buffer_download(t_dev, bi, 0, &ids_got, 4));
                CHECK_OK(vkb_buffer_download(t_dev, bb, 0, &best, 8));
                vkb_top_logit want_best;
                CHECK(vkb_ref_top_logits(x, n, 1, &want_best) == (want[0] >= 0));
                CHECK_MSG(best.id == want_best.id &&
                              (best.id < 0 ? isnan(best.logit)
                                           : memcmp(&best.logit, &want_best.logit, 4) == 0),
                          "argmax n=%u kind %d: best {%d, %g}, want {%d, %g}", n, kind, best.id,
                          best.logit, want_best.id, want_best.logit);
                /* positions 4 + kind, then + 1: picks at (5 + kind) % 3, (6 + kind) % 3 */
                int32_t got[2] = {picked[(start + 1) % ring], picked[(start + 2) % ring]};
                CHECK_MSG(got[0] == want[0] && got[1] == want[1],
                          "argmax n=%u kind %d: picked %d then %d, want %d then %d", n, kind,
                          got[0], got[1], want[0], want[1]);
                CHECK_MSG(picked[start % ring] == -7, "argmax n=%u: ring entry %d written", n,
                          start % ring);
                CHECK_MSG(pos_got == start + 2, "argmax n=%u: position %d, want %d", n, pos_got,
                          start + 2);
                CHECK_MSG(ids_got == (want[1] < 0 ? 0 : want[1]), "argmax n=%u: id %d, want %d", n,
                          ids_got, want[1]);
                CHECK_MSG(kind != 4 || want[0] == -1, "argmax n=%u: the reference picked %d", n,
                          want[0]);
            }
            free(x);
        }
    teardown(&f);
}

/* Row kind for the best logits' test: 0 random, 1 a few values (long runs of ties), 2
 * NaN, ±inf and ±0 among them, 3 nothing valid, 4 the extremes of the floats (subnormals,
 * ±FLT_MAX: keys at both ends), 5 every value equal, 6 mostly ±0 (equal: the lower
 * index first whatever the sign). */
static void top_logits_row(float *x, uint32_t n, int kind, uint64_t seed)
{
    uint64_t st = seed;
    for (uint32_t i = 0; i < n; i++) {
        float v = t_rand_float(&st, -30.f, 30.f);
        uint32_t r = (uint32_t)(t_rand_u64(&st) % 16);
        if (kind == 1)
            v = floorf(v / 8.f) * 0.5f;
        if (kind == 2)
            v = r == 0   ? NAN
                : r == 1 ? -INFINITY
                : r == 2 ? INFINITY
                : r == 3 ? -0.f
                : r == 4 ? 0.f
                         : v;
        if (kind == 3)
            v = r % 2 ? NAN : -INFINITY;
        if (kind == 4)
            v = r < 4    ? -FLT_MAX
                : r < 6  ? FLT_MAX
                : r < 9  ? (r % 2 ? 1 : -1) * 0x1p-140f * (float)(1 + i % 5)
                : r < 10 ? -FLT_MAX * 0.5f
                         : v * 1e30f;
        if (kind == 5)
            v = 1.25f;
        if (kind == 6) /* the cut among zeros of both signs */
            v = r < 6 ? 0.f : r < 12 ? -0.f : r < 13 ? 1.f : -1.f;
        x[i] = v;
    }
}

/* The best m logits on the GPU against vkb_ref_top_logits, exact in ids, value bits and
 * padding: rows of 1 to 151936 values of every kind above, m from 1 to past the valid
 * count, in one workgroup, the automatic number, 3 and 64 (whose slices hold fewer than m
 * at the small sizes); all of a row's selections recorded into one submission. */
static void test_top_logits(void)
{
    struct fixture f;
    if (!setup(&f))
        return;
    static const uint32_t sizes[] = {1, 7, 100, 4097, 32000, 151936};
    static const uint32_t ms[] = {1, 40, 104, 300};
    static const uint32_t groupings[] = {0, 1, 3, 64};
    enum { NM = 4, NG = 4 };
    vkb_top_logit *want = malloc(300 * sizeof *want), *got = malloc(300 * sizeof *got);
    for (size_t a = 0; a < sizeof sizes / sizeof sizes[0] && want && got; a++)
        for (int kind = 0; kind < 7; kind++) {
            uint32_t n = sizes[a];
            float *x = malloc((size_t)n * 4);
            if (!x) {
                t_fail_at(__FILE__, __LINE__, "out of memory");
                break;
            }
            top_logits_row(x, n, kind, 7100 + a * 11 + (uint64_t)kind);
            begin(&f);
            vkb_buffer *bx = upload(&f, x, (uint64_t)n * 4), *outs[NM][NG];
            bool ok = bx != NULL;
            for (int i = 0; i < NM && ok; i++)
                for (int g = 0; g < NG && ok; g++) {
                    uint64_t sb = vkb_top_logits_scratch_bytes(n, ms[i], groupings[g]);
                    vkb_buffer *scratch = sb ? upload(&f, NULL, sb) : NULL;
                    outs[i][g] = upload(&f, NULL, ms[i] * sizeof(vkb_top_logit));
                    ok = outs[i][g] && (scratch || !sb);
                    if (ok)
                        CHECK_OK(vkb_op_top_logits(f.stream, outs[i][g], scratch, bx, n, ms[i],
                                                   groupings[g]));
                }
            if (ok)
                finish(&f, NULL, NULL, 0);
            for (int i = 0; i < NM && ok; i++) {
                uint32_t m = ms[i];
                int64_t valid = vkb_ref_top_logits(x, n, m, want);
                CHECK_MSG(valid >= 0, "top_logits: reference out of memory");
                CHECK_MSG(kind != 3 || valid == 0, "top_logits n=%u: %lld valid in a row of none",
                          n, (long long)valid);
                for (int g = 0; g < NG; g++) {
                    CHECK_OK(vkb_buffer_download(t_dev, outs[i][g], 0, got, m * sizeof *got));
                    uint32_t bad = 0, first = 0;
                    for (uint32_t j = 0; j < m; j++) {
                        uint32_t gb, wb;
                        memcpy(&gb, &got[j].logit, 4);
                        memcpy(&wb, &want[j].logit, 4);
                        bool same = got[j].id == want[j].id &&
                                    (want[j].id < 0 ? isnan(got[j].logit) : gb == wb);
                        if (!same && bad++ == 0)
                            first = j;
                    }
                    CHECK_MSG(bad == 0,
                              "top_logits n=%u kind %d m=%u groups %u (%u): %u of %u entries "
                              "differ, the first at %u: id %d logit %g, want id %d logit %g",
                              n, kind, m, groupings[g], vkb_top_logits_groups(n, m, groupings[g]),
                              bad, m, first, got[first].id, got[first].logit, want[first].id,
                              want[first].logit);
                }
            }
            free(x);
        }
    free(want);
    free(got);
    teardown(&f);
}

/* The history ring's state as vkb_op_sample_feed keeps it: {len, at, tokens[cap]}. */
struct sample_ring {
    int32_t len, at, tokens[64];
};

/* What eng_sampler_accept does to the ring (and the kernel after its pick). */
static void ring_accept(struct sample_ring *h, uint32_t cap, int32_t t)
{
    if (cap == 0 || t < 0)
        return;
    h->tokens[h->at] = t;
    h->at = (h->at + 1) % (int32_t)cap;
    h->len = h->len < (int32_t)cap ? h->len + 1 : (int32_t)cap;
}

/* Sampling's pick on the GPU against vkb_ref_sample: the best m (1 to VKB_SAMPLE_MAX) of
 * rows sharp and flat, with ties, NaN and -inf, fewer valid than m, or none; every
 * setting of temperature (0: greedy after the penalty), top-k, top-p, min-p and a penalty
 * above and below 1 over history rings of 0 to 64 tokens, full and partly full. Two picks
 * are recorded one after the other: the second reads the position the first advanced,
 * its own draw, and the history with the first pick in it. The pick must be the
 * reference's wherever the reference's margin (the distance from a decision's edge) is
 * above 1e-4, far above float rounding; the cases nearer an edge are counted, and must
 * be few. The ring, the position, the id and the picks' ring are checked exactly. */
static void test_sample(void)
{
    struct fixture f;
    if (!setup(&f))
        return;
    static const uint32_t ms[] = {1, 2, 7, 40, 104, 300, 512};
    static const float temps[] = {0.f, 0.3f, 0.8f, 2.f}, top_ps[] = {1.f, 0.9f, 0.5f},
                       min_ps[] = {0.f, 0.05f, 0.2f}, penalties[] = {1.f, 1.5f, 0.7f};
    static const uint32_t caps[] = {0, 1, 16, 64};
    const int cases = 420;
    int compared = 0, near = 0;
    uint64_t st = 4242;
    vkb_top_logit *best = malloc(VKB_SAMPLE_MAX * sizeof *best);
    float *x = malloc(4 * VKB_SAMPLE_MAX * sizeof *x);
    for (int c = 0; c < cases && best && x; c++) {
        uint32_t m = ms[c % 7], kind = (uint32_t)(t_rand_u64(&st) % 8);
        uint32_t n = kind == 5 ? m / 2 + 1 : m + (uint32_t)(t_rand_u64(&st) % (3 * m + 1));
        float spread = kind == 0 ? 0.05f : kind == 1 ? 0.3f : 1.f;
        for (uint32_t i = 0; i < n; i++) {
            float v = t_rand_float(&st, -30.f, 30.f) * spread;
            uint32_t r = (uint32_t)(t_rand_u64(&st) % 8);
            if (kind == 3)
                v = floorf(v / 4.f); /* runs of ties */
            if (kind == 4 && r < 3)
                v = r == 0 ? NAN : -INFINITY;
            if (kind == 6 && c % 21 == 6)
                v = NAN; /* nothing valid */
            x[i] = v;
        }
        CHECK(vkb_ref_top_logits(x, n, m, best) >= 0);
        uint32_t cap = caps[t_rand_u64(&st) % 4];
        vkb_sample_params p = {.temperature = temps[t_rand_u64(&st) % 4],
                               .top_p = top_ps[t_rand_u64(&st) % 3],
                               .min_p = min_ps[t_rand_u64(&st) % 3],
                               .penalty = penalties[t_rand_u64(&st) % 3],
                               .history = cap};
        static const uint32_t ks[] = {0, 1, 3, 40, 600};
        p.top_k = ks[t_rand_u64(&st) % 5];
        /* a ring filled from slot 0, or full with its next slot anywhere; its tokens
         * mostly among the candidates */
        struct sample_ring ring = {0};
        if (cap) {
            ring.len = (int32_t)(t_rand_u64(&st) % (cap + 1));
            ring.at = ring.len < (int32_t)cap ? ring.len : (int32_t)(t_rand_u64(&st) % cap);
            for (uint32_t h = 0; h < cap; h++) {
                uint32_t j = (uint32_t)(t_rand_u64(&st) % m);
                ring.tokens[h] = best[j].id >= 0 && h % 5 ? best[j].id : (int32_t)(h * 7 + 1);
            }
        }
        const uint32_t picks_len = 5;
        float draws[5];
        for (int i = 0; i < 5; i++)
            draws[i] = (float)(t_rand_u64(&st) >> 40) * 0x1p-24f;
        if (c % 50 == 1)
            draws[(c + 1) % 5] = 0.f, draws[(c + 2) % 5] = 1.f - 0x1p-24f;
        int32_t start = c, picked[5] = {-7, -7, -7, -7, -7}, ids_got = -7, pos_got = 0;
        struct sample_ring ring_got;
        begin(&f);
        vkb_buffer *bb = upload(&f, best, m * sizeof *best), *bd = upload(&f, draws, sizeof draws),
                   *bh = upload(&f, &ring, sizeof ring), *bp = upload(&f, &start, 4),
                   *bi = upload(&f, &ids_got, 4), *bk = upload(&f, picked, sizeof picked);
        if (!bb || !bd || !bh || !bp || !bi || !bk) {
            t_fail_at(__FILE__, __LINE__, "setup failed");
            break;
        }
        CHECK_OK(vkb_op_sample_feed(f.stream, bb, m, bd, bh, bp, bi, bk, picks_len, &p));
        CHECK_OK(vkb_op_sample_feed(f.stream, bb, m, bd, bh, bp, bi, bk, picks_len, &p));
        finish(&f, bk, picked, sizeof picked);
        CHECK_OK(vkb_buffer_download(t_dev, bp, 0, &pos_got, 4));
        CHECK_OK(vkb_buffer_download(t_dev, bi, 0, &ids_got, 4));
        CHECK_OK(vkb_buffer_download(t_dev, bh, 0, &ring_got, sizeof ring_got));
        int32_t got[2] = {picked[(start + 1) % picks_len], picked[(start + 2) % picks_len]};
        struct sample_ring want_ring = ring;
        for (int k = 0; k < 2; k++) {
            double margin;
            int32_t want = vkb_ref_sample(best, m, want_ring.tokens, (uint32_t)want_ring.len, &p,
                                          draws[(start + 1 + k) % picks_len], &margin);
            if (margin < 1e-4) {
                near++;
            } else {
                compared++;
                CHECK_MSG(got[k] == want,
                          "sample case %d pick %d (m=%u kind %u, t %g, top-k %u, top-p %g, "
                          "min-p %g, penalty %g over %d of %u): %d, want %d (margin %.3g)",
                          c, k, m, kind, p.temperature, p.top_k, p.top_p, p.min_p, p.penalty,
                          want_ring.len, cap, got[k], want, margin);
            }
            /* the GPU's pick goes on, as the kernel's history holds it */
            ring_accept(&want_ring, cap, got[k]);
        }
        CHECK_MSG(kind != 6 || c % 21 != 6 || (got[0] == -1 && got[1] == -1),
                  "sample case %d: picks %d, %d where nothing is valid", c, got[0], got[1]);
        CHECK_MSG(memcmp(&ring_got, &want_ring, (2 + cap) * 4) == 0,
                  "sample case %d: history ring len %d at %d, want len %d at %d", c, ring_got.len,
                  ring_got.at, want_ring.len, want_ring.at);
        CHECK_MSG(pos_got == start + 2 && ids_got == (got[1] < 0 ? 0 : got[1]),
                  "sample case %d: position %d id %d, want %d and %d", c, pos_got, ids_got,
                  start + 2, got[1] < 0 ? 0 : got[1]);
        CHECK_MSG(picked[start % picks_len] == -7, "sample case %d: ring entry %d written", c,
                  start % picks_len);
    }
    fprintf(stderr, "  %d picks compared, %d within 1e-4 of an edge\n", compared, near);
    CHECK_MSG(compared >= cases * 2 * 9 / 10, "sample: only %d of %d picks compared", compared,
              cases * 2);
    free(best);
    free(x);
    teardown(&f);
}

static void check_rope(struct fixture *f, vkb_rope_shape sh, float base, float freq_scale,
                       uint64_t seed)
{
    size_t total = (size_t)sh.head_dim * sh.heads * sh.tokens;
    float *x = t_random_floats(total, seed, -2.f, 2.f), *got = malloc(total * 4),
          *want = malloc(total * 4), *freqs = malloc(sh.rot_dims / 2 * 4 + 4);
    int32_t *pos = malloc(sh.tokens * 4);
    if (!x || !got || !want || !freqs || !pos) {
        t_fail_at(__FILE__, __LINE__, "out of memory");
        goto out;
    }
    static const int32_t positions[] = {0, 1, 2, 17, 511, 4095, 32767, 131071};
    for (uint32_t t = 0; t < sh.tokens; t++)
        pos[t] = positions[t % 8];
    vkb_rope_freqs(freqs, sh.rot_dims, base, freq_scale);
    begin(f);
    vkb_buffer *bx = upload(f, x, total * 4), *bp = upload(f, pos, sh.tokens * 4),
               *bf = upload(f, freqs, sh.rot_dims / 2 * 4), *bo = upload(f, NULL, total * 4);
    if (bx && bp && bf && bo) {
        CHECK_OK(vkb_op_rope(f->stream, bo, bx, bp, bf, &sh));
        finish(f, bo, got, total * 4);
        vkb_ref_rope(want, x, pos, freqs, &sh);
        /* sin and cos: 2^-11 absolute each (the kernel reduces the angle to [-π, π] with
         * an error near 2^-24·|angle|/2π), times |x0| + |x1| ≤ 4, plus the products and
         * the sum; doubled. Dimensions past rot_dims are copied: exact. */
        char what[96];
        snprintf(what, sizeof what, "rope head_dim=%u rot=%u heads=%u tokens=%u%s", sh.head_dim,
                 sh.rot_dims, sh.heads, sh.tokens, sh.neox ? " neox" : "");
        compare(what, got, want, total, 4 * U, 2.0 * 4.0 * (0x1p-11 + 0x1p-20));
        size_t copied_bad = 0;
        for (size_t i = 0; i < total; i++)
            copied_bad += i % sh.head_dim >= sh.rot_dims && got[i] != x[i];
        CHECK_MSG(copied_bad == 0, "%s: %zu unrotated dimensions changed", what, copied_bad);
    }
out:
    free(x), free(got), free(want), free(freqs), free(pos);
}

static void test_rope(void)
{
    struct fixture f;
    if (!setup(&f))
        return;
    for (int neox = 0; neox < 2; neox++) {
        check_rope(&f, (vkb_rope_shape){64, 64, 3, 8, neox}, 10000.f, 1.f, 1 + neox);
        check_rope(&f, (vkb_rope_shape){128, 128, 5, 9, neox}, 500000.f, 0.25f, 3 + neox);
        check_rope(&f, (vkb_rope_shape){64, 32, 2, 3, neox}, 10000.f, 1.f, 5 + neox); /* partial */
        check_rope(&f, (vkb_rope_shape){2, 2, 1, 1, neox}, 10000.f, 1.f, 7 + neox);
    }
    /* frequencies: base^(-2i/d) · scale */
    float fr[64];
    vkb_rope_freqs(fr, 128, 500000.f, 0.25f);
    CHECK(fr[0] == 0.25f);
    CHECK(fabs(fr[63] - 0.25 * pow(500000.0, -126.0 / 128.0)) <= 1e-7 * fr[63]);
    teardown(&f);
}

/* The largest magnitude of x[0..n). */
static double max_abs(const float *x, size_t n)
{
    double top = 0;
    for (size_t i = 0; i < n; i++)
        top = fabs(x[i]) > top ? fabs(x[i]) : top;
    return top;
}

/* n f16 values (bytes as a cache holds them) as floats, malloc'd; NULL out of memory. */
static float *f16_floats(const uint8_t *bytes, size_t n)
{
    float *f = malloc(sizeof *f * (n ? n : 1));
    for (size_t i = 0; f && i < n; i++) {
        uint16_t h;
        memcpy(&h, bytes + 2 * i, 2);
        f[i] = cmp_f16_to_f32(h);
    }
    return f;
}

/* rope_store_f16: the bits of rope (q, k) then store_f16 (k, v) apart, in place on q,
 * and nothing of the caches outside the positions written. With norm, rope_store_norm_f16
 * against rms_norm of q's and k's heads (random weights) before those ops: within f32
 * rounding for q (the squares are added in another order), and as f16 values one step
 * apart at most in the caches (2^-11 relative: an f32 difference can round either way). */
static void check_rope_store(struct fixture *f, vkb_rope_shape sh, uint32_t kv_heads, uint32_t row0,
                             uint64_t seed, bool norm)
{
    const uint32_t n_ctx = row0 + sh.tokens + 3;
    size_t qn = (size_t)sh.head_dim * sh.heads * sh.tokens;
    size_t kvn = (size_t)sh.head_dim * kv_heads * sh.tokens;
    size_t cache_bytes = (size_t)n_ctx * sh.head_dim * kv_heads * 2;
    float *q = t_random_floats(qn, seed, -2.f, 2.f), *k = t_random_floats(kvn, seed + 1, -2.f, 2.f);
    float *v = t_random_floats(kvn, seed + 2, -2.f, 2.f),
          *fill = t_random_floats(cache_bytes / 4, seed + 3, -9.f, 9.f),
          *wq = t_random_floats(sh.head_dim, seed + 4, 0.5f, 1.5f),
          *wk = t_random_floats(sh.head_dim, seed + 5, 0.5f, 1.5f);
    float *freqs = malloc(sh.rot_dims / 2 * 4);
    int32_t *pos = malloc(sh.tokens * 4);
    uint8_t *host[6] = {malloc(qn * 4),      malloc(qn * 4),      malloc(cache_bytes),
                        malloc(cache_bytes), malloc(cache_bytes), malloc(cache_bytes)};
    bool ok = q && k && v && fill && wq && wk && freqs && pos;
    for (int i = 0; i < 6; i++)
        ok = ok && host[i];
    if (!ok) {
        t_fail_at(__FILE__, __LINE__, "out of memory");
        goto out;
    }
    for (uint32_t t = 0; t < sh.tokens; t++)
        pos[t] = (int32_t)(row0 + t) * 37;
    vkb_rope_freqs(freqs, sh.rot_dims, 10000.f, 1.f);
    begin(f);
    vkb_rope_shape sk = sh;
    sk.heads = kv_heads;
    uint64_t kv_off = (uint64_t)row0 * sh.head_dim * kv_heads;
    vkb_buffer *bq = upload(f, q, qn * 4), *bk = upload(f, k, kvn * 4), *bv = upload(f, v, kvn * 4),
               *bp = upload(f, pos, sh.tokens * 4), *bf = upload(f, freqs, sh.rot_dims / 2 * 4),
               *qa = upload(f, NULL, qn * 4), *ka = upload(f, NULL, kvn * 4),
               *kca = upload(f, fill, cache_bytes), *vca = upload(f, fill, cache_bytes),
               *kcb = upload(f, fill, cache_bytes), *vcb = upload(f, fill, cache_bytes),
               *bwq = upload(f, wq, sh.head_dim * 4), *bwk = upload(f, wk, sh.head_dim * 4);
    if (!bq || !bk || !bv || !bp || !bf || !qa || !ka || !kca || !vca || !kcb || !vcb || !bwq ||
        !bwk)
        goto out;
    const float eps = 1e-6f;
    if (norm) { /* the reference reads the normalized heads from qa and ka */
        CHECK_OK(vkb_op_rms_norm(f->stream, qa, bq, bwq, sh.head_dim, sh.heads * sh.tokens, eps));
        CHECK_OK(vkb_op_rms_norm(f->stream, ka, bk, bwk, sh.head_dim, kv_heads * sh.tokens, eps));
    }
    CHECK_OK(vkb_op_rope(f->stream, qa, norm ? qa : bq, bp, bf, &sh));
    CHECK_OK(vkb_op_rope(f->stream, ka, norm ? ka : bk, bp, bf, &sk));
    CHECK_OK(vkb_op_store_f16(f->stream, kca, kv_off, ka, kvn));
    CHECK_OK(vkb_op_store_f16(f->stream, vca, kv_off, bv, kvn));
    vkb_head_norms norms = {bwq, bwk, eps};
    if (norm)
        CHECK_OK(vkb_op_norm_rope_store_f16(f->stream, bq, bk, bv, &norms, bp, bf, &sh, kv_heads,
                                            kcb, vcb, row0));
    else
        CHECK_OK(
            vkb_op_rope_store_f16(f->stream, bq, bk, bv, bp, bf, &sh, kv_heads, kcb, vcb, row0));
    finish(f, NULL, NULL, 0);
    const vkb_buffer *from[6] = {qa, bq, kca, kcb, vca, vcb};
    for (int i = 0; i < 6; i++)
        CHECK_OK(vkb_buffer_download(t_dev, from[i], 0, host[i], i < 2 ? qn * 4 : cache_bytes));
    char what[112];
    snprintf(what, sizeof what, "rope_store%s_f16 head_dim=%u rot=%u heads=%u/%u tokens=%u at %u%s",
             norm ? "_norm" : "", sh.head_dim, sh.rot_dims, sh.heads, kv_heads, sh.tokens, row0,
             sh.neox ? " neox" : "");
    if (norm) {
        /* q within 1e-5 of its largest value; the rows written within one f16 step of it */
        const float *gq = (const float *)host[1], *rq = (const float *)host[0];
        char part[160];
        snprintf(part, sizeof part, "%s: q", what);
        compare(part, gq, rq, qn, 0.0, 1e-5 * max_abs(rq, qn));
        size_t at = kv_off * 2, end = at + kvn * 2; /* the rows written, in bytes */
        float *gk = f16_floats(host[3] + at, kvn), *rk = f16_floats(host[2] + at, kvn);
        CHECK(gk && rk);
        snprintf(part, sizeof part, "%s: the key cache", what);
        if (gk && rk)
            compare(part, gk, rk, kvn, 0.0, max_abs(rk, kvn) / 1024);
        free(gk), free(rk);
        CHECK_MSG(memcmp(host[2], host[3], at) == 0 &&
                      memcmp(host[2] + end, host[3] + end, cache_bytes - end) == 0,
                  "%s: the key cache changed outside the rows written", what);
    } else {
        CHECK_MSG(memcmp(host[0], host[1], qn * 4) == 0, "%s: q differs from rope's", what);
        CHECK_MSG(memcmp(host[2], host[3], cache_bytes) == 0, "%s: the key cache differs", what);
    }
    CHECK_MSG(memcmp(host[4], host[5], cache_bytes) == 0, "%s: the value cache differs", what);
out:
    free(q), free(k), free(v), free(fill), free(wq), free(wk), free(freqs), free(pos);
    for (int i = 0; i < 6; i++)
        free(host[i]);
}

static void test_rope_store(void)
{
    struct fixture f;
    if (!setup(&f))
        return;
    for (int norm = 0; norm < 2; norm++)
        for (int neox = 0; neox < 2; neox++) {
            check_rope_store(&f, (vkb_rope_shape){64, 64, 4, 1, neox}, 2, 5, 10 + neox, norm);
            check_rope_store(&f, (vkb_rope_shape){128, 128, 8, 5, neox}, 2, 3, 12 + neox, norm);
            check_rope_store(&f, (vkb_rope_shape){64, 32, 3, 3, neox}, 3, 0, 14 + neox,
                             norm); /* partial */
            check_rope_store(&f, (vkb_rope_shape){2, 2, 1, 1, neox}, 1, 7, 16 + neox, norm);
            /* heads of 80 (40 pairs: a workgroup of 240 holds six) and 256 */
            check_rope_store(&f, (vkb_rope_shape){80, 80, 7, 3, neox}, 7, 2, 18 + neox, norm);
            check_rope_store(&f, (vkb_rope_shape){256, 256, 4, 2, neox}, 2, 1, 20 + neox, norm);
        }
    teardown(&f);
}

static void test_eltwise(void)
{
    static const uint64_t sizes[] = {1, 7, 256, 100003, (65535u * 256u) + 3};
    struct fixture f;
    if (!setup(&f))
        return;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        uint64_t n = sizes[s];
        float *g = t_random_floats(n, 40 + s, -20.f, 20.f),
              *u = t_random_floats(n, 50 + s, -3.f, 3.f);
        float *got = malloc(n * 4), *want = malloc(n * 4);
        uint16_t *half = malloc(n * 2 + 4);
        begin(&f);
        vkb_buffer *bg = upload(&f, g, n * 4), *bu = upload(&f, u, n * 4),
                   *bo = upload(&f, NULL, n * 4), *bh = upload(&f, NULL, (n + 1) / 2 * 4);
        if (!g || !u || !got || !want || !half || !bg || !bu || !bo || !bh) {
            t_fail_at(__FILE__, __LINE__, "setup failed");
            goto next;
        }
        char what[64];
        /* silu·mul: exp(-g) 3 + 2·|g| ULP (|g| ≤ 20), 1 + e, the quotient (2.5) and the
         * product: 47 ULP, doubled; tiny absolute slack where the result underflows */
        CHECK_OK(vkb_op_glu_mul(f.stream, VKB_ACT_SILU, bo, bg, bu, n));
        finish(&f, bo, got, n * 4);
        vkb_ref_glu_mul(VKB_ACT_SILU, want, g, u, n);
        snprintf(what, sizeof what, "silu_mul n=%llu", (unsigned long long)n);
        compare(what, got, want, n, 2.0 * 47.0 * U, 1e-30);

        /* gelu·mul: the exp's argument t = 2 sqrt(2/pi) (g + 0.044715 g³) comes with a few
         * ULP of relative error (4 roundings), which exp turns into |t| times that in its
         * result: (4 |t| + 47) ULP, doubled; where exp overflows (g below about -5.6) the
         * value is 0 or nearly, within the absolute slack */
        CHECK_OK(vkb_stream_begin(f.stream));
        CHECK_OK(vkb_op_glu_mul(f.stream, VKB_ACT_GELU, bo, bg, bu, n));
        finish(&f, bo, got, n * 4);
        vkb_ref_glu_mul(VKB_ACT_GELU, want, g, u, n);
        uint64_t bad_gelu = 0, worst = 0;
        double worst_ratio = 0;
        for (uint64_t i = 0; i < n; i++) {
            double t = 1.5957691216057308 * g[i] * (1.0 + 0.044715 * g[i] * g[i]);
            double budget = 2.0 * (4.0 * fabs(t) + 47.0) * U * fabs(want[i]) + 1e-30;
            double err = fabs((double)got[i] - want[i]);
            bad_gelu += !(err <= budget);
            if (!(err / budget <= worst_ratio))
                worst_ratio = err / budget, worst = i;
        }
        CHECK_MSG(bad_gelu == 0,
                  "gelu_mul n=%llu: %llu values outside the budget; worst at g=%.9g: %.9g, "
                  "want %.9g",
                  (unsigned long long)n, (unsigned long long)bad_gelu, (double)g[worst],
                  (double)got[worst], (double)want[worst]);

        /* softcap (30, gemma 2's logits) over g in ±20: tanh as 1 - 2 / (exp(2x) + 1),
         * whose exp carries |2x| (at most 1.4) times a few ULP: 3 + 8 + 5 ULP of the cap,
         * absolute, doubled */
        CHECK_OK(vkb_stream_begin(f.stream));
        CHECK_OK(vkb_op_softcap(f.stream, bo, bg, n, 30.0f));
        finish(&f, bo, got, n * 4);
        vkb_ref_softcap(want, g, n, 30.0f);
        snprintf(what, sizeof what, "softcap n=%llu", (unsigned long long)n);
        compare(what, got, want, n, 0.0, 2.0 * 16.0 * U * 30.0);

        /* scale: one correctly rounded product, bit-exact */
        CHECK_OK(vkb_stream_begin(f.stream));
        CHECK_OK(vkb_op_scale(f.stream, bo, bg, n, 0.125f * 3.0f));
        finish(&f, bo, got, n * 4);
        vkb_ref_scale(want, g, n, 0.375f);
        snprintf(what, sizeof what, "scale n=%llu", (unsigned long long)n);
        compare(what, got, want, n, 0.0, 0.0);

        /* f32 → f16: round to nearest even or toward zero (Vulkan allows either); then
         * f16 → f32 exactly */
        CHECK_OK(vkb_stream_begin(f.stream));
        CHECK_OK(vkb_op_convert_f32_f16(f.stream, bh, bu, n));
        CHECK_OK(vkb_op_convert_f16_f32(f.stream, bo, bh, n));
        finish(&f, bh, half, n * 2);
        CHECK_OK(vkb_buffer_download(t_dev, bo, 0, got, n * 4));
        uint64_t bad_half = 0, bad_back = 0;
        for (uint64_t i = 0; i < n; i++) {
            uint16_t rte = cmp_f32_to_f16(u[i]);
            bool toward_zero = fabsf(cmp_f16_to_f32(rte)) > fabsf(u[i]);
            uint16_t rtz = toward_zero ? (uint16_t)(rte - 1) : rte;
            bad_half += half[i] != rte && half[i] != rtz;
            bad_back += got[i] != cmp_f16_to_f32(half[i]);
        }
        CHECK_MSG(bad_half == 0, "convert_f32_f16 n=%llu: %llu values not rounded",
                  (unsigned long long)n, (unsigned long long)bad_half);
        CHECK_MSG(bad_back == 0, "convert_f16_f32 n=%llu: %llu values differ",
                  (unsigned long long)n, (unsigned long long)bad_back);
    next:
        free(g), free(u), free(got), free(want), free(half);
    }
    teardown(&f);
}

/* add_bias (bit-exact: one correctly rounded sum) and store_f16 at an offset, the two ops
 * the engine adds for biases and KV-cache writes. */
/* The norm and silu·mul fused with quantize_q8: their f32 output the same bits as the
 * plain op's, and their 8-bit blocks the same bytes as vkb_ref_quantize_q8 of that output
 * (every step of the quantization is exact or correctly rounded). Rows of 32 values to
 * 11008 (several rounds of the norm's workgroup), one to three of them. */
static void test_fused_q8(void)
{
    struct fixture f;
    if (!setup(&f))
        return;
    static const uint32_t shapes[][2] = {{32, 1}, {96, 3}, {4096, 1}, {4128, 2}, {11008, 2}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        uint32_t n = shapes[i][0], rows = shapes[i][1];
        size_t total = (size_t)n * rows;
        uint64_t qb = vkb_q8_bytes(n, rows);
        float *x = t_random_floats(total, 300 + i, -3.f, 3.f),
              *w = t_random_floats(n, 310, .5f, 2.f);
        float *u = t_random_floats(total, 320 + i, -3.f, 3.f);
        float *plain = malloc(total * 4), *fused = malloc(total * 4);
        uint32_t *got_q = malloc(qb), *want_q = malloc(qb);
        for (int op = 0; op < 3; op++) {
            const char *name = op == 0 ? "rms_norm_q8" : op == 1 ? "silu_mul_q8" : "gelu_mul_q8";
            begin(&f);
            vkb_buffer *bx = upload(&f, x, total * 4), *bw = upload(&f, w, n * 4),
                       *bu = upload(&f, u, total * 4), *bp = upload(&f, NULL, total * 4),
                       *bf = upload(&f, NULL, total * 4), *bq = upload(&f, NULL, qb);
            if (!x || !w || !u || !plain || !fused || !got_q || !want_q || !bx || !bw || !bu ||
                !bp || !bf || !bq) {
                t_fail_at(__FILE__, __LINE__, "setup failed");
                break;
            }
            if (op == 0) {
                CHECK_OK(vkb_op_rms_norm(f.stream, bp, bx, bw, n, rows, 1e-5f));
                CHECK_OK(vkb_op_rms_norm_q8(f.stream, bf, bq, bx, bw, n, rows, 1e-5f));
            } else {
                vkb_act act = op == 1 ? VKB_ACT_SILU : VKB_ACT_GELU;
                CHECK_OK(vkb_op_glu_mul(f.stream, act, bp, bx, bu, total));
                CHECK_OK(vkb_op_glu_mul_q8(f.stream, act, bf, bq, bx, bu, n, rows));
            }
            finish(&f, bp, plain, total * 4);
            CHECK_OK(vkb_buffer_download(t_dev, bf, 0, fused, total * 4));
            CHECK_OK(vkb_buffer_download(t_dev, bq, 0, got_q, qb));
            size_t bad = 0, bad_q = 0;
            for (size_t j = 0; j < total; j++)
                bad += memcmp(&plain[j], &fused[j], 4) != 0;
            vkb_ref_quantize_q8(fused, n, rows, want_q);
            for (size_t j = 0; j < qb / 4; j++)
                bad_q += got_q[j] != want_q[j];
            CHECK_MSG(bad == 0, "%s n=%u rows=%u: %zu of %zu outputs differ from the plain op's",
                      name, n, rows, bad, total);
            CHECK_MSG(bad_q == 0,
                      "%s n=%u rows=%u: %zu of %llu words of the 8-bit blocks differ "
                      "from vkb_ref_quantize_q8's",
                      name, n, rows, bad_q, (unsigned long long)(qb / 4));
        }
        free(x), free(w), free(u), free(plain), free(fused), free(got_q), free(want_q);
    }
    teardown(&f);
}

static void test_bias_and_store(void)
{
    struct fixture f;
    if (!setup(&f))
        return;
    const uint32_t n = 67, rows = 5, off = 6;
    float *x = t_random_floats((size_t)n * rows, 61, -4.f, 4.f),
          *b = t_random_floats(n, 62, -1.f, 1.f);
    float got[67 * 5], want[67 * 5];
    uint16_t half[(6 + 67 * 5 + 1)];
    begin(&f);
    vkb_buffer *bx = upload(&f, x, sizeof got), *bb = upload(&f, b, n * 4),
               *bo = upload(&f, NULL, sizeof got), *bh = upload(&f, NULL, sizeof half);
    if (!x || !b || !bx || !bb || !bo || !bh) {
        t_fail_at(__FILE__, __LINE__, "setup failed");
        goto done;
    }
    memset(half, 0x55, sizeof half);
    CHECK_OK(vkb_buffer_upload(t_dev, bh, 0, half, sizeof half));
    CHECK_OK(vkb_op_add_bias(f.stream, bo, bx, bb, n, rows));
    CHECK_OK(vkb_op_store_f16(f.stream, bh, off, bo, (uint64_t)n * rows));
    finish(&f, bo, got, sizeof got);
    vkb_ref_add_bias(want, x, b, n, rows);
    compare("add_bias", got, want, (size_t)n * rows, 0.0, 0.0);
    CHECK_OK(vkb_buffer_download(t_dev, bh, 0, half, sizeof half));
    uint64_t bad = 0;
    for (uint32_t i = 0; i < off; i++)
        bad += half[i] != 0x5555; /* before the offset: untouched */
    for (uint32_t i = 0; i < n * rows; i++) {
        float back = cmp_f16_to_f32(half[off + i]);
        bad += fabsf(back - want[i]) > fabsf(want[i]) * 0x1p-10f;
    }
    CHECK_MSG(bad == 0, "store_f16 at offset %u: %llu values wrong", off, (unsigned long long)bad);
done:
    free(x), free(b);
    teardown(&f);
}

/* Bad arguments: a status and a message naming the problem. */
static void test_op_errors(void)
{
    struct fixture f;
    if (!setup(&f))
        return;
    begin(&f);
    vkb_buffer *a = upload(&f, NULL, 4096), *b = upload(&f, NULL, 4096);
    vkb_rope_shape bad = {64, 66, 1, 1, false};
    CHECK_STATUS(vkb_op_rope(f.stream, b, a, a, a, &bad), VKB_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vkb_device_errmsg(t_dev), "rot_dims 66") != NULL);
    CHECK_STATUS(vkb_op_rope_store_f16(f.stream, a, a, a, a, a, &bad, 1, b, b, 0),
                 VKB_ERR_INVALID_ARGUMENT);
    vkb_rope_shape one = {64, 64, 1, 1, false};
    CHECK_STATUS(vkb_op_rope_store_f16(f.stream, a, a, a, a, a, &one, 0, b, b, 0),
                 VKB_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vkb_device_errmsg(t_dev), "0 kv heads") != NULL);
    CHECK_STATUS(vkb_op_rms_norm(f.stream, b, a, a, 2048, 1, 1e-5f), VKB_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vkb_device_errmsg(t_dev), "holds 4096 bytes") != NULL);
    CHECK_STATUS(vkb_op_softmax(f.stream, b, a, a, 0, 16, 4, 1.f), VKB_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(vkb_op_glu_mul(f.stream, VKB_ACT_SILU, b, a, NULL, 16), VKB_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(vkb_op_glu_mul(f.stream, (vkb_act)7, b, a, a, 16), VKB_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vkb_device_errmsg(t_dev), "activation 7") != NULL);
    CHECK_STATUS(vkb_op_softcap(f.stream, b, a, 16, 0.0f), VKB_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(vkb_op_rms_norm_add(f.stream, b, NULL, a, a, 16, 1, 1e-5f),
                 VKB_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(vkb_op_rms_norm_q8(f.stream, b, a, a, a, 48, 1, 1e-5f), VKB_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vkb_device_errmsg(t_dev), "multiple of 32") != NULL);
    CHECK_STATUS(vkb_op_glu_mul_q8(f.stream, VKB_ACT_GELU, b, a, a, a, 0, 1),
                 VKB_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(vkb_op_scale(f.stream, b, a, 0, 1.f), VKB_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(vkb_op_argmax_feed(f.stream, a, 16, a, a, b, 0, NULL), VKB_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vkb_device_errmsg(t_dev), "a ring of 0 picks") != NULL);
    CHECK_STATUS(vkb_op_argmax_feed(f.stream, a, 2048, a, a, b, 1, NULL), VKB_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(vkb_op_top_logits(f.stream, b, NULL, a, 16, 0, 0), VKB_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vkb_device_errmsg(t_dev), "the best 0 of 16") != NULL);
    CHECK_STATUS(vkb_op_top_logits(f.stream, b, NULL, a, 1024, 8, 4), VKB_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vkb_device_errmsg(t_dev), "need scratch") != NULL);
    CHECK_STATUS(vkb_op_top_logits(f.stream, b, NULL, a, 1024, 600, 1), VKB_ERR_INVALID_ARGUMENT);
    vkb_sample_params sp = {0.8f, 40, 0.95f, 0.05f, 1.f, 64};
    CHECK_STATUS(vkb_op_sample_feed(f.stream, a, VKB_SAMPLE_MAX + 1, a, a, a, a, b, 4, &sp),
                 VKB_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vkb_device_errmsg(t_dev), "1 to 512 best logits") != NULL);
    CHECK_STATUS(vkb_op_sample_feed(f.stream, a, 8, a, a, a, a, b, 0, &sp),
                 VKB_ERR_INVALID_ARGUMENT);
    sp.top_p = 0.f;
    CHECK_STATUS(vkb_op_sample_feed(f.stream, a, 8, a, a, a, a, b, 4, &sp),
                 VKB_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vkb_device_errmsg(t_dev), "top-p in (0, 1]") != NULL);
    sp.top_p = 1.f, sp.penalty = 0.f;
    CHECK_STATUS(vkb_op_sample_feed(f.stream, a, 8, a, a, a, a, b, 4, &sp),
                 VKB_ERR_INVALID_ARGUMENT);
    sp.penalty = 1.f, sp.history = 1024; /* a ring larger than its buffer */
    CHECK_STATUS(vkb_op_sample_feed(f.stream, a, 8, a, a, a, a, b, 4, &sp),
                 VKB_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vkb_device_errmsg(t_dev), "history") != NULL);
    vkb_attention_shape ash = {8, 6,   4,    1, 3,
                               3, 1.f, NULL, 0, 0.f}; /* 6 heads over 4; pos0 + 1 > n_kv */
    CHECK_STATUS(vkb_op_attention(f.stream, b, a, a, a, &ash), VKB_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vkb_device_errmsg(t_dev), "6 heads over 4 kv heads") != NULL);
    CHECK_STATUS(vkb_op_store_f16(f.stream, b, 3, a, 4), VKB_ERR_INVALID_ARGUMENT);
    /* positions read on the GPU: not without the positions, not where the work depends
     * on the position when recorded (KIVI, the unfused attention), whole rows of 64 */
    vkb_attention_shape cap = {8, 4, 4, 1, 0, 8, 1.f, NULL, 0, -1.f}; /* a negative soft cap */
    CHECK_STATUS(vkb_op_attention(f.stream, b, a, a, a, &cap), VKB_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vkb_device_errmsg(t_dev), "soft cap -1") != NULL);
    vkb_attention_shape at = {8, 4, 4, 1, VKB_AT_POS, 8, 1.f, NULL, 0, 0.f};
    CHECK_STATUS(vkb_op_attention(f.stream, b, a, a, a, &at), VKB_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vkb_device_errmsg(t_dev), "positions buffer") != NULL);
    at.pos = a;
    CHECK_STATUS(vkb_op_attention_unfused(f.stream, b, a, a, a, b, &at), VKB_ERR_UNSUPPORTED);
    vkb_kv_layout kivi = {VKB_KV_KIVI4, false, 64, 8, 32, 0}, f16 = {VKB_KV_F16, true, 32, 8, 0, 0};
    CHECK_STATUS(vkb_op_kv_store_at(f.stream, b, &kivi, a, a, 1), VKB_ERR_UNSUPPORTED);
    CHECK(strstr(vkb_device_errmsg(t_dev), "kivi4, 64 values") != NULL);
    CHECK_STATUS(vkb_op_kv_store_at(f.stream, b, &f16, a, a, 1), VKB_ERR_UNSUPPORTED);
    CHECK_STATUS(vkb_op_kv_store_at(f.stream, b, &f16, NULL, a, 1), VKB_ERR_INVALID_ARGUMENT);
    finish(&f, NULL, NULL, 0);
    teardown(&f);
}

int main(int argc, char **argv)
{
    static const t_case cases[] = {
        {"rms_norm", test_rms_norm, true},     {"softmax", test_softmax, true},
        {"argmax", test_argmax, true},         {"top_logits", test_top_logits, true},
        {"sample", test_sample, true},         {"rope", test_rope, true},
        {"eltwise", test_eltwise, true},       {"fused_q8", test_fused_q8, true},
        {"rope_store", test_rope_store, true}, {"bias_store", test_bias_and_store, true},
        {"errors", test_op_errors, true},
    };
    return t_main(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
}
