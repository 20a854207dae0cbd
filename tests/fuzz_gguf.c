/* libFuzzer target for the GGUF reader: any bytes must parse or be refused with a
 * message, touching nothing outside the input and allocating in proportion to it. Built
 * and run by tests/fuzz_gguf.sh (clang, AddressSanitizer, UndefinedBehaviorSanitizer). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmp_gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    cmp_gguf *g = NULL;
    if (cmp_gguf_open_memory(data, size, &g, err, sizeof err) != CMP_GGUF_OK) {
        if (err[0] == '\0')
            abort(); /* a refusal must say why */
        return 0;
    }
    /* read everything that parsed */
    volatile uint64_t sink = 0;
    for (uint64_t i = 0; i < cmp_gguf_kv_count(g); i++) {
        const cmp_gguf_kv *kv = cmp_gguf_kv_at(g, i);
        const cmp_gguf_value *v = &kv->value;
        sink += kv->key.len ? (uint8_t)kv->key.ptr[kv->key.len - 1] : 0;
        if (v->type != CMP_GGUF_ARRAY)
            continue;
        for (uint64_t e = 0; e < v->arr.count && e < 4096; e++) {
            cmp_gguf_str s;
            cmp_gguf_value inner;
            double d;
            if (cmp_gguf_array_str(v, e, &s) && s.len)
                sink += (uint8_t)s.ptr[s.len - 1];
            else if (cmp_gguf_array_array(v, e, &inner))
                sink += inner.arr.count;
            else if (cmp_gguf_array_num(v, e, &d))
                sink += d != 0;
        }
    }
    for (uint64_t i = 0; i < cmp_gguf_tensor_count(g); i++) {
        const cmp_gguf_tensor *t = cmp_gguf_tensor_at(g, i);
        if (t->bytes)
            sink += t->data[0] + t->data[t->bytes - 1];
    }
    (void)sink;
    cmp_gguf_close(g);
    return 0;
}
