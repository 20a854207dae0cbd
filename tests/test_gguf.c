/* The GGUF reader: a file with every value type parses to what was written; the real
 * models in ../shared parse; truncated, corrupted and hostile files give a status and a
 * message naming the field and the offset, never a crash or a huge allocation (the
 * sanitizer build runs these too). */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cmp_gguf.h"
#include "cmp_quant.h"
#include "harness.h"

/* ---- a small GGUF writer for the tests ---- */

struct buf {
    uint8_t *p;
    size_t n, cap;
};

static void put(struct buf *b, const void *src, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void put_le(struct buf *b, uint64_t v, int bytes)
{
    uint8_t t[8];
    for (int i = 0; i < bytes; i++)
        t[i] = (uint8_t)(v >> (8 * i));
    put(b, t, (size_t)bytes);
}

static void put_str(struct buf *b, const char *s)
{
    put_le(b, strlen(s), 8);
    put(b, s, strlen(s));
}

static void put_key(struct buf *b, const char *key, uint32_t type)
{
    put_str(b, key);
    put_le(b, type, 4);
}

struct tensor_spec {
    const char *name;
    uint32_t type;
    uint64_t ne0, ne1;
};

/* A version-3 file: every scalar type, a string, arrays of numbers, strings and arrays,
 * general.alignment = 64, and the tensors given (their data: bytes i & 255). */
static struct buf make_file(const struct tensor_spec *ts, int nt)
{
    struct buf b = {0};
    put(&b, "GGUF", 4);
    put_le(&b, 3, 4);
    put_le(&b, (uint64_t)nt, 8);
    put_le(&b, 18, 8);
    put_key(&b, "general.architecture", CMP_GGUF_STRING);
    put_str(&b, "llama");
    put_key(&b, "general.alignment", CMP_GGUF_UINT32);
    put_le(&b, 64, 4);
    put_key(&b, "t.u8", CMP_GGUF_UINT8);
    put_le(&b, 200, 1);
    put_key(&b, "t.i8", CMP_GGUF_INT8);
    put_le(&b, (uint8_t)-5, 1);
    put_key(&b, "t.u16", CMP_GGUF_UINT16);
    put_le(&b, 60000, 2);
    put_key(&b, "t.i16", CMP_GGUF_INT16);
    put_le(&b, (uint16_t)-300, 2);
    put_key(&b, "t.u32", CMP_GGUF_UINT32);
    put_le(&b, 4000000000u, 4);
    put_key(&b, "t.i32", CMP_GGUF_INT32);
    put_le(&b, (uint32_t)-70000, 4);
    put_key(&b, "t.f32", CMP_GGUF_FLOAT32);
    float f = 1e-5f;
    uint32_t fb;
    memcpy(&fb, &f, 4);
    put_le(&b, fb, 4);
    put_key(&b, "t.bool", CMP_GGUF_BOOL);
    put_le(&b, 1, 1);
    put_key(&b, "t.u64", CMP_GGUF_UINT64);
    put_le(&b, 1ull << 40, 8);
    put_key(&b, "t.i64", CMP_GGUF_INT64);
    put_le(&b, (uint64_t) - (1ll << 40), 8);
    put_key(&b, "t.f64", CMP_GGUF_FLOAT64);
    double d = 500000.0;
    uint64_t db;
    memcpy(&db, &d, 8);
    put_le(&b, db, 8);
    put_key(&b, "t.ints", CMP_GGUF_ARRAY);
    put_le(&b, CMP_GGUF_INT32, 4);
    put_le(&b, 3, 8);
    put_le(&b, 1, 4), put_le(&b, (uint32_t)-2, 4), put_le(&b, 3, 4);
    put_key(&b, "t.strs", CMP_GGUF_ARRAY);
    put_le(&b, CMP_GGUF_STRING, 4);
    put_le(&b, 3, 8);
    put_str(&b, "<s>"), put_str(&b, ""), put_str(&b, "\xe2\x96\x81the");
    put_key(&b, "t.nested", CMP_GGUF_ARRAY); /* [[1, 2], [], [7]] of uint16 */
    put_le(&b, CMP_GGUF_ARRAY, 4);
    put_le(&b, 3, 8);
    put_le(&b, CMP_GGUF_UINT16, 4), put_le(&b, 2, 8), put_le(&b, 1, 2), put_le(&b, 2, 2);
    put_le(&b, CMP_GGUF_UINT16, 4), put_le(&b, 0, 8);
    put_le(&b, CMP_GGUF_UINT16, 4), put_le(&b, 1, 8), put_le(&b, 7, 2);
    put_key(&b, "t.empty", CMP_GGUF_ARRAY);
    put_le(&b, CMP_GGUF_FLOAT32, 4);
    put_le(&b, 0, 8);
    put_key(&b, "t.str", CMP_GGUF_STRING);
    put_str(&b, "hello");
    uint64_t off = 0;
    for (int i = 0; i < nt; i++) {
        put_str(&b, ts[i].name);
        put_le(&b, ts[i].ne1 > 1 ? 2 : 1, 4);
        put_le(&b, ts[i].ne0, 8);
        if (ts[i].ne1 > 1)
            put_le(&b, ts[i].ne1, 8);
        put_le(&b, ts[i].type, 4);
        put_le(&b, off, 8);
        off += (cmp_row_bytes((cmp_type)ts[i].type, ts[i].ne0) * ts[i].ne1 + 63) / 64 * 64;
    }
    while (b.n % 64)
        put_le(&b, 0, 1);
    for (uint64_t i = 0; i < off; i++)
        put_le(&b, i & 255, 1);
    return b;
}

static const struct tensor_spec three[] = {
    {"token_embd.weight", CMP_TYPE_Q8_0, 64, 10},
    {"output_norm.weight", CMP_TYPE_F32, 64, 1},
    {"blk.0.ffn_up.weight", CMP_TYPE_Q4_0, 64, 3},
};

static void test_every_type(void)
{
    struct buf b = make_file(three, 3);
    char err[256];
    cmp_gguf *g = NULL;
    CHECK_MSG(cmp_gguf_open_memory(b.p, b.n, &g, err, sizeof err) == CMP_GGUF_OK, "%s", err);
    if (!g) {
        free(b.p);
        return;
    }
    CHECK(cmp_gguf_version(g) == 3);
    CHECK(cmp_gguf_alignment(g) == 64);
    CHECK(cmp_gguf_kv_count(g) == 18);
    CHECK(cmp_gguf_data_offset(g) % 64 == 0);
    uint32_t u32;
    uint64_t u64;
    float f;
    bool bo;
    cmp_gguf_str s;
    CHECK(cmp_gguf_get_str(g, "general.architecture", &s) == CMP_GGUF_OK &&
          cmp_gguf_str_eq(s, "llama"));
    CHECK(cmp_gguf_get_u32(g, "t.u8", &u32) == CMP_GGUF_OK && u32 == 200);
    CHECK(cmp_gguf_get_u32(g, "t.u16", &u32) == CMP_GGUF_OK && u32 == 60000);
    CHECK(cmp_gguf_get_u32(g, "t.u32", &u32) == CMP_GGUF_OK && u32 == 4000000000u);
    CHECK(cmp_gguf_get_u32(g, "t.u64", &u32) == CMP_GGUF_ERR_TYPE); /* does not fit */
    CHECK(cmp_gguf_get_u64(g, "t.u64", &u64) == CMP_GGUF_OK && u64 == 1ull << 40);
    CHECK(cmp_gguf_get_u64(g, "t.i8", &u64) == CMP_GGUF_ERR_TYPE); /* negative */
    CHECK(cmp_gguf_find(g, "t.i16")->value.i == -300);
    CHECK(cmp_gguf_find(g, "t.i32")->value.i == -70000);
    CHECK(cmp_gguf_find(g, "t.i64")->value.i == -(1ll << 40));
    CHECK(cmp_gguf_get_f32(g, "t.f32", &f) == CMP_GGUF_OK && f == 1e-5f);
    CHECK(cmp_gguf_get_f32(g, "t.f64", &f) == CMP_GGUF_OK && f == 500000.0f);
    CHECK(cmp_gguf_get_f32(g, "t.u8", &f) == CMP_GGUF_ERR_TYPE);
    CHECK(cmp_gguf_get_bool(g, "t.bool", &bo) == CMP_GGUF_OK && bo);
    CHECK(cmp_gguf_get_u32(g, "no.such.key", &u32) == CMP_GGUF_ERR_NOT_FOUND);
    CHECK(cmp_gguf_get_str(g, "t.str", &s) == CMP_GGUF_OK && cmp_gguf_str_eq(s, "hello"));

    cmp_gguf_value a;
    int64_t iv;
    double dv;
    CHECK(cmp_gguf_get_array(g, "t.ints", CMP_GGUF_INT32, &a) == CMP_GGUF_OK);
    CHECK(a.arr.count == 3 && cmp_gguf_array_int(&a, 1, &iv) && iv == -2);
    CHECK(cmp_gguf_array_num(&a, 2, &dv) && dv == 3.0);
    CHECK(!cmp_gguf_array_int(&a, 3, &iv)); /* out of range */
    CHECK(cmp_gguf_get_array(g, "t.ints", CMP_GGUF_STRING, &a) == CMP_GGUF_ERR_TYPE);
    CHECK(cmp_gguf_get_array(g, "t.strs", CMP_GGUF_STRING, &a) == CMP_GGUF_OK);
    CHECK(cmp_gguf_array_str(&a, 0, &s) && cmp_gguf_str_eq(s, "<s>"));
    CHECK(cmp_gguf_array_str(&a, 1, &s) && s.len == 0);
    CHECK(cmp_gguf_array_str(&a, 2, &s) && cmp_gguf_str_eq(s, "\xe2\x96\x81the"));
    CHECK(cmp_gguf_get_array(g, "t.nested", CMP_GGUF_ARRAY, &a) == CMP_GGUF_OK && a.arr.count == 3);
    cmp_gguf_value inner;
    CHECK(cmp_gguf_array_array(&a, 0, &inner) && inner.arr.count == 2 &&
          cmp_gguf_array_int(&inner, 1, &iv) && iv == 2);
    CHECK(cmp_gguf_array_array(&a, 1, &inner) && inner.arr.count == 0);
    CHECK(cmp_gguf_array_array(&a, 2, &inner) && cmp_gguf_array_int(&inner, 0, &iv) && iv == 7);
    CHECK(cmp_gguf_get_array(g, "t.empty", -1, &a) == CMP_GGUF_OK && a.arr.count == 0);

    CHECK(cmp_gguf_tensor_count(g) == 3);
    const cmp_gguf_tensor *t = cmp_gguf_find_tensor(g, "blk.0.ffn_up.weight");
    CHECK(t && t->type == CMP_TYPE_Q4_0 && t->n_dims == 2 && t->ne[0] == 64 && t->ne[1] == 3 &&
          t->ne[2] == 1 && t->bytes == 3 * 36);
    const cmp_gguf_tensor *e = cmp_gguf_find_tensor(g, "token_embd.weight");
    CHECK(e && e->data == b.p + cmp_gguf_data_offset(g) && e->data[5] == 5);
    CHECK(!cmp_gguf_find_tensor(g, "output.weight"));
    cmp_gguf_close(g);
    /* a seed for the fuzzer (tests/fuzz_gguf.sh), in the test's working folder */
    FILE *seed = fopen("test_gguf_seed.gguf", "wb");
    if (seed) {
        fwrite(b.p, 1, b.n, seed);
        fclose(seed);
    }
    free(b.p);
}

/* Every prefix of a valid file is refused with a message, and nothing crashes. */
static void test_truncated(void)
{
    struct buf b = make_file(three, 3);
    char err[256];
    size_t bad = 0;
    /* the file proper ends with the last tensor's bytes (the writer pads after it) */
    size_t end = b.n - (128 - 3 * 36);
    for (size_t n = 0; n < end; n++) {
        uint8_t *copy = malloc(n ? n : 1); /* exactly n bytes: ASan sees any overread */
        memcpy(copy, b.p, n);
        cmp_gguf *g = NULL;
        cmp_gguf_status st = cmp_gguf_open_memory(copy, n, &g, err, sizeof err);
        if (st != CMP_GGUF_ERR_FORMAT || g || strncmp(err, "at byte ", 8) != 0) {
            if (!bad)
                t_fail_at(__FILE__, __LINE__, "prefix of %zu bytes: status %d, message \"%s\"", n,
                          (int)st, err);
            bad++;
        }
        cmp_gguf_close(g);
        free(copy);
    }
    CHECK_MSG(bad == 0, "%zu of %zu prefixes not refused cleanly", bad, end);
    /* a cut in the tensor data names the tensor */
    cmp_gguf *g = NULL;
    CHECK(cmp_gguf_open_memory(b.p, end, &g, err, sizeof err) == CMP_GGUF_OK);
    cmp_gguf_close(g);
    CHECK(cmp_gguf_open_memory(b.p, end - 1, &g, err, sizeof err) == CMP_GGUF_ERR_FORMAT);
    CHECK_MSG(strstr(err, "blk.0.ffn_up.weight") && strstr(err, "truncated"), "%s", err);
    free(b.p);
}

/* A file edited at one place: status, and a message with the words expected. */
static void expect_refused(const char *what, const uint8_t *data, size_t n, const char *words)
{
    char err[256] = "";
    cmp_gguf *g = NULL;
    cmp_gguf_status st = cmp_gguf_open_memory(data, n, &g, err, sizeof err);
    CHECK_MSG(st == CMP_GGUF_ERR_FORMAT && !g, "%s: accepted (status %d)", what, (int)st);
    CHECK_MSG(strstr(err, words) != NULL, "%s: message \"%s\" lacks \"%s\"", what, err, words);
    cmp_gguf_close(g);
}

/* Offset of `needle` in the file (the first occurrence). */
static size_t find(const struct buf *b, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= b->n; i++)
        if (memcmp(b->p + i, needle, n) == 0)
            return i;
    return 0;
}

static void poke_le(struct buf *b, size_t at, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        b->p[at + (size_t)i] = (uint8_t)(v >> (8 * i));
}

static void test_hostile(void)
{
    struct buf b = make_file(three, 3);
    struct buf m = {malloc(b.n), b.n, b.n};
#define EDIT(what, words, ...)                                                                     \
    do {                                                                                           \
        memcpy(m.p, b.p, b.n);                                                                     \
        __VA_ARGS__;                                                                               \
        expect_refused(what, m.p, m.n, words);                                                     \
    } while (0)
    EDIT("magic", "not a GGUF file", m.p[0] = 'X');
    EDIT("version 1", "version 1", poke_le(&m, 4, 1, 4));
    EDIT("version 4", "version 4 is not supported", poke_le(&m, 4, 4, 4));
    EDIT("big-endian", "big-endian", poke_le(&m, 4, 3u << 24, 4));
    EDIT("tensor count", "tensors cannot fit", poke_le(&m, 8, 1ull << 60, 8));
    EDIT("kv count", "metadata pairs cannot fit", poke_le(&m, 16, UINT64_MAX, 8));
    EDIT("key length", "claims", poke_le(&m, 24, 1ull << 62, 8));
    size_t arch = find(&b, "general.architecture");
    EDIT("value type", "value type 13", poke_le(&m, arch + 20, 13, 4));
    size_t ints = find(&b, "t.ints") + 6 + 4; /* element type, then count */
    EDIT("array count", "t.ints", poke_le(&m, ints + 4, 1ull << 61, 8));
    EDIT("array elem type", "array element type 77", poke_le(&m, ints, 77, 4));
    size_t strs = find(&b, "t.strs") + 6 + 4;
    EDIT("string array count", "cannot fit", poke_le(&m, strs + 4, 1ull << 59, 8));
    EDIT("string in array", "claims", poke_le(&m, strs + 12, 1ull << 40, 8));
    size_t align = find(&b, "general.alignment") + 17 + 4;
    EDIT("alignment 3", "power of two", poke_le(&m, align, 3, 4));
    EDIT("alignment 0", "power of two", poke_le(&m, align, 0, 4));
    size_t up = find(&b, "blk.0.ffn_up.weight") + 19; /* n_dims, ne0, ne1, type, offset */
    EDIT("n_dims 5", "5 dimensions", poke_le(&m, up, 5, 4));
    EDIT("n_dims 0", "0 dimensions", poke_le(&m, up, 0, 4));
    EDIT("ne 0", "dimension 1 is 0", poke_le(&m, up + 12, 0, 8));
    EDIT("ne huge", "dimension 0 is", poke_le(&m, up + 4, 1ull << 62, 8));
    EDIT("tensor type 99", "type 99, which ggml does not define", poke_le(&m, up + 20, 99, 4));
    EDIT("q4_0 row not whole blocks", "not whole q4_0 blocks", poke_le(&m, up + 4, 48, 8));
    EDIT("misaligned data", "not a multiple of the alignment", poke_le(&m, up + 24, 130, 8));
    EDIT("data past end", "runs past the end", poke_le(&m, up + 24, 1ull << 40, 8));
    EDIT("overlap", "overlap", poke_le(&m, up + 24, 0, 8));
#undef EDIT
    static const struct tensor_spec twins[] = {{"a.weight", CMP_TYPE_F32, 64, 1},
                                               {"a.weight", CMP_TYPE_F32, 64, 1}};
    struct buf d = make_file(twins, 2);
    expect_refused("duplicate", d.p, d.n, "two tensors are named \"a.weight\"");
    free(d.p);
    /* arrays nested deeper than the limit */
    struct buf n = {0};
    put(&n, "GGUF", 4);
    put_le(&n, 3, 4), put_le(&n, 0, 8), put_le(&n, 1, 8);
    put_key(&n, "deep", CMP_GGUF_ARRAY);
    for (int i = 0; i < 20; i++)
        put_le(&n, CMP_GGUF_ARRAY, 4), put_le(&n, 1, 8);
    put_le(&n, CMP_GGUF_UINT8, 4), put_le(&n, 0, 8);
    expect_refused("nesting", n.p, n.n, "nested deeper than 8");
    free(n.p);
    free(m.p);
    free(b.p);
}

/* Random corruption, bounded by count: each mutant parses or is refused; the sanitizer
 * build catches any access outside the file. The libFuzzer target goes further. */
static void test_mutations(void)
{
    struct buf b = make_file(three, 3);
    uint64_t seed = 12345;
    uint8_t *m = malloc(b.n);
    char err[256];
    int accepted = 0;
    for (int it = 0; it < 20000; it++) {
        memcpy(m, b.p, b.n);
        int edits = 1 + (int)(t_rand_u64(&seed) % 4);
        for (int e = 0; e < edits; e++) {
            size_t at = t_rand_u64(&seed) % b.n;
            uint64_t r = t_rand_u64(&seed);
            m[at] = r & 1 ? (uint8_t)(r >> 8) : (uint8_t)(m[at] ^ (1u << ((r >> 8) % 8)));
        }
        cmp_gguf *g = NULL;
        if (cmp_gguf_open_memory(m, b.n, &g, err, sizeof err) == CMP_GGUF_OK) {
            accepted++;
            /* whatever parsed must be readable */
            for (uint64_t i = 0; i < cmp_gguf_tensor_count(g); i++) {
                const cmp_gguf_tensor *t = cmp_gguf_tensor_at(g, i);
                CHECK(t->data >= m && t->data + t->bytes <= m + b.n);
            }
        } else {
            CHECK(err[0] != '\0');
        }
        cmp_gguf_close(g);
    }
    fprintf(stderr, "  %d of 20000 mutants still parse (edits in data or values)\n", accepted);
    free(m);
    free(b.p);
}

static void test_shared_models(void)
{
    const char *dir = t_shared_dir();
    if (!dir) {
        t_skip("../shared not found (set VKLLM_SHARED_DIR); the real-model cases need it");
        return;
    }
    static const struct {
        const char *file;
        uint64_t tensors;
        uint64_t data_offset; /* 0: not checked */
    } models[] = {
        {"models/stories260K.gguf", 48, 14176},
        {"models/TinyStories-656K-Q8_0.gguf", 20, 0},
        {"models/TinyStories-656K-Q2_K.gguf", 20, 0},
        {"models/vocab/ggml-vocab-llama-spm.gguf", 0, 0},
        {"models/vocab/ggml-vocab-llama-bpe.gguf", 0, 0},
        {"models/vocab/ggml-vocab-gpt-2.gguf", 0, 0},
        {"models/vocab/ggml-vocab-qwen2.gguf", 0, 0},
    };
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        char path[1024], err[512];
        snprintf(path, sizeof path, "%s/%s", dir, models[i].file);
        cmp_gguf *g = NULL;
        cmp_gguf_status st = cmp_gguf_open(path, &g, err, sizeof err);
        CHECK_MSG(st == CMP_GGUF_OK, "%s", err);
        if (!g)
            continue;
        CHECK_MSG(cmp_gguf_tensor_count(g) == models[i].tensors, "%s: %llu tensors", path,
                  (unsigned long long)cmp_gguf_tensor_count(g));
        if (models[i].data_offset)
            CHECK(cmp_gguf_data_offset(g) == models[i].data_offset);
        cmp_gguf_value tokens;
        CHECK_MSG(cmp_gguf_get_array(g, "tokenizer.ggml.tokens", CMP_GGUF_STRING, &tokens) ==
                          CMP_GGUF_OK &&
                      tokens.arr.count > 0,
                  "%s: no vocabulary", path);
        for (uint64_t t = 0; t < cmp_gguf_tensor_count(g); t++) {
            const cmp_gguf_tensor *tt = cmp_gguf_tensor_at(g, t);
            CHECK_MSG(cmp_type_get((cmp_type)tt->type) != NULL, "%s: tensor %.*s has type %s", path,
                      (int)tt->name.len, tt->name.ptr, cmp_ggml_type_name(tt->type));
        }
        cmp_gguf_close(g);
    }
    char err[512];
    cmp_gguf *g = NULL;
    CHECK(cmp_gguf_open("/nonexistent/model.gguf", &g, err, sizeof err) == CMP_GGUF_ERR_IO);
    CHECK(strstr(err, "/nonexistent/model.gguf") && strstr(err, "No such file"));
    CHECK(cmp_gguf_open("/", &g, err, sizeof err) == CMP_GGUF_ERR_IO);
}

int main(int argc, char **argv)
{
    static const t_case cases[] = {
        {"every_type", test_every_type, false},
        {"truncated", test_truncated, false},
        {"hostile", test_hostile, false},
        {"mutations", test_mutations, false},
        {"shared_models", test_shared_models, false},
    };
    return t_main(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
}
