/* Helpers shared by the model tests (model_common.h). */
#include <stdio.h>

#include "harness.h"
#include "model_common.h"

eng_model *open_model(const char *file, bool upload)
{
    const char *dir = t_shared_dir();
    char path[1024], err[512] = "";
    if (file[0] != '/') {
        if (!dir) {
            t_skip("../shared not found (set VKLLM_SHARED_DIR); the model cases need it");
            return NULL;
        }
        snprintf(path, sizeof path, "%s/models/%s", dir, file);
    } else {
        snprintf(path, sizeof path, "%s", file);
    }
    eng_status st;
    eng_model *m = eng_model_open(path, &st, err, sizeof err);
    if (!m) {
        t_fail_at(__FILE__, __LINE__, "%s: %s (%s)", file, err, eng_status_name(st));
        return NULL;
    }
    if (upload && (st = eng_model_upload(m, t_dev, NULL, NULL, err, sizeof err)) != ENG_OK) {
        t_fail_at(__FILE__, __LINE__, "upload %s: %s", file, err);
        eng_model_close(m);
        return NULL;
    }
    return m;
}

int32_t argmax(const float *v, uint32_t n)
{
    int32_t best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (v[i] > v[best])
            best = (int32_t)i;
    return best;
}
