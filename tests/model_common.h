/* Helpers shared by the model tests (test_model.c: outputs against goldens and the CPU
 * reference; test_session.c: sessions' limits, reuse, picks and refusals). */
#ifndef MODEL_COMMON_H
#define MODEL_COMMON_H

#include <stdbool.h>
#include <stdint.h>

#include "eng_model.h"

/* The model `file` (under ../shared/models unless the path is absolute), uploaded to
 * t_dev when `upload`. NULL with the case skipped where ../shared is absent, or with a
 * failure recorded. */
eng_model *open_model(const char *file, bool upload);

/* The index of the largest of v[0 .. n) (the first on ties). */
int32_t argmax(const float *v, uint32_t n);

#endif /* MODEL_COMMON_H */
