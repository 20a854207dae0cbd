/* A small test harness: named test functions, CHECK macros that record failures and
 * go on, a GPU fixture with the validation layer on (any validation message fails the
 * test that caused it), and the closing line "N passed, N failed, N skipped".
 *
 * Exit status: 0 when nothing failed, 1 when something failed, 77 (ctest's skip code)
 * when no Vulkan device exists and VKLLM_TEST_REQUIRE_DEVICE is not 1. */
#ifndef HARNESS_H
#define HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "vkb.h"

typedef struct t_case {
    const char *name;
    void (*fn)(void);
    bool gpu; /* needs t_dev */
} t_case;

/* The GPU fixture, opened once per test binary (NULL for CPU-only binaries). */
extern vkb_context *t_ctx;
extern vkb_device *t_dev;
extern vkb_profile t_profile; /* from --profile on the test's command line */

void t_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void t_skip(const char *why);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            t_fail_at(__FILE__, __LINE__, "%s", #cond);                                            \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                       \
    do {                                                                                           \
        if (!(cond))                                                                               \
            t_fail_at(__FILE__, __LINE__, __VA_ARGS__);                                            \
    } while (0)

/* A call that must return `want`; on mismatch the device's message is shown. */
#define CHECK_STATUS(call, want)                                                                   \
    do {                                                                                           \
        vkb_status st_ = (call);                                                                   \
        if (st_ != (want))                                                                         \
            t_fail_at(__FILE__, __LINE__, "%s returned %s, want %s (%s)", #call,                   \
                      vkb_status_name(st_), vkb_status_name(want),                                 \
                      t_dev ? vkb_device_errmsg(t_dev) : "");                                      \
    } while (0)

#define CHECK_OK(call) CHECK_STATUS(call, VKB_OK)

/* Runs the cases; opens the GPU fixture first when any case needs it. */
int t_main(int argc, char **argv, const t_case *cases, int n_cases);

/* Deterministic random numbers (splitmix64). */
uint64_t t_rand_u64(uint64_t *state);
float t_rand_float(uint64_t *state, float lo, float hi);
void t_rand_bytes(uint64_t *state, void *dst, size_t n);

/* n floats uniform in [lo, hi) from `seed`; malloc'd (NULL when out of memory). */
float *t_random_floats(size_t n, uint64_t seed, float lo, float hi);

/* A buffer of `bytes` in the arena (split with `granule`, 0 = default), holding `data`
 * when it is not NULL; NULL after a recorded failure. */
vkb_buffer *t_upload(vkb_arena *arena, const void *data, uint64_t bytes, uint64_t granule);

/* The whole file at path, NUL-terminated, malloc'd; *len (when given) its size. NULL
 * when it cannot be read. */
char *t_read_file(const char *path, size_t *len);

/* Puts prefill on cooperative matrices: the device's matrix units where it has them, else
 * their emulation (vkb_op_coopmat_mode). False, with the case skipped and the mode back to
 * VKB_COOPMAT_AUTO, where neither runs (no f16 arithmetic under the profile, or subgroups under 8).
 * The case sets VKB_COOPMAT_AUTO again when done. */
bool t_coopmat_begin(void);

/* True in the run of the device as it is: native profile, its own subgroup size. Cases
 * cover every format, cache type and column count there. The capped profiles and the
 * runs at other subgroup sizes (VKLLM_TEST_SUBGROUP) change reductions, limits and
 * required subgroup sizes, which a few formats exercise as well as all of them; every
 * variant is another pipeline for lavapipe's LLVM to compile, seconds each. */
bool t_all_variants(void);

/* The shared test data folder (VKLLM_SHARED_DIR, set by ctest), or NULL. */
const char *t_shared_dir(void);

#endif /* HARNESS_H */
