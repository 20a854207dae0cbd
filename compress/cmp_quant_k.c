/* K-quants: super-blocks of 256 values with quantized per-sub-block scales. */
#include <math.h>
#include <string.h>

#include "cmp_half.h"
#include "cmp_quant_internal.h"

/* Sub-block j's 6-bit scale and minimum from the 12 packed bytes (ggml's layout: bytes
 * 0-3 hold scales 0-3 and the top bits of scales 4-7, bytes 4-7 the same for minimums,
 * bytes 8-11 the low nibbles of scales and minimums 4-7). */
static void scale_min_k4(int j, const uint8_t *q, int *sc, int *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

static void pack_scale_min_k4(const uint8_t sc[8], const uint8_t m[8], uint8_t q[12])
{
    for (int j = 0; j < 4; j++) {
        q[j] = (uint8_t)((sc[j] & 63) | (sc[j + 4] >> 4) << 6);
        q[j + 4] = (uint8_t)((m[j] & 63) | (m[j + 4] >> 4) << 6);
        q[j + 8] = (uint8_t)((sc[j + 4] & 0xf) | (m[j + 4] & 0xf) << 4);
    }
}

/* q4_K and q5_K: for each 64 values, x = (d·sc) · q − (dmin·m) with q the low nibbles
 * for the first 32 and the high nibbles for the next 32; q5_K adds a fifth bit from qh
 * (bit 2k for the first 32 of chunk k, 2k+1 for the second); q4_K passes qh = NULL. */
static void dequantize_k(uint16_t d16, uint16_t dmin16, const uint8_t *scales, const uint8_t *q,
                         const uint8_t *qh, float *y)
{
    float d = cmp_f16_to_f32(d16), dmin = cmp_f16_to_f32(dmin16);
    for (int j = 0; j < 8; j += 2, q += 32) {
        int sc, m;
        scale_min_k4(j, scales, &sc, &m);
        float d1 = d * (float)sc, m1 = dmin * (float)m;
        scale_min_k4(j + 1, scales, &sc, &m);
        float d2 = d * (float)sc, m2 = dmin * (float)m;
        unsigned u1 = 1u << j, u2 = 2u << j;
        for (int l = 0; l < 32; l++)
            *y++ = d1 * (float)((q[l] & 0xf) + (qh && (qh[l] & u1) ? 16 : 0)) - m1;
        for (int l = 0; l < 32; l++)
            *y++ = d2 * (float)((q[l] >> 4) + (qh && (qh[l] & u2) ? 16 : 0)) - m2;
    }
}

void cmp_dequantize_q4_k(const cmp_block_q4_k *b, float *y, uint64_t nb)
{
    for (uint64_t i = 0; i < nb; i++, y += 256)
        dequantize_k(b[i].d, b[i].dmin, b[i].scales, b[i].qs, NULL, y);
}

void cmp_dequantize_q5_k(const cmp_block_q5_k *b, float *y, uint64_t nb)
{
    for (uint64_t i = 0; i < nb; i++, y += 256)
        dequantize_k(b[i].d, b[i].dmin, b[i].scales, b[i].qs, b[i].qh, y);
}

/* q6_K: x = (d·sc) · (q − 32), q six bits from ql (low four) and qh (high two); each
 * half of 128 values uses 64 bytes of ql, 32 of qh and 8 scales. */
void cmp_dequantize_q6_k(const cmp_block_q6_k *b, float *y, uint64_t nb)
{
    for (uint64_t i = 0; i < nb; i++) {
        float d = cmp_f16_to_f32(b[i].d);
        const uint8_t *ql = b[i].ql, *qh = b[i].qh;
        const int8_t *sc = b[i].scales;
        for (int half = 0; half < 2; half++, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = (int)((ql[l] & 0xf) | ((qh[l] >> 0) & 3) << 4) - 32;
                int q2 = (int)((ql[l + 32] & 0xf) | ((qh[l] >> 2) & 3) << 4) - 32;
                int q3 = (int)((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
                int q4 = (int)((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
                y[l] = d * (float)sc[is] * (float)q1;
                y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                y[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
        }
    }
}

static int clamp_int(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Fits x ≈ s·q − o with q in [0, nmax] for one sub-block: start from min/max, then
 * alternate rounding and a least-squares refit of (s, o), keeping the best. o ≥ 0 (the
 * minimum is clipped at zero, as K-quants store it unsigned). With weights (importance
 * per value, NULL: all 1) the error and the refit are weighted. */
static void fit_scale_min(const float *x, const float *w, int n, int nmax, float *s_out,
                          float *o_out)
{
    float lo = x[0], hi = x[0];
    for (int j = 1; j < n; j++) {
        lo = x[j] < lo ? x[j] : lo;
        hi = x[j] > hi ? x[j] : hi;
    }
    if (lo > 0)
        lo = 0;
    float s = (hi - lo) / (float)nmax, o = -lo;
    float best_s = s, best_o = o;
    double best_err = INFINITY;
    for (int iter = 0; iter < 4 && s > 0; iter++) {
        double sw = 0, sq = 0, sqq = 0, sx = 0, sqx = 0, err = 0;
        for (int j = 0; j < n; j++) {
            int q = clamp_int((int)lrintf((x[j] + o) / s), 0, nmax);
            double e = (double)s * q - o - x[j], wj = w ? w[j] : 1.0;
            err += wj * e * e;
            sw += wj;
            sq += wj * q;
            sqq += wj * (double)q * q;
            sx += wj * x[j];
            sqx += wj * (double)q * x[j];
        }
        if (err < best_err) {
            best_err = err;
            best_s = s;
            best_o = o;
        }
        double det = sw * sqq - sq * sq;
        if (det <= 0)
            break;
        double ns = (sw * sqx - sq * sx) / det;
        double no = -(sx - ns * sq) / sw;
        if (ns <= 0 || no < 0)
            break;
        s = (float)ns;
        o = (float)no;
    }
    *s_out = best_s;
    *o_out = best_o;
}

/* Shared by q4_K (nmax 15) and q5_K (nmax 31): sub-block scales and minimums quantized
 * to 6 bits against the super-block's largest, then values requantized with the stored
 * (f16, 6-bit) scales. w: per-value importance or NULL. */
static void quantize_k_sub(const float *x, const float *w, int nmax, uint16_t *d_out,
                           uint16_t *dmin_out, uint8_t scales[12], uint8_t q[256])
{
    float s[8], o[8], max_s = 0, max_o = 0;
    for (int j = 0; j < 8; j++) {
        fit_scale_min(x + 32 * j, w ? w + 32 * j : NULL, 32, nmax, &s[j], &o[j]);
        max_s = s[j] > max_s ? s[j] : max_s;
        max_o = o[j] > max_o ? o[j] : max_o;
    }
    *d_out = cmp_f32_to_f16(max_s / 63.0f);
    *dmin_out = cmp_f32_to_f16(max_o / 63.0f);
    float d = cmp_f16_to_f32(*d_out), dmin = cmp_f16_to_f32(*dmin_out);
    uint8_t sc[8], m[8];
    for (int j = 0; j < 8; j++) {
        sc[j] = (uint8_t)(d > 0 ? clamp_int((int)lrintf(s[j] / d), 0, 63) : 0);
        m[j] = (uint8_t)(dmin > 0 ? clamp_int((int)lrintf(o[j] / dmin), 0, 63) : 0);
    }
    pack_scale_min_k4(sc, m, scales);
    for (int j = 0; j < 8; j++) {
        float ds = d * (float)sc[j], dm = dmin * (float)m[j];
        for (int l = 0; l < 32; l++)
            q[32 * j + l] =
                (uint8_t)(ds > 0 ? clamp_int((int)lrintf((x[32 * j + l] + dm) / ds), 0, nmax) : 0);
    }
}

void cmp_quantize_q4_k(const float *x, cmp_block_q4_k *b, uint64_t nb, const float *w)
{
    for (uint64_t i = 0; i < nb; i++, x += 256, w = w ? w + 256 : NULL) {
        uint8_t q[256];
        quantize_k_sub(x, w, 15, &b[i].d, &b[i].dmin, b[i].scales, q);
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < 32; l++)
                b[i].qs[32 * k + l] = (uint8_t)(q[64 * k + l] | q[64 * k + 32 + l] << 4);
    }
}

void cmp_quantize_q5_k(const float *x, cmp_block_q5_k *b, uint64_t nb, const float *w)
{
    for (uint64_t i = 0; i < nb; i++, x += 256, w = w ? w + 256 : NULL) {
        uint8_t q[256];
        quantize_k_sub(x, w, 31, &b[i].d, &b[i].dmin, b[i].scales, q);
        memset(b[i].qh, 0, sizeof b[i].qh);
        for (int k = 0; k < 4; k++) {
            for (int l = 0; l < 32; l++) {
                uint8_t a = q[64 * k + l], c = q[64 * k + 32 + l];
                b[i].qs[32 * k + l] = (uint8_t)((a & 0xf) | (c & 0xf) << 4);
                b[i].qh[l] |= (uint8_t)((a >> 4) << (2 * k) | (c >> 4) << (2 * k + 1));
            }
        }
    }
}

/* q6_K: each 16-value sub-block gets s = (value of largest magnitude) / −32, refit by
 * least squares (weighted by w, per-value importance, when not NULL); the 16 scales are
 * quantized to int8 against the largest. */
void cmp_quantize_q6_k(const float *x, cmp_block_q6_k *b, uint64_t nb, const float *w)
{
    for (uint64_t i = 0; i < nb; i++, x += 256, w = w ? w + 256 : NULL) {
        float s[16], max_s = 0, amax_s = 0;
        for (int j = 0; j < 16; j++) {
            const float *v = x + 16 * j;
            float max = 0, amax = 0;
            for (int l = 0; l < 16; l++) {
                if (fabsf(v[l]) > amax) {
                    amax = fabsf(v[l]);
                    max = v[l];
                }
            }
            float sj = max / -32.0f;
            if (sj != 0) {
                /* one least-squares refit for the rounded levels */
                double sqx = 0, sqq = 0;
                for (int l = 0; l < 16; l++) {
                    int q = clamp_int((int)lrintf(v[l] / sj), -32, 31);
                    double wl = w ? w[16 * j + l] : 1.0;
                    sqx += wl * q * v[l];
                    sqq += wl * q * q;
                }
                if (sqq > 0)
                    sj = (float)(sqx / sqq);
            }
            s[j] = sj;
            if (fabsf(sj) > amax_s) {
                amax_s = fabsf(sj);
                max_s = sj;
            }
        }
        memset(b[i].ql, 0, sizeof b[i].ql);
        memset(b[i].qh, 0, sizeof b[i].qh);
        if (max_s == 0) {
            memset(b[i].scales, 0, sizeof b[i].scales);
            b[i].d = 0;
            for (int half = 0; half < 2; half++)
                for (int l = 0; l < 32; l++) {
                    /* q = 32 encodes zero */
                    b[i].qh[32 * half + l] = 0xaa;
                }
            continue;
        }
        float iscale = -128.0f / max_s;
        b[i].d = cmp_f32_to_f16(1.0f / iscale);
        float d = cmp_f16_to_f32(b[i].d);
        uint8_t q[256];
        for (int j = 0; j < 16; j++) {
            b[i].scales[j] = (int8_t)clamp_int((int)lrintf(iscale * s[j]), -128, 127);
            float ds = d * (float)b[i].scales[j];
            for (int l = 0; l < 16; l++) {
                int v = ds != 0 ? clamp_int((int)lrintf(x[16 * j + l] / ds), -32, 31) : 0;
                q[16 * j + l] = (uint8_t)(v + 32);
            }
        }
        for (int half = 0; half < 2; half++) {
            const uint8_t *qq = q + 128 * half;
            uint8_t *ql = b[i].ql + 64 * half, *qh = b[i].qh + 32 * half;
            for (int l = 0; l < 32; l++) {
                ql[l] = (uint8_t)((qq[l] & 0xf) | (qq[l + 64] & 0xf) << 4);
                ql[l + 32] = (uint8_t)((qq[l + 32] & 0xf) | (qq[l + 96] & 0xf) << 4);
                qh[l] = (uint8_t)((qq[l] >> 4) | (qq[l + 32] >> 4) << 2 | (qq[l + 64] >> 4) << 4 |
                                  (qq[l + 96] >> 4) << 6);
            }
        }
    }
}
