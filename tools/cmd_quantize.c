/* vkllm quantize: a GGUF model converted to another type by a recipe (llama.cpp's mixes),
 * written to the GGUF specification with the input's metadata. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmp_gguf.h"
#include "cmp_quantize_model.h"
#include "tool.h"

static const char usage[] =
    "usage: vkllm quantize IN.gguf OUT.gguf TYPE [flags]\n"
    "\n"
    "Converts every weight matrix of a llama-family GGUF model to TYPE with llama.cpp's\n"
    "rules for which tensor gets which type (a Q4_0 file keeps a Q6_K output matrix,\n"
    "Q4_K_M gives Q6_K to some attn_v and ffn_down matrices, rows that do not fit a\n"
    "block fall back to a stated type; see README). Norms and other vectors stay as they\n"
    "are; all metadata is copied, with general.file_type and the quantization version set.\n"
    "An already quantized input is dequantized first (quality is lost twice).\n"
    "\n"
    "  TYPE          F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K_S, Q4_K_M (or Q4_K),\n"
    "                Q5_K_S, Q5_K_M (or Q5_K), Q6_K, IQ4_NL\n"
    "  --pure        every matrix gets TYPE itself: no mix\n"
    "  --imatrix F   importance statistics from vkllm imatrix (or llama.cpp's GGUF\n"
    "                imatrix): Q4_0, Q5_0 and IQ4_NL scales minimize the error weighted\n"
    "                by them instead of plain rounding\n"
    "  --threads N   quantizing threads (default: every CPU)\n"
    "  --force       overwrite OUT if it exists (never IN)\n"
    "\n"
    "Example: vkllm quantize model-f16.gguf model-q4_k_m.gguf Q4_K_M\n";

static int quantize(const char *in, const char *out, const cmp_quantize_params *p)
{
    char err[512];
    cmp_quantize_report rep;
    double t0 = tool_now_s();
    if (!cmp_quantize_model(in, out, p, &rep, err, sizeof err)) {
        if (p->progress)
            fputc('\n', stderr);
        tool_error("%s", err);
        return 1;
    }
    char types[256] = "";
    for (uint32_t t = 0, at = 0; t < CMP_QUANTIZE_TYPES && at < sizeof types; t++)
        if (rep.count[t]) {
            int n = snprintf(types + at, sizeof types - at, "%s%s: %u", at ? ", " : "",
                             cmp_ggml_type_name(t), rep.count[t]);
            at += n > 0 ? (uint32_t)n : 0;
        }
    fprintf(stderr,
            "wrote %s\n"
            "  type      %s%s\n"
            "  size      %.2f MiB -> %.2f MiB (%.1f%%)\n"
            "  tensors   %s\n",
            out, p->recipe->name, p->pure ? " (pure)" : "", rep.in_bytes / 1048576.0,
            rep.out_bytes / 1048576.0,
            rep.in_bytes ? 100.0 * (double)rep.out_bytes / (double)rep.in_bytes : 0.0, types);
    if (p->imatrix)
        fprintf(stderr, "  imatrix   %u tensors quantized with importance weights\n", rep.weighted);
    fprintf(stderr, "  time      %.1f s\n", tool_now_s() - t0);
    return 0;
}

int cmd_quantize(int argc, char **argv)
{
    const char *pos[3];
    int n_pos = 0;
    bool pure = false, force = false;
    const char *imatrix = NULL;
    unsigned threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        long n;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--pure")) {
            pure = true;
        } else if (!strcmp(a, "--force")) {
            force = true;
        } else if (!strcmp(a, "--imatrix") && i + 1 < argc) {
            imatrix = argv[++i];
        } else if (!strcmp(a, "--threads") && i + 1 < argc) {
            if (!tool_parse_long(a, argv[++i], 1, 256, &n))
                return 2;
            threads = (unsigned)n;
        } else if (a[0] == '-' && a[1]) {
            tool_error("quantize: unknown flag or missing value \"%s\" (see --help)", a);
            return 2;
        } else if (n_pos == 3) {
            tool_error("quantize: too many arguments: IN.gguf OUT.gguf TYPE (see --help)");
            return 2;
        } else {
            pos[n_pos++] = a;
        }
    }
    if (n_pos != 3) {
        tool_error("quantize: needs IN.gguf OUT.gguf TYPE (see --help)");
        return 2;
    }
    const cmp_recipe *r = cmp_recipe_find(pos[2]);
    if (!r) {
        tool_error("quantize: unknown type \"%s\" (see --help)", pos[2]);
        return 2;
    }
    if (!tool_output_ok("quantize", pos[0], pos[1], force))
        return 1;
    cmp_gguf *im = NULL;
    char err[512];
    if (imatrix && cmp_gguf_open(imatrix, &im, err, sizeof err) != CMP_GGUF_OK) {
        tool_error("%s", err);
        return 1;
    }
    cmp_quantize_params p = {.recipe = r,
                             .pure = pure,
                             .threads = threads,
                             .imatrix = im,
                             .progress = isatty(2) ? tool_progress : NULL,
                             .user = "quantizing"};
    int rc = quantize(pos[0], pos[1], &p);
    cmp_gguf_close(im);
    return rc;
}
