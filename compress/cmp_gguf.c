/* GGUF reader. A cursor walks the mapped bytes; every read checks the bytes remain, every
 * count is bounded by the bytes left before anything is allocated for it. */
#define _DEFAULT_SOURCE
#include "cmp_gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmp_quant.h"

struct cmp_gguf {
    const uint8_t *base;
    uint64_t size;
    void *map; /* munmap on close; NULL for memory */
    uint32_t version;
    uint64_t alignment, data_offset;
    uint64_t kv_count, tensor_count;
    cmp_gguf_kv *kvs;
    cmp_gguf_tensor *tensors;
};

/* ---- ggml tensor types ---- */

struct ggml_type_row {
    uint32_t type;
    const char *name;
    uint32_t block_size, block_bytes;
};

/* ggml's types, including the ones vkllm does not read, so a file's sizes can be checked
 * and an unsupported tensor named. */
static const struct ggml_type_row ggml_types[] = {
    {0, "f32", 1, 4},         {1, "f16", 1, 2},         {2, "q4_0", 32, 18},
    {3, "q4_1", 32, 20},      {6, "q5_0", 32, 22},      {7, "q5_1", 32, 24},
    {8, "q8_0", 32, 34},      {9, "q8_1", 32, 36},      {10, "q2_K", 256, 84},
    {11, "q3_K", 256, 110},   {12, "q4_K", 256, 144},   {13, "q5_K", 256, 176},
    {14, "q6_K", 256, 210},   {15, "q8_K", 256, 292},   {16, "iq2_xxs", 256, 66},
    {17, "iq2_xs", 256, 74},  {18, "iq3_xxs", 256, 98}, {19, "iq1_s", 256, 50},
    {20, "iq4_nl", 32, 18},   {21, "iq3_s", 256, 110},  {22, "iq2_s", 256, 82},
    {23, "iq4_xs", 256, 136}, {24, "i8", 1, 1},         {25, "i16", 1, 2},
    {26, "i32", 1, 4},        {27, "i64", 1, 8},        {28, "f64", 1, 8},
    {29, "iq1_m", 256, 56},   {30, "bf16", 1, 2},       {34, "tq1_0", 256, 54},
    {35, "tq2_0", 256, 66},
};

static const struct ggml_type_row *ggml_type_row(uint32_t type)
{
    for (size_t i = 0; i < sizeof ggml_types / sizeof ggml_types[0]; i++)
        if (ggml_types[i].type == type)
            return &ggml_types[i];
    return NULL;
}

const char *cmp_ggml_type_name(uint32_t type)
{
    const struct ggml_type_row *r = ggml_type_row(type);
    return r ? r->name : NULL;
}

const char *cmp_gguf_type_name(cmp_gguf_type t)
{
    static const char *names[] = {"uint8",  "int8",    "uint16", "int16",  "uint32",
                                  "int32",  "float32", "bool",   "string", "array",
                                  "uint64", "int64",   "float64"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

/* ---- the cursor ---- */

struct cursor {
    const uint8_t *base;
    uint64_t pos, size;
    char *err;
    size_t err_size;
    int depth;
};

static cmp_gguf_status fail(struct cursor *c, uint64_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static cmp_gguf_status fail(struct cursor *c, uint64_t at, const char *fmt, ...)
{
    if (c->err && c->err_size) {
        int n = snprintf(c->err, c->err_size, "at byte %llu: ", (unsigned long long)at);
        if (n >= 0 && (size_t)n < c->err_size) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(c->err + n, c->err_size - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return CMP_GGUF_ERR_FORMAT;
}

static uint64_t left(const struct cursor *c)
{
    return c->size - c->pos;
}

/* Reads n (≤ 8) little-endian bytes; `what` names the field for the message. */
static cmp_gguf_status read_le(struct cursor *c, unsigned n, uint64_t *out, const char *what)
{
    *out = 0;
    if (left(c) < n)
        return fail(c, c->pos, "file ends inside %s (%u bytes needed, %llu left)", what, n,
                    (unsigned long long)left(c));
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)c->base[c->pos + i] << (8 * i);
    c->pos += n;
    *out = v;
    return CMP_GGUF_OK;
}

static cmp_gguf_status read_str(struct cursor *c, cmp_gguf_str *s, const char *what)
{
    uint64_t at = c->pos, len = 0;
    cmp_gguf_status st = read_le(c, 8, &len, what);
    if (st)
        return st;
    if (len > left(c))
        return fail(c, at, "%s claims %llu bytes; %llu remain in the file", what,
                    (unsigned long long)len, (unsigned long long)left(c));
    s->ptr = (const char *)c->base + c->pos;
    s->len = len;
    c->pos += len;
    return CMP_GGUF_OK;
}

/* Bytes of one scalar of type t; 0 for string/array/unknown. */
static unsigned scalar_bytes(uint32_t t)
{
    switch (t) {
    case CMP_GGUF_UINT8:
    case CMP_GGUF_INT8:
    case CMP_GGUF_BOOL: return 1;
    case CMP_GGUF_UINT16:
    case CMP_GGUF_INT16: return 2;
    case CMP_GGUF_UINT32:
    case CMP_GGUF_INT32:
    case CMP_GGUF_FLOAT32: return 4;
    case CMP_GGUF_UINT64:
    case CMP_GGUF_INT64:
    case CMP_GGUF_FLOAT64: return 8;
    }
    return 0;
}

/* Decodes a scalar of type t at p into v. */
static void decode_scalar(uint32_t t, const uint8_t *p, cmp_gguf_value *v)
{
    uint64_t u = 0;
    unsigned n = scalar_bytes(t);
    for (unsigned i = 0; i < n; i++)
        u |= (uint64_t)p[i] << (8 * i);
    v->type = (cmp_gguf_type)t;
    switch (t) {
    case CMP_GGUF_INT8: v->i = (int8_t)u; break;
    case CMP_GGUF_INT16: v->i = (int16_t)u; break;
    case CMP_GGUF_INT32: v->i = (int32_t)u; break;
    case CMP_GGUF_INT64: v->i = (int64_t)u; break;
    case CMP_GGUF_FLOAT32: {
        uint32_t b = (uint32_t)u;
        float f;
        memcpy(&f, &b, 4);
        v->f = f;
        break;
    }
    case CMP_GGUF_FLOAT64: memcpy(&v->f, &u, 8); break;
    case CMP_GGUF_BOOL: v->u = u != 0; break;
    default: v->u = u; break;
    }
}

static cmp_gguf_status read_value(struct cursor *c, uint32_t type, cmp_gguf_value *v,
                                  const char *what);

/* An array body after its type word: element type, count, elements. */
static cmp_gguf_status read_array(struct cursor *c, cmp_gguf_value *v, const char *what)
{
    uint64_t at = c->pos, elem = 0, count = 0;
    cmp_gguf_status st;
    if ((st = read_le(c, 4, &elem, "an array's element type")) ||
        (st = read_le(c, 8, &count, "an array's element count")))
        return st;
    if (elem > CMP_GGUF_FLOAT64)
        return fail(c, at, "%s: array element type %llu is not a GGUF type", what,
                    (unsigned long long)elem);
    if (c->depth >= CMP_GGUF_MAX_NESTING)
        return fail(c, at, "%s: arrays nested deeper than %d", what, CMP_GGUF_MAX_NESTING);
    v->type = CMP_GGUF_ARRAY;
    v->arr.elem = (cmp_gguf_type)elem;
    v->arr.count = count;
    v->arr.data = c->base + c->pos;
    v->arr.offsets = NULL;
    unsigned sb = scalar_bytes((uint32_t)elem);
    if (sb) {
        if (count > left(c) / sb)
            return fail(c, at, "%s: %llu elements of %s need %llu bytes; %llu remain", what,
                        (unsigned long long)count, cmp_gguf_type_name((cmp_gguf_type)elem),
                        (unsigned long long)count * sb, (unsigned long long)left(c));
        v->arr.bytes = count * sb;
        c->pos += count * sb;
        return CMP_GGUF_OK;
    }
    /* strings and arrays: each takes at least 8 (or 12) bytes, which bounds the table */
    uint64_t min_each = elem == CMP_GGUF_STRING ? 8 : 12;
    if (count > left(c) / min_each)
        return fail(c, at, "%s: %llu elements cannot fit in the %llu bytes that remain", what,
                    (unsigned long long)count, (unsigned long long)left(c));
    /* top-level arrays keep each element's offset (tokenizer vocabularies are read by
     * index); nested ones are only checked */
    uint64_t *offsets = NULL;
    if (c->depth == 0) {
        offsets = malloc((count ? count : 1) * sizeof *offsets);
        if (!offsets)
            return CMP_GGUF_ERR_MEMORY;
        v->arr.offsets = offsets; /* owned by the key's value from here, freed on close */
    }
    uint64_t start = c->pos;
    c->depth++;
    for (uint64_t i = 0; i < count; i++) {
        if (offsets)
            offsets[i] = c->pos - start;
        cmp_gguf_value e;
        if ((st = read_value(c, (uint32_t)elem, &e, what)) != CMP_GGUF_OK) {
            c->depth--;
            return st;
        }
    }
    c->depth--;
    v->arr.bytes = c->pos - start;
    return CMP_GGUF_OK;
}

static cmp_gguf_status read_value(struct cursor *c, uint32_t type, cmp_gguf_value *v,
                                  const char *what)
{
    if (type == CMP_GGUF_STRING) {
        v->type = CMP_GGUF_STRING;
        return read_str(c, &v->s, what);
    }
    if (type == CMP_GGUF_ARRAY)
        return read_array(c, v, what);
    unsigned n = scalar_bytes(type);
    if (!n)
        return fail(c, c->pos, "%s: value type %u is not a GGUF type", what, type);
    if (left(c) < n)
        return fail(c, c->pos, "file ends inside %s", what);
    decode_scalar(type, c->base + c->pos, v);
    c->pos += n;
    return CMP_GGUF_OK;
}

/* ---- parsing ---- */

static char *key_text(cmp_gguf_str s, char *buf, size_t size)
{
    size_t n = s.len < size - 1 ? (size_t)s.len : size - 1;
    for (size_t i = 0; i < n; i++)
        buf[i] = s.ptr[i] >= 32 && s.ptr[i] < 127 ? s.ptr[i] : '?';
    buf[n] = '\0';
    return buf;
}

static cmp_gguf_status parse_header(struct cursor *c, cmp_gguf *g)
{
    uint64_t magic, version;
    cmp_gguf_status st;
    if ((st = read_le(c, 4, &magic, "the magic number")))
        return st;
    if (magic != 0x46554747u) /* "GGUF" */
        return fail(c, 0, "not a GGUF file (magic %02x %02x %02x %02x, want \"GGUF\")", c->base[0],
                    c->base[1], c->base[2], c->base[3]);
    if ((st = read_le(c, 4, &version, "the version")))
        return st;
    if (version == 1)
        return fail(c, 4, "GGUF version 1 (32-bit counts) is not read; convert the file again");
    if (version != 2 && version != 3) {
        if ((version & 0xffff) == 0 && version != 0)
            return fail(c, 4,
                        "a big-endian GGUF file (version word %#llx); only little-endian "
                        "files are read",
                        (unsigned long long)version);
        return fail(c, 4, "GGUF version %llu is not supported (2 and 3 are)",
                    (unsigned long long)version);
    }
    g->version = (uint32_t)version;
    if ((st = read_le(c, 8, &g->tensor_count, "the tensor count")) ||
        (st = read_le(c, 8, &g->kv_count, "the metadata count")))
        return st;
    /* a key takes at least 8 + 4 + 1 bytes, a tensor at least 8 + 4 + 8 + 4 + 8 */
    if (g->kv_count > left(c) / 13)
        return fail(c, 16, "%llu metadata pairs cannot fit in a file of %llu bytes",
                    (unsigned long long)g->kv_count, (unsigned long long)c->size);
    if (g->tensor_count > left(c) / 32)
        return fail(c, 8, "%llu tensors cannot fit in a file of %llu bytes",
                    (unsigned long long)g->tensor_count, (unsigned long long)c->size);
    return CMP_GGUF_OK;
}

static cmp_gguf_status parse_kvs(struct cursor *c, cmp_gguf *g)
{
    g->kvs = calloc(g->kv_count ? g->kv_count : 1, sizeof *g->kvs);
    if (!g->kvs)
        return CMP_GGUF_ERR_MEMORY;
    char what[96], kb[64];
    for (uint64_t i = 0; i < g->kv_count; i++) {
        cmp_gguf_kv *kv = &g->kvs[i];
        kv->file_offset = c->pos;
        snprintf(what, sizeof what, "metadata key %llu", (unsigned long long)i);
        uint64_t type;
        cmp_gguf_status st;
        if ((st = read_str(c, &kv->key, what)))
            return st;
        snprintf(what, sizeof what, "metadata \"%s\"", key_text(kv->key, kb, sizeof kb));
        uint64_t type_at = c->pos;
        if ((st = read_le(c, 4, &type, what)))
            return st;
        if (type > CMP_GGUF_FLOAT64)
            return fail(c, type_at, "%s: value type %llu is not a GGUF type", what,
                        (unsigned long long)type);
        if ((st = read_value(c, (uint32_t)type, &kv->value, what)))
            return st;
    }
    return CMP_GGUF_OK;
}

static cmp_gguf_status parse_tensors(struct cursor *c, cmp_gguf *g)
{
    g->tensors = calloc(g->tensor_count ? g->tensor_count : 1, sizeof *g->tensors);
    if (!g->tensors)
        return CMP_GGUF_ERR_MEMORY;
    char what[128], nb[64];
    for (uint64_t i = 0; i < g->tensor_count; i++) {
        cmp_gguf_tensor *t = &g->tensors[i];
        uint64_t at = c->pos, v = 0;
        cmp_gguf_status st;
        snprintf(what, sizeof what, "the name of tensor %llu", (unsigned long long)i);
        if ((st = read_str(c, &t->name, what)))
            return st;
        snprintf(what, sizeof what, "tensor \"%s\"", key_text(t->name, nb, sizeof nb));
        uint64_t dims_at = c->pos;
        if ((st = read_le(c, 4, &v, what)))
            return st;
        if (v < 1 || v > CMP_GGUF_MAX_DIMS)
            return fail(c, dims_at, "%s has %llu dimensions (1 to %d)", what, (unsigned long long)v,
                        CMP_GGUF_MAX_DIMS);
        t->n_dims = (uint32_t)v;
        uint64_t elems = 1;
        for (uint32_t d = 0; d < CMP_GGUF_MAX_DIMS; d++) {
            t->ne[d] = 1;
            if (d >= t->n_dims)
                continue;
            uint64_t ne_at = c->pos;
            if ((st = read_le(c, 8, &t->ne[d], what)))
                return st;
            if (t->ne[d] == 0 || t->ne[d] > c->size * 8 || elems > UINT64_MAX / t->ne[d])
                return fail(c, ne_at, "%s: dimension %u is %llu", what, d,
                            (unsigned long long)t->ne[d]);
            elems *= t->ne[d];
        }
        uint64_t type_at = c->pos;
        if ((st = read_le(c, 4, &v, what)))
            return st;
        t->type = (uint32_t)v;
        const struct ggml_type_row *row = ggml_type_row(t->type);
        if (!row)
            return fail(c, type_at, "%s has type %llu, which ggml does not define", what,
                        (unsigned long long)v);
        if (t->ne[0] % row->block_size)
            return fail(c, type_at, "%s: rows of %llu values are not whole %s blocks of %u", what,
                        (unsigned long long)t->ne[0], row->name, row->block_size);
        if (elems / row->block_size > UINT64_MAX / row->block_bytes)
            return fail(c, at, "%s is too large", what);
        t->bytes = elems / row->block_size * row->block_bytes;
        uint64_t off_at = c->pos;
        if ((st = read_le(c, 8, &t->offset, what)))
            return st;
        if (t->offset % g->alignment)
            return fail(c, off_at, "%s: data offset %llu is not a multiple of the alignment %llu",
                        what, (unsigned long long)t->offset, (unsigned long long)g->alignment);
    }
    return CMP_GGUF_OK;
}

/* general.alignment: a power of two when present. */
static cmp_gguf_status read_alignment(struct cursor *c, cmp_gguf *g)
{
    g->alignment = CMP_GGUF_DEFAULT_ALIGNMENT;
    const cmp_gguf_kv *kv = cmp_gguf_find(g, "general.alignment");
    if (!kv)
        return CMP_GGUF_OK;
    uint64_t a;
    if (cmp_gguf_get_u64(g, "general.alignment", &a) != CMP_GGUF_OK || a == 0 || (a & (a - 1)) ||
        a > (1u << 30))
        return fail(c, kv->file_offset, "general.alignment must be a power of two (is %s %llu)",
                    cmp_gguf_type_name(kv->value.type), (unsigned long long)kv->value.u);
    g->alignment = a;
    return CMP_GGUF_OK;
}

/* Tensor data: inside the file, no two overlapping. */
static int cmp_by_offset(const void *a, const void *b)
{
    const cmp_gguf_tensor *x = *(const cmp_gguf_tensor *const *)a,
                          *y = *(const cmp_gguf_tensor *const *)b;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

static int cmp_by_name(const void *a, const void *b)
{
    const cmp_gguf_tensor *x = *(const cmp_gguf_tensor *const *)a,
                          *y = *(const cmp_gguf_tensor *const *)b;
    uint64_t n = x->name.len < y->name.len ? x->name.len : y->name.len;
    int r = n ? memcmp(x->name.ptr, y->name.ptr, n) : 0;
    return r ? r : (x->name.len > y->name.len) - (x->name.len < y->name.len);
}

static cmp_gguf_status place_tensors(struct cursor *c, cmp_gguf *g)
{
    uint64_t end_of_header = c->pos;
    g->data_offset = (end_of_header + g->alignment - 1) / g->alignment * g->alignment;
    if (g->tensor_count && g->data_offset > c->size)
        return fail(c, end_of_header, "the file ends before its data section");
    uint64_t data_size = g->tensor_count ? c->size - g->data_offset : 0;
    char nb[64];
    for (uint64_t i = 0; i < g->tensor_count; i++) {
        cmp_gguf_tensor *t = &g->tensors[i];
        if (t->offset > data_size || t->bytes > data_size - t->offset)
            return fail(c, g->data_offset,
                        "tensor \"%s\" (%llu bytes at data offset %llu) runs past the end of the "
                        "file (%llu bytes of data): the file is truncated",
                        key_text(t->name, nb, sizeof nb), (unsigned long long)t->bytes,
                        (unsigned long long)t->offset, (unsigned long long)data_size);
        t->data = c->base + g->data_offset + t->offset;
    }
    if (g->tensor_count < 2)
        return CMP_GGUF_OK;
    const cmp_gguf_tensor **order = malloc(g->tensor_count * sizeof *order);
    if (!order)
        return CMP_GGUF_ERR_MEMORY;
    for (uint64_t i = 0; i < g->tensor_count; i++)
        order[i] = &g->tensors[i];
    qsort(order, g->tensor_count, sizeof *order, cmp_by_offset);
    cmp_gguf_status st = CMP_GGUF_OK;
    for (uint64_t i = 1; i < g->tensor_count && !st; i++)
        if (order[i - 1]->offset + order[i - 1]->bytes > order[i]->offset) {
            char nb2[64];
            st = fail(c, g->data_offset, "tensors \"%s\" and \"%s\" overlap",
                      key_text(order[i - 1]->name, nb, sizeof nb),
                      key_text(order[i]->name, nb2, sizeof nb2));
        }
    /* duplicate names would make lookups ambiguous */
    qsort(order, g->tensor_count, sizeof *order, cmp_by_name);
    for (uint64_t i = 1; i < g->tensor_count && !st; i++)
        if (cmp_by_name(&order[i - 1], &order[i]) == 0)
            st = fail(c, 24, "two tensors are named \"%s\"",
                      key_text(order[i]->name, nb, sizeof nb));
    free(order);
    return st;
}

cmp_gguf_status cmp_gguf_open_memory(const void *data, size_t size, cmp_gguf **out, char *err,
                                     size_t err_size)
{
    *out = NULL;
    if (err && err_size)
        err[0] = '\0';
    cmp_gguf *g = calloc(1, sizeof *g);
    if (!g)
        return CMP_GGUF_ERR_MEMORY;
    g->base = data;
    g->size = size;
    g->alignment = CMP_GGUF_DEFAULT_ALIGNMENT;
    struct cursor c = {.base = data, .size = size, .err = err, .err_size = err_size};
    cmp_gguf_status st;
    if ((st = parse_header(&c, g)) || (st = parse_kvs(&c, g)) || (st = read_alignment(&c, g)) ||
        (st = parse_tensors(&c, g)) || (st = place_tensors(&c, g))) {
        if (st == CMP_GGUF_ERR_MEMORY && err && err_size)
            snprintf(err, err_size, "out of host memory");
        cmp_gguf_close(g);
        return st;
    }
    *out = g;
    return CMP_GGUF_OK;
}

cmp_gguf_status cmp_gguf_open(const char *path, cmp_gguf **out, char *err, size_t err_size)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        if (err && err_size)
            snprintf(err, err_size, "%s: %s", path,
                     fd < 0 ? strerror(errno) : "not a regular file");
        if (fd >= 0)
            close(fd);
        return CMP_GGUF_ERR_IO;
    }
    size_t size = (size_t)sb.st_size;
    void *map = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (size && map == MAP_FAILED) {
        if (err && err_size)
            snprintf(err, err_size, "%s: cannot map: %s", path, strerror(errno));
        return CMP_GGUF_ERR_IO;
    }
    static const uint8_t empty[1];
    char inner[384];
    cmp_gguf_status st = cmp_gguf_open_memory(map ? map : empty, size, out, inner, sizeof inner);
    if (st) {
        if (err && err_size)
            snprintf(err, err_size, "%s: %s", path, inner);
        if (map)
            munmap(map, size);
        return st;
    }
    (*out)->map = map;
    return CMP_GGUF_OK;
}

void cmp_gguf_close(cmp_gguf *g)
{
    if (!g)
        return;
    for (uint64_t i = 0; g->kvs && i < g->kv_count; i++)
        if (g->kvs[i].value.type == CMP_GGUF_ARRAY)
            free((void *)g->kvs[i].value.arr.offsets);
    free(g->kvs);
    free(g->tensors);
    if (g->map)
        munmap(g->map, g->size);
    free(g);
}

/* ---- queries ---- */

uint32_t cmp_gguf_version(const cmp_gguf *g)
{
    return g->version;
}
uint64_t cmp_gguf_alignment(const cmp_gguf *g)
{
    return g->alignment;
}
uint64_t cmp_gguf_data_offset(const cmp_gguf *g)
{
    return g->data_offset;
}
uint64_t cmp_gguf_file_size(const cmp_gguf *g)
{
    return g->size;
}
uint64_t cmp_gguf_kv_count(const cmp_gguf *g)
{
    return g->kv_count;
}
uint64_t cmp_gguf_tensor_count(const cmp_gguf *g)
{
    return g->tensor_count;
}

const cmp_gguf_kv *cmp_gguf_kv_at(const cmp_gguf *g, uint64_t i)
{
    return i < g->kv_count ? &g->kvs[i] : NULL;
}

const cmp_gguf_tensor *cmp_gguf_tensor_at(const cmp_gguf *g, uint64_t i)
{
    return i < g->tensor_count ? &g->tensors[i] : NULL;
}

bool cmp_gguf_str_eq(cmp_gguf_str s, const char *text)
{
    size_t n = strlen(text);
    return s.len == n && memcmp(s.ptr, text, n) == 0;
}

const cmp_gguf_kv *cmp_gguf_find(const cmp_gguf *g, const char *key)
{
    /* kvs may be partly parsed while reading general.alignment: only parsed ones count */
    for (uint64_t i = 0; i < g->kv_count; i++)
        if (g->kvs[i].key.ptr && cmp_gguf_str_eq(g->kvs[i].key, key))
            return &g->kvs[i];
    return NULL;
}

const cmp_gguf_tensor *cmp_gguf_find_tensor(const cmp_gguf *g, const char *name)
{
    for (uint64_t i = 0; i < g->tensor_count; i++)
        if (cmp_gguf_str_eq(g->tensors[i].name, name))
            return &g->tensors[i];
    return NULL;
}

/* A scalar as a signed 128-bit-safe pair: negative flag and magnitude. */
static bool as_int(const cmp_gguf_value *v, bool *neg, uint64_t *mag)
{
    switch (v->type) {
    case CMP_GGUF_UINT8:
    case CMP_GGUF_UINT16:
    case CMP_GGUF_UINT32:
    case CMP_GGUF_UINT64:
    case CMP_GGUF_BOOL: *neg = false, *mag = v->u; return true;
    case CMP_GGUF_INT8:
    case CMP_GGUF_INT16:
    case CMP_GGUF_INT32:
    case CMP_GGUF_INT64:
        *neg = v->i < 0;
        *mag = v->i < 0 ? (uint64_t)0 - (uint64_t)v->i : (uint64_t)v->i;
        return true;
    default: return false;
    }
}

/* The value under key, when it has one of the two types (-1: any). */
static cmp_gguf_status lookup(const cmp_gguf *g, const char *key, int type, int or_type,
                              const cmp_gguf_value **out)
{
    const cmp_gguf_kv *kv = cmp_gguf_find(g, key);
    if (!kv)
        return CMP_GGUF_ERR_NOT_FOUND;
    if (type >= 0 && (int)kv->value.type != type && (int)kv->value.type != or_type)
        return CMP_GGUF_ERR_TYPE;
    *out = &kv->value;
    return CMP_GGUF_OK;
}

cmp_gguf_status cmp_gguf_get_u64(const cmp_gguf *g, const char *key, uint64_t *out)
{
    const cmp_gguf_value *v;
    bool neg;
    uint64_t mag;
    cmp_gguf_status st = lookup(g, key, -1, -1, &v);
    if (st)
        return st;
    if (v->type == CMP_GGUF_BOOL || !as_int(v, &neg, &mag) || neg)
        return CMP_GGUF_ERR_TYPE;
    *out = mag;
    return CMP_GGUF_OK;
}

cmp_gguf_status cmp_gguf_get_u32(const cmp_gguf *g, const char *key, uint32_t *out)
{
    uint64_t v;
    cmp_gguf_status st = cmp_gguf_get_u64(g, key, &v);
    if (st)
        return st;
    if (v > UINT32_MAX)
        return CMP_GGUF_ERR_TYPE;
    *out = (uint32_t)v;
    return CMP_GGUF_OK;
}

cmp_gguf_status cmp_gguf_get_f32(const cmp_gguf *g, const char *key, float *out)
{
    const cmp_gguf_value *v;
    cmp_gguf_status st = lookup(g, key, CMP_GGUF_FLOAT32, CMP_GGUF_FLOAT64, &v);
    if (st == CMP_GGUF_OK)
        *out = (float)v->f;
    return st;
}

cmp_gguf_status cmp_gguf_get_bool(const cmp_gguf *g, const char *key, bool *out)
{
    const cmp_gguf_value *v;
    cmp_gguf_status st = lookup(g, key, CMP_GGUF_BOOL, CMP_GGUF_BOOL, &v);
    if (st == CMP_GGUF_OK)
        *out = v->u != 0;
    return st;
}

cmp_gguf_status cmp_gguf_get_str(const cmp_gguf *g, const char *key, cmp_gguf_str *out)
{
    const cmp_gguf_value *v;
    cmp_gguf_status st = lookup(g, key, CMP_GGUF_STRING, CMP_GGUF_STRING, &v);
    if (st == CMP_GGUF_OK)
        *out = v->s;
    return st;
}

cmp_gguf_status cmp_gguf_get_array(const cmp_gguf *g, const char *key, int elem,
                                   cmp_gguf_value *out)
{
    const cmp_gguf_value *v;
    cmp_gguf_status st = lookup(g, key, CMP_GGUF_ARRAY, CMP_GGUF_ARRAY, &v);
    if (st)
        return st;
    if (elem >= 0 && (int)v->arr.elem != elem)
        return CMP_GGUF_ERR_TYPE;
    *out = *v;
    return CMP_GGUF_OK;
}

/* Element i of a scalar array, decoded. */
static bool scalar_at(const cmp_gguf_value *arr, uint64_t i, cmp_gguf_value *v)
{
    unsigned n = scalar_bytes(arr->arr.elem);
    if (arr->type != CMP_GGUF_ARRAY || !n || i >= arr->arr.count)
        return false;
    decode_scalar(arr->arr.elem, arr->arr.data + i * n, v);
    return true;
}

bool cmp_gguf_array_num(const cmp_gguf_value *arr, uint64_t i, double *out)
{
    cmp_gguf_value v;
    bool neg;
    uint64_t mag;
    if (!scalar_at(arr, i, &v))
        return false;
    if (v.type == CMP_GGUF_FLOAT32 || v.type == CMP_GGUF_FLOAT64)
        *out = v.f;
    else if (as_int(&v, &neg, &mag))
        *out = neg ? -(double)mag : (double)mag;
    else
        return false;
    return true;
}

bool cmp_gguf_array_int(const cmp_gguf_value *arr, uint64_t i, int64_t *out)
{
    cmp_gguf_value v;
    bool neg;
    uint64_t mag;
    if (!scalar_at(arr, i, &v) || !as_int(&v, &neg, &mag) ||
        mag > (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX))
        return false;
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return true;
}

/* Reads a 64-bit little-endian length at p. */
static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

bool cmp_gguf_array_str(const cmp_gguf_value *arr, uint64_t i, cmp_gguf_str *out)
{
    if (arr->type != CMP_GGUF_ARRAY || arr->arr.elem != CMP_GGUF_STRING || i >= arr->arr.count ||
        !arr->arr.offsets)
        return false;
    const uint8_t *p = arr->arr.data + arr->arr.offsets[i];
    out->len = le64(p); /* checked when the file was parsed */
    out->ptr = (const char *)p + 8;
    return true;
}

bool cmp_gguf_array_array(const cmp_gguf_value *arr, uint64_t i, cmp_gguf_value *out)
{
    if (arr->type != CMP_GGUF_ARRAY || arr->arr.elem != CMP_GGUF_ARRAY || i >= arr->arr.count ||
        !arr->arr.offsets)
        return false;
    /* parse the nested array again: its bytes were validated, but its own offset table is
     * not kept, so a nested array of strings can be walked only by count */
    const uint8_t *p = arr->arr.data + arr->arr.offsets[i];
    uint32_t elem = (uint32_t)(p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24);
    out->type = CMP_GGUF_ARRAY;
    out->arr.elem = (cmp_gguf_type)elem;
    out->arr.count = le64(p + 4);
    out->arr.data = p + 12;
    uint64_t end = i + 1 < arr->arr.count ? arr->arr.offsets[i + 1] : arr->arr.bytes;
    out->arr.bytes = end - arr->arr.offsets[i] - 12;
    out->arr.offsets = NULL;
    return true;
}

uint32_t cmp_gguf_arch_u32(const cmp_gguf *g, const char *key, uint32_t def)
{
    cmp_gguf_str arch;
    char k[160];
    uint32_t v;
    if (cmp_gguf_get_str(g, "general.architecture", &arch) != CMP_GGUF_OK || arch.len > 64)
        return def;
    snprintf(k, sizeof k, "%.*s.%s", (int)arch.len, arch.ptr, key);
    return cmp_gguf_get_u32(g, k, &v) == CMP_GGUF_OK ? v : def;
}
