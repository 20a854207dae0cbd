#include "tool.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void tool_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(TOOL_NAME ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int tool_parse_gpu_flag(int argc, char **argv, int *i, tool_gpu_opts *opts)
{
    const char *a = argv[*i];
    if (strcmp(a, "--validation") == 0) {
        opts->validation = true;
        return 1;
    }
    bool is_device = strcmp(a, "--device") == 0 || strcmp(a, "-d") == 0;
    bool is_profile = strcmp(a, "--profile") == 0;
    if (!is_device && !is_profile)
        return 0;
    if (*i + 1 >= argc) {
        tool_error("%s needs a value", a);
        return -1;
    }
    const char *v = argv[++*i];
    if (is_device) {
        opts->device = v;
        return 1;
    }
    if (!vkb_profile_parse(v, &opts->profile)) {
        tool_error("unknown profile \"%s\": use native, mobile or minimal", v);
        return -1;
    }
    return 1;
}

const char *tool_cache_dir(void)
{
    static char buf[1024];
    const char *v = getenv("VKLLM_CACHE_DIR");
    if (v && *v)
        return v;
    v = getenv("XDG_CACHE_HOME");
    if (v && *v) {
        snprintf(buf, sizeof buf, "%s/vkllm", v);
        return buf;
    }
    v = getenv("HOME");
    if (v && *v) {
        snprintf(buf, sizeof buf, "%s/.cache/vkllm", v);
        return buf;
    }
    return NULL;
}

int tool_open_context(const tool_gpu_opts *opts, vkb_context **ctx)
{
    vkb_context_config cfg = {.validation = opts->validation};
    vkb_status st = vkb_context_create(&cfg, ctx);
    if (st != VKB_OK) {
        tool_error("%s", vkb_context_errmsg(*ctx));
        vkb_context_destroy(*ctx);
        *ctx = NULL;
        return 1;
    }
    return 0;
}

int tool_open_device(vkb_context *ctx, const tool_gpu_opts *opts, vkb_device **dev)
{
    uint32_t index;
    *dev = NULL;
    if (vkb_context_select_device(ctx, opts->device, &index) != VKB_OK) {
        tool_error("%s", vkb_context_errmsg(ctx));
        return 1;
    }
    vkb_device_config cfg = {
        .index = index,
        .profile = opts->profile,
        .pipeline_cache_dir = tool_cache_dir(),
    };
    if (vkb_device_open(ctx, &cfg, dev) != VKB_OK) {
        tool_error("opening device %u: %s", index, vkb_device_errmsg(*dev));
        vkb_device_close(*dev);
        *dev = NULL;
        return 1;
    }
    return 0;
}

unsigned tool_report_validation(vkb_context *ctx)
{
    unsigned n = vkb_context_validation_count(ctx);
    for (unsigned i = 0; i < n; i++) {
        const char *m = vkb_context_validation_message(ctx, i);
        if (!m) {
            fprintf(stderr, "validation: ... %u more\n", n - i);
            break;
        }
        fprintf(stderr, "validation: %s\n", m);
    }
    return n;
}
