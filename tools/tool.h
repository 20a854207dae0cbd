/* Shared pieces of the vkllm command: sub-command table, device opening from flags,
 * error printing. Only tools/ reads flags and the environment. */
#ifndef TOOL_H
#define TOOL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cmp_buf.h"
#include "eng_model.h"
#include "eng_sampler.h"
#include "vkb.h"

#define TOOL_NAME    "vkllm"
#define TOOL_VERSION "0.1.0"

/* Flags every GPU sub-command accepts. */
typedef struct tool_gpu_opts {
    const char *device;  /* --device: index or name substring, NULL = best */
    vkb_profile profile; /* --profile */
    bool validation;     /* --validation */
} tool_gpu_opts;

/* Parses --device, --profile and --validation at argv[*i] (advancing *i past a value).
 * Returns 1 when it took the flag, 0 when the flag is not one of them, -1 on a bad value
 * (after printing why). */
int tool_parse_gpu_flag(int argc, char **argv, int *i, tool_gpu_opts *opts);

/* The per-user pipeline cache folder: $VKLLM_CACHE_DIR, else $XDG_CACHE_HOME/vkllm, else
 * ~/.cache/vkllm; NULL when none can be named. Static storage. */
const char *tool_cache_dir(void);

/* The KV cache flags: types of keys and values, and the KIVI group and window (as in
 * eng_session_params: 0 = the defaults). */
typedef struct tool_kv_opts {
    eng_kv_type k, v;
    uint32_t group, window;
} tool_kv_opts;

/* Parses --kv-type T (keys and values), --kv-type-k T, --kv-type-v T, --kv-group N and
 * --kv-window N at argv[*i]. Returns 1 when it took the flag, 0 when the flag is not one
 * of them, -1 on a bad value (after printing why). */
int tool_parse_kv_flag(int argc, char **argv, int *i, tool_kv_opts *kv);

/* Parses the sampling flags at argv[*i] into *sp: --temp X, --greedy, --top-k N, --top-p X,
 * --min-p X, --repeat-penalty X, --repeat-last-n N and --seed N (setting *seed_given).
 * Returns 1 when it took the flag, 0 when the flag is not one of them, -1 on a bad value
 * (after printing why). */
int tool_parse_sampling_flag(int argc, char **argv, int *i, eng_sampler_params *sp,
                             bool *seed_given);

/* The flags of the commands that generate (run, serve): tool_parse_gpu_flag, then
 * tool_parse_kv_flag, then tool_parse_sampling_flag, with their returns. */
int tool_parse_generation_flag(int argc, char **argv, int *i, tool_gpu_opts *gpu, tool_kv_opts *kv,
                               eng_sampler_params *sp, bool *seed_given);

/* Opens (maps and checks) the model at path; NULL after printing why, the path named. */
eng_model *tool_open_model(const char *path);

/* Help text for those flags. */
#define TOOL_KV_HELP                                                                               \
    "  --kv-type T           KV cache type of keys and values: f16 (default), q8_0 (8.5\n"         \
    "                        bits per value, about half the memory), q4_0 (4.5 bits), or\n"        \
    "                        KIVI's asymmetric kivi4 / kivi2 (keys per channel, values per\n"      \
    "                        token; 4.5 / 2.5 bits at the default group, newest tokens f16)\n"     \
    "  --kv-type-k T, --kv-type-v T   the same for keys or values alone\n"                         \
    "  --kv-group N          kivi4/kivi2: values per scale and minimum, 32 to 256 in steps\n"      \
    "                        of 32 (default 64)\n"                                                 \
    "  --kv-window N         kivi4/kivi2: newest tokens kept in f16, a multiple of the group\n"    \
    "                        (default 128; 0: only the group being filled)\n"

/* Creates the context (prints the one-line reason and returns non-zero on failure). */
int tool_open_context(const tool_gpu_opts *opts, vkb_context **ctx);

/* Selects and opens the device the flags name (prints why on failure). */
int tool_open_device(vkb_context *ctx, const tool_gpu_opts *opts, vkb_device **dev);

/* Prints validation messages collected on ctx, if any, to stderr; returns their count. */
unsigned tool_report_validation(vkb_context *ctx);

/* Records one repetition of what a benchmark times into the stream. */
typedef vkb_status (*tool_record_fn)(vkb_stream *s, void *arg);

/* Times `reps` repetitions of rec after `warmup` untimed ones. With gpu_timed, all go in
 * one submission and each repetition's timed commands are summed (the stream must hold
 * that many timings); otherwise each repetition is its own submission, timed on the
 * host. Writes the median and (when best is not NULL) the fastest, in milliseconds.
 * Returns 0, or non-zero when recording or submitting failed (the device's message says
 * why). */
int tool_time_reps(vkb_stream *s, bool gpu_timed, int warmup, int reps, tool_record_fn rec,
                   void *arg, double *median, double *best);

/* Parses a number flag's value into [lo, hi]; prints why and returns false when bad. */
bool tool_parse_long(const char *flag, const char *s, long lo, long hi, long *out);
bool tool_parse_float(const char *flag, const char *s, float lo, float hi, float *out);

#define TOOL_ITEM_MAX 512

/* The next item of a comma-separated list into item (NUL-terminated), *list moved past
 * it and its comma. 0 at the end of the list, -1 for an item of TOOL_ITEM_MAX bytes or
 * more (item then holds its start), 1 otherwise. */
int tool_next_item(const char **list, char item[TOOL_ITEM_MAX]);

/* A whole file, NUL-terminated (*len excludes the NUL); NULL after printing why. */
char *tool_read_text(const char *path, size_t *len);

/* A text's token ids (with add_special, BOS and EOS as the vocabulary adds them; special
 * tokens' text parsed with parse_special) in a new array, *n of them and room for `extra`
 * more after them; the buffer grows when a tokenizer gives more ids than bytes. NULL when
 * out of memory. */
int32_t *tool_tokenize(const eng_vocab *v, const char *text, size_t len, bool add_special,
                       bool parse_special, size_t extra, int64_t *n);

/* Whether a command may write `out`: never over its input `in` (the same path or file;
 * NULL when there is none), and over an existing file only with force. Prints
 * "CMD: OUT is the input; ..." or "CMD: OUT exists; pass --force ..." when not. */
bool tool_output_ok(const char *cmd, const char *in, const char *out, bool force);

/* Seconds on the monotonic clock. */
double tool_now_s(void);

/* A progress bar on stderr: "LABEL [#####     ]  40%  1.0 / 2.5 MiB" (label: a const
 * char *), finished with a newline when done reaches total. Fits eng_progress_fn. */
void tool_progress(uint64_t done, uint64_t total, void *label);

/* Prints "vkllm: " + message to stderr. */
void tool_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Measures device-memory copy bandwidth (bytes read + written per second) with the
 * streaming copy kernel: validates the copy, warms up, reports the median of `reps`
 * GPU-timed copies of `bytes` (0 = choose: up to 256 MiB). Returns 0 on success. */
typedef struct tool_bandwidth {
    double gbps; /* median, 1e9 bytes/s */
    double gbps_best;
    double ms_median;
    unsigned long long bytes_per_copy; /* buffer size; read + written = 2x */
    int reps;
    bool gpu_timed; /* GPU timestamps, else host wall time */
} tool_bandwidth;

int tool_measure_bandwidth(vkb_device *dev, unsigned long long bytes, int reps,
                           tool_bandwidth *out);

int cmd_run(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_devices(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_imatrix(int argc, char **argv);
int cmd_prune(int argc, char **argv);
int cmd_factorize(int argc, char **argv);

#endif /* TOOL_H */
