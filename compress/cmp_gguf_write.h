/* Writing GGUF v3 files: metadata set key by key, tensors added with their bytes, the
 * file written in one go with the default alignment (32). Used by tests and by the tools
 * that make models. Keys and tensor names are copied; tensor data is read at write time
 * and must live until then. */
#ifndef CMP_GGUF_WRITE_H
#define CMP_GGUF_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cmp_gguf_writer cmp_gguf_writer;

cmp_gguf_writer *cmp_gguf_writer_create(void); /* NULL when out of memory */
void cmp_gguf_writer_destroy(cmp_gguf_writer *w);

/* Each returns false when out of memory (the writer then refuses to write). */
bool cmp_gguf_set_u32(cmp_gguf_writer *w, const char *key, uint32_t v);
bool cmp_gguf_set_f32(cmp_gguf_writer *w, const char *key, float v);
bool cmp_gguf_set_bool(cmp_gguf_writer *w, const char *key, bool v);
bool cmp_gguf_set_str(cmp_gguf_writer *w, const char *key, const char *v);
bool cmp_gguf_set_str_array(cmp_gguf_writer *w, const char *key, const char *const *v, uint64_t n);
bool cmp_gguf_set_f32_array(cmp_gguf_writer *w, const char *key, const float *v, uint64_t n);
bool cmp_gguf_set_i32_array(cmp_gguf_writer *w, const char *key, const int32_t *v, uint64_t n);

/* A tensor of ggml type `type` with n_dims (1 to 4) sizes ne (ne[0] contiguous) and
 * `bytes` bytes at data. */
bool cmp_gguf_add_tensor(cmp_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                         const uint64_t *ne, const void *data, uint64_t bytes);

/* Writes the file; false with the reason in err. */
bool cmp_gguf_write_file(const cmp_gguf_writer *w, const char *path, char *err, size_t err_size);

#ifdef __cplusplus
}
#endif

#endif /* CMP_GGUF_WRITE_H */
