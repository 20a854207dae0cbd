/* Pipelines: lazy creation, contracts that refuse bad dispatches, variants chosen by
 * profile, the on-disk pipeline cache, stream state errors. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "vkb_ops.h"

static void test_lazy_creation(void)
{
    uint32_t before = vkb_device_pipeline_count(t_dev);
    vkb_pipeline *a = NULL, *b = NULL, *c = NULL;
    CHECK_OK(vkb_pipeline_get(t_dev, "add_f32", NULL, &a));
    CHECK(vkb_device_pipeline_count(t_dev) == before + 1);
    CHECK_OK(vkb_pipeline_get(t_dev, "add_f32", NULL, &b));
    CHECK(a == b);
    CHECK(vkb_device_pipeline_count(t_dev) == before + 1);
    vkb_spec spec = {.count = 1, .values = {64}};
    CHECK_OK(vkb_pipeline_get(t_dev, "add_f32", &spec, &c));
    CHECK(c != a);
    CHECK(vkb_device_pipeline_count(t_dev) == before + 2);
    if (a && c) {
        const vkb_pipeline_contract *ca = vkb_pipeline_get_contract(a);
        const vkb_pipeline_contract *cc = vkb_pipeline_get_contract(c);
        CHECK(strcmp(ca->name, "add_f32") == 0);
        CHECK(ca->binding_count == 3);
        CHECK(!ca->binding_writes[0] && !ca->binding_writes[1] && ca->binding_writes[2]);
        CHECK(ca->push_size == 8);
        /* the default (256) shrinks to the device's limit; an explicit size is kept */
        const vkb_device_info *info = vkb_device_get_info(t_dev);
        uint32_t lim = info->max_workgroup_invocations < info->max_workgroup_size[0]
                           ? info->max_workgroup_invocations
                           : info->max_workgroup_size[0];
        uint32_t want = 256;
        while (want > lim)
            want /= 2;
        CHECK(ca->workgroup_size[0] == want);
        CHECK(cc->workgroup_size[0] == 64);
        CHECK(cc->elems_per_workgroup[0] == 64);
    }
    CHECK_STATUS(vkb_pipeline_get(t_dev, "no_such_kernel", NULL, &a), VKB_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vkb_device_errmsg(t_dev), "no_such_kernel") != NULL);
}

static void test_unsupported_spec(void)
{
    const vkb_device_info *info = vkb_device_get_info(t_dev);
    vkb_pipeline *p = NULL;
    vkb_spec big = {.count = 1, .values = {info->max_workgroup_invocations * 2}};
    CHECK_STATUS(vkb_pipeline_get(t_dev, "add_f32", &big, &p), VKB_ERR_UNSUPPORTED);
    vkb_spec odd_sg = {.count = 1, .values = {64}, .required_subgroup_size = 3};
    CHECK_STATUS(vkb_pipeline_get(t_dev, "add_f32", &odd_sg, &p), VKB_ERR_UNSUPPORTED);
    if (!(info->subgroup_ops & VKB_SUBGROUP_ARITHMETIC)) {
        CHECK_STATUS(vkb_pipeline_get(t_dev, "sum_subgroup", NULL, &p), VKB_ERR_UNSUPPORTED);
        CHECK(strstr(vkb_device_errmsg(t_dev), "subgroup") != NULL);
    }
    if (info->subgroup_size_control) {
        vkb_spec sg = {
            .count = 1, .values = {64}, .required_subgroup_size = info->subgroup_size_max};
        CHECK_OK(vkb_pipeline_get(t_dev, "add_f32", &sg, &p));
        if (p)
            CHECK(vkb_pipeline_get_contract(p)->required_subgroup_size == info->subgroup_size_max);
    }
}

static void test_profile_variant(void)
{
    /* the same physical device under each profile: the profile alone changes the choice */
    const char *want[VKB_PROFILE_COUNT] = {NULL, NULL, "sum_shared"};
    for (int prof = 0; prof < VKB_PROFILE_COUNT; prof++) {
        vkb_device *dev = NULL;
        vkb_device_config cfg = {.index = vkb_device_get_info(t_dev)->index,
                                 .profile = (vkb_profile)prof};
        CHECK_OK(vkb_device_open(t_ctx, &cfg, &dev));
        if (!dev)
            continue;
        const vkb_device_info *info = vkb_device_get_info(dev);
        const char *v = vkb_op_sum_variant(dev);
        fprintf(stderr, "  %s profile: %s\n", vkb_profile_name((vkb_profile)prof), v);
        if (want[prof])
            CHECK(strcmp(v, want[prof]) == 0);
        else
            CHECK(strcmp(v, (info->subgroup_ops & VKB_SUBGROUP_ARITHMETIC) ? "sum_subgroup"
                                                                           : "sum_shared") == 0);
        vkb_device_close(dev);
    }
}

struct fixture {
    vkb_arena *arena;
    vkb_stream *s;
    vkb_buffer *a, *b, *out, *split;
    vkb_pipeline *add;
};

static bool fixture_open(struct fixture *f)
{
    memset(f, 0, sizeof *f);
    const vkb_device_info *info = vkb_device_get_info(t_dev);
    CHECK_OK(vkb_arena_create(t_dev, VKB_PURPOSE_SCRATCH, 0, &f->arena));
    CHECK_OK(vkb_stream_create(t_dev, 0, &f->s));
    if (!f->arena || !f->s)
        return false;
    CHECK_OK(vkb_buffer_alloc(f->arena, 4096, 0, &f->a));
    CHECK_OK(vkb_buffer_alloc(f->arena, 4096, 0, &f->b));
    CHECK_OK(vkb_buffer_alloc(f->arena, 4096, 0, &f->out));
    /* a buffer split in two parts at the binding limit */
    uint64_t lim = info->max_storage_buffer_range < info->max_memory_allocation_size
                       ? info->max_storage_buffer_range
                       : info->max_memory_allocation_size;
    CHECK_OK(vkb_buffer_alloc(f->arena, lim + 4096, 0, &f->split));
    CHECK_OK(vkb_pipeline_get(t_dev, "add_f32", NULL, &f->add));
    return f->a && f->b && f->out && f->split && f->add;
}

static void fixture_close(struct fixture *f)
{
    vkb_stream_destroy(f->s);
    vkb_arena_destroy(f->arena);
}

static void test_contract(void)
{
    struct fixture f;
    if (!fixture_open(&f)) {
        fixture_close(&f);
        return;
    }
    const vkb_device_info *info = vkb_device_get_info(t_dev);
    uint32_t n = 1024, push[2] = {n, n}; /* add_f32: {n, bias length} */
    uint64_t elems[3] = {n, 1, 1};
    vkb_binding good[3] = {{f.a, 0, 4096}, {f.b, 0, 4096}, {f.out, 0, 4096}};

    /* not recording yet */
    CHECK_STATUS(vkb_stream_dispatch(f.s, f.add, good, 3, push, 8, elems, NULL),
                 VKB_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(vkb_stream_submit(f.s), VKB_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(vkb_stream_wait(f.s), VKB_ERR_INVALID_ARGUMENT);

    CHECK_OK(vkb_stream_begin(f.s));
    /* binding count */
    CHECK_STATUS(vkb_stream_dispatch(f.s, f.add, good, 2, push, 8, elems, NULL), VKB_ERR_CONTRACT);
    CHECK(strstr(vkb_device_errmsg(t_dev), "3 bindings") != NULL);
    /* push size */
    uint64_t big_push[2] = {1, 1};
    CHECK_STATUS(vkb_stream_dispatch(f.s, f.add, good, 3, big_push, 16, elems, NULL),
                 VKB_ERR_CONTRACT);
    CHECK_STATUS(vkb_stream_dispatch(f.s, f.add, good, 3, NULL, 8, elems, NULL), VKB_ERR_CONTRACT);
    /* range past the end */
    vkb_binding past[3] = {{f.a, 0, 4097}, {f.b, 0, 4096}, {f.out, 0, 4096}};
    CHECK_STATUS(vkb_stream_dispatch(f.s, f.add, past, 3, push, 8, elems, NULL), VKB_ERR_CONTRACT);
    vkb_binding after[3] = {{f.a, 4096, 0}, {f.b, 0, 4096}, {f.out, 0, 4096}};
    CHECK_STATUS(vkb_stream_dispatch(f.s, f.add, after, 3, push, 8, elems, NULL), VKB_ERR_CONTRACT);
    /* no buffer */
    vkb_binding none[3] = {{NULL, 0, 0}, {f.b, 0, 4096}, {f.out, 0, 4096}};
    CHECK_STATUS(vkb_stream_dispatch(f.s, f.add, none, 3, push, 8, elems, NULL), VKB_ERR_CONTRACT);
    /* misaligned offset */
    uint64_t bad_off = info->min_storage_buffer_offset_alignment > 4 ? 4 : 0;
    if (bad_off) {
        vkb_binding mis[3] = {{f.a, bad_off, 1024}, {f.b, 0, 4096}, {f.out, 0, 4096}};
        CHECK_STATUS(vkb_stream_dispatch(f.s, f.add, mis, 3, push, 8, elems, NULL),
                     VKB_ERR_CONTRACT);
        CHECK(strstr(vkb_device_errmsg(t_dev), "alignment") != NULL);
    }
    /* a range across the parts of a split buffer */
    uint64_t p0_off, p0_size;
    vkb_buffer_part(f.split, 0, &p0_off, &p0_size);
    vkb_binding cross[3] = {{f.split, p0_size - 2048, 4096}, {f.b, 0, 4096}, {f.out, 0, 4096}};
    CHECK_STATUS(vkb_stream_dispatch(f.s, f.add, cross, 3, push, 8, elems, NULL), VKB_ERR_CONTRACT);
    CHECK(strstr(vkb_device_errmsg(t_dev), "part") != NULL);
    /* each part on its own is fine */
    vkb_binding in_part[3] = {{f.split, p0_size, 4096}, {f.b, 0, 4096}, {f.out, 0, 4096}};
    CHECK_OK(vkb_stream_dispatch(f.s, f.add, in_part, 3, push, 8, elems, NULL));
    /* more workgroups than the device has, in a dimension that cannot be folded */
    uint64_t too_many[3] = {1, (uint64_t)info->max_workgroup_count[1] + 1, 1};
    CHECK_STATUS(vkb_stream_dispatch(f.s, f.add, good, 3, push, 8, too_many, NULL),
                 VKB_ERR_CONTRACT);
    CHECK(strstr(vkb_device_errmsg(t_dev), "workgroups") != NULL);
    /* a stream copy that overlaps itself, or runs past the end */
    CHECK_STATUS(vkb_stream_copy(f.s, f.a, 0, f.a, 16, 64), VKB_ERR_CONTRACT);
    CHECK_STATUS(vkb_stream_copy(f.s, f.a, 0, f.b, 1, 4096), VKB_ERR_CONTRACT);
    /* op-level checks */
    CHECK_STATUS(vkb_op_copy(f.s, f.b, f.a, 15), VKB_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(vkb_op_add(f.s, f.out, f.a, f.b, 1025), VKB_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(vkb_op_add(f.s, f.out, f.a, f.b, 0), VKB_ERR_INVALID_ARGUMENT);

    /* refused dispatches recorded nothing: the stream still runs clean */
    CHECK_OK(vkb_stream_dispatch(f.s, f.add, good, 3, push, 8, elems, "good"));
    CHECK_OK(vkb_stream_submit(f.s));
    CHECK_STATUS(vkb_stream_begin(f.s), VKB_ERR_INVALID_ARGUMENT); /* still running */
    CHECK_OK(vkb_stream_wait(f.s));
    fixture_close(&f);
}

/* The first line a shell command prints, without its newline ("" where it prints none). */
static void shell_line(const char *cmd, char *line, size_t size)
{
    line[0] = '\0';
    FILE *p = popen(cmd, "r");
    if (p) {
        if (!fgets(line, (int)size, p))
            line[0] = '\0';
        pclose(p);
    }
    line[strcspn(line, "\n")] = '\0';
}

static long file_size(const char *path)
{
    FILE *f = fopen(path, "rb");
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0)
        n = ftell(f);
    if (f)
        fclose(f);
    return n;
}

static void test_pipeline_cache(void)
{
    char dir[] = "/tmp/vkllm-test-cache-XXXXXX";
    if (!mkdtemp(dir)) {
        t_fail_at(__FILE__, __LINE__, "mkdtemp failed");
        return;
    }
    char sub[128];
    snprintf(sub, sizeof sub, "%s/nested/dir", dir);
    vkb_device_config cfg = {.index = vkb_device_get_info(t_dev)->index,
                             .profile = t_profile,
                             .pipeline_cache_dir = sub};
    vkb_device *dev = NULL;
    vkb_pipeline *p;
    CHECK_OK(vkb_device_open(t_ctx, &cfg, &dev));
    if (dev)
        CHECK_OK(vkb_pipeline_get(dev, "add_f32", NULL, &p));
    vkb_device_close(dev);

    char cmd[256], path[512];
    snprintf(cmd, sizeof cmd, "ls %s/pipelines-*.bin 2>/dev/null", sub);
    shell_line(cmd, path, sizeof path);
    CHECK_MSG(path[0] != '\0', "no pipeline cache file written under %s", sub);
    if (path[0]) {
        /* the blob starts with a header naming this device */
        FILE *f = fopen(path, "rb");
        uint32_t header[4] = {0};
        CHECK(f && fread(header, 4, 4, f) == 4);
        if (f)
            fclose(f);
        CHECK(header[0] >= 32 && header[1] == 1);
        CHECK(header[2] == vkb_device_get_info(t_dev)->vendor_id);

        /* a corrupted cache is ignored, and replaced on close */
        f = fopen(path, "wb");
        if (f) {
            fputs("not a pipeline cache, just garbage bytes to be ignored by vkllm", f);
            fclose(f);
        }
        dev = NULL;
        CHECK_OK(vkb_device_open(t_ctx, &cfg, &dev));
        if (dev)
            CHECK_OK(vkb_pipeline_get(dev, "add_f32", NULL, &p));
        vkb_device_close(dev);
        f = fopen(path, "rb");
        header[1] = 0;
        CHECK(f && fread(header, 4, 4, f) == 4 && header[1] == 1);
        if (f)
            fclose(f);

        /* two devices on one folder at once (two processes, or a test suite's): each
         * builds its own pipeline, and each close merges what the other saved; the file
         * stays whole and no temporary file of theirs is left behind */
        vkb_device *a = NULL, *b = NULL;
        CHECK_OK(vkb_device_open(t_ctx, &cfg, &a));
        CHECK_OK(vkb_device_open(t_ctx, &cfg, &b));
        if (a && b) {
            CHECK_OK(vkb_pipeline_get(a, "silu_mul_f32", NULL, &p));
            CHECK_OK(vkb_pipeline_get(b, "scale_f32", NULL, &p));
        }
        vkb_device_close(a);
        long size_a = file_size(path);
        vkb_device_close(b);
        long size_ab = file_size(path);
        CHECK_MSG(size_a >= 32 && size_ab >= size_a,
                  "the cache held %ld bytes after one device closed, %ld after both", size_a,
                  size_ab);
        char n_tmp[32];
        snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp", sub);
        shell_line(cmd, n_tmp, sizeof n_tmp);
        CHECK_MSG(strcmp(n_tmp, "0") == 0, "temporary files left in %s: \"%s\"", sub, n_tmp);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

/* Stored tuning: a choice set per weight type is what matvec plans, it is written to the
 * device's file in the cache folder and read back by the next device opened there; a
 * file that does not parse is ignored, and the status line says so. */
static void test_tuning_file(void)
{
    char dir[] = "/tmp/vkllm-test-tuning-XXXXXX";
    if (!mkdtemp(dir)) {
        t_fail_at(__FILE__, __LINE__, "mkdtemp failed");
        return;
    }
    char sub[128];
    snprintf(sub, sizeof sub, "%s/new", dir); /* made on save */
    vkb_device_config cfg = {.index = vkb_device_get_info(t_dev)->index,
                             .profile = t_profile,
                             .pipeline_cache_dir = sub};
    vkb_device *dev = NULL;
    CHECK_OK(vkb_device_open(t_ctx, &cfg, &dev));
    if (!dev)
        return;
    CHECK(strstr(vkb_tuning_status(dev), "built in") != NULL);
    const char *path = vkb_tuning_path(dev);
    CHECK(path && strncmp(path, sub, strlen(sub)) == 0);
    vkb_matvec_tuning q4 = {.wg = 32, .rows = 2, .int_dot = -1}, q6 = {.wg = 64, .rows = 1};
    vkb_op_matvec_tune_format(dev, CMP_TYPE_Q4_0, &q4);
    vkb_op_matvec_tune_format(dev, CMP_TYPE_Q6_K, &q6);
    vkb_matvec_tuning p = vkb_op_matvec_plan(dev, CMP_TYPE_Q4_0, 1);
    CHECK(p.rows == 2 && p.wg <= 32 && !vkb_op_matvec_int_dot(dev, CMP_TYPE_Q4_0));
    CHECK_OK(vkb_tuning_save(dev, NULL));
    char saved[1100];
    snprintf(saved, sizeof saved, "%s", path ? path : "");
    vkb_device_close(dev);

    char line[256], text[1024] = "";
    FILE *f = fopen(saved, "r");
    CHECK_MSG(f != NULL, "no tuning file at %s", saved);
    while (f && fgets(line, sizeof line, f))
        if (line[0] != '#')
            strncat(text, line, sizeof text - strlen(text) - 1);
    if (f)
        fclose(f);
    CHECK_MSG(strcmp(text, "q4_0 32x2f\nq6_K 64x1\n") == 0, "the file holds \"%s\"", text);

    dev = NULL;
    CHECK_OK(vkb_device_open(t_ctx, &cfg, &dev));
    if (dev) {
        CHECK(strstr(vkb_tuning_status(dev), "stored for 2 weight types") != NULL);
        CHECK(vkb_op_matvec_plan(dev, CMP_TYPE_Q6_K, 1).rows == 1);
        vkb_device_close(dev);
    }

    f = fopen(saved, "w");
    if (f) {
        fputs("q4_0 32x2\nq9_9 1x1\n", f);
        fclose(f);
    }
    dev = NULL;
    CHECK_OK(vkb_device_open(t_ctx, &cfg, &dev));
    if (dev) {
        const char *st = vkb_tuning_status(dev);
        CHECK_MSG(strstr(st, "ignored") && strstr(st, "line 2"), "status: %s", st);
        vkb_matvec_tuning none = vkb_op_matvec_plan(dev, CMP_TYPE_Q4_0, 1),
                          builtin = vkb_op_matvec_plan(t_dev, CMP_TYPE_Q4_0, 1);
        CHECK(none.wg == builtin.wg && none.rows == builtin.rows);
        vkb_device_close(dev);
    }
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

int main(int argc, char **argv)
{
    static const t_case cases[] = {
        {"lazy_creation", test_lazy_creation, true},
        {"unsupported_spec", test_unsupported_spec, true},
        {"profile_variant", test_profile_variant, true},
        {"contract", test_contract, true},
        {"pipeline_cache", test_pipeline_cache, true},
        {"tuning_file", test_tuning_file, true},
    };
    return t_main(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
}
