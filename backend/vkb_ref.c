/* Plain-C references of the ops: double arithmetic, one rounding at the end. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmp_half.h"
#include "cmp_kivi.h"
#include "vkb_internal.h"
#include "vkb_ref.h"

bool vkb_ref_matmul(cmp_type type, const void *w, uint32_t rows, uint32_t k, const float *x,
                    float *out, uint32_t n)
{
    size_t rb = cmp_row_bytes(type, k);
    float *row = malloc((size_t)k * sizeof *row);
    if (!rb || !row) {
        free(row);
        return false;
    }
    for (uint32_t r = 0; r < rows; r++) {
        if (!cmp_dequantize(type, (const uint8_t *)w + (size_t)r * rb, row, k)) {
            free(row);
            return false;
        }
        for (uint32_t c = 0; c < n; c++) {
            const float *xc = x + (size_t)c * k;
            double acc = 0.0;
            for (uint32_t i = 0; i < k; i++)
                acc += (double)row[i] * xc[i];
            out[(size_t)c * rows + r] = (float)acc;
        }
    }
    free(row);
    return true;
}

/* x / d rounded to nearest, ties to even, as quantize_q8.comp decides it: exact
 * comparisons with the midpoints (q ± ½)·d (d has 11 significant bits). */
static int q8_nearest(float x, float d, float id)
{
    float q = rintf(x * id);
    float hi = (q + 0.5f) * d, lo = (q - 0.5f) * d;
    if (x > hi || (x == hi && fmodf(q, 2.0f) != 0.0f))
        q += 1.0f;
    else if (x < lo || (x == lo && fmodf(q, 2.0f) != 0.0f))
        q -= 1.0f;
    return q > 127.0f ? 127 : q < -127.0f ? -127 : (int)q;
}

void vkb_ref_quantize_q8(const float *x, uint32_t k, uint32_t ncols, uint32_t *xq)
{
    size_t n = (size_t)ncols * (k / 32);
    uint32_t *ds = xq + 8 * n; /* d and s of each block follow all the bytes */
    for (size_t b = 0; b < n; b++) {
        const float *v = x + 32 * b;
        uint32_t *o = xq + 8 * b;
        float amax = 0.0f;
        for (int i = 0; i < 32; i++)
            amax = fmaxf(amax, fabsf(v[i]));
        float d = cmp_f16_to_f32(cmp_f32_to_f16(amax * (1.0f / 127.0f)));
        float id = d > 0.0f ? 1.0f / d : 0.0f;
        int sum = 0;
        memset(o, 0, 32);
        for (int i = 0; i < 32; i++) {
            int q = d > 0.0f ? q8_nearest(v[i], d, id) : 0;
            sum += q;
            o[i / 4] |= (uint32_t)(q & 255) << (8 * (i % 4));
        }
        float s = d * (float)sum;
        memcpy(&ds[2 * b], &d, 4);
        memcpy(&ds[2 * b + 1], &s, 4);
    }
}

void vkb_ref_dequantize_q8(const uint32_t *xq, uint32_t k, uint32_t ncols, float *x)
{
    size_t n = (size_t)ncols * (k / 32);
    for (size_t b = 0; b < n; b++) {
        const uint32_t *o = xq + 8 * b;
        float d;
        memcpy(&d, &xq[8 * n + 2 * b], 4);
        for (int i = 0; i < 32; i++) {
            int q = (int)((o[i / 4] >> (8 * (i % 4))) & 255);
            x[32 * b + i] = (float)(q >= 128 ? q - 256 : q) * d;
        }
    }
}

bool vkb_ref_get_rows(cmp_type type, const void *w, uint32_t rows, uint32_t k, const uint32_t *ids,
                      uint32_t n_ids, float *out)
{
    size_t rb = cmp_row_bytes(type, k);
    if (!rb)
        return false;
    for (uint32_t i = 0; i < n_ids; i++)
        if (ids[i] < rows &&
            !cmp_dequantize(type, (const uint8_t *)w + (size_t)ids[i] * rb, out + (size_t)i * k, k))
            return false;
    return true;
}

void vkb_ref_add(float *out, const float *a, const float *b, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}

void vkb_ref_add_bias(float *out, const float *x, const float *bias, uint32_t n, uint32_t rows)
{
    for (uint64_t r = 0; r < rows; r++)
        for (uint32_t i = 0; i < n; i++)
            out[r * n + i] = x[r * n + i] + bias[i];
}

/* Value c of position p while storing x (positions p0 ...) into a KIVI cache: from x,
 * or for older positions from the f16 window ring. */
static float kivi_source(const vkb_kv_layout *l, const vkb_kv_geometry *g, const uint16_t *ring,
                         uint32_t p0, const float *x, uint32_t p, uint32_t c)
{
    if (p >= p0)
        return x[(size_t)(p - p0) * l->values + c];
    return cmp_f16_to_f32(ring[(size_t)(p % g->ring_rows) * l->values + c]);
}

static bool kivi_store(const vkb_kv_layout *l, const vkb_kv_geometry *g, void *cache, uint32_t row0,
                       const float *x, uint32_t rows)
{
    uint32_t *words = cache, G = l->group, n = l->values;
    uint16_t *ring = cache;
    uint32_t q0 = vkb_kv_quantized(l, row0), q1 = vkb_kv_quantized(l, row0 + rows);
    uint64_t store = g->store / 4, stride = g->stride / 4, per = G * g->bits / 32;
    float *tmp = malloc(sizeof *tmp * G);
    if (!tmp)
        return false;
    for (uint32_t p = q0; l->keys && p < q1; p += G)
        for (uint32_t c = 0; c < n; c++) {
            uint32_t *blk = words + store + (uint64_t)(p / G) * stride;
            for (uint32_t i = 0; i < G; i++)
                tmp[i] = kivi_source(l, g, ring, row0, x, p + i, c);
            cmp_kivi_quantize(tmp, 1, G, g->bits, blk + c, blk + n + c * per);
        }
    for (uint32_t p = q0; !l->keys && p < q1; p++)
        for (uint32_t c = 0; c < n; c += G) {
            uint32_t *row = words + store + (uint64_t)p * stride;
            for (uint32_t i = 0; i < G; i++)
                tmp[i] = kivi_source(l, g, ring, row0, x, p, c + i);
            cmp_kivi_quantize(tmp, 1, G, g->bits, row + c / G, row + n / G + c / G * per);
        }
    free(tmp);
    for (uint32_t p = q1 > row0 ? q1 : row0; p < row0 + rows; p++)
        for (uint32_t c = 0; c < n; c++)
            ring[(size_t)(p % g->ring_rows) * n + c] =
                cmp_f32_to_f16(x[(size_t)(p - row0) * n + c]);
    return true;
}

bool vkb_ref_kv_store(const vkb_kv_layout *l, void *cache, uint32_t row0, const float *x,
                      uint32_t rows)
{
    vkb_kv_geometry g;
    if (!vkb_kv_geometry_of(l, &g, NULL, 0) || (uint64_t)row0 + rows > l->n_ctx)
        return false;
    if (g.bits)
        return kivi_store(l, &g, cache, row0, x, rows);
    for (uint32_t r = 0; r < rows; r++)
        if (!cmp_quantize(vkb_kv_block_type(l->type), x + (size_t)r * l->values,
                          (uint8_t *)cache + (uint64_t)(row0 + r) * g.stride, l->values))
            return false;
    return true;
}

bool vkb_ref_kv_read(const vkb_kv_layout *l, const void *cache, uint32_t n, float *out)
{
    vkb_kv_geometry g;
    if (!vkb_kv_geometry_of(l, &g, NULL, 0) || n > l->n_ctx)
        return false;
    uint32_t nq = vkb_kv_quantized(l, n), G = l->group, v = l->values;
    const uint32_t *words = cache;
    const uint16_t *ring = cache;
    uint64_t store = g.store / 4, stride = g.stride / 4, per = G * g.bits / 32;
    for (uint32_t p = 0; p < n; p++) {
        float *o = out + (size_t)p * v;
        if (!g.bits) {
            if (!cmp_dequantize(vkb_kv_block_type(l->type), (const uint8_t *)cache + p * g.stride,
                                o, v))
                return false;
        } else if (p >= nq) {
            for (uint32_t c = 0; c < v; c++)
                o[c] = cmp_f16_to_f32(ring[(size_t)(p % g.ring_rows) * v + c]);
        } else if (l->keys) {
            const uint32_t *blk = words + store + (uint64_t)(p / G) * stride;
            for (uint32_t c = 0; c < v; c++)
                o[c] = cmp_kivi_value(blk[c], blk + v + c * per, p % G, g.bits);
        } else {
            const uint32_t *row = words + store + (uint64_t)p * stride;
            for (uint32_t c = 0; c < v; c++)
                o[c] = cmp_kivi_value(row[c / G], row + v / G + c / G * per, c % G, g.bits);
        }
    }
    return true;
}

bool vkb_ref_attention_kv(float *out, const float *q, const void *k_cache, const vkb_kv_layout *kl,
                          const void *v_cache, const vkb_kv_layout *vl,
                          const vkb_attention_shape *sh)
{
    uint32_t hd = sh->head_dim, group = sh->heads / sh->kv_heads;
    uint64_t row = (uint64_t)sh->kv_heads * hd; /* values per cache position */
    /* the cache dequantized, position by position */
    float *kf = malloc(sizeof *kf * row * sh->n_kv), *vf = malloc(sizeof *vf * row * sh->n_kv);
    double *w = malloc(sizeof *w * sh->n_kv), *acc = malloc(sizeof *acc * hd);
    bool ok = kf && vf && w && acc && kl->values == row && vl->values == row &&
              vkb_ref_kv_read(kl, k_cache, sh->n_kv, kf) &&
              vkb_ref_kv_read(vl, v_cache, sh->n_kv, vf);
    for (uint32_t t = 0; ok && t < sh->tokens; t++) {
        uint32_t limit = sh->pos0 + t + 1 < sh->n_kv ? sh->pos0 + t + 1 : sh->n_kv;
        uint32_t lo = vkb_attention_first_key(sh, sh->pos0 + t);
        for (uint32_t h = 0; h < sh->heads; h++) {
            const float *qh = q + ((uint64_t)t * sh->heads + h) * hd;
            uint64_t g_at = (uint64_t)(h / group) * hd;
            double mx = -INFINITY, sum = 0;
            for (uint32_t j = lo; j < limit; j++) {
                double d = 0;
                for (uint32_t i = 0; i < hd; i++)
                    d += (double)qh[i] * kf[j * row + g_at + i];
                w[j] = d * sh->scale;
                if (sh->softcap > 0.0f)
                    w[j] = sh->softcap * tanh(w[j] / sh->softcap);
                mx = w[j] > mx ? w[j] : mx;
            }
            for (uint32_t j = lo; j < limit; j++)
                sum += w[j] = exp(w[j] - mx);
            for (uint32_t i = 0; i < hd; i++)
                acc[i] = 0;
            for (uint32_t j = lo; j < limit; j++)
                for (uint32_t i = 0; i < hd; i++)
                    acc[i] += w[j] * vf[j * row + g_at + i];
            float *o = out + ((uint64_t)t * sh->heads + h) * hd;
            for (uint32_t i = 0; i < hd; i++)
                o[i] = (float)(acc[i] / sum);
        }
    }
    free(kf);
    free(vf);
    free(w);
    free(acc);
    return ok;
}

bool vkb_ref_attention(float *out, const float *q, const uint16_t *k_cache, const uint16_t *v_cache,
                       const vkb_attention_shape *sh)
{
    vkb_kv_layout l = {VKB_KV_F16, false, sh->kv_heads * sh->head_dim, sh->n_kv, 0, 0};
    return vkb_ref_attention_kv(out, q, k_cache, &l, v_cache, &l, sh);
}

void vkb_ref_rms_norm(float *out, const float *x, const float *w, uint32_t n, uint32_t rows,
                      float eps)
{
    for (uint32_t r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * n;
        double ss = 0.0;
        for (uint32_t i = 0; i < n; i++)
            ss += (double)xr[i] * xr[i];
        double scale = 1.0 / sqrt(ss / n + eps);
        for (uint32_t i = 0; i < n; i++)
            out[(size_t)r * n + i] = (float)(xr[i] * scale * w[i]);
    }
}

int32_t vkb_ref_argmax(const float *x, uint32_t n)
{
    int32_t best = -1;
    for (uint32_t i = 0; i < n; i++)
        if (!isnan(x[i]) && !(isinf(x[i]) && x[i] < 0) && (best < 0 || x[i] > x[best]))
            best = (int32_t)i;
    return best;
}

/* Highest value first (-0 equals +0), then lowest index. */
static int by_value(const void *a, const void *b)
{
    const vkb_top_logit *x = a, *y = b;
    if (x->logit != y->logit)
        return x->logit < y->logit ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

static int by_id(const void *a, const void *b)
{
    const vkb_top_logit *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

int64_t vkb_ref_top_logits(const float *x, uint32_t n, uint32_t m, vkb_top_logit *out)
{
    vkb_top_logit *all = malloc(((size_t)n + 1) * sizeof *all);
    if (!all)
        return -1;
    uint32_t valid = 0;
    for (uint32_t i = 0; i < n; i++)
        if (!isnan(x[i]) && !(isinf(x[i]) && x[i] < 0))
            all[valid++] = (vkb_top_logit){(int32_t)i, x[i]};
    qsort(all, valid, sizeof *all, by_value);
    uint32_t k = valid < m ? valid : m;
    qsort(all, k, sizeof *all, by_id);
    for (uint32_t i = 0; i < m; i++)
        out[i] = i < k ? all[i] : (vkb_top_logit){-1, NAN};
    free(all);
    return k;
}

/* A candidate of vkb_ref_sample: its logit after the penalty, and whether it took one. */
struct sample_cand {
    int32_t id;
    float logit;
    bool penalized;
};

static int by_logit_id(const void *a, const void *b)
{
    const struct sample_cand *x = a, *y = b;
    if (x->logit != y->logit)
        return x->logit < y->logit ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

static double rel_gap(float a, float b)
{
    double scale = fmax(fabs((double)a), fabs((double)b));
    return scale > 0 ? fabs((double)a - b) / scale : 0.0;
}

int32_t vkb_ref_sample(const vkb_top_logit *best, uint32_t m, const int32_t *history,
                       uint32_t history_len, const vkb_sample_params *p, float u, double *margin)
{
    double near = HUGE_VAL;
    struct sample_cand *c = malloc(((size_t)m + 1) * sizeof *c);
    float *p1 = malloc(((size_t)m + 1) * sizeof *p1), *w = malloc(((size_t)m + 1) * sizeof *w);
    int32_t pick = -1;
    if (!c || !p1 || !w) {
        pick = -2;
        goto done;
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < m; i++) {
        float v = best[i].logit;
        if (best[i].id < 0 || isnan(v) || (isinf(v) && v < 0))
            continue;
        bool seen = false;
        for (uint32_t h = 0; h < history_len && p->penalty != 1.0f && !seen; h++)
            seen = history[h] == best[i].id;
        if (seen)
            v = v > 0 ? v / p->penalty : v * p->penalty;
        c[n++] = (struct sample_cand){best[i].id, v, seen};
    }
    if (n == 0)
        goto done;
    qsort(c, n, sizeof *c, by_logit_id);
    uint32_t valid = n;
    bool greedy = p->temperature <= 0.0f;
    if (!greedy && p->top_k > 0 && p->top_k < n)
        n = p->top_k;
    /* a penalized logit computed with other rounding may trade places with a neighbour,
     * across the top-k cut too */
    for (uint32_t r = 0; r < (greedy ? 1 : n) && r + 1 < valid; r++)
        if (c[r].penalized || c[r + 1].penalized)
            near = fmin(near, rel_gap(c[r].logit, c[r + 1].logit));
    pick = c[0].id;
    if (greedy)
        goto done;
    float top = c[0].logit;
    for (uint32_t r = 0; r < n; r++) {
        float d = c[r].logit - top;
        p1[r] = expf(d);
        w[r] = expf(d / p->temperature);
    }
    if (p->top_p < 1.0f) {
        float sum = 0, cum = 0;
        for (uint32_t r = 0; r < n; r++)
            sum += p1[r];
        for (uint32_t r = 0; r < n; r++) {
            cum += p1[r] / sum;
            near = fmin(near, fabs((double)cum - p->top_p));
            if (cum >= p->top_p) {
                n = r + 1;
                break;
            }
        }
    }
    if (p->min_p > 0.0f) {
        uint32_t keep = 1;
        for (; keep < n; keep++) {
            near = fmin(near, fabs((double)p1[keep] - p->min_p) / p->min_p);
            if (!(p1[keep] >= p->min_p))
                break;
        }
        n = keep;
    }
    float sum = 0, acc = 0;
    for (uint32_t r = 0; r < n; r++)
        sum += w[r];
    float target = u * sum;
    pick = c[n - 1].id;
    for (uint32_t r = 0; r < n; r++) {
        acc += w[r];
        near = fmin(near, fabs((double)target - acc) / sum);
        if (target < acc) {
            pick = c[r].id;
            break;
        }
    }
done:
    free(c), free(p1), free(w);
    if (margin)
        *margin = near;
    return pick;
}

void vkb_ref_softmax(float *out, const float *x, const float *mask, uint32_t mask_rows, uint32_t n,
                     uint32_t rows, float scale)
{
    for (uint32_t r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * n;
        const float *mr = mask ? mask + (size_t)(r % mask_rows) * n : NULL;
        float *o = out + (size_t)r * n;
        double mx = -INFINITY;
        for (uint32_t i = 0; i < n; i++) {
            double v = (double)xr[i] * scale + (mr ? mr[i] : 0.0);
            mx = v > mx ? v : mx;
        }
        if (isinf(mx) && mx < 0) {
            memset(o, 0, (size_t)n * sizeof *o);
            continue;
        }
        double sum = 0.0;
        for (uint32_t i = 0; i < n; i++)
            sum += exp((double)xr[i] * scale + (mr ? mr[i] : 0.0) - mx);
        for (uint32_t i = 0; i < n; i++)
            o[i] = (float)(exp((double)xr[i] * scale + (mr ? mr[i] : 0.0) - mx) / sum);
    }
}

void vkb_ref_rope(float *out, const float *x, const int32_t *pos, const float *freqs,
                  const vkb_rope_shape *sh)
{
    uint32_t half = sh->rot_dims / 2;
    for (uint32_t t = 0; t < sh->tokens; t++) {
        for (uint32_t h = 0; h < sh->heads; h++) {
            size_t base = ((size_t)t * sh->heads + h) * sh->head_dim;
            memcpy(out + base, x + base, sh->head_dim * sizeof *out);
            for (uint32_t i = 0; i < half; i++) {
                /* the angle as the kernel forms it: a float product */
                float theta = (float)pos[t] * freqs[i];
                double c = cos((double)theta), s = sin((double)theta);
                uint32_t d0 = sh->neox ? i : 2 * i, d1 = sh->neox ? i + half : 2 * i + 1;
                double x0 = x[base + d0], x1 = x[base + d1];
                out[base + d0] = (float)(x0 * c - x1 * s);
                out[base + d1] = (float)(x0 * s + x1 * c);
            }
        }
    }
}

double vkb_ref_act(vkb_act act, double g)
{
    if (act == VKB_ACT_GELU) /* 2 sqrt(2/pi) (g + 0.044715 g³) */
        return g / (1.0 +
                    exp(-2.0 * sqrt(2.0 / 3.14159265358979323846) * g * (1.0 + 0.044715 * g * g)));
    return g / (1.0 + exp(-g));
}

void vkb_ref_glu_mul(vkb_act act, float *out, const float *gate, const float *up, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        out[i] = (float)(vkb_ref_act(act, gate[i]) * up[i]);
}

void vkb_ref_scale(float *out, const float *x, uint64_t n, float scale)
{
    for (uint64_t i = 0; i < n; i++)
        out[i] = x[i] * scale;
}

void vkb_ref_softcap(float *out, const float *x, uint64_t n, float cap)
{
    for (uint64_t i = 0; i < n; i++)
        out[i] = (float)(cap * tanh((double)x[i] / cap));
}
