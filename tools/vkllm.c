/* vkllm: run compressed LLMs on any GPU through Vulkan. Sub-command dispatch. */
#include <string.h>

#include "tool.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"run", cmd_run, "generate text with a GGUF model: vkllm run -m MODEL.gguf -p \"Once upon\""},
    {"serve", cmd_serve, "an OpenAI-compatible HTTP server: vkllm serve -m MODEL.gguf --port 8080"},
    {"devices", cmd_devices, "list Vulkan devices and what they offer; --bandwidth measures GB/s"},
    {"bench", cmd_bench,
     "model speed llama-bench style; bench kernels; bench compare A.json B.json"},
    {"imatrix", cmd_imatrix, "importance statistics for quantize --imatrix, from calibration text"},
    {"perplexity", cmd_perplexity, "perplexity of a model on a text, as llama.cpp measures it"},
    {"prune", cmd_prune, "zero the least important weights, or remove FFN channels or heads"},
    {"factorize", cmd_factorize, "replace matrices by low-rank factors (truncated SVD)"},
    {"quantize", cmd_quantize, "convert a GGUF model to Q4_0, Q4_K_M, ... (llama.cpp's mixes)"},
    {"synth", cmd_synth, "write a GGUF model with random weights in a real model's shapes"},
};

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: vkllm COMMAND [flags]   (vkllm COMMAND --help for its flags)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(
        out,
        "\nGPU commands take --device SEL (index or name part), --profile native|mobile|minimal\n"
        "and --validation (Khronos validation layer on, messages printed).\n"
        "Environment: VKLLM_CACHE_DIR (pipeline cache folder; default\n"
        "$XDG_CACHE_HOME/vkllm or ~/.cache/vkllm). Kernel choices, for tuning and bug\n"
        "reports: VKLLM_MATVEC=WGxROWS[s|l][i|f] (decode products), VKLLM_MATMUL=\n"
        "TMxTNxTK/RMxRN (prefill tiles), VKLLM_COOPMAT=0|1|emu (prefill on NVIDIA's\n"
        "cooperative matrices: off by default until measured; emu: emulated, slow).\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        print_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("vkllm %s\n", TOOL_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    tool_error("unknown command \"%s\"", argv[1]);
    print_usage(stderr);
    return 2;
}
