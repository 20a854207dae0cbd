/* Arenas, splitting, accounting, out-of-memory, and host ↔ device round trips. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* Uploads random bytes of `size`, downloads them, compares; also a sub-range. */
static void round_trip(vkb_arena *arena, uint64_t size, uint64_t granule, uint64_t seed)
{
    vkb_buffer *buf = NULL;
    CHECK_OK(vkb_buffer_alloc(arena, size, granule, &buf));
    if (!buf)
        return;
    CHECK(vkb_buffer_size(buf) == size);
    uint8_t *src = malloc(size), *dst = malloc(size);
    if (!src || !dst) {
        t_fail_at(__FILE__, __LINE__, "out of host memory for %llu bytes",
                  (unsigned long long)size);
        free(src);
        free(dst);
        return;
    }
    t_rand_bytes(&seed, src, size);
    memset(dst, 0xa5, size);
    CHECK_OK(vkb_buffer_upload(t_dev, buf, 0, src, size));
    CHECK_OK(vkb_buffer_download(t_dev, buf, 0, dst, size));
    CHECK_MSG(memcmp(src, dst, size) == 0, "round trip of %llu bytes differs",
              (unsigned long long)size);
    if (size > 2) {
        /* an odd-sized window in the middle, rewritten and read back */
        uint64_t off = size / 3, n = size - off - 1;
        for (uint64_t i = 0; i < n; i++)
            src[off + i] ^= 0x5a;
        CHECK_OK(vkb_buffer_upload(t_dev, buf, off, src + off, n));
        memset(dst, 0, size);
        CHECK_OK(vkb_buffer_download(t_dev, buf, 0, dst, size));
        CHECK_MSG(memcmp(src, dst, size) == 0, "windowed upload of %llu at %llu differs",
                  (unsigned long long)n, (unsigned long long)off);
    }
    free(src);
    free(dst);
}

static void test_round_trips(void)
{
    /* odd sizes from 1 byte to 256 MiB; the largest exceed lavapipe's 128 MiB binding range
     * and the mobile profile's 256 MiB allocation, so they are split into parts */
    static const uint64_t sizes[] = {
        1, 3, 255, 4097, 65537, (1u << 20) + 13, (33u << 20) + 7, 256u << 20};
    vkb_arena *arena = NULL;
    CHECK_OK(vkb_arena_create(t_dev, VKB_PURPOSE_WEIGHTS, 0, &arena));
    for (size_t i = 0; arena && i < sizeof sizes / sizeof sizes[0]; i++)
        round_trip(arena, sizes[i], 0, 1000 + i);
    vkb_arena_destroy(arena);
}

static void test_split(void)
{
    const vkb_device_info *info = vkb_device_get_info(t_dev);
    vkb_arena *arena = NULL;
    CHECK_OK(vkb_arena_create(t_dev, VKB_PURPOSE_WEIGHTS, 0, &arena));
    if (!arena)
        return;
    uint64_t part_limit = info->max_storage_buffer_range < info->max_memory_allocation_size
                              ? info->max_storage_buffer_range
                              : info->max_memory_allocation_size;
    /* a granule that does not divide the limit: parts must still be multiples of it */
    uint64_t granule = 4096 * 3 + 64, size = part_limit + part_limit / 2 + 5;
    vkb_buffer *buf = NULL;
    CHECK_OK(vkb_buffer_alloc(arena, size, granule, &buf));
    if (buf) {
        uint32_t n = vkb_buffer_part_count(buf);
        CHECK(n >= 2);
        uint64_t expect_off = 0;
        for (uint32_t i = 0; i < n; i++) {
            uint64_t off, sz;
            vkb_buffer_part(buf, i, &off, &sz);
            CHECK(off == expect_off);
            CHECK(sz <= info->max_storage_buffer_range && sz <= info->max_memory_allocation_size);
            if (i + 1 < n)
                CHECK(sz % granule == 0);
            expect_off += sz;
        }
        CHECK(expect_off == size);
        /* a transfer across the part boundary */
        uint64_t first_off, first_size;
        vkb_buffer_part(buf, 0, &first_off, &first_size);
        uint64_t at = first_size - 1000, n_bytes = 3001, seed = 7;
        uint8_t src[3001], dst[3001];
        t_rand_bytes(&seed, src, sizeof src);
        CHECK_OK(vkb_buffer_upload(t_dev, buf, at, src, n_bytes));
        CHECK_OK(vkb_buffer_download(t_dev, buf, at, dst, n_bytes));
        CHECK(memcmp(src, dst, sizeof src) == 0);
    }
    /* a granule larger than one binding can hold cannot be honoured */
    CHECK_STATUS(vkb_buffer_alloc(arena, size, part_limit + 256, &buf), VKB_ERR_UNSUPPORTED);
    vkb_arena_destroy(arena);
}

static void test_accounting(void)
{
    vkb_memory_stats before, during, after;
    CHECK_OK(vkb_device_memory_stats(t_dev, &before));
    vkb_arena *w = NULL, *s = NULL;
    CHECK_OK(vkb_arena_create(t_dev, VKB_PURPOSE_WEIGHTS, 8u << 20, &w));
    CHECK_OK(vkb_arena_create(t_dev, VKB_PURPOSE_SCRATCH, 4u << 20, &s));
    if (!w || !s)
        return;
    vkb_buffer *b;
    CHECK_OK(vkb_buffer_alloc(w, 5u << 20, 0, &b));
    CHECK_OK(vkb_buffer_alloc(w, 5u << 20, 0, &b)); /* does not fit the first 8 MiB block */
    CHECK_OK(vkb_buffer_alloc(s, 1000, 0, &b));
    CHECK(vkb_arena_used(w) == (10u << 20));
    CHECK(vkb_arena_capacity(w) == (16u << 20));
    CHECK_OK(vkb_device_memory_stats(t_dev, &during));
    CHECK(during.by_purpose[VKB_PURPOSE_WEIGHTS] - before.by_purpose[VKB_PURPOSE_WEIGHTS] >=
          (16u << 20));
    CHECK(during.by_purpose[VKB_PURPOSE_SCRATCH] - before.by_purpose[VKB_PURPOSE_SCRATCH] >=
          (4u << 20));
    uint64_t held = 0;
    for (uint32_t h = 0; h < during.heap_count; h++)
        held += during.heaps[h].allocated;
    uint64_t purposes = 0;
    for (int p = 0; p < VKB_PURPOSE_COUNT; p++)
        purposes += during.by_purpose[p];
    CHECK(held == purposes);
    CHECK(during.peak_allocated >= held);

    /* reset forgets buffers, keeps blocks */
    vkb_arena_reset(s);
    CHECK(vkb_arena_used(s) == 0);
    CHECK(vkb_arena_capacity(s) == (4u << 20));
    CHECK_OK(vkb_buffer_alloc(s, 4u << 20, 0, &b));
    CHECK(vkb_arena_capacity(s) == (4u << 20));

    vkb_arena_destroy(w);
    vkb_arena_destroy(s);
    vkb_arena_destroy(NULL);
    CHECK_OK(vkb_device_memory_stats(t_dev, &after));
    for (int p = 0; p < VKB_PURPOSE_COUNT; p++)
        CHECK(after.by_purpose[p] == before.by_purpose[p]);
    CHECK(after.peak_allocated >= during.peak_allocated);
}

/* vkb_arena_expect sizes the last block to what is left; a reset arena fills its blocks
 * again from the first instead of growing. */
static void test_expect(void)
{
    const uint64_t mib = 1u << 20;
    vkb_arena *a = NULL;
    CHECK_OK(vkb_arena_create(t_dev, VKB_PURPOSE_WEIGHTS, 4 * mib, &a));
    if (!a)
        return;
    vkb_arena_expect(a, 9 * mib + 4 * 256);
    vkb_buffer *b;
    CHECK_OK(vkb_buffer_alloc(a, 4 * mib, 0, &b));
    CHECK_OK(vkb_buffer_alloc(a, 4 * mib, 0, &b));
    CHECK_OK(vkb_buffer_alloc(a, mib, 0, &b));
    CHECK_MSG(vkb_arena_capacity(a) == 9 * mib + 1024,
              "capacity %llu for 9 MiB expected: the last block should hold what was left",
              (unsigned long long)vkb_arena_capacity(a));
    CHECK_OK(vkb_buffer_alloc(a, 2 * mib, 0, &b)); /* past the expected total: just its size */
    CHECK(vkb_arena_capacity(a) == 11 * mib + 1024);
    round_trip(a, 100, 0, 7);

    vkb_arena_reset(a);
    const uint64_t held = vkb_arena_capacity(a);
    /* the same again, then with 3 MiB and 1 MiB sharing the second block (the 2 MiB buffer
     * then passes over the 1 MiB block to the 2 MiB one) */
    for (uint64_t second = 4; second >= 3; second--) {
        CHECK_OK(vkb_buffer_alloc(a, 4 * mib, 0, &b));
        CHECK_OK(vkb_buffer_alloc(a, second * mib, 0, &b));
        CHECK_OK(vkb_buffer_alloc(a, mib, 0, &b));
        CHECK_OK(vkb_buffer_alloc(a, 2 * mib, 0, &b));
        round_trip(a, 100, 0, second);
        CHECK_MSG(vkb_arena_capacity(a) == held, "reset arena grew from %llu to %llu bytes",
                  (unsigned long long)held, (unsigned long long)vkb_arena_capacity(a));
        vkb_arena_reset(a);
    }
    vkb_arena_destroy(a);
}

static void test_out_of_memory(void)
{
    const vkb_device_info *info = vkb_device_get_info(t_dev);
    vkb_arena *arena = NULL;
    CHECK_OK(vkb_arena_create(t_dev, VKB_PURPOSE_WEIGHTS, 0, &arena));
    if (!arena)
        return;
    uint64_t largest = 0;
    for (uint32_t h = 0; h < info->heap_count; h++)
        if (info->heaps[h].size > largest)
            largest = info->heaps[h].size;
    vkb_buffer *b = NULL;
    CHECK_STATUS(vkb_buffer_alloc(arena, largest + (1u << 20), 0, &b),
                 VKB_ERR_OUT_OF_DEVICE_MEMORY);
    CHECK(b == NULL);
    const char *msg = vkb_device_errmsg(t_dev);
    CHECK_MSG(strstr(msg, "heap") && strstr(msg, "budget") && strstr(msg, "weights"),
              "message should name the request, the heap and the budget: %s", msg);
    fprintf(stderr, "  message: %s\n", msg);
    CHECK(vkb_arena_capacity(arena) == 0); /* nothing was allocated on the way */
    /* the arena is still usable */
    CHECK_OK(vkb_buffer_alloc(arena, 4096, 0, &b));
    CHECK_STATUS(vkb_buffer_alloc(arena, 0, 0, &b), VKB_ERR_INVALID_ARGUMENT);
    vkb_arena_destroy(arena);
}

static void test_transfer_errors(void)
{
    vkb_arena *arena = NULL;
    CHECK_OK(vkb_arena_create(t_dev, VKB_PURPOSE_SCRATCH, 0, &arena));
    if (!arena)
        return;
    vkb_buffer *b = NULL;
    CHECK_OK(vkb_buffer_alloc(arena, 100, 0, &b));
    uint8_t data[128] = {0};
    CHECK_STATUS(vkb_buffer_upload(t_dev, b, 50, data, 51), VKB_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(vkb_buffer_download(t_dev, b, 101, data, 0), VKB_ERR_INVALID_ARGUMENT);
    CHECK_OK(vkb_buffer_upload(t_dev, b, 100, data, 0));
    vkb_arena_destroy(arena);
}

int main(int argc, char **argv)
{
    static const t_case cases[] = {
        {"round_trips", test_round_trips, true},
        {"split", test_split, true},
        {"accounting", test_accounting, true},
        {"expect", test_expect, true},
        {"out_of_memory", test_out_of_memory, true},
        {"transfer_errors", test_transfer_errors, true},
    };
    return t_main(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
}
