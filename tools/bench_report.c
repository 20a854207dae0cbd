/* vkllm bench reports: markdown, CSV, JSON and JSONL rows; bench compare. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "bench.h"
#include "tool.h"

void bench_test_name(const bench_row *r, char *out, size_t size)
{
    if (!r->gate_ok) {
        snprintf(out, size, "gate");
        return;
    }
    int n = snprintf(out, size, "%s%u", r->n_prompt ? "pp" : "tg",
                     r->n_prompt ? r->n_prompt : r->n_gen);
    if (r->n_depth && n > 0 && (size_t)n < size)
        snprintf(out + n, size - (size_t)n, " @ d%u", r->n_depth);
}

bool bench_format_parse(const char *s, bench_format *out)
{
    static const char *names[] = {"md", "csv", "json", "jsonl"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (bench_format)i;
            return true;
        }
    return false;
}

/* ---- the fields of a row, in CSV and JSON order ---- */

typedef enum kind { K_STR, K_U32, K_U64, K_INT, K_DBL, K_BOOL, K_NS, K_TS, K_CONST } kind;

static const struct field {
    const char *name;
    kind k;
    size_t off;
    const char *value; /* K_CONST */
} fields[] = {
#define F(name, k, member)                                                                         \
    {                                                                                              \
        name, k, offsetof(bench_row, member), NULL                                                 \
    }
    F("build_commit", K_STR, build_commit),
    {"backends", K_CONST, 0, "Vulkan"},
    F("gpu_info", K_STR, dev.name),
    F("device_vendor", K_STR, dev.vendor),
    F("device_type", K_STR, dev.type),
    F("driver", K_STR, dev.driver),
    F("vulkan_api", K_STR, dev.api),
    F("device_profile", K_STR, dev.profile),
    F("subgroup_size", K_U32, dev.subgroup_size),
    F("shared_memory_kib", K_U32, dev.shared_memory_kib),
    F("fp16", K_BOOL, dev.fp16),
    F("int_dot_accelerated", K_BOOL, dev.int_dot),
    F("cooperative_matrix", K_BOOL, dev.coopmat),
    F("copy_gbps", K_DBL, dev.copy_gbps),
    F("gate_ok", K_BOOL, gate_ok),
    F("gate", K_STR, gate),
    F("model_filename", K_STR, model_filename),
    F("model_type", K_STR, model_type),
    F("model_size", K_U64, model_size),
    F("model_n_params", K_U64, model_n_params),
    F("n_batch", K_U32, n_batch),
    F("n_ubatch", K_U32, n_batch),
    F("type_k", K_STR, type_k),
    F("type_v", K_STR, type_v),
    F("kv_group", K_U32, kv_group),
    F("kv_window", K_U32, kv_window),
    {"n_gpu_layers", K_CONST, 0, "99"},
    F("flash_attn", K_INT, flash_attn),
    F("unfused_products", K_BOOL, unfused_products),
    F("record_each_step", K_BOOL, record_each_step),
    F("gpu_picks", K_BOOL, gpu_picks),
    F("sample", K_STR, sample),
    F("n_prompt", K_U32, n_prompt),
    F("n_gen", K_U32, n_gen),
    F("n_depth", K_U32, n_depth),
    F("test_time", K_STR, test_time),
    F("avg_ns", K_DBL, avg_ns),
    F("stddev_ns", K_DBL, stddev_ns),
    F("avg_ts", K_DBL, avg_ts),
    F("stddev_ts", K_DBL, stddev_ts),
    F("samples_ns", K_NS, samples_ns),
    F("samples_ts", K_TS, samples_ns),
    F("ttft_ms", K_DBL, ttft_ms),
    F("decode_gbps", K_DBL, decode_gbps),
    F("bandwidth_pct", K_DBL, bandwidth_pct),
    F("peak_memory_bytes", K_U64, peak_memory),
#undef F
};

#define N_FIELDS (sizeof fields / sizeof fields[0])

static const void *at(const bench_row *r, const struct field *f)
{
    return (const char *)r + f->off;
}

static uint32_t row_tokens(const bench_row *r)
{
    return r->n_prompt ? r->n_prompt : r->n_gen;
}

static cJSON *row_json(const bench_row *r)
{
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; o && i < N_FIELDS; i++) {
        const struct field *f = &fields[i];
        const void *p = at(r, f);
        switch (f->k) {
        case K_STR: cJSON_AddStringToObject(o, f->name, p); break;
        case K_CONST:
            if (strcmp(f->value, "99") == 0)
                cJSON_AddNumberToObject(o, f->name, 99);
            else
                cJSON_AddStringToObject(o, f->name, f->value);
            break;
        case K_U32: cJSON_AddNumberToObject(o, f->name, *(const uint32_t *)p); break;
        case K_U64: cJSON_AddNumberToObject(o, f->name, (double)*(const uint64_t *)p); break;
        case K_INT: cJSON_AddNumberToObject(o, f->name, *(const int *)p); break;
        case K_DBL: cJSON_AddNumberToObject(o, f->name, *(const double *)p); break;
        case K_BOOL: cJSON_AddBoolToObject(o, f->name, *(const bool *)p); break;
        case K_NS:
        case K_TS: {
            cJSON *a = cJSON_AddArrayToObject(o, f->name);
            for (uint32_t k = 0; a && k < r->reps; k++) {
                double v = r->samples_ns[k];
                cJSON_AddItemToArray(
                    a, cJSON_CreateNumber(f->k == K_NS ? v : row_tokens(r) * 1e9 / v));
            }
            break;
        }
        }
    }
    return o;
}

static void csv_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void row_csv(FILE *out, const bench_row *r)
{
    for (size_t i = 0; i < N_FIELDS; i++) {
        const struct field *f = &fields[i];
        const void *p = at(r, f);
        if (i)
            fputc(',', out);
        switch (f->k) {
        case K_STR: csv_string(out, p); break;
        case K_CONST: fputs(f->value, out); break;
        case K_U32: fprintf(out, "%u", *(const uint32_t *)p); break;
        case K_U64: fprintf(out, "%llu", (unsigned long long)*(const uint64_t *)p); break;
        case K_INT: fprintf(out, "%d", *(const int *)p); break;
        case K_DBL: fprintf(out, "%.6g", *(const double *)p); break;
        case K_BOOL: fputs(*(const bool *)p ? "true" : "false", out); break;
        case K_NS:
        case K_TS:
            fputc('"', out);
            for (uint32_t k = 0; k < r->reps; k++) {
                double v = r->samples_ns[k];
                fprintf(out, "%s%.6g", k ? " " : "", f->k == K_NS ? v : row_tokens(r) * 1e9 / v);
            }
            fputc('"', out);
            break;
        }
    }
    fputc('\n', out);
}

static void format_size(uint64_t bytes, char *out, size_t size)
{
    if (bytes >= (1ull << 30))
        snprintf(out, size, "%.2f GiB", bytes / 1073741824.0);
    else
        snprintf(out, size, "%.2f MiB", bytes / 1048576.0);
}

static void row_md(FILE *out, const bench_row *r)
{
    char size[32], params[32], test[64], mem[32];
    bench_test_name(r, test, sizeof test);
    if (!r->gate_ok) {
        fprintf(out, "| %s | - | - | - | Vulkan | - | - | - | gate | %s | - | - | - | - |\n",
                r->dev.name, r->gate);
        return;
    }
    format_size(r->model_size, size, sizeof size);
    format_size(r->peak_memory, mem, sizeof mem);
    if (r->model_n_params >= 1000000000)
        snprintf(params, sizeof params, "%.2f B", r->model_n_params / 1e9);
    else
        snprintf(params, sizeof params, "%.2f M", r->model_n_params / 1e6);
    char kivi[32] = "";
    if (r->kv_group)
        snprintf(kivi, sizeof kivi, " g%u w%u", r->kv_group, r->kv_window);
    char sampled[32] = "";
    if (r->sample[0] && r->n_gen)
        snprintf(sampled, sizeof sampled, ", sampled from %s logits",
                 strcmp(r->sample, "best") == 0 ? "the best" : "all");
    fprintf(out, "| %s | %s | %s | %s | Vulkan%s%s%s%s | %d | %u | %s/%s%s | %s | %.2f ± %.2f | ",
            r->dev.name, r->model_type, size, params,
            r->unfused_products ? ", products unfused" : "",
            r->record_each_step ? ", recorded each step" : "",
            r->gpu_picks && r->n_gen ? ", GPU picks" : "", sampled, r->flash_attn, r->n_batch,
            r->type_k, r->type_v, kivi, test, r->avg_ts, r->stddev_ts);
    if (r->n_gen)
        fprintf(out, "%.1f | %.1f%% | - | %s |\n", r->decode_gbps, r->bandwidth_pct, mem);
    else
        fprintf(out, "- | - | %.1f | %s |\n", r->ttft_ms, mem);
}

void bench_write_begin(FILE *f, bench_format fmt)
{
    if (fmt == BENCH_MD) {
        fputs("| device | model | size | params | backend | fa | n_batch | kv k/v | test | t/s | "
              "GB/s | % of copy bw | TTFT ms | peak mem |\n"
              "| --- | --- | ---: | ---: | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | "
              "---: | ---: |\n",
              f);
    } else if (fmt == BENCH_CSV) {
        for (size_t i = 0; i < N_FIELDS; i++)
            fprintf(f, "%s%s", i ? "," : "", fields[i].name);
        fputc('\n', f);
    } else if (fmt == BENCH_JSON) {
        fputs("[\n", f);
    }
}

void bench_write_row(FILE *f, bench_format fmt, const bench_row *r, size_t index)
{
    if (fmt == BENCH_MD) {
        row_md(f, r);
    } else if (fmt == BENCH_CSV) {
        row_csv(f, r);
    } else {
        cJSON *o = row_json(r);
        char *s = o ? (fmt == BENCH_JSON ? cJSON_Print(o) : cJSON_PrintUnformatted(o)) : NULL;
        if (!s) {
            tool_error("bench: out of memory writing a row");
        } else {
            fprintf(f, "%s%s\n", fmt == BENCH_JSON && index ? ",\n" : "", s);
        }
        free(s);
        cJSON_Delete(o);
    }
}

void bench_write_end(FILE *f, bench_format fmt)
{
    if (fmt == BENCH_JSON)
        fputs("]\n", f);
}
