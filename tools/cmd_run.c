/* vkllm run: generate text from a GGUF model on the GPU, streaming it as it comes. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "eng_chat.h"
#include "eng_model.h"
#include "eng_sampler.h"
#include "metrics.h"
#include "tool.h"
#include "viewer.h"

static const char usage[] =
    "usage: vkllm run -m MODEL.gguf [-p PROMPT | -f FILE] [flags]\n"
    "       vkllm run -m MODEL.gguf --chat [--system TEXT] [flags]\n"
    "\n"
    "Generates text with a GGUF model (llama family, qwen2 or qwen3) on the GPU and streams\n"
    "it to stdout after the prompt. At the end, load time, prefill and decode speed and the\n"
    "device memory used are printed to stderr.\n"
    "\n"
    "  -m, --model FILE      the GGUF model (required)\n"
    "  -p, --prompt TEXT     text to continue (default: none; generation starts at BOS)\n"
    "  -f, --file FILE       read the prompt from FILE instead\n"
    "  -cnv, --chat          a conversation: each line on stdin is a message (end a line\n"
    "                        with \\ to go on to the next), answered in the model's chat\n"
    "                        format; the prompt, when given, is the first message. Each\n"
    "                        turn evaluates only what the session has not seen; when the\n"
    "                        context cannot leave a quarter for the reply the oldest\n"
    "                        exchanges are left out. /reset forgets the conversation,\n"
    "                        /exit or Ctrl-D ends it. -n limits each reply (default: to\n"
    "                        its end of turn)\n"
    "  --chat-template NAME  the format, where the model's tokenizer.chat_template is\n"
    "                        missing or unknown: chatml, llama3, llama2, mistral,\n"
    "                        zephyr, phi3, deepseek or deepseek-r1 (whose replies start\n"
    "                        inside their <think> block); chatml-nothink is chatml with\n"
    "                        each reply opened by an empty think block (Qwen3 with\n"
    "                        thinking off) (implies --chat)\n"
    "  -sys, --system TEXT   the conversation's system message (implies --chat)\n"
    "  -n, --n-predict N     tokens to generate (default 128; -1 = until the end-of-text\n"
    "                        token or the context is full)\n"
    "  -c, --ctx N           context length in tokens: the KV cache holds this many\n"
    "                        (default: the model's, at most 4096)\n"
    "  -b, --batch N         prompt tokens per GPU submission during prefill (default 512);\n"
    "                        a chunk shorter than the matrix-matrix kernel's tile (56 on\n"
    "                        CPU drivers and discrete GPUs) runs 8 tokens a submission\n"
    "  --context-full MODE   when the context fills: error (stop with an error; default)\n"
    "                        or shift (keep the first --keep tokens and the newer half of\n"
    "                        the rest, recompute, go on)\n"
    "  --keep N              tokens kept at the start on a shift (default 1: BOS)\n" TOOL_KV_HELP;

/* in two literals: C99 promises 4095 characters in one */
static const char usage_sampling[] =
    "\n"
    "sampling (llama.cpp's defaults; applied in this order):\n"
    "  --repeat-penalty X    divide the logits of recent tokens by X (default 1 = off)\n"
    "  --repeat-last-n N     how many recent tokens the penalty looks at (default 64)\n"
    "  --top-k N             keep the N most likely tokens (default 40; 0 = off). With\n"
    "                        top-k on, the GPU selects the best N logits (N +\n"
    "                        --repeat-last-n with a penalty above 1; at most 512), samples\n"
    "                        from them with the host's draws and feeds the token to the\n"
    "                        next step: one id per token comes back, and the next step is\n"
    "                        queued before the pick. On CPU drivers the host selects and\n"
    "                        samples. The same tokens as from every logit, except where a\n"
    "                        draw falls within float rounding of a boundary\n"
    "  --top-p X             keep the smallest set with probability X (default 0.95)\n"
    "  --min-p X             drop tokens below X times the best's probability (default 0.05)\n"
    "  --temp X              temperature (default 0.8; 0 = greedy)\n"
    "  --greedy              same as --temp 0: always the most likely token, picked on the\n"
    "                        GPU and fed to the next step there (on CPU drivers too)\n"
    "  --host-picks          every logit comes back and the host picks or samples from\n"
    "                        them (the same tokens; for comparison)\n"
    "  --gpu-picks           select and sample on the GPU on CPU drivers too (whose host\n"
    "                        does it faster; for comparison)\n"
    "  --seed N              random seed (default: from the clock; printed at the end)\n"
    "  --ignore-eos          go on past the end-of-text token (benchmarks, demos)\n"
    "\n"
    "output:\n"
    "  --print-ids           after the text, print the prompt's and the generated token ids\n"
    "  --special             print control tokens (e.g. <|im_end|>) as text\n"
    "  --no-parse-special    treat control-token text in the prompt as plain text\n"
    "  --quiet               no statistics at the end, no progress bar\n"
    "  --metrics-port N      serve statistics in the Prometheus text format at\n"
    "                        http://127.0.0.1:N/metrics while running (0: any free port,\n"
    "                        printed); --metrics-host ADDR to listen elsewhere\n"
    "  --profile-ops         GPU time per op every step (timestamps; for the metrics)\n"
    "  --view                open the live viewer (vkllm-viewer) in this process; closing\n"
    "                        it stops the generation\n"
    "\n"
    "  --device SEL          device index or part of its name (default: the fastest)\n"
    "  --profile P           native, mobile or minimal: cap the device's capabilities\n"
    "  --validation          Khronos validation layer on (slow; for debugging)\n"
    "\n"
    "Example: vkllm run -m stories260K.gguf -p \"Once upon a time\" -n 64 --greedy\n";

typedef struct run_opts {
    const char *model, *prompt, *prompt_file;
    long n_predict;
    bool n_predict_given;
    uint32_t n_ctx, n_batch, keep;
    tool_kv_opts kv;
    long metrics_port; /* -1: no endpoint */
    bool ignore_eos, view;
    const char *view_screenshot;
    tool_metrics *metrics; /* started by cmd_run; generate attaches its session */
    atomic_bool stop;      /* the viewer window was closed */
    const char *metrics_host;
    bool profile_ops;
    bool shift, print_ids, special, parse_special, quiet, seed_given;
    bool chat;                 /* a conversation read from stdin (--chat) */
    eng_chat_style chat_style; /* --chat-template; ENG_CHAT_NONE: the model's */
    const char *system;        /* --system: the conversation's system message */
    bool gpu_picks;  /* the best logits selected and sampled on the GPU, CPU drivers too */
    bool host_picks; /* tokens picked on the host from all the logits (not the GPU's picks
                        or its best logits) */
    eng_sampler_params sp;
} run_opts;

/* Returns 0 to go on, 1 after --help, 2 on a bad flag. */
static int parse_flags(int argc, char **argv, run_opts *o, tool_gpu_opts *gpu)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        int g = tool_parse_generation_flag(argc, argv, &i, gpu, &o->kv, &o->sp, &o->seed_given);
        if (g < 0)
            return 2;
        if (g > 0)
            continue;
#define IS(s) (strcmp(a, s) == 0)
#define TAKE(ok)                                                                                   \
    do {                                                                                           \
        if (!(ok))                                                                                 \
            return 2;                                                                              \
        i++;                                                                                       \
    } while (0)
        if (IS("-h") || IS("--help")) {
            fputs(usage, stdout), fputs(usage_sampling, stdout);
            return 1;
        } else if (IS("-m") || IS("--model")) {
            TAKE(val);
            o->model = val;
        } else if (IS("-p") || IS("--prompt")) {
            TAKE(val);
            o->prompt = val;
        } else if (IS("-f") || IS("--file")) {
            TAKE(val);
            o->prompt_file = val;
        } else if (IS("-n") || IS("--n-predict")) {
            TAKE(tool_parse_long(a, val, -1, INT32_MAX, &o->n_predict));
            o->n_predict_given = true;
        } else if (IS("-cnv") || IS("--chat")) {
            o->chat = true;
            continue;
        } else if (IS("--chat-template")) {
            if (val && !eng_chat_style_parse(val, &o->chat_style)) {
                tool_error("--chat-template %s: not a format vkllm knows (%s)", val,
                           eng_chat_style_list());
                return 2;
            }
            TAKE(val);
            o->chat = true;
        } else if (IS("-sys") || IS("--system")) {
            TAKE(val);
            o->system = val;
            o->chat = true;
        } else if (IS("-c") || IS("--ctx")) {
            TAKE(tool_parse_long(a, val, 1, 1 << 20, &n));
            o->n_ctx = (uint32_t)n;
        } else if (IS("--metrics-port")) {
            TAKE(tool_parse_long(a, val, 0, 65535, &o->metrics_port));
        } else if (IS("--metrics-host")) {
            TAKE(val);
            o->metrics_host = val;
        } else if (IS("--view")) {
            o->view = true;
            continue;
        } else if (IS("--view-screenshot")) {
            TAKE(val);
            o->view = true;
            o->view_screenshot = val;
        } else if (IS("--ignore-eos")) {
            o->ignore_eos = true;
            continue;
        } else if (IS("--profile-ops")) {
            o->profile_ops = true;
            continue;
        } else if (IS("-b") || IS("--batch")) {
            TAKE(tool_parse_long(a, val, 1, 65535, &n));
            o->n_batch = (uint32_t)n;
        } else if (IS("--keep")) {
            TAKE(tool_parse_long(a, val, 0, 1 << 20, &n));
            o->keep = (uint32_t)n;
        } else if (IS("--context-full")) {
            TAKE(val && (strcmp(val, "error") == 0 || strcmp(val, "shift") == 0));
            o->shift = strcmp(val, "shift") == 0;
        } else if (IS("--host-picks")) {
            o->host_picks = true;
        } else if (IS("--gpu-picks")) {
            o->gpu_picks = true;
        } else if (IS("--print-ids")) {
            o->print_ids = true;
        } else if (IS("--special")) {
            o->special = true;
        } else if (IS("--no-parse-special")) {
            o->parse_special = false;
        } else if (IS("--quiet")) {
            o->quiet = true;
        } else {
            tool_error("unknown flag %s (vkllm run --help lists them)", a);
            return 2;
        }
        if (i >= argc) {
            tool_error("%s needs a value (vkllm run --help)", a);
            return 2;
        }
#undef IS
#undef TAKE
    }
    if (!o->model) {
        tool_error("no model: pass -m FILE.gguf (vkllm run --help)");
        return 2;
    }
    if (o->prompt && o->prompt_file) {
        tool_error("pass either -p or -f, not both");
        return 2;
    }
    if (o->chat && !o->n_predict_given)
        o->n_predict = -1; /* each reply to its end */
    if (o->chat && o->print_ids) {
        tool_error("--print-ids is not for conversations");
        return 2;
    }
    if (o->gpu_picks && o->host_picks) {
        tool_error("--gpu-picks or --host-picks, not both");
        return 2;
    }
    return 0;
}

static void print_piece(const eng_vocab *v, int32_t id, bool special)
{
    char piece[256];
    size_t len = eng_token_piece(v, id, special, piece, sizeof piece);
    if (len >= sizeof piece) {
        char *big = malloc(len + 1);
        if (big) {
            eng_token_piece(v, id, special, big, len + 1);
            fwrite(big, 1, len, stdout);
        }
        free(big);
    } else {
        fwrite(piece, 1, len, stdout);
    }
    fflush(stdout);
}

static void print_ids(const char *what, const int32_t *ids, size_t n)
{
    printf("%s:", what);
    for (size_t i = 0; i < n; i++)
        printf(" %d", ids[i]);
    printf("\n");
}

/* The reply as it grows: the history (prompt, then each token taken) and why it stopped. */
struct reply {
    run_opts *o;
    const eng_vocab *v;
    eng_sampler *smp;
    int32_t *hist;
    size_t n_hist, hist_cap, n_gen;
    int32_t last; /* the last token taken */
    const char *stop;
    bool stopped;
    bool generating; /* in eng_session_generate, whose sampler has taken the token */
    bool chat;       /* a reply in a conversation: hist holds the reply alone */
};

/* Takes token t into the reply (prints it, counts it) or stops there: the viewer was
 * closed, the end of text, or the last token asked for (taken). False to stop. */
static bool take_token(void *user, int32_t t)
{
    struct reply *r = user;
    const run_opts *o = r->o;
    if (atomic_load(&r->o->stop)) {
        r->stop = "the viewer was closed";
        r->stopped = true;
        return false;
    }
    if (eng_vocab_is_eog(r->v, t) && !o->ignore_eos) {
        r->stop = "end of text";
        r->stopped = true;
        if (o->special)
            print_piece(r->v, t, true);
        return false;
    }
    if (!r->generating)
        eng_sampler_accept(r->smp, t);
    print_piece(r->v, t, o->special);
    if (r->n_hist < r->hist_cap)
        r->hist[r->n_hist++] = t;
    r->n_gen++;
    r->last = t;
    r->stopped = o->n_predict >= 0 && r->n_gen >= (size_t)o->n_predict;
    return !r->stopped;
}

/* Takes tokens into r from the last eval's logits on until r stops. A full context is an
 * error, or shifts (--context-full shift: r->hist is the whole history), or with r->chat
 * ends the reply. Adds the seconds spent to *t_decode; returns 0, or 1 after an error. */
static int decode_tokens(eng_session *s, struct reply *r, bool gpu_picks, size_t *shifts,
                         double *t_decode)
{
    const run_opts *o = r->o;
    uint32_t n_ctx = eng_session_n_ctx(s);
    /* the logits of the last eval are there to sample from; else r->last is taken but not
     * yet evaluated */
    bool sample = true;
    for (;;) {
        if (sample && o->n_predict >= 0 && r->n_gen >= (size_t)o->n_predict)
            return 0;
        double td = tool_now_s();
        if (sample) {
            int32_t t = eng_session_sample(s, r->smp);
            if (t < 0) {
                fputc('\n', stdout);
                tool_error("every logit is NaN or -inf: the model or the GPU produced garbage");
                return 1;
            }
            if (!take_token(r, t)) {
                *t_decode += tool_now_s() - td;
                return 0;
            }
        }
        if (eng_session_n_past(s) + 1 > n_ctx) {
            if (r->chat) {
                r->stop = "the context is full";
                r->stopped = true;
                return 0;
            }
            if (!o->shift) {
                fputc('\n', stdout);
                tool_error("the context of %u tokens is full after %zu generated: raise --ctx "
                           "or pass --context-full shift",
                           n_ctx, r->n_gen);
                return 1;
            }
            /* keep the first tokens and the newer half of the rest; recompute */
            size_t keep = o->keep < r->n_hist / 2 ? o->keep : 0;
            size_t drop = (r->n_hist - keep) / 2;
            memmove(r->hist + keep, r->hist + keep + drop,
                    sizeof *r->hist * (r->n_hist - keep - drop));
            r->n_hist -= drop;
            eng_session_reset(s);
            if (eng_session_eval(s, r->hist, (uint32_t)r->n_hist)) {
                tool_error("context shift: %s", eng_session_errmsg(s));
                return 1;
            }
            (*shifts)++;
            sample = true;
        } else if (gpu_picks) {
            uint32_t max = o->n_predict < 0 ? UINT32_MAX : (uint32_t)(o->n_predict - r->n_gen);
            r->generating = true;
            eng_status st = eng_session_generate(s, r->last, max, r->smp, take_token, r, NULL);
            r->generating = false;
            if (st) {
                fputc('\n', stdout);
                tool_error("decode: %s", eng_session_errmsg(s));
                return 1;
            }
            sample = false; /* the context is full, or take_token stopped it */
        } else {
            if (eng_session_eval(s, &r->last, 1)) {
                fputc('\n', stdout);
                tool_error("decode: %s", eng_session_errmsg(s));
                return 1;
            }
            sample = true;
        }
        *t_decode += tool_now_s() - td;
        if (r->stopped)
            return 0;
    }
}

/* What a run did, for the statistics at the end. */
typedef struct run_stats {
    double t_load, t_prefill, t_decode; /* seconds */
    uint64_t n_prefill, n_decode;       /* tokens */
    size_t shifts, turns, dropped;      /* context shifts; chat turns, exchanges left out */
    const char *stop;                   /* why the (last) generation stopped */
} run_stats;

static void print_stats(const run_opts *o, eng_model *m, eng_session *s, vkb_device *dev,
                        bool gpu_picks, uint32_t best_n, const eng_sampler_params *sp,
                        const run_stats *rs)
{
    if (o->quiet)
        return;
    const eng_hparams *hp = eng_model_hparams(m);
    eng_kv_info kv;
    eng_session_kv_info(s, &kv);
    vkb_memory_stats ms;
    vkb_device_memory_stats(dev, &ms);
    const vkb_device_info *info = vkb_device_get_info(dev);
    char kivi[64] = "", picked_how[96] = "", turns[96] = "";
    if (gpu_picks && best_n > 1)
        snprintf(picked_how, sizeof picked_how, " (%s on the GPU from the best %u logits)",
                 sp->temperature > 0.0f ? "sampled" : "greedy with a penalty, picked", best_n);
    else if (gpu_picks)
        snprintf(picked_how, sizeof picked_how, " (greedy, picked on the GPU)");
    else if (best_n)
        snprintf(picked_how, sizeof picked_how, " (%s from the best %u logits)",
                 sp->temperature > 0.0f ? "sampled" : "greedy", best_n);
    if (kv.group)
        snprintf(kivi, sizeof kivi, ", group %u, f16 window %u", kv.group, kv.window);
    if (o->chat)
        snprintf(turns, sizeof turns,
                 "chat     %zu replies; %zu old exchanges left out to fit the context\n", rs->turns,
                 rs->dropped);
    fprintf(stderr,
            "\nmodel    %s (%s, %u layers, %.2f M parameters, %s, %.1f MiB)\n"
            "device   %s (%s, %s)\n"
            "load     %.3f s\n"
            "%s"
            "prefill  %llu tokens in %.3f s: %.1f tokens/s\n"
            "decode   %llu tokens in %.3f s: %.1f tokens/s%s\n"
            "memory   weights %.1f MiB, KV cache %.1f MiB (%u positions, %s keys, %s "
            "values%s, %.2f bits per value), scratch "
            "%.1f MiB, staging %.1f MiB (upload ring, host-visible inputs and outputs)\n"
            "stopped  %s; seed %llu%s\n",
            hp->name[0] ? hp->name : o->model, hp->arch_name, hp->n_layer,
            eng_model_param_count(m) / 1e6, eng_model_type_name(m),
            eng_model_weight_bytes(m) / 1048576.0, info->name, vkb_device_type_name(info->type),
            info->driver_name, rs->t_load, turns, (unsigned long long)rs->n_prefill, rs->t_prefill,
            rs->t_prefill > 0 ? (double)rs->n_prefill / rs->t_prefill : 0.0,
            (unsigned long long)rs->n_decode, rs->t_decode,
            rs->t_decode > 0 ? (double)rs->n_decode / rs->t_decode : 0.0, picked_how,
            ms.by_purpose[VKB_PURPOSE_WEIGHTS] / 1048576.0,
            ms.by_purpose[VKB_PURPOSE_KV] / 1048576.0, eng_session_n_ctx(s), eng_kv_type_name(kv.k),
            eng_kv_type_name(kv.v), kivi, kv.bits_per_value,
            ms.by_purpose[VKB_PURPOSE_SCRATCH] / 1048576.0,
            ms.by_purpose[VKB_PURPOSE_STAGING] / 1048576.0, rs->stop, (unsigned long long)sp->seed,
            rs->shifts ? "; context shifted" : "");
}

/* One message from stdin into *buf: a line, or lines joined while one ends with a
 * backslash. False at the end of input. */
static bool read_message(char **buf, size_t *cap, size_t *len)
{
    *len = 0;
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t n;
    bool any = false;
    while ((n = getline(&line, &line_cap, stdin)) >= 0) {
        any = true;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            n--;
        bool more = n > 0 && line[n - 1] == '\\';
        if (more)
            line[n - 1] = '\n';
        if (*len + (size_t)n + 1 > *cap) {
            size_t c = 2 * (*len + (size_t)n + 1);
            char *p = realloc(*buf, c);
            if (!p)
                break;
            *buf = p;
            *cap = c;
        }
        memcpy(*buf + *len, line, (size_t)n);
        *len += (size_t)n;
        (*buf)[*len] = '\0';
        if (!more)
            break;
    }
    free(line);
    return any;
}

/* A conversation: the prompt (when given) and then each message read from stdin, each
 * answered in the model's chat format. Returns 0, or 1 after an error. */
static int chat(run_opts *o, eng_model *m, eng_session *s, eng_sampler *smp, bool gpu_picks,
                const char *prompt, size_t prompt_len, run_stats *rs)
{
    const eng_vocab *v = eng_model_vocab(m);
    eng_chat_style style = o->chat_style;
    const char *from = "--chat-template";
    if (style == ENG_CHAT_NONE) {
        size_t tl;
        const char *tmpl = eng_model_chat_template(m, &tl);
        style = eng_chat_detect(tmpl, tl);
        from = "the model's tokenizer.chat_template";
        if (style == ENG_CHAT_NONE) {
            tool_error("%s: %s; pass --chat-template NAME (%s)", o->model,
                       tmpl ? "its chat template is not one vkllm knows"
                            : "the file has no chat template",
                       eng_chat_style_list());
            return 1;
        }
    }
    char err[256];
    eng_chat *c = eng_chat_create(v, style, o->system, err, sizeof err);
    if (!c) {
        tool_error("%s", err);
        return 1;
    }
    uint32_t n_ctx = eng_session_n_ctx(s);
    int32_t *reply = malloc(sizeof *reply * ((size_t)n_ctx + 1));
    char *msg = NULL;
    size_t msg_cap = 0, msg_len = 0;
    int rc = 1;
    if (!reply) {
        tool_error("out of host memory");
        goto done;
    }
    bool tty = isatty(0);
    if (!o->quiet)
        fprintf(stderr,
                "chat in the %s format (from %s), %u positions. A line is a message (end it with "
                "\\ to go on); /reset forgets the conversation; Ctrl-D or /exit ends it.\n",
                eng_chat_style_name(style), from, n_ctx);
    bool first = prompt_len > 0;
    for (;;) {
        const char *text = prompt;
        size_t len = prompt_len;
        if (!first) {
            if (tty)
                fputs("\n> ", stdout), fflush(stdout);
            if (!read_message(&msg, &msg_cap, &msg_len))
                break;
            text = msg;
            len = msg_len;
        }
        if (first || !tty) /* a transcript shows each message before its reply */
            printf("> %.*s\n", (int)len, text);
        first = false;
        if (len == 0)
            continue;
        if (len == 5 && memcmp(text, "/exit", 5) == 0)
            break;
        if (len == 6 && memcmp(text, "/reset", 6) == 0) {
            eng_chat_clear(c);
            eng_session_reset(s);
            fprintf(stderr, "(the conversation is forgotten)\n");
            continue;
        }
        eng_chat_turn turn;
        eng_status st = eng_chat_add_user(c, text, len, n_ctx, &turn);
        if (st == ENG_ERR_CONTEXT_FULL) {
            tool_error("%s", eng_chat_errmsg(c));
            continue;
        }
        if (st) {
            tool_error("%s", eng_chat_errmsg(c));
            goto done;
        }
        if (turn.dropped)
            fprintf(stderr, "(%u old exchanges left out to fit the context of %u)\n", turn.dropped,
                    n_ctx);
        rs->dropped += turn.dropped;
        if (turn.restart)
            eng_session_reset(s);
        for (uint32_t i = 0; i < turn.n; i++)
            eng_sampler_accept(smp, turn.tokens[i]);
        double tp = tool_now_s();
        if (eng_session_eval(s, turn.tokens, turn.n)) {
            tool_error("prefill: %s", eng_session_errmsg(s));
            goto done;
        }
        rs->t_prefill += tool_now_s() - tp;
        rs->n_prefill += turn.n;
        uint32_t n_past = eng_session_n_past(s);
        if (style == ENG_CHAT_DEEPSEEK_R1)
            fputs("<think>\n", stdout); /* the prompt opened the reply's reasoning */
        struct reply r = {.o = o,
                          .v = v,
                          .smp = smp,
                          .hist = reply,
                          .hist_cap = (size_t)n_ctx + 1,
                          .last = -1,
                          .stop = "the requested number of tokens",
                          .chat = true};
        if (decode_tokens(s, &r, gpu_picks, &rs->shifts, &rs->t_decode))
            goto done;
        fputc('\n', stdout);
        fflush(stdout);
        if (atomic_load(&o->stop))
            break;
        if (eng_chat_add_reply(c, reply, r.n_hist, eng_session_n_past(s) - n_past)) {
            tool_error("%s", eng_chat_errmsg(c));
            goto done;
        }
        rs->n_decode += r.n_gen;
        rs->turns++;
    }
    rs->stop = atomic_load(&o->stop) ? "the viewer was closed" : "the end of the input";
    rc = 0;
done:
    free(msg);
    free(reply);
    eng_chat_destroy(c);
    return rc;
}

/* The whole run once the device is open; returns the exit status. */
static int generate(run_opts *o, vkb_device *dev)
{
    int rc = 1;
    char err[512] = "";
    eng_status st;
    double t0 = tool_now_s();
    eng_model *m = tool_open_model(o->model);
    eng_session *s = NULL;
    eng_sampler *smp = NULL;
    int32_t *hist = NULL;
    char *file_prompt = NULL;
    if (!m)
        return 1;
    const eng_hparams *hp = eng_model_hparams(m);
    const eng_vocab *v = eng_model_vocab(m);
    bool bar = !o->quiet && isatty(2);
    if ((st = eng_model_upload(m, dev, bar ? tool_progress : NULL, "loading weights", err,
                               sizeof err))) {
        tool_error("%s", err);
        goto done;
    }
    /* where the sampler's choice depends on the best logits alone, only those come back
     * (after the prompt and a shift) and the GPU picks each token from them and feeds it
     * to the next step (eng_session_gpu_picks: not on CPU drivers, whose host selects
     * and samples); greedy without a penalty picks from every logit, in device memory */
    uint32_t best_n = o->host_picks ? 0 : eng_sampler_best_needed(&o->sp);
    eng_session_params spar = {.n_ctx = o->n_ctx,
                               .best_logits = best_n,
                               .best_place = o->gpu_picks ? ENG_BEST_GPU : ENG_BEST_AUTO,
                               .n_batch = o->n_batch,
                               .kv_k = o->kv.k,
                               .kv_v = o->kv.v,
                               .kv_group = o->kv.group,
                               .kv_window = o->kv.window,
                               .profile = o->profile_ops};
    if ((st = eng_session_create(m, &spar, &s, err, sizeof err))) {
        tool_error("%s", err);
        goto done;
    }
    tool_metrics_attach(o->metrics, s);
    double t_load = tool_now_s() - t0;
    uint32_t n_ctx = eng_session_n_ctx(s);

    const char *prompt = o->prompt ? o->prompt : "";
    size_t prompt_len = strlen(prompt);
    if (o->prompt_file) {
        if (!(file_prompt = tool_read_text(o->prompt_file, &prompt_len)))
            goto done;
        prompt = file_prompt;
    }
    eng_sampler_params sp = o->sp;
    if (!o->seed_given)
        sp.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    smp = eng_sampler_create(&sp, hp->n_vocab, err, sizeof err);
    if (!smp) {
        tool_error("%s", err);
        goto done;
    }
    bool gpu_picks = !o->host_picks && eng_session_gpu_picks(s, smp, NULL, 0);
    run_stats rs = {.t_load = t_load, .stop = "the requested number of tokens"};
    if (o->chat) {
        if (chat(o, m, s, smp, gpu_picks, prompt, prompt_len, &rs))
            goto done;
        print_stats(o, m, s, dev, gpu_picks, best_n, &sp, &rs);
        rc = 0;
        goto done;
    }
    /* the history: the prompt, then what is generated; it never holds more than the
     * context and one token (a full context stops or shifts) */
    int64_t n_prompt = 0;
    hist = tool_tokenize(v, prompt, prompt_len, true, o->parse_special, n_ctx + 1, &n_prompt);
    if (!hist) {
        tool_error("out of memory tokenizing the prompt");
        goto done;
    }
    if (n_prompt == 0) {
        tool_error("the prompt is empty and the model adds no BOS token: give a prompt (-p)");
        goto done;
    }
    if ((uint64_t)n_prompt >= n_ctx) {
        tool_error("the prompt is %lld tokens but the context holds %u: shorten it or raise "
                   "--ctx (the model was trained with %u)",
                   (long long)n_prompt, n_ctx, hp->n_ctx_train);
        goto done;
    }
    for (int64_t i = 0; i < n_prompt; i++)
        eng_sampler_accept(smp, hist[i]);

    fwrite(prompt, 1, prompt_len, stdout);
    fflush(stdout);
    double tp = tool_now_s();
    if ((st = eng_session_eval(s, hist, (uint32_t)n_prompt))) {
        tool_error("prefill: %s", eng_session_errmsg(s));
        goto done;
    }
    rs.t_prefill = tool_now_s() - tp;
    rs.n_prefill = (uint64_t)n_prompt;
    struct reply r = {.o = o,
                      .v = v,
                      .smp = smp,
                      .hist = hist,
                      .n_hist = (size_t)n_prompt,
                      .hist_cap = (size_t)n_prompt + n_ctx + 1,
                      .last = -1,
                      .stop = "the requested number of tokens"};
    if (decode_tokens(s, &r, gpu_picks, &rs.shifts, &rs.t_decode))
        goto done;
    fputc('\n', stdout);
    if (o->print_ids) {
        print_ids("prompt ids", hist, (size_t)n_prompt);
        print_ids("generated ids", hist + n_prompt, r.n_hist - (size_t)n_prompt);
    }
    rs.n_decode = r.n_gen;
    rs.stop = r.stop;
    print_stats(o, m, s, dev, gpu_picks, best_n, &sp, &rs);
    rc = 0;
done:
    tool_metrics_attach(o->metrics, NULL);
    free(file_prompt);
    free(hist);
    eng_sampler_destroy(smp);
    eng_session_destroy(s);
    eng_model_close(m);
    return rc;
}

typedef struct gen_thread {
    run_opts *o;
    vkb_device *dev;
    int rc;
} gen_thread;

static void *gen_main(void *arg)
{
    gen_thread *g = arg;
    g->rc = generate(g->o, g->dev);
    return NULL;
}

/* The generation on a thread, the viewer on this one (GLFW wants the main thread). */
static int generate_with_viewer(run_opts *o, vkb_device *dev)
{
    gen_thread g = {o, dev, 1};
    pthread_t tid;
    if (pthread_create(&tid, NULL, gen_main, &g) != 0) {
        tool_error("cannot start the generation thread");
        return 1;
    }
    viewer_options vo = {.host = o->metrics_host,
                         .port = tool_metrics_port(o->metrics),
                         .screenshot = o->view_screenshot};
    int vrc = viewer_run(&vo);
    if (!o->view_screenshot)
        atomic_store(&o->stop, true); /* the window was closed */
    pthread_join(tid, NULL);
    return g.rc ? g.rc : vrc;
}

int cmd_run(int argc, char **argv)
{
    run_opts o = {.n_predict = 128,
                  .keep = 1,
                  .parse_special = true,
                  .metrics_port = -1,
                  .metrics_host = "127.0.0.1"};
    o.sp = eng_sampler_params_default();
    tool_gpu_opts gpu = {0};
    int r = parse_flags(argc, argv, &o, &gpu);
    if (r)
        return r == 1 ? 0 : 2;
    vkb_context *ctx = NULL;
    vkb_device *dev = NULL;
    int rc = tool_open_context(&gpu, &ctx);
    if (rc == 0)
        rc = tool_open_device(ctx, &gpu, &dev);
    if (rc == 0 && (o.metrics_port >= 0 || o.view)) {
        char err[256];
        uint16_t port = o.metrics_port >= 0 ? (uint16_t)o.metrics_port : 0;
        if (!(o.metrics = tool_metrics_start(o.metrics_host, port, dev, err, sizeof err))) {
            tool_error("%s", err);
            rc = 1;
        } else {
            fprintf(stderr, "metrics: http://%s:%u/metrics\n", o.metrics_host,
                    tool_metrics_port(o.metrics));
        }
    }
    if (rc == 0 && o.view)
        rc = generate_with_viewer(&o, dev);
    else if (rc == 0)
        rc = generate(&o, dev);
    tool_metrics_stop(o.metrics);
    vkb_device_close(dev);
    if (ctx && tool_report_validation(ctx) && rc == 0)
        rc = 1;
    vkb_context_destroy(ctx);
    return rc;
}
