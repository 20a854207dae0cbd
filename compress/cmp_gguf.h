/* GGUF reader: versions 2 and 3, little-endian, every metadata value type including
 * nested arrays, the alignment key, the tensor table.
 *
 * The file is mapped read-only and never trusted: every count, length, offset, size and
 * type is checked against the bytes that exist before it is used, so a truncated or
 * hostile file gives CMP_GGUF_ERR_FORMAT and a message naming the field and its byte
 * offset, never a crash, a hang or an allocation larger than the file justifies.
 * Values point into the mapping and live as long as the cmp_gguf. */
#ifndef CMP_GGUF_H
#define CMP_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cmp_gguf_status {
    CMP_GGUF_OK = 0,
    CMP_GGUF_ERR_IO,     /* the file could not be opened, sized or mapped */
    CMP_GGUF_ERR_FORMAT, /* not GGUF, an unsupported version, or inconsistent */
    CMP_GGUF_ERR_MEMORY, /* out of host memory */
    CMP_GGUF_ERR_NOT_FOUND,
    CMP_GGUF_ERR_TYPE, /* a key holds a value of another type */
} cmp_gguf_status;

/* Metadata value types, as stored. */
typedef enum cmp_gguf_type {
    CMP_GGUF_UINT8 = 0,
    CMP_GGUF_INT8 = 1,
    CMP_GGUF_UINT16 = 2,
    CMP_GGUF_INT16 = 3,
    CMP_GGUF_UINT32 = 4,
    CMP_GGUF_INT32 = 5,
    CMP_GGUF_FLOAT32 = 6,
    CMP_GGUF_BOOL = 7,
    CMP_GGUF_STRING = 8,
    CMP_GGUF_ARRAY = 9,
    CMP_GGUF_UINT64 = 10,
    CMP_GGUF_INT64 = 11,
    CMP_GGUF_FLOAT64 = 12,
} cmp_gguf_type;

#define CMP_GGUF_MAX_DIMS          4 /* as in ggml */
#define CMP_GGUF_MAX_NESTING       8 /* arrays of arrays deeper than this are refused */
#define CMP_GGUF_DEFAULT_ALIGNMENT 32

typedef struct cmp_gguf_str {
    const char *ptr; /* not NUL-terminated */
    uint64_t len;
} cmp_gguf_str;

/* A metadata value. Arrays: `elem` and `count`, elements at `data` (packed, as stored);
 * read them with the cmp_gguf_array_* functions. */
typedef struct cmp_gguf_value {
    cmp_gguf_type type;
    union {
        uint64_t u;     /* UINT8/16/32/64, BOOL (0 or 1) */
        int64_t i;      /* INT8/16/32/64 */
        double f;       /* FLOAT32, FLOAT64 */
        cmp_gguf_str s; /* STRING */
        struct {
            cmp_gguf_type elem;
            uint64_t count;
            const uint8_t *data;
            uint64_t bytes;          /* of the elements */
            const uint64_t *offsets; /* STRING and ARRAY elements of a key's own array (not of
                                      * nested ones): byte offset of each in data */
        } arr;
    };
} cmp_gguf_value;

typedef struct cmp_gguf_kv {
    cmp_gguf_str key;
    cmp_gguf_value value;
    uint64_t file_offset; /* where the key starts, for messages */
} cmp_gguf_kv;

typedef struct cmp_gguf_tensor {
    cmp_gguf_str name;
    uint32_t n_dims;
    uint64_t ne[CMP_GGUF_MAX_DIMS]; /* ne[0] the contiguous row length; unused dims are 1 */
    uint32_t type;                  /* ggml_type; cmp_type when vkllm reads it */
    uint64_t offset;                /* from the start of the data section */
    uint64_t bytes;
    const uint8_t *data; /* in the mapping */
} cmp_gguf_tensor;

typedef struct cmp_gguf cmp_gguf;

/* Maps and parses `path`. On failure *out is NULL and err (when given) holds the reason. */
cmp_gguf_status cmp_gguf_open(const char *path, cmp_gguf **out, char *err, size_t err_size);

/* Parses `size` bytes at `data`, which must outlive the result (the fuzzer uses this). */
cmp_gguf_status cmp_gguf_open_memory(const void *data, size_t size, cmp_gguf **out, char *err,
                                     size_t err_size);

void cmp_gguf_close(cmp_gguf *g);

uint32_t cmp_gguf_version(const cmp_gguf *g);
uint64_t cmp_gguf_alignment(const cmp_gguf *g);
uint64_t cmp_gguf_data_offset(const cmp_gguf *g); /* where the data section starts */
uint64_t cmp_gguf_file_size(const cmp_gguf *g);

uint64_t cmp_gguf_kv_count(const cmp_gguf *g);
const cmp_gguf_kv *cmp_gguf_kv_at(const cmp_gguf *g, uint64_t i);
/* The pair with this key, or NULL. */
const cmp_gguf_kv *cmp_gguf_find(const cmp_gguf *g, const char *key);

uint64_t cmp_gguf_tensor_count(const cmp_gguf *g);
const cmp_gguf_tensor *cmp_gguf_tensor_at(const cmp_gguf *g, uint64_t i);
const cmp_gguf_tensor *cmp_gguf_find_tensor(const cmp_gguf *g, const char *name);

/* Typed lookups. Integers convert between widths and signedness when the value fits
 * (else CMP_GGUF_ERR_TYPE); floats accept FLOAT32 and FLOAT64. */
cmp_gguf_status cmp_gguf_get_u64(const cmp_gguf *g, const char *key, uint64_t *out);
cmp_gguf_status cmp_gguf_get_u32(const cmp_gguf *g, const char *key, uint32_t *out);
/* "<general.architecture>.<key>" as a u32 ("llama.block_count"), or def when absent. */
uint32_t cmp_gguf_arch_u32(const cmp_gguf *g, const char *key, uint32_t def);
cmp_gguf_status cmp_gguf_get_f32(const cmp_gguf *g, const char *key, float *out);
cmp_gguf_status cmp_gguf_get_bool(const cmp_gguf *g, const char *key, bool *out);
cmp_gguf_status cmp_gguf_get_str(const cmp_gguf *g, const char *key, cmp_gguf_str *out);
/* An array (with any element type when elem is negative). */
cmp_gguf_status cmp_gguf_get_array(const cmp_gguf *g, const char *key, int elem,
                                   cmp_gguf_value *out);

/* Element i of an array value: a number (as for the typed lookups), a string, or a
 * nested array. False when i is out of range or the element has another type. */
bool cmp_gguf_array_num(const cmp_gguf_value *arr, uint64_t i, double *out);
bool cmp_gguf_array_int(const cmp_gguf_value *arr, uint64_t i, int64_t *out);
bool cmp_gguf_array_str(const cmp_gguf_value *arr, uint64_t i, cmp_gguf_str *out);
bool cmp_gguf_array_array(const cmp_gguf_value *arr, uint64_t i, cmp_gguf_value *out);

/* True when s equals the NUL-terminated text. */
bool cmp_gguf_str_eq(cmp_gguf_str s, const char *text);

const char *cmp_gguf_type_name(cmp_gguf_type t); /* "uint32", "string", ... */

/* ggml's name of a tensor type, also for types vkllm does not read ("q3_K", "iq2_xxs");
 * NULL for a number ggml does not define. */
const char *cmp_ggml_type_name(uint32_t type);

#ifdef __cplusplus
}
#endif

#endif /* CMP_GGUF_H */
