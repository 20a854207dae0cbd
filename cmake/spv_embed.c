/* spv_embed: writes a SPIR-V binary as a C array of 32-bit words.
 * usage: spv_embed IN.spv NAME OUT.c */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: spv_embed IN.spv NAME OUT.c\n");
        return 2;
    }
    FILE *in = fopen(argv[1], "rb");
    if (!in) {
        perror(argv[1]);
        return 1;
    }
    if (fseek(in, 0, SEEK_END) != 0) {
        perror(argv[1]);
        fclose(in);
        return 1;
    }
    long size = ftell(in);
    rewind(in);
    if (size <= 0 || size % 4 != 0) {
        fprintf(stderr, "%s: %ld bytes is not a SPIR-V module\n", argv[1], size);
        fclose(in);
        return 1;
    }
    uint32_t *words = malloc((size_t)size);
    if (!words || fread(words, 1, (size_t)size, in) != (size_t)size) {
        fprintf(stderr, "%s: read failed\n", argv[1]);
        free(words);
        fclose(in);
        return 1;
    }
    fclose(in);

    FILE *out = fopen(argv[3], "w");
    if (!out) {
        perror(argv[3]);
        free(words);
        return 1;
    }
    size_t n = (size_t)size / 4;
    fprintf(out, "/* Generated from %s by spv_embed: do not edit. */\n", argv[1]);
    fprintf(out, "#include <stddef.h>\n#include <stdint.h>\n");
    fprintf(out, "const size_t vkb_spv_%s_size = %zu;\n", argv[2], (size_t)size);
    fprintf(out, "const uint32_t vkb_spv_%s[] = {", argv[2]);
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%s0x%08xu,", i % 8 ? " " : "\n    ", (unsigned)words[i]);
    fprintf(out, "\n};\n");
    free(words);
    if (fclose(out) != 0) {
        perror(argv[3]);
        return 1;
    }
    return 0;
}
