/* vkllm-viewer: a window showing what a running vkllm does: device memory by purpose
 * against the heap's budget, the KV cache's fill, tokens/s over time and GPU time per op.
 * It reads the metrics endpoint (vkllm run --metrics-port) twice a second, shows
 * "disconnected" while it cannot, and picks up again when the engine comes back. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <GLFW/glfw3.h>

#include "stb_quiet.h"

#include "viewer.h"
#include "viewer_layout.h"

static const char usage_text[] =
    "usage: vkllm-viewer [--connect HOST:PORT] [--screenshot FILE.png]\n"
    "\n"
    "Shows a running vkllm's device memory (by purpose, against the heap's budget), KV\n"
    "cache, tokens/s over time and GPU time per op, from its metrics endpoint (start it with\n"
    "vkllm run --metrics-port PORT; add --profile-ops for the per-op bars).\n"
    "\n"
    "  --connect HOST:PORT   the endpoint (default 127.0.0.1:9464)\n"
    "  --screenshot FILE     draw one frame after two answers (or after 5 s without),\n"
    "                        write it as PNG and exit\n"
    "  --after S             with --screenshot: wait S seconds first (a longer chart)\n";

/* ---- what the endpoint says ---- */

#define MAX_OPS  24
#define HISTORY  120
#define PURPOSES 4

typedef struct snapshot {
    bool connected;
    char device[160];
    double mem[PURPOSES];      /* weights, kv, scratch, staging */
    double budget, heap_usage; /* of the main heap */
    char budget_source[16];
    int n_heaps, main_heap;
    double heap_budget[VIEWER_HEAPS], heap_used[VIEWER_HEAPS], heap_mine[VIEWER_HEAPS];
    bool heap_local[VIEWER_HEAPS];
    double kv_tokens, kv_capacity, kv_bits, kv_bytes;
    char kv_types[48];
    double tps_decode, tps_prefill, tokens_decode, tokens_prefill;
    int n_ops;
    char op_name[MAX_OPS][32];
    double op_ms[MAX_OPS];
} snapshot;

typedef struct viewer {
    char host[64];
    int port;
    snapshot now;
    /* tokens/s per poll, from the counters' growth between polls */
    double hist_decode[HISTORY], hist_prefill[HISTORY];
    int hist_n;
    double last_poll_at, last_tokens_decode, last_tokens_prefill, last_eval_decode;
} viewer;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* GET /metrics; the body into buf (NUL-terminated). False when unreachable. */
static bool fetch(const viewer *v, char *buf, size_t size)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)v->port)};
    if (fd < 0 || inet_pton(AF_INET, v->host, &a.sin_addr) != 1 ||
        connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return false;
    }
    static const char req[] = "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n";
    size_t n = 0;
    bool ok = write(fd, req, sizeof req - 1) == (ssize_t)(sizeof req - 1);
    while (ok && n + 1 < size) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 1000) <= 0)
            break;
        ssize_t got = read(fd, buf + n, size - 1 - n);
        if (got <= 0)
            break;
        n += (size_t)got;
    }
    close(fd);
    buf[n] = '\0';
    char *body = strstr(buf, "\r\n\r\n");
    if (!ok || strncmp(buf, "HTTP/1.", 7) != 0 || !strstr(buf, " 200 ") || !body)
        return false;
    memmove(buf, body + 4, strlen(body + 4) + 1);
    return true;
}

/* The value of `name{labels}` where the labels contain `want` ("" for any). */
static bool sample(const char *text, const char *name, const char *want, double *out)
{
    size_t ln = strlen(name);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, name, ln) != 0 || (l[ln] != ' ' && l[ln] != '{'))
            continue;
        const char *end = strchr(l, '\n');
        const char *sp = l[ln] == '{' ? strstr(l, "} ") : l + ln;
        if (!sp || (end && sp > end))
            continue;
        if (want[0] && !(strstr(l, want) && strstr(l, want) < sp))
            continue;
        *out = strtod(sp + (l[ln] == '{' ? 2 : 1), NULL);
        return true;
    }
    return false;
}

/* A label's value from the first line of `name`. */
static void label(const char *text, const char *name, const char *key, char *out, size_t size)
{
    out[0] = '\0';
    const char *l = strstr(text, name);
    while (l && l != text && l[-1] != '\n')
        l = strstr(l + 1, name);
    char pat[64];
    snprintf(pat, sizeof pat, "%s=\"", key);
    const char *k = l ? strstr(l, pat) : NULL;
    const char *end = l ? strchr(l, '\n') : NULL;
    if (!k || (end && k > end))
        return;
    k += strlen(pat);
    size_t n = strcspn(k, "\"");
    snprintf(out, size, "%.*s", (int)(n < size ? n : size - 1), k);
}

static void parse(viewer *v, const char *t)
{
    snapshot *s = &v->now;
    memset(s, 0, sizeof *s);
    s->connected = true;
    label(t, "vkllm_device_info", "name", s->device, sizeof s->device);
    static const char *purposes[PURPOSES] = {"\"weights\"", "\"kv\"", "\"scratch\"", "\"staging\""};
    for (int p = 0; p < PURPOSES; p++)
        sample(t, "vkllm_memory_bytes", purposes[p], &s->mem[p]);
    /* every heap; the main one is the device-local heap vkllm holds the most on */
    for (int h = 0; h < VIEWER_HEAPS; h++) {
        char want[32];
        double local = 0;
        snprintf(want, sizeof want, "heap=\"%d\"", h);
        if (!sample(t, "vkllm_heap_budget_bytes", want, &s->heap_budget[h]))
            break;
        sample(t, "vkllm_heap_usage_bytes", want, &s->heap_used[h]);
        sample(t, "vkllm_heap_allocated_bytes", want, &s->heap_mine[h]);
        sample(t, "vkllm_heap_device_local", want, &local);
        s->heap_local[h] = local > 0;
        s->n_heaps = h + 1;
        if (s->heap_local[h] &&
            (!s->heap_local[s->main_heap] || s->heap_mine[h] > s->heap_mine[s->main_heap]))
            s->main_heap = h;
    }
    s->budget = s->heap_budget[s->main_heap];
    s->heap_usage = s->heap_used[s->main_heap];
    label(t, "vkllm_heap_budget_bytes", "source", s->budget_source, sizeof s->budget_source);
    sample(t, "vkllm_kv_cache_tokens", "", &s->kv_tokens);
    sample(t, "vkllm_kv_cache_capacity_tokens", "", &s->kv_capacity);
    sample(t, "vkllm_kv_cache_bytes", "", &s->kv_bytes);
    sample(t, "vkllm_kv_cache_bits_per_value", "", &s->kv_bits);
    char kt[12], vt[12];
    label(t, "vkllm_kv_cache_bits_per_value", "key_type", kt, sizeof kt);
    label(t, "vkllm_kv_cache_bits_per_value", "value_type", vt, sizeof vt);
    snprintf(s->kv_types, sizeof s->kv_types, "%s keys, %s values", kt, vt);
    sample(t, "vkllm_tokens_per_second", "\"decode\"", &s->tps_decode);
    sample(t, "vkllm_tokens_per_second", "\"prefill\"", &s->tps_prefill);
    sample(t, "vkllm_tokens_total", "\"decode\"", &s->tokens_decode);
    sample(t, "vkllm_tokens_total", "\"prefill\"", &s->tokens_prefill);
    for (const char *l = strstr(t, "\nvkllm_op_gpu_seconds{op=\""); l && s->n_ops < MAX_OPS;
         l = strstr(l + 1, "\nvkllm_op_gpu_seconds{op=\"")) {
        const char *name = l + strlen("\nvkllm_op_gpu_seconds{op=\"");
        size_t n = strcspn(name, "\"");
        snprintf(s->op_name[s->n_ops], sizeof s->op_name[0], "%.*s", (int)n, name);
        const char *val = strstr(name, "} ");
        s->op_ms[s->n_ops++] = val ? strtod(val + 2, NULL) * 1e3 : 0;
    }
}

static void poll_endpoint(viewer *v)
{
    static char buf[1 << 16];
    double t = now_s();
    if (!fetch(v, buf, sizeof buf)) {
        v->now.connected = false;
        return;
    }
    parse(v, buf);
    /* tokens/s between polls, from the counters (what the chart scrolls) */
    double dt = t - v->last_poll_at;
    double dd = v->now.tokens_decode - v->last_tokens_decode,
           dp = v->now.tokens_prefill - v->last_tokens_prefill;
    if (v->last_poll_at > 0 && dt > 0 && dd >= 0 && dp >= 0) {
        if (v->hist_n == HISTORY) {
            memmove(v->hist_decode, v->hist_decode + 1, sizeof(double) * (HISTORY - 1));
            memmove(v->hist_prefill, v->hist_prefill + 1, sizeof(double) * (HISTORY - 1));
            v->hist_n--;
        }
        v->hist_decode[v->hist_n] = dd / dt;
        v->hist_prefill[v->hist_n] = dp / dt;
        v->hist_n++;
    }
    v->last_poll_at = t;
    v->last_tokens_decode = v->now.tokens_decode;
    v->last_tokens_prefill = v->now.tokens_prefill;
}

/* ---- drawing: pixels from the top left ---- */

static void color(int r, int g, int b)
{
    glColor3ub((GLubyte)r, (GLubyte)g, (GLubyte)b);
}

static void rect(double x, double y, double w, double h)
{
    glBegin(GL_QUADS);
    glVertex2d(x, y);
    glVertex2d(x + w, y);
    glVertex2d(x + w, y + h);
    glVertex2d(x, y + h);
    glEnd();
}

static void text(double x, double y, const char *s)
{
    static char buf[99999];
    int quads = stb_easy_font_print(0, 0, (char *)s, NULL, buf, sizeof buf);
    glPushMatrix();
    glTranslated(x, y, 0);
    glScaled(1.5, 1.5, 1);
    glBegin(GL_QUADS);
    for (int q = 0; q < quads * 4; q++) {
        const float *p = (const float *)(buf + q * 16);
        glVertex2f(p[0], p[1]);
    }
    glEnd();
    glPopMatrix();
}

static void fmt_bytes(double b, char *out, size_t size)
{
    if (b >= 1073741824.0)
        snprintf(out, size, "%.2f GiB", b / 1073741824.0);
    else
        snprintf(out, size, "%.1f MiB", b / 1048576.0);
}

static void draw(const viewer *v, int w, int h)
{
    const snapshot *s = &v->now;
    glViewport(0, 0, w, h);
    glMatrixMode(GL_PROJECTION);
    glLoadIdentity();
    glOrtho(0, VIEWER_WIDTH, VIEWER_HEIGHT, 0, -1, 1);
    glMatrixMode(GL_MODELVIEW);
    glLoadIdentity();
    glClearColor(0x16 / 255.0f, 0x18 / 255.0f, 0x1d / 255.0f, 1);
    glClear(GL_COLOR_BUFFER_BIT);
    char line[256], a[32], b[32], c[32], d[32], e[32];
    color(VIEWER_TEXT);
    snprintf(line, sizeof line, "vkllm  %.100s  %.60s:%d  %s", s->connected ? s->device : "",
             v->host, v->port, s->connected ? "connected" : "disconnected - retrying");
    text(20, 16, line);

    /* memory */
    double used = s->mem[0] + s->mem[1] + s->mem[2] + s->mem[3];
    fmt_bytes(s->mem[0], a, sizeof a), fmt_bytes(s->mem[1], b, sizeof b);
    fmt_bytes(s->mem[2], c, sizeof c), fmt_bytes(s->mem[3], d, sizeof d);
    fmt_bytes(s->budget, e, sizeof e);
    color(VIEWER_TEXT);
    snprintf(line, sizeof line,
             "device memory: weights %s  kv %s  scratch %s  staging %s  of a %s budget (%s)", a, b,
             c, d, e, s->budget_source[0] ? s->budget_source : "-");
    text(VIEWER_MEM_X, VIEWER_MEM_Y - 22, line);
    color(VIEWER_TRACK);
    rect(VIEWER_MEM_X, VIEWER_MEM_Y, VIEWER_MEM_W, VIEWER_MEM_H);
    static const unsigned char pc[PURPOSES][3] = {
        {VIEWER_WEIGHTS}, {VIEWER_KV}, {VIEWER_SCRATCH}, {VIEWER_STAGING}};
    double x = VIEWER_MEM_X;
    for (int p = 0; p < PURPOSES && s->budget > 0; p++) {
        double len = VIEWER_MEM_W * s->mem[p] / s->budget;
        if (x + len > VIEWER_MEM_X + VIEWER_MEM_W)
            len = VIEWER_MEM_X + VIEWER_MEM_W - x;
        color(pc[p][0], pc[p][1], pc[p][2]);
        rect(x, VIEWER_MEM_Y, len, VIEWER_MEM_H);
        x += len;
    }
    color(VIEWER_TEXT);
    snprintf(line, sizeof line, "heap %d: vkllm holds %.1f%% of the budget; %.1f%% is used",
             s->main_heap, s->budget > 0 ? 100 * used / s->budget : 0,
             s->budget > 0 ? 100 * s->heap_usage / s->budget : 0);
    text(VIEWER_MEM_X, VIEWER_MEM_Y + VIEWER_MEM_H + 8, line);

    /* every heap: all processes' usage (grey) and vkllm's share (blue) of the budget */
    for (int hp = 0; hp < s->n_heaps; hp++) {
        double y = VIEWER_HEAPS_Y + hp * VIEWER_HEAP_DY, bw = VIEWER_MEM_W - 420;
        double bud = s->heap_budget[hp] > 0 ? s->heap_budget[hp] : 1;
        fmt_bytes(s->heap_mine[hp], a, sizeof a), fmt_bytes(s->heap_budget[hp], b, sizeof b);
        color(VIEWER_TEXT);
        snprintf(line, sizeof line, "heap %d %s: %s of %s", hp,
                 s->heap_local[hp] ? "(device)" : "(host)  ", a, b);
        text(VIEWER_HEAPS_X, y - 2, line);
        color(VIEWER_TRACK);
        rect(VIEWER_HEAPS_X + 420, y, bw, VIEWER_HEAP_H);
        color(VIEWER_USAGE);
        rect(VIEWER_HEAPS_X + 420, y, bw * (s->heap_used[hp] > bud ? 1 : s->heap_used[hp] / bud),
             VIEWER_HEAP_H);
        color(VIEWER_WEIGHTS);
        rect(VIEWER_HEAPS_X + 420, y, bw * (s->heap_mine[hp] > bud ? 1 : s->heap_mine[hp] / bud),
             VIEWER_HEAP_H);
    }

    /* KV cache */
    color(VIEWER_TEXT);
    fmt_bytes(s->kv_bytes, a, sizeof a);
    snprintf(line, sizeof line, "KV cache: %.0f of %.0f positions, %s, %.2f bits per value, %s",
             s->kv_tokens, s->kv_capacity, s->kv_types, s->kv_bits, a);
    text(VIEWER_KV_X, VIEWER_KV_Y - 22, line);
    color(VIEWER_TRACK);
    rect(VIEWER_KV_X, VIEWER_KV_Y, VIEWER_KV_W, VIEWER_KV_H);
    color(VIEWER_KV);
    if (s->kv_capacity > 0)
        rect(VIEWER_KV_X, VIEWER_KV_Y, VIEWER_KV_W * s->kv_tokens / s->kv_capacity, VIEWER_KV_H);

    /* tokens/s chart */
    double top = 1;
    for (int i = 0; i < v->hist_n; i++) {
        top = v->hist_decode[i] > top ? v->hist_decode[i] : top;
        top = v->hist_prefill[i] > top ? v->hist_prefill[i] : top;
    }
    color(VIEWER_TEXT);
    snprintf(line, sizeof line, "tokens/s (last %d s): decode %.1f, prefill %.1f; scale %.0f",
             v->hist_n / 2, s->tps_decode, s->tps_prefill, top);
    text(VIEWER_CHART_X, VIEWER_CHART_Y - 22, line);
    color(VIEWER_TRACK);
    rect(VIEWER_CHART_X, VIEWER_CHART_Y, VIEWER_CHART_W, VIEWER_CHART_H);
    double bw = (double)VIEWER_CHART_W / HISTORY;
    for (int i = 0; i < v->hist_n; i++) {
        double x0 = VIEWER_CHART_X + (HISTORY - v->hist_n + i) * bw;
        double hd = VIEWER_CHART_H * v->hist_decode[i] / top,
               hp = VIEWER_CHART_H * v->hist_prefill[i] / top;
        color(VIEWER_DECODE);
        rect(x0, VIEWER_CHART_Y + VIEWER_CHART_H - hd, bw * 0.5, hd);
        color(VIEWER_PREFILL);
        rect(x0 + bw * 0.5, VIEWER_CHART_Y + VIEWER_CHART_H - hp, bw * 0.5, hp);
    }

    /* GPU time per op */
    color(VIEWER_TEXT);
    text(VIEWER_OPS_X, VIEWER_OPS_Y - 22,
         s->n_ops ? "GPU time per op, last step (ms)" : "GPU time per op: run with --profile-ops");
    double most = 1e-9;
    for (int i = 0; i < s->n_ops; i++)
        most = s->op_ms[i] > most ? s->op_ms[i] : most;
    for (int i = 0; i < s->n_ops && i < 12; i++) {
        double y = VIEWER_OPS_Y + i * 24;
        color(VIEWER_WEIGHTS);
        rect(VIEWER_OPS_X + 110, y, (VIEWER_OPS_W - 170) * s->op_ms[i] / most, 16);
        color(VIEWER_TEXT);
        text(VIEWER_OPS_X, y + 2, s->op_name[i]);
        snprintf(line, sizeof line, "%.3f", s->op_ms[i]);
        text(VIEWER_OPS_X + VIEWER_OPS_W - 56, y + 2, line);
    }
}

static bool screenshot(const char *path)
{
    unsigned char *px = malloc((size_t)VIEWER_WIDTH * VIEWER_HEIGHT * 3);
    if (!px)
        return false;
    glPixelStorei(GL_PACK_ALIGNMENT, 1);
    glReadPixels(0, 0, VIEWER_WIDTH, VIEWER_HEIGHT, GL_RGB, GL_UNSIGNED_BYTE, px);
    /* OpenGL's rows go bottom-up */
    for (int y = 0; y < VIEWER_HEIGHT / 2; y++)
        for (int x = 0; x < VIEWER_WIDTH * 3; x++) {
            unsigned char t = px[y * VIEWER_WIDTH * 3 + x];
            px[y * VIEWER_WIDTH * 3 + x] = px[(VIEWER_HEIGHT - 1 - y) * VIEWER_WIDTH * 3 + x];
            px[(VIEWER_HEIGHT - 1 - y) * VIEWER_WIDTH * 3 + x] = t;
        }
    bool ok = stbi_write_png(path, VIEWER_WIDTH, VIEWER_HEIGHT, 3, px, VIEWER_WIDTH * 3) != 0;
    free(px);
    return ok;
}

const char *viewer_usage(void)
{
    return usage_text;
}

int viewer_run(const viewer_options *o)
{
    viewer v = {.port = o->port};
    snprintf(v.host, sizeof v.host, "%s", o->host);
    const char *shot = o->screenshot;
    double after = o->after;
    if (!glfwInit()) {
        fprintf(stderr, "vkllm-viewer: no display (GLFW could not start); set DISPLAY or run "
                        "under xvfb-run\n");
        return 1;
    }
    if (shot)
        glfwWindowHint(GLFW_VISIBLE, GLFW_FALSE);
    glfwWindowHint(GLFW_RESIZABLE, GLFW_FALSE);
    GLFWwindow *win = glfwCreateWindow(VIEWER_WIDTH, VIEWER_HEIGHT, "vkllm-viewer", NULL, NULL);
    if (!win) {
        fprintf(stderr, "vkllm-viewer: cannot open an OpenGL window\n");
        glfwTerminate();
        return 1;
    }
    glfwMakeContextCurrent(win);
    glfwSwapInterval(1);
    double start = now_s(), next_poll = 0;
    int rc = 0, answers = 0;
    while (!glfwWindowShouldClose(win)) {
        double t = now_s();
        if (t >= next_poll) {
            poll_endpoint(&v);
            answers += v.now.connected;
            next_poll = t + 0.5;
        }
        draw(&v, VIEWER_WIDTH, VIEWER_HEIGHT);
        /* a screenshot waits for two answers (the chart needs a pair), at most 5 s */
        if (shot && t - start >= after && (answers >= 2 || t - start > after + 5.0)) {
            glFinish();
            if (!screenshot(shot)) {
                fprintf(stderr, "vkllm-viewer: cannot write %s\n", shot);
                rc = 1;
            } else {
                fprintf(stderr, "vkllm-viewer: wrote %s (%s)\n", shot,
                        v.now.connected ? "connected" : "disconnected");
            }
            break;
        }
        glfwSwapBuffers(win);
        glfwWaitEventsTimeout(0.1);
    }
    glfwDestroyWindow(win);
    glfwTerminate();
    return rc;
}
