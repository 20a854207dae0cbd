/* vkllm serve's HTTP side: requests read and checked on libmicrohttpd's connection
 * threads, generated one at a time by a worker thread that owns the session, answered
 * whole or streamed as server-sent events while the worker writes them. */
#include <arpa/inet.h>
#include <cJSON.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "eng_textstream.h"
#include "metrics.h"
#include "serve.h"
#include "tool.h"

#define BODY_MAX  (16u << 20) /* bytes of a request body */
#define STOPS_MAX 16          /* stop strings of a request */
#define STOP_LEN  1024        /* bytes of one */

enum kind { COMPLETION, CHAT };
enum state { QUEUED, RUNNING, DONE };

/* One generation: what was asked (read-only once queued), then what came of it. The
 * fields below `state` are the server's lock's. */
typedef struct job {
    struct tool_server *sv;
    enum kind kind;
    bool stream, include_usage, ignore_eos;
    bool think; /* split the reply's reasoning from its content */
    int32_t *prompt;
    uint32_t n_prompt;
    eng_sampler *smp; /* made from the request's sampling fields when it is read */
    long max_tokens;  /* -1: to the end of the context */
    char *stops[STOPS_MAX];
    size_t n_stops;
    char id[48];
    long long created;
    atomic_bool cancelled; /* the client left, or the server stops */

    enum state state;
    struct job *next;
    cmp_buf out;     /* stream: the events written so far */
    size_t out_read; /* stream: what the connection has sent */
    /* the outcome, set by the worker before DONE */
    unsigned status; /* 0, or the HTTP status of a failure */
    char error[512];
    eng_think split; /* think: the reply's text so far between the two */
    cmp_buf content; /* the generated text (less the reasoning where think) */
    cmp_buf reasoning;
    const char *finish; /* "stop", "length" */
    uint32_t n_cached, n_gen;
    double prompt_ms, gen_ms;
} job;

struct tool_server {
    tool_server_opts o;
    char name[256];
    eng_model *m;
    eng_session *s;
    vkb_device *dev;
    const eng_vocab *v;
    uint32_t n_ctx, n_vocab;
    char eos[64]; /* the end-of-sequence token's text, for chat formats that write it */
    long long started;
    struct MHD_Daemon *daemon;
    uint16_t port;
    pthread_t worker;
    bool worker_running;

    pthread_mutex_t lock; /* guards the queue, every job's state and output, the counts */
    pthread_cond_t changed;
    job *head, *tail;
    uint32_t waiting;
    job *running;
    bool stopping;
    atomic_bool stop_flag; /* stopping, read without the lock */
    unsigned long long served, failed, cancelled, tokens_in, tokens_cached, tokens_out;

    /* the worker's: the tokens the session holds (n_past of them), and room for one more */
    int32_t *cached;
    uint32_t n_cached;
};

/* ---- answers ------------------------------------------------------------------------- */

static enum MHD_Result send_body(struct MHD_Connection *c, unsigned status, const char *type,
                                 char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body ? body : "", body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Sends o (deleted here). */
static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, cJSON *o)
{
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!s)
        return MHD_NO;
    return send_body(c, status, "application/json; charset=utf-8", s, strlen(s));
}

static const char *error_type(unsigned status)
{
    return status == 401   ? "authentication_error"
           : status == 404 ? "not_found_error"
           : status == 503 ? "unavailable_error"
           : status >= 500 ? "server_error"
                           : "invalid_request_error";
}

/* OpenAI's error object: {"error": {"code", "message", "type"}}. */
static cJSON *error_json(unsigned status, const char *message)
{
    cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddNumberToObject(e, "code", status);
    cJSON_AddStringToObject(e, "message", message);
    cJSON_AddStringToObject(e, "type", error_type(status));
    return o;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return send_json(c, status, error_json(status, msg));
}

/* ---- the worker ---------------------------------------------------------------------- */

/* Appends one server-sent event holding o (deleted here) to j's stream; the caller holds
 * the server's lock. */
static void add_event(job *j, cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (s)
        cmp_buf_printf(&j->out, "data: %s\n\n", s);
    else
        j->out.failed = true;
    free(s);
}

static void send_event(job *j, cJSON *o)
{
    pthread_mutex_lock(&j->sv->lock);
    add_event(j, o);
    pthread_cond_broadcast(&j->sv->changed);
    pthread_mutex_unlock(&j->sv->lock);
}

/* A response object's common part, with one choice whose object is returned in *choice. */
static cJSON *response(const job *j, const char *object, cJSON **choice)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", j->id);
    cJSON_AddStringToObject(o, "object", object);
    cJSON_AddNumberToObject(o, "created", (double)j->created);
    cJSON_AddStringToObject(o, "model", j->sv->name);
    cJSON_AddStringToObject(o, "system_fingerprint", "vkllm-" TOOL_VERSION);
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    if (choice) {
        *choice = cJSON_CreateObject();
        cJSON_AddItemToArray(choices, *choice);
        cJSON_AddNumberToObject(*choice, "index", 0);
    }
    return o;
}

/* The object name of j's streamed chunks. */
static const char *chunk_object(const job *j)
{
    return j->kind == CHAT ? "chat.completion.chunk" : "text_completion";
}

/* A streamed piece: text (NULL for none) as the delta's `field` (chat) or the choice's
 * text (completions), or the end with its finish reason. */
static void send_chunk(job *j, const char *field, const char *text, size_t len, const char *finish,
                       bool role)
{
    cJSON *choice, *o = response(j, chunk_object(j), &choice);
    char *t = malloc(len + 1);
    if (t) {
        memcpy(t, text ? text : "", len);
        t[len] = '\0';
    }
    if (j->kind == CHAT) {
        cJSON *d = cJSON_AddObjectToObject(choice, "delta");
        if (role)
            cJSON_AddStringToObject(d, "role", "assistant");
        if (text || role)
            cJSON_AddStringToObject(d, field, t ? t : "");
    } else {
        cJSON_AddStringToObject(choice, "text", t ? t : "");
    }
    free(t);
    cJSON_AddNullToObject(choice, "logprobs");
    if (finish)
        cJSON_AddStringToObject(choice, "finish_reason", finish);
    else
        cJSON_AddNullToObject(choice, "finish_reason");
    send_event(j, o);
}

static cJSON *usage_json(const job *j)
{
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", j->n_prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", j->n_gen);
    cJSON_AddNumberToObject(u, "total_tokens", (double)j->n_prompt + j->n_gen);
    cJSON *d = cJSON_AddObjectToObject(u, "prompt_tokens_details");
    cJSON_AddNumberToObject(d, "cached_tokens", j->n_cached);
    return u;
}

/* llama.cpp server's timings object: the prompt's tokens evaluated (not those reused from
 * the cache) and the tokens generated, each with its milliseconds and speed. */
static cJSON *timings_json(const job *j)
{
    cJSON *t = cJSON_CreateObject();
    uint32_t n = j->n_prompt - j->n_cached;
    cJSON_AddNumberToObject(t, "cache_n", j->n_cached);
    cJSON_AddNumberToObject(t, "prompt_n", n);
    cJSON_AddNumberToObject(t, "prompt_ms", j->prompt_ms);
    cJSON_AddNumberToObject(t, "prompt_per_second", j->prompt_ms > 0 ? n * 1e3 / j->prompt_ms : 0);
    cJSON_AddNumberToObject(t, "predicted_n", j->n_gen);
    cJSON_AddNumberToObject(t, "predicted_ms", j->gen_ms);
    cJSON_AddNumberToObject(t, "predicted_per_second",
                            j->gen_ms > 0 ? j->n_gen * 1e3 / j->gen_ms : 0);
    return t;
}

/* A generation in progress: the worker's state between eng_session_generate's calls. */
typedef struct gen {
    tool_server *sv;
    job *j;
    eng_textstream *text;
    bool generating; /* in eng_session_generate, whose sampler took the token */
    bool out_of_memory;
    uint32_t taken; /* tokens taken (the cache holds them after the prompt) */
    const char *finish;
} gen;

/* Takes text[0..n) of the reply, at its end (`end`) with what was held back: into the
 * content, or between the reasoning and the content, and streamed as it is known. false
 * when out of host memory. */
static bool add_text(job *j, const char *text, size_t n, bool end)
{
    size_t r0 = j->reasoning.n, c0 = j->content.n;
    bool ok;
    if (j->think) {
        ok = eng_think_add(&j->split, text, n, &j->reasoning, &j->content);
        ok = (!end || eng_think_finish(&j->split, &j->reasoning, &j->content)) && ok;
    } else {
        cmp_buf_add(&j->content, text, n);
        ok = !j->content.failed;
    }
    if (j->stream && j->reasoning.n > r0)
        send_chunk(j, "reasoning_content", j->reasoning.p + r0, j->reasoning.n - r0, NULL, false);
    if (j->stream && j->content.n > c0)
        send_chunk(j, "content", j->content.p + c0, j->content.n - c0, NULL, false);
    return ok;
}

/* Takes token t: into the cache's record, the text and the stream; false to stop (the end
 * of text, a stop string, the limit, the client gone). */
static bool take(void *user, int32_t t)
{
    gen *g = user;
    job *j = g->j;
    tool_server *sv = g->sv;
    if (atomic_load(&j->cancelled)) {
        g->finish = "cancelled";
        return false;
    }
    if (!g->generating)
        eng_sampler_accept(j->smp, t);
    sv->cached[j->n_prompt + g->taken++] = t;
    if (eng_vocab_is_eog(sv->v, t) && !j->ignore_eos) {
        g->finish = "stop";
        return false;
    }
    j->n_gen++;
    if (!eng_textstream_add_token(g->text, sv->v, t, false)) {
        g->out_of_memory = true;
        return false;
    }
    size_t n;
    const char *piece = eng_textstream_take(g->text, &n);
    if (!add_text(j, piece, n, false)) {
        g->out_of_memory = true;
        return false;
    }
    if (eng_textstream_stop(g->text) >= 0) {
        g->finish = "stop";
        return false;
    }
    if (j->max_tokens >= 0 && j->n_gen >= (unsigned long)j->max_tokens) {
        g->finish = "length";
        return false;
    }
    return true;
}

static void job_fail(job *j, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void job_fail(job *j, unsigned status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->error, sizeof j->error, fmt, ap);
    va_end(ap);
    j->status = status;
}

/* Generates j's answer; j->status is set on failure. */
static void generate(tool_server *sv, job *j, gen *g)
{
    eng_session *s = sv->s;
    double t0 = tool_now_s();
    /* the prompt cache: keep what the session holds of this prompt, less its last token,
     * whose logits the first pick needs */
    uint32_t common = 0;
    while (common < sv->n_cached && common < j->n_prompt && sv->cached[common] == j->prompt[common])
        common++;
    if (common == j->n_prompt)
        common--;
    sv->n_cached = eng_session_keep(s, common);
    j->n_cached = sv->n_cached;
    for (uint32_t i = 0; i < j->n_prompt; i++)
        eng_sampler_accept(j->smp, j->prompt[i]);
    if (eng_session_eval(s, j->prompt + j->n_cached, j->n_prompt - j->n_cached)) {
        job_fail(j, 500, "prefill: %s", eng_session_errmsg(s));
        return;
    }
    memcpy(sv->cached + j->n_cached, j->prompt + j->n_cached,
           sizeof *j->prompt * (j->n_prompt - j->n_cached));
    sv->n_cached = j->n_prompt;
    double t1 = tool_now_s();
    j->prompt_ms = (t1 - t0) * 1e3;
    if (j->stream && j->kind == CHAT)
        send_chunk(j, "content", NULL, 0, NULL, true);
    g->finish = "length";
    if (j->max_tokens != 0) {
        int32_t t = eng_session_sample(s, j->smp);
        if (t < 0) {
            job_fail(j, 500, "every logit is NaN or -inf: the model or the GPU produced garbage");
            return;
        }
        if (take(g, t)) {
            uint32_t max = j->max_tokens < 0 ? UINT32_MAX : (uint32_t)(j->max_tokens - j->n_gen);
            g->generating = true;
            g->finish = "length"; /* unless take says otherwise: the context is full */
            if (eng_session_generate(s, t, max, j->smp, take, g, NULL)) {
                job_fail(j, 500, "decode: %s", eng_session_errmsg(s));
                return;
            }
        }
    }
    j->gen_ms = (tool_now_s() - t1) * 1e3;
    if (g->out_of_memory || !eng_textstream_finish(g->text)) {
        job_fail(j, 500, "out of host memory");
        return;
    }
    size_t n;
    const char *rest = eng_textstream_take(g->text, &n);
    if (!add_text(j, rest, n, true)) {
        job_fail(j, 500, "out of host memory");
        return;
    }
    j->finish = g->finish;
}

static void run_job(tool_server *sv, job *j)
{
    gen g = {.sv = sv, .j = j};
    if (!(g.text = eng_textstream_create((const char *const *)j->stops, j->n_stops)))
        job_fail(j, 500, "out of host memory");
    else
        generate(sv, j, &g);
    if (!j->status && j->finish && !strcmp(j->finish, "cancelled"))
        job_fail(j, 503, "cancelled: %s",
                 atomic_load(&sv->stop_flag) ? "the server is stopping" : "the client left");
    /* the session holds the prompt and each token taken but the last */
    uint32_t n_past = eng_session_n_past(sv->s);
    if (j->status >= 500 && j->status != 503) {
        eng_session_reset(sv->s); /* a failed eval leaves it unknown */
        n_past = 0;
    }
    sv->n_cached = n_past;
    eng_textstream_destroy(g.text);
    if (j->stream && j->status) {
        send_event(j, error_json(j->status, j->error));
    } else if (j->stream) {
        send_chunk(j, "content", NULL, 0, j->finish, false);
        if (j->include_usage) {
            cJSON *o = response(j, chunk_object(j), NULL);
            cJSON_AddItemToObject(o, "usage", usage_json(j));
            cJSON_AddItemToObject(o, "timings", timings_json(j));
            send_event(j, o);
        }
        pthread_mutex_lock(&sv->lock);
        cmp_buf_add(&j->out, "data: [DONE]\n\n", 14);
        pthread_mutex_unlock(&sv->lock);
    }
    if (!sv->o.quiet) {
        if (j->status)
            fprintf(stderr, "serve: %s %s: failed (%u): %s\n", j->id,
                    j->kind == CHAT ? "chat" : "completion", j->status, j->error);
        else
            fprintf(stderr,
                    "serve: %s %s: %u prompt tokens (%u from the cache), %u generated "
                    "(%s); prefill %.1f ms, decode %.1f tokens/s\n",
                    j->id, j->kind == CHAT ? "chat" : "completion", j->n_prompt, j->n_cached,
                    j->n_gen, j->finish, j->prompt_ms,
                    j->gen_ms > 0 ? j->n_gen * 1e3 / j->gen_ms : 0.0);
    }
}

static void *worker_main(void *arg)
{
    tool_server *sv = arg;
    pthread_mutex_lock(&sv->lock);
    for (;;) {
        while (!sv->head && !sv->stopping)
            pthread_cond_wait(&sv->changed, &sv->lock);
        if (sv->stopping)
            break;
        job *j = sv->head;
        sv->head = j->next;
        if (!sv->head)
            sv->tail = NULL;
        sv->waiting--;
        j->state = RUNNING;
        sv->running = j;
        pthread_mutex_unlock(&sv->lock);
        run_job(sv, j);
        pthread_mutex_lock(&sv->lock);
        j->state = DONE;
        sv->running = NULL;
        if (j->finish && !strcmp(j->finish, "cancelled"))
            sv->cancelled++;
        else if (j->status)
            sv->failed++;
        else
            sv->served++;
        sv->tokens_in += j->n_prompt;
        sv->tokens_cached += j->n_cached;
        sv->tokens_out += j->n_gen;
        pthread_cond_broadcast(&sv->changed);
    }
    pthread_mutex_unlock(&sv->lock);
    return NULL;
}

/* ---- requests ------------------------------------------------------------------------ */

static void job_free(job *j)
{
    if (!j)
        return;
    free(j->prompt);
    eng_sampler_destroy(j->smp);
    for (size_t i = 0; i < j->n_stops; i++)
        free(j->stops[i]);
    free(j->out.p);
    eng_think_free(&j->split);
    free(j->content.p);
    free(j->reasoning.p);
    free(j);
}

/* The connection is done with j: out of the queue if it waits, stopped and waited for if
 * it runs, then freed. */
static void job_release(job *j)
{
    if (!j)
        return;
    tool_server *sv = j->sv;
    atomic_store(&j->cancelled, true);
    pthread_mutex_lock(&sv->lock);
    if (j->state == QUEUED) {
        job **p = &sv->head, *prev = NULL;
        while (*p && *p != j)
            prev = *p, p = &(*p)->next;
        if (*p) {
            *p = j->next;
            if (sv->tail == j)
                sv->tail = prev;
            sv->waiting--;
        }
        j->state = DONE;
    }
    while (j->state != DONE)
        pthread_cond_wait(&sv->changed, &sv->lock);
    pthread_mutex_unlock(&sv->lock);
    job_free(j);
}

/* Queues j; false when the queue is full or the server stops. */
static bool job_queue(tool_server *sv, job *j)
{
    pthread_mutex_lock(&sv->lock);
    bool ok = !sv->stopping && sv->waiting < sv->o.queue;
    if (ok) {
        j->state = QUEUED;
        if (sv->tail)
            sv->tail->next = j;
        else
            sv->head = j;
        sv->tail = j;
        sv->waiting++;
        pthread_cond_broadcast(&sv->changed);
    }
    pthread_mutex_unlock(&sv->lock);
    return ok;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    job *j = cls;
    tool_server *sv = j->sv;
    pthread_mutex_lock(&sv->lock);
    while (j->out_read == j->out.n && j->state != DONE)
        pthread_cond_wait(&sv->changed, &sv->lock);
    size_t n = j->out.n - j->out_read;
    n = n < max ? n : max;
    if (n)
        memcpy(buf, j->out.p + j->out_read, n);
    j->out_read += n;
    pthread_mutex_unlock(&sv->lock);
    return n ? (ssize_t)n : MHD_CONTENT_READER_END_OF_STREAM;
}

static void stream_free(void *cls)
{
    job_release(cls);
}

/* Checking a request: the first problem's HTTP status and message. */
typedef struct check {
    unsigned status;
    char msg[512];
} check;

static bool bad(check *ck, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool bad(check *ck, unsigned status, const char *fmt, ...)
{
    if (ck->status)
        return false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ck->msg, sizeof ck->msg, fmt, ap);
    va_end(ap);
    ck->status = status;
    return false;
}

/* A number field in [lo, hi] (absent or null: *out unchanged). */
static bool get_number(check *ck, const cJSON *req, const char *key, double lo, double hi,
                       double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, key);
    if (!v || cJSON_IsNull(v))
        return true;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi))
        return bad(ck, 400, "\"%s\" must be a number from %g to %g", key, lo, hi);
    *out = v->valuedouble;
    return true;
}

static bool get_float(check *ck, const cJSON *req, const char *key, double lo, double hi,
                      float *out)
{
    double d = *out;
    bool ok = get_number(ck, req, key, lo, hi, &d);
    *out = (float)d;
    return ok;
}

static bool get_int(check *ck, const cJSON *req, const char *key, double lo, double hi, long *out)
{
    double d = (double)*out;
    if (!get_number(ck, req, key, lo, hi, &d))
        return false;
    if (d != floor(d))
        return bad(ck, 400, "\"%s\" must be a whole number", key);
    *out = (long)d;
    return true;
}

static bool get_bool(check *ck, const cJSON *req, const char *key, bool *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, key);
    if (!v || cJSON_IsNull(v))
        return true;
    if (!cJSON_IsBool(v))
        return bad(ck, 400, "\"%s\" must be true or false", key);
    *out = cJSON_IsTrue(v);
    return true;
}

/* Fields of OpenAI's API this server does not do: refused when asked for, so that a
 * client never gets less than it asked without knowing. */
static bool refuse_unsupported(check *ck, const cJSON *req)
{
    static const struct {
        const char *key;
        double fine; /* the one number that asks for nothing */
    } numbers[] = {{"n", 1}, {"best_of", 1}, {"presence_penalty", 0}, {"frequency_penalty", 0}};
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, numbers[i].key);
        if (v && !cJSON_IsNull(v) && !(cJSON_IsNumber(v) && v->valuedouble == numbers[i].fine))
            return bad(ck, 400, "\"%s\" other than %g is not supported by vkllm serve",
                       numbers[i].key, numbers[i].fine);
    }
    static const char *const off[] = {"echo",  "logprobs",  "top_logprobs", "suffix",
                                      "tools", "functions", "logit_bias"};
    for (size_t i = 0; i < sizeof off / sizeof off[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, off[i]);
        bool asks = v && !cJSON_IsNull(v) && !cJSON_IsFalse(v) &&
                    !(cJSON_IsString(v) && !v->valuestring[0]) &&
                    !((cJSON_IsArray(v) || cJSON_IsObject(v)) && !v->child);
        if (asks)
            return bad(ck, 400, "\"%s\" is not supported by vkllm serve", off[i]);
    }
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(req, "response_format");
    const cJSON *type = rf ? cJSON_GetObjectItemCaseSensitive(rf, "type") : NULL;
    if (rf && !cJSON_IsNull(rf) && !(cJSON_IsString(type) && !strcmp(type->valuestring, "text")))
        return bad(ck, 400, "\"response_format\" other than text is not supported by vkllm serve");
    return true;
}

/* The sampling fields, over the server's defaults, into j's sampler. */
static bool read_sampling(tool_server *sv, check *ck, const cJSON *req, job *j)
{
    eng_sampler_params params = sv->o.sampling, *sp = &params;
    long top_k = sp->top_k, last_n = sp->repeat_last_n, seed = -1;
    if (!get_float(ck, req, "temperature", 0, 100, &sp->temperature) ||
        !get_float(ck, req, "top_p", 0, 1, &sp->top_p) ||
        !get_float(ck, req, "min_p", 0, 1, &sp->min_p) ||
        !get_float(ck, req, "repeat_penalty", 0, 100, &sp->repeat_penalty) ||
        !get_int(ck, req, "top_k", 0, INT32_MAX, &top_k) ||
        !get_int(ck, req, "repeat_last_n", 0, INT32_MAX, &last_n) ||
        !get_int(ck, req, "seed", -1, 9007199254740991.0, &seed))
        return false;
    sp->top_k = (int32_t)top_k;
    sp->repeat_last_n = (int32_t)last_n;
    if (seed >= 0)
        sp->seed = (uint64_t)seed;
    else if (!sv->o.seed_given)
        sp->seed = (uint64_t)time(NULL) ^ ((uint64_t)tool_now_s() << 20) ^ (uintptr_t)j;
    /* the session brings back its best logits: top-k fits in them */
    uint32_t best = sv->o.best_logits, need = eng_sampler_best_needed(sp);
    if (best && (need == 0 || need > best)) {
        if (sp->repeat_penalty < 1.0f)
            return bad(ck, 400,
                       "\"repeat_penalty\" below 1 raises tokens from anywhere, and this server "
                       "samples from the best %u logits (start it with --sample-max 0)",
                       best);
        uint32_t window = sp->repeat_penalty > 1.0f ? (uint32_t)sp->repeat_last_n : 0;
        if (window >= best)
            return bad(ck, 400,
                       "\"repeat_last_n\" %u with a penalty leaves no room in the best %u "
                       "logits this server samples from (start it with a larger --sample-max)",
                       window, best);
        sp->top_k = (int32_t)(best - window);
    }
    char err[200];
    if (!(j->smp = eng_sampler_create(sp, sv->n_vocab, err, sizeof err)))
        return bad(ck, 400, "sampling: %s", err);
    return true;
}

static bool read_stops(check *ck, const cJSON *req, job *j)
{
    const cJSON *stop = cJSON_GetObjectItemCaseSensitive(req, "stop");
    if (!stop || cJSON_IsNull(stop))
        return true;
    const cJSON *one = cJSON_IsString(stop) ? stop : NULL, *it;
    if (!one && !cJSON_IsArray(stop))
        return bad(ck, 400, "\"stop\" must be a string or an array of strings");
    if (!one && cJSON_GetArraySize(stop) > STOPS_MAX)
        return bad(ck, 400, "\"stop\" holds %d strings; vkllm takes at most %d",
                   cJSON_GetArraySize(stop), STOPS_MAX);
    for (it = one ? one : stop->child; it; it = one ? NULL : it->next) {
        if (!cJSON_IsString(it) || strlen(it->valuestring) > STOP_LEN)
            return bad(ck, 400, "\"stop\": each must be a string of at most %d bytes", STOP_LEN);
        if (!(j->stops[j->n_stops++] = strdup(it->valuestring)))
            return bad(ck, 500, "out of host memory");
    }
    return true;
}

/* The array of token ids `a` (the field `key`) into a new *ids, *n of them. */
static bool read_ids(tool_server *sv, check *ck, const char *key, const cJSON *a, int32_t **ids,
                     uint32_t *n)
{
    if (!cJSON_IsArray(a))
        return bad(ck, 400, "\"%s\" must be an array of token ids", key);
    int size = cJSON_GetArraySize(a);
    if (!(*ids = malloc(sizeof **ids * (size_t)(size ? size : 1))))
        return bad(ck, 500, "out of host memory");
    const cJSON *it;
    cJSON_ArrayForEach(it, a)
    {
        double id = cJSON_IsNumber(it) ? it->valuedouble : -1;
        if (!(id >= 0 && id < sv->n_vocab && id == floor(id)))
            return bad(ck, 400, "\"%s\": token %u is not an id of the vocabulary (0 to %u)", key,
                       *n, sv->n_vocab - 1);
        (*ids)[(*n)++] = (int32_t)id;
    }
    return true;
}

/* "prompt": a string, token ids, or an array holding one of them. */
static bool read_prompt(tool_server *sv, check *ck, const cJSON *req, job *j)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(req, "prompt");
    if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 1 &&
        (cJSON_IsString(p->child) || cJSON_IsArray(p->child)))
        p = p->child;
    if (cJSON_IsString(p)) {
        int64_t n;
        j->prompt = tool_tokenize(sv->v, p->valuestring, strlen(p->valuestring), true, true, 0, &n);
        if (!j->prompt)
            return bad(ck, 500, "out of host memory");
        j->n_prompt = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
        return true;
    }
    if (!cJSON_IsArray(p) || (p->child && !cJSON_IsNumber(p->child)))
        return bad(ck, 400,
                   "\"prompt\" must be a string or an array of token ids (one prompt per "
                   "request)");
    return read_ids(sv, ck, "prompt", p, &j->prompt, &j->n_prompt);
}

/* A message's content: a string, or the texts of an array of parts (no images). */
static bool message_text(check *ck, const cJSON *content, int index, cmp_buf *out)
{
    if (cJSON_IsString(content)) {
        cmp_buf_add(out, content->valuestring, strlen(content->valuestring));
        return true;
    }
    if (cJSON_IsNull(content) || !content)
        return true;
    if (!cJSON_IsArray(content))
        return bad(ck, 400, "\"messages\"[%d].content must be a string or an array of parts",
                   index);
    const cJSON *part;
    cJSON_ArrayForEach(part, content)
    {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "text") != 0 ||
            !cJSON_IsString(text))
            return bad(ck, 400,
                       "\"messages\"[%d]: only text parts are supported (vkllm runs text "
                       "models)",
                       index);
        cmp_buf_add(out, text->valuestring, strlen(text->valuestring));
    }
    return true;
}

bool tool_reasoning_parse(const char *name, tool_reasoning *out)
{
    static const char *const names[] = {"auto", "none", "deepseek"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = (tool_reasoning)i;
            return true;
        }
    }
    return false;
}

/* reasoning_format (llama.cpp's field), over the server's default: whether j's reply is
 * split into reasoning_content and content, and where it starts. tmpl[0..tlen): the
 * model's chat template; prompt[0..len): the conversation written out. */
static bool read_reasoning(tool_server *sv, check *ck, const cJSON *req, eng_chat_style style,
                           const char *tmpl, size_t tlen, const char *prompt, size_t len, job *j)
{
    tool_reasoning r = sv->o.reasoning;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, "reasoning_format");
    if (v && !cJSON_IsNull(v) && !(cJSON_IsString(v) && tool_reasoning_parse(v->valuestring, &r)))
        return bad(ck, 400, "\"reasoning_format\" must be \"auto\", \"none\" or \"deepseek\"");
    j->think = r == TOOL_REASONING_DEEPSEEK ||
               (r == TOOL_REASONING_AUTO &&
                (style == ENG_CHAT_DEEPSEEK_R1 || eng_chat_template_thinks(tmpl, tlen)));
    eng_think_init(&j->split, j->think && eng_think_opened(prompt, len));
    return true;
}

/* "messages" written out in the chat format and tokenized. */
static bool read_messages(tool_server *sv, check *ck, const cJSON *req, job *j)
{
    if (sv->o.chat_style == ENG_CHAT_NONE)
        return bad(ck, 400,
                   "this model's file names no chat format vkllm knows: start the server with "
                   "--chat-template NAME (%s), or use /v1/completions",
                   eng_chat_style_list());
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(req, "messages");
    int n = cJSON_IsArray(msgs) ? cJSON_GetArraySize(msgs) : 0;
    if (n == 0)
        return bad(ck, 400, "\"messages\" must be a non-empty array");
    /* chat_template_kwargs.enable_thinking (vLLM's and llama.cpp's): false turns Qwen3's
     * thinking off where the model's template has the switch; other keys, as a template
     * that does not read them */
    const cJSON *kw = cJSON_GetObjectItemCaseSensitive(req, "chat_template_kwargs");
    const cJSON *think = cJSON_GetObjectItemCaseSensitive(kw, "enable_thinking");
    if ((kw && !cJSON_IsObject(kw) && !cJSON_IsNull(kw)) || (think && !cJSON_IsBool(think)))
        return bad(ck, 400,
                   "\"chat_template_kwargs\" must be an object, its \"enable_thinking\" true or "
                   "false");
    size_t tlen;
    const char *tmpl = eng_model_chat_template(sv->m, &tlen);
    eng_chat_style style =
        eng_chat_thinking(sv->o.chat_style, tmpl, tlen, !think || cJSON_IsTrue(think));
    eng_chat_msg *m = calloc((size_t)n, sizeof *m);
    cmp_buf *texts = calloc((size_t)n, sizeof *texts);
    char *out = NULL;
    bool ok = m && texts;
    if (!ok)
        bad(ck, 500, "out of host memory");
    int i = 0;
    const cJSON *msg;
    cJSON_ArrayForEach(msg, msgs)
    {
        if (!ok)
            break;
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(msg, "role");
        const char *r = cJSON_IsString(role) ? role->valuestring : "";
        if (!strcmp(r, "system") || !strcmp(r, "developer"))
            m[i].role = ENG_CHAT_SYSTEM;
        else if (!strcmp(r, "user"))
            m[i].role = ENG_CHAT_USER;
        else if (!strcmp(r, "assistant"))
            m[i].role = ENG_CHAT_ASSISTANT;
        else
            ok = bad(ck, 400, "\"messages\"[%d].role must be system, developer, user or assistant",
                     i);
        ok = ok && message_text(ck, cJSON_GetObjectItemCaseSensitive(msg, "content"), i, &texts[i]);
        cmp_buf_add(&texts[i], "", 0);
        if (ok && texts[i].failed)
            ok = bad(ck, 500, "out of host memory");
        m[i].text = texts[i].p;
        i++;
    }
    if (ok) {
        size_t len = eng_chat_format(style, sv->eos, m, (size_t)n, true, NULL, 0);
        if (!(out = malloc(len + 1)))
            ok = bad(ck, 500, "out of host memory");
        else
            eng_chat_format(style, sv->eos, m, (size_t)n, true, out, len + 1);
        ok = ok && read_reasoning(sv, ck, req, style, tmpl, tlen, out, len, j);
        int64_t nt;
        if (ok && !(j->prompt = tool_tokenize(sv->v, out, len, true, true, 0, &nt)))
            ok = bad(ck, 500, "out of host memory");
        if (ok)
            j->n_prompt = nt > UINT32_MAX ? UINT32_MAX : (uint32_t)nt;
    }
    for (int k = 0; texts && k < n; k++)
        free(texts[k].p);
    free(texts);
    free(m);
    free(out);
    return ok;
}

/* The body as a JSON object; NULL with the problem in ck. */
static cJSON *read_object(check *ck, const cmp_buf *body)
{
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(body->p ? body->p : "", body->n, &end, false);
    if (!o)
        bad(ck, 400, "the body is not JSON (a problem at byte %ld)",
            end && body->p ? (long)(end - body->p) : 0L);
    else if (!cJSON_IsObject(o))
        bad(ck, 400, "the body must be a JSON object");
    if (ck->status) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* Reads a generation request into a new job; NULL with the problem in ck. */
static job *read_request(tool_server *sv, enum kind kind, const cmp_buf *body, check *ck)
{
    cJSON *req = read_object(ck, body);
    job *j = calloc(1, sizeof *j);
    if (!j) {
        bad(ck, 500, "out of host memory");
        cJSON_Delete(req);
        return NULL;
    }
    j->sv = sv;
    j->kind = kind;
    j->max_tokens = -1;
    if (req && refuse_unsupported(ck, req) && read_sampling(sv, ck, req, j) &&
        read_stops(ck, req, j) && get_bool(ck, req, "stream", &j->stream) &&
        get_bool(ck, req, "ignore_eos", &j->ignore_eos) &&
        (kind == CHAT ? read_messages(sv, ck, req, j) : read_prompt(sv, ck, req, j))) {
        static const char *const limits[] = {"max_tokens", "max_completion_tokens", "n_predict"};
        for (int i = 0; i < 3; i++)
            get_int(ck, req, limits[i], -1, INT32_MAX, &j->max_tokens);
        const cJSON *so = cJSON_GetObjectItemCaseSensitive(req, "stream_options");
        if (so && !cJSON_IsNull(so))
            get_bool(ck, so, "include_usage", &j->include_usage);
    }
    cJSON_Delete(req);
    if (!ck->status && j->n_prompt == 0)
        bad(ck, 400, "the prompt is empty and the model adds no BOS token");
    if (!ck->status && j->n_prompt >= sv->n_ctx)
        bad(ck, 400,
            "the prompt is %u tokens and the context holds %u: shorten it, or start the server "
            "with a larger --ctx",
            j->n_prompt, sv->n_ctx);
    if (ck->status) {
        job_free(j);
        return NULL;
    }
    if (sv->o.n_predict >= 0 && (j->max_tokens < 0 || j->max_tokens > sv->o.n_predict))
        j->max_tokens = sv->o.n_predict;
    static atomic_uint serial;
    j->created = (long long)time(NULL);
    snprintf(j->id, sizeof j->id, "%s-%llx%04x", kind == CHAT ? "chatcmpl" : "cmpl",
             (unsigned long long)j->created, atomic_fetch_add(&serial, 1) & 0xffffu);
    return j;
}

static enum MHD_Result generation(tool_server *sv, struct MHD_Connection *c, enum kind kind,
                                  const cmp_buf *body)
{
    check ck = {0};
    job *j = read_request(sv, kind, body, &ck);
    if (!j) {
        if (!sv->o.quiet)
            fprintf(stderr, "serve: a %s request refused (%u): %s\n",
                    kind == CHAT ? "chat" : "completion", ck.status, ck.msg);
        return send_error(c, ck.status, "%s", ck.msg);
    }
    if (!job_queue(sv, j)) {
        job_free(j);
        return send_error(c, 503, "the server is busy (%u requests wait) or stopping; try again",
                          sv->o.queue);
    }
    if (j->stream) {
        struct MHD_Response *r =
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, j, stream_free);
        if (!r) {
            job_release(j);
            return MHD_NO;
        }
        MHD_add_response_header(r, "Content-Type", "text/event-stream");
        MHD_add_response_header(r, "Cache-Control", "no-cache");
        MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
        enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
        MHD_destroy_response(r); /* the response (and stream_free) owns j now */
        return ret;
    }
    pthread_mutex_lock(&sv->lock);
    while (j->state != DONE)
        pthread_cond_wait(&sv->changed, &sv->lock);
    pthread_mutex_unlock(&sv->lock);
    enum MHD_Result ret;
    if (j->status) {
        ret = send_error(c, j->status, "%s", j->error);
    } else {
        cJSON *choice,
            *o = response(j, kind == CHAT ? "chat.completion" : "text_completion", &choice);
        if (kind == CHAT) {
            cJSON *m = cJSON_AddObjectToObject(choice, "message");
            cJSON_AddStringToObject(m, "role", "assistant");
            cJSON_AddStringToObject(m, "content", j->content.p ? j->content.p : "");
            if (j->reasoning.n)
                cJSON_AddStringToObject(m, "reasoning_content", j->reasoning.p);
        } else {
            cJSON_AddStringToObject(choice, "text", j->content.p ? j->content.p : "");
        }
        cJSON_AddNullToObject(choice, "logprobs");
        cJSON_AddStringToObject(choice, "finish_reason", j->finish);
        cJSON_AddItemToObject(o, "usage", usage_json(j));
        cJSON_AddItemToObject(o, "timings", timings_json(j));
        ret = send_json(c, MHD_HTTP_OK, o);
    }
    job_release(j);
    return ret;
}

/* o, or the error in ck (o deleted then). */
static enum MHD_Result send_result(struct MHD_Connection *c, const check *ck, cJSON *o)
{
    if (!ck->status && o)
        return send_json(c, MHD_HTTP_OK, o);
    cJSON_Delete(o);
    return send_error(c, ck->status ? ck->status : 500, "%s",
                      ck->status ? ck->msg : "out of host memory");
}

/* POST /tokenize {"content", "add_special", "parse_special"}, as llama.cpp's server has it:
 * {"tokens": [...]}. */
static enum MHD_Result tokenize(tool_server *sv, struct MHD_Connection *c, const cmp_buf *body)
{
    check ck = {0};
    cJSON *req = read_object(&ck, body), *o = NULL;
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(req, "content");
    bool add = false, parse = true;
    if (req && !cJSON_IsString(content))
        bad(&ck, 400, "\"content\" must be a string");
    else if (req && get_bool(&ck, req, "add_special", &add) &&
             get_bool(&ck, req, "parse_special", &parse)) {
        int64_t n;
        int32_t *ids = tool_tokenize(sv->v, content->valuestring, strlen(content->valuestring), add,
                                     parse, 0, &n);
        if (ids) {
            o = cJSON_CreateObject();
            cJSON *a = cJSON_AddArrayToObject(o, "tokens");
            for (int64_t i = 0; i < n; i++)
                cJSON_AddItemToArray(a, cJSON_CreateNumber(ids[i]));
        }
        free(ids);
    }
    cJSON_Delete(req);
    return send_result(c, &ck, o);
}

/* POST /detokenize {"tokens": [...]}: {"content"}, the pieces joined as valid UTF-8. */
static enum MHD_Result detokenize(tool_server *sv, struct MHD_Connection *c, const cmp_buf *body)
{
    check ck = {0};
    cJSON *req = read_object(&ck, body), *o = NULL;
    int32_t *ids = NULL;
    uint32_t n = 0;
    eng_textstream *t = NULL;
    if (req &&
        read_ids(sv, &ck, "tokens", cJSON_GetObjectItemCaseSensitive(req, "tokens"), &ids, &n)) {
        bool ok = (t = eng_textstream_create(NULL, 0)) != NULL;
        for (uint32_t i = 0; ok && i < n; i++)
            ok = eng_textstream_add_token(t, sv->v, ids[i], true);
        size_t len;
        if (ok && eng_textstream_finish(t)) {
            o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "content", eng_textstream_text(t, &len));
        }
    }
    eng_textstream_destroy(t);
    free(ids);
    cJSON_Delete(req);
    return send_result(c, &ck, o);
}

static enum MHD_Result models(tool_server *sv, struct MHD_Connection *c)
{
    const eng_hparams *hp = eng_model_hparams(sv->m);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(o, "data"), *m = cJSON_CreateObject();
    cJSON_AddItemToArray(data, m);
    cJSON_AddStringToObject(m, "id", sv->name);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)sv->started);
    cJSON_AddStringToObject(m, "owned_by", "vkllm");
    cJSON *meta = cJSON_AddObjectToObject(m, "meta");
    cJSON_AddStringToObject(meta, "architecture", hp->arch_name);
    cJSON_AddStringToObject(meta, "type", eng_model_type_name(sv->m));
    cJSON_AddNumberToObject(meta, "n_params", (double)eng_model_param_count(sv->m));
    cJSON_AddNumberToObject(meta, "size", (double)eng_model_weight_bytes(sv->m));
    cJSON_AddNumberToObject(meta, "n_vocab", sv->n_vocab);
    cJSON_AddNumberToObject(meta, "n_ctx", sv->n_ctx);
    cJSON_AddNumberToObject(meta, "n_ctx_train", hp->n_ctx_train);
    cJSON_AddStringToObject(meta, "chat_template", eng_chat_style_name(sv->o.chat_style));
    cJSON_AddStringToObject(meta, "device", vkb_device_get_info(sv->dev)->name);
    return send_json(c, MHD_HTTP_OK, o);
}

/* The engine's and device's metrics, and the server's own. */
static enum MHD_Result metrics(tool_server *sv, struct MHD_Connection *c)
{
    size_t len;
    char *engine = tool_metrics_render(sv->dev, sv->s, &len);
    cmp_buf t = {0};
    if (engine)
        cmp_buf_add(&t, engine, len);
    free(engine);
    pthread_mutex_lock(&sv->lock);
    cmp_buf_printf(&t,
                   "# HELP vkllm_requests_total Generation requests answered, by outcome.\n"
                   "# TYPE vkllm_requests_total counter\n"
                   "vkllm_requests_total{outcome=\"ok\"} %llu\n"
                   "vkllm_requests_total{outcome=\"failed\"} %llu\n"
                   "vkllm_requests_total{outcome=\"cancelled\"} %llu\n"
                   "# HELP vkllm_requests_waiting Requests queued behind the running one.\n"
                   "# TYPE vkllm_requests_waiting gauge\nvkllm_requests_waiting %u\n"
                   "# HELP vkllm_requests_running Requests generating now (0 or 1).\n"
                   "# TYPE vkllm_requests_running gauge\nvkllm_requests_running %d\n"
                   "# HELP vkllm_request_tokens_total Tokens of answered requests, by kind.\n"
                   "# TYPE vkllm_request_tokens_total counter\n"
                   "vkllm_request_tokens_total{kind=\"prompt\"} %llu\n"
                   "vkllm_request_tokens_total{kind=\"prompt_cached\"} %llu\n"
                   "vkllm_request_tokens_total{kind=\"generated\"} %llu\n",
                   sv->served, sv->failed, sv->cancelled, sv->waiting, sv->running != NULL,
                   sv->tokens_in, sv->tokens_cached, sv->tokens_out);
    pthread_mutex_unlock(&sv->lock);
    if (!engine || t.failed) {
        free(t.p);
        return send_error(c, 500, "out of host memory");
    }
    return send_body(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", t.p, t.n);
}

/* Whether the request carries the key (where the server has one). */
static bool authorized(tool_server *sv, struct MHD_Connection *c)
{
    if (!sv->o.api_key)
        return true;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    return h && strncmp(h, "Bearer ", 7) == 0 && strcmp(h + 7, sv->o.api_key) == 0;
}

/* The body read so far (connection threads' state between calls). */
typedef struct upload {
    cmp_buf body;
    bool too_large;
} upload;

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *data_size, void **state)
{
    (void)version;
    tool_server *sv = cls;
    upload *up = *state;
    if (!up) {
        if (!(*state = up = calloc(1, sizeof *up)))
            return MHD_NO;
        return MHD_YES;
    }
    if (*data_size) {
        if (up->body.n + *data_size > BODY_MAX)
            up->too_large = true;
        else
            cmp_buf_add(&up->body, data, *data_size);
        *data_size = 0;
        return MHD_YES;
    }
    bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
    if (!strcmp(method, "OPTIONS")) { /* a browser's preflight */
        struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
        if (!r)
            return MHD_NO;
        MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
        MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
        MHD_add_response_header(r, "Access-Control-Allow-Headers", "Content-Type, Authorization");
        enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_NO_CONTENT, r);
        MHD_destroy_response(r);
        return ret;
    }
    const char *path = strncmp(url, "/v1/", 4) ? url : url + 3; /* /v1/models and /models */
    if (!strcmp(path, "/health"))
        return get ? send_json(c, MHD_HTTP_OK, cJSON_Parse("{\"status\":\"ok\"}"))
                   : send_error(c, 405, "GET %s", url);
    if (!authorized(sv, c))
        return send_error(c, 401, "a valid API key is needed: Authorization: Bearer KEY");
    if (up->too_large || up->body.failed)
        return send_error(c, 413, "the body is larger than %u bytes", BODY_MAX);
    static const struct {
        const char *path;
        bool post;
    } routes[] = {{"/models", false},          {"/metrics", false}, {"/completions", true},
                  {"/chat/completions", true}, {"/tokenize", true}, {"/detokenize", true}};
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (strcmp(path, routes[i].path) != 0)
            continue;
        if (routes[i].post ? !post : !get)
            return send_error(c, 405, "%s takes %s", url, routes[i].post ? "POST" : "GET");
        switch (i) {
        case 0: return models(sv, c);
        case 1: return metrics(sv, c);
        case 2: return generation(sv, c, COMPLETION, &up->body);
        case 3: return generation(sv, c, CHAT, &up->body);
        case 4: return tokenize(sv, c, &up->body);
        default: return detokenize(sv, c, &up->body);
        }
    }
    return send_error(c, 404,
                      "no such endpoint: %s %s (vkllm serves /v1/completions, "
                      "/v1/chat/completions, /v1/models, /tokenize, /detokenize, /health, "
                      "/metrics)",
                      method, url);
}

/* libmicrohttpd's messages (a client gone mid-answer, ...), one line each. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    tool_server *sv = cls;
    if (sv->o.quiet)
        return;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = '\0';
    fprintf(stderr, "serve: libmicrohttpd: %s\n", msg);
}

static void completed(void *cls, struct MHD_Connection *c, void **state,
                      enum MHD_RequestTerminationCode why)
{
    (void)cls, (void)c, (void)why;
    upload *up = *state;
    if (up)
        free(up->body.p);
    free(up);
    *state = NULL;
}

/* ---- the server ---------------------------------------------------------------------- */

tool_server *tool_server_start(const tool_server_opts *opts, eng_model *m, eng_session *s,
                               vkb_device *dev, char *err, size_t err_size)
{
    tool_server *sv = calloc(1, sizeof *sv);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(opts->port)};
    if (!sv) {
        snprintf(err, err_size, "out of host memory");
        return NULL;
    }
    if (inet_pton(AF_INET, opts->host, &addr.sin_addr) != 1) {
        snprintf(err, err_size, "--host %s is not an IPv4 address", opts->host);
        free(sv);
        return NULL;
    }
    sv->o = *opts;
    snprintf(sv->name, sizeof sv->name, "%s", opts->name);
    sv->o.name = sv->name;
    sv->m = m, sv->s = s, sv->dev = dev;
    sv->v = eng_model_vocab(m);
    sv->n_ctx = eng_session_n_ctx(s);
    sv->n_vocab = eng_model_hparams(m)->n_vocab;
    sv->started = (long long)time(NULL);
    int32_t eos = eng_vocab_eos(sv->v);
    size_t n = eos >= 0 ? eng_token_piece(sv->v, eos, true, sv->eos, sizeof sv->eos) : 0;
    if (n == 0 || n >= sizeof sv->eos)
        snprintf(sv->eos, sizeof sv->eos, "</s>");
    pthread_mutex_init(&sv->lock, NULL);
    pthread_cond_init(&sv->changed, NULL);
    eng_session_reset(s);
    if (!(sv->cached = malloc(sizeof *sv->cached * ((size_t)sv->n_ctx + 1)))) {
        snprintf(err, err_size, "out of host memory");
        goto fail;
    }
    if (pthread_create(&sv->worker, NULL, worker_main, sv) != 0) {
        snprintf(err, err_size, "cannot start the worker thread");
        goto fail;
    }
    sv->worker_running = true;
    sv->daemon = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
        opts->port, NULL, NULL, answer, sv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, sv,
        MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_NOTIFY_COMPLETED, completed, sv,
        MHD_OPTION_CONNECTION_LIMIT, 256u, MHD_OPTION_END);
    if (!sv->daemon) {
        snprintf(err, err_size, "cannot listen on %s:%u (in use, or not this machine's address?)",
                 opts->host, opts->port);
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(sv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    sv->port = di ? di->port : opts->port;
    return sv;
fail:
    tool_server_stop(sv);
    return NULL;
}

uint16_t tool_server_port(const tool_server *sv)
{
    return sv->port;
}

void tool_server_stop(tool_server *sv)
{
    if (!sv)
        return;
    pthread_mutex_lock(&sv->lock);
    sv->stopping = true;
    atomic_store(&sv->stop_flag, true);
    if (sv->running)
        atomic_store(&sv->running->cancelled, true);
    for (job *j = sv->head; j; j = j->next) { /* the waiting: answered 503 */
        j->state = DONE;
        j->status = 503;
        snprintf(j->error, sizeof j->error, "the server is stopping");
        if (j->stream)
            add_event(j, error_json(j->status, j->error));
    }
    sv->head = sv->tail = NULL;
    sv->waiting = 0;
    pthread_cond_broadcast(&sv->changed);
    pthread_mutex_unlock(&sv->lock);
    if (sv->worker_running)
        pthread_join(sv->worker, NULL);
    if (sv->daemon)
        MHD_stop_daemon(sv->daemon);
    pthread_cond_destroy(&sv->changed);
    pthread_mutex_destroy(&sv->lock);
    free(sv->cached);
    free(sv);
}
