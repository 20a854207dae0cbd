/* Converting a whole GGUF model by a recipe (see cmp_quantize_model.h). */
#include <stdlib.h>
#include <string.h>

#include "cmp_gguf_write.h"
#include "cmp_quantize_model.h"

typedef struct quant_job {
    const cmp_gguf_tensor *t;
    float *importance; /* k values, or NULL */
    cmp_type to;
    uint64_t rows;
    const cmp_quantize_params *p;
    uint64_t *done, total; /* input bytes, for progress */
} quant_job;

static bool fill(void *user, void *dst, uint64_t bytes, char *err, size_t err_size)
{
    quant_job *j = user;
    const cmp_gguf_tensor *t = j->t;
    if ((cmp_type)t->type == j->to) {
        memcpy(dst, t->data, bytes);
    } else if (!cmp_convert_rows((cmp_type)t->type, t->data, j->to, dst, j->rows, t->ne[0],
                                 j->importance, j->p->threads)) {
        snprintf(err, err_size, "converting %.*s from %s to %s failed (out of memory?)",
                 (int)t->name.len, t->name.ptr, cmp_ggml_type_name(t->type),
                 cmp_ggml_type_name(j->to));
        return false;
    }
    *j->done += t->bytes;
    if (j->p->progress)
        j->p->progress(*j->done, j->total, j->p->user);
    return true;
}

float *cmp_imatrix_mean_square(const cmp_gguf *imatrix, const char *weight, uint64_t k)
{
    if (!imatrix)
        return NULL;
    char key[300];
    snprintf(key, sizeof key, "%s.in_sum2", weight);
    const cmp_gguf_tensor *s2 = cmp_gguf_find_tensor(imatrix, key);
    snprintf(key, sizeof key, "%s.counts", weight);
    const cmp_gguf_tensor *cn = cmp_gguf_find_tensor(imatrix, key);
    if (!s2 || !cn || s2->type != CMP_TYPE_F32 || cn->type != CMP_TYPE_F32 || s2->ne[0] != k ||
        s2->bytes != k * 4 || cn->bytes < 4)
        return NULL;
    float count, *v = malloc(sizeof *v * k);
    memcpy(&count, cn->data, 4);
    if (!v || !(count > 0)) {
        free(v);
        return NULL;
    }
    memcpy(v, s2->data, k * 4);
    for (uint64_t i = 0; i < k; i++)
        v[i] /= count;
    return v;
}

bool cmp_quantize_model(const char *in, const char *out, const cmp_quantize_params *p,
                        cmp_quantize_report *rep, char *err, size_t err_size)
{
    cmp_gguf *g;
    memset(rep, 0, sizeof *rep);
    if (cmp_gguf_open(in, &g, err, err_size) != CMP_GGUF_OK)
        return false;
    uint32_t n_head = cmp_gguf_arch_u32(g, "attention.head_count", 1);
    uint32_t n_head_kv = cmp_gguf_arch_u32(g, "attention.head_count_kv", n_head);
    cmp_recipe_model rm = {cmp_gguf_arch_u32(g, "block_count", 1),
                           n_head_kv ? n_head / n_head_kv : 1,
                           !cmp_gguf_find_tensor(g, "output.weight")};
    uint64_t n_t = cmp_gguf_tensor_count(g), done = 0;
    quant_job *jobs = calloc(n_t ? n_t : 1, sizeof *jobs);
    cmp_gguf_writer *w = cmp_gguf_writer_create();
    bool ok = jobs && w, result = false;
    /* metadata: everything but what this conversion changes */
    for (uint64_t i = 0; ok && i < cmp_gguf_kv_count(g); i++) {
        const cmp_gguf_kv *kv = cmp_gguf_kv_at(g, i);
        if (cmp_gguf_str_eq(kv->key, "general.file_type") ||
            cmp_gguf_str_eq(kv->key, "general.quantization_version") ||
            cmp_gguf_str_eq(kv->key, "general.alignment"))
            continue;
        ok = cmp_gguf_copy_kv(w, kv);
    }
    ok = ok && cmp_gguf_set_u32(w, "general.file_type", p->recipe->file_type) &&
         cmp_gguf_set_u32(w, "general.quantization_version", 2);
    for (uint64_t i = 0; ok && i < n_t; i++) {
        const cmp_gguf_tensor *t = cmp_gguf_tensor_at(g, i);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(t->name.len < 255 ? t->name.len : 255),
                 t->name.ptr);
        uint32_t layer;
        cmp_role role = cmp_role_of(name, t->n_dims, &layer);
        cmp_type to = (cmp_type)t->type;
        if (role != CMP_ROLE_VECTOR) {
            if (!cmp_type_get((cmp_type)t->type)) {
                snprintf(err, err_size, "%s: tensor %s has type %s, which vkllm cannot read", in,
                         name, cmp_ggml_type_name(t->type));
                goto done;
            }
            to = cmp_recipe_type(p->recipe, &rm, role, layer, t->ne[0], p->pure);
        }
        uint64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
        uint64_t bytes = to == (cmp_type)t->type ? t->bytes : rows * cmp_row_bytes(to, t->ne[0]);
        float *imp = NULL;
        if (p->imatrix && to != (cmp_type)t->type && cmp_type_uses_weights(to) &&
            (imp = cmp_imatrix_mean_square(p->imatrix, name, t->ne[0])))
            rep->weighted++;
        jobs[i] = (quant_job){t, imp, to, rows, p, &done, 0};
        ok = cmp_gguf_add_tensor_fill(w, name, to, t->n_dims, t->ne, bytes, fill, &jobs[i]);
        rep->in_bytes += t->bytes;
        rep->out_bytes += bytes;
        if ((uint32_t)to < CMP_QUANTIZE_TYPES)
            rep->count[to]++;
    }
    for (uint64_t i = 0; i < n_t; i++)
        jobs[i].total = rep->in_bytes;
    if (!ok)
        snprintf(err, err_size, "out of memory");
    else
        result = cmp_gguf_write_file(w, out, err, err_size);
done:
    cmp_gguf_writer_destroy(w);
    for (uint64_t i = 0; jobs && i < n_t; i++)
        free(jobs[i].importance);
    free(jobs);
    cmp_gguf_close(g);
    return result;
}
