/* vkllm devices: every Vulkan device's capability record, as a table or JSON, with an
 * optional measured copy bandwidth. */
#include <stdlib.h>
#include <string.h>

#include "tool.h"

static const char usage[] =
    "usage: vkllm devices [--json] [--bandwidth] [--device SEL] [--profile P] [--validation]\n"
    "\n"
    "Lists every Vulkan device (one entry per physical device, even when two drivers expose\n"
    "it) with what vkllm's kernels depend on: subgroup sizes and operations, 16/8-bit\n"
    "arithmetic and storage, integer dot product, cooperative matrices, memory heaps with\n"
    "their budgets, and limits. Paste it into bug reports.\n"
    "\n"
    "  --json          print the same records as JSON\n"
    "  --bandwidth     also measure device-memory copy bandwidth (GB/s of bytes read plus\n"
    "                  written) with a streaming kernel; later benchmarks divide by this\n"
    "  --device SEL    only this device: an index, or part of its name\n"
    "  --profile P     show the record as capped by a profile: native (default), mobile\n"
    "                  (16 KiB shared memory, 128 MiB bindings, no fp16/int8/dot/coopmat,\n"
    "                  subgroup 16) or minimal (Vulkan 1.2 guarantees only)\n"
    "  --validation    enable the Khronos validation layer and print its messages\n";

enum kind { K_STR, K_UINT, K_BOOL, K_BYTES, K_FLOAT };

struct field {
    const char *key;   /* JSON key */
    const char *label; /* table row */
    enum kind kind;
    const char *s;
    unsigned long long u;
    double f;
};

#define MAX_FIELDS 64

struct record {
    vkb_device_info info;
    struct field f[MAX_FIELDS];
    int n;
    char strings[8][128];
    char version[64];
    bool measured;
    tool_bandwidth bw;
};

static void add(struct record *r, const char *key, const char *label, enum kind k, const char *s,
                unsigned long long u, double f)
{
    if (r->n < MAX_FIELDS)
        r->f[r->n++] = (struct field){key, label, k, s, u, f};
}

#define STR(key, label, v)   add(r, key, label, K_STR, v, 0, 0)
#define UINT(key, label, v)  add(r, key, label, K_UINT, NULL, (unsigned long long)(v), 0)
#define BOOL(key, label, v)  add(r, key, label, K_BOOL, NULL, (v) ? 1 : 0, 0)
#define BYTES(key, label, v) add(r, key, label, K_BYTES, NULL, (unsigned long long)(v), 0)
#define FLOAT(key, label, v) add(r, key, label, K_FLOAT, NULL, 0, (double)(v))

static const char *subgroup_ops_text(uint32_t ops, char *buf, size_t size)
{
    static const char *names[] = {"basic",     "vote",    "arithmetic",
                                  "ballot",    "shuffle", "shuffle_relative",
                                  "clustered", "quad"};
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < 8; i++)
        if (ops & (1u << i))
            len += (size_t)snprintf(buf + len, size - len, "%s%s", len ? "," : "", names[i]);
    if (!len)
        snprintf(buf, size, "none");
    return buf;
}

static void build(struct record *r)
{
    const vkb_device_info *d = &r->info;
    char *ver = r->version;
    char *api = r->strings[0], *uuid = r->strings[1], *ops = r->strings[2], *pci = r->strings[3];
    char *sg = r->strings[4], *wg = r->strings[5], *wgc = r->strings[6], *ids = r->strings[7];
    snprintf(api, 128, "%u.%u.%u", d->api_version >> 22, (d->api_version >> 12) & 0x3ffu,
             d->api_version & 0xfffu);
    size_t len = 0;
    for (int i = 0; i < 16; i++)
        len +=
            (size_t)snprintf(uuid + len, 128 - len, "%s%02x",
                             (i == 4 || i == 6 || i == 8 || i == 10) ? "-" : "", d->device_uuid[i]);
    subgroup_ops_text(d->subgroup_ops, ops, 128);
    if (d->has_pci)
        snprintf(pci, 128, "%04x:%02x:%02x.%x", d->pci_domain, d->pci_bus, d->pci_device,
                 d->pci_function);
    else
        snprintf(pci, 128, "-");
    snprintf(sg, 128, "%u (%u to %u%s)", d->subgroup_size, d->subgroup_size_min,
             d->subgroup_size_max, d->subgroup_size_control ? ", settable" : "");
    snprintf(wg, 128, "%u x %u x %u", d->max_workgroup_size[0], d->max_workgroup_size[1],
             d->max_workgroup_size[2]);
    snprintf(wgc, 128, "%u x %u x %u", d->max_workgroup_count[0], d->max_workgroup_count[1],
             d->max_workgroup_count[2]);

    /* driver versions are vendor-encoded; NVIDIA packs 10.8.8.6 bits */
    uint32_t v = d->driver_version;
    if (d->vendor_id == 0x10de)
        snprintf(ver, 64, "%u.%u.%u.%u", v >> 22, (v >> 14) & 0xffu, (v >> 6) & 0xffu, v & 0x3fu);
    else
        snprintf(ver, 64, "%u.%u.%u", v >> 22, (v >> 12) & 0x3ffu, v & 0xfffu);
    snprintf(ids, 128, "0x%04x / 0x%04x", d->vendor_id, d->device_id);

    STR("name", "name", d->name);
    STR("vendor", "vendor", d->vendor_name);
    STR("ids", "vendor / device id", ids);
    UINT("vendor_id", NULL, d->vendor_id);
    UINT("device_id", NULL, d->device_id);
    STR("type", "type", vkb_device_type_name(d->type));
    STR("driver", "driver", d->driver_name);
    STR("driver_info", "driver info", d->driver_info);
    STR("also_via", "also via", d->also_via[0] ? d->also_via : "-");
    STR("api_version", "Vulkan API", api);
    STR("driver_version", "driver version", ver);
    STR("device_uuid", "device UUID", uuid);
    STR("pci", "PCI address", pci);
    STR("profile", "profile", vkb_profile_name(d->profile));
    STR("subgroup", "subgroup size", sg);
    UINT("subgroup_size", NULL, d->subgroup_size);
    UINT("subgroup_size_min", NULL, d->subgroup_size_min);
    UINT("subgroup_size_max", NULL, d->subgroup_size_max);
    BOOL("subgroup_size_control", NULL, d->subgroup_size_control);
    BOOL("subgroup_full", "full subgroups", d->subgroup_full);
    STR("subgroup_ops", "subgroup ops", ops);
    BOOL("float16", "float16 math", d->shader_float16);
    BOOL("int8", "int8 math", d->shader_int8);
    BOOL("int16", "int16 math", d->shader_int16);
    BOOL("int64", "int64 math", d->shader_int64);
    BOOL("storage_16bit", "16-bit storage", d->storage_16bit);
    BOOL("storage_8bit", "8-bit storage", d->storage_8bit);
    BOOL("int_dot", "integer dot product", d->int_dot);
    BOOL("int_dot_4x8_signed_accel", "dot 4x8 signed accel.", d->int_dot_4x8_signed_accel);
    BOOL("int_dot_4x8_unsigned_accel", "dot 4x8 unsigned accel.", d->int_dot_4x8_unsigned_accel);
    BOOL("int_dot_4x8_mixed_accel", "dot 4x8 mixed accel.", d->int_dot_4x8_mixed_accel);
    BOOL("coopmat_khr", "coopmat (KHR)", d->coopmat_khr);
    BOOL("coopmat_nv", "coopmat (NV)", d->coopmat_nv);
    BOOL("coopmat_nv_f16", "coopmat NV f16 16x16x16", d->coopmat_nv_f16);
    BOOL("memory_model", "Vulkan memory model", d->memory_model);
    BOOL("memory_budget", "VK_EXT_memory_budget", d->memory_budget);
    BYTES("max_shared_memory", "shared memory", d->max_shared_memory);
    STR("max_workgroup_size", "max workgroup size", wg);
    UINT("max_workgroup_invocations", "max invocations", d->max_workgroup_invocations);
    STR("max_workgroup_count", "max workgroups", wgc);
    BYTES("max_storage_buffer_range", "max binding range", d->max_storage_buffer_range);
    BYTES("max_memory_allocation_size", "max allocation", d->max_memory_allocation_size);
    BYTES("max_buffer_size", "max buffer", d->max_buffer_size);
    BYTES("max_push_constants_size", "push constants", d->max_push_constants_size);
    UINT("max_storage_buffers", "storage buffers per stage", d->max_storage_buffers);
    UINT("min_storage_buffer_offset_alignment", "binding alignment",
         d->min_storage_buffer_offset_alignment);
    FLOAT("timestamp_period_ns", "timestamp period (ns)", d->timestamp_period);
    UINT("timestamp_valid_bits", "timestamp bits", d->timestamp_valid_bits);
}

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void print_json(struct record *recs, int n)
{
    printf("[\n");
    for (int i = 0; i < n; i++) {
        struct record *r = &recs[i];
        printf("  {\n    \"index\": %u", r->info.index);
        for (int k = 0; k < r->n; k++) {
            const struct field *f = &r->f[k];
            printf(",\n    \"%s\": ", f->key);
            switch (f->kind) {
            case K_STR: json_string(f->s); break;
            case K_UINT:
            case K_BYTES: printf("%llu", f->u); break;
            case K_BOOL: printf("%s", f->u ? "true" : "false"); break;
            case K_FLOAT: printf("%g", f->f); break;
            }
        }
        printf(",\n    \"heaps\": [");
        for (uint32_t h = 0; h < r->info.heap_count; h++) {
            const vkb_heap_info *hp = &r->info.heaps[h];
            printf("%s\n      {\"size\": %llu, \"device_local\": %s, \"budget\": %llu, "
                   "\"usage\": %llu}",
                   h ? "," : "", (unsigned long long)hp->size, hp->device_local ? "true" : "false",
                   (unsigned long long)hp->budget, (unsigned long long)hp->usage);
        }
        printf("\n    ],\n    \"memory_types\": [");
        for (uint32_t t = 0; t < r->info.memory_type_count; t++) {
            uint32_t fl = r->info.memory_types[t].flags;
            printf("%s\n      {\"heap\": %u, \"device_local\": %s, \"host_visible\": %s, "
                   "\"host_coherent\": %s, \"host_cached\": %s}",
                   t ? "," : "", r->info.memory_types[t].heap,
                   fl & VKB_MEMORY_DEVICE_LOCAL ? "true" : "false",
                   fl & VKB_MEMORY_HOST_VISIBLE ? "true" : "false",
                   fl & VKB_MEMORY_HOST_COHERENT ? "true" : "false",
                   fl & VKB_MEMORY_HOST_CACHED ? "true" : "false");
        }
        printf("\n    ]");
        if (r->measured)
            printf(
                ",\n    \"bandwidth\": {\"gbps\": %.2f, \"gbps_best\": %.2f, \"ms_median\": %.4f, "
                "\"bytes_per_copy\": %llu, \"reps\": %d, \"gpu_timed\": %s}",
                r->bw.gbps, r->bw.gbps_best, r->bw.ms_median, r->bw.bytes_per_copy, r->bw.reps,
                r->bw.gpu_timed ? "true" : "false");
        printf("\n  }%s\n", i + 1 < n ? "," : "");
    }
    printf("]\n");
}

static const char *human_bytes(unsigned long long b, char *buf, size_t size)
{
    if (b >= (1ull << 30))
        snprintf(buf, size, "%.2f GiB", (double)b / (double)(1ull << 30));
    else if (b >= (1ull << 20))
        snprintf(buf, size, "%.1f MiB", (double)b / (double)(1ull << 20));
    else if (b >= 1024 && b % 1024 == 0)
        snprintf(buf, size, "%llu KiB", b / 1024);
    else
        snprintf(buf, size, "%llu B", b);
    return buf;
}

static void field_text(const struct field *f, char *buf, size_t size)
{
    switch (f->kind) {
    case K_STR: snprintf(buf, size, "%s", f->s); break;
    case K_UINT: snprintf(buf, size, "%llu", f->u); break;
    case K_BOOL: snprintf(buf, size, "%s", f->u ? "yes" : "no"); break;
    case K_BYTES: human_bytes(f->u, buf, size); break;
    case K_FLOAT: snprintf(buf, size, "%g", f->f); break;
    }
}

/* Rows are fields, columns are devices. */
static void print_table(struct record *recs, int n)
{
    enum { LABEL_W = 24, COL_W = 34 };
    char cell[256], tmp[64], tmp2[64];
    printf("%-*s", LABEL_W, "device");
    for (int i = 0; i < n; i++)
        printf(" | %-*u", COL_W, recs[i].info.index);
    printf("\n");
    for (int k = 0; k < recs[0].n; k++) {
        if (!recs[0].f[k].label)
            continue;
        printf("%-*s", LABEL_W, recs[0].f[k].label);
        for (int i = 0; i < n; i++) {
            field_text(&recs[i].f[k], cell, sizeof cell);
            printf(" | %-*s", COL_W, cell);
        }
        printf("\n");
    }
    uint32_t max_heaps = 0;
    for (int i = 0; i < n; i++)
        if (recs[i].info.heap_count > max_heaps)
            max_heaps = recs[i].info.heap_count;
    for (uint32_t h = 0; h < max_heaps; h++) {
        snprintf(cell, sizeof cell, "heap %u", h);
        printf("%-*s", LABEL_W, cell);
        for (int i = 0; i < n; i++) {
            const vkb_device_info *d = &recs[i].info;
            if (h < d->heap_count)
                snprintf(cell, sizeof cell, "%s%s, budget %s",
                         human_bytes(d->heaps[h].size, tmp, sizeof tmp),
                         d->heaps[h].device_local ? " local" : "",
                         human_bytes(d->heaps[h].budget, tmp2, sizeof tmp2));
            else
                snprintf(cell, sizeof cell, "-");
            printf(" | %-*s", COL_W, cell);
        }
        printf("\n");
    }
    bool any = false;
    for (int i = 0; i < n; i++)
        any = any || recs[i].measured;
    if (any) {
        printf("%-*s", LABEL_W, "copy bandwidth");
        for (int i = 0; i < n; i++) {
            if (recs[i].measured)
                snprintf(cell, sizeof cell, "%.1f GB/s (best %.1f)", recs[i].bw.gbps,
                         recs[i].bw.gbps_best);
            else
                snprintf(cell, sizeof cell, "not measured");
            printf(" | %-*s", COL_W, cell);
        }
        printf("\n%-*s", LABEL_W, "  measured with");
        for (int i = 0; i < n; i++) {
            if (recs[i].measured)
                snprintf(cell, sizeof cell, "%s copy, median of %d%s",
                         human_bytes(recs[i].bw.bytes_per_copy, tmp, sizeof tmp), recs[i].bw.reps,
                         recs[i].bw.gpu_timed ? "" : " (host timed)");
            else
                cell[0] = '\0';
            printf(" | %-*s", COL_W, cell);
        }
        printf("\n");
    }
}

int cmd_devices(int argc, char **argv)
{
    tool_gpu_opts opts = {0};
    bool json = false, bandwidth = false;
    for (int i = 1; i < argc; i++) {
        int took = tool_parse_gpu_flag(argc, argv, &i, &opts);
        if (took < 0)
            return 2;
        if (took)
            continue;
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--bandwidth") == 0)
            bandwidth = true;
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        } else {
            tool_error("devices: unknown flag %s\n\n%s", argv[i], usage);
            return 2;
        }
    }

    vkb_context *ctx;
    if (tool_open_context(&opts, &ctx) != 0)
        return 1;
    uint32_t first = 0, count = vkb_context_device_count(ctx);
    if (opts.device) {
        if (vkb_context_select_device(ctx, opts.device, &first) != VKB_OK) {
            tool_error("%s", vkb_context_errmsg(ctx));
            vkb_context_destroy(ctx);
            return 1;
        }
        count = 1;
    }
    struct record *recs = calloc(count, sizeof *recs);
    if (!recs) {
        tool_error("out of host memory");
        vkb_context_destroy(ctx);
        return 1;
    }
    int rc = 0;
    for (uint32_t i = 0; i < count; i++) {
        struct record *r = &recs[i];
        r->info = *vkb_context_device_info(ctx, first + i);
        vkb_device_info_apply_profile(&r->info, opts.profile);
        build(r);
        if (!bandwidth)
            continue;
        vkb_device *dev;
        tool_gpu_opts one = opts;
        char index[16];
        snprintf(index, sizeof index, "%u", first + i);
        one.device = index;
        if (!json)
            fprintf(stderr, "measuring copy bandwidth on %s ...\n", r->info.name);
        if (tool_open_device(ctx, &one, &dev) == 0 &&
            tool_measure_bandwidth(dev, 0, 10, &r->bw) == 0)
            r->measured = true;
        else
            rc = 1;
        vkb_device_close(dev);
    }
    if (json)
        print_json(recs, (int)count);
    else
        print_table(recs, (int)count);
    if (opts.validation && tool_report_validation(ctx) > 0)
        rc = 1;
    free(recs);
    vkb_context_destroy(ctx);
    return rc;
}
