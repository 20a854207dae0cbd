/* The table of embedded SPIR-V variants, generated at build time (cmake/Shaders.cmake). */
#ifndef VKB_SPIRV_H
#define VKB_SPIRV_H

#include <stddef.h>
#include <stdint.h>

struct vkb_spirv_entry {
    const char *name;
    const uint32_t *words;
    const size_t *size; /* bytes */
};

extern const struct vkb_spirv_entry vkb_spirv_table[];
extern const size_t vkb_spirv_table_count;

#endif /* VKB_SPIRV_H */
