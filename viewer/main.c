/* vkllm-viewer: the command around viewer_run (viewer.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "viewer.h"

int main(int argc, char **argv)
{
    viewer_options o = {.host = "127.0.0.1", .port = 9464};
    static char host[64];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(viewer_usage(), stdout);
            return 0;
        } else if (!strcmp(argv[i], "--connect") && i + 1 < argc) {
            const char *hp = argv[++i], *colon = strrchr(hp, ':');
            if (!colon || colon - hp >= (long)sizeof host || atoi(colon + 1) <= 0) {
                fprintf(stderr, "vkllm-viewer: --connect wants HOST:PORT, not \"%s\"\n", hp);
                return 2;
            }
            snprintf(host, sizeof host, "%.*s", (int)(colon - hp), hp);
            o.host = host;
            o.port = atoi(colon + 1);
        } else if (!strcmp(argv[i], "--screenshot") && i + 1 < argc) {
            o.screenshot = argv[++i];
        } else if (!strcmp(argv[i], "--after") && i + 1 < argc) {
            o.after = atof(argv[++i]);
        } else {
            fprintf(stderr, "vkllm-viewer: unknown flag \"%s\" (see --help)\n", argv[i]);
            return 2;
        }
    }
    return viewer_run(&o);
}
