/* The viewer as a library: vkllm-viewer's window loop, also run inside vkllm run --view.
 * It reads the metrics endpoint at host:port twice a second (viewer/README.md). */
#ifndef VIEWER_H
#define VIEWER_H

typedef struct viewer_options {
    const char *host; /* IPv4 address */
    int port;
    const char *screenshot; /* write one frame as PNG and return (NULL: a window until closed) */
    double after;           /* with screenshot: seconds to wait first */
} viewer_options;

/* Runs until the window is closed (or the screenshot is written). 0, or 1 when no window
 * could be opened or the screenshot not written (the reason on stderr). Call from the
 * main thread. */
int viewer_run(const viewer_options *o);

const char *viewer_usage(void); /* vkllm-viewer --help */

#endif /* VIEWER_H */
