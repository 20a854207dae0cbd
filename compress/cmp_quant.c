/* Block formats of 32 values (q4_0, q4_1, q5_0, q5_1, q8_0, iq4_nl), float types, and the
 * type table. K-quants are in cmp_quant_k.c. */
#include "cmp_quant.h"

#include <ctype.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "cmp_half.h"
#include "cmp_quant_internal.h"

const int8_t cmp_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                     1,    13,   25,  38,  53,  69,  89,  113};

static const cmp_type_info types[] = {
    {CMP_TYPE_F32, "f32", 1, 4},
    {CMP_TYPE_F16, "f16", 1, 2},
    {CMP_TYPE_Q4_0, "q4_0", CMP_QK4_0, sizeof(cmp_block_q4_0)},
    {CMP_TYPE_Q4_1, "q4_1", CMP_QK4_1, sizeof(cmp_block_q4_1)},
    {CMP_TYPE_Q5_0, "q5_0", CMP_QK5_0, sizeof(cmp_block_q5_0)},
    {CMP_TYPE_Q5_1, "q5_1", CMP_QK5_1, sizeof(cmp_block_q5_1)},
    {CMP_TYPE_Q8_0, "q8_0", CMP_QK8_0, sizeof(cmp_block_q8_0)},
    {CMP_TYPE_Q4_K, "q4_K", CMP_QK_K, sizeof(cmp_block_q4_k)},
    {CMP_TYPE_Q5_K, "q5_K", CMP_QK_K, sizeof(cmp_block_q5_k)},
    {CMP_TYPE_Q6_K, "q6_K", CMP_QK_K, sizeof(cmp_block_q6_k)},
    {CMP_TYPE_IQ4_NL, "iq4_nl", CMP_QK4_NL, sizeof(cmp_block_iq4_nl)},
    {CMP_TYPE_BF16, "bf16", 1, 2},
};

const cmp_type_info *cmp_type_get(cmp_type type)
{
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (types[i].type == type)
            return &types[i];
    return NULL;
}

const cmp_type_info *cmp_type_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof types / sizeof types[0]; i++) {
        const char *a = types[i].name, *b = name;
        while (*a && *b && tolower((unsigned char)*a) == tolower((unsigned char)*b))
            a++, b++;
        if (!*a && !*b)
            return &types[i];
    }
    return NULL;
}

const cmp_type_info *cmp_type_list(size_t *count)
{
    *count = sizeof types / sizeof types[0];
    return types;
}

size_t cmp_row_bytes(cmp_type type, uint64_t n)
{
    const cmp_type_info *t = cmp_type_get(type);
    if (!t || n % t->block_size != 0)
        return 0;
    return (size_t)(n / t->block_size * t->block_bytes);
}

/* ---- 32-value blocks: dequantize ---------------------------------------------------- */

/* q4_0: x = (q - 8) · d */
static void dq_q4_0(const cmp_block_q4_0 *b, float *y, uint64_t nb)
{
    for (uint64_t i = 0; i < nb; i++, y += 32) {
        float d = cmp_f16_to_f32(b[i].d);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)((b[i].qs[j] & 0xf) - 8) * d;
            y[j + 16] = (float)((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

/* q4_1: x = q · d + m */
static void dq_q4_1(const cmp_block_q4_1 *b, float *y, uint64_t nb)
{
    for (uint64_t i = 0; i < nb; i++, y += 32) {
        float d = cmp_f16_to_f32(b[i].d), m = cmp_f16_to_f32(b[i].m);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)(b[i].qs[j] & 0xf) * d + m;
            y[j + 16] = (float)(b[i].qs[j] >> 4) * d + m;
        }
    }
}

static uint32_t load_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* q5_0: x = (q - 16) · d, q = low nibble | fifth bit << 4 */
static void dq_q5_0(const cmp_block_q5_0 *b, float *y, uint64_t nb)
{
    for (uint64_t i = 0; i < nb; i++, y += 32) {
        float d = cmp_f16_to_f32(b[i].d);
        uint32_t qh = load_u32(b[i].qh);
        for (int j = 0; j < 16; j++) {
            int q0 = (b[i].qs[j] & 0xf) | (int)((qh >> j) & 1u) << 4;
            int q1 = (b[i].qs[j] >> 4) | (int)((qh >> (j + 16)) & 1u) << 4;
            y[j] = (float)(q0 - 16) * d;
            y[j + 16] = (float)(q1 - 16) * d;
        }
    }
}

/* q5_1: x = q · d + m */
static void dq_q5_1(const cmp_block_q5_1 *b, float *y, uint64_t nb)
{
    for (uint64_t i = 0; i < nb; i++, y += 32) {
        float d = cmp_f16_to_f32(b[i].d), m = cmp_f16_to_f32(b[i].m);
        uint32_t qh = load_u32(b[i].qh);
        for (int j = 0; j < 16; j++) {
            int q0 = (b[i].qs[j] & 0xf) | (int)((qh >> j) & 1u) << 4;
            int q1 = (b[i].qs[j] >> 4) | (int)((qh >> (j + 16)) & 1u) << 4;
            y[j] = (float)q0 * d + m;
            y[j + 16] = (float)q1 * d + m;
        }
    }
}

/* q8_0: x = q · d */
static void dq_q8_0(const cmp_block_q8_0 *b, float *y, uint64_t nb)
{
    for (uint64_t i = 0; i < nb; i++, y += 32) {
        float d = cmp_f16_to_f32(b[i].d);
        for (int j = 0; j < 32; j++)
            y[j] = (float)b[i].qs[j] * d;
    }
}

/* iq4_nl: x = d · level[q] */
static void dq_iq4_nl(const cmp_block_iq4_nl *b, float *y, uint64_t nb)
{
    for (uint64_t i = 0; i < nb; i++, y += 32) {
        float d = cmp_f16_to_f32(b[i].d);
        for (int j = 0; j < 16; j++) {
            y[j] = d * (float)cmp_iq4nl_values[b[i].qs[j] & 0xf];
            y[j + 16] = d * (float)cmp_iq4nl_values[b[i].qs[j] >> 4];
        }
    }
}

/* ---- 32-value blocks: quantize ------------------------------------------------------ */

/* The value of largest magnitude (keeping its sign), for the symmetric formats. */
static float signed_absmax(const float *x, int n)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++) {
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}

static void min_max(const float *x, int n, float *lo, float *hi)
{
    *lo = FLT_MAX;
    *hi = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        if (x[j] < *lo)
            *lo = x[j];
        if (x[j] > *hi)
            *hi = x[j];
    }
}

static int clamp_int(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* q4_0: d = max / -8 puts the largest magnitude on level 0 (−8); the rest round to nearest */
static void q_q4_0(const float *x, cmp_block_q4_0 *b, uint64_t nb)
{
    for (uint64_t i = 0; i < nb; i++, x += 32) {
        float d = signed_absmax(x, 32) / -8.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = cmp_f32_to_f16(d);
        for (int j = 0; j < 16; j++) {
            int q0 = clamp_int((int)(x[j] * id + 8.5f), 0, 15);
            int q1 = clamp_int((int)(x[j + 16] * id + 8.5f), 0, 15);
            b[i].qs[j] = (uint8_t)(q0 | q1 << 4);
        }
    }
}

static void q_q4_1(const float *x, cmp_block_q4_1 *b, uint64_t nb)
{
    for (uint64_t i = 0; i < nb; i++, x += 32) {
        float lo, hi;
        min_max(x, 32, &lo, &hi);
        float d = (hi - lo) / 15.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = cmp_f32_to_f16(d);
        b[i].m = cmp_f32_to_f16(lo);
        for (int j = 0; j < 16; j++) {
            int q0 = clamp_int((int)((x[j] - lo) * id + 0.5f), 0, 15);
            int q1 = clamp_int((int)((x[j + 16] - lo) * id + 0.5f), 0, 15);
            b[i].qs[j] = (uint8_t)(q0 | q1 << 4);
        }
    }
}

static void store_u32(uint8_t *p, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        p[k] = (uint8_t)(v >> (8 * k));
}

static void q_q5_0(const float *x, cmp_block_q5_0 *b, uint64_t nb)
{
    for (uint64_t i = 0; i < nb; i++, x += 32) {
        float d = signed_absmax(x, 32) / -16.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = cmp_f32_to_f16(d);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            int q0 = clamp_int((int)(x[j] * id + 16.5f), 0, 31);
            int q1 = clamp_int((int)(x[j + 16] * id + 16.5f), 0, 31);
            b[i].qs[j] = (uint8_t)((q0 & 0xf) | (q1 & 0xf) << 4);
            qh |= (uint32_t)(q0 >> 4) << j | (uint32_t)(q1 >> 4) << (j + 16);
        }
        store_u32(b[i].qh, qh);
    }
}

static void q_q5_1(const float *x, cmp_block_q5_1 *b, uint64_t nb)
{
    for (uint64_t i = 0; i < nb; i++, x += 32) {
        float lo, hi;
        min_max(x, 32, &lo, &hi);
        float d = (hi - lo) / 31.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = cmp_f32_to_f16(d);
        b[i].m = cmp_f32_to_f16(lo);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            int q0 = clamp_int((int)((x[j] - lo) * id + 0.5f), 0, 31);
            int q1 = clamp_int((int)((x[j + 16] - lo) * id + 0.5f), 0, 31);
            b[i].qs[j] = (uint8_t)((q0 & 0xf) | (q1 & 0xf) << 4);
            qh |= (uint32_t)(q0 >> 4) << j | (uint32_t)(q1 >> 4) << (j + 16);
        }
        store_u32(b[i].qh, qh);
    }
}

static void q_q8_0(const float *x, cmp_block_q8_0 *b, uint64_t nb)
{
    for (uint64_t i = 0; i < nb; i++, x += 32) {
        float amax = fabsf(signed_absmax(x, 32));
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = cmp_f32_to_f16(d);
        for (int j = 0; j < 32; j++)
            b[i].qs[j] = (int8_t)clamp_int((int)roundf(x[j] * id), -127, 127);
    }
}

/* Index of the code-book level nearest to v (levels ascending). */
int cmp_iq4nl_nearest(float v)
{
    if (v <= (float)cmp_iq4nl_values[0])
        return 0;
    if (v >= (float)cmp_iq4nl_values[15])
        return 15;
    int lo = 0, hi = 15;
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (v < (float)cmp_iq4nl_values[mid])
            hi = mid;
        else
            lo = mid;
    }
    return v - (float)cmp_iq4nl_values[lo] <= (float)cmp_iq4nl_values[hi] - v ? lo : hi;
}

/* iq4_nl: try scales around max/level[0] and keep the one with the least squared error,
 * with d refit by least squares for the chosen levels (the idea of ggml's search). */
/* w: per-value importance (NULL: all equal), weighting the error the scale search
 * minimizes. */
static void q_iq4_nl(const float *x, cmp_block_iq4_nl *b, uint64_t nb, const float *w)
{
    for (uint64_t i = 0; i < nb; i++, x += 32, w = w ? w + 32 : NULL) {
        float max = signed_absmax(x, 32);
        uint8_t best_q[32] = {0};
        float best_d = 0.0f, best_err = INFINITY;
        if (max == 0.0f) {
            best_err = 0.0f;
            for (int j = 0; j < 32; j++)
                best_q[j] = (uint8_t)cmp_iq4nl_nearest(0.0f);
        }
        for (int step = -9; step <= 9 && max != 0.0f; step++) {
            float id = ((float)cmp_iq4nl_values[0] + 0.1f * (float)step) / max;
            uint8_t q[32];
            double sxy = 0, syy = 0;
            for (int j = 0; j < 32; j++) {
                q[j] = (uint8_t)cmp_iq4nl_nearest(x[j] * id);
                double l = cmp_iq4nl_values[q[j]], wj = w ? w[j] : 1.0;
                sxy += wj * x[j] * l;
                syy += wj * l * l;
            }
            float d = syy > 0 ? (float)(sxy / syy) : 0.0f;
            /* error with the stored (f16) scale, as the kernels will see it */
            float dh = cmp_f16_to_f32(cmp_f32_to_f16(d));
            double err = 0;
            for (int j = 0; j < 32; j++) {
                double e = (double)x[j] - (double)dh * cmp_iq4nl_values[q[j]];
                err += (w ? w[j] : 1.0) * e * e;
            }
            if (err < best_err) {
                best_err = (float)err;
                best_d = d;
                memcpy(best_q, q, sizeof q);
            }
        }
        b[i].d = cmp_f32_to_f16(best_d);
        for (int j = 0; j < 16; j++)
            b[i].qs[j] = (uint8_t)(best_q[j] | best_q[j + 16] << 4);
    }
}

/* ---- importance-weighted quantization ------------------------------------------------ */

/* The scale of a block of 32 with integer levels qmin..qmax minimizing the weighted error
 * sum w (x - d q)^2, searched around the plain choice (the largest |x| on qmin) in 19
 * steps, each with its least-squares scale, measured with the scale rounded to f16. */
static float search_symmetric(const float *x, const float *w, int qmin, int qmax, int q_out[32])
{
    float max = signed_absmax(x, 32), best_d = 0.0f;
    double best_err = INFINITY;
    for (int j = 0; j < 32; j++)
        q_out[j] = 0;
    for (int step = -9; step <= 9 && max != 0.0f; step++) {
        float id = ((float)qmin + 0.1f * (float)step) / max;
        int q[32];
        double sxy = 0, syy = 0;
        for (int j = 0; j < 32; j++) {
            q[j] = clamp_int((int)lroundf(x[j] * id), qmin, qmax);
            sxy += (double)w[j] * x[j] * q[j];
            syy += (double)w[j] * q[j] * q[j];
        }
        if (syy <= 0)
            continue;
        float d = (float)(sxy / syy), dh = cmp_f16_to_f32(cmp_f32_to_f16(d));
        double err = 0;
        for (int j = 0; j < 32; j++) {
            double e = (double)x[j] - (double)dh * q[j];
            err += (double)w[j] * e * e;
        }
        if (err < best_err) {
            best_err = err;
            best_d = d;
            memcpy(q_out, q, sizeof q);
        }
    }
    return best_d;
}

static void qw_q4_0(const float *x, cmp_block_q4_0 *b, uint64_t nb, const float *w)
{
    for (uint64_t i = 0; i < nb; i++, x += 32, w += 32) {
        int q[32];
        b[i].d = cmp_f32_to_f16(search_symmetric(x, w, -8, 7, q));
        for (int j = 0; j < 16; j++)
            b[i].qs[j] = (uint8_t)((q[j] + 8) | (q[j + 16] + 8) << 4);
    }
}

static void qw_q5_0(const float *x, cmp_block_q5_0 *b, uint64_t nb, const float *w)
{
    for (uint64_t i = 0; i < nb; i++, x += 32, w += 32) {
        int q[32];
        b[i].d = cmp_f32_to_f16(search_symmetric(x, w, -16, 15, q));
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            int q0 = q[j] + 16, q1 = q[j + 16] + 16;
            b[i].qs[j] = (uint8_t)((q0 & 0xf) | (q1 & 0xf) << 4);
            qh |= (uint32_t)(q0 >> 4) << j | (uint32_t)(q1 >> 4) << (j + 16);
        }
        store_u32(b[i].qh, qh);
    }
}

bool cmp_quantize_weighted(cmp_type type, const float *src, void *dst, uint64_t n,
                           const float *weights)
{
    const cmp_type_info *t = cmp_type_get(type);
    if (!t || n % t->block_size != 0)
        return false;
    if (!weights)
        return cmp_quantize(type, src, dst, n);
    uint64_t nb = n / t->block_size;
    switch (type) {
    case CMP_TYPE_Q4_0: qw_q4_0(src, dst, nb, weights); return true;
    case CMP_TYPE_Q5_0: qw_q5_0(src, dst, nb, weights); return true;
    case CMP_TYPE_IQ4_NL: q_iq4_nl(src, dst, nb, weights); return true;
    case CMP_TYPE_Q4_K: cmp_quantize_q4_k(src, dst, nb, weights); return true;
    case CMP_TYPE_Q5_K: cmp_quantize_q5_k(src, dst, nb, weights); return true;
    case CMP_TYPE_Q6_K: cmp_quantize_q6_k(src, dst, nb, weights); return true;
    default: return cmp_quantize(type, src, dst, n);
    }
}

bool cmp_type_uses_weights(cmp_type type)
{
    return type == CMP_TYPE_Q4_0 || type == CMP_TYPE_Q5_0 || type == CMP_TYPE_IQ4_NL ||
           type == CMP_TYPE_Q4_K || type == CMP_TYPE_Q5_K || type == CMP_TYPE_Q6_K;
}

/* ---- dispatch ----------------------------------------------------------------------- */

bool cmp_dequantize(cmp_type type, const void *src, float *dst, uint64_t n)
{
    const cmp_type_info *t = cmp_type_get(type);
    if (!t || n % t->block_size != 0)
        return false;
    uint64_t nb = n / t->block_size;
    const uint16_t *h = src;
    switch (type) {
    case CMP_TYPE_F32: memcpy(dst, src, n * 4); break;
    case CMP_TYPE_F16:
        for (uint64_t i = 0; i < n; i++)
            dst[i] = cmp_f16_to_f32(h[i]);
        break;
    case CMP_TYPE_BF16:
        for (uint64_t i = 0; i < n; i++)
            dst[i] = cmp_bf16_to_f32(h[i]);
        break;
    case CMP_TYPE_Q4_0: dq_q4_0(src, dst, nb); break;
    case CMP_TYPE_Q4_1: dq_q4_1(src, dst, nb); break;
    case CMP_TYPE_Q5_0: dq_q5_0(src, dst, nb); break;
    case CMP_TYPE_Q5_1: dq_q5_1(src, dst, nb); break;
    case CMP_TYPE_Q8_0: dq_q8_0(src, dst, nb); break;
    case CMP_TYPE_IQ4_NL: dq_iq4_nl(src, dst, nb); break;
    case CMP_TYPE_Q4_K: cmp_dequantize_q4_k(src, dst, nb); break;
    case CMP_TYPE_Q5_K: cmp_dequantize_q5_k(src, dst, nb); break;
    case CMP_TYPE_Q6_K: cmp_dequantize_q6_k(src, dst, nb); break;
    }
    return true;
}

bool cmp_quantize(cmp_type type, const float *src, void *dst, uint64_t n)
{
    const cmp_type_info *t = cmp_type_get(type);
    if (!t || n % t->block_size != 0)
        return false;
    uint64_t nb = n / t->block_size;
    uint16_t *h = dst;
    switch (type) {
    case CMP_TYPE_F32: memcpy(dst, src, n * 4); break;
    case CMP_TYPE_F16:
        for (uint64_t i = 0; i < n; i++)
            h[i] = cmp_f32_to_f16(src[i]);
        break;
    case CMP_TYPE_BF16:
        for (uint64_t i = 0; i < n; i++)
            h[i] = cmp_f32_to_bf16(src[i]);
        break;
    case CMP_TYPE_Q4_0: q_q4_0(src, dst, nb); break;
    case CMP_TYPE_Q4_1: q_q4_1(src, dst, nb); break;
    case CMP_TYPE_Q5_0: q_q5_0(src, dst, nb); break;
    case CMP_TYPE_Q5_1: q_q5_1(src, dst, nb); break;
    case CMP_TYPE_Q8_0: q_q8_0(src, dst, nb); break;
    case CMP_TYPE_IQ4_NL: q_iq4_nl(src, dst, nb, NULL); break;
    case CMP_TYPE_Q4_K: cmp_quantize_q4_k(src, dst, nb, NULL); break;
    case CMP_TYPE_Q5_K: cmp_quantize_q5_k(src, dst, nb, NULL); break;
    case CMP_TYPE_Q6_K: cmp_quantize_q6_k(src, dst, nb, NULL); break;
    }
    return true;
}
