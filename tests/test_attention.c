/* Attention against the double references in vkb_ref.h: causal grouped-query attention
 * fused (online softmax, split-K) and unfused over f16, q8_0, q4_0 and KIVI caches, positions
 * read on the GPU, output as 8-bit blocks, the cooperative-matrix prefill variant, and the
 * caches' quantize-on-write against the CPU codec. Budgets as in test_ops.c (the Vulkan
 * specification's precision of each instruction), named per case. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmp_half.h"
#include "cmp_kivi.h"
#include "cmp_quant.h"
#include "harness.h"
#include "ops_common.h"
#include "vkb_ref.h"

/* Causal grouped-query attention over an f16 cache against the double reference, fused
 * and unfused (scores in memory), for head sizes 2 to 256, several tiles of keys,
 * queries in the middle of the cache and cache positions beyond the last query (which
 * must not be seen: they hold large values); sliding windows and soft caps (the cap's
 * exp at |x| ≤ 2 |s| / cap adds a few ULP of the cap to a score). Budget: f32 dot products and sums
 * of at most a few hundred terms with exp at |x| ≤ 16 — 4e-5 relative plus 2e-6 absolute on outputs
 * in [-1, 1]. */
static void test_attention(void)
{
    static const vkb_attention_shape shapes[] = {
        {8, 8, 4, 1, 0, 1, 0, NULL, 0, 0},
        {8, 8, 4, 5, 0, 5, 0, NULL, 0, 0},
        {2, 3, 1, 4, 2, 9, 0, NULL, 0, 0},
        {64, 4, 4, 3, 130, 140, 0, NULL, 0, 0},
        {128, 32, 8, 1, 299, 300, 0, NULL, 0, 0},
        {256, 2, 1, 2, 69, 71, 0, NULL, 0, 0},
        /* sliding windows (gemma's local layers): prefill rows each with its own first key,
         * a decode row far into the cache; soft-capped scores (gemma 2), with a window */
        {64, 4, 2, 9, 300, 309, 0, NULL, 64, 0},
        {128, 8, 2, 1, 700, 701, 0, NULL, 100, 0},
        {64, 8, 4, 5, 0, 5, 0, NULL, 0, 5.f},
        {256, 8, 4, 3, 200, 203, 0, NULL, 50, 2.f},
    };
    struct fixture f;
    if (!setup(&f))
        return;
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        vkb_attention_shape sh = shapes[c];
        sh.scale = 1.0f / sqrtf((float)sh.head_dim);
        size_t qn = (size_t)sh.tokens * sh.heads * sh.head_dim;
        size_t kvn = (size_t)sh.n_kv * sh.kv_heads * sh.head_dim;
        float *q = t_random_floats(qn, 70 + c, -1.f, 1.f);
        float *k = t_random_floats(kvn, 80 + c, -1.f, 1.f),
              *v = t_random_floats(kvn, 90 + c, -1.f, 1.f);
        uint16_t *kh = malloc(kvn * 2), *vh = malloc(kvn * 2);
        float *got = malloc(qn * 4), *want = malloc(qn * 4), *got_u = malloc(qn * 4);
        begin(&f);
        vkb_buffer *bq = upload(&f, q, qn * 4), *bk = upload(&f, NULL, kvn * 2),
                   *bv = upload(&f, NULL, kvn * 2), *bo = upload(&f, NULL, qn * 4),
                   *bu = upload(&f, NULL, qn * 4),
                   *bs = upload(&f, NULL, vkb_attention_scores_bytes(&sh));
        if (!q || !k || !v || !kh || !vh || !got || !want || !got_u || !bq || !bk || !bv || !bo ||
            !bu || !bs) {
            t_fail_at(__FILE__, __LINE__, "setup failed");
            goto next;
        }
        size_t visible = (size_t)(sh.pos0 + sh.tokens) * sh.kv_heads * sh.head_dim;
        for (size_t i = 0; i < kvn; i++) {
            kh[i] = cmp_f32_to_f16(i < visible ? k[i] : 300.f);
            vh[i] = cmp_f32_to_f16(i < visible ? v[i] : 1000.f);
        }
        CHECK_OK(vkb_buffer_upload(t_dev, bk, 0, kh, kvn * 2));
        CHECK_OK(vkb_buffer_upload(t_dev, bv, 0, vh, kvn * 2));
        CHECK_OK(vkb_op_attention(f.stream, bo, bq, bk, bv, &sh));
        CHECK_OK(vkb_op_attention_unfused(f.stream, bu, bq, bk, bv, bs, &sh));
        finish(&f, bo, got, qn * 4);
        CHECK_OK(vkb_buffer_download(t_dev, bu, 0, got_u, qn * 4));
        CHECK(vkb_ref_attention(want, q, kh, vh, &sh));
        char what[112];
        snprintf(what, sizeof what,
                 "attention hd=%u heads=%u/%u tokens=%u pos0=%u n_kv=%u window=%u softcap=%g",
                 sh.head_dim, sh.heads, sh.kv_heads, sh.tokens, sh.pos0, sh.n_kv, sh.window,
                 (double)sh.softcap);
        compare(what, got, want, qn, 4e-5, 2e-6);
        strcat(what, " unfused");
        compare(what, got_u, want, qn, 4e-5, 2e-6);
    next:
        free(q), free(k), free(v), free(kh), free(vh), free(got), free(got_u), free(want);
    }
    teardown(&f);
}

/* Positions read on the GPU (VKB_AT_POS): one recording of a decode step's attention
 * block (q copied in, rope and the caches' write, split-K attention) submitted again at
 * several positions, the positions buffer rewritten between, gives the bits of the same
 * ops recorded at each position: the output and both caches whole. f16 caches through
 * rope_store_f16; q8_0 keys and q4_0 values, and f16 beside q8_0 or q4_0, through rope and
 * kv_store_at; split counts whose splits are empty at the first positions. */
static void check_at_pos(struct fixture *f, vkb_kv_type kt, vkb_kv_type vt, uint32_t splits,
                         uint32_t window, uint64_t seed)
{
    const uint32_t D = 64, H = 4, HKV = 2, n_ctx = 48, kvw = HKV * D;
    const uint32_t steps[] = {0, 1, 7, 30, 47};
    vkb_kv_layout kl = {kt, true, kvw, n_ctx, 0, 0}, vl = {vt, false, kvw, n_ctx, 0, 0};
    uint64_t kb = vkb_kv_bytes(&kl, NULL, 0), vb = vkb_kv_bytes(&vl, NULL, 0);
    float *q = t_random_floats(H * D, seed, -1.f, 1.f),
          *k = t_random_floats(kvw, seed + 1, -1.f, 1.f);
    float *v = t_random_floats(kvw, seed + 2, -1.f, 1.f);
    float *rows = t_random_floats((size_t)n_ctx * kvw, seed + 3, -1.f, 1.f);
    float freqs[D / 2];
    uint8_t *host[2][3] = {{malloc(H * D * 4), malloc(kb), malloc(vb)},
                           {malloc(H * D * 4), malloc(kb), malloc(vb)}};
    vkb_stream *once = NULL;
    bool ok = q && k && v && rows;
    for (int i = 0; i < 6; i++)
        ok = ok && host[i / 3][i % 3];
    CHECK_OK(vkb_stream_create(t_dev, 0, &once));
    if (!ok || !once) {
        t_fail_at(__FILE__, __LINE__, "setup failed");
        goto out;
    }
    vkb_rope_freqs(freqs, D, 10000.f, 1.f);
    begin(f);
    /* set [0]: the recording made once, [1]: recorded at each position */
    vkb_buffer *bq = upload(f, q, H * D * 4), *bk = upload(f, k, kvw * 4),
               *bv = upload(f, v, kvw * 4), *bf = upload(f, freqs, sizeof freqs),
               *brows = upload(f, rows, (size_t)n_ctx * kvw * 4), *bpos = upload(f, NULL, 4),
               *part = upload(f, NULL, (size_t)H * splits * (D + 2) * 4);
    vkb_buffer *qr[2], *kr[2], *out[2], *kc[2], *vc[2];
    for (int i = 0; i < 2; i++) {
        qr[i] = upload(f, NULL, H * D * 4);
        kr[i] = upload(f, NULL, kvw * 4);
        out[i] = upload(f, NULL, H * D * 4);
        kc[i] = upload(f, NULL, kb);
        vc[i] = upload(f, NULL, vb);
        ok = ok && qr[i] && kr[i] && out[i] && kc[i] && vc[i];
    }
    if (!ok || !bq || !bk || !bv || !bf || !brows || !bpos || !part)
        goto out;
    /* every row of both caches' sets written first, as a long prompt leaves them */
    for (int i = 0; i < 2; i++) {
        CHECK_OK(vkb_op_kv_store(f->stream, kc[i], &kl, 0, brows, n_ctx));
        CHECK_OK(vkb_op_kv_store(f->stream, vc[i], &vl, 0, brows, n_ctx));
    }
    finish(f, NULL, NULL, 0);
    vkb_rope_shape rq = {D, D, H, 1, false}, rk = {D, D, HKV, 1, false};
    for (size_t si = 0; si < sizeof steps / sizeof steps[0]; si++) {
        uint32_t p = steps[si];
        int32_t pv = (int32_t)p;
        CHECK_OK(vkb_buffer_upload(t_dev, bpos, 0, &pv, 4));
        for (int set = 0; set < 2; set++) {
            bool at = set == 0;
            vkb_stream *st = at ? once : f->stream;
            if (!at || si == 0) {
                CHECK_OK(vkb_stream_begin(st));
                CHECK_OK(vkb_stream_copy(st, bq, 0, qr[set], 0, H * D * 4));
                vkb_attention_shape sh = {D,
                                          H,
                                          HKV,
                                          1,
                                          at ? VKB_AT_POS : p,
                                          at ? n_ctx : p + 1,
                                          0.125f,
                                          at ? bpos : NULL,
                                          window,
                                          0};
                if (kt == VKB_KV_F16 && vt == VKB_KV_F16) {
                    CHECK_OK(vkb_op_rope_store_f16(st, qr[set], bk, bv, bpos, bf, &rq, HKV, kc[set],
                                                   vc[set], at ? VKB_AT_POS : p));
                } else {
                    CHECK_OK(vkb_op_rope(st, qr[set], qr[set], bpos, bf, &rq));
                    CHECK_OK(vkb_op_rope(st, kr[set], bk, bpos, bf, &rk));
                    if (at) {
                        CHECK_OK(vkb_op_kv_store_at(st, kc[set], &kl, bpos, kr[set], 1));
                        CHECK_OK(vkb_op_kv_store_at(st, vc[set], &vl, bpos, bv, 1));
                    } else {
                        CHECK_OK(vkb_op_kv_store(st, kc[set], &kl, p, kr[set], 1));
                        CHECK_OK(vkb_op_kv_store(st, vc[set], &vl, p, bv, 1));
                    }
                }
                CHECK_OK(vkb_op_attention_split(st, out[set], qr[set], kc[set], &kl, vc[set], &vl,
                                                part, splits, &sh));
            }
            CHECK_OK(vkb_stream_submit(st));
            CHECK_OK(vkb_stream_wait(st));
            uint64_t bytes[3] = {H * D * 4, kb, vb};
            const vkb_buffer *from[3] = {out[set], kc[set], vc[set]};
            for (int i = 0; i < 3; i++)
                CHECK_OK(vkb_buffer_download(t_dev, from[i], 0, host[set][i], bytes[i]));
        }
        static const char *what[3] = {"the output", "the key cache", "the value cache"};
        uint64_t bytes[3] = {H * D * 4, kb, vb};
        for (int i = 0; i < 3; i++)
            CHECK_MSG(memcmp(host[0][i], host[1][i], bytes[i]) == 0,
                      "positions read on the GPU, %s keys / %s values, %u splits, window %u, "
                      "position %u: %s differs from the ops recorded at that position",
                      vkb_kv_type_name(kt), vkb_kv_type_name(vt), splits, window, p, what[i]);
    }
out:
    vkb_stream_destroy(once);
    free(q), free(k), free(v), free(rows);
    for (int i = 0; i < 6; i++)
        free(host[i / 3][i % 3]);
}

static void test_at_pos(void)
{
    struct fixture f;
    if (!setup(&f))
        return;
    check_at_pos(&f, VKB_KV_F16, VKB_KV_F16, 1, 0, 9100);
    check_at_pos(&f, VKB_KV_F16, VKB_KV_F16, 4, 0, 9200);
    check_at_pos(&f, VKB_KV_Q8_0, VKB_KV_Q4_0, 3, 0, 9300);
    check_at_pos(&f, VKB_KV_F16, VKB_KV_Q8_0, 2, 0, 9400);
    check_at_pos(&f, VKB_KV_Q4_0, VKB_KV_F16, 1, 0, 9500);
    /* a sliding window shorter than the later positions: the splits cut from its start */
    check_at_pos(&f, VKB_KV_F16, VKB_KV_F16, 3, 16, 9600);
    check_at_pos(&f, VKB_KV_Q8_0, VKB_KV_F16, 1, 5, 9700);
    teardown(&f);
}

/* Attention writing 8-bit blocks (vkb_op_attention_split_q8): the bytes of the float
 * output quantized by vkb_op_quantize_q8, without splits (attention.comp OUT_Q8) and with
 * them (attention_merge.comp Q8); heads of 32 to 128, GQA, decode and prefill tiles, f16
 * and quantized caches. */
static void test_attention_q8(void)
{
    static const struct {
        vkb_attention_shape sh;
        uint32_t splits;
        vkb_kv_type k, v;
    } cases[] = {
        {{64, 8, 2, 1, 40, 41, 0, NULL, 0, 0}, 1, VKB_KV_F16, VKB_KV_F16},
        {{128, 4, 4, 1, 70, 71, 0, NULL, 0, 0}, 3, VKB_KV_F16, VKB_KV_F16},
        {{32, 6, 2, 5, 9, 14, 0, NULL, 0, 0}, 1, VKB_KV_Q8_0, VKB_KV_Q4_0},
        {{64, 8, 8, 19, 0, 19, 0, NULL, 0, 0}, 1, VKB_KV_F16, VKB_KV_F16},
        {{128, 32, 8, 2, 300, 302, 0, NULL, 0, 0}, 5, VKB_KV_Q8_0, VKB_KV_Q8_0},
    };
    struct fixture f;
    if (!setup(&f))
        return;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        vkb_attention_shape sh = cases[c].sh;
        sh.scale = 1.0f / sqrtf((float)sh.head_dim);
        uint32_t row = sh.kv_heads * sh.head_dim, k = sh.heads * sh.head_dim;
        vkb_kv_layout kl = {cases[c].k, true, row, sh.n_kv, 0, 0},
                      vl = {cases[c].v, false, row, sh.n_kv, 0, 0};
        uint64_t kb = vkb_kv_bytes(&kl, NULL, 0), vb = vkb_kv_bytes(&vl, NULL, 0);
        uint64_t xq_bytes = vkb_q8_bytes(k, sh.tokens);
        size_t qn = (size_t)sh.tokens * k;
        float *q = t_random_floats(qn, 400 + c, -1.f, 1.f);
        float *rows = t_random_floats((size_t)sh.n_kv * row, 410 + c, -1.f, 1.f);
        uint8_t *got = malloc(xq_bytes), *want = malloc(xq_bytes);
        begin(&f);
        vkb_buffer *bq = upload(&f, q, qn * 4),
                   *brows = upload(&f, rows, (size_t)sh.n_kv * row * 4), *bk = upload(&f, NULL, kb),
                   *bv = upload(&f, NULL, vb), *bo = upload(&f, NULL, qn * 4),
                   *xa = upload(&f, NULL, xq_bytes), *xb = upload(&f, NULL, xq_bytes),
                   *part = upload(&f, NULL, vkb_attention_partials_bytes(&sh, cases[c].splits));
        if (!q || !rows || !got || !want || !bq || !brows || !bk || !bv || !bo || !xa || !xb ||
            !part) {
            t_fail_at(__FILE__, __LINE__, "setup failed");
            goto next;
        }
        CHECK_OK(vkb_op_kv_store(f.stream, bk, &kl, 0, brows, sh.n_kv));
        CHECK_OK(vkb_op_kv_store(f.stream, bv, &vl, 0, brows, sh.n_kv));
        CHECK_OK(
            vkb_op_attention_split(f.stream, bo, bq, bk, &kl, bv, &vl, part, cases[c].splits, &sh));
        CHECK_OK(vkb_op_quantize_q8(f.stream, xb, bo, k, sh.tokens));
        CHECK_OK(vkb_op_attention_split_q8(f.stream, xa, bq, bk, &kl, bv, &vl, part,
                                           cases[c].splits, &sh));
        finish(&f, xa, got, xq_bytes);
        CHECK_OK(vkb_buffer_download(t_dev, xb, 0, want, xq_bytes));
        size_t bad = 0, first = 0;
        for (size_t i = xq_bytes; i-- > 0;)
            if (got[i] != want[i])
                bad++, first = i;
        CHECK_MSG(bad == 0,
                  "attention_q8 %s/%s hd=%u heads=%u/%u tokens=%u pos0=%u, %u splits: %zu of %llu "
                  "bytes differ from attention then quantize_q8, first at %zu",
                  vkb_kv_type_name(kl.type), vkb_kv_type_name(vl.type), sh.head_dim, sh.heads,
                  sh.kv_heads, sh.tokens, sh.pos0, cases[c].splits, bad,
                  (unsigned long long)xq_bytes, first);
    next:
        free(q), free(rows), free(got), free(want);
    }
    vkb_attention_shape odd = {40, 4, 4, 1, 0, 1, 0.1f, NULL, 0, 0};
    begin(&f);
    vkb_buffer *a = upload(&f, NULL, 1 << 16);
    vkb_kv_layout l = {VKB_KV_F16, true, 160, 1, 0, 0};
    CHECK_STATUS(vkb_op_attention_split_q8(f.stream, a, a, a, &l, a, &l, a, 1, &odd),
                 VKB_ERR_UNSUPPORTED);
    CHECK(strstr(vkb_device_errmsg(t_dev), "a multiple of 32") != NULL);
    finish(&f, NULL, NULL, 0);
    teardown(&f);
}

/* attention_coopmat.comp's arithmetic in double: q·scale rounded to f16, the scores
 * (soft-capped where shape has a cap) and their row maximum m over the visible keys (the
 * window's, where there is one), p = exp(s - m) rounded to f16, out = Σ p·v / Σ p. */
static void coopmat_attention_ref(float *out, const float *q, const uint16_t *kh,
                                  const uint16_t *vh, const vkb_attention_shape *sh)
{
    uint32_t D = sh->head_dim, group = sh->heads / sh->kv_heads;
    double *s = malloc(sizeof *s * sh->n_kv), *o = malloc(sizeof *o * D);
    float *qr = malloc(sizeof *qr * D);
    for (uint32_t t = 0; s && o && qr && t < sh->tokens; t++)
        for (uint32_t h = 0; h < sh->heads; h++) {
            uint32_t g = h / group, lim = sh->pos0 + t + 1;
            uint32_t lo = vkb_attention_first_key(sh, sh->pos0 + t);
            const float *qt = q + ((size_t)t * sh->heads + h) * D;
            for (uint32_t d = 0; d < D; d++)
                qr[d] = cmp_f16_to_f32(cmp_f32_to_f16(qt[d] * sh->scale));
            double m = -INFINITY, l = 0;
            for (uint32_t j = lo; j < lim; j++) {
                const uint16_t *kj = kh + ((size_t)j * sh->kv_heads + g) * D;
                s[j] = 0;
                for (uint32_t d = 0; d < D; d++)
                    s[j] += (double)qr[d] * cmp_f16_to_f32(kj[d]);
                if (sh->softcap > 0)
                    s[j] = sh->softcap * tanh(s[j] / sh->softcap);
                m = s[j] > m ? s[j] : m;
            }
            for (uint32_t d = 0; d < D; d++)
                o[d] = 0;
            for (uint32_t j = lo; j < lim; j++) {
                double p = cmp_f16_to_f32(cmp_f32_to_f16((float)exp(s[j] - m)));
                const uint16_t *vj = vh + ((size_t)j * sh->kv_heads + g) * D;
                l += p;
                for (uint32_t d = 0; d < D; d++)
                    o[d] += p * cmp_f16_to_f32(vj[d]);
            }
            for (uint32_t d = 0; d < D; d++)
                out[((size_t)t * sh->heads + h) * D + d] = (float)(o[d] / l);
        }
    free(s);
    free(o);
    free(qr);
}

/* Prefill attention on cooperative matrices (attention_coopmat.comp): on the matrix units
 * where the device has them, else emulated. Head sizes 16 to 128, GQA, several query tiles
 * (32 tokens) and key tiles (32 keys), queries in the middle of the cache and positions
 * past the last query holding large values; f16, q8_0, q4_0 and KIVI caches, read as
 * stored and rounded to f16 in the kernel. Against its own arithmetic in double
 * (coopmat_attention_ref, on the cache as the CPU codec reads it, rounded to f16), the
 * differences are f32 sums and exp, and the f16 rounding of a value or weight that lands
 * near a midpoint: 2^-11 of it, a few hundred in all: 1e-3 absolute on outputs in
 * [-1, 1] (measured worst 5e-5 on lavapipe). Cache rows of a multiple of 64 values, as
 * the quantized types need. */
static void test_attention_coopmat(void)
{
    static const vkb_attention_shape shapes[] = {
        {16, 4, 4, 7, 0, 7, 0, NULL, 0, 0},
        {64, 4, 4, 33, 30, 80, 0, NULL, 0, 0},
        {80, 8, 4, 70, 5, 75, 0, NULL, 0, 0},
        {128, 8, 2, 40, 100, 150, 0, NULL, 0, 0},
        {96, 4, 2, 2, 0, 2, 0, NULL, 0, 0},
        {32, 4, 2, 100, 0, 100, 0, NULL, 0, 0},
        /* a sliding window starting inside a key tile and moving across them; with a cap */
        {64, 4, 4, 33, 30, 80, 0, NULL, 20, 0},
        {32, 4, 2, 100, 0, 100, 0, NULL, 45, 8.f},
    };
    /* each pair is a pipeline, which lavapipe takes about 20 s to compile emulated: the
     * reads of every type are attention.comp's (vkb_kv.glsl), tested in attention_kv */
    static const vkb_kv_type pairs[][2] = {
        {VKB_KV_F16, VKB_KV_F16}, {VKB_KV_Q8_0, VKB_KV_Q4_0}, {VKB_KV_KIVI4, VKB_KV_KIVI2}};
    if (!t_coopmat_begin())
        return;
    struct fixture f;
    if (!setup(&f))
        return;
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++)
        for (size_t pi = 0; pi < sizeof pairs / sizeof pairs[0]; pi++) {
            if (pi > 0 && c > 1) /* the other cache types on the two small shapes (time) */
                continue;
            vkb_attention_shape sh = shapes[c];
            sh.scale = 1.0f / sqrtf((float)sh.head_dim);
            uint32_t row = sh.kv_heads * sh.head_dim;
            vkb_kv_layout kl = {pairs[pi][0], true, row, sh.n_kv, 32, (uint32_t)(c % 3) * 32};
            vkb_kv_layout vl = kl;
            vl.type = pairs[pi][1], vl.keys = false;
            char why[200] = "";
            uint64_t k_bytes = vkb_kv_bytes(&kl, why, sizeof why),
                     v_bytes = vkb_kv_bytes(&vl, why, sizeof why);
            CHECK_MSG(k_bytes && v_bytes, "case %zu/%zu: %s", c, pi, why);
            size_t qn = (size_t)sh.tokens * sh.heads * sh.head_dim, kvn = (size_t)sh.n_kv * row;
            float *q = t_random_floats(qn, 170 + c, -1.f, 1.f);
            float *k = t_random_floats(kvn, 180 + c, -1.f, 1.f),
                  *v = t_random_floats(kvn, 190 + c, -1.f, 1.f);
            uint8_t *kc = calloc(1, k_bytes + 4), *vc = calloc(1, v_bytes + 4);
            uint16_t *kh = malloc(kvn * 2), *vh = malloc(kvn * 2);
            float *got = malloc(qn * 4), *want = malloc(qn * 4);
            begin(&f);
            vkb_buffer *bq = upload(&f, q, qn * 4), *bk = upload(&f, NULL, k_bytes),
                       *bv = upload(&f, NULL, v_bytes), *bo = upload(&f, NULL, qn * 4);
            if (!q || !k || !v || !kc || !vc || !kh || !vh || !got || !want || !bq || !bk || !bv ||
                !bo) {
                t_fail_at(__FILE__, __LINE__, "setup failed");
                goto next;
            }
            size_t visible = (size_t)(sh.pos0 + sh.tokens) * row;
            for (size_t i = visible; i < kvn; i++)
                k[i] = 300.f, v[i] = 1000.f; /* beyond the last query: must not be seen */
            CHECK(vkb_ref_kv_store(&kl, kc, 0, k, sh.n_kv));
            CHECK(vkb_ref_kv_store(&vl, vc, 0, v, sh.n_kv));
            CHECK_OK(vkb_buffer_upload(t_dev, bk, 0, kc, k_bytes));
            CHECK_OK(vkb_buffer_upload(t_dev, bv, 0, vc, v_bytes));
            CHECK_OK(vkb_op_attention_kv(f.stream, bo, bq, bk, &kl, bv, &vl, &sh));
            finish(&f, bo, got, qn * 4);
            /* the reference reads the cache as the CPU codec does, then rounds to f16 */
            CHECK(vkb_ref_kv_read(&kl, kc, sh.n_kv, k) && vkb_ref_kv_read(&vl, vc, sh.n_kv, v));
            for (size_t i = 0; i < kvn; i++) {
                kh[i] = cmp_f32_to_f16(k[i]);
                vh[i] = cmp_f32_to_f16(v[i]);
            }
            coopmat_attention_ref(want, q, kh, vh, &sh);
            char what[128];
            snprintf(what, sizeof what,
                     "attention coopmat %s/%s hd=%u heads=%u/%u tokens=%u pos0=%u n_kv=%u",
                     vkb_kv_type_name(kl.type), vkb_kv_type_name(vl.type), sh.head_dim, sh.heads,
                     sh.kv_heads, sh.tokens, sh.pos0, sh.n_kv);
            compare(what, got, want, qn, 0, 1e-3);
        next:
            free(q), free(k), free(v), free(kc), free(vc), free(kh), free(vh), free(got),
                free(want);
        }
    vkb_op_coopmat_mode(t_dev, VKB_COOPMAT_AUTO);
    teardown(&f);
}

/* Counts blocks of a quantized cache row that differ from the CPU codec's by more than one
 * step of the scale's f16 bits or of any value. */
static uint64_t kv_block_mismatches(cmp_type type, const uint8_t *got, const uint8_t *want,
                                    uint64_t blocks)
{
    uint64_t bad = 0, bb = cmp_type_get(type)->block_bytes;
    for (uint64_t b = 0; b < blocks; b++, got += bb, want += bb) {
        int dg = got[0] | got[1] << 8, dw = want[0] | want[1] << 8;
        bool off = abs(dg - dw) > 1;
        for (int j = 0; j < 32 && !off; j++) {
            int a, c;
            if (type == CMP_TYPE_Q8_0) {
                a = (int8_t)got[2 + j], c = (int8_t)want[2 + j];
            } else {
                int sh = j < 16 ? 0 : 4;
                a = got[2 + j % 16] >> sh & 15, c = want[2 + j % 16] >> sh & 15;
            }
            off = abs(a - c) > 1;
        }
        bad += off;
    }
    return bad;
}

/* Writes positions 0 .. n of x ([n][values] on the device) into a cache in pieces, as a
 * prefill and later chunks and decode steps would: half, then 1, 3, 17, 64, 1, ... rows,
 * each through `piece` (a copy, so every store's x starts at offset 0). The same pieces
 * into the host cache with the reference. */
static void store_pieces(struct fixture *f, const vkb_buffer *cache, void *host_cache,
                         const vkb_kv_layout *l, const vkb_buffer *x, const float *host_x,
                         const vkb_buffer *piece, uint32_t n)
{
    static const uint32_t steps[] = {1, 3, 17, 64};
    uint32_t at = 0, step = 0;
    while (at < n) {
        uint32_t rows = at == 0 ? (n / 2 ? n / 2 : n) : steps[step++ % 4];
        rows = rows < n - at ? rows : n - at;
        uint64_t bytes = (uint64_t)rows * l->values * 4;
        CHECK_OK(vkb_stream_copy(f->stream, x, (uint64_t)at * l->values * 4, piece, 0, bytes));
        CHECK_OK(vkb_op_kv_store(f->stream, cache, l, at, piece, rows));
        CHECK(vkb_ref_kv_store(l, host_cache, at, host_x + (size_t)at * l->values, rows));
        at += rows;
    }
}

/* Compressed KV caches: quantize-on-write against the CPU codec (q8_0, q4_0: no block
 * more than one step of its scale or of a value apart; KIVI: the caches read back
 * through the reference equal but for at most 0.5% of values, none more than two steps
 * of the coarsest group apart), and attention over pairs of key and value types against
 * the double reference reading the same cache bytes, in one pass and split-K (7 splits:
 * some empty for short caches, some ending before the causal limit): same budget as
 * above. KIVI caches vary group (32, 64) and window (0, 1 or 2 groups) with the shape, so
 * short caches stay in the window and long ones fold many times, wrapping the ring. */
#define SPLITS 7
static void test_attention_kv(void)
{
    static const vkb_attention_shape shapes[] = {
        {16, 8, 4, 5, 0, 5, 0, NULL, 0, 0},
        {32, 6, 2, 7, 3, 12, 0, NULL, 0, 0},
        {64, 4, 4, 3, 130, 140, 0, NULL, 0, 0},
        {128, 32, 8, 1, 299, 300, 0, NULL, 0, 0},
        {256, 2, 1, 2, 69, 71, 0, NULL, 0, 0},
        /* groups of more than 4 query heads take several workgroups: 7 (Qwen2-0.5B), 16 */
        {64, 14, 2, 3, 5, 9, 0, NULL, 0, 0},
        {64, 16, 1, 2, 40, 42, 0, NULL, 0, 0},
        /* caches of 1000 and 4097 positions (decode rows at the end of a long context) */
        {128, 4, 4, 2, 998, 1000, 0, NULL, 0, 0},
        {64, 8, 2, 1, 4096, 4097, 0, NULL, 0, 0},
        /* prefill tiles of query rows: 8 tokens per workgroup without GQA (19: a partial
         * tile), 4 with groups of 2, each row with its own causal limit */
        {64, 8, 8, 19, 0, 19, 0, NULL, 0, 0},
        {32, 4, 2, 13, 5, 18, 0, NULL, 0, 0},
        /* the other head sizes models use: 80 (Phi-2-like), 96 (Phi-3), 8 (stories260K) */
        {80, 8, 4, 3, 20, 23, 0, NULL, 0, 0},
        {96, 12, 2, 1, 199, 200, 0, NULL, 0, 0},
        {8, 8, 8, 4, 60, 64, 0, NULL, 0, 0},
        /* a sliding window (gemma 3's 512) over a long cache, decode: the splits cut from
         * the window's first key; an odd window over prefill rows; a soft cap */
        {64, 8, 2, 1, 4096, 4097, 0, NULL, 512, 0},
        {128, 8, 4, 3, 300, 303, 0, NULL, 37, 0},
        {64, 4, 2, 2, 100, 102, 0, NULL, 0, 10.f},
    };
    /* The key type and the value type are specialization constants read by separate code
     * (k_pair, v_pair and the block path for keys): every type as keys and as values
     * covers it, with f16 beside each kind. Each pair is a pipeline of about ten seconds
     * of LLVM on lavapipe. */
    static const vkb_kv_type pairs[][2] = {
        {VKB_KV_F16, VKB_KV_F16},   {VKB_KV_Q8_0, VKB_KV_Q4_0}, {VKB_KV_KIVI4, VKB_KV_KIVI2},
        {VKB_KV_KIVI2, VKB_KV_F16}, {VKB_KV_Q4_0, VKB_KV_Q8_0}, {VKB_KV_KIVI2, VKB_KV_KIVI4},
        {VKB_KV_F16, VKB_KV_Q8_0},
    };
    /* Outside the all-variants run the reductions are what changes, the same for every
     * cache type: the first four pairs, which read each type as keys or values. */
    const size_t n_pairs = t_all_variants() ? sizeof pairs / sizeof pairs[0] : 4;
    struct fixture f;
    if (!setup(&f))
        return;
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++)
        for (size_t pi = 0; pi < n_pairs; pi++) {
            vkb_attention_shape sh = shapes[c];
            sh.scale = 1.0f / sqrtf((float)sh.head_dim);
            uint32_t row = sh.kv_heads * sh.head_dim, group = c % 2 ? 32 : 64;
            vkb_kv_layout kl = {pairs[pi][0], true, row, sh.n_kv, group, (uint32_t)(c % 3) * group};
            vkb_kv_layout vl = kl;
            vl.type = pairs[pi][1], vl.keys = false;
            uint64_t k_bytes = vkb_kv_bytes(&kl, NULL, 0), v_bytes = vkb_kv_bytes(&vl, NULL, 0);
            size_t qn = (size_t)sh.tokens * sh.heads * sh.head_dim;
            size_t kvn = (size_t)sh.n_kv * row;
            float *q = t_random_floats(qn, 170 + c, -1.f, 1.f);
            float *k = t_random_floats(kvn, 180 + c, -1.f, 1.f),
                  *v = t_random_floats(kvn, 190 + c, -1.f, 1.f);
            uint8_t *kc = malloc(k_bytes), *vc = malloc(v_bytes), *kc_ref = malloc(k_bytes),
                    *vc_ref = malloc(v_bytes);
            float *got = malloc(qn * 4), *want = malloc(qn * 4), *got_split = malloc(qn * 4),
                  *read = malloc(kvn * 4), *read_ref = malloc(kvn * 4);
            begin(&f);
            size_t visible = (size_t)(sh.pos0 + sh.tokens) * row;
            for (size_t i = visible; k && v && i < kvn; i++)
                k[i] = 300.f, v[i] = 1000.f; /* beyond the last query: must not be seen */
            vkb_buffer *bq = upload(&f, q, qn * 4), *bk = upload(&f, k, kvn * 4),
                       *bv = upload(&f, v, kvn * 4), *bpiece = upload(&f, NULL, kvn * 4),
                       *bkc = upload(&f, NULL, k_bytes), *bvc = upload(&f, NULL, v_bytes),
                       *bsplit = upload(&f, NULL, qn * 4),
                       *bpart = upload(&f, NULL, vkb_attention_partials_bytes(&sh, SPLITS)),
                       *bo = upload(&f, NULL, qn * 4);
            if (!q || !k || !v || !kc || !vc || !kc_ref || !vc_ref || !got || !want || !got_split ||
                !read || !read_ref || !k_bytes || !v_bytes || !bq || !bk || !bv || !bpiece ||
                !bkc || !bvc || !bo || !bsplit || !bpart) {
                t_fail_at(__FILE__, __LINE__, "setup failed");
                goto next;
            }
            store_pieces(&f, bkc, kc_ref, &kl, bk, k, bpiece, sh.n_kv);
            store_pieces(&f, bvc, vc_ref, &vl, bv, v, bpiece, sh.n_kv);
            CHECK_OK(vkb_op_attention_kv(f.stream, bo, bq, bkc, &kl, bvc, &vl, &sh));
            CHECK_OK(vkb_op_attention_split(f.stream, bsplit, bq, bkc, &kl, bvc, &vl, bpart, SPLITS,
                                            &sh));
            finish(&f, bo, got, qn * 4);
            CHECK_OK(vkb_buffer_download(t_dev, bsplit, 0, got_split, qn * 4));
            CHECK_OK(vkb_buffer_download(t_dev, bkc, 0, kc, k_bytes));
            CHECK_OK(vkb_buffer_download(t_dev, bvc, 0, vc, v_bytes));
            char what[160];
            snprintf(what, sizeof what,
                     "attention %s keys, %s values (group %u, window %u), hd=%u heads=%u/%u "
                     "tokens=%u pos0=%u n_kv=%u sliding window %u softcap %g",
                     vkb_kv_type_name(kl.type), vkb_kv_type_name(vl.type), kl.group, kl.window,
                     sh.head_dim, sh.heads, sh.kv_heads, sh.tokens, sh.pos0, sh.n_kv, sh.window,
                     (double)sh.softcap);
            for (int which = 0; which < 2; which++) {
                const vkb_kv_layout *l = which ? &vl : &kl;
                const uint8_t *cache = which ? vc : kc, *ref = which ? vc_ref : kc_ref;
                const char *side = which ? "value" : "key";
                if (l->type == VKB_KV_Q8_0 || l->type == VKB_KV_Q4_0) {
                    cmp_type t = l->type == VKB_KV_Q8_0 ? CMP_TYPE_Q8_0 : CMP_TYPE_Q4_0;
                    uint64_t rb = cmp_row_bytes(t, row), bad = 0;
                    for (uint32_t j = 0; j < sh.n_kv; j++)
                        bad += kv_block_mismatches(t, cache + j * rb, ref + j * rb, row / 32);
                    CHECK_MSG(bad == 0, "%s: %llu %s blocks more than a step from the codec", what,
                              (unsigned long long)bad, side);
                    continue;
                }
                /* f16 and KIVI: both caches dequantized */
                CHECK(vkb_ref_kv_read(l, cache, sh.n_kv, read));
                CHECK(vkb_ref_kv_read(l, ref, sh.n_kv, read_ref));
                double step = l->type == VKB_KV_KIVI2 ? 1000.0 * 2 / 3 : 1000.0 * 2 / 15;
                size_t differ = 0, far = 0;
                for (size_t i = 0; i < kvn; i++) {
                    double d = fabs((double)read[i] - read_ref[i]);
                    differ += d > 1e-6 * (1 + fabs(read_ref[i]));
                    far += d > 2 * step;
                }
                CHECK_MSG(differ * 200 <= kvn && far == 0,
                          "%s: %zu of %zu %s values differ from the reference store, %zu by "
                          "more than two steps",
                          what, differ, kvn, side, far);
            }
            CHECK(vkb_ref_attention_kv(want, q, kc, &kl, vc, &vl, &sh));
            compare(what, got, want, qn, 4e-5, 2e-6);
            strcat(what, " split");
            compare(what, got_split, want, qn, 4e-5, 2e-6);
        next:
            free(q), free(k), free(v), free(kc), free(vc), free(kc_ref), free(vc_ref), free(got),
                free(got_split), free(want), free(read), free(read_ref);
        }
    teardown(&f);
}

/* KIVI's quantization error: per channel for keys, per position for values, against the
 * values written (at most half a step of the group's scale beyond f16's rounding of the
 * minimum), and the window exact to f16. Also: a cache whose keys have an outlier channel
 * (100x the others) loses far less with per-channel keys than q4_0's per-position
 * blocks do, which is why KIVI groups keys that way. */
static void test_kivi_error(void)
{
    const uint32_t values = 128, n = 600;
    float *x = t_random_floats((size_t)n * values, 77, -1.f, 1.f);
    float *read = malloc(sizeof *read * n * values);
    for (uint32_t p = 0; x && p < n; p++)
        x[(size_t)p * values + 5] = 100.f + x[(size_t)p * values + 5]; /* an outlier channel */
    for (int bits = 0; bits < 2 && x && read; bits++)
        for (int keys = 0; keys < 2; keys++) {
            vkb_kv_layout l = {bits ? VKB_KV_KIVI2 : VKB_KV_KIVI4, keys, values, n, 64, 128};
            uint8_t *cache = malloc(vkb_kv_bytes(&l, NULL, 0));
            CHECK(cache && vkb_ref_kv_store(&l, cache, 0, x, 300));
            CHECK(cache && vkb_ref_kv_store(&l, cache, 300, x + 300 * values, n - 300));
            CHECK(cache && vkb_ref_kv_read(&l, cache, n, read));
            uint32_t nq = vkb_kv_quantized(&l, n), top = bits ? 3 : 15;
            CHECK(nq == (n - 128) / 64 * 64);
            double worst = 0, worst_window = 0, sum_sq = 0;
            for (uint32_t p = 0; p < n; p++)
                for (uint32_t c = 0; c < values; c++) {
                    double want = x[(size_t)p * values + c], got = read[(size_t)p * values + c];
                    double err = fabs(got - want);
                    if (p >= nq) {
                        worst_window = err > worst_window ? err : worst_window;
                        continue;
                    }
                    /* the group's range: along positions (keys) or channels (values) */
                    double mn = INFINITY, mx = -INFINITY;
                    for (uint32_t i = 0; i < 64; i++) {
                        float v = keys ? x[(size_t)(p / 64 * 64 + i) * values + c]
                                       : x[(size_t)p * values + c / 64 * 64 + i];
                        mn = v < mn ? v : mn, mx = v > mx ? v : mx;
                    }
                    double budget = (mx - mn) / top * (0.5 + 1e-3) + (mx - mn) * 0x1p-10 +
                                    fabs(mn) * 0x1p-11 * 2;
                    worst = err / budget > worst ? err / budget : worst;
                    if (c != 5)
                        sum_sq += err * err;
                }
            CHECK_MSG(worst <= 1.0, "kivi%d %s: an error of %.3f of its budget", bits ? 2 : 4,
                      keys ? "keys" : "values", worst);
            CHECK_MSG(worst_window <= 100.0 * 0x1p-11, "the f16 window is off by %g", worst_window);
            if (keys && !bits) {
                /* q4_0 of the same keys, per position, on the other channels */
                double q4_sq = 0;
                float *row = malloc(sizeof *row * values);
                uint8_t blk[18 * 4];
                for (uint32_t p = 0; row && p < nq; p++) {
                    CHECK(cmp_quantize(CMP_TYPE_Q4_0, x + (size_t)p * values, blk, values));
                    CHECK(cmp_dequantize(CMP_TYPE_Q4_0, blk, row, values));
                    for (uint32_t c = 0; c < values; c++)
                        if (c != 5)
                            q4_sq += (row[c] - x[(size_t)p * values + c]) *
                                     (row[c] - x[(size_t)p * values + c]);
                }
                free(row);
                CHECK_MSG(sum_sq * 10 < q4_sq,
                          "kivi4 keys: squared error %g, q4_0 per position %g (outlier channel)",
                          sum_sq, q4_sq);
            }
            free(cache);
        }
    free(x);
    free(read);
}

int main(int argc, char **argv)
{
    static const t_case cases[] = {
        {"attention", test_attention, true},
        {"attention_kv", test_attention_kv, true},
        {"at_pos", test_at_pos, true},
        {"attention_q8", test_attention_q8, true},
        {"attention_coopmat", test_attention_coopmat, true},
        {"kivi_error", test_kivi_error, false},
    };
    return t_main(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
}
