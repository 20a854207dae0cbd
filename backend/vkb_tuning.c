/* Stored tuning: the matvec choice per weight type that `vkllm bench kernels --tune`
 * measured best on this device, kept in a small text file beside the pipeline cache
 * (one per vendor, device and driver version) and read when the device opens. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkb_internal.h"
#include "vkb_ops.h"

void vkb_matvec_tuning_format(const vkb_matvec_tuning *t, char *out, size_t size)
{
    snprintf(out, size, "%ux%u%s%s%s", t->wg, t->rows, t->staged ? "s" : "", t->lanes ? "l" : "",
             t->int_dot > 0   ? "i"
             : t->int_dot < 0 ? "f"
                              : "");
}

void vkb_op_matvec_tune_format(vkb_device *dev, cmp_type type, const vkb_matvec_tuning *t)
{
    if ((unsigned)type < VKB_TUNED_TYPES)
        dev->format_tuning[type] = t ? *t : (vkb_matvec_tuning){0};
}

const char *vkb_tuning_path(const vkb_device *dev)
{
    return dev->tuning_path;
}

const char *vkb_tuning_status(const vkb_device *dev)
{
    static _Thread_local char line[400];
    if (!dev->matvec_tuning.wg)
        return dev->tuning_status;
    char choice[32];
    vkb_matvec_tuning_format(&dev->matvec_tuning, choice, sizeof choice);
    snprintf(line, sizeof line, "%s for every type (VKLLM_MATVEC, or set by the program)", choice);
    return line;
}

static uint32_t stored_count(const vkb_device *dev)
{
    uint32_t n = 0;
    for (uint32_t t = 0; t < VKB_TUNED_TYPES; t++)
        n += dev->format_tuning[t].wg != 0;
    return n;
}

/* Reads `path` into the device's per-type choices; false with the reason in why. A
 * missing file is not an error (nothing stored yet). */
static bool load(vkb_device *dev, const char *path, char *why, size_t why_size)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = errno;
        if (e != ENOENT)
            snprintf(why, why_size, "%s", strerror(e));
        return e == ENOENT;
    }
    vkb_matvec_tuning got[VKB_TUNED_TYPES] = {{0}};
    char line[256];
    bool ok = true;
    for (int n = 1; ok && fgets(line, sizeof line, f); n++) {
        char name[32], choice[32], extra[2];
        if (line[0] == '#' || strspn(line, " \t\r\n") == strlen(line))
            continue;
        int fields = sscanf(line, "%31s %31s %1s", name, choice, extra);
        const cmp_type_info *ti = fields >= 1 ? cmp_type_find(name) : NULL;
        vkb_matvec_tuning t;
        if (fields != 2 || !ti || (unsigned)ti->type >= VKB_TUNED_TYPES ||
            !vkb_op_type_supported(ti->type) || !vkb_matvec_tuning_parse(choice, &t)) {
            snprintf(why, why_size, "line %d is not \"TYPE WGxROWS[s|l][i|f]\"", n);
            ok = false;
        } else {
            got[ti->type] = t;
        }
    }
    fclose(f);
    if (ok)
        memcpy(dev->format_tuning, got, sizeof got);
    return ok;
}

/* At device open: the file's name from the cache folder and the device's identity, its
 * choices if it has any, and the status line. */
void vkb_tuning_open(vkb_device *dev, const char *dir)
{
    const vkb_device_info *info = &dev->info;
    char path[1024], why[200] = "";
    snprintf(dev->tuning_status, sizeof dev->tuning_status, "built in (by device type)");
    if (!dir || !*dir)
        return;
    /* the driver's version and its pipeline cache UUID (which changes with its build:
     * lavapipe reports version 1 for every Mesa release) */
    int len = snprintf(path, sizeof path, "%s/tuning-%04x-%04x-%08x-", dir, info->vendor_id,
                       info->device_id, info->driver_version);
    for (int i = 0; i < 8 && len > 0 && len < (int)sizeof path - 3; i++)
        len +=
            snprintf(path + len, sizeof path - (size_t)len, "%02x", info->pipeline_cache_uuid[i]);
    if (len > 0 && len < (int)sizeof path - 5)
        len += snprintf(path + len, sizeof path - (size_t)len, ".txt");
    if (len <= 0 || len >= (int)sizeof path || !(dev->tuning_path = strdup(path)))
        return;
    if (!load(dev, path, why, sizeof why))
        snprintf(dev->tuning_status, sizeof dev->tuning_status,
                 "built in; ignored %s: %s (run vkllm bench kernels --tune again)", path, why);
    else if (stored_count(dev))
        snprintf(dev->tuning_status, sizeof dev->tuning_status,
                 "stored for %u weight types in %s, built in for the others", stored_count(dev),
                 path);
}

vkb_status vkb_tuning_save(vkb_device *dev, const char *path)
{
    if (!path)
        path = dev->tuning_path;
    if (!path)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "tuning: no file to save to (the device has no cache folder)");
    char tmp[1100], dir[1024];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir)
        *slash = '\0';
    FILE *f = !slash || slash == dir || vkb_make_dirs(dir) == 0 ? fopen(tmp, "w") : NULL;
    if (!f)
        return vkb_dev_fail(dev, VKB_ERR_IO, "tuning: cannot write %s: %s", tmp, strerror(errno));
    fprintf(f, "# vkllm matvec choices for %s (%s %s), measured by vkllm bench kernels --tune\n",
            dev->info.name, dev->info.driver_name, dev->info.driver_info);
    fprintf(f, "# TYPE WORKGROUPxROWS, s: rows staged through shared memory, l: whole rows "
               "per invocation, i/f: integer dot products on/off\n");
    for (uint32_t t = 0; t < VKB_TUNED_TYPES; t++) {
        char choice[32];
        if (!dev->format_tuning[t].wg)
            continue;
        vkb_matvec_tuning_format(&dev->format_tuning[t], choice, sizeof choice);
        fprintf(f, "%s %s\n", cmp_type_get((cmp_type)t)->name, choice);
    }
    bool written = fflush(f) == 0 && !ferror(f);
    written = fclose(f) == 0 && written;
    if (!written || rename(tmp, path) != 0) {
        remove(tmp);
        return vkb_dev_fail(dev, VKB_ERR_IO, "tuning: cannot write %s: %s", path, strerror(errno));
    }
    snprintf(dev->tuning_status, sizeof dev->tuning_status,
             "stored for %u weight types in %s, built in for the others", stored_count(dev), path);
    return VKB_OK;
}
