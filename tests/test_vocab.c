/* Tokenizers against llama.cpp's test vectors (../shared/models/vocab: 46 texts per
 * vocabulary, the ids llama.cpp's test-tokenizer-0 expects, no BOS/EOS), the pieces
 * joined back to the text, special tokens, and bad tokenizer metadata. */
#include <stdlib.h>
#include <string.h>

#include "eng_unicode.h"
#include "eng_vocab.h"
#include "harness.h"

static eng_vocab *open_vocab(const char *path)
{
    cmp_gguf *g = NULL;
    char err[256] = "";
    if (cmp_gguf_open(path, &g, err, sizeof err) != CMP_GGUF_OK) {
        t_fail_at(__FILE__, __LINE__, "%s: %s", path, err);
        return NULL;
    }
    eng_vocab *v = eng_vocab_load(g, err, sizeof err);
    CHECK_MSG(v != NULL, "%s: %s", path, err);
    cmp_gguf_close(g); /* the vocabulary keeps its own copy */
    return v;
}

/* The pieces of ids[0..n) joined into out (at most cap bytes); the length, or SIZE_MAX
 * when they do not fit. */
static size_t detokenize(const eng_vocab *v, const int32_t *ids, int64_t n, char *out, size_t cap)
{
    size_t len = eng_detokenize(v, ids, (size_t)n, false, out, cap);
    return len < cap ? len : SIZE_MAX;
}

static void check_vocab_file(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/models/vocab/ggml-vocab-%s.gguf", dir, name);
    eng_vocab *v = open_vocab(path);
    size_t inp_len = 0, out_len = 0;
    snprintf(path, sizeof path, "%s/models/vocab/ggml-vocab-%s.gguf.inp", dir, name);
    char *inp = t_read_file(path, &inp_len);
    snprintf(path, sizeof path, "%s/models/vocab/ggml-vocab-%s.gguf.out", dir, name);
    char *out = t_read_file(path, &out_len);
    CHECK_MSG(inp && out, "%s: cannot read the .inp/.out files", name);
    if (!v || !inp || !out)
        goto done;
    static const char sep[] = "\n__ggml_vocab_test__\n";
    const bool spm = strcmp(eng_vocab_kind(v), "spm") == 0;
    int cases = 0, wrong = 0, wrong_text = 0;
    char *text = inp, *line = out;
    int32_t ids[4096], want[4096];
    static char joined[1 << 16];
    for (char *end; (end = strstr(text, sep)) != NULL; text = end + strlen(sep)) {
        size_t len = (size_t)(end - text);
        char *nl = strchr(line, '\n');
        if (!nl)
            break;
        *nl = '\0';
        int64_t nwant = 0;
        for (char *p = line, *q; nwant < 4096; p = q) {
            long id = strtol(p, &q, 10);
            if (q == p)
                break;
            want[nwant++] = (int32_t)id;
        }
        line = nl + 1;
        int64_t n = eng_tokenize(v, text, len, false, false, ids, 4096);
        bool same = n == nwant && memcmp(ids, want, sizeof *ids * (size_t)n) == 0;
        if (!same && wrong++ < 3) {
            char got[512] = "";
            for (int64_t i = 0, at = 0; i < n && i < 40 && at < 480; i++)
                at += snprintf(got + at, sizeof got - (size_t)at, " %d", ids[i]);
            t_fail_at(__FILE__, __LINE__, "%s case %d \"%.*s\": got%s (%lld ids), want %lld ids",
                      name, cases, (int)(len < 60 ? len : 60), text, got, (long long)n,
                      (long long)nwant);
        }
        /* the pieces give the text back (SPM: after the space it puts first) */
        size_t jl = detokenize(v, ids, n < 4096 ? n : 4096, joined, sizeof joined);
        const char *back = joined;
        if (spm && jl != SIZE_MAX && jl > 0 && joined[0] == ' ')
            back++, jl--;
        if (same && (jl != len || memcmp(back, text, len) != 0) && wrong_text++ < 3)
            t_fail_at(__FILE__, __LINE__, "%s case %d: pieces join to \"%.*s\"", name, cases,
                      (int)(jl < 60 ? jl : 60), back);
        cases++;
    }
    CHECK_MSG(cases == 46, "%s: %d cases read, want 46", name, cases);
    CHECK_MSG(wrong == 0, "%s: %d of %d texts tokenized differently from llama.cpp", name, wrong,
              cases);
    printf("  %s (%s): %d texts, %d differ\n", name, eng_vocab_kind(v), cases, wrong);
done:
    free(inp);
    free(out);
    eng_vocab_destroy(v);
}

static const char *shared_or_skip(void)
{
    const char *dir = t_shared_dir();
    if (!dir)
        t_skip("../shared not found (set VKLLM_SHARED_DIR); the vocabulary cases need it");
    return dir;
}

/* One test per vocabulary file. */
#define VOCAB_TEST(fn, name)                                                                       \
    static void fn(void)                                                                           \
    {                                                                                              \
        const char *dir = shared_or_skip();                                                        \
        if (dir)                                                                                   \
            check_vocab_file(dir, name);                                                           \
    }
VOCAB_TEST(test_llama_spm, "llama-spm")
VOCAB_TEST(test_llama_bpe, "llama-bpe")
VOCAB_TEST(test_gpt2, "gpt-2")
VOCAB_TEST(test_qwen2, "qwen2")

/* BOS from the metadata rules, control tokens only with parse_special, EOG. */
static void test_special(void)
{
    const char *dir = shared_or_skip();
    if (!dir)
        return;
    char path[1024];
    snprintf(path, sizeof path, "%s/models/vocab/ggml-vocab-qwen2.gguf", dir);
    eng_vocab *v = open_vocab(path);
    if (!v)
        return;
    const char text[] = "<|im_start|>user hi<|im_end|>";
    int32_t ids[64];
    int64_t n = eng_tokenize(v, text, strlen(text), true, true, ids, 64);
    int32_t start = -1, end = -1;
    CHECK(n >= 3);
    if (n >= 3) {
        start = ids[0], end = ids[n - 1];
        char piece[64];
        eng_token_piece(v, start, true, piece, sizeof piece);
        CHECK_MSG(strcmp(piece, "<|im_start|>") == 0, "first piece \"%s\"", piece);
        CHECK_MSG(eng_token_piece(v, start, false, piece, sizeof piece) == 0,
                  "control tokens render only with special");
        CHECK(eng_vocab_is_eog(v, end));
    }
    int64_t m = eng_tokenize(v, text, strlen(text), true, false, ids, 64);
    CHECK_MSG(m > n && ids[0] != start, "without parse_special the markers are text (%lld ids)",
              (long long)m);
    /* a buffer too small: the count still comes back */
    CHECK(eng_tokenize(v, text, strlen(text), true, true, ids, 1) == n);
    eng_vocab_destroy(v);

    snprintf(path, sizeof path, "%s/models/stories260K.gguf", dir);
    v = open_vocab(path);
    if (!v)
        return;
    n = eng_tokenize(v, "Once upon", 9, true, false, ids, 64);
    CHECK_MSG(n >= 2 && ids[0] == 1, "SPM adds BOS (id 1) by default");
    n = eng_tokenize(v, "", 0, true, false, ids, 64);
    CHECK_MSG(n == 1 && ids[0] == 1, "empty text: BOS only (%lld ids)", (long long)n);
    /* bytes without a piece fall back to <0xXX> tokens and come back intact */
    const char odd[] = "\xe2\x82\xac\x01";
    n = eng_tokenize(v, odd, 4, false, false, ids, 64);
    char joined[64];
    size_t jl = detokenize(v, ids, n, joined, sizeof joined);
    CHECK_MSG(jl == 5 && memcmp(joined, " \xe2\x82\xac\x01", 5) == 0, "byte fallback round trip");
    /* measured without a buffer; a short one holds the start, terminated */
    char small[3];
    CHECK(eng_detokenize(v, ids, (size_t)n, false, NULL, 0) == 5);
    CHECK(eng_detokenize(v, ids, (size_t)n, false, small, sizeof small) == 5 && small[0] == ' ' &&
          small[2] == '\0');
    eng_vocab_destroy(v);
}

/* UTF-8 decoding never fails and keeps every byte. */
static void test_utf8(void)
{
    size_t l;
    CHECK(eng_utf8_decode("\xc3\xa9", 2, &l) == 0xE9 && l == 2);
    CHECK(eng_utf8_decode("\xf0\x9f\x98\x80", 4, &l) == 0x1F600 && l == 4);
    CHECK(eng_utf8_decode("\xe2\x82", 2, &l) > 0x10FFFF && l == 1); /* truncated */
    CHECK(eng_utf8_decode("\xc0\xaf", 2, &l) > 0x10FFFF && l == 1); /* overlong */
    CHECK(eng_utf8_decode("\x80", 1, &l) > 0x10FFFF && l == 1);
    CHECK(eng_is_letter(0x4E2D) && eng_is_letter('Q') && !eng_is_letter('1'));
    CHECK(eng_is_number(0x0663) && eng_is_whitespace(0x3000) && !eng_is_whitespace('x'));
}

/* Metadata that is not a tokenizer vkllm reads: refused with the reason. */
static void test_bad_metadata(void)
{
    /* a GGUF v3 with only tokenizer.ggml.model = "bert" */
    static const uint8_t file[] = {
        'G', 'G', 'U', 'F', 3,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   1,
        0,   0,   0,   0,   0,   0,   0,   20,  0,   0,   0,   0,   0,   0,   0,   't', 'o',
        'k', 'e', 'n', 'i', 'z', 'e', 'r', '.', 'g', 'g', 'm', 'l', '.', 'm', 'o', 'd', 'e',
        'l', 8,   0,   0,   0,   4,   0,   0,   0,   0,   0,   0,   0,   'b', 'e', 'r', 't',
    };
    cmp_gguf *g = NULL;
    char err[256] = "";
    CHECK(cmp_gguf_open_memory(file, sizeof file, &g, err, sizeof err) == CMP_GGUF_OK);
    if (!g)
        return;
    eng_vocab *v = eng_vocab_load(g, err, sizeof err);
    CHECK(v == NULL);
    CHECK_MSG(strstr(err, "\"bert\" is not supported") != NULL, "message: %s", err);
    eng_vocab_destroy(v);
    cmp_gguf_close(g);
}

int main(int argc, char **argv)
{
    static const t_case cases[] = {
        {"utf8", test_utf8, false},
        {"llama_spm", test_llama_spm, false},
        {"llama_bpe", test_llama_bpe, false},
        {"gpt2", test_gpt2, false},
        {"qwen2", test_qwen2, false},
        {"special", test_special, false},
        {"bad_metadata", test_bad_metadata, false},
    };
    return t_main(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
}
