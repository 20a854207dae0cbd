/* GGUF v3 writer (see cmp_gguf_write.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmp_buf.h"
#include "cmp_gguf.h"
#include "cmp_gguf_write.h"

#define ALIGNMENT 32

typedef struct tensor_ref {
    const void *data; /* or made by fill */
    uint64_t bytes;
    cmp_gguf_fill_fn fill;
    void *user;
} tensor_ref;

struct cmp_gguf_writer {
    cmp_buf kv, info; /* serialized metadata and tensor infos */
    uint64_t n_kv, n_tensors, data_bytes;
    tensor_ref *tensors;
};

static void put_u32(cmp_buf *b, uint32_t v)
{
    cmp_buf_add(b, &v, 4); /* GGUF is little-endian, as every target of this project */
}

static void put_u64(cmp_buf *b, uint64_t v)
{
    cmp_buf_add(b, &v, 8);
}

static void put_str(cmp_buf *b, const char *s)
{
    size_t n = strlen(s);
    put_u64(b, n);
    cmp_buf_add(b, s, n);
}

static void put_strn(cmp_buf *b, const char *s, uint64_t n)
{
    put_u64(b, n);
    cmp_buf_add(b, s, n);
}

static bool key(cmp_gguf_writer *w, const char *k, cmp_gguf_type type)
{
    put_str(&w->kv, k);
    put_u32(&w->kv, (uint32_t)type);
    w->n_kv++;
    return !w->kv.failed;
}

cmp_gguf_writer *cmp_gguf_writer_create(void)
{
    return calloc(1, sizeof(cmp_gguf_writer));
}

void cmp_gguf_writer_destroy(cmp_gguf_writer *w)
{
    if (!w)
        return;
    free(w->kv.p);
    free(w->info.p);
    free(w->tensors);
    free(w);
}

bool cmp_gguf_set_u32(cmp_gguf_writer *w, const char *k, uint32_t v)
{
    key(w, k, CMP_GGUF_UINT32);
    put_u32(&w->kv, v);
    return !w->kv.failed;
}

bool cmp_gguf_set_f32(cmp_gguf_writer *w, const char *k, float v)
{
    key(w, k, CMP_GGUF_FLOAT32);
    cmp_buf_add(&w->kv, &v, 4);
    return !w->kv.failed;
}

bool cmp_gguf_set_bool(cmp_gguf_writer *w, const char *k, bool v)
{
    uint8_t b = v;
    key(w, k, CMP_GGUF_BOOL);
    cmp_buf_add(&w->kv, &b, 1);
    return !w->kv.failed;
}

bool cmp_gguf_set_str(cmp_gguf_writer *w, const char *k, const char *v)
{
    key(w, k, CMP_GGUF_STRING);
    put_str(&w->kv, v);
    return !w->kv.failed;
}

bool cmp_gguf_copy_kv(cmp_gguf_writer *w, const cmp_gguf_kv *kv)
{
    const cmp_gguf_value *v = &kv->value;
    put_strn(&w->kv, kv->key.ptr, kv->key.len);
    put_u32(&w->kv, (uint32_t)v->type);
    w->n_kv++;
    switch (v->type) {
    case CMP_GGUF_UINT8:
    case CMP_GGUF_INT8:
    case CMP_GGUF_BOOL: cmp_buf_add(&w->kv, &(uint8_t){(uint8_t)v->u}, 1); break;
    case CMP_GGUF_UINT16:
    case CMP_GGUF_INT16: cmp_buf_add(&w->kv, &(uint16_t){(uint16_t)v->u}, 2); break;
    case CMP_GGUF_UINT32:
    case CMP_GGUF_INT32: put_u32(&w->kv, (uint32_t)v->u); break;
    case CMP_GGUF_UINT64:
    case CMP_GGUF_INT64: put_u64(&w->kv, v->u); break;
    case CMP_GGUF_FLOAT32: cmp_buf_add(&w->kv, &(float){(float)v->f}, 4); break;
    case CMP_GGUF_FLOAT64: cmp_buf_add(&w->kv, &v->f, 8); break;
    case CMP_GGUF_STRING: put_strn(&w->kv, v->s.ptr, v->s.len); break;
    case CMP_GGUF_ARRAY:
        /* the elements as the file stores them, nested arrays included */
        put_u32(&w->kv, (uint32_t)v->arr.elem);
        put_u64(&w->kv, v->arr.count);
        cmp_buf_add(&w->kv, v->arr.data, v->arr.bytes);
        break;
    default: w->kv.failed = true;
    }
    return !w->kv.failed;
}

static void array_head(cmp_gguf_writer *w, const char *k, cmp_gguf_type elem, uint64_t n)
{
    key(w, k, CMP_GGUF_ARRAY);
    put_u32(&w->kv, (uint32_t)elem);
    put_u64(&w->kv, n);
}

bool cmp_gguf_set_str_array(cmp_gguf_writer *w, const char *k, const char *const *v, uint64_t n)
{
    array_head(w, k, CMP_GGUF_STRING, n);
    for (uint64_t i = 0; i < n; i++)
        put_str(&w->kv, v[i]);
    return !w->kv.failed;
}

bool cmp_gguf_set_f32_array(cmp_gguf_writer *w, const char *k, const float *v, uint64_t n)
{
    array_head(w, k, CMP_GGUF_FLOAT32, n);
    cmp_buf_add(&w->kv, v, n * 4);
    return !w->kv.failed;
}

bool cmp_gguf_set_i32_array(cmp_gguf_writer *w, const char *k, const int32_t *v, uint64_t n)
{
    array_head(w, k, CMP_GGUF_INT32, n);
    cmp_buf_add(&w->kv, v, n * 4);
    return !w->kv.failed;
}

static bool add_tensor(cmp_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                       const uint64_t *ne, tensor_ref ref)
{
    if (n_dims == 0 || n_dims > 4)
        return false;
    tensor_ref *t = realloc(w->tensors, sizeof *t * (w->n_tensors + 1));
    if (!t) {
        w->info.failed = true;
        return false;
    }
    w->tensors = t;
    t[w->n_tensors++] = ref;
    put_str(&w->info, name);
    put_u32(&w->info, n_dims);
    for (uint32_t i = 0; i < n_dims; i++)
        put_u64(&w->info, ne[i]);
    put_u32(&w->info, type);
    put_u64(&w->info, w->data_bytes);
    w->data_bytes += (ref.bytes + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    return !w->info.failed;
}

bool cmp_gguf_add_tensor(cmp_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                         const uint64_t *ne, const void *data, uint64_t size)
{
    return add_tensor(w, name, type, n_dims, ne, (tensor_ref){data, size, NULL, NULL});
}

bool cmp_gguf_add_tensor_fill(cmp_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                              const uint64_t *ne, uint64_t size, cmp_gguf_fill_fn fill, void *user)
{
    return add_tensor(w, name, type, n_dims, ne, (tensor_ref){NULL, size, fill, user});
}

bool cmp_gguf_write_stream(const cmp_gguf_writer *w, FILE *f, const char *what, char *err,
                           size_t err_size)
{
    if (w->kv.failed || w->info.failed) {
        snprintf(err, err_size, "out of memory while building %s", what);
        return false;
    }
    cmp_buf head = {0};
    cmp_buf_add(&head, "GGUF", 4);
    put_u32(&head, 3);
    put_u64(&head, w->n_tensors);
    put_u64(&head, w->n_kv);
    static const uint8_t zeros[ALIGNMENT] = {0};
    size_t at = head.n + w->kv.n + w->info.n;
    bool ok = !head.failed && fwrite(head.p, 1, head.n, f) == head.n &&
              fwrite(w->kv.p, 1, w->kv.n, f) == w->kv.n &&
              fwrite(w->info.p, 1, w->info.n, f) == w->info.n;
    size_t pad = (ALIGNMENT - at % ALIGNMENT) % ALIGNMENT;
    ok = ok && fwrite(zeros, 1, pad, f) == pad;
    free(head.p);
    if (!ok) {
        snprintf(err, err_size, "writing %s failed: %s", what, strerror(errno));
        return false;
    }
    /* one buffer, the size of the largest filled tensor */
    uint64_t fill_max = 0;
    for (uint64_t i = 0; i < w->n_tensors; i++)
        if (w->tensors[i].fill && w->tensors[i].bytes > fill_max)
            fill_max = w->tensors[i].bytes;
    uint8_t *buf = NULL;
    if (fill_max && !(buf = malloc(fill_max))) {
        snprintf(err, err_size, "out of memory writing %s (%llu bytes for one tensor)", what,
                 (unsigned long long)fill_max);
        return false;
    }
    for (uint64_t i = 0; i < w->n_tensors; i++) {
        const tensor_ref *t = &w->tensors[i];
        const void *data = t->data;
        if (t->fill) {
            if (!t->fill(t->user, buf, t->bytes, err, err_size)) {
                free(buf);
                return false;
            }
            data = buf;
        }
        size_t tp = (ALIGNMENT - t->bytes % ALIGNMENT) % ALIGNMENT;
        if (fwrite(data, 1, t->bytes, f) != t->bytes || fwrite(zeros, 1, tp, f) != tp) {
            snprintf(err, err_size, "writing %s failed: %s", what, strerror(errno));
            free(buf);
            return false;
        }
    }
    free(buf);
    if (fflush(f) != 0) {
        snprintf(err, err_size, "writing %s failed: %s", what, strerror(errno));
        return false;
    }
    return true;
}

bool cmp_gguf_write_file(const cmp_gguf_writer *w, const char *path, char *err, size_t err_size)
{
    size_t n = strlen(path) + sizeof ".partial";
    char *tmp = malloc(n);
    if (!tmp) {
        snprintf(err, err_size, "out of memory writing %s", path);
        return false;
    }
    snprintf(tmp, n, "%s.partial", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        snprintf(err, err_size, "cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return false;
    }
    bool ok = cmp_gguf_write_stream(w, f, path, err, err_size);
    if (fclose(f) != 0 && ok) {
        snprintf(err, err_size, "writing %s failed: %s", path, strerror(errno));
        ok = false;
    }
    if (ok && rename(tmp, path) != 0) {
        snprintf(err, err_size, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        ok = false;
    }
    if (!ok)
        remove(tmp);
    free(tmp);
    return ok;
}
