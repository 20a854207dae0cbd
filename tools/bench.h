/* vkllm bench: the rows a model benchmark produces, and their reports (markdown, CSV,
 * JSON, JSONL; `bench compare` reads JSON/JSONL back). Column names follow llama-bench
 * where the meaning is the same. */
#ifndef BENCH_H
#define BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* The device a row was measured on. */
typedef struct bench_device {
    char name[256];
    char vendor[32];
    char type[16];    /* discrete, integrated, cpu, ... */
    char driver[256]; /* driver name and info */
    char api[16];     /* Vulkan version, "1.3.277" */
    char profile[16];
    uint32_t subgroup_size, shared_memory_kib;
    bool fp16, int_dot, coopmat;
    double copy_gbps; /* measured in the same run, read + written bytes per second */
} bench_device;

typedef struct bench_row {
    bench_device dev;
    char build_commit[48];
    char model_filename[512];
    char model_type[96]; /* "llama2-7b Q4_0 (synthetic)", "llama 0.7M Q8_0" */
    uint64_t model_size, model_n_params;
    uint32_t n_batch;
    char type_k[8], type_v[8];
    uint32_t kv_group, kv_window; /* of kivi caches (0 otherwise) */
    int flash_attn;
    bool unfused_products; /* --unfused-products: norms and silu·mul apart */
    bool record_each_step; /* --record-each-step: no reused decode recordings */
    bool gpu_picks;        /* --gpu-picks: tg picks its tokens on the GPU, steps queued */
    /* --sample: tg samples each token (llama.cpp's default sampler, seed 1) from "best"
     * (the GPU's best logits, as vkllm run) or "all" (every logit read); "" = given tokens */
    char sample[8];
    uint32_t n_prompt, n_gen, n_depth;
    char test_time[32]; /* ISO 8601, UTC */
    /* the correctness gate of the device: "pass (worst 3.1e-05 of the budget ...)" or
     * "FAIL ..."; a failing device has one row, no timings */
    bool gate_ok;
    char gate[160];
    uint32_t reps;
    double samples_ns[64];
    double avg_ns, stddev_ns, avg_ts, stddev_ts;
    double ttft_ms;       /* prompt rows: until the last prompt token's logits are on the host */
    double decode_gbps;   /* generation rows: weight + KV bytes read per token x tokens/s */
    double bandwidth_pct; /* decode_gbps / dev.copy_gbps */
    uint64_t peak_memory; /* bytes of device memory vkllm held at most during the test */
} bench_row;

#define BENCH_MAX_REPS 64

/* "pp512", "tg128", "pp512 @ d4096"; gate failures "gate". */
void bench_test_name(const bench_row *r, char *out, size_t size);

typedef enum bench_format { BENCH_MD, BENCH_CSV, BENCH_JSON, BENCH_JSONL } bench_format;
bool bench_format_parse(const char *s, bench_format *out);

/* Writes rows as they come: begin (a header, or the JSON array's bracket), each row
 * (index counts from 0), end. */
void bench_write_begin(FILE *f, bench_format fmt);
void bench_write_row(FILE *f, bench_format fmt, const bench_row *r, size_t index);
void bench_write_end(FILE *f, bench_format fmt);

/* vkllm bench kernels: the weight kernels alone. */
int bench_kernels(int argc, char **argv);
/* vkllm bench attention (bench_attention.c). */
int bench_attention(int argc, char **argv);

/* vkllm bench compare A.json B.json ...: one side-by-side table, and a PNG bar chart. */
int bench_compare(int argc, char **argv);

#endif /* BENCH_H */
