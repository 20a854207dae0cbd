/* vkllm perplexity: how well a model predicts a text, as llama.cpp's llama-perplexity
 * measures it, so figures can be compared with its. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eng_model.h"
#include "tool.h"

static const char usage[] =
    "usage: vkllm perplexity -m MODEL.gguf -f TEXT [flags]\n"
    "\n"
    "Measures the perplexity of a model on a text file the way llama.cpp's llama-perplexity\n"
    "does, so the figures compare with its: the text is tokenized, cut into chunks of\n"
    "--ctx tokens, each chunk is evaluated from an empty context (its first token replaced\n"
    "by BOS when the model adds one), and the second half of each chunk's tokens is scored:\n"
    "the negative log-likelihood of each next token given everything before it in the\n"
    "chunk. Perplexity is exp of their mean; ± is its standard error. The running estimate\n"
    "is printed per chunk ([1]12.34,[2]11.98,...), then the final one.\n"
    "\n"
    "  -m, --model FILE     the GGUF model\n"
    "  -f, --file FILE      the text (e.g. WikiText-2's wiki.test.raw)\n"
    "  -c, --ctx N          tokens per chunk (default 512; at least twice as many tokens\n"
    "                       in the text are needed)\n"
    "  -b, --batch N        tokens per GPU submission (default: --ctx, at most 512)\n"
    "  --chunks N           score at most N chunks (default: all)\n"
    "  --unfused-attention  the unfused attention path (scores in memory)\n" TOOL_KV_HELP
    "  --kl-save FILE       save every scored token's distribution (n_vocab floats each)\n"
    "  --kl-base FILE       compare with distributions saved by --kl-save from another\n"
    "                       model (or setting) on the same text and --ctx: mean KL\n"
    "                       divergence KL(base || this) ± its standard error, the largest,\n"
    "                       and how often both put the same token first\n"
    "  --device SEL, --profile P, --validation   as for vkllm devices\n"
    "\n"
    "Example: vkllm perplexity -m model.gguf -f wiki.test.raw -c 512 --chunks 20\n";

typedef struct ppl_opts {
    const char *model, *file, *kl_save, *kl_base;
    uint32_t n_ctx, n_batch, max_chunks;
    bool unfused;
    tool_kv_opts kv;
} ppl_opts;

/* log softmax(logits) into lp (double arithmetic); returns the index of the largest. */
static uint32_t log_softmax(const float *logits, uint32_t n_vocab, float *lp)
{
    uint32_t best = 0;
    for (uint32_t i = 1; i < n_vocab; i++)
        best = logits[i] > logits[best] ? i : best;
    double mx = logits[best], sum = 0;
    for (uint32_t i = 0; i < n_vocab; i++)
        sum += exp((double)logits[i] - mx);
    double lse = mx + log(sum);
    for (uint32_t i = 0; i < n_vocab; i++)
        lp[i] = (float)((double)logits[i] - lse);
    return best;
}

/* The --kl-save file: a header, then each scored token's log-probabilities as floats. */
#define KL_MAGIC "vkllm-kl-1"

typedef struct kl_header {
    char magic[16];
    uint32_t n_vocab, n_ctx;
    uint64_t n_scored;
    uint64_t text_hash; /* of the scored tokens, so another text is refused */
} kl_header;

typedef struct kl_state {
    FILE *save, *base;
    uint32_t n_vocab;
    float *base_row;
    double sum, sum2, max;
    uint64_t n, same_top;
    uint64_t hash;
} kl_state;

static uint64_t fnv1a(uint64_t h, int32_t v)
{
    for (int i = 0; i < 4; i++)
        h = (h ^ ((uint32_t)v >> (8 * i) & 0xff)) * 0x100000001b3ull;
    return h;
}

/* One scored token: saves it, or compares it with the base's. */
static bool kl_token(kl_state *k, const float *lp, uint32_t top, const char *base_path)
{
    if (k->save && fwrite(lp, sizeof *lp, k->n_vocab, k->save) != k->n_vocab) {
        tool_error("writing the --kl-save file failed");
        return false;
    }
    if (!k->base)
        return true;
    if (fread(k->base_row, sizeof *k->base_row, k->n_vocab, k->base) != k->n_vocab) {
        tool_error("%s ends early: it was saved from a shorter run", base_path);
        return false;
    }
    double kl = 0;
    uint32_t base_top = 0;
    for (uint32_t i = 0; i < k->n_vocab; i++) {
        double b = k->base_row[i];
        kl += exp(b) * (b - (double)lp[i]);
        base_top = k->base_row[i] > k->base_row[base_top] ? i : base_top;
    }
    k->sum += kl;
    k->sum2 += kl * kl;
    k->max = kl > k->max ? kl : k->max;
    k->same_top += base_top == top;
    k->n++;
    return true;
}

static int parse(int argc, char **argv, ppl_opts *o, tool_gpu_opts *gpu)
{
    for (int i = 1; i < argc; i++) {
        int took = tool_parse_gpu_flag(argc, argv, &i, gpu);
        if (took == 0)
            took = tool_parse_kv_flag(argc, argv, &i, &o->kv);
        if (took < 0)
            return 2;
        if (took)
            continue;
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 1;
        } else if (!strcmp(a, "--unfused-attention")) {
            o->unfused = true;
            continue;
        } else if (!val) {
            tool_error("perplexity: %s: unknown flag or missing value (see --help)", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            o->model = val;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            o->file = val;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx")) {
            if (!tool_parse_long(a, val, 4, 1 << 20, &n))
                return 2;
            o->n_ctx = (uint32_t)n;
        } else if (!strcmp(a, "-b") || !strcmp(a, "--batch")) {
            if (!tool_parse_long(a, val, 1, 65535, &n))
                return 2;
            o->n_batch = (uint32_t)n;
        } else if (!strcmp(a, "--kl-save")) {
            o->kl_save = val;
        } else if (!strcmp(a, "--kl-base")) {
            o->kl_base = val;
        } else if (!strcmp(a, "--chunks")) {
            if (!tool_parse_long(a, val, 1, INT32_MAX, &n))
                return 2;
            o->max_chunks = (uint32_t)n;
        } else {
            tool_error("perplexity: unknown flag \"%s\" (see --help)", a);
            return 2;
        }
    }
    if (!o->model || !o->file) {
        tool_error("perplexity: needs -m MODEL.gguf and -f TEXT (see --help)");
        return 2;
    }
    if (!o->n_batch)
        o->n_batch = o->n_ctx < 512 ? o->n_ctx : 512;
    return 0;
}

static int run(const ppl_opts *o, vkb_device *dev)
{
    char err[512] = "";
    eng_status st;
    eng_model *m = eng_model_open(o->model, &st, err, sizeof err);
    if (!m) {
        tool_error("%s", err);
        return 1;
    }
    int rc = 1;
    eng_session *s = NULL;
    int32_t *tok = NULL;
    float *lp = NULL;
    kl_state kl = {0};
    size_t len;
    char *text = tool_read_text(o->file, &len);
    const eng_hparams *hp = eng_model_hparams(m);
    const eng_vocab *v = eng_model_vocab(m);
    bool bar = isatty(2);
    eng_session_params sp = {.n_ctx = o->n_ctx,
                             .n_batch = o->n_batch,
                             .unfused_attention = o->unfused,
                             .all_logits = true,
                             .kv_k = o->kv.k,
                             .kv_v = o->kv.v,
                             .kv_group = o->kv.group,
                             .kv_window = o->kv.window};
    if (!text)
        goto done;
    if (eng_model_upload(m, dev, bar ? tool_progress : NULL, "loading weights", err, sizeof err) !=
            ENG_OK ||
        eng_session_create(m, &sp, &s, err, sizeof err) != ENG_OK) {
        tool_error("%s", err);
        goto done;
    }
    double t0 = tool_now_s();
    int64_t n_tok = 0;
    if (!(tok = tool_tokenize(v, text, len, true, false, 0, &n_tok))) {
        tool_error("out of memory tokenizing %s", o->file);
        goto done;
    }
    uint32_t n_ctx = o->n_ctx;
    if ((uint64_t)n_tok < 2ull * n_ctx) {
        tool_error("%s is %lld tokens: perplexity with chunks of %u needs at least %u (two "
                   "chunks); lower --ctx",
                   o->file, (long long)n_tok, n_ctx, 2 * n_ctx);
        goto done;
    }
    uint64_t n_chunks = (uint64_t)n_tok / n_ctx;
    if (o->max_chunks && o->max_chunks < n_chunks)
        n_chunks = o->max_chunks;
    int32_t bos = eng_vocab_bos(v);
    bool add_bos = eng_vocab_adds_bos(v);
    uint32_t first = n_ctx / 2;
    fprintf(stderr,
            "perplexity: %lld tokens in %.2f s; %llu chunks of %u tokens, scoring the last %u "
            "of each\n",
            (long long)n_tok, tool_now_s() - t0, (unsigned long long)n_chunks, n_ctx,
            n_ctx - 1 - first);
    double nll = 0, nll2 = 0;
    uint64_t count = 0;
    double t_eval = 0;
    kl.n_vocab = hp->n_vocab;
    kl.hash = 0xcbf29ce484222325ull;
    kl_header head = {.n_vocab = hp->n_vocab, .n_ctx = n_ctx};
    snprintf(head.magic, sizeof head.magic, "%s", KL_MAGIC);
    if (!(lp = malloc(sizeof *lp * hp->n_vocab)) ||
        (o->kl_base && !(kl.base_row = malloc(sizeof *kl.base_row * hp->n_vocab)))) {
        tool_error("out of memory");
        goto done;
    }
    if (o->kl_base) {
        kl_header b;
        if (!(kl.base = fopen(o->kl_base, "rb"))) {
            tool_error("cannot open %s: %s", o->kl_base, strerror(errno));
            goto done;
        }
        if (fread(&b, sizeof b, 1, kl.base) != 1 || memcmp(b.magic, KL_MAGIC, sizeof KL_MAGIC)) {
            tool_error("%s is not a file of vkllm perplexity --kl-save", o->kl_base);
            goto done;
        }
        if (b.n_vocab != hp->n_vocab || b.n_ctx != n_ctx) {
            tool_error("%s was saved with a vocabulary of %u and --ctx %u; this run has %u and "
                       "%u",
                       o->kl_base, b.n_vocab, b.n_ctx, hp->n_vocab, n_ctx);
            goto done;
        }
        head = b;
    }
    if (o->kl_save &&
        (!(kl.save = fopen(o->kl_save, "wb")) || fwrite(&head, sizeof head, 1, kl.save) != 1)) {
        tool_error("cannot write %s: %s", o->kl_save, strerror(errno));
        goto done;
    }
    int32_t *chunk = malloc(sizeof *chunk * n_ctx);
    if (!chunk) {
        tool_error("out of memory");
        goto done;
    }
    for (uint64_t c = 0; c < n_chunks; c++) {
        memcpy(chunk, tok + c * n_ctx, sizeof *chunk * n_ctx);
        if (add_bos && bos >= 0)
            chunk[0] = bos;
        eng_session_reset(s);
        double tc = tool_now_s();
        for (uint32_t at = 0; at < n_ctx; at += o->n_batch) {
            uint32_t n = n_ctx - at < o->n_batch ? n_ctx - at : o->n_batch;
            if (eng_session_eval(s, chunk + at, n) != ENG_OK) {
                tool_error("chunk %llu: %s", (unsigned long long)c + 1, eng_session_errmsg(s));
                free(chunk);
                goto done;
            }
            uint32_t got;
            const float *lg = eng_session_logits_all(s, &got);
            /* position j predicts token j + 1; scored from `first` to n_ctx - 2 */
            for (uint32_t i = 0; i < got; i++) {
                uint32_t j = at + i;
                if (j < first || j + 1 >= n_ctx)
                    continue;
                int32_t target = tok[c * n_ctx + j + 1];
                uint32_t top = log_softmax(lg + (size_t)i * hp->n_vocab, hp->n_vocab, lp);
                double x = -(double)lp[target];
                nll += x;
                nll2 += x * x;
                count++;
                kl.hash = fnv1a(kl.hash, target);
                if (!kl_token(&kl, lp, top, o->kl_base)) {
                    free(chunk);
                    goto done;
                }
            }
        }
        t_eval += tool_now_s() - tc;
        printf("[%llu]%.4f,", (unsigned long long)c + 1, exp(nll / (double)count));
        fflush(stdout);
        if (bar && c == 0)
            fprintf(stderr, "perplexity: %.2f s per chunk, about %.0f s in all\n", t_eval,
                    t_eval * (double)n_chunks);
    }
    free(chunk);
    double mean = nll / (double)count, ppl = exp(mean);
    double var = nll2 / (double)count - mean * mean;
    double err_ppl = count > 1 && var > 0 ? ppl * sqrt(var / (double)(count - 1)) : 0;
    printf("\nFinal estimate: PPL = %.4f +/- %.5f\n", ppl, err_ppl);
    if (kl.save) {
        head.n_scored = count;
        head.text_hash = kl.hash;
        if (fseek(kl.save, 0, SEEK_SET) != 0 || fwrite(&head, sizeof head, 1, kl.save) != 1) {
            tool_error("writing %s failed", o->kl_save);
            goto done;
        }
        fprintf(stderr, "perplexity: saved %llu distributions to %s\n", (unsigned long long)count,
                o->kl_save);
    }
    if (kl.base) {
        if (head.n_scored != count || head.text_hash != kl.hash) {
            tool_error("%s scored other tokens (%llu, this run %llu): another text, --chunks "
                       "or tokenizer",
                       o->kl_base, (unsigned long long)head.n_scored, (unsigned long long)count);
            goto done;
        }
        double km = kl.sum / (double)kl.n, kv = kl.sum2 / (double)kl.n - km * km;
        printf("KL divergence from %s: mean %.6f +/- %.6f, max %.6f; same top token %.2f%% "
               "(%llu of %llu)\n",
               o->kl_base, km, kl.n > 1 && kv > 0 ? sqrt(kv / (double)(kl.n - 1)) : 0.0, kl.max,
               100.0 * (double)kl.same_top / (double)kl.n, (unsigned long long)kl.same_top,
               (unsigned long long)kl.n);
    }
    fprintf(stderr, "perplexity: %llu tokens scored in %llu chunks, %.1f s (%.1f tokens/s)\n",
            (unsigned long long)count, (unsigned long long)n_chunks, t_eval,
            (double)n_chunks * n_ctx / t_eval);
    rc = 0;
done:
    if (kl.save && fclose(kl.save) != 0 && rc == 0) {
        tool_error("writing %s failed", o->kl_save);
        rc = 1;
    }
    if (kl.base)
        fclose(kl.base);
    free(kl.base_row);
    free(lp);
    free(tok);
    free(text);
    eng_session_destroy(s);
    eng_model_close(m);
    return rc;
}

int cmd_perplexity(int argc, char **argv)
{
    ppl_opts o = {.n_ctx = 512};
    tool_gpu_opts gpu = {0};
    int r = parse(argc, argv, &o, &gpu);
    if (r)
        return r == 1 ? 0 : 2;
    vkb_context *ctx;
    vkb_device *dev;
    if (tool_open_context(&gpu, &ctx) != 0)
        return 1;
    if (tool_open_device(ctx, &gpu, &dev) != 0) {
        vkb_context_destroy(ctx);
        return 1;
    }
    int rc = run(&o, dev);
    vkb_device_close(dev);
    if (gpu.validation && tool_report_validation(ctx) > 0)
        rc = 1;
    vkb_context_destroy(ctx);
    return rc;
}
