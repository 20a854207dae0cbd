/* vkllm imatrix: importance statistics for quantization: the mean square of the
 * activations each weight column meets while the model reads calibration text. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmp_gguf_write.h"
#include "eng_model.h"
#include "eng_ref.h"
#include "tool.h"

static const char usage[] =
    "usage: vkllm imatrix -m MODEL.gguf -f TEXT -o OUT.imatrix [flags]\n"
    "\n"
    "Runs the model over calibration text on the CPU (the reference forward pass, in\n"
    "double precision) and sums, for every weight matrix, the square of each input column\n"
    "over all tokens. `vkllm quantize --imatrix OUT.imatrix` then chooses Q4_0, Q5_0 and\n"
    "IQ4_NL scales that minimize the error weighted by these statistics instead of plain\n"
    "rounding. The file is llama.cpp's GGUF imatrix format (<name>.in_sum2, <name>.counts).\n"
    "\n"
    "  -m, --model FILE   the GGUF model (full precision is best)\n"
    "  -f, --file FILE    calibration text\n"
    "  -o, --output FILE  where to write (refused if it exists, unless --force)\n"
    "  -c, --ctx N        tokens per chunk, each from BOS (default 512)\n"
    "  --chunks N         at most N chunks (default: all)\n"
    "  --force            overwrite OUT\n"
    "\n"
    "Example: vkllm imatrix -m model-f16.gguf -f calibration.txt -o model.imatrix\n";

typedef struct stat_slot {
    const eng_weight *w;
    double *sum2; /* k values */
    uint64_t rows;
} stat_slot;

typedef struct stats {
    stat_slot *slot;
    uint32_t n, cap;
    bool failed;
} stats;

static void observe(void *user, const eng_weight *w, const float *x, uint32_t n)
{
    stats *st = user;
    stat_slot *s = NULL;
    for (uint32_t i = 0; i < st->n && !s; i++)
        if (st->slot[i].w == w)
            s = &st->slot[i];
    if (!s) {
        if (st->n == st->cap) {
            uint32_t cap = st->cap ? st->cap * 2 : 64;
            stat_slot *p = realloc(st->slot, sizeof *p * cap);
            if (!p) {
                st->failed = true;
                return;
            }
            st->slot = p, st->cap = cap;
        }
        s = &st->slot[st->n];
        *s = (stat_slot){w, calloc(w->k, sizeof(double)), 0};
        if (!s->sum2) {
            st->failed = true;
            return;
        }
        st->n++;
    }
    for (uint32_t r = 0; r < n; r++)
        for (uint32_t c = 0; c < w->k; c++) {
            double v = x[(size_t)r * w->k + c];
            s->sum2[c] += v * v;
        }
    s->rows += n;
}

static bool write_imatrix(const stats *st, const char *out, const char *text, uint64_t chunks,
                          uint32_t n_ctx, char *err, size_t err_size)
{
    cmp_gguf_writer *w = cmp_gguf_writer_create();
    float **bufs = calloc(st->n ? st->n : 1, sizeof *bufs);
    bool ok = w && bufs;
    const char *slash = strrchr(text, '/');
    const char *datasets[1] = {slash ? slash + 1 : text};
    ok = ok && cmp_gguf_set_str(w, "general.type", "imatrix") &&
         cmp_gguf_set_str_array(w, "imatrix.datasets", datasets, 1) &&
         cmp_gguf_set_u32(w, "imatrix.chunk_count", (uint32_t)chunks) &&
         cmp_gguf_set_u32(w, "imatrix.chunk_size", n_ctx);
    for (uint32_t i = 0; ok && i < st->n; i++) {
        const stat_slot *s = &st->slot[i];
        if (!(bufs[i] = malloc(sizeof(float) * (s->w->k + 1)))) {
            ok = false;
            break;
        }
        for (uint32_t c = 0; c < s->w->k; c++)
            bufs[i][c] = (float)s->sum2[c];
        bufs[i][s->w->k] = (float)s->rows;
        char name[128];
        uint64_t ne_s[2] = {s->w->k, 1}, ne_c[2] = {1, 1};
        snprintf(name, sizeof name, "%s.in_sum2", s->w->name);
        ok = cmp_gguf_add_tensor(w, name, CMP_TYPE_F32, 2, ne_s, bufs[i], s->w->k * 4ull);
        snprintf(name, sizeof name, "%s.counts", s->w->name);
        ok = ok && cmp_gguf_add_tensor(w, name, CMP_TYPE_F32, 2, ne_c, bufs[i] + s->w->k, 4);
    }
    if (!ok)
        snprintf(err, err_size, "out of memory");
    else
        ok = cmp_gguf_write_file(w, out, err, err_size);
    for (uint32_t i = 0; bufs && i < st->n; i++)
        free(bufs[i]);
    free(bufs);
    cmp_gguf_writer_destroy(w);
    return ok;
}

int cmd_imatrix(int argc, char **argv)
{
    const char *model = NULL, *file = NULL, *out = NULL;
    uint32_t n_ctx = 512;
    uint64_t max_chunks = 0;
    bool force = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--force")) {
            force = true;
        } else if (!val) {
            tool_error("imatrix: %s: unknown flag or missing value (see --help)", a);
            return 2;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            model = argv[++i];
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            file = argv[++i];
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            out = argv[++i];
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx")) {
            if (!tool_parse_long(a, argv[++i], 2, 1 << 16, &n))
                return 2;
            n_ctx = (uint32_t)n;
        } else if (!strcmp(a, "--chunks")) {
            if (!tool_parse_long(a, argv[++i], 1, INT32_MAX, &n))
                return 2;
            max_chunks = (uint64_t)n;
        } else {
            tool_error("imatrix: unknown flag \"%s\" (see --help)", a);
            return 2;
        }
    }
    if (!model || !file || !out) {
        tool_error("imatrix: needs -m MODEL.gguf, -f TEXT and -o OUT.imatrix (see --help)");
        return 2;
    }
    if (!tool_output_ok("imatrix", NULL, out, force))
        return 1;
    char err[512] = "";
    eng_status st;
    eng_model *m = eng_model_open(model, &st, err, sizeof err);
    if (!m) {
        tool_error("%s", err);
        return 1;
    }
    int rc = 1;
    size_t len = 0;
    char *text = tool_read_text(file, &len);
    int32_t *tok = NULL;
    eng_ref *ref = eng_ref_create(m, n_ctx, err, sizeof err);
    float *logits = malloc(sizeof *logits * eng_model_hparams(m)->n_vocab);
    stats sts = {0};
    const eng_vocab *v = eng_model_vocab(m);
    int64_t n_tok = 0;
    if (text)
        tok = tool_tokenize(v, text, len, true, false, 0, &n_tok);
    if (!text || !tok || !ref || !logits) {
        tool_error("%s", err[0] ? err : "out of memory");
        goto done;
    }
    uint64_t chunks = n_tok > 0 ? (uint64_t)n_tok / n_ctx : 0;
    if (max_chunks && max_chunks < chunks)
        chunks = max_chunks;
    if (chunks == 0) {
        tool_error("%s is %lld tokens: fewer than one chunk of %u; lower --ctx", file,
                   (long long)n_tok, n_ctx);
        goto done;
    }
    eng_ref_observe_inputs(ref, observe, &sts);
    bool bar = isatty(2);
    double t0 = tool_now_s();
    for (uint64_t c = 0; c < chunks; c++) {
        int32_t *chunk = tok + c * n_ctx;
        if (eng_vocab_adds_bos(v))
            chunk[0] = eng_vocab_bos(v);
        eng_ref_reset(ref); /* a fresh context per chunk */
        for (uint32_t at = 0; at < n_ctx; at += 32) {
            uint32_t n = n_ctx - at < 32 ? n_ctx - at : 32;
            if (eng_ref_eval(ref, chunk + at, n, logits, NULL) != ENG_OK) {
                tool_error("the reference forward pass failed (out of memory?)");
                goto done;
            }
        }
        if (sts.failed) {
            tool_error("out of memory");
            goto done;
        }
        if (bar)
            fprintf(stderr, "\rimatrix: chunk %llu of %llu%s", (unsigned long long)c + 1,
                    (unsigned long long)chunks, c + 1 == chunks ? "\n" : "");
    }
    if (!write_imatrix(&sts, out, file, chunks, n_ctx, err, sizeof err)) {
        tool_error("%s", err);
        goto done;
    }
    fprintf(stderr, "wrote %s: %u weight matrices, %llu chunks of %u tokens, %.1f s\n", out, sts.n,
            (unsigned long long)chunks, n_ctx, tool_now_s() - t0);
    rc = 0;
done:
    for (uint32_t i = 0; i < sts.n; i++)
        free(sts.slot[i].sum2);
    free(sts.slot);
    eng_ref_destroy(ref);
    free(logits);
    free(tok);
    free(text);
    eng_model_close(m);
    return rc;
}
