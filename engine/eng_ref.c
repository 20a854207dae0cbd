/* The CPU reference forward pass (see eng_ref.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmp_half.h"
#include "eng_internal.h"
#include "eng_ref.h"
#include "vkb_ref.h"

struct eng_ref {
    const eng_model *m;
    uint32_t n_ctx, n_past;
    uint8_t *k_cache, *v_cache; /* [layer][k_bytes or v_bytes] in the cache layouts */
    vkb_kv_layout k_layout, v_layout;
    uint64_t k_bytes, v_bytes;  /* per layer, multiples of 4 */
    float *freqs, *freqs_local; /* the global layers' rope frequencies, the local ones' */
    eng_ref_input_fn observe;
    void *observe_user;
    const vkb_device *mirror;                /* eng_ref_mirror_session's device */
    uint32_t batch, matmul_min, matmul_tile; /* and its eng_session_chunking */
};

eng_ref *eng_ref_create(const eng_model *m, uint32_t n_ctx, char *err, size_t err_size)
{
    const eng_hparams *hp = &m->hp;
    eng_ref *r = calloc(1, sizeof *r);
    if (r) {
        r->m = m;
        r->n_ctx = n_ctx;
        r->freqs = malloc(sizeof *r->freqs * (hp->n_rot / 2 + 1));
        r->freqs_local = malloc(sizeof *r->freqs * (hp->n_rot / 2 + 1));
    }
    if (!r || !r->freqs || !r->freqs_local ||
        eng_ref_set_kv_types(r, ENG_KV_F16, ENG_KV_F16, 0, 0) != ENG_OK) {
        eng_ref_destroy(r);
        eng_fail(err, err_size, ENG_ERR_HOST_MEMORY, "out of host memory for the reference");
        return NULL;
    }
    eng_model_rope_freqs(m, false, r->freqs);
    eng_model_rope_freqs(m, true, r->freqs_local);
    return r;
}

void eng_ref_destroy(eng_ref *r)
{
    if (!r)
        return;
    free(r->k_cache);
    free(r->v_cache);
    free(r->freqs);
    free(r->freqs_local);
    free(r);
}

uint32_t eng_ref_n_past(const eng_ref *r)
{
    return r->n_past;
}

void eng_ref_reset(eng_ref *r)
{
    r->n_past = 0;
}

eng_status eng_ref_set_kv_types(eng_ref *r, eng_kv_type k, eng_kv_type v, uint32_t group,
                                uint32_t window)
{
    vkb_kv_layout kl, vl;
    if (r->n_past || eng_kv_layouts(r->m->hp.n_head_kv * r->m->hp.head_dim, r->n_ctx, k, v, group,
                                    window, &kl, &vl, NULL, 0) != ENG_OK)
        return ENG_ERR_ARGUMENT;
    uint64_t kb = vkb_kv_bytes(&kl, NULL, 0), vb = vkb_kv_bytes(&vl, NULL, 0);
    size_t layers = r->m->hp.n_layer;
    uint8_t *kc = malloc(layers * kb), *vc = malloc(layers * vb);
    if (!kc || !vc) {
        free(kc);
        free(vc);
        return ENG_ERR_HOST_MEMORY;
    }
    free(r->k_cache);
    free(r->v_cache);
    r->k_cache = kc, r->v_cache = vc;
    r->k_layout = kl, r->v_layout = vl;
    r->k_bytes = kb, r->v_bytes = vb;
    return ENG_OK;
}

void eng_ref_observe_inputs(eng_ref *r, eng_ref_input_fn fn, void *user)
{
    r->observe = fn;
    r->observe_user = user;
}

void eng_ref_mirror_session(eng_ref *r, const eng_session *s)
{
    r->mirror = s ? r->m->dev : NULL;
    if (s)
        eng_session_chunking(s, &r->batch, &r->matmul_min, &r->matmul_tile);
}

/* The product of W and x both rounded to f16, as the cooperative-matrix matmul
 * multiplies them (the sums stay f32). */
static bool product_f16(cmp_type type, const void *w, uint32_t rows, uint32_t k, const float *x,
                        float *y, uint32_t n)
{
    float *wr = malloc(sizeof *wr * (size_t)rows * k), *xr = malloc(sizeof *xr * (size_t)k * n);
    size_t rb = cmp_row_bytes(type, k);
    bool ok = wr && xr;
    for (uint32_t i = 0; ok && i < rows; i++)
        ok = cmp_dequantize(type, (const uint8_t *)w + rb * i, wr + (size_t)i * k, k);
    for (size_t i = 0; ok && i < (size_t)rows * k; i++)
        wr[i] = cmp_f16_to_f32(cmp_f32_to_f16(wr[i]));
    for (size_t i = 0; ok && i < (size_t)k * n; i++)
        xr[i] = cmp_f16_to_f32(cmp_f32_to_f16(x[i]));
    ok = ok && vkb_ref_matmul(CMP_TYPE_F32, wr, rows, k, xr, y, n);
    free(wr);
    free(xr);
    return ok;
}

/* The product of one submission's n columns as the mirrored session runs it: x through
 * 8-bit blocks where the device's matvec (up to 8 columns) or matmul reads them
 * (eng_session.c's takes_q8); W and x in f16 where its matmul runs on cooperative
 * matrices. */
static bool product_chunk(const eng_ref *r, cmp_type type, const void *w, uint32_t rows, uint32_t k,
                          const float *x, float *y, uint32_t n)
{
    bool matmul = n > 8;
    if (r->mirror && matmul && vkb_op_matmul_coopmat(r->mirror))
        return product_f16(type, w, rows, k, x, y, n);
    bool q8 =
        r->mirror && k % 32 == 0 &&
        (matmul ? vkb_op_matmul_int_dot(r->mirror, type) : vkb_op_matvec_int_dot(r->mirror, type));
    if (!q8)
        return vkb_ref_matmul(type, w, rows, k, x, y, n);
    uint32_t *xq = malloc(vkb_q8_bytes(k, n));
    float *xr = malloc(sizeof *xr * (size_t)k * n);
    bool ok = xq && xr;
    if (ok) {
        vkb_ref_quantize_q8(x, k, n, xq);
        vkb_ref_dequantize_q8(xq, k, n, xr);
        ok = vkb_ref_matmul(type, w, rows, k, xr, y, n);
    }
    free(xq);
    free(xr);
    return ok;
}

/* One product as the session runs it: its columns cut into the session's submissions
 * (an eval of the same tokens; eng_chunk_size), each as product_chunk. */
static bool product(const eng_ref *r, cmp_type type, const void *w, uint32_t rows, uint32_t k,
                    const float *x, float *y, uint32_t n)
{
    if (!r->mirror)
        return vkb_ref_matmul(type, w, rows, k, x, y, n);
    for (uint32_t at = 0, c; at < n; at += c) {
        c = eng_chunk_size(n - at, r->batch, r->matmul_min, r->matmul_tile);
        if (!product_chunk(r, type, w, rows, k, x + (size_t)at * k, y + (size_t)at * rows, c))
            return false;
    }
    return true;
}

static bool mul(const eng_ref *r, const eng_weight *w, const float *x, float *y, uint32_t n)
{
    if (r->observe)
        r->observe(r->observe_user, w, x, n);
    if (!w->rank)
        return product(r, w->type, w->data, w->rows, w->k, x, y, n);
    /* factorized: B (A x) */
    float *inner = malloc(sizeof *inner * (size_t)n * w->rank);
    bool ok = inner && product(r, w->type, w->data, w->rank, w->k, x, inner, n) &&
              product(r, w->b_type, w->b_data, w->rows, w->rank, inner, y, n);
    free(inner);
    return ok;
}

eng_status eng_ref_eval(eng_ref *r, const int32_t *tokens, uint32_t n, float *logits,
                        float *capture)
{
    const eng_model *m = r->m;
    const eng_hparams *hp = &m->hp;
    if (n == 0 || (uint64_t)r->n_past + n > r->n_ctx)
        return ENG_ERR_CONTEXT_FULL;
    uint32_t e = hp->n_embd, qw = hp->n_head * hp->head_dim, kvw = hp->n_head_kv * hp->head_dim,
             ff = hp->n_ff;
    size_t N = n;
    float *x = malloc(N * e * 4), *xn = malloc(N * e * 4), *q = malloc(N * qw * 4),
          *k = malloc(N * kvw * 4), *v = malloc(N * kvw * 4), *att = malloc(N * qw * 4),
          *o = malloc(N * e * 4), *g = malloc(N * ff * 4), *u = malloc(N * ff * 4),
          *h = malloc(N * ff * 4);
    int32_t *pos = malloc(N * 4);
    uint32_t *ids = malloc(N * 4);
    eng_status st = ENG_ERR_HOST_MEMORY;
    if (!x || !xn || !q || !k || !v || !att || !o || !g || !u || !h || !pos || !ids)
        goto done;
    for (uint32_t i = 0; i < n; i++) {
        ids[i] = (uint32_t)tokens[i];
        pos[i] = (int32_t)(r->n_past + i);
    }
    if (!vkb_ref_get_rows(m->token_embd.type, m->token_embd.data, m->token_embd.rows, e, ids, n, x))
        goto done;
    if (hp->embd_scale != 1.0f)
        vkb_ref_scale(x, x, N * e, hp->embd_scale);
    vkb_rope_shape rq = {hp->head_dim, hp->n_rot, hp->n_head, n, hp->rope_neox};
    vkb_rope_shape rk = {hp->head_dim, hp->n_rot, hp->n_head_kv, n, hp->rope_neox};
    vkb_attention_shape as = {hp->head_dim,  hp->n_head,     hp->n_head_kv, n, r->n_past,
                              r->n_past + n, hp->attn_scale, NULL,          0, hp->attn_softcap};
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        const eng_layer_weights *L = &m->layers[l];
        bool local = eng_layer_local(hp, l);
        const float *freqs = local ? r->freqs_local : r->freqs;
        as.window = local ? hp->n_swa : 0;
        vkb_ref_rms_norm(xn, x, L->attn_norm.data, e, n, hp->rms_eps);
        if (!mul(r, &L->wq, xn, q, n) || !mul(r, &L->wk, xn, k, n) || !mul(r, &L->wv, xn, v, n))
            goto done;
        if (L->bq.data) {
            vkb_ref_add_bias(q, q, L->bq.data, qw, n);
            vkb_ref_add_bias(k, k, L->bk.data, kvw, n);
            vkb_ref_add_bias(v, v, L->bv.data, kvw, n);
        }
        if (L->q_norm.data) {
            vkb_ref_rms_norm(q, q, L->q_norm.data, hp->head_dim, n * hp->n_head, hp->rms_eps);
            vkb_ref_rms_norm(k, k, L->k_norm.data, hp->head_dim, n * hp->n_head_kv, hp->rms_eps);
        }
        vkb_ref_rope(q, q, pos, freqs, &rq);
        vkb_ref_rope(k, k, pos, freqs, &rk);
        /* quantize-on-write with the CPU codec, as the GPU's kernel does */
        uint8_t *kc = r->k_cache + (size_t)l * r->k_bytes,
                *vc = r->v_cache + (size_t)l * r->v_bytes;
        if (!vkb_ref_kv_store(&r->k_layout, kc, r->n_past, k, n) ||
            !vkb_ref_kv_store(&r->v_layout, vc, r->n_past, v, n))
            goto done;
        if (!vkb_ref_attention_kv(att, q, kc, &r->k_layout, vc, &r->v_layout, &as) ||
            !mul(r, &L->wo, att, o, n))
            goto done;
        if (hp->post_norms)
            vkb_ref_rms_norm(o, o, L->attn_post_norm.data, e, n, hp->rms_eps);
        vkb_ref_add(x, x, o, N * e);
        vkb_ref_rms_norm(xn, x, L->ffn_norm.data, e, n, hp->rms_eps);
        if (!mul(r, &L->gate, xn, g, n) || !mul(r, &L->up, xn, u, n))
            goto done;
        vkb_ref_glu_mul(hp->act, h, g, u, N * ff);
        if (!mul(r, &L->down, h, o, n))
            goto done;
        if (hp->post_norms)
            vkb_ref_rms_norm(o, o, L->ffn_post_norm.data, e, n, hp->rms_eps);
        vkb_ref_add(x, x, o, N * e);
        if (capture)
            memcpy(capture + (size_t)l * N * e, x, N * e * 4);
    }
    vkb_ref_rms_norm(xn, x + (N - 1) * e, m->output_norm.data, e, 1, hp->rms_eps);
    if (!mul(r, &m->output, xn, logits, 1))
        goto done;
    if (hp->logit_softcap > 0.0f)
        vkb_ref_softcap(logits, logits, hp->n_vocab, hp->logit_softcap);
    r->n_past += n;
    st = ENG_OK;
done:
    free(x), free(xn), free(q), free(k), free(v), free(att), free(o), free(g), free(u), free(h);
    free(pos), free(ids);
    return st;
}
