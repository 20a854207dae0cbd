/* The HTTP server of `vkllm serve`: OpenAI's completions and chat completions (streamed
 * as server-sent events or answered whole), the model list, tokenize and detokenize,
 * health, and the Prometheus metrics, from libmicrohttpd threads (one per connection).
 *
 * One session serves every request, one at a time, in the order they came: a worker
 * thread owns it. The tokens the session holds are kept as a prompt cache: a request
 * whose prompt begins with them (a conversation going on, a shared system prompt)
 * evaluates only the rest (eng_session_keep). */
#ifndef TOOL_SERVE_H
#define TOOL_SERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eng_chat.h"
#include "eng_model.h"
#include "eng_sampler.h"
#include "vkb.h"

/* What becomes of a chat reply's reasoning block (<think>...</think>), as llama.cpp's
 * --reasoning-format: auto splits it off for models whose template writes one, deepseek
 * always, none never (the block stays in the content). */
typedef enum tool_reasoning {
    TOOL_REASONING_AUTO,
    TOOL_REASONING_NONE,
    TOOL_REASONING_DEEPSEEK
} tool_reasoning;

/* "auto", "none" or "deepseek"; false for another name. */
bool tool_reasoning_parse(const char *name, tool_reasoning *out);

typedef struct tool_server_opts {
    const char *host;            /* an IPv4 address to listen on */
    uint16_t port;               /* 0: any free one (tool_server_port) */
    const char *name;            /* the model's id in answers and /v1/models */
    eng_chat_style chat_style;   /* ENG_CHAT_NONE: chat completions are refused */
    tool_reasoning reasoning;    /* a chat request's default reasoning_format */
    eng_sampler_params sampling; /* a request's defaults */
    bool seed_given;             /* sampling.seed is every request's default seed; else
                                    each request without one draws a seed from the clock */
    uint32_t best_logits;        /* the session's params.best_logits: a request's top-k is
                                    cut to fit them (0: every logit comes back) */
    long n_predict;              /* the most tokens a request may generate; -1: no limit */
    uint32_t queue;              /* requests that may wait; more are answered 503 */
    const char *api_key;         /* NULL: none; else the Bearer token every /v1 call needs */
    bool quiet;                  /* no line per request on stderr */
} tool_server_opts;

typedef struct tool_server tool_server;

/* Serves model m with session s (uploaded, created and owned by the caller, outliving the
 * server, created with opts.best_logits). NULL with the reason in err. */
tool_server *tool_server_start(const tool_server_opts *opts, eng_model *m, eng_session *s,
                               vkb_device *dev, char *err, size_t err_size);
uint16_t tool_server_port(const tool_server *sv);
/* Stops taking requests, ends the one running and the ones waiting (503), and returns
 * once every connection is closed. */
void tool_server_stop(tool_server *sv);

#endif /* TOOL_SERVE_H */
