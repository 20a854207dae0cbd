/* Where vkllm-viewer draws its panels (pixels from the top left of the window), shared
 * with the test that reads its screenshots. */
#ifndef VIEWER_LAYOUT_H
#define VIEWER_LAYOUT_H

#define VIEWER_WIDTH  960
#define VIEWER_HEIGHT 600

/* The device memory bar, for the device-local heap vkllm uses most: its budget is the
 * full width; weights, KV cache, scratch and staging are stacked from the left in their
 * colors. */
#define VIEWER_MEM_X 20
#define VIEWER_MEM_Y 70
#define VIEWER_MEM_W 920
#define VIEWER_MEM_H 28

/* One thin bar per heap (up to 4): vkllm's bytes on it, and all processes' usage where
 * the driver reports it, over the heap's budget. */
#define VIEWER_HEAPS_X 20
#define VIEWER_HEAPS_Y 132
#define VIEWER_HEAP_H  8
#define VIEWER_HEAP_DY 22
#define VIEWER_HEAPS   4

/* The KV cache gauge: tokens held over capacity. */
#define VIEWER_KV_X 20
#define VIEWER_KV_Y 250
#define VIEWER_KV_W 920
#define VIEWER_KV_H 20

/* The tokens/s chart and the per-op GPU time bars. */
#define VIEWER_CHART_X 20
#define VIEWER_CHART_Y 310
#define VIEWER_CHART_W 540
#define VIEWER_CHART_H 270
#define VIEWER_OPS_X   600
#define VIEWER_OPS_Y   310
#define VIEWER_OPS_W   340

/* Colors, RGB. */
#define VIEWER_BG      0x16, 0x18, 0x1d
#define VIEWER_TRACK   0x2c, 0x30, 0x38
#define VIEWER_WEIGHTS 0x4e, 0x9a, 0xf0
#define VIEWER_KV      0xf0, 0xa0, 0x3c
#define VIEWER_SCRATCH 0x6c, 0xc6, 0x6c
#define VIEWER_STAGING 0xb0, 0x7c, 0xe0
#define VIEWER_DECODE  0x4e, 0xd0, 0xe0
#define VIEWER_PREFILL 0xf0, 0x6c, 0x8c
#define VIEWER_USAGE   0x80, 0x86, 0x90
#define VIEWER_TEXT    0xe6, 0xe6, 0xe6

#endif /* VIEWER_LAYOUT_H */
