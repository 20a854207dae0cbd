/* vkllm prune: a GGUF model with its least important weights zeroed, or its least
 * important FFN channels or attention heads removed. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmp_prune.h"
#include "tool.h"

static const char usage[] =
    "usage: vkllm prune IN.gguf OUT.gguf [--sparsity S] [--ffn-remove F] [--heads-remove F]\n"
    "                   [flags]\n"
    "\n"
    "Prunes the matrices of a llama-family model's layers and writes a new GGUF file:\n"
    "\n"
    "  --sparsity S       unstructured: zero the fraction S (0 to 0.99) of each output\n"
    "                     row's weights with the lowest score (the file keeps its size; the\n"
    "                     zeros are what a sparse kernel or a compressor would exploit)\n"
    "  --method M         the score: magnitude (|w|, default) or wanda (|w| times the\n"
    "                     input column's activation norm; needs --imatrix)\n"
    "  --ffn-remove F     structured: remove the fraction F (0 to 0.9) of FFN channels in\n"
    "                     every layer (rows of gate and up, columns of down; the kept count\n"
    "                     is a multiple of 32), ranked by the down matrix's column norm times\n"
    "                     the channel's activation norm (--imatrix) or the gate and up row\n"
    "                     norms; feed_forward_length is rewritten: a smaller, faster model\n"
    "  --heads-remove F   structured: remove the fraction F (0 to 0.9; the count removed\n"
    "                     rounds down, one kept at least) of the KV heads in every layer with the\n"
    "                     query heads sharing them (rows of q, k, v and their biases, columns\n"
    "                     of the attention output), ranked by the attention output's column\n"
    "                     norms times the head's output activation norms (--imatrix) or the\n"
    "                     value rows' norms; head counts and the head size are written\n"
    "  --imatrix FILE     activation statistics from vkllm imatrix\n"
    "  --threads N        quantizing threads (default: every CPU)\n"
    "  --force            overwrite OUT (never IN)\n"
    "\n"
    "Matrices keep their type (dequantized, pruned, quantized again). Per-tensor sparsity\n"
    "is printed. Measure the cost with vkllm perplexity --kl-base.\n"
    "\n"
    "Example: vkllm prune model.gguf model-wanda50.gguf --sparsity 0.5 --method wanda \\\n"
    "             --imatrix model.imatrix\n";

int cmd_prune(int argc, char **argv)
{
    const char *pos[2], *imatrix = NULL;
    int n_pos = 0;
    bool force = false;
    cmp_prune_params p = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--force")) {
            force = true;
        } else if (a[0] == '-' && a[1] && !val) {
            tool_error("prune: %s: unknown flag or missing value (see --help)", a);
            return 2;
        } else if (!strcmp(a, "--sparsity")) {
            if (!tool_parse_float(a, argv[++i], 0.0f, 0.99f, &p.sparsity))
                return 2;
        } else if (!strcmp(a, "--ffn-remove")) {
            if (!tool_parse_float(a, argv[++i], 0.0f, 0.9f, &p.ffn_remove))
                return 2;
        } else if (!strcmp(a, "--heads-remove")) {
            if (!tool_parse_float(a, argv[++i], 0.0f, 0.9f, &p.heads_remove))
                return 2;
        } else if (!strcmp(a, "--method")) {
            i++;
            if (!strcmp(val, "magnitude"))
                p.method = CMP_PRUNE_MAGNITUDE;
            else if (!strcmp(val, "wanda"))
                p.method = CMP_PRUNE_WANDA;
            else {
                tool_error("prune: --method takes magnitude or wanda, not \"%s\"", val);
                return 2;
            }
        } else if (!strcmp(a, "--imatrix")) {
            imatrix = argv[++i];
        } else if (!strcmp(a, "--threads")) {
            if (!tool_parse_long(a, argv[++i], 1, 256, &n))
                return 2;
            p.threads = (unsigned)n;
        } else if (a[0] == '-' && a[1]) {
            tool_error("prune: unknown flag \"%s\" (see --help)", a);
            return 2;
        } else if (n_pos == 2) {
            tool_error("prune: too many arguments: IN.gguf OUT.gguf (see --help)");
            return 2;
        } else {
            pos[n_pos++] = a;
        }
    }
    if (n_pos != 2 || (p.sparsity == 0 && p.ffn_remove == 0 && p.heads_remove == 0)) {
        tool_error("prune: needs IN.gguf OUT.gguf and --sparsity, --ffn-remove or "
                   "--heads-remove (see --help)");
        return 2;
    }
    if (!tool_output_ok("prune", pos[0], pos[1], force))
        return 1;
    char err[512];
    cmp_gguf *im = NULL;
    if (imatrix && cmp_gguf_open(imatrix, &im, err, sizeof err) != CMP_GGUF_OK) {
        tool_error("%s", err);
        return 1;
    }
    p.imatrix = im;
    p.progress = isatty(2) ? tool_progress : NULL;
    p.user = "pruning";
    cmp_prune_report *rep = malloc(sizeof *rep);
    double t0 = tool_now_s();
    int rc = 1;
    if (!rep) {
        tool_error("out of memory");
    } else if (!cmp_prune_model(pos[0], pos[1], &p, rep, err, sizeof err)) {
        tool_error("prune: %s", err);
    } else {
        uint64_t values = 0, zeros = 0;
        printf("%-32s %12s %8s\n", "tensor", "values", "zeros");
        for (uint32_t i = 0; i < rep->n_tensors; i++) {
            const cmp_prune_tensor_report *t = &rep->tensors[i];
            printf("%-32s %12llu %7.2f%%\n", t->name, (unsigned long long)t->values,
                   t->values ? 100.0 * (double)t->zeros / (double)t->values : 0.0);
            values += t->values, zeros += t->zeros;
        }
        fprintf(stderr,
                "wrote %s\n"
                "  pruned    %u matrices, %.2f%% of their weights zero (%s)\n"
                "  ffn       %u -> %u channels per layer\n"
                "  heads     %u -> %u query heads, %u -> %u KV heads per layer\n"
                "  size      %.2f MiB -> %.2f MiB\n"
                "  time      %.1f s\n",
                pos[1], rep->n_tensors, values ? 100.0 * (double)zeros / (double)values : 0.0,
                p.method == CMP_PRUNE_WANDA ? "wanda" : "magnitude", rep->n_ff_before,
                rep->n_ff_after, rep->n_head_before, rep->n_head_after, rep->n_head_kv_before,
                rep->n_head_kv_after, rep->in_bytes / 1048576.0, rep->out_bytes / 1048576.0,
                tool_now_s() - t0);
        rc = 0;
    }
    free(rep);
    cmp_gguf_close(im);
    return rc;
}
