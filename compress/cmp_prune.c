/* Pruning (see cmp_prune.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmp_gguf_write.h"
#include "cmp_prune.h"
#include "cmp_quantize_model.h"
#include "cmp_recipe.h"

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

uint64_t cmp_prune_rows(float *w, uint64_t rows, uint64_t k, float sparsity, const float *act_norm)
{
    uint64_t cut = (uint64_t)((double)sparsity * (double)k), zeros = 0;
    float *score = malloc(sizeof *score * k), *sorted = malloc(sizeof *sorted * k);
    for (uint64_t r = 0; score && sorted && cut && r < rows; r++) {
        float *row = w + r * k;
        for (uint64_t c = 0; c < k; c++)
            score[c] = fabsf(row[c]) * (act_norm ? act_norm[c] : 1.0f);
        memcpy(sorted, score, sizeof *score * k);
        qsort(sorted, k, sizeof *sorted, cmp_float);
        float threshold = sorted[cut - 1];
        /* the lowest `cut` scores; ties at the threshold are cut until the count is met */
        uint64_t made = 0;
        for (uint64_t c = 0; c < k && made < cut; c++)
            if (score[c] < threshold)
                row[c] = 0.0f, made++;
        for (uint64_t c = 0; c < k && made < cut; c++)
            if (score[c] == threshold && row[c] != 0.0f)
                row[c] = 0.0f, made++;
    }
    for (uint64_t i = 0; i < rows * k; i++)
        zeros += w[i] == 0.0f;
    free(score);
    free(sorted);
    return zeros;
}

/* sqrt(mean x^2) per column from an imatrix, or NULL. */
static float *act_norm_of(const cmp_gguf *im, const char *name, uint64_t k)
{
    float *v = cmp_imatrix_mean_square(im, name, k);
    for (uint64_t i = 0; v && i < k; i++)
        v[i] = sqrtf(v[i]);
    return v;
}

static float *dequantize_all(const cmp_gguf_tensor *t)
{
    uint64_t n = t->ne[0] * t->ne[1];
    float *f = malloc(sizeof *f * n);
    if (f && !cmp_dequantize((cmp_type)t->type, t->data, f, n)) {
        free(f);
        return NULL;
    }
    return f;
}

typedef struct prune_job {
    const cmp_gguf_tensor *t;
    char name[64];
    cmp_role role;
    cmp_type to;
    uint64_t rows, k; /* after structured pruning */
    /* structured: the source row of each kept row and the source column of each kept
     * column (NULL: all); a vector (a bias) is one row */
    const uint32_t *keep_rows, *keep_cols;
    const cmp_prune_params *p;
    cmp_prune_report *rep;
    uint64_t *done, total;
} prune_job;

static bool fill(void *user, void *dst, uint64_t bytes, char *err, size_t err_size)
{
    prune_job *j = user;
    const cmp_gguf_tensor *t = j->t;
    (void)bytes;
    float *src = dequantize_all(t), *w = malloc(sizeof *w * j->rows * j->k);
    float *norm = NULL;
    bool ok = src && w;
    uint64_t k0 = t->ne[0];
    bool vector = t->n_dims == 1;
    if (ok) {
        for (uint64_t r = 0; r < j->rows; r++)
            for (uint64_t c = 0; c < j->k; c++) {
                uint64_t sr = j->keep_rows ? j->keep_rows[r] : r;
                uint64_t sc = j->keep_cols ? j->keep_cols[c] : c;
                w[r * j->k + c] = src[sr * k0 + sc];
            }
        if (j->p->method == CMP_PRUNE_WANDA && !vector) {
            float *full = act_norm_of(j->p->imatrix, j->name, k0);
            if (full && j->keep_cols) {
                norm = malloc(sizeof *norm * j->k);
                for (uint64_t c = 0; norm && c < j->k; c++)
                    norm[c] = full[j->keep_cols[c]];
                free(full);
            } else {
                norm = full;
            }
        }
        /* biases are only cut down, never sparsified */
        uint64_t zeros = vector ? 0 : cmp_prune_rows(w, j->rows, j->k, j->p->sparsity, norm);
        cmp_prune_report *rep = j->rep;
        if (!vector && rep->n_tensors < CMP_PRUNE_MAX_REPORT) {
            cmp_prune_tensor_report *tr = &rep->tensors[rep->n_tensors++];
            snprintf(tr->name, sizeof tr->name, "%s", j->name);
            tr->values = j->rows * j->k;
            tr->zeros = zeros;
        }
        ok = cmp_convert_rows(CMP_TYPE_F32, w, j->to, dst, j->rows, j->k, NULL, j->p->threads);
    }
    if (!ok)
        snprintf(err, err_size, "pruning %s failed (out of memory?)", j->name);
    free(src);
    free(w);
    free(norm);
    *j->done += t->bytes;
    if (ok && j->p->progress)
        j->p->progress(*j->done, j->total, j->p->user);
    return ok;
}

static bool copy_fill(void *user, void *dst, uint64_t bytes, char *err, size_t err_size)
{
    prune_job *j = user;
    (void)err, (void)err_size;
    memcpy(dst, j->t->data, bytes);
    *j->done += bytes;
    if (j->p->progress)
        j->p->progress(*j->done, j->total, j->p->user);
    return true;
}

static double col_norm(const float *w, uint64_t rows, uint64_t k, uint64_t c)
{
    double s = 0;
    for (uint64_t r = 0; r < rows; r++)
        s += (double)w[r * k + c] * w[r * k + c];
    return sqrt(s);
}

static double row_norm(const float *w, uint64_t k, uint64_t r)
{
    double s = 0;
    for (uint64_t c = 0; c < k; c++)
        s += (double)w[r * k + c] * w[r * k + c];
    return sqrt(s);
}

typedef struct ranked {
    double score;
    uint32_t index;
} ranked;

static int by_score_desc(const void *a, const void *b)
{
    double x = ((const ranked *)a)->score, y = ((const ranked *)b)->score;
    return x > y ? -1 : x < y;
}

static int by_index(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The indices of the n_keep highest scores of r (n of them, reordered), ascending. */
static void keep_best(ranked *r, uint32_t n, uint32_t n_keep, uint32_t *keep)
{
    qsort(r, n, sizeof *r, by_score_desc);
    for (uint32_t j = 0; j < n_keep; j++)
        keep[j] = r[j].index;
    qsort(keep, n_keep, sizeof *keep, by_index);
}

/* The FFN channels layer l keeps: the n_keep with the highest importance, in order. The
 * importance of channel j: the activation norm of down's input j (imatrix) times the norm
 * of down's column j; without statistics |gate_j| |up_j| |down column j|. */
static bool rank_channels(const cmp_gguf *g, const cmp_gguf *im, uint32_t l, uint32_t n_ff,
                          uint32_t n_keep, uint32_t *keep, char *err, size_t err_size)
{
    char name[3][64];
    static const char *parts[3] = {"ffn_gate", "ffn_up", "ffn_down"};
    const cmp_gguf_tensor *t[3];
    for (int i = 0; i < 3; i++) {
        snprintf(name[i], sizeof name[i], "blk.%u.%s.weight", l, parts[i]);
        t[i] = cmp_gguf_find_tensor(g, name[i]);
        if (!t[i] || t[i]->n_dims != 2) {
            snprintf(err, err_size,
                     "%s is missing: structured FFN pruning needs gate, up and "
                     "down matrices",
                     name[i]);
            return false;
        }
    }
    float *down = dequantize_all(t[2]);
    float *norm = act_norm_of(im, name[2], n_ff);
    float *gate = norm ? NULL : dequantize_all(t[0]), *up = norm ? NULL : dequantize_all(t[1]);
    ranked *r = malloc(sizeof *r * n_ff);
    bool ok = down && r && (norm || (gate && up));
    for (uint32_t j = 0; ok && j < n_ff; j++) {
        double s = col_norm(down, t[2]->ne[1], n_ff, j);
        s *= norm ? norm[j] : row_norm(gate, t[0]->ne[0], j) * row_norm(up, t[1]->ne[0], j);
        r[j] = (ranked){s, j};
    }
    if (ok)
        keep_best(r, n_ff, n_keep, keep);
    else
        snprintf(err, err_size, "out of memory ranking the FFN channels of layer %u", l);
    free(down), free(norm), free(gate), free(up), free(r);
    return ok;
}

/* The KV head groups layer l keeps (a KV head and the query heads sharing it): the
 * n_keep with the highest importance, in order. The importance of a group: over the
 * channels of its query heads' attention output c, the activation norm of attn_output's
 * input c (imatrix) times the norm of attn_output's column c; without statistics, the
 * norm of the value row feeding channel c instead of the activation norm. */
static bool rank_heads(const cmp_gguf *g, const cmp_gguf *im, uint32_t l, uint32_t n_head,
                       uint32_t n_head_kv, uint32_t head_dim, uint32_t n_keep, uint32_t *keep,
                       char *err, size_t err_size)
{
    char on[64], vn[64];
    snprintf(on, sizeof on, "blk.%u.attn_output.weight", l);
    snprintf(vn, sizeof vn, "blk.%u.attn_v.weight", l);
    const cmp_gguf_tensor *o = cmp_gguf_find_tensor(g, on), *v = cmp_gguf_find_tensor(g, vn);
    uint64_t qw = (uint64_t)n_head * head_dim;
    if (!o || !v || o->n_dims != 2 || v->n_dims != 2 || o->ne[0] != qw ||
        v->ne[1] != (uint64_t)n_head_kv * head_dim) {
        snprintf(err, err_size,
                 "%s or %s is missing or not %llu wide: head pruning needs the attention "
                 "value and output matrices",
                 vn, on, (unsigned long long)qw);
        return false;
    }
    float *wo = dequantize_all(o), *norm = act_norm_of(im, on, qw);
    float *wv = norm ? NULL : dequantize_all(v);
    ranked *r = malloc(sizeof *r * n_head_kv);
    bool ok = wo && r && (norm || wv);
    uint32_t group = n_head / n_head_kv;
    for (uint32_t kv = 0; ok && kv < n_head_kv; kv++) {
        double s = 0;
        for (uint32_t h = kv * group; h < (kv + 1) * group; h++)
            for (uint32_t i = 0; i < head_dim; i++) {
                uint64_t c = (uint64_t)h * head_dim + i;
                double a = norm ? norm[c] : row_norm(wv, v->ne[0], (uint64_t)kv * head_dim + i);
                s += a * col_norm(wo, o->ne[1], qw, c);
            }
        r[kv] = (ranked){s, kv};
    }
    if (ok)
        keep_best(r, n_head_kv, n_keep, keep);
    else
        snprintf(err, err_size, "out of memory ranking the attention heads of layer %u", l);
    free(wo), free(norm), free(wv), free(r);
    return ok;
}

/* Source indices of the values a structurally pruned layer keeps (ffn: channels; heads:
 * query channels and KV channels from the kept groups). */
typedef struct layer_keep {
    uint32_t *ffn;    /* n_ff kept channels, or NULL */
    uint32_t *q, *kv; /* kept query / KV channels, or NULL */
} layer_keep;

bool cmp_prune_model(const char *in, const char *out, const cmp_prune_params *p,
                     cmp_prune_report *rep, char *err, size_t err_size)
{
    memset(rep, 0, sizeof *rep);
    err[0] = '\0';
    if (!(p->sparsity >= 0 && p->sparsity <= 0.99f) ||
        !(p->ffn_remove >= 0 && p->ffn_remove <= 0.9f) ||
        !(p->heads_remove >= 0 && p->heads_remove <= 0.9f)) {
        snprintf(err, err_size,
                 "sparsity %.3g (0 to 0.99), FFN removal %.3g or head removal %.3g (0 to 0.9) "
                 "out of range",
                 p->sparsity, p->ffn_remove, p->heads_remove);
        return false;
    }
    if (p->method == CMP_PRUNE_WANDA && !p->imatrix) {
        snprintf(err, err_size, "Wanda needs activation statistics: pass an imatrix");
        return false;
    }
    cmp_gguf *g;
    if (cmp_gguf_open(in, &g, err, err_size) != CMP_GGUF_OK)
        return false;
    char arch[64] = "llama", ff_key[96];
    cmp_gguf_str s;
    if (cmp_gguf_get_str(g, "general.architecture", &s) == CMP_GGUF_OK)
        snprintf(arch, sizeof arch, "%.*s", (int)(s.len < 63 ? s.len : 63), s.ptr);
    snprintf(ff_key, sizeof ff_key, "%s.feed_forward_length", arch);
    uint32_t n_layer = cmp_gguf_arch_u32(g, "block_count", 0),
             n_ff = cmp_gguf_arch_u32(g, "feed_forward_length", 0);
    uint32_t n_keep = n_ff;
    if (p->ffn_remove > 0) {
        n_keep = (uint32_t)((double)n_ff * (1.0 - p->ffn_remove)) / 32 * 32;
        n_keep = n_keep < 32 ? 32 : n_keep;
    }
    rep->n_ff_before = n_ff, rep->n_ff_after = n_keep;
    /* heads: whole KV groups, the same count in every layer, at least one kept */
    uint32_t n_head = cmp_gguf_arch_u32(g, "attention.head_count", 0);
    uint32_t n_head_kv = cmp_gguf_arch_u32(g, "attention.head_count_kv", n_head);
    uint32_t n_embd = cmp_gguf_arch_u32(g, "embedding_length", 0);
    uint32_t head_dim = cmp_gguf_arch_u32(g, "attention.key_length", n_head ? n_embd / n_head : 0);
    uint32_t kv_keep = n_head_kv;
    if (p->heads_remove > 0) {
        if (!n_head || !n_head_kv || n_head % n_head_kv || !head_dim) {
            snprintf(err, err_size,
                     "%s: head pruning needs %s.attention.head_count (%u), head_count_kv (%u) "
                     "and a head size",
                     in, arch, n_head, n_head_kv);
            cmp_gguf_close(g);
            return false;
        }
        /* the removed count rounds down (a fraction of a group stays) */
        uint32_t drop = (uint32_t)((double)n_head_kv * p->heads_remove + 1e-9);
        kv_keep = drop < n_head_kv ? n_head_kv - drop : 1;
    }
    uint32_t group = n_head_kv ? n_head / n_head_kv : 1;
    rep->n_head_before = n_head, rep->n_head_kv_before = n_head_kv;
    rep->n_head_after = kv_keep * group, rep->n_head_kv_after = kv_keep;
    bool heads = kv_keep < n_head_kv;
    uint64_t n_t = cmp_gguf_tensor_count(g), done = 0;
    prune_job *jobs = calloc(n_t ? n_t : 1, sizeof *jobs);
    layer_keep *keep = calloc(n_layer ? n_layer : 1, sizeof *keep);
    uint32_t *groups = heads ? malloc(sizeof *groups * kv_keep) : NULL;
    cmp_gguf_writer *w = cmp_gguf_writer_create();
    bool ok = jobs && w && keep && (!heads || groups), result = false;
    if (!ok)
        snprintf(err, err_size, "out of memory");
    for (uint32_t l = 0; ok && l < n_layer; l++) {
        layer_keep *lk = &keep[l];
        if (n_keep < n_ff) {
            ok = (lk->ffn = malloc(sizeof *lk->ffn * n_keep)) != NULL &&
                 rank_channels(g, p->imatrix, l, n_ff, n_keep, lk->ffn, err, err_size);
        }
        if (ok && heads) {
            ok = (lk->q = malloc(sizeof *lk->q * (uint64_t)kv_keep * group * head_dim)) &&
                 (lk->kv = malloc(sizeof *lk->kv * (uint64_t)kv_keep * head_dim)) &&
                 rank_heads(g, p->imatrix, l, n_head, n_head_kv, head_dim, kv_keep, groups, err,
                            err_size);
            for (uint32_t i = 0; ok && i < kv_keep; i++)
                for (uint32_t d = 0; d < head_dim; d++) {
                    lk->kv[i * head_dim + d] = groups[i] * head_dim + d;
                    for (uint32_t h = 0; h < group; h++)
                        lk->q[(i * group + h) * head_dim + d] =
                            (groups[i] * group + h) * head_dim + d;
                }
        }
        if (!ok && !err[0])
            snprintf(err, err_size, "out of memory");
    }
    /* metadata: the new sizes; the head size written out, since n_embd / n_head no
     * longer gives it */
    char key[96];
    static const char *head_keys[4] = {"attention.head_count", "attention.head_count_kv",
                                       "attention.key_length", "attention.value_length"};
    uint32_t head_vals[4] = {kv_keep * group, kv_keep, head_dim, head_dim};
    bool head_written[4] = {false, false, false, false};
    for (uint64_t i = 0; ok && i < cmp_gguf_kv_count(g); i++) {
        const cmp_gguf_kv *kv = cmp_gguf_kv_at(g, i);
        if (cmp_gguf_str_eq(kv->key, "general.alignment"))
            continue;
        int hk = -1;
        for (int k = 0; heads && k < 4; k++) {
            snprintf(key, sizeof key, "%s.%s", arch, head_keys[k]);
            hk = cmp_gguf_str_eq(kv->key, key) ? k : hk;
        }
        if (n_keep < n_ff && cmp_gguf_str_eq(kv->key, ff_key))
            ok = cmp_gguf_set_u32(w, ff_key, n_keep);
        else if (hk >= 0) {
            snprintf(key, sizeof key, "%s.%s", arch, head_keys[hk]);
            ok = cmp_gguf_set_u32(w, key, head_vals[hk]);
            head_written[hk] = true;
        } else
            ok = cmp_gguf_copy_kv(w, kv);
    }
    for (int k = 0; ok && heads && k < 4; k++)
        if (!head_written[k]) {
            snprintf(key, sizeof key, "%s.%s", arch, head_keys[k]);
            ok = cmp_gguf_set_u32(w, key, head_vals[k]);
        }
    for (uint64_t i = 0; ok && i < n_t; i++) {
        const cmp_gguf_tensor *t = cmp_gguf_tensor_at(g, i);
        prune_job *j = &jobs[i];
        snprintf(j->name, sizeof j->name, "%.*s", (int)(t->name.len < 63 ? t->name.len : 63),
                 t->name.ptr);
        uint32_t layer;
        j->t = t, j->p = p, j->rep = rep, j->done = &done;
        j->role = cmp_role_of(j->name, t->n_dims, &layer);
        j->rows = t->n_dims == 1 ? 1 : t->ne[1], j->k = t->ne[0];
        bool layer_matrix = j->role >= CMP_ROLE_ATTN_Q && j->role <= CMP_ROLE_FFN_DOWN &&
                            strncmp(j->name, "blk.", 4) == 0;
        const layer_keep *lk =
            layer < n_layer && strncmp(j->name, "blk.", 4) == 0 ? &keep[layer] : NULL;
        uint64_t n_q = (uint64_t)kv_keep * group * head_dim, n_kv = (uint64_t)kv_keep * head_dim;
        if (lk && lk->ffn && (j->role == CMP_ROLE_FFN_GATE || j->role == CMP_ROLE_FFN_UP))
            j->keep_rows = lk->ffn, j->rows = n_keep;
        else if (lk && lk->ffn && j->role == CMP_ROLE_FFN_DOWN)
            j->keep_cols = lk->ffn, j->k = n_keep;
        else if (lk && lk->q && j->role == CMP_ROLE_ATTN_Q)
            j->keep_rows = lk->q, j->rows = n_q;
        else if (lk && lk->q && (j->role == CMP_ROLE_ATTN_K || j->role == CMP_ROLE_ATTN_V))
            j->keep_rows = lk->kv, j->rows = n_kv;
        else if (lk && lk->q && j->role == CMP_ROLE_ATTN_OUTPUT)
            j->keep_cols = lk->q, j->k = n_q;
        /* the biases of q, k and v (Qwen2) follow their matrices' rows */
        bool bias = lk && lk->q && t->n_dims == 1 && strstr(j->name, ".bias");
        if (bias && strstr(j->name, ".attn_q."))
            j->keep_cols = lk->q, j->k = n_q;
        else if (bias && (strstr(j->name, ".attn_k.") || strstr(j->name, ".attn_v.")))
            j->keep_cols = lk->kv, j->k = n_kv;
        bool cut = j->keep_rows || j->keep_cols;
        bool prune = (layer_matrix && (p->sparsity > 0 || cut)) || (!layer_matrix && cut);
        if (prune && !cmp_type_get((cmp_type)t->type)) {
            snprintf(err, err_size, "%s: tensor %s has type %s, which vkllm cannot read", in,
                     j->name, cmp_ggml_type_name(t->type));
            ok = false;
            break;
        }
        j->to = prune ? cmp_type_fallback((cmp_type)t->type, j->k) : (cmp_type)t->type;
        uint64_t ne[4] = {j->k, t->n_dims == 1 ? 1 : j->rows, t->ne[2], t->ne[3]};
        uint64_t bytes = prune ? j->rows * cmp_row_bytes(j->to, j->k) : t->bytes;
        ok = cmp_gguf_add_tensor_fill(w, j->name, j->to, t->n_dims, prune ? ne : t->ne, bytes,
                                      prune ? fill : copy_fill, j);
        rep->in_bytes += t->bytes;
        rep->out_bytes += bytes;
    }
    for (uint64_t i = 0; i < n_t; i++)
        jobs[i].total = rep->in_bytes;
    if (ok)
        result = cmp_gguf_write_file(w, out, err, err_size);
    else if (!err[0])
        snprintf(err, err_size, "out of memory");
    cmp_gguf_writer_destroy(w);
    free(jobs);
    for (uint32_t l = 0; keep && l < n_layer; l++)
        free(keep[l].ffn), free(keep[l].q), free(keep[l].kv);
    free(keep);
    free(groups);
    cmp_gguf_close(g);
    return result;
}
