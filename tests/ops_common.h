/* Shared by the small-op tests (test_ops.c) and the attention tests (test_attention.c):
 * a scratch arena and a stream per case, and the comparison within a budget. */
#ifndef OPS_COMMON_H
#define OPS_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness.h"

/* One ULP of 1 in f32, the budgets' unit */
#define U 0x1p-23

struct fixture {
    vkb_arena *arena;
    vkb_stream *stream;
};

bool setup(struct fixture *f);
void teardown(struct fixture *f);
/* bytes in the fixture's arena, from data (NULL: uninitialised) */
vkb_buffer *upload(struct fixture *f, const void *data, uint64_t bytes);
/* a new recording, the arena emptied */
void begin(struct fixture *f);
/* submits and waits; out (may be NULL) downloaded into host */
void finish(struct fixture *f, const vkb_buffer *out, void *host, uint64_t bytes);
/* Counts values outside |got - want| <= rel·|want| + abs and reports the worst. */
void compare(const char *what, const float *got, const float *want, size_t n, double rel,
             double abs);

#endif /* OPS_COMMON_H */
