/* The small-op tests' fixture and comparison (ops_common.h). */
#include "ops_common.h"

#include <math.h>
#include <string.h>

bool setup(struct fixture *f)
{
    memset(f, 0, sizeof *f);
    CHECK_OK(vkb_arena_create(t_dev, VKB_PURPOSE_SCRATCH, 0, &f->arena));
    CHECK_OK(vkb_stream_create(t_dev, 0, &f->stream));
    return f->arena && f->stream;
}

void teardown(struct fixture *f)
{
    vkb_stream_destroy(f->stream);
    vkb_arena_destroy(f->arena);
}

vkb_buffer *upload(struct fixture *f, const void *data, uint64_t bytes)
{
    return t_upload(f->arena, data, bytes, 0);
}

void begin(struct fixture *f)
{
    vkb_arena_reset(f->arena);
    CHECK_OK(vkb_stream_begin(f->stream));
}

void finish(struct fixture *f, const vkb_buffer *out, void *host, uint64_t bytes)
{
    CHECK_OK(vkb_stream_submit(f->stream));
    CHECK_OK(vkb_stream_wait(f->stream));
    if (out)
        CHECK_OK(vkb_buffer_download(t_dev, out, 0, host, bytes));
}

void compare(const char *what, const float *got, const float *want, size_t n, double rel,
             double abs)
{
    size_t bad = 0, worst_i = 0;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double budget = rel * fabs(want[i]) + abs, err = fabs((double)got[i] - want[i]);
        if (!(err <= budget))
            bad++;
        double ratio = budget > 0 ? err / budget : (err > 0 ? INFINITY : 0);
        if (!(ratio <= worst)) {
            worst = ratio;
            worst_i = i;
        }
    }
    CHECK_MSG(bad == 0, "%s: %zu of %zu values outside the budget; worst [%zu] %.9g, want %.9g",
              what, bad, n, worst_i, (double)got[worst_i], (double)want[worst_i]);
}
