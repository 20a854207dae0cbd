/* Writing GGUF v3 files: metadata set key by key, tensors added with their bytes, the
 * file written in one go with the default alignment (32). Used by tests and by the tools
 * that make models. Keys and tensor names are copied; tensor data is read at write time
 * and must live until then. */
#ifndef CMP_GGUF_WRITE_H
#define CMP_GGUF_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cmp_gguf.h"

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

/* A metadata pair as a reader found it (cmp_gguf.h), copied value for value. */
bool cmp_gguf_copy_kv(cmp_gguf_writer *w, const cmp_gguf_kv *kv);

/* A tensor of ggml type `type` with n_dims (1 to 4) sizes ne (ne[0] contiguous) and
 * `bytes` bytes at data. */
bool cmp_gguf_add_tensor(cmp_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                         const uint64_t *ne, const void *data, uint64_t bytes);

/* Produces a tensor's bytes at write time into dst (`bytes` long); false with the reason
 * in err stops the write. */
typedef bool (*cmp_gguf_fill_fn)(void *user, void *dst, uint64_t bytes, char *err, size_t err_size);

/* As cmp_gguf_add_tensor, with the bytes made by fill(user, ...) while the file is
 * written, so a large model never has to be in memory whole (one tensor at a time). */
bool cmp_gguf_add_tensor_fill(cmp_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                              const uint64_t *ne, uint64_t bytes, cmp_gguf_fill_fn fill,
                              void *user);

/* Writes the file: into PATH.partial, renamed to PATH once complete, so a failed write
 * leaves any earlier file at PATH as it was. False with the reason in err. */
bool cmp_gguf_write_file(const cmp_gguf_writer *w, const char *path, char *err, size_t err_size);

/* Writes the file to an open stream (`what` names it in messages), e.g. an anonymous
 * in-memory file. The stream is flushed, not closed. */
bool cmp_gguf_write_stream(const cmp_gguf_writer *w, FILE *f, const char *what, char *err,
                           size_t err_size);

#ifdef __cplusplus
}
#endif

#endif /* CMP_GGUF_WRITE_H */
