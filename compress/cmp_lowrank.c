/* Low-rank factorization (see cmp_lowrank.h). */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cmp_gguf_write.h"
#include "cmp_lowrank.h"
#include "cmp_quant.h"
#include "cmp_recipe.h"

/* Orthonormalizes the l columns (each n long, stored one after another) by modified
 * Gram-Schmidt, twice for stability. A column with nothing left of it beyond rounding
 * (the matrix's rank is below l) becomes zero: normalized rounding noise would lie in the
 * span of the others and count their directions twice. */
static void orthonormalize(double *q, uint64_t n, uint32_t l)
{
    for (uint32_t j = 0; j < l; j++) {
        double *c = q + (uint64_t)j * n, before = 0, norm = 0;
        for (uint64_t x = 0; x < n; x++)
            before += c[x] * c[x];
        for (int pass = 0; pass < 2; pass++)
            for (uint32_t i = 0; i < j; i++) {
                const double *p = q + (uint64_t)i * n;
                double d = 0;
                for (uint64_t x = 0; x < n; x++)
                    d += p[x] * c[x];
                for (uint64_t x = 0; x < n; x++)
                    c[x] -= d * p[x];
            }
        for (uint64_t x = 0; x < n; x++)
            norm += c[x] * c[x];
        bool dead = norm <= 1e-20 * before || norm == 0;
        norm = sqrt(norm);
        for (uint64_t x = 0; x < n; x++)
            c[x] = dead ? 0 : c[x] / norm;
    }
}

/* y (l columns of rows) = W z (l columns of k), or with `t` z (columns of k) = Wᵀ y. */
static void apply(const float *w, uint32_t rows, uint32_t k, const double *in, double *out,
                  uint32_t l, bool t)
{
    for (uint32_t j = 0; j < l; j++) {
        const double *x = in + (uint64_t)j * (t ? rows : k);
        double *y = out + (uint64_t)j * (t ? k : rows);
        memset(y, 0, sizeof *y * (t ? k : rows));
        for (uint32_t r = 0; r < rows; r++) {
            const float *wr = w + (uint64_t)r * k;
            if (t) {
                double xr = x[r];
                for (uint32_t c = 0; c < k; c++)
                    y[c] += wr[c] * xr;
            } else {
                double acc = 0;
                for (uint32_t c = 0; c < k; c++)
                    acc += wr[c] * x[c];
                y[r] = acc;
            }
        }
    }
}

/* Eigen-decomposition of the symmetric n x n matrix g (destroyed) by cyclic Jacobi
 * rotations: eigenvalues in val, eigenvectors as the columns of vec (row-major n x n). */
static void jacobi(double *g, uint32_t n, double *val, double *vec)
{
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < n; j++)
            vec[i * n + j] = i == j;
    for (int sweep = 0; sweep < 60; sweep++) {
        double off = 0, total = 0;
        for (uint32_t i = 0; i < n; i++)
            for (uint32_t j = 0; j < n; j++) {
                total += g[i * n + j] * g[i * n + j];
                if (i != j)
                    off += g[i * n + j] * g[i * n + j];
            }
        if (off <= 1e-30 * total || off == 0)
            break;
        for (uint32_t p = 0; p < n; p++)
            for (uint32_t q = p + 1; q < n; q++) {
                double apq = g[p * n + q];
                if (fabs(apq) < 1e-300)
                    continue;
                double theta = (g[q * n + q] - g[p * n + p]) / (2 * apq);
                double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1));
                double c = 1 / sqrt(t * t + 1), s = t * c;
                for (uint32_t r = 0; r < n; r++) { /* columns p, q */
                    double gp = g[r * n + p], gq = g[r * n + q];
                    g[r * n + p] = c * gp - s * gq;
                    g[r * n + q] = s * gp + c * gq;
                }
                for (uint32_t r = 0; r < n; r++) { /* rows p, q */
                    double gp = g[p * n + r], gq = g[q * n + r];
                    g[p * n + r] = c * gp - s * gq;
                    g[q * n + r] = s * gp + c * gq;
                }
                for (uint32_t r = 0; r < n; r++) {
                    double vp = vec[r * n + p], vq = vec[r * n + q];
                    vec[r * n + p] = c * vp - s * vq;
                    vec[r * n + q] = s * vp + c * vq;
                }
            }
    }
    for (uint32_t i = 0; i < n; i++)
        val[i] = g[i * n + i];
}

bool cmp_svd_factors(const float *w, uint32_t rows, uint32_t k, uint32_t r, uint64_t seed, float *a,
                     float *b, double *s_out)
{
    uint32_t n = rows < k ? rows : k;
    if (r == 0 || r > n)
        return false;
    uint32_t l = r + 8 < n ? r + 8 : n;
    double *om = malloc(sizeof *om * k * l), *y = malloc(sizeof *y * (uint64_t)rows * l);
    double *bm = malloc(sizeof *bm * k * l), *g = malloc(sizeof *g * l * l);
    double *val = malloc(sizeof *val * l), *vec = malloc(sizeof *vec * l * l);
    uint32_t *order = malloc(sizeof *order * l);
    bool ok = om && y && bm && g && val && vec && order;
    if (ok) {
        /* Gaussian directions (Box-Muller over a 64-bit LCG) */
        uint64_t st = seed * 2862933555777941757ull + 3037000493ull;
        for (uint64_t i = 0; i < (uint64_t)k * l; i++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            double u1 = ((st >> 11) + 1.0) / 9007199254740993.0;
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            double u2 = (st >> 11) / 9007199254740992.0;
            om[i] = sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
        }
        apply(w, rows, k, om, y, l, false);
        orthonormalize(y, rows, l);
        for (int it = 0; it < 3; it++) { /* power iterations: W Wᵀ sharpens the spectrum */
            apply(w, rows, k, y, om, l, true);
            orthonormalize(om, k, l);
            apply(w, rows, k, om, y, l, false);
            orthonormalize(y, rows, l);
        }
        /* bm = Qᵀ W (l x k, row j = W's rows combined by column j of Q), g = bm bmᵀ */
        apply(w, rows, k, y, bm, l, true);
        for (uint32_t i = 0; i < l; i++)
            for (uint32_t j = 0; j < l; j++) {
                double d = 0;
                for (uint32_t c = 0; c < k; c++)
                    d += bm[(uint64_t)i * k + c] * bm[(uint64_t)j * k + c];
                g[i * l + j] = d;
            }
        jacobi(g, l, val, vec);
        for (uint32_t i = 0; i < l; i++)
            order[i] = i;
        for (uint32_t i = 1; i < l; i++) /* by eigenvalue, largest first (insertion) */
            for (uint32_t j = i; j > 0 && val[order[j]] > val[order[j - 1]]; j--) {
                uint32_t t = order[j];
                order[j] = order[j - 1], order[j - 1] = t;
            }
        for (uint32_t i = 0; i < r; i++) {
            uint32_t e = order[i];
            double sv = val[e] > 0 ? sqrt(val[e]) : 0, half = sqrt(sv);
            if (s_out)
                s_out[i] = sv;
            /* a row i = sqrt(s) v_i = bmᵀ e_i / sqrt(s); b column i = sqrt(s) Q e_i */
            for (uint32_t c = 0; c < k; c++) {
                double d = 0;
                for (uint32_t j = 0; j < l; j++)
                    d += bm[(uint64_t)j * k + c] * vec[j * l + e];
                a[(uint64_t)i * k + c] = sv > 0 ? (float)(d / half) : 0.0f;
            }
            for (uint32_t x = 0; x < rows; x++) {
                double d = 0;
                for (uint32_t j = 0; j < l; j++)
                    d += y[(uint64_t)j * rows + x] * vec[j * l + e];
                b[(uint64_t)x * r + i] = (float)(d * half);
            }
        }
    }
    free(om), free(y), free(bm), free(g), free(val), free(vec), free(order);
    return ok;
}

/* ---- models ---- */

static const char *default_roles = "ffn_gate,ffn_up,ffn_down";

/* Whether "blk.N.ROLE.weight" names a role in the comma-separated list. */
static bool chosen(const char *name, const char *roles)
{
    const char *dot = strncmp(name, "blk.", 4) == 0 ? strchr(name + 4, '.') : NULL;
    if (!dot)
        return false;
    const char *role = dot + 1, *end = strstr(role, ".weight");
    if (!end || end[7])
        return false;
    size_t n = (size_t)(end - role);
    for (const char *p = roles; *p;) {
        const char *q = strchr(p, ',');
        size_t len = q ? (size_t)(q - p) : strlen(p);
        if (len == n && strncmp(p, role, n) == 0)
            return true;
        p = q ? q + 1 : p + len;
    }
    return false;
}

typedef struct lr_job {
    const cmp_gguf_tensor *t;
    char name[64];
    const cmp_lowrank_params *p;
    uint32_t rows, k, rank; /* rank 0: dense */
    cmp_type a_type, b_type;
    void *a_bytes, *b_bytes; /* quantized factors */
    uint64_t a_size, b_size;
    double energy;
    _Atomic uint64_t *done;
    uint64_t total;
} lr_job;

static uint32_t round32(uint64_t v, uint32_t n)
{
    uint64_t r = (v + 31) / 32 * 32;
    return (uint32_t)(r < n ? r : n);
}

static bool factorize(void *user, uint64_t i, void *scratch)
{
    lr_job *j = (lr_job *)user + i;
    (void)scratch;
    if (!j->t)
        return true;
    const cmp_lowrank_params *p = j->p;
    uint32_t rows = j->rows, k = j->k, n = rows < k ? rows : k;
    uint64_t nv = (uint64_t)rows * k;
    float *w = malloc(sizeof *w * nv);
    bool ok = w && cmp_dequantize((cmp_type)j->t->type, j->t->data, w, nv);
    double total = 0;
    for (uint64_t x = 0; ok && x < nv; x++)
        total += (double)w[x] * w[x];
    /* the rank: by ratio directly; by energy from the full spectrum */
    uint32_t r = p->energy > 0 ? n : round32((uint64_t)ceil(p->rank_ratio * n), n);
    float *a = ok ? malloc(sizeof *a * (uint64_t)r * k) : NULL;
    float *b = ok ? malloc(sizeof *b * (uint64_t)rows * r) : NULL;
    double *s = ok ? malloc(sizeof *s * r) : NULL;
    ok = ok && a && b && s && cmp_svd_factors(w, rows, k, r, 0x5eed + i, a, b, s);
    if (ok && p->energy > 0) {
        double kept = 0;
        uint32_t want = n;
        for (uint32_t x = 0; x < n; x++) {
            kept += s[x] * s[x];
            if (kept >= p->energy * total) {
                want = x + 1;
                break;
            }
        }
        want = round32(want, n);
        /* keep the first `want` rows of a and columns of b */
        for (uint32_t x = 0; x < rows; x++)
            memmove(b + (uint64_t)x * want, b + (uint64_t)x * r, sizeof *b * want);
        r = want;
    }
    double kept = 0;
    for (uint32_t x = 0; ok && x < r; x++)
        kept += s[x] * s[x];
    j->energy = total > 0 ? kept / total : 1;
    if (ok && (uint64_t)r * (rows + k) < nv) {
        j->rank = r;
        j->a_type = cmp_type_fallback((cmp_type)j->t->type, k);
        j->b_type = cmp_type_fallback((cmp_type)j->t->type, r);
        j->a_size = (uint64_t)r * cmp_row_bytes(j->a_type, k);
        j->b_size = (uint64_t)rows * cmp_row_bytes(j->b_type, r);
        j->a_bytes = malloc(j->a_size);
        j->b_bytes = malloc(j->b_size);
        ok = j->a_bytes && j->b_bytes &&
             cmp_convert_rows(CMP_TYPE_F32, a, j->a_type, j->a_bytes, r, k, NULL, 1) &&
             cmp_convert_rows(CMP_TYPE_F32, b, j->b_type, j->b_bytes, rows, r, NULL, 1);
    }
    free(w), free(a), free(b), free(s);
    uint64_t done = atomic_fetch_add(j->done, 1) + 1;
    if (p->progress)
        p->progress(done, j->total, p->user);
    return ok;
}

bool cmp_lowrank_model(const char *in, const char *out, const cmp_lowrank_params *p,
                       cmp_lowrank_report *rep, char *err, size_t err_size)
{
    memset(rep, 0, sizeof *rep);
    err[0] = '\0';
    if (!((p->rank_ratio > 0 && p->rank_ratio < 1 && p->energy == 0) ||
          (p->energy > 0 && p->energy < 1 && p->rank_ratio == 0))) {
        snprintf(err, err_size,
                 "give a rank ratio (above 0, below 1) or an energy share (above 0, below 1), "
                 "one of them (got %.3g and %.3g)",
                 p->rank_ratio, p->energy);
        return false;
    }
    const char *roles = p->tensors && p->tensors[0] ? p->tensors : default_roles;
    cmp_gguf *g;
    if (cmp_gguf_open(in, &g, err, err_size) != CMP_GGUF_OK)
        return false;
    uint64_t n_t = cmp_gguf_tensor_count(g);
    lr_job *jobs = calloc(n_t ? n_t : 1, sizeof *jobs);
    cmp_gguf_writer *w = cmp_gguf_writer_create();
    bool ok = jobs && w, result = false;
    uint64_t chosen_count = 0;
    _Atomic uint64_t done = 0;
    for (uint64_t i = 0; ok && i < n_t; i++) {
        const cmp_gguf_tensor *t = cmp_gguf_tensor_at(g, i);
        lr_job *j = &jobs[i];
        snprintf(j->name, sizeof j->name, "%.*s", (int)(t->name.len < 63 ? t->name.len : 63),
                 t->name.ptr);
        if (t->n_dims != 2 || !chosen(j->name, roles))
            continue;
        if (!cmp_type_get((cmp_type)t->type)) {
            snprintf(err, err_size, "%s: tensor %s has type %s, which vkllm cannot read", in,
                     j->name, cmp_ggml_type_name(t->type));
            ok = false;
            break;
        }
        j->t = t, j->p = p, j->rows = (uint32_t)t->ne[1], j->k = (uint32_t)t->ne[0];
        chosen_count++;
    }
    if (ok && chosen_count == 0) {
        snprintf(err, err_size, "%s: no matrix named blk.N.{%s}.weight", in, roles);
        ok = false;
    }
    for (uint64_t i = 0; ok && i < n_t; i++)
        jobs[i].done = &done, jobs[i].total = chosen_count;
    if (ok && !cmp_parallel_rows(n_t, p->threads, 0, factorize, jobs))
        snprintf(err, err_size, "factorizing failed (out of memory?)"), ok = false;
    for (uint64_t i = 0; ok && i < cmp_gguf_kv_count(g); i++) {
        const cmp_gguf_kv *kv = cmp_gguf_kv_at(g, i);
        if (!cmp_gguf_str_eq(kv->key, "general.alignment"))
            ok = cmp_gguf_copy_kv(w, kv);
    }
    for (uint64_t i = 0; ok && i < n_t; i++) {
        const cmp_gguf_tensor *t = cmp_gguf_tensor_at(g, i);
        lr_job *j = &jobs[i];
        rep->in_bytes += t->bytes;
        if (j->t && rep->n_tensors < CMP_LOWRANK_MAX_REPORT) {
            cmp_lowrank_tensor *tr = &rep->tensors[rep->n_tensors++];
            snprintf(tr->name, sizeof tr->name, "%s", j->name);
            tr->rows = j->rows, tr->k = j->k, tr->rank = j->rank, tr->energy = j->energy;
        }
        if (!j->rank) {
            ok = cmp_gguf_add_tensor(w, j->name, t->type, t->n_dims, t->ne, t->data, t->bytes);
            rep->out_bytes += t->bytes;
            continue;
        }
        char base[64], an[80], bn[80];
        snprintf(base, sizeof base, "%.*s", (int)(strlen(j->name) - 7), j->name);
        snprintf(an, sizeof an, "%s.lr_a.weight", base);
        snprintf(bn, sizeof bn, "%s.lr_b.weight", base);
        uint64_t ane[2] = {j->k, j->rank}, bne[2] = {j->rank, j->rows};
        ok = cmp_gguf_add_tensor(w, an, j->a_type, 2, ane, j->a_bytes, j->a_size) &&
             cmp_gguf_add_tensor(w, bn, j->b_type, 2, bne, j->b_bytes, j->b_size);
        rep->out_bytes += j->a_size + j->b_size;
    }
    if (ok)
        result = cmp_gguf_write_file(w, out, err, err_size);
    else if (!err[0])
        snprintf(err, err_size, "out of memory");
    cmp_gguf_writer_destroy(w);
    for (uint64_t i = 0; jobs && i < n_t; i++)
        free(jobs[i].a_bytes), free(jobs[i].b_bytes);
    free(jobs);
    cmp_gguf_close(g);
    return result;
}
