/* The metrics endpoint: the engine's statistics in the Prometheus text format over HTTP
 * (libmicrohttpd, its own thread), read as copies while the model runs. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "tool.h"

struct tool_metrics {
    struct MHD_Daemon *daemon;
    pthread_mutex_t lock; /* guards session and model */
    eng_session *session;
    const eng_model *model;
    vkb_device *dev;
    uint16_t port;
};

/* A label value with \, " and newlines escaped, as the text format wants. */
static const char *esc(const char *s, char *buf, size_t size)
{
    size_t o = 0;
    for (; *s && o + 3 < size; s++) {
        if (*s == '\\' || *s == '"')
            buf[o++] = '\\', buf[o++] = *s;
        else if (*s == '\n')
            buf[o++] = '\\', buf[o++] = 'n';
        else
            buf[o++] = *s;
    }
    buf[o] = '\0';
    return buf;
}

static void help(cmp_buf *t, const char *name, const char *type, const char *what)
{
    cmp_buf_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, what, name, type);
}

/* The device's identity and memory, then (st not NULL) the session's statistics. */
static void render(vkb_device *dev, const eng_stats *st, cmp_buf *t)
{
    char e1[300], e2[300], e3[300];
    const vkb_device_info *info = vkb_device_get_info(dev);
    help(t, "vkllm_device_info", "gauge", "The device the model runs on (value 1).");
    cmp_buf_printf(t,
                   "vkllm_device_info{name=\"%s\",vendor=\"%s\",driver=\"%s\",type=\"%s\","
                   "api=\"%u.%u.%u\"} 1\n",
                   esc(info->name, e1, sizeof e1), esc(info->vendor_name, e2, sizeof e2),
                   esc(info->driver_name, e3, sizeof e3), vkb_device_type_name(info->type),
                   info->api_version >> 22, (info->api_version >> 12) & 0x3ffu,
                   info->api_version & 0xfffu);

    vkb_memory_stats ms;
    vkb_device_memory_stats(dev, &ms);
    static const char *purposes[VKB_PURPOSE_COUNT] = {"weights", "kv", "scratch", "staging"};
    help(t, "vkllm_memory_bytes", "gauge", "Device memory vkllm holds, by purpose.");
    for (int p = 0; p < VKB_PURPOSE_COUNT; p++)
        cmp_buf_printf(t, "vkllm_memory_bytes{purpose=\"%s\"} %llu\n", purposes[p],
                       (unsigned long long)ms.by_purpose[p]);
    help(t, "vkllm_memory_peak_bytes", "gauge", "The most device memory vkllm held at once.");
    cmp_buf_printf(t, "vkllm_memory_peak_bytes %llu\n", (unsigned long long)ms.peak_allocated);
    help(t, "vkllm_heap_size_bytes", "gauge", "Size of each memory heap.");
    for (uint32_t h = 0; h < ms.heap_count; h++)
        cmp_buf_printf(t, "vkllm_heap_size_bytes{heap=\"%u\"} %llu\n", h,
                       (unsigned long long)ms.heaps[h].size);
    help(t, "vkllm_heap_device_local", "gauge", "1 for a device-local heap (VRAM), else 0.");
    for (uint32_t h = 0; h < ms.heap_count && h < info->heap_count; h++)
        cmp_buf_printf(t, "vkllm_heap_device_local{heap=\"%u\"} %d\n", h,
                       info->heaps[h].device_local ? 1 : 0);
    help(t, "vkllm_heap_allocated_bytes", "gauge", "Memory vkllm holds on each heap.");
    for (uint32_t h = 0; h < ms.heap_count; h++)
        cmp_buf_printf(t, "vkllm_heap_allocated_bytes{heap=\"%u\"} %llu\n", h,
                       (unsigned long long)ms.heaps[h].allocated);
    help(t, "vkllm_heap_budget_bytes", "gauge",
         "Memory budget of each heap; source: driver (VK_EXT_memory_budget) or vkllm (its own "
         "accounting).");
    for (uint32_t h = 0; h < ms.heap_count; h++)
        cmp_buf_printf(t, "vkllm_heap_budget_bytes{heap=\"%u\",source=\"%s\"} %llu\n", h,
                       ms.heaps[h].budget_from_driver ? "driver" : "vkllm",
                       (unsigned long long)ms.heaps[h].budget);
    help(t, "vkllm_heap_usage_bytes", "gauge",
         "Memory in use on each heap (all processes where "
         "the driver reports it).");
    for (uint32_t h = 0; h < ms.heap_count; h++)
        cmp_buf_printf(t, "vkllm_heap_usage_bytes{heap=\"%u\",source=\"%s\"} %llu\n", h,
                       ms.heaps[h].budget_from_driver ? "driver" : "vkllm",
                       (unsigned long long)ms.heaps[h].usage);

    if (!st)
        return;
    help(t, "vkllm_tokens_total", "counter", "Tokens evaluated, by phase.");
    cmp_buf_printf(t, "vkllm_tokens_total{phase=\"prefill\"} %llu\n",
                   (unsigned long long)st->prefill_tokens);
    cmp_buf_printf(t, "vkllm_tokens_total{phase=\"decode\"} %llu\n",
                   (unsigned long long)st->decode_tokens);
    help(t, "vkllm_eval_seconds_total", "counter", "Wall time spent evaluating, by phase.");
    cmp_buf_printf(t, "vkllm_eval_seconds_total{phase=\"prefill\"} %.6f\n", st->prefill_seconds);
    cmp_buf_printf(t, "vkllm_eval_seconds_total{phase=\"decode\"} %.6f\n", st->decode_seconds);
    help(t, "vkllm_tokens_per_second", "gauge", "Speed of the last evaluation of each phase.");
    cmp_buf_printf(t, "vkllm_tokens_per_second{phase=\"prefill\"} %.3f\n", st->last_prefill_tps);
    cmp_buf_printf(t, "vkllm_tokens_per_second{phase=\"decode\"} %.3f\n", st->last_decode_tps);
    help(t, "vkllm_kv_cache_tokens", "gauge", "Positions the KV cache holds now.");
    cmp_buf_printf(t, "vkllm_kv_cache_tokens %u\n", st->kv.tokens);
    help(t, "vkllm_kv_cache_capacity_tokens", "gauge", "Positions the KV cache can hold.");
    cmp_buf_printf(t, "vkllm_kv_cache_capacity_tokens %u\n", st->kv.capacity);
    help(t, "vkllm_kv_cache_bytes", "gauge", "Device bytes of the KV cache.");
    cmp_buf_printf(t, "vkllm_kv_cache_bytes %llu\n", (unsigned long long)st->kv.bytes);
    help(t, "vkllm_kv_cache_bits_per_value", "gauge",
         "Bits per cached value, scales included; the types are labels.");
    cmp_buf_printf(t, "vkllm_kv_cache_bits_per_value{key_type=\"%s\",value_type=\"%s\"} %.3f\n",
                   eng_kv_type_name(st->kv.k), eng_kv_type_name(st->kv.v), st->kv.bits_per_value);
    help(t, "vkllm_decode_steps_reused_total", "counter",
         "Decode steps that submitted a recording made for an earlier step.");
    cmp_buf_printf(t, "vkllm_decode_steps_reused_total %llu\n",
                   (unsigned long long)st->decode_steps_reused);
    help(t, "vkllm_step_gpu_seconds", "gauge", "GPU time of the last step (timestamps).");
    cmp_buf_printf(t, "vkllm_step_gpu_seconds %.9f\n", st->last_step_gpu_ms / 1e3);
    if (st->op_count) {
        help(t, "vkllm_op_gpu_seconds", "gauge", "GPU time of each op in the last step.");
        for (uint32_t i = 0; i < st->op_count; i++)
            cmp_buf_printf(t, "vkllm_op_gpu_seconds{op=\"%s\"} %.9f\n",
                           esc(st->ops[i].name, e1, sizeof e1), st->ops[i].ms / 1e3);
        help(t, "vkllm_op_dispatches", "gauge", "Dispatches of each op in the last step.");
        for (uint32_t i = 0; i < st->op_count; i++)
            cmp_buf_printf(t, "vkllm_op_dispatches{op=\"%s\"} %u\n",
                           esc(st->ops[i].name, e1, sizeof e1), st->ops[i].calls);
    }
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **state)
{
    (void)version, (void)upload, (void)upload_size, (void)state;
    tool_metrics *m = cls;
    struct MHD_Response *r;
    unsigned status = MHD_HTTP_OK;
    cmp_buf t = {0};
    if (strcmp(method, "GET") != 0) {
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
        cmp_buf_printf(&t, "only GET\n");
    } else if (strcmp(url, "/metrics") != 0) {
        status = MHD_HTTP_NOT_FOUND;
        cmp_buf_printf(&t, "vkllm serves /metrics\n");
    } else {
        pthread_mutex_lock(&m->lock);
        eng_stats st;
        bool have = m->session != NULL;
        if (have)
            eng_session_stats(m->session, &st);
        pthread_mutex_unlock(&m->lock);
        render(m->dev, have ? &st : NULL, &t);
    }
    if (t.failed) {
        free(t.p);
        return MHD_NO;
    }
    r = MHD_create_response_from_buffer(t.n, t.p, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(t.p);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

tool_metrics *tool_metrics_start(const char *host, uint16_t port, vkb_device *dev, char *err,
                                 size_t err_size)
{
    tool_metrics *m = calloc(1, sizeof *m);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (!m) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        snprintf(err, err_size, "--metrics-host %s is not an IPv4 address", host);
        free(m);
        return NULL;
    }
    pthread_mutex_init(&m->lock, NULL);
    m->dev = dev;
    m->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, port, NULL,
                                 NULL, answer, m, MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_END);
    if (!m->daemon) {
        snprintf(err, err_size, "cannot serve metrics on %s:%u (in use?)", host, port);
        pthread_mutex_destroy(&m->lock);
        free(m);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(m->daemon, MHD_DAEMON_INFO_BIND_PORT);
    m->port = di ? di->port : port;
    return m;
}

uint16_t tool_metrics_port(const tool_metrics *m)
{
    return m->port;
}

void tool_metrics_attach(tool_metrics *m, eng_session *s)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    m->session = s;
    pthread_mutex_unlock(&m->lock);
}

void tool_metrics_stop(tool_metrics *m)
{
    if (!m)
        return;
    MHD_stop_daemon(m->daemon);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

char *tool_metrics_render(vkb_device *dev, eng_session *s, size_t *len)
{
    cmp_buf t = {0};
    eng_stats st;
    if (s)
        eng_session_stats(s, &st);
    render(dev, s ? &st : NULL, &t);
    if (t.failed) {
        free(t.p);
        return NULL;
    }
    *len = t.n;
    return t.p ? t.p : calloc(1, 1);
}
