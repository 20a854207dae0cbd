/* The sampler: greedy, each filter alone, the draw's distribution, determinism by seed,
 * the repetition penalty, sampling from a row's best logits, bad parameters. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eng_sampler.h"
#include "harness.h"
#include "vkb_ref.h"

static eng_sampler_params off(void)
{
    eng_sampler_params p = eng_sampler_params_default();
    p.top_k = 0, p.top_p = 1.0f, p.min_p = 0.0f, p.repeat_penalty = 1.0f, p.temperature = 1.0f;
    return p;
}

static eng_sampler *make(eng_sampler_params p, uint32_t n)
{
    char err[128] = "";
    eng_sampler *s = eng_sampler_create(&p, n, err, sizeof err);
    CHECK_MSG(s != NULL, "%s", err);
    return s;
}

/* Frequencies of each token over `draws` samples. */
static void histogram(eng_sampler *s, const float *logits, uint32_t n, int draws, double *freq)
{
    memset(freq, 0, n * sizeof *freq);
    for (int i = 0; i < draws; i++) {
        int32_t t = eng_sampler_sample(s, logits);
        if (t >= 0)
            freq[t] += 1.0 / draws;
    }
}

static void test_greedy(void)
{
    eng_sampler_params p = off();
    p.temperature = 0.0f;
    const uint32_t n = 32000;
    float *l = malloc(n * sizeof *l);
    uint64_t seed = 3;
    for (uint32_t i = 0; i < n; i++)
        l[i] = t_rand_float(&seed, -10.f, 10.f);
    l[12345] = 11.f;
    eng_sampler *s = make(p, n);
    if (s) {
        CHECK(eng_sampler_sample(s, l) == 12345);
        l[20000] = 11.f; /* a tie: the lower id */
        CHECK(eng_sampler_sample(s, l) == 12345);
        l[7] = NAN; /* NaN and -inf are never picked */
        l[8] = INFINITY;
        CHECK(eng_sampler_sample(s, l) == 8);
        for (uint32_t i = 0; i < n; i++)
            l[i] = -INFINITY;
        CHECK(eng_sampler_sample(s, l) == -1);
    }
    eng_sampler_destroy(s);
    free(l);
}

/* Temperature 1, no filters: the draw follows softmax(logits) (5 sigma of 40000 draws). */
static void test_distribution(void)
{
    const float l[4] = {1.0f, 2.0f, 0.0f, 2.0f};
    double want[4], sum = 0, freq[4];
    for (int i = 0; i < 4; i++)
        sum += want[i] = exp(l[i]);
    eng_sampler_params p = off();
    p.seed = 42;
    eng_sampler *s = make(p, 4);
    if (!s)
        return;
    const int draws = 40000;
    histogram(s, l, 4, draws, freq);
    for (int i = 0; i < 4; i++) {
        double q = want[i] / sum, sigma = sqrt(q * (1 - q) / draws);
        CHECK_MSG(fabs(freq[i] - q) < 5 * sigma, "token %d: %.4f, want %.4f", i, freq[i], q);
    }
    /* temperature 0.5 sharpens: softmax(2·logits) */
    eng_sampler_destroy(s);
    p.temperature = 0.5f;
    s = make(p, 4);
    histogram(s, l, 4, draws, freq);
    sum = 0;
    for (int i = 0; i < 4; i++)
        sum += want[i] = exp(2 * l[i]);
    for (int i = 0; i < 4; i++) {
        double q = want[i] / sum, sigma = sqrt(q * (1 - q) / draws);
        CHECK_MSG(fabs(freq[i] - q) < 5 * sigma + 1e-9, "T=0.5 token %d: %.4f, want %.4f", i,
                  freq[i], q);
    }
    eng_sampler_destroy(s);
}

static void test_filters(void)
{
    /* probabilities at T=1: 0.5, 0.25, 0.125, 0.0625, 0.0625 */
    const float l[5] = {(float)log(8), (float)log(4), (float)log(2), 0.0f, 0.0f};
    double freq[5];
    eng_sampler_params p = off();
    p.top_k = 2;
    eng_sampler *s = make(p, 5);
    histogram(s, l, 5, 20000, freq);
    CHECK(freq[2] == 0 && freq[3] == 0 && freq[4] == 0 && fabs(freq[0] - 2.0 / 3) < 0.02);
    eng_sampler_destroy(s);

    p = off();
    p.top_p = 0.8f; /* 0.5 + 0.25 < 0.8 ≤ + 0.125: three tokens */
    s = make(p, 5);
    histogram(s, l, 5, 20000, freq);
    CHECK(freq[2] > 0 && freq[3] == 0 && freq[4] == 0);
    eng_sampler_destroy(s);

    p = off();
    p.min_p = 0.3f; /* keeps p ≥ 0.15: the first two */
    s = make(p, 5);
    histogram(s, l, 5, 20000, freq);
    CHECK(freq[1] > 0 && freq[2] == 0 && freq[3] == 0);
    eng_sampler_destroy(s);

    p = off();
    p.top_k = 1; /* top-k 1 is greedy */
    s = make(p, 5);
    histogram(s, l, 5, 1000, freq);
    CHECK(fabs(freq[0] - 1.0) < 1e-9);
    eng_sampler_destroy(s);

    /* top-k on a large vocabulary keeps exactly the k best */
    const uint32_t n = 50000;
    float *big = malloc(n * sizeof *big);
    uint64_t seed = 9;
    for (uint32_t i = 0; i < n; i++)
        big[i] = t_rand_float(&seed, -5.f, 5.f);
    float kth[41];
    int have = 0;
    /* the 40th best logit, by brute force */
    for (int k = 0; k < 40; k++) {
        float best = -INFINITY;
        for (uint32_t i = 0; i < n; i++) {
            bool used = false;
            for (int j = 0; j < have; j++)
                used |= big[i] == kth[j];
            if (!used && big[i] > best)
                best = big[i];
        }
        kth[have++] = best;
    }
    p = off();
    p.top_k = 40;
    p.temperature = 5.0f; /* flat: every kept token shows up */
    s = make(p, n);
    int outside = 0;
    for (int i = 0; i < 5000 && s; i++) {
        int32_t t = eng_sampler_sample(s, big);
        outside += big[t] < kth[39];
    }
    CHECK(outside == 0);
    eng_sampler_destroy(s);
    free(big);
}

static void test_seed_and_reset(void)
{
    float l[100];
    uint64_t seed = 5;
    for (int i = 0; i < 100; i++)
        l[i] = t_rand_float(&seed, -2.f, 2.f);
    eng_sampler_params p = eng_sampler_params_default();
    p.seed = 1234;
    eng_sampler *a = make(p, 100), *b = make(p, 100);
    int32_t first[50];
    int same = 0;
    for (int i = 0; a && b && i < 50; i++) {
        first[i] = eng_sampler_sample(a, l);
        same += first[i] == eng_sampler_sample(b, l);
    }
    CHECK(same == 50);
    eng_sampler_reset(a);
    int again = 0;
    for (int i = 0; a && i < 50; i++)
        again += eng_sampler_sample(a, l) == first[i];
    CHECK(again == 50);
    eng_sampler_destroy(b);
    p.seed = 99;
    b = make(p, 100);
    int differ = 0;
    for (int i = 0; b && i < 50; i++)
        differ += eng_sampler_sample(b, l) != first[i];
    CHECK(differ > 0);
    eng_sampler_destroy(a);
    eng_sampler_destroy(b);
}

static void test_repeat_penalty(void)
{
    float l[4] = {3.0f, 2.9f, -1.0f, -1.1f};
    eng_sampler_params p = off();
    p.temperature = 0.0f;
    p.repeat_penalty = 1.5f;
    p.repeat_last_n = 2;
    eng_sampler *s = make(p, 4);
    if (!s)
        return;
    eng_sampler_accept(s, 0); /* 3.0 → 2.0: token 1 wins */
    CHECK(eng_sampler_sample(s, l) == 1);
    eng_sampler_accept(s, 1);
    eng_sampler_accept(s, 1); /* window of 2 now holds {1, 1}: token 0 is free again */
    CHECK(eng_sampler_sample(s, l) == 0);
    l[0] = -1.05f, l[1] = -5.f; /* negative logits are multiplied: -1.05 stays above -1.1·... */
    eng_sampler_reset(s);
    eng_sampler_accept(s, 2); /* -1.0 → -1.5, below -1.05 and -1.1 */
    CHECK(eng_sampler_sample(s, l) == 0);
    eng_sampler_accept(s, 99999); /* out-of-vocabulary ids are ignored */
    eng_sampler_destroy(s);
}

/* The best `cut` valid logits of row[n] (or every valid one) by vkb_ref_top_logits, the
 * reference the GPU's selection is held to: into sorted in ascending id order, and into
 * shuffled in any order and then a padding entry as the GPU writes it. Returns how many
 * (without the padding). */
static uint32_t best_of(const float *row, uint32_t n, uint32_t cut, eng_candidate *sorted,
                        eng_candidate *shuffled, uint64_t *rng)
{
    vkb_top_logit *top = malloc((size_t)cut * sizeof *top);
    int64_t got = top ? vkb_ref_top_logits(row, n, cut, top) : -1;
    CHECK_MSG(got >= 0, "best_of: out of memory");
    uint32_t k = got > 0 ? (uint32_t)got : 0;
    for (uint32_t i = 0; i < k; i++)
        sorted[i] = shuffled[i] = (eng_candidate){top[i].id, top[i].logit};
    free(top);
    for (uint32_t i = k; i-- > 1;) {
        uint32_t j = (uint32_t)(t_rand_u64(rng) % (i + 1));
        eng_candidate t = shuffled[i];
        shuffled[i] = shuffled[j];
        shuffled[j] = t;
    }
    shuffled[k] = (eng_candidate){-1, NAN};
    return k;
}

/* Sampling from the best eng_sampler_best_needed logits draws exactly the tokens that
 * sampling from the whole row draws, for every filter and penalty setting the cut
 * supports: two samplers of one seed (and the host's selection of the best, the same
 * set as the test's), one fed the row and one its best, take the same
 * token at every step. Each configuration's rows vary a little around one row, and the
 * history takes a token from the best at every step, so that the penalty reaches deep
 * into the top (more than half a window of 64 penalized there); rows with long runs of ties, NaN
 * and -inf, and fewer valid logits than the cut. */
static void test_best(void)
{
    enum { N = 600 };
    static const float temps[] = {0.f, 0.4f, 0.8f, 1.7f};
    static const int32_t top_ks[] = {1, 7, 40, 700};
    static const float top_ps[] = {1.f, 0.9f, 0.5f};
    static const float min_ps[] = {0.f, 0.05f, 0.3f};
    static const float penalties[] = {1.f, 1.1f, 1.6f, 4.f};
    static const int32_t windows[] = {0, 3, 64};
    float *row = malloc(N * sizeof *row), *base = malloc(N * sizeof *base);
    eng_candidate *best = malloc((N + 1) * sizeof *best), *host = malloc(N * sizeof *host),
                  *sorted = malloc(N * sizeof *sorted);
    uint64_t rng = 77;
    int steps = 0, configs = 0, compared = 0, near = 0;
    int32_t ring[64], ring_a[64];
    for (size_t ti = 0; ti < 4 && row && base && best && host && sorted; ti++)
        for (size_t ki = 0; ki < 4; ki++)
            for (size_t pi = 0; pi < 4; pi++) {
                eng_sampler_params p = eng_sampler_params_default();
                p.temperature = temps[ti];
                p.top_k = top_ks[ki];
                p.top_p = top_ps[(ti + ki) % 3];
                p.min_p = min_ps[(ki + pi) % 3];
                p.repeat_penalty = penalties[pi];
                p.repeat_last_n = windows[(ti + pi) % 3];
                p.seed = 1000 + configs;
                uint32_t need = eng_sampler_best_needed(&p);
                CHECK_MSG(need > 0, "temp %g top-k %d penalty %g: no cut", p.temperature, p.top_k,
                          p.repeat_penalty);
                /* c follows a as a sampler on the GPU would: the draw ahead, the float
                 * reference's pick (vkb_op_sample_feed's), then eng_sampler_took */
                eng_sampler *a = make(p, N), *b = make(p, N), *c = make(p, N);
                vkb_sample_params vp = {
                    p.temperature,    (uint32_t)p.top_k,
                    p.top_p,          p.min_p,
                    p.repeat_penalty, p.repeat_penalty != 1.f ? (uint32_t)p.repeat_last_n : 0};
                configs++;
                for (uint32_t i = 0; i < N; i++)
                    base[i] = t_rand_float(&rng, -6.f, 6.f);
                for (int step = 0; a && b && c && step < 40; step++) {
                    int kind = step % 4;
                    for (uint32_t i = 0; i < N; i++) {
                        float l = base[i] + t_rand_float(&rng, -0.3f, 0.3f);
                        if (kind == 1)
                            l = floorf(l) * 0.5f;
                        if (kind == 2 && i % 7 == 0)
                            l = i % 2 ? NAN : -INFINITY;
                        if (kind == 3 && i % 50 != 0)
                            l = -INFINITY; /* 12 valid */
                        row[i] = l;
                    }
                    uint32_t cut = need < N ? need : N;
                    uint32_t k = best_of(row, N, cut, sorted, best, &rng);
                    /* the host's selection (eng_best_logits): the same, by id */
                    uint32_t hn = eng_best_logits(row, N, cut, host);
                    CHECK_MSG(hn == k && memcmp(host, sorted, hn * sizeof *host) == 0,
                              "eng_best_logits: %u of the best %u, %s", hn, cut,
                              hn == k ? "another set or order" : "want every valid one");
                    /* the best shuffled, and the padding after them */
                    int32_t ta = eng_sampler_sample(a, row),
                            tb = eng_sampler_sample_best(b, best, k + 1);
                    CHECK_MSG(ta == tb,
                              "temp %g top-k %d top-p %g min-p %g penalty %g window %d, step %d: "
                              "the whole row gave %d, its best %u gave %d",
                              p.temperature, p.top_k, p.top_p, p.min_p, p.repeat_penalty,
                              p.repeat_last_n, step, ta, need, tb);
                    steps++;
                    if (k + 1 <= VKB_SAMPLE_MAX) {
                        uint32_t at, len = eng_sampler_history(c, ring, &at);
                        double margin;
                        int32_t tc = vkb_ref_sample((const vkb_top_logit *)best, k + 1, ring, len,
                                                    &vp, eng_sampler_draw_ahead(c, 0), &margin);
                        near += margin < 1e-4;
                        CHECK_MSG(margin < 1e-4 || tc == ta,
                                  "temp %g top-k %d top-p %g min-p %g penalty %g window %d, step "
                                  "%d: the float reference gave %d, the host %d (margin %.3g)",
                                  p.temperature, p.top_k, p.top_p, p.min_p, p.repeat_penalty,
                                  p.repeat_last_n, step, tc, ta, margin);
                        compared++;
                    }
                    eng_sampler_took(c, ta);
                    /* the history: what was sampled, and a token from the top */
                    int32_t top = best[(uint32_t)(t_rand_u64(&rng) % (k ? k : 1))].id;
                    int32_t took[2] = {ta, top};
                    for (int h = 0; h < 2; h++) {
                        eng_sampler_accept(a, took[h]);
                        eng_sampler_accept(b, took[h]);
                    }
                    eng_sampler_accept(c, top);
                    uint32_t at_a, at_c, len_a = eng_sampler_history(a, ring_a, &at_a),
                                         len_c = eng_sampler_history(c, ring, &at_c);
                    CHECK_MSG(eng_sampler_draw_ahead(a, 0) == eng_sampler_draw_ahead(c, 0) &&
                                  eng_sampler_draw_ahead(a, 3) == eng_sampler_draw_ahead(c, 3) &&
                                  len_a == len_c && at_a == at_c &&
                                  memcmp(ring_a, ring, len_a * sizeof *ring) == 0,
                              "step %d: eng_sampler_took left another state than sample and "
                              "accept",
                              step);
                }
                eng_sampler_destroy(a);
                eng_sampler_destroy(b);
                eng_sampler_destroy(c);
            }
    CHECK(steps == 64 * 40);
    fprintf(stderr, "  the float reference against the host: %d picks, %d within 1e-4 of an edge\n",
            compared, near);
    CHECK(compared >= 48 * 40 && near < compared / 10);
    /* no cut: top-k off at a temperature, a penalty that raises recent tokens */
    eng_sampler_params p = eng_sampler_params_default();
    CHECK(eng_sampler_best_needed(&p) == 40);
    p.repeat_penalty = 1.1f;
    CHECK(eng_sampler_best_needed(&p) == 40 + 64);
    p.temperature = 0.f;
    CHECK(eng_sampler_best_needed(&p) == 1 + 64);
    p.top_k = 0;
    CHECK(eng_sampler_best_needed(&p) == 1 + 64);
    p.temperature = 0.8f;
    CHECK(eng_sampler_best_needed(&p) == 0);
    p.top_k = 40, p.repeat_penalty = 0.9f;
    CHECK(eng_sampler_best_needed(&p) == 0);
    eng_sampler *s = make(p, N);
    if (s && best)
        CHECK(eng_sampler_sample_best(s, best, 1) == -1);
    eng_sampler_destroy(s);
    free(row);
    free(base);
    free(best);
    free(host);
    free(sorted);
}

static void test_bad_params(void)
{
    static const struct {
        const char *field;
        eng_sampler_params p;
    } bad[] = {
        {"temperature", {.temperature = -1.f, .top_p = 1.f, .repeat_penalty = 1.f}},
        {"top-k", {.top_k = -3, .top_p = 1.f, .repeat_penalty = 1.f}},
        {"top-p", {.top_p = 0.f, .repeat_penalty = 1.f}},
        {"top-p", {.top_p = 1.5f, .repeat_penalty = 1.f}},
        {"min-p", {.min_p = -0.1f, .top_p = 1.f, .repeat_penalty = 1.f}},
        {"penalty", {.top_p = 1.f, .repeat_penalty = 0.f}},
        {"window", {.top_p = 1.f, .repeat_penalty = 1.f, .repeat_last_n = -1}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[128] = "";
        eng_sampler *s = eng_sampler_create(&bad[i].p, 10, err, sizeof err);
        CHECK_MSG(!s && strstr(err, bad[i].field), "%s: \"%s\"", bad[i].field, err);
        eng_sampler_destroy(s);
    }
    eng_sampler_params p = eng_sampler_params_default();
    char err[128];
    CHECK(!eng_sampler_create(&p, 0, err, sizeof err) && strstr(err, "0 tokens"));
    eng_sampler_destroy(NULL);
}

int main(int argc, char **argv)
{
    static const t_case cases[] = {
        {"greedy", test_greedy, false},
        {"distribution", test_distribution, false},
        {"filters", test_filters, false},
        {"seed_and_reset", test_seed_and_reset, false},
        {"repeat_penalty", test_repeat_penalty, false},
        {"best", test_best, false},
        {"bad_params", test_bad_params, false},
    };
    return t_main(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
}
