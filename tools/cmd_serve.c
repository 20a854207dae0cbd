/* vkllm serve: a GGUF model behind an OpenAI-compatible HTTP API. */
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eng_chat.h"
#include "eng_model.h"
#include "eng_sampler.h"
#include "serve.h"
#include "tool.h"

static const char usage[] =
    "usage: vkllm serve -m MODEL.gguf [--host ADDR] [--port N] [flags]\n"
    "\n"
    "Serves a GGUF model (llama family, qwen2 or qwen3) over HTTP with OpenAI's API, so that\n"
    "OpenAI's client libraries, curl and chat front-ends talk to it unchanged:\n"
    "  POST /v1/chat/completions  messages in the model's chat format; \"stream\": true sends\n"
    "                             the reply as server-sent events while it is generated\n"
    "  POST /v1/completions       a prompt (text or token ids) continued\n"
    "  GET  /v1/models            the model, with its size, context and device\n"
    "  POST /tokenize, /detokenize   {\"content\": TEXT} <-> {\"tokens\": [IDS]}\n"
    "  GET  /health, /metrics     liveness; statistics in the Prometheus text format\n"
    "A request takes max_tokens (or max_completion_tokens, n_predict), temperature, top_p,\n"
    "top_k, min_p, repeat_penalty, repeat_last_n, seed, stop (strings), stream,\n"
    "stream_options.include_usage, ignore_eos, reasoning_format and\n"
    "chat_template_kwargs.enable_thinking; answers carry usage and llama.cpp's timings.\n"
    "Fields the server cannot honour (n > 1, logprobs, tools, penalties by presence or\n"
    "frequency, ...) are refused with a 400 that names them.\n"
    "\n"
    "Requests are answered one at a time, in the order they come. The session keeps what\n"
    "it evaluated last: a request that begins with the same tokens (a conversation going\n"
    "on, a shared system prompt) evaluates only the rest.\n"
    "\n"
    "  -m, --model FILE      the GGUF model (required)\n"
    "  --host ADDR           IPv4 address to listen on (default 127.0.0.1: this machine\n"
    "                        only; 0.0.0.0 for every interface)\n"
    "  --port N              port (default 8080; 0: any free one, printed)\n"
    "  -a, --alias NAME      the model's id in answers (default: the file's general.name,\n"
    "                        else its file name)\n"
    "  --api-key KEY         every request but /health needs \"Authorization: Bearer KEY\"\n"
    "                        (default: $VKLLM_API_KEY, else none)\n"
    "  -c, --ctx N           context length in tokens, shared by prompt and reply\n"
    "                        (default: the model's, at most 4096)\n"
    "  -b, --batch N         prompt tokens per GPU submission (default 512)\n"
    "  --chat-template NAME  the chat format where the model's tokenizer.chat_template is\n"
    "                        missing or unknown: chatml, llama3, llama2, mistral, zephyr,\n"
    "                        phi3, deepseek or deepseek-r1; chatml-nothink: Qwen3 with\n"
    "                        thinking off for every request (a request turns it off alone\n"
    "                        with \"chat_template_kwargs\": {\"enable_thinking\": false})\n"
    "  --reasoning-format F  a reply's <think>...</think> block: deepseek moves its text\n"
    "                        to the message's reasoning_content (streamed as such), none\n"
    "                        leaves it in content, auto (default) is deepseek for models\n"
    "                        whose template writes the block (Qwen3, QwQ, DeepSeek-R1) and\n"
    "                        none for others; a request's \"reasoning_format\" overrides it\n";

/* in two literals: C99 promises 4095 characters in one */
static const char usage_more[] =
    "  -n, --n-predict N     the most tokens one request may generate (default -1: up to\n"
    "                        the end of the context)\n"
    "  --sample-max N        the best N logits come back from the GPU each step and\n"
    "                        requests sample from them (default 128): a top_k of 0 or\n"
    "                        above N is taken as N (N less repeat_last_n with a penalty).\n"
    "                        0: every logit comes back, any top_k is exact (slower)\n"
    "  --queue N             requests that may wait behind the running one (default 16);\n"
    "                        more are answered 503\n"
    "  --quiet               no line per request on stderr\n" TOOL_KV_HELP "\n"
    "a request's defaults (llama.cpp's):\n"
    "  --temp X (0.8), --greedy (--temp 0), --top-k N (40), --top-p X (0.95),\n"
    "  --min-p X (0.05), --repeat-penalty X (1 = off), --repeat-last-n N (64),\n"
    "  --seed N (default: a seed from the clock for each request without one)\n"
    "\n"
    "  --device SEL          device index or part of its name (default: the fastest)\n"
    "  --profile P           native, mobile or minimal: cap the device's capabilities\n"
    "  --validation          Khronos validation layer on (slow; for debugging)\n"
    "\n"
    "Ctrl-C (or SIGTERM) stops the server: the running request ends, waiting ones get 503.\n"
    "\n"
    "Example:\n"
    "  vkllm serve -m qwen2-0.5b-instruct-q8_0.gguf --port 8080 &\n"
    "  curl http://127.0.0.1:8080/v1/chat/completions -H 'Content-Type: application/json' \\\n"
    "    -d '{\"messages\": [{\"role\": \"user\", \"content\": \"Hello!\"}]}'\n";

typedef struct serve_opts {
    const char *model;
    tool_server_opts srv;
    uint32_t n_ctx, n_batch;
    long sample_max;
    tool_kv_opts kv;
} serve_opts;

/* Returns 0 to go on, 1 after --help, 2 on a bad flag. */
static int parse_flags(int argc, char **argv, serve_opts *o, tool_gpu_opts *gpu)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        int g = tool_parse_generation_flag(argc, argv, &i, gpu, &o->kv, &o->srv.sampling,
                                           &o->srv.seed_given);
        if (g < 0)
            return 2;
        if (g > 0)
            continue;
#define IS(s) (strcmp(a, s) == 0)
        bool ok = val != NULL;
        if (IS("-h") || IS("--help")) {
            fputs(usage, stdout), fputs(usage_more, stdout);
            return 1;
        } else if (IS("--quiet")) {
            o->srv.quiet = true;
            continue;
        } else if (!val) {
            ok = false;
        } else if (IS("-m") || IS("--model")) {
            o->model = val;
        } else if (IS("--host")) {
            o->srv.host = val;
        } else if (IS("--port")) {
            ok = tool_parse_long(a, val, 0, 65535, &n);
            o->srv.port = (uint16_t)n;
        } else if (IS("-a") || IS("--alias")) {
            o->srv.name = val;
        } else if (IS("--api-key")) {
            o->srv.api_key = val;
        } else if (IS("-c") || IS("--ctx")) {
            ok = tool_parse_long(a, val, 1, 1 << 20, &n);
            o->n_ctx = (uint32_t)n;
        } else if (IS("-b") || IS("--batch")) {
            ok = tool_parse_long(a, val, 1, 65535, &n);
            o->n_batch = (uint32_t)n;
        } else if (IS("--chat-template")) {
            if (!eng_chat_style_parse(val, &o->srv.chat_style)) {
                tool_error("--chat-template %s: not a format vkllm knows (%s)", val,
                           eng_chat_style_list());
                return 2;
            }
        } else if (IS("--reasoning-format")) {
            if (!tool_reasoning_parse(val, &o->srv.reasoning)) {
                tool_error("--reasoning-format %s: want auto, none or deepseek", val);
                return 2;
            }
        } else if (IS("-n") || IS("--n-predict")) {
            ok = tool_parse_long(a, val, -1, INT32_MAX, &o->srv.n_predict);
        } else if (IS("--sample-max")) {
            ok = tool_parse_long(a, val, 0, 512, &o->sample_max);
        } else if (IS("--queue")) {
            ok = tool_parse_long(a, val, 0, 4096, &n);
            o->srv.queue = (uint32_t)n;
        } else {
            tool_error("unknown flag %s (vkllm serve --help lists them)", a);
            return 2;
        }
#undef IS
        if (!val) {
            tool_error("%s needs a value (vkllm serve --help)", a);
            return 2;
        }
        if (!ok)
            return 2;
        i++;
    }
    if (!o->model) {
        tool_error("no model: pass -m FILE.gguf (vkllm serve --help)");
        return 2;
    }
    uint32_t need = eng_sampler_best_needed(&o->srv.sampling);
    if (o->sample_max && (need == 0 || need > (uint32_t)o->sample_max)) {
        if (need)
            tool_error("the default sampling needs the best %u logits but --sample-max is %ld: "
                       "lower --top-k (or --repeat-last-n) or raise --sample-max (0: every logit)",
                       need, o->sample_max);
        else
            tool_error("the default sampling needs every logit (top-k off, or a penalty below "
                       "1): pass --sample-max 0");
        return 2;
    }
    return 0;
}

/* The model's id: --alias, else general.name, else the file's name without .gguf. */
static void model_name(const serve_opts *o, const eng_hparams *hp, char *out, size_t size)
{
    if (o->srv.name) {
        snprintf(out, size, "%s", o->srv.name);
        return;
    }
    if (hp->name[0]) {
        snprintf(out, size, "%s", hp->name);
        return;
    }
    const char *base = strrchr(o->model, '/');
    base = base ? base + 1 : o->model;
    size_t len = strlen(base);
    if (len > 5 && strcmp(base + len - 5, ".gguf") == 0)
        len -= 5;
    snprintf(out, size, "%.*s", (int)len, base);
}

/* Serves until SIGINT or SIGTERM (blocked in every thread, taken here). */
static int serve(serve_opts *o, vkb_device *dev, const sigset_t *stop)
{
    char err[512] = "", name[256];
    eng_status st;
    int rc = 1;
    eng_model *m = tool_open_model(o->model);
    eng_session *s = NULL;
    if (!m)
        return 1;
    bool bar = !o->srv.quiet && isatty(2);
    if ((st = eng_model_upload(m, dev, bar ? tool_progress : NULL, "loading weights", err,
                               sizeof err))) {
        tool_error("%s", err);
        goto done;
    }
    eng_session_params sp = {.n_ctx = o->n_ctx,
                             .n_batch = o->n_batch,
                             .best_logits = (uint32_t)o->sample_max,
                             .kv_k = o->kv.k,
                             .kv_v = o->kv.v,
                             .kv_group = o->kv.group,
                             .kv_window = o->kv.window};
    if ((st = eng_session_create(m, &sp, &s, err, sizeof err))) {
        tool_error("%s", err);
        goto done;
    }
    const eng_hparams *hp = eng_model_hparams(m);
    const char *style_from = "--chat-template";
    if (o->srv.chat_style == ENG_CHAT_NONE) {
        size_t len;
        const char *tmpl = eng_model_chat_template(m, &len);
        o->srv.chat_style = eng_chat_detect(tmpl, len);
        style_from = tmpl ? "the model's tokenizer.chat_template" : NULL;
    }
    model_name(o, hp, name, sizeof name);
    o->srv.name = name;
    o->srv.best_logits = (uint32_t)o->sample_max;
    tool_server *sv = tool_server_start(&o->srv, m, s, dev, err, sizeof err);
    if (!sv) {
        tool_error("%s", err);
        goto done;
    }
    eng_kv_info kv;
    eng_session_kv_info(s, &kv);
    fprintf(stderr, "vkllm serve: %s (%s, %s, %.1f MiB) on %s\n", name, hp->arch_name,
            eng_model_type_name(m), eng_model_weight_bytes(m) / 1048576.0,
            vkb_device_get_info(dev)->name);
    fprintf(stderr, "  context %u tokens (%s keys, %s values), ", eng_session_n_ctx(s),
            eng_kv_type_name(kv.k), eng_kv_type_name(kv.v));
    if (o->srv.chat_style != ENG_CHAT_NONE)
        fprintf(stderr, "chat format %s (from %s)\n", eng_chat_style_name(o->srv.chat_style),
                style_from);
    else
        fprintf(stderr, "no chat format (%s; pass --chat-template NAME for /v1/chat/completions)\n",
                style_from ? "the model's template is not one vkllm knows"
                           : "the file has no chat template");
    fprintf(stderr, "listening on http://%s:%u (Ctrl-C stops)\n", o->srv.host,
            tool_server_port(sv));
    int sig = 0;
    sigwait(stop, &sig);
    fprintf(stderr, "vkllm serve: %s: stopping\n", sig == SIGINT ? "interrupted" : "terminated");
    tool_server_stop(sv);
    eng_stats es;
    eng_session_stats(s, &es);
    fprintf(stderr, "served: %llu prompt tokens evaluated, %llu generated\n",
            (unsigned long long)es.prefill_tokens, (unsigned long long)es.decode_tokens);
    rc = 0;
done:
    eng_session_destroy(s);
    eng_model_close(m);
    return rc;
}

int cmd_serve(int argc, char **argv)
{
    serve_opts o = {.sample_max = 128,
                    .srv = {.host = "127.0.0.1",
                            .port = 8080,
                            .n_predict = -1,
                            .queue = 16,
                            .api_key = getenv("VKLLM_API_KEY")}};
    o.srv.sampling = eng_sampler_params_default();
    if (o.srv.api_key && !o.srv.api_key[0])
        o.srv.api_key = NULL;
    tool_gpu_opts gpu = {0};
    int r = parse_flags(argc, argv, &o, &gpu);
    if (r)
        return r == 1 ? 0 : 2;
    /* the signals that stop the server wait for sigwait: every thread started from here
     * on (the driver's, the server's) inherits the mask */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN); /* a client gone mid-answer is libmicrohttpd's to notice */
    vkb_context *ctx = NULL;
    vkb_device *dev = NULL;
    int rc = tool_open_context(&gpu, &ctx);
    if (rc == 0)
        rc = tool_open_device(ctx, &gpu, &dev);
    if (rc == 0)
        rc = serve(&o, dev, &stop);
    vkb_device_close(dev);
    if (ctx && tool_report_validation(ctx) && rc == 0)
        rc = 1;
    vkb_context_destroy(ctx);
    return rc;
}
