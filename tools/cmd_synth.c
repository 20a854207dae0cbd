/* vkllm synth: a GGUF model with random weights in the shapes of a real one. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eng_synth.h"
#include "tool.h"

static const char usage[] =
    "usage: vkllm synth --preset NAME --type TYPE -o FILE.gguf [flags]\n"
    "\n"
    "Writes a llama-architecture GGUF model (qwen3 for the qwen3 presets) with random\n"
    "weights in the shapes of a real model, quantized like llama.cpp's quantizer would (a\n"
    "Q4_0 file has a Q6_K output matrix, Q4_K_M gives Q6_K to some attn_v and ffn_down\n"
    "matrices). Benchmarks need no download, and the same file runs in llama.cpp for\n"
    "comparisons. The same preset, type and seed always give the same bytes.\n"
    "\n"
    "  --preset NAME     the shapes (vkllm synth --list shows them with their sizes)\n"
    "  --type TYPE       F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K_S, Q4_K_M (or\n"
    "                    Q4_K), Q5_K_S, Q5_K_M (or Q5_K), Q6_K, IQ4_NL\n"
    "  -o, --output FILE where to write (refused if it exists, unless --force)\n"
    "  --pure            every matrix gets TYPE itself: no mix\n"
    "  --seed N          seed of the weights (default 1)\n"
    "  --threads N       quantizing threads (default: every CPU)\n"
    "  --force           overwrite FILE\n"
    "  --list            list the presets\n"
    "\n"
    "Example: vkllm synth --preset llama2-7b --type Q4_K_M -o llama2-7b-q4_k_m.gguf\n";

static void list_presets(void)
{
    size_t n;
    const eng_synth_preset *ps = eng_synth_presets(&n);
    printf("%-12s %-44s %8s %6s %6s %5s %4s %6s %4s %7s %9s\n", "preset", "shapes of", "params",
           "vocab", "embd", "layers", "heads", "kv", "head", "ffn", "Q4_0 GiB");
    for (size_t i = 0; i < n; i++) {
        eng_synth_params p = {.preset = &ps[i], .recipe = cmp_recipe_find("Q4_0")};
        printf("%-12s %-44s %7.2fB %6u %6u %5u %4u %6u %4u %7u %9.2f\n", ps[i].name, ps[i].like,
               eng_synth_param_count(&ps[i]) / 1e9, ps[i].n_vocab, ps[i].n_embd, ps[i].n_layer,
               ps[i].n_head, ps[i].n_head_kv, eng_synth_head_dim(&ps[i]), ps[i].n_ff,
               eng_synth_weight_bytes(&p) / 1073741824.0);
    }
}

int cmd_synth(int argc, char **argv)
{
    eng_synth_params p = {.seed = 1};
    const char *out = NULL;
    bool force = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--list")) {
            list_presets();
            return 0;
        } else if (!strcmp(a, "--preset") && val) {
            if (!(p.preset = eng_synth_preset_find(val))) {
                tool_error("synth: no preset \"%s\" (vkllm synth --list shows them)", val);
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--type") && val) {
            if (!(p.recipe = cmp_recipe_find(val))) {
                tool_error("synth: unknown type \"%s\" (see vkllm synth --help)", val);
                return 2;
            }
            i++;
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && val) {
            out = argv[++i];
        } else if (!strcmp(a, "--seed") && val) {
            if (!tool_parse_long(a, argv[++i], 0, LONG_MAX, &n))
                return 2;
            p.seed = (uint64_t)n;
        } else if (!strcmp(a, "--threads") && val) {
            if (!tool_parse_long(a, argv[++i], 1, 256, &n))
                return 2;
            p.threads = (unsigned)n;
        } else if (!strcmp(a, "--pure")) {
            p.pure = true;
        } else if (!strcmp(a, "--force")) {
            force = true;
        } else {
            tool_error("synth: %s \"%s\" (see vkllm synth --help)",
                       a[0] == '-' && !val ? "missing value or unknown flag" : "unknown flag", a);
            return 2;
        }
    }
    if (!p.preset || !p.recipe || !out) {
        tool_error("synth: needs --preset, --type and -o (see vkllm synth --help)");
        return 2;
    }
    if (!tool_output_ok("synth", NULL, out, force))
        return 1;
    bool bar = isatty(2);
    p.progress = bar ? tool_progress : NULL;
    p.user = "writing";
    double t0 = tool_now_s();
    char err[512];
    if (eng_synth_write_file(&p, out, err, sizeof err) != ENG_OK) {
        if (bar)
            fputc('\n', stderr);
        tool_error("synth: %s", err);
        return 1;
    }
    uint64_t bytes = eng_synth_weight_bytes(&p), params = eng_synth_param_count(p.preset);
    uint32_t counts[ENG_SYNTH_TYPES];
    char types[256] = "";
    if (eng_synth_type_counts(&p, counts))
        for (uint32_t t = 0, at = 0; t < ENG_SYNTH_TYPES && at < sizeof types; t++)
            if (counts[t]) {
                const cmp_type_info *ti = cmp_type_get((cmp_type)t);
                int n = snprintf(types + at, sizeof types - at, "%s%s: %u", at ? ", " : "",
                                 ti ? ti->name : "?", counts[t]);
                at += n > 0 ? (uint32_t)n : 0;
            }
    char size[32];
    if (params >= 1000000000)
        snprintf(size, sizeof size, "%.2f B", params / 1e9);
    else
        snprintf(size, sizeof size, "%.2f M", params / 1e6);
    fprintf(stderr,
            "wrote %s\n"
            "  shapes of  %s (preset %s)\n"
            "  type       %s%s, seed %llu\n"
            "  size       %s parameters, %.2f MiB, %.2f bits per weight\n"
            "  tensors    %s\n"
            "  time       %.1f s\n",
            out, p.preset->like, p.preset->name, p.recipe->name, p.pure ? " (pure)" : "",
            (unsigned long long)p.seed, size, bytes / 1048576.0,
            8.0 * (double)bytes / (double)params, types, tool_now_s() - t0);
    return 0;
}
