/* A session: the f16 KV cache, scratch activations, and the forward pass as a sequence
 * of backend ops recorded into one stream per chunk of tokens. */
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "eng_internal.h"

/* How a decode step ends: with nothing, the greedy pick (vkb_op_argmax_feed) or a
 * sampler's (vkb_op_sample_feed, with these settings), fed to the next step. */
struct step_pick {
    enum { PICK_NONE, PICK_GREEDY, PICK_SAMPLE } mode;
    vkb_sample_params sp; /* PICK_SAMPLE */
};

struct eng_session {
    eng_model *m;
    vkb_device *dev;
    uint32_t n_ctx, n_batch, n_past;
    bool capture, unfused, all_logits, unfused_products, record_each;
    uint32_t matmul_min;    /* eng_session_params.matmul_min, resolved */
    uint32_t matmul_tile;   /* the matmul's columns per tile (TN) */
    uint32_t logits_tokens; /* tokens with logits from the last chunk */
    /* params.best_logits: the logits stay on the device and these come back, or they come
     * to host memory and best_host[0..best_count) is selected from them after each eval
     * (params.best_place) */
    uint32_t best_n, best_count;
    eng_candidate *best_host;
    vkb_arena *kv, *scratch, *staging;
    /* Two command streams. A decode step (one token, logits) is recorded with its
     * positions read on the GPU where the session allows (reusable()): that recording
     * serves every later step whose attention takes as many splits, submitted again
     * without recording. Elsewhere, and when the split count changes, the next decode step
     * is recorded into the other stream while the GPU runs this one, so that the host's
     * recording time leaves the critical path. Other chunks record afresh, into a stream
     * that does not hold a reusable step. `stream` is the one being recorded, `ran` the
     * one submitted last; slots[i] says what streams[i] holds. */
    vkb_stream *streams[2], *stream, *ran;
    struct step_slot {
        bool ready;            /* a decode step, for position p0 or (any_pos) every position */
        bool any_pos;          /* its positions read on the GPU (VKB_AT_POS) */
        uint32_t p0;           /* !any_pos: its position */
        uint32_t splits;       /* any_pos: its attention's split counts (step_splits) */
        struct step_pick pick; /* how it ends (after_logits()) */
        double ms;             /* host time its recording took */
    } slots[2];
    bool at_pos; /* the recording in progress reads its positions on the GPU */
    /* how decode steps end: since the first eng_session_generate, with its pick */
    struct step_pick pick;
    vkb_buffer **k_cache, **v_cache;  /* per layer: n_ctx rows of the kv width */
    vkb_kv_layout k_layout, v_layout; /* types: eng_kv_type mirrors vkb_kv_type */
    uint64_t k_bytes, v_bytes;        /* of one layer's cache */
    /* scratch, sized for n_batch tokens */
    vkb_buffer *x, *xn, *q, *k, *v, *att, *o, *g, *u, *h, *last, *last_n;
    vkb_buffer *freqs, *freqs_local; /* rope: the global layers', the local layers' */
    vkb_buffer *scores;              /* unfused attention: n_batch × heads × n_ctx scores */
    vkb_buffer *partials;            /* split-K attention's partial results */
    vkb_buffer *lowrank; /* factorized matrices' inner products: n_batch × largest rank */
    /* the integer-dot-product matvec's input: xq_of quantized (k values, n columns); the
     * recording sets xq_of to NULL where any input buffer is about to be rewritten */
    vkb_buffer *xq;
    const vkb_buffer *xq_of;
    uint32_t xq_k, xq_n;
    uint32_t splits; /* forced split count, 0 = the device's choice */
    pthread_mutex_t stats_lock;
    eng_stats stats; /* updated after each eval under stats_lock */
    double born;     /* monotonic seconds at creation */
    /* host-visible: written before submit, read after wait (the logits in device memory
     * where the best come back from the GPU: best_n && !best_host); picked is the ring of
     * tokens decode steps pick on the GPU (eng_session_generate), draws the ring of the
     * draws they sample with, hist the sampler's penalty window (vkb_op_sample_feed) */
    vkb_buffer *ids, *pos, *logits, *captured, *picked, *best, *draws, *hist;
    vkb_buffer *best_scratch; /* the best logits' first pass (vkb_op_top_logits) */
    uint32_t captured_tokens;
    double last_gpu_ms, last_record_ms, last_wait_ms;
    bool last_record_ahead; /* the last step was recorded while the one before ran */
    bool last_reused;       /* the last step submitted a recording made for an earlier one */
    char err[512];
};

/* The GPU writes the best logits as vkb_top_logit; the host reads them as eng_candidate. */
_Static_assert(sizeof(eng_candidate) == sizeof(vkb_top_logit) &&
                   offsetof(eng_candidate, logit) == offsetof(vkb_top_logit, logit),
               "eng_candidate mirrors vkb_top_logit");

/* Entries of the ring of picks: more than the steps in flight (two). */
#define PICK_RING 8

static eng_status sfail(eng_session *s, eng_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static eng_status sfail(eng_session *s, eng_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
    return st;
}

/* A backend failure: the status and the device's message, prefixed with what was done. */
static eng_status vfail(eng_session *s, vkb_status vs, const char *what)
{
    return sfail(s, eng_from_vkb(vs), "%s: %s (%s)", what, vkb_device_errmsg(s->dev),
                 vkb_status_name(vs));
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* After an eval: the counters, the history and the last step's GPU time per op. */
static void record_stats(eng_session *s, uint32_t n, double seconds)
{
    pthread_mutex_lock(&s->stats_lock);
    eng_stats *st = &s->stats;
    bool decode = n == 1;
    double tps = seconds > 0 ? n / seconds : 0;
    if (decode) {
        st->decode_tokens += n, st->decode_seconds += seconds, st->last_decode_tps = tps;
    } else {
        st->prefill_tokens += n, st->prefill_seconds += seconds, st->last_prefill_tps = tps;
    }
    st->evals++;
    if (st->history_count == ENG_STATS_HISTORY) {
        memmove(st->history, st->history + 1, sizeof st->history[0] * (ENG_STATS_HISTORY - 1));
        st->history_count--;
    }
    st->history[st->history_count].at = now_s() - s->born;
    st->history[st->history_count].tps = tps;
    st->history[st->history_count].decode = decode;
    st->history_count++;
    st->last_step_gpu_ms = s->last_gpu_ms;
    st->last_step_record_ms = s->last_record_ms;
    st->last_step_recorded_ahead = s->last_record_ahead;
    st->last_step_reused = s->last_reused;
    st->decode_steps_reused += decode && s->last_reused;
    st->last_step_wait_ms = s->last_wait_ms;
    eng_session_kv_info(s, &st->kv);
    st->op_count = 0;
    for (uint32_t i = 0; s->ran && i < vkb_stream_timing_count(s->ran); i++) {
        vkb_timing t = vkb_stream_timing(s->ran, i);
        const char *name = t.label ? t.label : "?";
        uint32_t k = 0;
        while (k < st->op_count && strcmp(st->ops[k].name, name) != 0)
            k++;
        if (k == st->op_count) {
            if (k == ENG_STATS_OPS)
                continue;
            snprintf(st->ops[k].name, sizeof st->ops[k].name, "%s", name);
            st->ops[k].ms = 0, st->ops[k].calls = 0;
            st->op_count++;
        }
        st->ops[k].ms += t.ms;
        st->ops[k].calls++;
    }
    pthread_mutex_unlock(&s->stats_lock);
}

void eng_session_stats(eng_session *s, eng_stats *out)
{
    pthread_mutex_lock(&s->stats_lock);
    *out = s->stats;
    pthread_mutex_unlock(&s->stats_lock);
}

const char *eng_kv_type_name(eng_kv_type t)
{
    return (unsigned)t < ENG_KV_TYPE_COUNT ? vkb_kv_type_name((vkb_kv_type)t) : "?";
}

bool eng_kv_type_parse(const char *name, eng_kv_type *out)
{
    for (int t = ENG_KV_F16; t < ENG_KV_TYPE_COUNT; t++)
        if (strcmp(name, eng_kv_type_name((eng_kv_type)t)) == 0) {
            *out = (eng_kv_type)t;
            return true;
        }
    return false;
}

eng_status eng_kv_layouts(uint32_t values, uint32_t n_ctx, eng_kv_type k, eng_kv_type v,
                          uint32_t group, uint32_t window, vkb_kv_layout *kl, vkb_kv_layout *vl,
                          char *err, size_t err_size)
{
    /* eng_kv_type and vkb_kv_type list the same types in the same order */
    _Static_assert((int)ENG_KV_KIVI2 == (int)VKB_KV_KIVI2 &&
                       (int)ENG_KV_TYPE_COUNT == (int)VKB_KV_TYPE_COUNT,
                   "eng_kv_type mirrors vkb_kv_type");
    group = group ? group : ENG_KV_GROUP_DEFAULT;
    window = window == ENG_KV_WINDOW_NONE ? 0 : window ? window : ENG_KV_WINDOW_DEFAULT;
    *kl = (vkb_kv_layout){(vkb_kv_type)k, true, values, n_ctx, group, window};
    *vl = (vkb_kv_layout){(vkb_kv_type)v, false, values, n_ctx, group, window};
    char why[200];
    if ((unsigned)k >= ENG_KV_TYPE_COUNT || (unsigned)v >= ENG_KV_TYPE_COUNT ||
        !vkb_kv_bytes(kl, why, sizeof why) || !vkb_kv_bytes(vl, why, sizeof why))
        return eng_fail(err, err_size, ENG_ERR_UNSUPPORTED, "%s key / %s value cache: %s",
                        eng_kv_type_name(k), eng_kv_type_name(v), why);
    return ENG_OK;
}

void eng_session_kv_info(const eng_session *s, eng_kv_info *out)
{
    const eng_hparams *hp = &s->m->hp;
    uint64_t values = (uint64_t)s->n_ctx * hp->n_head_kv * hp->head_dim;
    out->k = (eng_kv_type)s->k_layout.type;
    out->v = (eng_kv_type)s->v_layout.type;
    bool kivi = out->k >= ENG_KV_KIVI4 || out->v >= ENG_KV_KIVI4;
    out->group = kivi ? s->k_layout.group : 0;
    out->window = kivi ? s->k_layout.window : 0;
    out->bytes = (uint64_t)hp->n_layer * (s->k_bytes + s->v_bytes);
    out->bits_per_value = values ? 8.0 * (double)(s->k_bytes + s->v_bytes) / (2.0 * values) : 0;
    out->tokens = s->n_past;
    out->capacity = s->n_ctx;
}

/* The largest rank of the model's factorized matrices (0: none). */
static uint32_t max_rank(const eng_model *m)
{
    uint32_t r = 0;
    for (uint32_t l = 0; l < m->hp.n_layer; l++) {
        const eng_dev_weight *w[] = {&m->d_layers[l].wq,  &m->d_layers[l].wk,   &m->d_layers[l].wv,
                                     &m->d_layers[l].wo,  &m->d_layers[l].gate, &m->d_layers[l].up,
                                     &m->d_layers[l].down};
        for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
            r = w[i]->rank > r ? w[i]->rank : r;
    }
    return r;
}

/* The longest input of a weight product: what the 8-bit copy of an input must hold. */
static uint32_t q8_width(const eng_model *m)
{
    uint32_t w = m->hp.n_embd, qw = m->hp.n_head * m->hp.head_dim, r = max_rank(m);
    w = qw > w ? qw : w;
    w = m->n_ff_pad > w ? m->n_ff_pad : w;
    w = r > w ? r : w;
    return (w + 31) / 32 * 32;
}

/* Columns the 8-bit copy of an input must hold: a batch where prefill's products dot
 * integers too, else a decode step's. */
static uint32_t q8_columns(const vkb_device *dev, uint64_t batch)
{
    bool matmul =
        vkb_op_matmul_int_dot(dev, CMP_TYPE_Q4_0) || vkb_op_matmul_int_dot(dev, CMP_TYPE_Q8_0);
    uint64_t n = matmul ? batch : batch < 8 ? batch : 8;
    return (uint32_t)n;
}

/* Split-K attention leaves (head_dim + 2) floats per query row and split; the automatic
 * choice keeps rows x splits within VKB_ATTENTION_PARTIAL_ROWS (vkb_attention_splits), a
 * forced one is sized for the batch. CPU drivers never split. */
static uint64_t partials_bytes(vkb_device *dev, const eng_hparams *hp, const eng_session_params *p)
{
    uint64_t per_row = (uint64_t)(hp->head_dim + 2) * 4;
    if (p->attention_splits > 1)
        return (uint64_t)p->n_batch * hp->n_head * p->attention_splits * per_row;
    if (vkb_device_get_info(dev)->type == VKB_DEVICE_CPU)
        return 4;
    return VKB_ATTENTION_PARTIAL_ROWS * per_row;
}

static eng_status alloc(eng_session *s, vkb_arena *arena, uint64_t bytes, vkb_buffer **out,
                        const char *what)
{
    vkb_status vs = vkb_buffer_alloc(arena, bytes ? bytes : 4, 0, out);
    return vs == VKB_OK ? ENG_OK : vfail(s, vs, what);
}

eng_status eng_session_create(eng_model *m, const eng_session_params *params, eng_session **out,
                              char *err, size_t err_size)
{
    *out = NULL;
    if (!m->dev)
        return eng_fail(err, err_size, ENG_ERR_ARGUMENT,
                        "the model is not on a device (eng_model_upload)");
    const eng_hparams *hp = &m->hp;
    eng_session_params p = params ? *params : (eng_session_params){0};
    if (p.n_ctx == 0)
        p.n_ctx = hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096;
    if (p.n_batch == 0)
        p.n_batch = 512;
    if (p.n_batch > p.n_ctx)
        p.n_batch = p.n_ctx;
    if (p.n_ctx > (1u << 20) || p.n_batch > 65535)
        return eng_fail(err, err_size, ENG_ERR_ARGUMENT,
                        "context %u (at most 2^20) or batch %u (at most 65535) too large", p.n_ctx,
                        p.n_batch);
    if (p.best_logits && p.all_logits)
        return eng_fail(err, err_size, ENG_ERR_ARGUMENT,
                        "the best %u logits or every token's logits (all_logits), not both",
                        p.best_logits);
    if (p.best_logits > hp->n_vocab)
        p.best_logits = hp->n_vocab; /* every logit; padding where some are NaN or -inf */
    eng_session *s = calloc(1, sizeof *s);
    if (!s)
        return eng_fail(err, err_size, ENG_ERR_HOST_MEMORY, "out of host memory");
    s->m = m;
    s->dev = m->dev;
    s->n_ctx = p.n_ctx;
    s->n_batch = p.n_batch;
    s->capture = p.capture;
    s->matmul_min = p.all_logits || p.capture ? 1
                    : p.matmul_min            ? p.matmul_min
                                              : vkb_op_matmul_min_columns(s->dev);
    s->matmul_tile = vkb_op_matmul_plan(s->dev).tn;
    s->unfused = p.unfused_attention;
    s->unfused_products = p.unfused_products;
    s->record_each = p.record_each_step;
    s->all_logits = p.all_logits;
    s->best_n = p.best_logits;
    bool host_best =
        p.best_place == ENG_BEST_HOST ||
        (p.best_place == ENG_BEST_AUTO && vkb_device_get_info(m->dev)->type == VKB_DEVICE_CPU);
    s->splits = p.attention_splits;
    pthread_mutex_init(&s->stats_lock, NULL);
    s->born = now_s();
    s->k_cache = calloc(hp->n_layer, sizeof *s->k_cache);
    s->v_cache = calloc(hp->n_layer, sizeof *s->v_cache);
    if (p.best_logits && host_best)
        s->best_host = malloc((size_t)p.best_logits * sizeof *s->best_host);
    eng_status st = ENG_OK;
    vkb_status vs;
    if (!s->k_cache || !s->v_cache || (p.best_logits && host_best && !s->best_host)) {
        st = sfail(s, ENG_ERR_HOST_MEMORY, "out of host memory");
        goto done;
    }
    uint64_t kv_row = (uint64_t)hp->n_head_kv * hp->head_dim;
    if ((st = eng_kv_layouts((uint32_t)kv_row, p.n_ctx, p.kv_k, p.kv_v, p.kv_group, p.kv_window,
                             &s->k_layout, &s->v_layout, s->err, sizeof s->err)) != ENG_OK)
        goto done;
    if (p.unfused_attention && (p.kv_k != ENG_KV_F16 || p.kv_v != ENG_KV_F16)) {
        st = sfail(s, ENG_ERR_UNSUPPORTED,
                   "the unfused attention path reads f16 caches only (asked: %s keys, %s values)",
                   eng_kv_type_name(p.kv_k), eng_kv_type_name(p.kv_v));
        goto done;
    }
    s->k_bytes = vkb_kv_bytes(&s->k_layout, NULL, 0);
    s->v_bytes = vkb_kv_bytes(&s->v_layout, NULL, 0);
    uint64_t cache_bytes = s->k_bytes > s->v_bytes ? s->k_bytes : s->v_bytes;
    uint64_t B = p.n_batch, e = hp->n_embd, qw = (uint64_t)hp->n_head * hp->head_dim,
             ff = m->n_ff_pad;
    struct {
        bool staging;
        uint64_t bytes;
        vkb_buffer **buf;
    } list[] = {
        {false, B * e * 4, &s->x},
        {false, B * e * 4, &s->xn},
        {false, B * qw * 4, &s->q},
        {false, B * kv_row * 4, &s->k},
        {false, B * kv_row * 4, &s->v},
        {false, B * qw * 4, &s->att},
        {false, B * e * 4, &s->o},
        {false, B * ff * 4, &s->g},
        {false, B * ff * 4, &s->u},
        {false, B * ff * 4, &s->h},
        {false, e * 4, &s->last},
        {false, e * 4, &s->last_n},
        {false, hp->n_rot / 2 * 4, &s->freqs},
        {false, hp->n_rot / 2 * 4, &s->freqs_local},
        {false, p.unfused_attention ? B * hp->n_head * p.n_ctx * 4 : 4, &s->scores},
        {false, partials_bytes(s->dev, hp, &p), &s->partials},
        {false, B * max_rank(m) * 4 + 4, &s->lowrank},
        {false, vkb_q8_bytes(q8_width(m), q8_columns(s->dev, B)) + 4, &s->xq},
        {true, B * 4, &s->ids},
        {true, B * 4, &s->pos},
        {!p.best_logits || host_best, (p.all_logits ? B : 1) * hp->n_vocab * 4, &s->logits},
        {true, host_best ? 4 : (uint64_t)p.best_logits * sizeof(eng_candidate) + 4, &s->best},
        {false, host_best ? 4 : vkb_top_logits_scratch_bytes(hp->n_vocab, p.best_logits, 0) + 4,
         &s->best_scratch},
        {true, p.capture ? hp->n_layer * B * e * 4 : 4, &s->captured},
        {true, PICK_RING * 4, &s->picked},
        {true, PICK_RING * 4, &s->draws},
        {true, host_best || !p.best_logits ? 8 : (2 + VKB_SAMPLE_MAX) * 4, &s->hist},
    };
    const size_t n_list = sizeof list / sizeof list[0];
    uint64_t sizes[2] = {0, 0};
    for (size_t i = 0; i < n_list; i++)
        sizes[list[i].staging] += list[i].bytes;
    if ((vs = eng_arena_create(s->dev, VKB_PURPOSE_KV, 2 * hp->n_layer * cache_bytes,
                               2 * hp->n_layer, &s->kv)) ||
        (vs = eng_arena_create(s->dev, VKB_PURPOSE_SCRATCH, sizes[0], n_list, &s->scratch)) ||
        (vs = eng_arena_create(s->dev, VKB_PURPOSE_STAGING, sizes[1], n_list, &s->staging)) ||
        (vs = vkb_stream_create(s->dev, p.profile ? 24 * hp->n_layer + 16 : 0, &s->streams[0])) ||
        (vs = vkb_stream_create(s->dev, p.profile ? 24 * hp->n_layer + 16 : 0, &s->streams[1]))) {
        st = vfail(s, vs, "creating the session");
        goto done;
    }
    s->stream = s->streams[0];
    for (uint32_t l = 0; l < hp->n_layer && st == ENG_OK; l++) {
        if ((st = alloc(s, s->kv, s->k_bytes, &s->k_cache[l], "KV cache")) == ENG_OK)
            st = alloc(s, s->kv, s->v_bytes, &s->v_cache[l], "KV cache");
    }
    if (st != ENG_OK) {
        sfail(s, st, "the KV cache for %u positions (%.1f MiB) does not fit: %s", p.n_ctx,
              (double)hp->n_layer * (s->k_bytes + s->v_bytes) / 1048576.0,
              vkb_device_errmsg(s->dev));
        goto done;
    }
    for (size_t i = 0; i < n_list && st == ENG_OK; i++)
        st = alloc(s, list[i].staging ? s->staging : s->scratch, list[i].bytes, list[i].buf,
                   "scratch");
    if (st != ENG_OK)
        goto done;
    float *freqs = malloc(hp->n_rot / 2 * sizeof *freqs);
    if (!freqs) {
        st = sfail(s, ENG_ERR_HOST_MEMORY, "out of host memory");
        goto done;
    }
    eng_model_rope_freqs(s->m, false, freqs);
    vs = vkb_buffer_upload(s->dev, s->freqs, 0, freqs, hp->n_rot / 2 * sizeof *freqs);
    eng_model_rope_freqs(s->m, true, freqs);
    if (vs == VKB_OK)
        vs = vkb_buffer_upload(s->dev, s->freqs_local, 0, freqs, hp->n_rot / 2 * sizeof *freqs);
    free(freqs);
    if (vs != VKB_OK)
        st = vfail(s, vs, "uploading the rope frequencies");
done:
    if (st != ENG_OK) {
        eng_fail(err, err_size, st, "%s", s->err);
        eng_session_destroy(s);
        return st;
    }
    *out = s;
    return ENG_OK;
}

void eng_session_destroy(eng_session *s)
{
    if (!s)
        return;
    for (int i = 0; i < 2; i++)
        if (s->streams[i])
            vkb_stream_destroy(s->streams[i]);
    vkb_arena_destroy(s->staging);
    vkb_arena_destroy(s->scratch);
    vkb_arena_destroy(s->kv);
    free(s->k_cache);
    free(s->v_cache);
    free(s->best_host);
    pthread_mutex_destroy(&s->stats_lock);
    free(s);
}

/* Whether a product of W with n columns reads its input as 8-bit blocks: where the
 * device dots integers faster (matvec up to 8 columns, matmul beyond). */
static bool takes_q8(const eng_session *s, const vkb_matrix *w, uint32_t n)
{
    return w->k % 32 == 0 && (n <= 8 ? vkb_op_matvec_int_dot(s->dev, w->type)
                                     : vkb_op_matmul_int_dot(s->dev, w->type));
}

/* The 8-bit blocks in s->xq now hold x (k values, n columns). */
static void xq_holds(eng_session *s, const vkb_buffer *x, uint32_t k, uint32_t n)
{
    s->xq_of = x;
    s->xq_k = k;
    s->xq_n = n;
}

/* s->xq made to hold x (k values, n columns) as 8-bit blocks, unless it already does. */
static vkb_status quantize_once(eng_session *s, const vkb_buffer *x, uint32_t k, uint32_t n)
{
    if (s->xq_of == x && s->xq_k == k && s->xq_n == n)
        return VKB_OK;
    vkb_status vs = vkb_op_quantize_q8(s->stream, s->xq, x, k, n);
    if (vs == VKB_OK)
        xq_holds(s, x, k, n);
    return vs;
}

/* out = W·x for n columns (add: out += W·x, one output, matvec sizes only): matvec up to
 * 8 columns, matmul beyond. Where the device dots integers faster, matvec reads x
 * quantized to 8-bit blocks, quantized once per input (or by the op that wrote x, which
 * sets xq_of). */
static vkb_status product_to(eng_session *s, const vkb_matrix *w, const vkb_buffer *x,
                             const vkb_outputs *out, uint32_t n, bool add)
{
    vkb_stream *st = s->stream;
    if (!takes_q8(s, w, n)) {
        if (n > 8)
            return vkb_op_matmul_split(st, w, x, out, n);
        return add ? vkb_op_matvec_add(st, w, x, out->y[0], n)
                   : vkb_op_matvec_split(st, w, x, out, n);
    }
    vkb_status vs = quantize_once(s, x, w->k, n);
    if (vs != VKB_OK)
        return vs;
    if (n > 8)
        return vkb_op_matmul_q8_split(st, w, s->xq, out, n);
    return add ? vkb_op_matvec_q8_add(st, w, s->xq, out->y[0], n)
               : vkb_op_matvec_q8_split(st, w, s->xq, out, n);
}

/* y = W·x (add: y += W·x) for n columns, as product_to. */
static vkb_status product(eng_session *s, const vkb_matrix *w, const vkb_buffer *x,
                          const vkb_buffer *y, uint32_t n, bool add)
{
    vkb_outputs out = {1, {y}, {w->rows}};
    return product_to(s, w, x, &out, n, add);
}

/* y = W x for n columns; a factorized W as B (A x), through the session's scratch. */
static vkb_status mul(eng_session *s, const eng_dev_weight *w, const vkb_buffer *x,
                      const vkb_buffer *y, uint32_t n)
{
    vkb_status vs;
    if (!w->rank)
        return product(s, &w->matrix, x, y, n, false);
    if ((vs = product(s, &w->matrix, x, s->lowrank, n, false)) != VKB_OK)
        return vs;
    if (s->xq_of == s->lowrank)
        s->xq_of = NULL; /* rewritten */
    return product(s, &w->b, s->lowrank, y, n, false);
}

/* The products that read xn, into out's buffers: as one over the stacked matrix where
 * the model has it, else one by one (members[i] into out->y[i]). */
static vkb_status products(eng_session *s, const eng_dev_weight *stacked,
                           const eng_dev_weight *const *members, const vkb_outputs *out, uint32_t n)
{
    if (stacked->buffer)
        return product_to(s, &stacked->matrix, s->xn, out, n, false);
    for (uint32_t i = 0; i < out->count; i++) {
        vkb_status vs = mul(s, members[i], s->xn, out->y[i], n);
        if (vs != VKB_OK)
            return vs;
    }
    return VKB_OK;
}

/* The residual stream x += W·in: one matvec that adds where it can, else the product into
 * o and an add. With post_norm (gemma 2 and 3): x += rms_norm(W·in) · post_norm, the
 * product into o and the norm adding. */
static vkb_status mul_residual(eng_session *s, const eng_dev_weight *w, const vkb_buffer *in,
                               const eng_dev_weight *post_norm, uint32_t n)
{
    const eng_hparams *hp = &s->m->hp;
    uint64_t values = (uint64_t)n * hp->n_embd;
    vkb_status vs;
    if (n <= 8 && !w->rank && !post_norm->buffer)
        return product(s, &w->matrix, in, s->x, n, true);
    if ((vs = mul(s, w, in, s->o, n)) != VKB_OK)
        return vs;
    if (post_norm->buffer)
        return vkb_op_rms_norm_add(s->stream, s->x, s->x, s->o, post_norm->buffer, hp->n_embd, n,
                                   hp->rms_eps);
    return vkb_op_add(s->stream, s->x, s->x, s->o, values);
}

/* xn = rms_norm(x) · w for n tokens; where the product that reads xn next (`next`) takes
 * 8-bit blocks, the norm writes them too and the product finds them made. */
static vkb_status norm(eng_session *s, const vkb_buffer *w, const vkb_matrix *next, uint32_t n)
{
    const eng_hparams *hp = &s->m->hp;
    uint32_t e = hp->n_embd;
    s->xq_of = NULL; /* xn is rewritten */
    if (!takes_q8(s, next, n) || next->k != e)
        return vkb_op_rms_norm(s->stream, s->xn, s->x, w, e, n, hp->rms_eps);
    vkb_status vs = vkb_op_rms_norm_q8(s->stream, s->xn, s->xq, s->x, w, e, n, hp->rms_eps);
    if (vs == VKB_OK)
        xq_holds(s, s->xn, e, n);
    return vs;
}

/* Whether the product of w with n columns reads rms_norm(x) through the norm fused into it
 * (vkb_op_matvec_norm_split): matvec sizes, x as floats, one product (not factorized). */
static bool norm_fuses(const eng_session *s, const eng_dev_weight *w, uint32_t n)
{
    return !s->unfused_products && n <= 8 && w->buffer && !w->rank &&
           w->matrix.k == s->m->hp.n_embd && !takes_q8(s, &w->matrix, n);
}

/* The products of the normalized residual stream, rms_norm(x) · norm_w, into out (as
 * products()): the norm fused into each product where they take it, else xn first. */
static vkb_status norm_products(eng_session *s, const vkb_buffer *norm_w,
                                const eng_dev_weight *stacked, const eng_dev_weight *const *members,
                                const vkb_outputs *out, uint32_t n)
{
    float eps = s->m->hp.rms_eps;
    if (stacked->buffer && norm_fuses(s, stacked, n))
        return vkb_op_matvec_norm_split(s->stream, &stacked->matrix, s->x, norm_w, eps, out, n);
    bool each = !stacked->buffer;
    for (uint32_t i = 0; i < out->count && each; i++)
        each = norm_fuses(s, members[i], n);
    if (!each) {
        vkb_status vs = norm(s, norm_w, &members[0]->matrix, n);
        return vs ? vs : products(s, stacked, members, out, n);
    }
    for (uint32_t i = 0; i < out->count; i++) {
        vkb_outputs one = {1, {out->y[i]}, {out->rows[i]}};
        vkb_status vs =
            vkb_op_matvec_norm_split(s->stream, &members[i]->matrix, s->x, norm_w, eps, &one, n);
        if (vs != VKB_OK)
            return vs;
    }
    return VKB_OK;
}

/* The feed-forward block's products up to h = act(gate·xn) · (up·xn), xn = rms_norm(x) ·
 * ffn_norm: one dispatch where gate and up are stacked in one part and down reads h as
 * floats (vkb_op_matvec_glu; the norm fused too where it fuses), else the norm, the
 * products and act·mul (quantized on the way where down takes 8-bit blocks). */
static vkb_status ffn_products(eng_session *s, const eng_dev_layer *L, uint32_t n)
{
    const eng_dev_weight *gu = &L->gate_up;
    uint32_t ff = s->m->n_ff_pad;
    vkb_act act = s->m->hp.act;
    vkb_stream *st = s->stream;
    vkb_status vs;
    bool down_q8 = takes_q8(s, &L->down.matrix, n) && L->down.matrix.k == ff;
    if (!s->unfused_products && n <= 8 && gu->buffer && !gu->rank && !down_q8 &&
        vkb_buffer_part_count(gu->buffer) == 1) {
        if (norm_fuses(s, gu, n)) {
            vs = vkb_op_matvec_glu(st, act, &gu->matrix, s->x, L->ffn_norm.buffer, s->m->hp.rms_eps,
                                   s->h, n);
        } else if ((vs = norm(s, L->ffn_norm.buffer, &gu->matrix, n)) == VKB_OK) {
            if (!takes_q8(s, &gu->matrix, n))
                vs = vkb_op_matvec_glu(st, act, &gu->matrix, s->xn, NULL, 0.0f, s->h, n);
            else if ((vs = quantize_once(s, s->xn, gu->matrix.k, n)) == VKB_OK)
                vs = vkb_op_matvec_q8_glu(st, act, &gu->matrix, s->xq, s->h, n);
        }
        s->xq_of = NULL; /* h is rewritten */
        return vs;
    }
    const eng_dev_weight *gate_up[] = {&L->gate, &L->up};
    vkb_outputs gate_up_out = {2, {s->g, s->u}, {ff, ff}};
    if ((vs = norm_products(s, L->ffn_norm.buffer, gu, gate_up, &gate_up_out, n)))
        return vs;
    s->xq_of = NULL; /* h is rewritten */
    if (down_q8) {
        if ((vs = vkb_op_glu_mul_q8(st, act, s->h, s->xq, s->g, s->u, ff, n)) != VKB_OK)
            return vs;
        xq_holds(s, s->h, ff, n);
        return VKB_OK;
    }
    return vkb_op_glu_mul(st, act, s->h, s->g, s->u, (uint64_t)n * ff);
}

/* Layer l's rope frequencies: the local layers' own (gemma 3) or the model's. */
static const vkb_buffer *layer_freqs(const eng_session *s, uint32_t l)
{
    return eng_layer_local(&s->m->hp, l) ? s->freqs_local : s->freqs;
}

/* q and k rotated (each head through its norm first where the layer has them, qwen3), k
 * and v into layer l's caches at positions p0 .. p0 + n: one dispatch over f16 caches
 * (the norms as their own dispatches before it with unfused_products), else the norms,
 * rope of each and the caches' quantize-on-write. */
static vkb_status rope_store(eng_session *s, uint32_t l, uint32_t n, uint32_t p0)
{
    const eng_hparams *hp = &s->m->hp;
    const eng_dev_layer *L = &s->m->d_layers[l];
    vkb_stream *st = s->stream;
    vkb_rope_shape rq = {hp->head_dim, hp->n_rot, hp->n_head, n, hp->rope_neox};
    vkb_rope_shape rk = {hp->head_dim, hp->n_rot, hp->n_head_kv, n, hp->rope_neox};
    vkb_head_norms norms = {L->q_norm.buffer, L->k_norm.buffer, hp->rms_eps};
    const vkb_buffer *freqs = layer_freqs(s, l);
    uint32_t row0 = s->at_pos ? VKB_AT_POS : p0;
    bool f16 = s->k_layout.type == VKB_KV_F16 && s->v_layout.type == VKB_KV_F16;
    vkb_status vs;
    if (f16 && norms.q && !s->unfused_products)
        return vkb_op_norm_rope_store_f16(st, s->q, s->k, s->v, &norms, s->pos, freqs, &rq,
                                          hp->n_head_kv, s->k_cache[l], s->v_cache[l], row0);
    if (norms.q && ((vs = vkb_op_rms_norm(st, s->q, s->q, norms.q, hp->head_dim, n * hp->n_head,
                                          hp->rms_eps)) ||
                    (vs = vkb_op_rms_norm(st, s->k, s->k, norms.k, hp->head_dim, n * hp->n_head_kv,
                                          hp->rms_eps))))
        return vs;
    if (f16)
        return vkb_op_rope_store_f16(st, s->q, s->k, s->v, s->pos, freqs, &rq, hp->n_head_kv,
                                     s->k_cache[l], s->v_cache[l], row0);
    if ((vs = vkb_op_rope(st, s->q, s->q, s->pos, freqs, &rq)) ||
        (vs = vkb_op_rope(st, s->k, s->k, s->pos, freqs, &rk)))
        return vs;
    if (s->at_pos) {
        vs = vkb_op_kv_store_at(st, s->k_cache[l], &s->k_layout, s->pos, s->k, n);
        return vs ? vs : vkb_op_kv_store_at(st, s->v_cache[l], &s->v_layout, s->pos, s->v, n);
    }
    if ((vs = vkb_op_kv_store(st, s->k_cache[l], &s->k_layout, p0, s->k, n)))
        return vs;
    return vkb_op_kv_store(st, s->v_cache[l], &s->v_layout, p0, s->v, n);
}

/* The attention block's prologue in one dispatch where it fits (vkb_op_matvec_rope): the
 * q, k, v product (its norm fused where it fuses, else after rms_norm, from 8-bit blocks
 * where the product takes them) rotating q and k and writing k and v into layer l's f16
 * caches. Needs matvec sizes, q, k, v stacked in one part (and their biases, where the
 * model has them), no per-head norms (qwen3's take rope_store's dispatch: a norm needs the
 * whole head, which the product's quads do not hold), and head sizes the kernel's quads
 * divide. false: not taken (*vs untouched). */
static bool fused_prologue(eng_session *s, uint32_t l, uint32_t n, uint32_t p0, vkb_status *vs)
{
    const eng_hparams *hp = &s->m->hp;
    const eng_dev_layer *L = &s->m->d_layers[l];
    const eng_dev_weight *qkv = &L->qkv;
    if (s->unfused_products || n > 8 || !qkv->buffer || qkv->rank ||
        (L->bq.buffer && !L->bqkv.buffer) || L->q_norm.buffer ||
        vkb_buffer_part_count(qkv->buffer) != 1 || s->k_layout.type != VKB_KV_F16 ||
        s->v_layout.type != VKB_KV_F16 || hp->head_dim % 4 || (hp->rope_neox && hp->n_rot % 4) ||
        hp->n_head_kv > hp->n_head)
        return false;
    vkb_kv_write kv = {.pos = s->pos,
                       .freqs = layer_freqs(s, l),
                       .bias = L->bqkv.buffer,
                       .shape = {hp->head_dim, hp->n_rot, hp->n_head, n, hp->rope_neox},
                       .kv_heads = hp->n_head_kv,
                       .k_cache = s->k_cache[l],
                       .v_cache = s->v_cache[l],
                       .row0 = s->at_pos ? VKB_AT_POS : p0};
    const vkb_matrix *w = &qkv->matrix;
    if (norm_fuses(s, qkv, n))
        *vs =
            vkb_op_matvec_rope(s->stream, w, s->x, L->attn_norm.buffer, hp->rms_eps, s->q, &kv, n);
    else if ((*vs = norm(s, L->attn_norm.buffer, w, n)) == VKB_OK) {
        if (!takes_q8(s, w, n))
            *vs = vkb_op_matvec_rope(s->stream, w, s->xn, NULL, 0.0f, s->q, &kv, n);
        else if ((*vs = quantize_once(s, s->xn, w->k, n)) == VKB_OK)
            *vs = vkb_op_matvec_q8_rope(s->stream, w, s->xq, s->q, &kv, n);
    }
    return true;
}

/* Whether layer L's attention writes its output as 8-bit blocks: the output projection
 * reads them (one product, not factorized) and the heads hold whole blocks. */
static bool attention_q8(const eng_session *s, const eng_dev_layer *L, uint32_t n)
{
    const eng_hparams *hp = &s->m->hp;
    return !L->wo.rank && L->wo.matrix.k == hp->n_head * hp->head_dim && hp->head_dim % 32 == 0 &&
           takes_q8(s, &L->wo.matrix, n);
}

/* The attention of n tokens from position p0 over the session's caches, in a global layer
 * or (local) one that attends through the sliding window. */
static vkb_attention_shape attention_shape(const eng_session *s, uint32_t n, uint32_t p0,
                                           bool local)
{
    const eng_hparams *hp = &s->m->hp;
    return (vkb_attention_shape){.head_dim = hp->head_dim,
                                 .heads = hp->n_head,
                                 .kv_heads = hp->n_head_kv,
                                 .tokens = n,
                                 .pos0 = p0,
                                 .n_kv = p0 + n,
                                 .scale = hp->attn_scale,
                                 .window = local ? hp->n_swa : 0,
                                 .softcap = hp->attn_softcap};
}

/* Split-K attention's split count for n tokens from p0: forced, or the device's choice. */
static uint32_t split_count(const eng_session *s, uint32_t n, uint32_t p0, bool local)
{
    vkb_attention_shape as = attention_shape(s, n, p0, local);
    return s->splits ? s->splits : vkb_attention_splits(s->dev, &as);
}

/* What a recording of n tokens from p0 depends on of the split counts: the global layers'
 * and, where the model has local layers, theirs (at most 1024 each). */
static uint32_t step_splits(const eng_session *s, uint32_t n, uint32_t p0)
{
    uint32_t global = split_count(s, n, p0, false);
    return s->m->hp.n_swa ? global * 2048 + split_count(s, n, p0, true) : global;
}

/* Records one layer for n tokens from position p0 (with s->at_pos, positions read on the
 * GPU: the recording serves every position with the same split count as p0's). */
static vkb_status record_layer(eng_session *s, uint32_t l, uint32_t n, uint32_t p0)
{
    const eng_model *m = s->m;
    const eng_hparams *hp = &m->hp;
    const eng_dev_layer *L = &m->d_layers[l];
    vkb_stream *st = s->stream;
    uint32_t qw = hp->n_head * hp->head_dim, kvw = hp->n_head_kv * hp->head_dim;
    bool local = eng_layer_local(hp, l);
    vkb_attention_shape as = attention_shape(s, n, p0, local);
    uint32_t splits = split_count(s, n, p0, local);
    if (s->at_pos)
        as.pos0 = VKB_AT_POS, as.n_kv = s->n_ctx, as.pos = s->pos;
    vkb_status vs;
    /* attention block: the q, k, v products, rope and the caches' write */
    if (fused_prologue(s, l, n, p0, &vs)) {
        if (vs != VKB_OK)
            return vs;
    } else {
        const eng_dev_weight *qkv[] = {&L->wq, &L->wk, &L->wv};
        vkb_outputs qkv_out = {3, {s->q, s->k, s->v}, {qw, kvw, kvw}};
        if ((vs = norm_products(s, L->attn_norm.buffer, &L->qkv, qkv, &qkv_out, n)))
            return vs;
        if (L->bq.buffer && ((vs = vkb_op_add_bias(st, s->q, s->q, L->bq.buffer, qw, n)) ||
                             (vs = vkb_op_add_bias(st, s->k, s->k, L->bk.buffer, kvw, n)) ||
                             (vs = vkb_op_add_bias(st, s->v, s->v, L->bv.buffer, kvw, n))))
            return vs;
        if ((vs = rope_store(s, l, n, p0)))
            return vs;
    }
    s->xq_of = NULL; /* att is rewritten below */
    if (s->unfused)
        vs = vkb_op_attention_unfused(st, s->att, s->q, s->k_cache[l], s->v_cache[l], s->scores,
                                      &as);
    else if (attention_q8(s, L, n)) {
        /* the output projection reads 8-bit blocks: attention writes them, not att */
        vs = vkb_op_attention_split_q8(st, s->xq, s->q, s->k_cache[l], &s->k_layout, s->v_cache[l],
                                       &s->v_layout, s->partials, splits, &as);
        xq_holds(s, s->att, qw, n);
    } else
        vs = vkb_op_attention_split(st, s->att, s->q, s->k_cache[l], &s->k_layout, s->v_cache[l],
                                    &s->v_layout, s->partials, splits, &as);
    if (vs || (vs = mul_residual(s, &L->wo, s->att, &L->attn_post_norm, n)))
        return vs;
    if ((vs = ffn_products(s, L, n)) ||
        (vs = mul_residual(s, &L->down, s->h, &L->ffn_post_norm, n)))
        return vs;
    if (s->capture)
        vs = vkb_stream_copy(st, s->x, 0, s->captured, (uint64_t)l * s->n_batch * hp->n_embd * 4,
                             (uint64_t)n * hp->n_embd * 4);
    return vs;
}

/* What follows the logits: first their soft cap where the model has one (gemma 2). With
 * params.best_logits, the best of them for the host
 * (eng_session_best). In a session that has decoded on the GPU, a decode step ends by
 * picking its successor as the last eng_session_generate did (greedily, or sampling from
 * the best) and feeding it to the next step (eng_session_generate reads the picks; an
 * eval writes the id and the position again before each submit, so the pick is harmless
 * there). Other sessions' steps leave it out: a dispatch over the vocabulary. The greedy
 * pick is the best logit: where only that one comes back, the pick writes it and no
 * selection runs beside it. */
static vkb_status after_logits(eng_session *s, uint32_t n)
{
    vkb_status vs;
    uint32_t n_vocab = s->m->hp.n_vocab;
    float cap = s->m->hp.logit_softcap;
    int mode = n == 1 ? s->pick.mode : PICK_NONE;
    if (cap > 0.0f && (vs = vkb_op_softcap(s->stream, s->logits, s->logits, n_vocab, cap)))
        return vs;
    bool gpu_best = s->best_n && !s->best_host;
    if (gpu_best && !(mode == PICK_GREEDY && s->best_n == 1) &&
        (vs = vkb_op_top_logits(s->stream, s->best, s->best_scratch, s->logits, n_vocab, s->best_n,
                                0)))
        return vs;
    if (mode == PICK_SAMPLE)
        return vkb_op_sample_feed(s->stream, s->best, s->best_n, s->draws, s->hist, s->pos, s->ids,
                                  s->picked, PICK_RING, &s->pick.sp);
    if (mode == PICK_NONE)
        return VKB_OK;
    return vkb_op_argmax_feed(s->stream, s->logits, n_vocab, s->pos, s->ids, s->picked, PICK_RING,
                              gpu_best && s->best_n == 1 ? s->best : NULL);
}

static bool same_pick(const struct step_pick *a, const struct step_pick *b)
{
    const vkb_sample_params *x = &a->sp, *y = &b->sp;
    return a->mode == b->mode &&
           (a->mode != PICK_SAMPLE ||
            (x->temperature == y->temperature && x->top_k == y->top_k && x->top_p == y->top_p &&
             x->min_p == y->min_p && x->penalty == y->penalty && x->history == y->history));
}

/* Records a chunk of n tokens from position p0 into s->stream, up to its submission. Only
 * the last chunk of an eval computes logits. */
static vkb_status record_chunk(eng_session *s, uint32_t n, uint32_t p0, bool logits)
{
    const eng_model *m = s->m;
    const eng_hparams *hp = &m->hp;
    vkb_stream *st = s->stream;
    uint32_t e = hp->n_embd;
    vkb_status vs;
    if ((vs = vkb_stream_begin(st)) ||
        (vs = vkb_op_get_rows(st, &m->d_embd.matrix, s->ids, n, s->x)) ||
        (hp->embd_scale != 1.0f &&
         (vs = vkb_op_scale(st, s->x, s->x, (uint64_t)n * e, hp->embd_scale))))
        return vs;
    for (uint32_t l = 0; l < hp->n_layer; l++)
        if ((vs = record_layer(s, l, n, p0)) != VKB_OK)
            return vs;
    const eng_dev_weight *norm = &m->d_output_norm;
    s->xq_of = NULL; /* xn or last_n is rewritten below */
    if (logits && s->all_logits &&
        ((vs = vkb_op_rms_norm(st, s->xn, s->x, norm->buffer, e, n, hp->rms_eps)) ||
         (vs = mul(s, &m->d_output, s->xn, s->logits, n)) ||
         (hp->logit_softcap > 0.0f &&
          (vs = vkb_op_softcap(st, s->logits, s->logits, (uint64_t)n * hp->n_vocab,
                               hp->logit_softcap)))))
        return vs;
    if (!logits || s->all_logits)
        return VKB_OK;
    if ((vs = vkb_stream_copy(st, s->x, (uint64_t)(n - 1) * e * 4, s->last, 0, (uint64_t)e * 4)))
        return vs;
    if (norm_fuses(s, &m->d_output, 1)) {
        vkb_outputs out = {1, {s->logits}, {m->d_output.matrix.rows}};
        if ((vs = vkb_op_matvec_norm_split(st, &m->d_output.matrix, s->last, norm->buffer,
                                           hp->rms_eps, &out, 1)))
            return vs;
        return after_logits(s, n);
    }
    if (takes_q8(s, &m->d_output.matrix, 1) && m->d_output.matrix.k == e) {
        /* the norm writes the 8-bit blocks the product reads */
        if ((vs = vkb_op_rms_norm_q8(st, s->last_n, s->xq, s->last, norm->buffer, e, 1,
                                     hp->rms_eps)))
            return vs;
        xq_holds(s, s->last_n, e, 1);
    } else if ((vs = vkb_op_rms_norm(st, s->last_n, s->last, norm->buffer, e, 1, hp->rms_eps)))
        return vs;
    if ((vs = product(s, &m->d_output.matrix, s->last_n, s->logits, 1, false)))
        return vs;
    return after_logits(s, n);
}

/* Whether a decode step may be recorded once with its positions read on the GPU: the
 * fused attention over f16, q8_0 and q4_0 caches (not KIVI, whose writes depend on the
 * position; an f16 cache beside a quantized one written by vkb_op_kv_store_at, rows of a
 * multiple of 64 values), each layer's caches bound whole. */
static bool reusable(const eng_session *s)
{
    vkb_kv_type k = s->k_layout.type, v = s->v_layout.type;
    bool f16 = k == VKB_KV_F16 && v == VKB_KV_F16;
    bool stored = k <= VKB_KV_Q4_0 && v <= VKB_KV_Q4_0 && s->k_layout.values % 64 == 0;
    return !s->record_each && !s->unfused && (f16 || stored) &&
           vkb_buffer_part_count(s->k_cache[0]) == 1 && vkb_buffer_part_count(s->v_cache[0]) == 1;
}

/* The stream holding a decode step for position p, other than `busy` (-1: none), or -1. */
static int step_slot_for(const eng_session *s, uint32_t p, int busy)
{
    for (int i = 0; i < 2; i++) {
        const struct step_slot *t = &s->slots[i];
        if (i != busy && t->ready && (s->pick.mode == PICK_NONE || same_pick(&t->pick, &s->pick)) &&
            (t->any_pos ? t->splits == step_splits(s, 1, p) : t->p0 == p))
            return i;
    }
    return -1;
}

/* Records n tokens from p0 into streams[i] (a decode step: reusable where the session
 * allows) and notes what it holds. */
static vkb_status record_into(eng_session *s, int i, uint32_t n, uint32_t p0, bool logits)
{
    bool decode = n == 1 && logits;
    double t0 = now_s();
    s->stream = s->streams[i];
    s->at_pos = decode && reusable(s);
    s->slots[i].ready = false;
    vkb_status vs = record_chunk(s, n, p0, logits);
    s->slots[i] = (struct step_slot){.ready = vs == VKB_OK && decode,
                                     .any_pos = s->at_pos,
                                     .p0 = p0,
                                     .splits = step_splits(s, n, p0),
                                     .pick = s->pick,
                                     .ms = (now_s() - t0) * 1e3};
    s->at_pos = false;
    return vs;
}

/* A chunk submitted: its stream and how its recording came about. */
struct submitted {
    int slot;
    bool reused;      /* a recording made for an earlier step, submitted again */
    bool ahead;       /* recorded while the GPU ran another step */
    double record_ms; /* host time its recording took */
    double at;        /* when it was submitted */
};

/* Submits n tokens from position p from a stream other than `busy` (-1: none): one that
 * holds the step (a decode step recorded earlier), or one it is recorded into now (while
 * `busy`, when not -1, runs; else one that does not hold a reusable step, where one
 * does). The ids and positions are host-visible buffers written before, or by the GPU,
 * so a recording does not depend on them. */
static eng_status submit_chunk(eng_session *s, uint32_t n, uint32_t p, bool logits, int busy,
                               struct submitted *q)
{
    int i = n == 1 && logits ? step_slot_for(s, p, busy) : -1;
    *q = (struct submitted){.slot = i, .ahead = busy >= 0};
    if (i >= 0) {
        q->reused = s->slots[i].any_pos && s->slots[i].p0 != p;
        q->ahead = !q->reused;
        q->record_ms = q->reused ? 0.0 : s->slots[i].ms;
    } else {
        i = busy >= 0 ? !busy : s->slots[0].ready && s->slots[0].any_pos;
        vkb_status vs = record_into(s, i, n, p, logits);
        if (vs != VKB_OK)
            return vfail(s, vs, "recording the step");
        q->slot = i;
        q->record_ms = s->slots[i].ms;
    }
    q->at = now_s();
    vkb_status vs = vkb_stream_submit(s->streams[i]);
    if (vs != VKB_OK) {
        s->slots[i].ready = false;
        return vfail(s, vs, "running the step");
    }
    /* a position-bound recording is spent */
    if (!s->slots[i].any_pos)
        s->slots[i].ready = false;
    return ENG_OK;
}

/* After waiting for a submitted chunk: what the statistics say of it. */
static void note_ran(eng_session *s, const struct submitted *q, double now)
{
    s->ran = s->streams[q->slot];
    s->last_reused = q->reused;
    s->last_record_ahead = q->ahead;
    s->last_record_ms = q->record_ms;
    s->last_wait_ms = (now - q->at) * 1e3;
    s->last_gpu_ms = vkb_stream_total_ms(s->ran);
}

/* One chunk of at most n_batch tokens: submitted once (submit_chunk); while it runs, the
 * decode step after it (the first of a reply after its prompt, or the next one) is
 * recorded where no stream holds it (on failure it is recorded again when it comes, and
 * fails there with its message); then the wait. */
static eng_status eval_chunk(eng_session *s, const int32_t *tokens, uint32_t n, bool logits)
{
    uint32_t *ids = vkb_buffer_map(s->ids);
    int32_t *pos = vkb_buffer_map(s->pos);
    for (uint32_t i = 0; i < n; i++) {
        ids[i] = (uint32_t)tokens[i];
        pos[i] = (int32_t)(s->n_past + i);
    }
    struct submitted q;
    eng_status st = submit_chunk(s, n, s->n_past, logits, -1, &q);
    if (st != ENG_OK)
        return st;
    uint32_t next = s->n_past + n;
    if (logits && next + 1 <= s->n_ctx && step_slot_for(s, next, -1) < 0)
        record_into(s, !q.slot, 1, next, true);
    vkb_status vs = vkb_stream_wait(s->streams[q.slot]);
    if (vs != VKB_OK)
        return vfail(s, vs, "running the step");
    note_ran(s, &q, now_s());
    s->captured_tokens = n;
    if (logits)
        s->logits_tokens = n;
    if (logits && s->best_host)
        s->best_count =
            eng_best_logits(vkb_buffer_map(s->logits), s->m->hp.n_vocab, s->best_n, s->best_host);
    s->n_past += n;
    return ENG_OK;
}

uint32_t eng_chunk_size(uint32_t left, uint32_t batch, uint32_t matmul_min, uint32_t tile)
{
    uint32_t c = left < batch ? left : batch, rest = c % tile;
    if (c > 8 && c < matmul_min)
        return 8; /* cheaper than a tile of matmul columns mostly empty */
    if (c > tile && rest && rest < matmul_min)
        return c - rest; /* whole tiles; the rest as passes */
    return c;
}

void eng_session_chunking(const eng_session *s, uint32_t *batch, uint32_t *matmul_min,
                          uint32_t *tile)
{
    *batch = s->n_batch;
    *matmul_min = s->matmul_min;
    *tile = s->matmul_tile;
}

eng_status eng_session_eval(eng_session *s, const int32_t *tokens, uint32_t n)
{
    if (n == 0 || !tokens)
        return sfail(s, ENG_ERR_ARGUMENT, "no tokens to evaluate");
    if ((uint64_t)s->n_past + n > s->n_ctx)
        return sfail(s, ENG_ERR_CONTEXT_FULL,
                     "%u tokens after %u do not fit the context of %u positions", n, s->n_past,
                     s->n_ctx);
    for (uint32_t i = 0; i < n; i++)
        if (tokens[i] < 0 || (uint32_t)tokens[i] >= s->m->hp.n_vocab)
            return sfail(s, ENG_ERR_ARGUMENT, "token %d at %u is not in the vocabulary (0 to %u)",
                         tokens[i], i, s->m->hp.n_vocab - 1);
    double t0 = now_s();
    for (uint32_t done = 0; done < n;) {
        uint32_t c = eng_chunk_size(n - done, s->n_batch, s->matmul_min, s->matmul_tile);
        eng_status st = eval_chunk(s, tokens + done, c, done + c == n);
        if (st != ENG_OK)
            return st;
        done += c;
    }
    record_stats(s, n, now_s() - t0);
    return ENG_OK;
}

bool eng_session_gpu_picks(const eng_session *s, const eng_sampler *smp, char *why, size_t why_size)
{
    const eng_sampler_params *p = smp ? eng_sampler_get_params(smp) : NULL;
    uint32_t need = p ? eng_sampler_best_needed(p) : 1;
    char buf[200] = "";
    if (s->all_logits)
        snprintf(buf, sizeof buf, "the session keeps every token's logits (all_logits)");
    else if (!p || (p->temperature <= 0.0f && p->repeat_penalty == 1.0f))
        ; /* greedy: the pick reads the logits where they are */
    else if (need == 0)
        snprintf(buf, sizeof buf,
                 "%s: every logit may decide the token, so every logit comes to the host",
                 p->repeat_penalty < 1.0f ? "a penalty below 1 raises tokens from anywhere"
                                          : "top-k is off");
    else if (!s->best_n)
        snprintf(buf, sizeof buf, "the session brings every logit back (best_logits 0)");
    else if (s->best_host)
        snprintf(buf, sizeof buf,
                 "the session selects its best logits on the host (a CPU driver, or best_place)");
    else if (need > s->best_n)
        snprintf(buf, sizeof buf,
                 "the sampler needs the best %u logits; the session brings back %u", need,
                 s->best_n);
    else if (s->best_n > VKB_SAMPLE_MAX)
        snprintf(buf, sizeof buf, "the GPU samples from at most %u logits; the session selects %u",
                 VKB_SAMPLE_MAX, s->best_n);
    if (why && why_size)
        snprintf(why, why_size, "%s", buf);
    return buf[0] == 0;
}

/* eng_session_generate where the GPU cannot pick: each step evaluated, then sampled on
 * the host. */
static eng_status generate_on_host(eng_session *s, int32_t token, uint32_t max, eng_sampler *smp,
                                   eng_token_fn fn, void *user, uint32_t *n_out)
{
    eng_status st;
    for (;;) {
        if ((st = eng_session_eval(s, &token, 1)) != ENG_OK)
            return st;
        token = eng_session_sample(s, smp);
        if (token < 0)
            return sfail(s, ENG_ERR_DEVICE,
                         "every logit is NaN or -inf after position %u: the model or the GPU "
                         "produced garbage",
                         s->n_past - 1);
        eng_sampler_accept(smp, token);
        ++*n_out;
        if (!fn(user, token) || *n_out == max || s->n_past + 1 > s->n_ctx)
            return ENG_OK;
    }
}

eng_status eng_session_generate(eng_session *s, int32_t token, uint32_t max, eng_sampler *smp,
                                eng_token_fn fn, void *user, uint32_t *n_out)
{
    uint32_t got = 0;
    if (n_out)
        *n_out = 0;
    if (!fn)
        return sfail(s, ENG_ERR_ARGUMENT, "generating needs a function to hand the tokens");
    if (s->all_logits)
        return sfail(s, ENG_ERR_UNSUPPORTED,
                     "generating runs decode steps; this session keeps every token's logits "
                     "(all_logits)");
    if (token < 0 || (uint32_t)token >= s->m->hp.n_vocab)
        return sfail(s, ENG_ERR_ARGUMENT, "token %d is not in the vocabulary (0 to %u)", token,
                     s->m->hp.n_vocab - 1);
    if (s->n_past + 1 > s->n_ctx)
        return sfail(s, ENG_ERR_CONTEXT_FULL, "the context of %u positions is full", s->n_ctx);
    if (max == 0)
        return ENG_OK;
    if (!eng_session_gpu_picks(s, smp, NULL, 0)) {
        eng_status st = generate_on_host(s, token, max, smp, fn, user, &got);
        if (n_out)
            *n_out = got;
        return st;
    }
    /* from now on, decode steps end with this pick; steps recorded before with another are
     * recorded again */
    const eng_sampler_params *sp = smp ? eng_sampler_get_params(smp) : NULL;
    s->pick = (struct step_pick){.mode = PICK_GREEDY};
    if (sp && (sp->temperature > 0.0f || sp->repeat_penalty != 1.0f)) {
        bool window = sp->repeat_penalty != 1.0f;
        s->pick =
            (struct step_pick){PICK_SAMPLE,
                               {sp->temperature, (uint32_t)sp->top_k, sp->top_p, sp->min_p,
                                sp->repeat_penalty, window ? (uint32_t)sp->repeat_last_n : 0}};
        /* the sampler's window as it stands; the steps add their picks to it */
        int32_t *h = vkb_buffer_map(s->hist);
        uint32_t at = 0;
        h[0] = window ? (int32_t)eng_sampler_history(smp, h + 2, &at) : 0;
        h[1] = (int32_t)at;
    }
    bool draws = s->pick.mode == PICK_SAMPLE && sp->temperature > 0.0f;
    ((uint32_t *)vkb_buffer_map(s->ids))[0] = (uint32_t)token;
    ((int32_t *)vkb_buffer_map(s->pos))[0] = (int32_t)s->n_past;
    const int32_t *picked = vkb_buffer_map(s->picked);
    float *draw = vkb_buffer_map(s->draws);
    /* the steps in flight, oldest first: while the host waits for one, the GPU has the
     * next queued behind it, reading the token the first picks */
    struct submitted q[2];
    const uint32_t p0 = s->n_past;
    uint32_t queued = 0, issued = 0;
    bool stop = false;
    eng_status st = ENG_OK;
    double last = now_s();
    for (;;) {
        while (st == ENG_OK && !stop && queued < 2 && issued < max && p0 + issued < s->n_ctx) {
            /* the step at p samples with the draw the host's sampler would take next after
             * the picks before it */
            if (draws)
                draw[(p0 + issued + 1) % PICK_RING] = eng_sampler_draw_ahead(smp, issued - got);
            st = submit_chunk(s, 1, p0 + issued, true, queued ? q[0].slot : -1, &q[queued]);
            queued += st == ENG_OK;
            issued += st == ENG_OK;
        }
        if (queued == 0)
            break;
        struct submitted done = q[0];
        q[0] = q[1];
        queued--;
        vkb_status vs = vkb_stream_wait(s->streams[done.slot]);
        if (st != ENG_OK || stop)
            continue; /* an error or a stop: the step behind it runs out unread */
        if (vs != VKB_OK) {
            st = vfail(s, vs, "running the step");
            continue;
        }
        double t = now_s();
        note_ran(s, &done, t);
        int32_t pick = picked[(s->n_past + 1) % PICK_RING];
        s->n_past++;
        record_stats(s, 1, t - last);
        last = t;
        if (pick < 0) {
            st = sfail(s, ENG_ERR_DEVICE,
                       "every logit is NaN or -inf after position %u: the model or the GPU "
                       "produced garbage",
                       s->n_past - 1);
            continue;
        }
        if (smp)
            eng_sampler_took(smp, pick);
        got++;
        stop = !fn(user, pick);
    }
    s->logits_tokens = 0;
    s->captured_tokens = 0;
    if (n_out)
        *n_out = got;
    return st;
}

eng_status eng_session_greedy(eng_session *s, int32_t token, uint32_t max, eng_token_fn fn,
                              void *user, uint32_t *n_out)
{
    return eng_session_generate(s, token, max, NULL, fn, user, n_out);
}

const float *eng_session_logits(const eng_session *s)
{
    if (!s->logits_tokens || s->best_n)
        return NULL;
    const float *l = vkb_buffer_map(s->logits);
    if (s->all_logits && s->logits_tokens)
        l += (size_t)(s->logits_tokens - 1) * s->m->hp.n_vocab;
    return l;
}

const eng_candidate *eng_session_best(const eng_session *s, uint32_t *n)
{
    *n = 0;
    if (!s->logits_tokens || !s->best_n)
        return NULL;
    if (s->best_host) {
        *n = s->best_count;
        return s->best_host;
    }
    const eng_candidate *c = vkb_buffer_map(s->best);
    while (*n < s->best_n && c[*n].id >= 0)
        (*n)++;
    return c;
}

int32_t eng_session_sample(const eng_session *s, eng_sampler *smp)
{
    uint32_t n = 0;
    const eng_candidate *best = eng_session_best(s, &n);
    if (best)
        return eng_sampler_sample_best(smp, best, n);
    const float *logits = eng_session_logits(s);
    return logits ? eng_sampler_sample(smp, logits) : -1;
}

const float *eng_session_logits_all(const eng_session *s, uint32_t *tokens)
{
    if (!s->all_logits || !s->logits_tokens)
        return NULL;
    *tokens = s->logits_tokens;
    return vkb_buffer_map(s->logits);
}

uint32_t eng_session_n_past(const eng_session *s)
{
    return s->n_past;
}

uint32_t eng_session_n_ctx(const eng_session *s)
{
    return s->n_ctx;
}

/* The conversation cut to its first n positions, without logits. */
static void cut(eng_session *s, uint32_t n)
{
    s->n_past = n;
    s->logits_tokens = 0;
    pthread_mutex_lock(&s->stats_lock);
    s->stats.kv.tokens = n;
    pthread_mutex_unlock(&s->stats_lock);
}

uint32_t eng_session_keep(eng_session *s, uint32_t n)
{
    if (n >= s->n_past)
        return s->n_past;
    uint32_t k = vkb_kv_keep(&s->k_layout, s->n_past, n);
    uint32_t v = vkb_kv_keep(&s->v_layout, s->n_past, n);
    cut(s, k < v ? k : v);
    return s->n_past;
}

void eng_session_reset(eng_session *s)
{
    cut(s, 0);
}

const char *eng_session_errmsg(const eng_session *s)
{
    return s->err;
}

uint32_t eng_session_matmul_min(const eng_session *s)
{
    return s->matmul_min;
}

const float *eng_session_capture(const eng_session *s, uint32_t layer, uint32_t *tokens)
{
    if (!s->capture || layer >= s->m->hp.n_layer || !s->captured_tokens)
        return NULL;
    if (tokens)
        *tokens = s->captured_tokens;
    return (const float *)vkb_buffer_map(s->captured) +
           (size_t)layer * s->n_batch * s->m->hp.n_embd;
}

double eng_session_last_gpu_ms(const eng_session *s)
{
    return s->last_gpu_ms;
}
