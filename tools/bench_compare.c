/* vkllm bench compare: runs from several machines (JSON or JSONL from vkllm bench -o json)
 * side by side in one markdown table, and a PNG bar chart of tokens/s and of the share of
 * the copy bandwidth that generation reaches. */
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "stb_quiet.h"

#include "bench.h"
#include "tool.h"

static const char usage[] =
    "usage: vkllm bench compare A.json B.json ... [flags]\n"
    "\n"
    "Reads runs of `vkllm bench -o json` (or jsonl) made on different machines, drivers or\n"
    "builds, prints one markdown table with a column per run (tokens/s, and for generation\n"
    "the share of that device's copy bandwidth reached), and draws the same as a PNG bar\n"
    "chart. Rows are matched by model, test (pp512, tg128, ...) and configuration (what\n"
    "differs from bench's defaults: KV cache types, -fa 0, batch size, --sample, ...,\n"
    "shown beside the test).\n"
    "\n"
    "  -o, --chart FILE.png   where the chart goes (default bench-compare.png)\n"
    "  --no-chart             the table only\n"
    "  --labels A,B,...       names of the runs (default: each file's device and driver)\n"
    "\n"
    "Example: vkllm bench compare h100.json rx7900.json arc770.json -o vendors.png\n";

#define MAX_RUNS 8

typedef struct cell {
    bool present, gate_failed;
    double ts, sd, pct;
} cell;

typedef struct group {
    char model[96], test[240]; /* the test and its configuration */
    bool generation;
    cell c[MAX_RUNS];
} group;

typedef struct table {
    char label[MAX_RUNS][160];
    int runs;
    group *g;
    size_t n, cap;
} table;

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0.0;
}

static group *find_group(table *t, const char *model, const char *test)
{
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->g[i].model, model) && !strcmp(t->g[i].test, test))
            return &t->g[i];
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        group *g = realloc(t->g, cap * sizeof *g);
        if (!g)
            return NULL;
        t->g = g;
        t->cap = cap;
    }
    group *g = &t->g[t->n++];
    memset(g, 0, sizeof *g);
    snprintf(g->model, sizeof g->model, "%s", model);
    snprintf(g->test, sizeof g->test, "%s", test);
    return g;
}

/* What a row's configuration changes from bench's defaults, as " (kv q8_0/q8_0, fa 0)",
 * or "" for none: rows of one model and test are one group only in one configuration. */
static void config_of(const cJSON *o, bool prompt, char *out, size_t size)
{
    char c[160] = "";
    size_t at = 0;
#define ADD(...) at += (size_t)snprintf(c + at, at < sizeof c ? sizeof c - at : 0, __VA_ARGS__)
    const char *tk = str(o, "type_k"), *tv = str(o, "type_v");
    if ((tk[0] && strcmp(tk, "f16")) || (tv[0] && strcmp(tv, "f16")))
        ADD(", kv %s/%s", tk, tv);
    if (num(o, "kv_group") > 0)
        ADD(" g%.0f w%.0f", num(o, "kv_group"), num(o, "kv_window"));
    const cJSON *fa = cJSON_GetObjectItemCaseSensitive(o, "flash_attn");
    if (cJSON_IsNumber(fa) && fa->valuedouble == 0)
        ADD(", fa 0");
    if (prompt && num(o, "n_batch") > 0 && num(o, "n_batch") != 512)
        ADD(", batch %.0f", num(o, "n_batch"));
    static const char *const flags[][2] = {{"unfused_products", "products unfused"},
                                           {"record_each_step", "recorded each step"},
                                           {"gpu_picks", "GPU picks"}};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, flags[i][0])))
            ADD(", %s", flags[i][1]);
    if (!prompt && str(o, "sample")[0])
        ADD(", sampled from %s logits", strcmp(str(o, "sample"), "best") ? "all" : "the best");
#undef ADD
    snprintf(out, size, "%s%s%s", at ? " (" : "", at ? c + 2 : "", at ? ")" : "");
}

static bool add_row(table *t, int run, const cJSON *o)
{
    bench_row r = {0};
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(o, "gate_ok");
    r.gate_ok = !cJSON_IsFalse(ok);
    r.n_prompt = (uint32_t)num(o, "n_prompt");
    r.n_gen = (uint32_t)num(o, "n_gen");
    r.n_depth = (uint32_t)num(o, "n_depth");
    char test[240], name[64], config[168];
    bench_test_name(&r, name, sizeof name);
    config_of(o, r.n_gen == 0, config, sizeof config);
    snprintf(test, sizeof test, "%s%s", name, r.gate_ok ? config : "");
    group *g = find_group(t, r.gate_ok ? str(o, "model_type") : "(correctness gate)", test);
    if (!g)
        return false;
    g->generation = r.n_gen > 0;
    cell *c = &g->c[run];
    c->present = true;
    c->gate_failed = !r.gate_ok;
    c->ts = num(o, "avg_ts");
    c->sd = num(o, "stddev_ts");
    c->pct = num(o, "bandwidth_pct");
    if (!t->label[run][0]) {
        char driver[64];
        snprintf(driver, sizeof driver, "%s", str(o, "driver"));
        driver[strcspn(driver, " ")] = '\0';
        snprintf(t->label[run], sizeof t->label[run], "%s (%s)", str(o, "gpu_info"), driver);
    }
    return true;
}

/* A JSON array of rows, one row object, or JSONL. */
static bool load(table *t, int run, const char *path)
{
    size_t len;
    char *text = tool_read_text(path, &len);
    if (!text)
        return false;
    /* a whole document, or else lines (cJSON_Parse alone would stop after the first) */
    cJSON *doc = cJSON_ParseWithOpts(text, NULL, true);
    bool ok = true;
    size_t rows = 0;
    if (cJSON_IsArray(doc)) {
        const cJSON *o;
        cJSON_ArrayForEach(o, doc) ok = ok && add_row(t, run, o) && ++rows;
    } else if (cJSON_IsObject(doc)) {
        ok = add_row(t, run, doc) && ++rows;
    } else {
        for (char *line = strtok(text, "\n"); ok && line; line = strtok(NULL, "\n")) {
            cJSON *o = cJSON_Parse(line);
            if (!cJSON_IsObject(o)) {
                tool_error("bench compare: %s is not JSON or JSONL from vkllm bench", path);
                ok = false;
            } else {
                ok = add_row(t, run, o) && ++rows;
            }
            cJSON_Delete(o);
        }
    }
    cJSON_Delete(doc);
    free(text);
    if (ok && rows == 0) {
        tool_error("bench compare: %s holds no rows", path);
        ok = false;
    }
    return ok;
}

static void print_table(const table *t)
{
    printf("| model | test |");
    for (int r = 0; r < t->runs; r++)
        printf(" %s |", t->label[r]);
    printf("\n| --- | --- |");
    for (int r = 0; r < t->runs; r++)
        printf(" ---: |");
    printf("\n");
    for (size_t i = 0; i < t->n; i++) {
        const group *g = &t->g[i];
        printf("| %s | %s |", g->model, g->test);
        for (int r = 0; r < t->runs; r++) {
            const cell *c = &g->c[r];
            if (!c->present)
                printf(" - |");
            else if (c->gate_failed)
                printf(" FAILED |");
            else if (g->generation)
                printf(" %.2f ± %.2f (%.0f%% of bw) |", c->ts, c->sd, c->pct);
            else
                printf(" %.2f ± %.2f |", c->ts, c->sd);
        }
        printf("\n");
    }
}

/* ---- the chart ---- */

typedef struct image {
    int w, h;
    unsigned char *px; /* RGB */
} image;

static void fill_rect(image *im, int x0, int y0, int x1, int y1, const unsigned char rgb[3])
{
    x0 = x0 < 0 ? 0 : x0, y0 = y0 < 0 ? 0 : y0;
    x1 = x1 > im->w ? im->w : x1, y1 = y1 > im->h ? im->h : y1;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            memcpy(im->px + 3 * ((size_t)y * im->w + x), rgb, 3);
}

/* Text with stb_easy_font (about 7 px tall at scale 1), drawn at `scale`. */
static void text(image *im, int x, int y, const char *s, int scale, const unsigned char rgb[3])
{
    static char buf[60000];
    int quads = stb_easy_font_print(0, 0, (char *)s, NULL, buf, sizeof buf);
    for (int q = 0; q < quads; q++) {
        const float *v = (const float *)(buf + q * 64);
        float qx0 = v[0], qy0 = v[1], qx1 = v[8], qy1 = v[9]; /* vertices 0 and 2 */
        fill_rect(im, x + (int)(qx0 * scale), y + (int)(qy0 * scale), x + (int)(qx1 * scale),
                  y + (int)(qy1 * scale), rgb);
    }
}

static const unsigned char palette[MAX_RUNS][3] = {
    {31, 119, 180},  {255, 127, 14}, {44, 160, 44},   {214, 39, 40},
    {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {127, 127, 127},
};

#define BAR_H     16
#define GAP       4
#define GROUP_GAP 14
#define LEFT      420
#define WIDTH     1280

static int section_height(const table *t, bool generation_only)
{
    int h = 40;
    for (size_t i = 0; i < t->n; i++)
        if (!generation_only || t->g[i].generation)
            h += t->runs * (BAR_H + GAP) + GROUP_GAP;
    return h;
}

static int draw_section(image *im, const table *t, int y, bool pct)
{
    static const unsigned char black[3] = {0, 0, 0}, grey[3] = {200, 200, 200};
    text(im, 20, y,
         pct ? "share of the device's copy bandwidth reached by generation (%)"
             : "tokens per second (mean; whisker: one standard deviation)",
         2, black);
    y += 34;
    double max = pct ? 100.0 : 0.0;
    for (size_t i = 0; !pct && i < t->n; i++)
        for (int r = 0; r < t->runs; r++)
            if (t->g[i].c[r].present && t->g[i].c[r].ts + t->g[i].c[r].sd > max)
                max = t->g[i].c[r].ts + t->g[i].c[r].sd;
    if (max <= 0)
        max = 1;
    int span = WIDTH - LEFT - 160;
    for (size_t i = 0; i < t->n; i++) {
        const group *g = &t->g[i];
        if (pct && !g->generation)
            continue;
        int gh = t->runs * (BAR_H + GAP);
        char label[360];
        snprintf(label, sizeof label, "%s  %s", g->model, g->test);
        text(im, 20, y + gh / 2 - 8, label, 2, black);
        fill_rect(im, LEFT, y - 2, LEFT + 1, y + gh, grey);
        for (int r = 0; r < t->runs; r++, y += BAR_H + GAP) {
            const cell *c = &g->c[r];
            char v[64];
            if (!c->present)
                continue;
            if (c->gate_failed) {
                text(im, LEFT + 6, y + 1, "failed the correctness gate", 2, palette[r]);
                continue;
            }
            double val = pct ? c->pct : c->ts;
            int len = (int)(span * (val > max ? max : val) / max);
            fill_rect(im, LEFT + 1, y, LEFT + 1 + len, y + BAR_H, palette[r]);
            if (!pct && c->sd > 0) {
                int lo = (int)(span * (c->ts - c->sd) / max),
                    hi = (int)(span * (c->ts + c->sd) / max);
                fill_rect(im, LEFT + 1 + lo, y + BAR_H / 2 - 1, LEFT + 1 + hi, y + BAR_H / 2 + 1,
                          black);
            }
            snprintf(v, sizeof v, pct ? "%.1f%%" : "%.1f", val);
            text(im, LEFT + 8 + len + (pct ? 0 : (int)(span * c->sd / max)), y + 1, v, 2, black);
        }
        y += GROUP_GAP;
    }
    return y;
}

static bool chart(const table *t, const char *path)
{
    static const unsigned char white[3] = {255, 255, 255}, black[3] = {0, 0, 0};
    bool any_gen = false;
    for (size_t i = 0; i < t->n; i++)
        any_gen = any_gen || t->g[i].generation;
    image im = {WIDTH,
                30 + t->runs * 24 + 20 + section_height(t, false) +
                    (any_gen ? section_height(t, true) : 0),
                NULL};
    im.px = malloc((size_t)im.w * im.h * 3);
    if (!im.px) {
        tool_error("bench compare: out of memory drawing the chart");
        return false;
    }
    fill_rect(&im, 0, 0, im.w, im.h, white);
    int y = 16;
    for (int r = 0; r < t->runs; r++, y += 24) {
        fill_rect(&im, 20, y, 36, y + 16, palette[r]);
        text(&im, 46, y + 1, t->label[r], 2, black);
    }
    y += 20;
    y = draw_section(&im, t, y, false);
    if (any_gen)
        draw_section(&im, t, y, true);
    bool ok = stbi_write_png(path, im.w, im.h, 3, im.px, im.w * 3) != 0;
    free(im.px);
    if (!ok)
        tool_error("bench compare: cannot write %s", path);
    return ok;
}

int bench_compare(int argc, char **argv)
{
    const char *png = "bench-compare.png", *labels = NULL;
    const char *files[MAX_RUNS];
    int n = 0;
    bool draw = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--chart")) && i + 1 < argc) {
            png = argv[++i];
        } else if (!strcmp(a, "--labels") && i + 1 < argc) {
            labels = argv[++i];
        } else if (!strcmp(a, "--no-chart")) {
            draw = false;
        } else if (a[0] == '-') {
            tool_error("bench compare: unknown flag or missing value \"%s\" (see --help)", a);
            return 2;
        } else if (n == MAX_RUNS) {
            tool_error("bench compare: at most %d runs", MAX_RUNS);
            return 2;
        } else {
            files[n++] = a;
        }
    }
    if (n == 0) {
        tool_error("bench compare: give the JSON files of the runs (see --help)");
        return 2;
    }
    table t = {.runs = n};
    char item[TOOL_ITEM_MAX];
    for (int r = 0; labels && r < n && tool_next_item(&labels, item) > 0; r++)
        snprintf(t.label[r], sizeof t.label[r], "%.159s", item);
    int rc = 0;
    for (int r = 0; r < n && rc == 0; r++)
        if (!load(&t, r, files[r]))
            rc = 1;
    if (rc == 0) {
        print_table(&t);
        if (draw && chart(&t, png))
            fprintf(stderr, "chart: %s\n", png);
        else if (draw)
            rc = 1;
    }
    free(t.g);
    return rc;
}
