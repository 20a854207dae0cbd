/* viewer_check SHOT.png MEM_PX KV_LO_PX KV_HI_PX: reads a vkllm-viewer screenshot and
 * checks its panels against what the metrics endpoint reported around it:
 *   - the memory bar's filled width is MEM_PX (vkllm's bytes over the heap budget) within
 *     2 pixels, in the purposes' colors;
 *   - the KV gauge's filled width is between KV_LO_PX and KV_HI_PX (the cache's fill
 *     before and after the shot) within 2 pixels;
 *   - the tokens/s chart has decode bars, and the title line has text.
 * Exit 0 when all hold; prints what it measured. */
#include <stdio.h>
#include <stdlib.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wcast-qual"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
#pragma GCC diagnostic pop

#include "viewer_layout.h"

static unsigned char *img;
static int w, h;

static int is(int x, int y, int r, int g, int b)
{
    const unsigned char *p = img + 3 * ((size_t)y * w + x);
    return abs(p[0] - r) <= 8 && abs(p[1] - g) <= 8 && abs(p[2] - b) <= 8;
}

#define IS(x, y, rgb) is_rgb(x, y, (const int[]){rgb})
static int is_rgb(int x, int y, const int *c)
{
    return is(x, y, c[0], c[1], c[2]);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: viewer_check SHOT.png MEM_PX KV_LO_PX KV_HI_PX\n");
        return 2;
    }
    int n;
    img = stbi_load(argv[1], &w, &h, &n, 3);
    if (!img || w != VIEWER_WIDTH || h != VIEWER_HEIGHT) {
        fprintf(stderr, "viewer_check: %s is not a %dx%d image\n", argv[1], VIEWER_WIDTH,
                VIEWER_HEIGHT);
        return 1;
    }
    double mem_px = atof(argv[2]), kv_lo = atof(argv[3]), kv_hi = atof(argv[4]);
    int fails = 0;
    /* memory bar: purpose colors from the left, then the track */
    int y = VIEWER_MEM_Y + VIEWER_MEM_H / 2, filled = 0, other = 0;
    for (int x = VIEWER_MEM_X; x < VIEWER_MEM_X + VIEWER_MEM_W; x++) {
        if (IS(x, y, VIEWER_WEIGHTS) || IS(x, y, VIEWER_KV) || IS(x, y, VIEWER_SCRATCH) ||
            IS(x, y, VIEWER_STAGING))
            filled++;
        else if (!IS(x, y, VIEWER_TRACK))
            other++;
    }
    printf("memory bar: %d pixels filled, expected %.1f; %d pixels of neither\n", filled, mem_px,
           other);
    if (filled < mem_px - 2 || filled > mem_px + 2 || other > 2)
        fails++;
    /* KV gauge */
    y = VIEWER_KV_Y + VIEWER_KV_H / 2;
    int kv = 0;
    for (int x = VIEWER_KV_X; x < VIEWER_KV_X + VIEWER_KV_W; x++)
        kv += IS(x, y, VIEWER_KV);
    printf("KV gauge: %d pixels, expected %.1f to %.1f\n", kv, kv_lo, kv_hi);
    if (kv < kv_lo - 2 || kv > kv_hi + 2)
        fails++;
    /* chart and title */
    int decode = 0, title = 0;
    for (int yy = VIEWER_CHART_Y; yy < VIEWER_CHART_Y + VIEWER_CHART_H; yy++)
        for (int x = VIEWER_CHART_X; x < VIEWER_CHART_X + VIEWER_CHART_W; x++)
            decode += IS(x, yy, VIEWER_DECODE);
    for (int yy = 10; yy < 40; yy++)
        for (int x = 0; x < w; x++)
            title += IS(x, yy, VIEWER_TEXT);
    printf("chart: %d decode pixels; title: %d text pixels\n", decode, title);
    if (decode == 0 || title < 100)
        fails++;
    stbi_image_free(img);
    printf("viewer_check: %s\n", fails ? "FAILED" : "all checks passed");
    return fails ? 1 : 0;
}
