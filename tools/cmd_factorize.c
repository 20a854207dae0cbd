/* vkllm factorize: chosen matrices of a model replaced by low-rank factors. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmp_lowrank.h"
#include "tool.h"

static const char usage[] =
    "usage: vkllm factorize IN.gguf OUT.gguf (--rank-ratio R | --energy E) [flags]\n"
    "\n"
    "Replaces chosen matrices W (rows x k) of every layer by two thinner ones from a\n"
    "truncated singular value decomposition, W ~ B A with B rows x r and A r x k, written as\n"
    "blk.N.X.lr_b.weight and blk.N.X.lr_a.weight; vkllm runs them as two products. A matrix\n"
    "whose factors would not be smaller (r (rows + k) >= rows k) stays as it was.\n"
    "\n"
    "  --rank-ratio R     r = R x min(rows, k), 0 < R < 1, rounded up to a multiple of 32\n"
    "  --energy E         the smallest r keeping the share E (0 < E < 1) of the matrix's\n"
    "                     squared Frobenius norm, rounded up to a multiple of 32 (computes the\n"
    "                     whole spectrum: slow for large matrices)\n"
    "  --tensors LIST     which matrices, comma-separated: attn_q, attn_k, attn_v,\n"
    "                     attn_output, ffn_gate, ffn_up, ffn_down (default: the FFN ones)\n"
    "  --threads N        matrices factorized at once (default: every CPU)\n"
    "  --force            overwrite OUT (never IN)\n"
    "\n"
    "Factors keep the matrix's type (dequantized, factorized, quantized again). Per matrix,\n"
    "the rank and the share of the squared norm it keeps are printed. No fine-tuning\n"
    "follows: measure the cost with vkllm perplexity --kl-base.\n"
    "\n"
    "Example: vkllm factorize model.gguf model-lr.gguf --energy 0.9 --tensors ffn_up,ffn_gate\n";

int cmd_factorize(int argc, char **argv)
{
    const char *pos[2];
    int n_pos = 0;
    bool force = false;
    cmp_lowrank_params p = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--force")) {
            force = true;
        } else if (a[0] == '-' && a[1] && !val) {
            tool_error("factorize: %s: unknown flag or missing value (see --help)", a);
            return 2;
        } else if (!strcmp(a, "--rank-ratio")) {
            if (!tool_parse_float(a, argv[++i], 0.001f, 0.999f, &p.rank_ratio))
                return 2;
        } else if (!strcmp(a, "--energy")) {
            if (!tool_parse_float(a, argv[++i], 0.001f, 0.999999f, &p.energy))
                return 2;
        } else if (!strcmp(a, "--tensors")) {
            p.tensors = argv[++i];
        } else if (!strcmp(a, "--threads")) {
            if (!tool_parse_long(a, argv[++i], 1, 256, &n))
                return 2;
            p.threads = (unsigned)n;
        } else if (a[0] == '-' && a[1]) {
            tool_error("factorize: unknown flag \"%s\" (see --help)", a);
            return 2;
        } else if (n_pos == 2) {
            tool_error("factorize: too many arguments: IN.gguf OUT.gguf (see --help)");
            return 2;
        } else {
            pos[n_pos++] = a;
        }
    }
    if (n_pos != 2 || (p.rank_ratio > 0) == (p.energy > 0)) {
        tool_error("factorize: needs IN.gguf OUT.gguf and one of --rank-ratio or --energy "
                   "(see --help)");
        return 2;
    }
    static const char *known[] = {"attn_q",   "attn_k", "attn_v",  "attn_output",
                                  "ffn_gate", "ffn_up", "ffn_down"};
    char item[TOOL_ITEM_MAX];
    for (const char *q = p.tensors ? p.tensors : ""; tool_next_item(&q, item) != 0;) {
        bool ok = false;
        for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
            ok |= !strcmp(item, known[k]);
        if (!ok) {
            tool_error("factorize: --tensors: \"%s\" is not one of attn_q, attn_k, attn_v, "
                       "attn_output, ffn_gate, ffn_up, ffn_down",
                       item);
            return 2;
        }
    }
    if (!tool_output_ok("factorize", pos[0], pos[1], force))
        return 1;
    p.progress = isatty(2) ? tool_progress : NULL;
    p.user = "factorizing";
    cmp_lowrank_report *rep = malloc(sizeof *rep);
    char err[512];
    double t0 = tool_now_s();
    int rc = 1;
    if (!rep) {
        tool_error("out of memory");
    } else if (!cmp_lowrank_model(pos[0], pos[1], &p, rep, err, sizeof err)) {
        tool_error("factorize: %s", err);
    } else {
        uint32_t done = 0;
        printf("%-32s %14s %6s %8s\n", "tensor", "rows x k", "rank", "energy");
        for (uint32_t i = 0; i < rep->n_tensors; i++) {
            const cmp_lowrank_tensor *t = &rep->tensors[i];
            char shape[32];
            snprintf(shape, sizeof shape, "%ux%u", t->rows, t->k);
            if (t->rank)
                printf("%-32s %14s %6u %7.2f%%\n", t->name, shape, t->rank, 100.0 * t->energy);
            else
                printf("%-32s %14s %6s %8s  (kept: factors would not be smaller)\n", t->name, shape,
                       "-", "-");
            done += t->rank != 0;
        }
        fprintf(stderr,
                "wrote %s\n"
                "  factorized %u of %u matrices\n"
                "  size       %.2f MiB -> %.2f MiB\n"
                "  time       %.1f s\n",
                pos[1], done, rep->n_tensors, rep->in_bytes / 1048576.0, rep->out_bytes / 1048576.0,
                tool_now_s() - t0);
        rc = 0;
    }
    free(rep);
    return rc;
}
