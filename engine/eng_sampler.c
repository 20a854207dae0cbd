/* Token sampler: penalties, top-k, top-p, min-p, temperature, seeded draw. */
#include "eng_sampler.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct eng_sampler {
    eng_sampler_params p;
    uint32_t n_vocab;
    uint64_t rng;
    eng_candidate *cand;
    float *probs;
    int32_t *history; /* ring of repeat_last_n tokens */
    uint32_t history_len, history_at;
    uint8_t *seen; /* n_vocab flags, for penalizing each token once */
};

eng_sampler_params eng_sampler_params_default(void)
{
    return (eng_sampler_params){.temperature = 0.8f,
                                .top_k = 40,
                                .top_p = 0.95f,
                                .min_p = 0.05f,
                                .repeat_penalty = 1.0f,
                                .repeat_last_n = 64,
                                .seed = 0};
}

eng_sampler *eng_sampler_create(const eng_sampler_params *params, uint32_t n_vocab, char *err,
                                size_t err_size)
{
    const eng_sampler_params *p = params;
    const char *why = NULL;
    if (n_vocab == 0)
        why = "a vocabulary of 0 tokens";
    else if (!(p->temperature >= 0.0f) || isinf(p->temperature))
        why = "temperature must be 0 (greedy) or positive";
    else if (p->top_k < 0)
        why = "top-k must be 0 (off) or positive";
    else if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        why = "top-p must be in (0, 1]";
    else if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        why = "min-p must be in [0, 1]";
    else if (!(p->repeat_penalty > 0.0f) || isinf(p->repeat_penalty))
        why = "the repetition penalty must be positive (1 = off)";
    else if (p->repeat_last_n < 0)
        why = "the repetition window must be 0 or more tokens";
    if (why) {
        if (err && err_size)
            snprintf(err, err_size, "sampler: %s", why);
        return NULL;
    }
    eng_sampler *s = calloc(1, sizeof *s);
    if (s) {
        s->cand = malloc(n_vocab * sizeof *s->cand);
        s->probs = malloc(n_vocab * sizeof *s->probs);
        s->seen = calloc(n_vocab, 1);
        s->history = malloc(((size_t)p->repeat_last_n + 1) * sizeof *s->history);
    }
    if (!s || !s->cand || !s->probs || !s->seen || !s->history) {
        eng_sampler_destroy(s);
        if (err && err_size)
            snprintf(err, err_size, "sampler: out of host memory");
        return NULL;
    }
    s->p = *p;
    s->n_vocab = n_vocab;
    eng_sampler_reset(s);
    return s;
}

void eng_sampler_destroy(eng_sampler *s)
{
    if (!s)
        return;
    free(s->cand);
    free(s->probs);
    free(s->seen);
    free(s->history);
    free(s);
}

void eng_sampler_reset(eng_sampler *s)
{
    s->history_len = s->history_at = 0;
    s->rng = s->p.seed;
}

void eng_sampler_accept(eng_sampler *s, int32_t token)
{
    uint32_t cap = (uint32_t)s->p.repeat_last_n;
    if (cap == 0 || token < 0 || (uint32_t)token >= s->n_vocab)
        return;
    s->history[s->history_at] = token;
    s->history_at = (s->history_at + 1) % cap;
    if (s->history_len < cap)
        s->history_len++;
}

#define RNG_STEP 0x9e3779b97f4a7c15ull

/* splitmix64's output for a state: the generator adds RNG_STEP to its state per draw. */
static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A double in [0, 1) from the next output's top 53 bits. */
static double uniform(eng_sampler *s)
{
    return (double)(mix(s->rng += RNG_STEP) >> 11) * 0x1p-53;
}

float eng_sampler_draw_ahead(const eng_sampler *s, uint32_t j)
{
    return (float)(mix(s->rng + (j + 1ull) * RNG_STEP) >> 40) * 0x1p-24f;
}

void eng_sampler_took(eng_sampler *s, int32_t token)
{
    if (token >= 0 && s->p.temperature > 0.0f)
        s->rng += RNG_STEP;
    eng_sampler_accept(s, token);
}

const eng_sampler_params *eng_sampler_get_params(const eng_sampler *s)
{
    return &s->p;
}

uint32_t eng_sampler_history(const eng_sampler *s, int32_t *out, uint32_t *at)
{
    memcpy(out, s->history, (size_t)s->p.repeat_last_n * sizeof *out);
    *at = s->history_at;
    return s->history_len;
}

/* Descending logit, then ascending id: a total order, so results do not depend on qsort. */
static int by_logit(const void *a, const void *b)
{
    const eng_candidate *x = a, *y = b;
    if (x->logit != y->logit)
        return x->logit < y->logit ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Moves the k best candidates to the front (any order): a heap of the k best so far,
 * its worst at the root; O(n log k). */
static void heap_down(eng_candidate *h, uint32_t k, uint32_t i)
{
    for (;;) {
        uint32_t w = i, l = 2 * i + 1, r = l + 1;
        if (l < k && by_logit(&h[l], &h[w]) > 0)
            w = l;
        if (r < k && by_logit(&h[r], &h[w]) > 0)
            w = r;
        if (w == i)
            return;
        eng_candidate t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

/* h[0..k) made a heap of the k best so far, then c offered to it (c replaces the worst
 * where it is better). */
static void heap_make(eng_candidate *h, uint32_t k)
{
    for (uint32_t i = k / 2; i-- > 0;)
        heap_down(h, k, i);
}

static void heap_offer(eng_candidate *h, uint32_t k, eng_candidate c)
{
    if (by_logit(&c, &h[0]) < 0) {
        h[0] = c;
        heap_down(h, k, 0);
    }
}

static void select_top(eng_candidate *c, uint32_t n, uint32_t k)
{
    heap_make(c, k);
    for (uint32_t i = k; i < n; i++)
        heap_offer(c, k, c[i]);
}

static bool valid_logit(float l)
{
    return !isnan(l) && !(isinf(l) && l < 0);
}

static int by_id(const void *a, const void *b)
{
    const eng_candidate *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

uint32_t eng_best_logits(const float *logits, uint32_t n_vocab, uint32_t n, eng_candidate *out)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < n_vocab && n; i++) {
        if (!valid_logit(logits[i]))
            continue;
        eng_candidate c = {(int32_t)i, logits[i]};
        if (k < n) {
            out[k++] = c;
            if (k == n)
                heap_make(out, n);
        } else {
            heap_offer(out, n, c);
        }
    }
    qsort(out, k, sizeof *out, by_id);
    return k;
}

uint32_t eng_sampler_best_needed(const eng_sampler_params *p)
{
    bool greedy = p->temperature <= 0.0f;
    if ((!greedy && p->top_k <= 0) || p->repeat_penalty < 1.0f)
        return 0;
    uint64_t k = greedy ? 1 : (uint64_t)p->top_k;
    if (p->repeat_penalty > 1.0f)
        k += (uint64_t)p->repeat_last_n;
    return k > UINT32_MAX ? UINT32_MAX : (uint32_t)k;
}

static int32_t sample_candidates(eng_sampler *s, uint32_t n);

int32_t eng_sampler_sample(eng_sampler *s, const float *logits)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->n_vocab; i++)
        if (valid_logit(logits[i]))
            s->cand[n++] = (eng_candidate){(int32_t)i, logits[i]};
    return sample_candidates(s, n);
}

/* The candidates are a superset of those top-k (after the penalty) keeps, so the steps
 * below see the same survivors in the same order; at temperature 0, of the best. */
int32_t eng_sampler_sample_best(eng_sampler *s, const eng_candidate *best, uint32_t n)
{
    if (eng_sampler_best_needed(&s->p) == 0)
        return -1;
    uint32_t k = 0;
    for (uint32_t i = 0; i < n && k < s->n_vocab; i++)
        if (best[i].id >= 0 && (uint32_t)best[i].id < s->n_vocab && valid_logit(best[i].logit))
            s->cand[k++] = best[i];
    return sample_candidates(s, k);
}

/* Penalty, top-k, top-p, min-p, temperature and the draw over s->cand[0..n). */
static int32_t sample_candidates(eng_sampler *s, uint32_t n)
{
    if (n == 0)
        return -1;

    /* repetition penalty: each recent token once */
    if (s->p.repeat_penalty != 1.0f && s->history_len) {
        for (uint32_t h = 0; h < s->history_len; h++)
            s->seen[s->history[h]] = 1;
        for (uint32_t i = 0; i < n; i++) {
            if (!s->seen[s->cand[i].id])
                continue;
            float *l = &s->cand[i].logit;
            *l = *l > 0 ? *l / s->p.repeat_penalty : *l * s->p.repeat_penalty;
        }
        for (uint32_t h = 0; h < s->history_len; h++)
            s->seen[s->history[h]] = 0;
    }

    if (s->p.temperature <= 0.0f) {
        eng_candidate *best = &s->cand[0];
        for (uint32_t i = 1; i < n; i++)
            if (by_logit(&s->cand[i], best) < 0)
                best = &s->cand[i];
        return best->id;
    }

    /* top-k, then everything left sorted best first */
    if (s->p.top_k > 0 && (uint32_t)s->p.top_k < n) {
        select_top(s->cand, n, (uint32_t)s->p.top_k);
        n = (uint32_t)s->p.top_k;
    }
    qsort(s->cand, n, sizeof *s->cand, by_logit);

    /* probabilities at temperature 1 for top-p and min-p */
    double max = s->cand[0].logit, sum = 0;
    for (uint32_t i = 0; i < n; i++)
        sum += s->probs[i] = (float)exp(s->cand[i].logit - max);
    if (s->p.top_p < 1.0f) {
        double cum = 0;
        for (uint32_t i = 0; i < n; i++) {
            cum += s->probs[i] / sum;
            if (cum >= s->p.top_p) {
                n = i + 1;
                break;
            }
        }
    }
    if (s->p.min_p > 0.0f) {
        uint32_t keep = 1; /* probs[0] is the largest, 1 before normalizing */
        while (keep < n && s->probs[keep] >= s->p.min_p)
            keep++;
        n = keep;
    }

    /* temperature and the draw */
    sum = 0;
    for (uint32_t i = 0; i < n; i++)
        sum += s->probs[i] = (float)exp((s->cand[i].logit - max) / s->p.temperature);
    double r = uniform(s) * sum, acc = 0;
    for (uint32_t i = 0; i < n; i++) {
        acc += s->probs[i];
        if (r < acc)
            return s->cand[i].id;
    }
    return s->cand[n - 1].id;
}
