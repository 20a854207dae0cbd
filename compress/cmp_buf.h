/* A growing byte buffer for building a record or a text piece by piece: an append that
 * cannot get memory sets `failed` and every later one does nothing, so the builder checks
 * once at the end. Once anything was added the bytes are followed by a NUL, so a text
 * reads as a C string. Start from {0}; free(p) when done. */
#ifndef CMP_BUF_H
#define CMP_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct cmp_buf {
    char *p;
    size_t n, cap; /* bytes held (the NUL after them not counted), bytes allocated */
    bool failed;
} cmp_buf;

void cmp_buf_add(cmp_buf *b, const void *src, size_t n);
void cmp_buf_printf(cmp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif /* CMP_BUF_H */
