/* SentencePiece-style and byte-level BPE tokenizers (see eng_vocab.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng_unicode.h"
#include "eng_vocab.h"

/* Token types of tokenizer.ggml.token_type, as llama.cpp defines them. */
enum {
    TOK_NORMAL = 1,
    TOK_UNKNOWN = 2,
    TOK_CONTROL = 3,
    TOK_USER = 4,
    TOK_UNUSED = 5,
    TOK_BYTE = 6
};

typedef enum { PRE_NONE, PRE_GPT2, PRE_LLAMA3, PRE_QWEN2 } pre_kind;

/* ---- a string → index map (open addressing over keys kept elsewhere) ---- */

typedef struct strmap_entry {
    const char *key;
    uint32_t len;
    uint32_t val;
} strmap_entry;

typedef struct strmap {
    strmap_entry *slots;
    uint32_t mask; /* capacity - 1, capacity a power of two */
} strmap;

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
    return h;
}

static bool strmap_init(strmap *m, uint32_t n)
{
    uint32_t cap = 16;
    while (cap < 2 * (uint64_t)n)
        cap *= 2;
    m->slots = calloc(cap, sizeof *m->slots);
    m->mask = cap - 1;
    return m->slots != NULL;
}

/* The slot holding key, or the empty slot where it would go. */
static strmap_entry *strmap_slot(const strmap *m, const char *key, size_t len)
{
    for (uint64_t i = hash_bytes(key, len) & m->mask;; i = (i + 1) & m->mask) {
        strmap_entry *e = &m->slots[i];
        if (!e->key || (e->len == len && memcmp(e->key, key, len) == 0))
            return e;
    }
}

/* Adds key → val unless key is present (the first occurrence wins, as in llama.cpp). */
static void strmap_put(strmap *m, const char *key, size_t len, uint32_t val)
{
    strmap_entry *e = strmap_slot(m, key, len);
    if (!e->key)
        *e = (strmap_entry){key, (uint32_t)len, val};
}

static bool strmap_get(const strmap *m, const char *key, size_t len, uint32_t *val)
{
    const strmap_entry *e = strmap_slot(m, key, len);
    if (e->key)
        *val = e->val;
    return e->key != NULL;
}

/* ---- the vocabulary ---- */

typedef struct token {
    uint32_t off, len; /* text in v->text */
    float score;
    uint8_t type;
} token;

struct eng_vocab {
    bool bpe;
    pre_kind pre;
    const char *kind;
    uint32_t n;
    token *tok;
    char *text;       /* every token's text, one after another */
    strmap by_text;   /* token text → id */
    char *merge_text; /* BPE: every merge "left right", one after another */
    strmap merges;    /* "left right" → rank */
    int32_t bos, eos, eot, eom, unk;
    bool add_bos, add_eos, add_space_prefix, ignore_merges;
    int32_t byte_token[256]; /* SPM: <0xXX>; BPE: the byte's printable character; -1 none */
    uint32_t *special;       /* control and user-defined tokens, longest text first */
    uint32_t n_special;
    uint32_t byte_to_cp[256]; /* BPE: GPT-2's printable character for each byte */
};

static bool fail(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool fail(char *err, size_t err_size, const char *fmt, ...)
{
    if (err && err_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return false;
}

static const char *tok_text(const eng_vocab *v, uint32_t id)
{
    return v->text + v->tok[id].off;
}

static bool find_token(const eng_vocab *v, const char *s, size_t n, uint32_t *id)
{
    return strmap_get(&v->by_text, s, n, id);
}

/* GPT-2's byte ↔ character table: printable Latin-1 bytes stand for themselves, the
 * others for U+0100 onwards in byte order. */
static void init_byte_chars(eng_vocab *v)
{
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; b++) {
        bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
        v->byte_to_cp[b] = printable ? b : next++;
    }
}

/* Special tokens sort longest text first (then by id), so the longest match wins. */
typedef struct special_key {
    uint32_t len, id;
} special_key;

static int cmp_special(const void *a, const void *b)
{
    const special_key *x = a, *y = b;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int32_t get_id(const cmp_gguf *g, const char *key, int32_t fallback, uint32_t n)
{
    uint32_t id;
    if (cmp_gguf_get_u32(g, key, &id) != CMP_GGUF_OK)
        return fallback;
    return id < n ? (int32_t)id : -1; /* e.g. 4294967295 for "none" */
}

static bool get_flag(const cmp_gguf *g, const char *key, bool fallback)
{
    bool b;
    return cmp_gguf_get_bool(g, key, &b) == CMP_GGUF_OK ? b : fallback;
}

static bool load_tokens(eng_vocab *v, const cmp_gguf *g, char *err, size_t err_size)
{
    cmp_gguf_value tokens, scores, types;
    if (cmp_gguf_get_array(g, "tokenizer.ggml.tokens", CMP_GGUF_STRING, &tokens) != CMP_GGUF_OK)
        return fail(err, err_size, "tokenizer.ggml.tokens is missing or not an array of strings");
    if (tokens.arr.count == 0 || tokens.arr.count > (1u << 24))
        return fail(err, err_size, "tokenizer.ggml.tokens holds %llu tokens (1 to 2^24 allowed)",
                    (unsigned long long)tokens.arr.count);
    v->n = (uint32_t)tokens.arr.count;
    bool has_scores = cmp_gguf_get_array(g, "tokenizer.ggml.scores", -1, &scores) == CMP_GGUF_OK;
    bool has_types = cmp_gguf_get_array(g, "tokenizer.ggml.token_type", -1, &types) == CMP_GGUF_OK;
    if ((has_scores && scores.arr.count != v->n) || (has_types && types.arr.count != v->n))
        return fail(err, err_size,
                    "tokenizer.ggml.scores or token_type has a length other than the %u tokens",
                    v->n);
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < v->n; i++) {
        cmp_gguf_str s;
        cmp_gguf_array_str(&tokens, i, &s);
        bytes += s.len;
    }
    v->tok = calloc(v->n, sizeof *v->tok);
    v->text = malloc(bytes + 1);
    if (!v->tok || !v->text || !strmap_init(&v->by_text, v->n))
        return fail(err, err_size, "out of host memory for %u tokens", v->n);
    uint64_t at = 0;
    for (uint32_t i = 0; i < v->n; i++) {
        cmp_gguf_str s;
        double score = 0;
        int64_t type = TOK_NORMAL;
        cmp_gguf_array_str(&tokens, i, &s);
        if ((has_scores && !cmp_gguf_array_num(&scores, i, &score)) ||
            (has_types && !cmp_gguf_array_int(&types, i, &type)))
            return fail(err, err_size, "token %u: score or type is not a number", i);
        memcpy(v->text + at, s.ptr, s.len);
        v->tok[i] = (token){(uint32_t)at, (uint32_t)s.len, (float)score, (uint8_t)type};
        strmap_put(&v->by_text, v->text + at, s.len, i);
        at += s.len;
    }
    return true;
}

static bool load_merges(eng_vocab *v, const cmp_gguf *g, char *err, size_t err_size)
{
    cmp_gguf_value merges;
    if (cmp_gguf_get_array(g, "tokenizer.ggml.merges", CMP_GGUF_STRING, &merges) != CMP_GGUF_OK)
        return fail(err, err_size, "a BPE tokenizer needs tokenizer.ggml.merges (strings)");
    if (merges.arr.count > (1u << 24))
        return fail(err, err_size, "tokenizer.ggml.merges holds %llu merges (at most 2^24)",
                    (unsigned long long)merges.arr.count);
    v->merge_text = malloc(merges.arr.bytes + 1);
    if (!v->merge_text || !strmap_init(&v->merges, (uint32_t)merges.arr.count))
        return fail(err, err_size, "out of host memory for the merges");
    uint64_t at = 0;
    for (uint32_t i = 0; i < merges.arr.count; i++) {
        cmp_gguf_str s;
        cmp_gguf_array_str(&merges, i, &s);
        memcpy(v->merge_text + at, s.ptr, s.len);
        strmap_put(&v->merges, v->merge_text + at, s.len, i);
        at += s.len;
    }
    return true;
}

static bool load_kind(eng_vocab *v, const cmp_gguf *g, char *err, size_t err_size)
{
    cmp_gguf_str model, pre = {"default", 7};
    if (cmp_gguf_get_str(g, "tokenizer.ggml.model", &model) != CMP_GGUF_OK)
        return fail(err, err_size, "tokenizer.ggml.model is missing: the file has no tokenizer");
    cmp_gguf_get_str(g, "tokenizer.ggml.pre", &pre);
    if (cmp_gguf_str_eq(model, "llama")) {
        v->kind = "spm";
        return true;
    }
    if (!cmp_gguf_str_eq(model, "gpt2"))
        return fail(err, err_size,
                    "tokenizer model \"%.*s\" is not supported (vkllm reads \"llama\" and "
                    "\"gpt2\")",
                    (int)model.len, model.ptr);
    v->bpe = true;
    static const struct {
        const char *name;
        pre_kind kind;
        const char *label;
    } pres[] = {
        {"default", PRE_GPT2, "bpe/gpt2"},
        {"gpt-2", PRE_GPT2, "bpe/gpt2"},
        {"gpt2", PRE_GPT2, "bpe/gpt2"},
        {"llama-bpe", PRE_LLAMA3, "bpe/llama3"},
        {"llama3", PRE_LLAMA3, "bpe/llama3"},
        {"llama-v3", PRE_LLAMA3, "bpe/llama3"},
        {"smollm", PRE_GPT2, "bpe/gpt2"},
        {"qwen2", PRE_QWEN2, "bpe/qwen2"},
        {"deepseek-r1-qwen", PRE_QWEN2, "bpe/qwen2"},
    };
    for (size_t i = 0; i < sizeof pres / sizeof pres[0]; i++)
        if (cmp_gguf_str_eq(pre, pres[i].name)) {
            v->pre = pres[i].kind;
            v->kind = pres[i].label;
            v->ignore_merges = v->pre == PRE_LLAMA3;
            return true;
        }
    return fail(err, err_size,
                "pre-tokenizer \"%.*s\" is not supported (vkllm knows gpt-2, llama-bpe, "
                "qwen2, smollm)",
                (int)pre.len, pre.ptr);
}

eng_vocab *eng_vocab_load(const cmp_gguf *g, char *err, size_t err_size)
{
    eng_vocab *v = calloc(1, sizeof *v);
    if (!v) {
        fail(err, err_size, "out of host memory");
        return NULL;
    }
    if (!load_kind(v, g, err, err_size) || !load_tokens(v, g, err, err_size) ||
        (v->bpe && !load_merges(v, g, err, err_size)))
        goto bad;
    /* llama.cpp's defaults, then the metadata */
    v->bos = get_id(g, "tokenizer.ggml.bos_token_id", v->bpe ? 11 : 1, v->n);
    v->eos = get_id(g, "tokenizer.ggml.eos_token_id", v->bpe ? 11 : 2, v->n);
    v->unk = get_id(g, "tokenizer.ggml.unknown_token_id", v->bpe ? -1 : 0, v->n);
    v->eot = get_id(g, "tokenizer.ggml.eot_token_id", -1, v->n);
    v->eom = get_id(g, "tokenizer.ggml.eom_token_id", -1, v->n);
    v->add_bos = get_flag(g, "tokenizer.ggml.add_bos_token", !v->bpe || v->pre == PRE_LLAMA3);
    v->add_eos = get_flag(g, "tokenizer.ggml.add_eos_token", false);
    v->add_space_prefix = get_flag(g, "tokenizer.ggml.add_space_prefix", !v->bpe);

    init_byte_chars(v);
    for (uint32_t b = 0; b < 256; b++) {
        char name[8];
        uint32_t id;
        size_t len = v->bpe ? eng_utf8_encode(v->byte_to_cp[b], name)
                            : (size_t)snprintf(name, sizeof name, "<0x%02X>", b);
        v->byte_token[b] = find_token(v, name, len, &id) ? (int32_t)id : -1;
    }
    v->special = malloc(sizeof *v->special * v->n);
    special_key *keys = malloc(sizeof *keys * v->n);
    if (!v->special || !keys) {
        free(keys);
        fail(err, err_size, "out of host memory");
        goto bad;
    }
    for (uint32_t i = 0; i < v->n; i++)
        if ((v->tok[i].type == TOK_CONTROL || v->tok[i].type == TOK_USER) && v->tok[i].len > 0)
            keys[v->n_special++] = (special_key){v->tok[i].len, i};
    qsort(keys, v->n_special, sizeof *keys, cmp_special);
    for (uint32_t i = 0; i < v->n_special; i++)
        v->special[i] = keys[i].id;
    free(keys);
    return v;
bad:
    eng_vocab_destroy(v);
    return NULL;
}

void eng_vocab_destroy(eng_vocab *v)
{
    if (!v)
        return;
    free(v->tok);
    free(v->text);
    free(v->by_text.slots);
    free(v->merge_text);
    free(v->merges.slots);
    free(v->special);
    free(v);
}

uint32_t eng_vocab_size(const eng_vocab *v)
{
    return v->n;
}

bool eng_vocab_adds_bos(const eng_vocab *v)
{
    return v->add_bos && v->bos >= 0;
}

int32_t eng_vocab_bos(const eng_vocab *v)
{
    return v->bos;
}

int32_t eng_vocab_eos(const eng_vocab *v)
{
    return v->eos;
}

const char *eng_vocab_kind(const eng_vocab *v)
{
    return v->kind;
}

bool eng_vocab_is_eog(const eng_vocab *v, int32_t id)
{
    if (id < 0 || (uint32_t)id >= v->n)
        return false;
    if (id == v->eos || id == v->eot || id == v->eom)
        return true;
    if (v->tok[id].type != TOK_CONTROL)
        return false;
    static const char *const ends[] = {"<|eot_id|>", "<|im_end|>", "<|endoftext|>",
                                       "<|end|>",    "<|eom_id|>", "<end_of_turn>"};
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++)
        if (v->tok[id].len == strlen(ends[i]) &&
            memcmp(tok_text(v, id), ends[i], v->tok[id].len) == 0)
            return true;
    return false;
}

/* ---- output of ids ---- */

typedef struct out_ids {
    int32_t *ids;
    size_t cap;
    int64_t n;
} out_ids;

static void emit(out_ids *o, int32_t id)
{
    if (id < 0)
        return;
    if ((size_t)o->n < o->cap)
        o->ids[o->n] = id;
    o->n++;
}

/* ---- merging adjacent symbols, best first ---- */

typedef struct symbol {
    int32_t prev, next;
    uint32_t start, n; /* bytes of the word; n = 0 once merged into its left neighbour */
} symbol;

typedef struct bigram {
    int32_t left, right;
    float score; /* higher first: the SPM score, or minus the BPE rank */
    uint32_t size;
} bigram;

typedef struct merger {
    const eng_vocab *v;
    const char *word;
    symbol *sym;
    bigram *heap;
    uint32_t heap_n, heap_cap;
    char *key; /* BPE: "left right" */
} merger;

static bool heap_before(const bigram *a, const bigram *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static bool heap_push(merger *m, bigram b)
{
    if (m->heap_n == m->heap_cap) {
        uint32_t cap = m->heap_cap ? 2 * m->heap_cap : 64;
        bigram *h = realloc(m->heap, sizeof *h * cap);
        if (!h)
            return false;
        m->heap = h;
        m->heap_cap = cap;
    }
    uint32_t i = m->heap_n++;
    while (i > 0 && heap_before(&b, &m->heap[(i - 1) / 2])) {
        m->heap[i] = m->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    m->heap[i] = b;
    return true;
}

static bigram heap_pop(merger *m)
{
    bigram top = m->heap[0], last = m->heap[--m->heap_n];
    uint32_t i = 0;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= m->heap_n)
            break;
        if (c + 1 < m->heap_n && heap_before(&m->heap[c + 1], &m->heap[c]))
            c++;
        if (!heap_before(&m->heap[c], &last))
            break;
        m->heap[i] = m->heap[c];
        i = c;
    }
    if (m->heap_n)
        m->heap[i] = last;
    return top;
}

/* Queues the merge of symbols left and right when the vocabulary has it. */
static bool try_bigram(merger *m, int32_t left, int32_t right)
{
    if (left < 0 || right < 0)
        return true;
    const symbol *l = &m->sym[left], *r = &m->sym[right];
    const eng_vocab *v = m->v;
    uint32_t id;
    float score;
    if (v->bpe) {
        memcpy(m->key, m->word + l->start, l->n);
        m->key[l->n] = ' ';
        memcpy(m->key + l->n + 1, m->word + r->start, r->n);
        uint32_t rank;
        if (!strmap_get(&v->merges, m->key, l->n + 1 + r->n, &rank))
            return true;
        score = -(float)rank;
    } else {
        if (!find_token(v, m->word + l->start, l->n + r->n, &id))
            return true;
        score = v->tok[id].score;
    }
    return heap_push(m, (bigram){left, right, score, l->n + r->n});
}

/* Splits word[0..len) into characters and merges them; the symbols with n > 0 remain,
 * linked from sym[0]. */
static bool merge_word(merger *m, const char *word, uint32_t len)
{
    m->word = word;
    m->heap_n = 0;
    uint32_t count = 0;
    for (uint32_t at = 0; at < len; count++) {
        uint32_t n = (uint32_t)eng_utf8_len(word + at, len - at);
        m->sym[count] = (symbol){(int32_t)count - 1, -1, at, n};
        if (count)
            m->sym[count - 1].next = (int32_t)count;
        at += n;
    }
    for (uint32_t i = 1; i < count; i++)
        if (!try_bigram(m, (int32_t)i - 1, (int32_t)i))
            return false;
    while (m->heap_n) {
        bigram b = heap_pop(m);
        symbol *l = &m->sym[b.left], *r = &m->sym[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size)
            continue; /* outdated: one side has merged since */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            m->sym[r->next].prev = b.left;
        if (!try_bigram(m, l->prev, b.left) || !try_bigram(m, b.left, l->next))
            return false;
    }
    return true;
}

/* Emits the ids of the merged symbols; a symbol without a token falls back to its bytes. */
static void emit_symbols(const merger *m, uint32_t len, out_ids *o)
{
    const eng_vocab *v = m->v;
    for (int32_t i = len ? 0 : -1; i >= 0; i = m->sym[i].next) {
        const symbol *s = &m->sym[i];
        uint32_t id;
        if (find_token(v, m->word + s->start, s->n, &id)) {
            emit(o, (int32_t)id);
            continue;
        }
        for (uint32_t j = 0; j < s->n; j++) {
            uint8_t byte = (uint8_t)m->word[s->start + j];
            if (v->bpe) {
                /* BPE words are already printable characters: look each byte up as a
                 * one-byte text, as llama.cpp does */
                if (find_token(v, m->word + s->start + j, 1, &id))
                    emit(o, (int32_t)id);
            } else {
                emit(o, v->byte_token[byte] >= 0 ? v->byte_token[byte] : v->unk);
            }
        }
    }
}

static bool merger_reserve(merger *m, size_t len, size_t *cap)
{
    if (len <= *cap)
        return true;
    symbol *s = realloc(m->sym, sizeof *s * len);
    if (s)
        m->sym = s;
    char *k = s ? realloc(m->key, 2 * len + 2) : NULL;
    if (k)
        m->key = k;
    if (!s || !k)
        return false;
    *cap = len;
    return true;
}

/* ---- SentencePiece-style ---- */

static bool spm_fragment(merger *m, size_t *cap, const char *text, size_t len, bool space_prefix,
                         out_ids *o)
{
    /* escape: a leading space, and every ' ' as U+2581 (3 bytes) */
    size_t spaces = space_prefix;
    for (size_t i = 0; i < len; i++)
        spaces += text[i] == ' ';
    size_t n = len + space_prefix + 2 * spaces;
    char *w = malloc(n + 1);
    if (!w || !merger_reserve(m, n, cap)) {
        free(w);
        return false;
    }
    size_t at = 0;
    for (size_t i = 0; i < len + space_prefix; i++) {
        char c = space_prefix ? (i == 0 ? ' ' : text[i - 1]) : text[i];
        if (c == ' ') {
            memcpy(w + at, "\xe2\x96\x81", 3);
            at += 3;
        } else {
            w[at++] = c;
        }
    }
    bool ok = merge_word(m, w, (uint32_t)at);
    if (ok)
        emit_symbols(m, (uint32_t)at, o);
    free(w);
    return ok;
}

/* ---- byte-level BPE: pre-tokenizers ---- */

typedef struct cps {
    uint32_t *cp;
    uint32_t *at; /* byte offset of each code point; at[n] = length */
    size_t n;
} cps;

static bool is_ws(const cps *c, size_t i)
{
    return i < c->n && eng_is_whitespace(c->cp[i]);
}

static bool is_l(const cps *c, size_t i)
{
    return i < c->n && eng_is_letter(c->cp[i]);
}

static bool is_n(const cps *c, size_t i)
{
    return i < c->n && eng_is_number(c->cp[i]);
}

/* Neither whitespace, a letter nor a number: [^\s\p{L}\p{N}] */
static bool is_other(const cps *c, size_t i)
{
    return i < c->n && !is_ws(c, i) && !is_l(c, i) && !is_n(c, i);
}

static bool is_newline(const cps *c, size_t i)
{
    return i < c->n && (c->cp[i] == '\r' || c->cp[i] == '\n');
}

static uint32_t lower_ascii(uint32_t cp)
{
    return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
}

/* Length of a contraction 's 't 're 've 'm 'll 'd at i (case-insensitive for llama3 and
 * qwen2), or 0. */
static size_t contraction(const cps *c, size_t i, bool any_case)
{
    if (c->cp[i] != '\'' || i + 1 >= c->n)
        return 0;
    uint32_t a = c->cp[i + 1], b = i + 2 < c->n ? c->cp[i + 2] : 0;
    if (any_case)
        a = lower_ascii(a), b = lower_ascii(b);
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
        return 3;
    return 0;
}

/* Whitespace alternatives shared by the patterns: \s*[\r\n]+ (llama3, qwen2), then
 * \s+(?!\S), then \s+. */
static size_t whitespace_match(const cps *c, size_t i, bool newline_rule)
{
    size_t j = i;
    while (is_ws(c, j))
        j++;
    if (newline_rule) {
        size_t last_nl = SIZE_MAX;
        for (size_t k = i; k < j; k++)
            if (is_newline(c, k))
                last_nl = k;
        if (last_nl != SIZE_MAX)
            return last_nl + 1 - i;
    }
    if (j == c->n || j - i == 1)
        return j - i;
    return j - 1 - i; /* leave the last space to start the next word */
}

/* Length in code points of the pre-token starting at i. */
static size_t pre_token(const eng_vocab *v, const cps *c, size_t i)
{
    size_t j;
    if (v->pre == PRE_GPT2) {
        /* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
        if ((j = contraction(c, i, false)))
            return j;
        size_t s = c->cp[i] == ' ' ? 1 : 0;
        if (is_l(c, i + s)) {
            for (j = i + s; is_l(c, j); j++) {
            }
            return j - i;
        }
        if (is_n(c, i + s)) {
            for (j = i + s; is_n(c, j); j++) {
            }
            return j - i;
        }
        if (is_other(c, i + s)) {
            for (j = i + s; is_other(c, j); j++) {
            }
            return j - i;
        }
        return is_ws(c, i) ? whitespace_match(c, i, false) : 1;
    }
    /* llama3 / qwen2:
     * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
     *  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+      (qwen2: \p{N} one at a time) */
    if ((j = contraction(c, i, true)))
        return j;
    if (is_l(c, i) || (!is_newline(c, i) && !is_n(c, i) && is_l(c, i + 1))) {
        for (j = i + 1; is_l(c, j); j++) {
        }
        return j - i;
    }
    if (is_n(c, i)) {
        size_t max = v->pre == PRE_QWEN2 ? 1 : 3;
        for (j = i; j < i + max && is_n(c, j); j++) {
        }
        return j - i;
    }
    size_t s = c->cp[i] == ' ' ? 1 : 0;
    if (is_other(c, i + s)) {
        for (j = i + s; is_other(c, j); j++) {
        }
        while (is_newline(c, j))
            j++;
        return j - i;
    }
    return is_ws(c, i) ? whitespace_match(c, i, true) : 1;
}

static bool bpe_word(merger *m, size_t *cap, const char *bytes, size_t len, out_ids *o)
{
    const eng_vocab *v = m->v;
    /* each byte as its printable character (at most 2 UTF-8 bytes) */
    char *w = malloc(2 * len + 1);
    if (!w || !merger_reserve(m, 2 * len, cap)) {
        free(w);
        return false;
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += eng_utf8_encode(v->byte_to_cp[(uint8_t)bytes[i]], w + n);
    uint32_t id;
    bool ok = true;
    if (v->ignore_merges && find_token(v, w, n, &id))
        emit(o, (int32_t)id);
    else if ((ok = merge_word(m, w, (uint32_t)n)))
        emit_symbols(m, (uint32_t)n, o);
    free(w);
    return ok;
}

static bool bpe_fragment(merger *m, size_t *cap, const char *text, size_t len, out_ids *o)
{
    cps c = {malloc(sizeof *c.cp * (len + 1)), malloc(sizeof *c.at * (len + 1)), 0};
    bool ok = c.cp && c.at;
    for (size_t at = 0; ok && at < len;) {
        size_t l;
        c.at[c.n] = (uint32_t)at;
        c.cp[c.n++] = eng_utf8_decode(text + at, len - at, &l);
        at += l;
    }
    if (ok)
        c.at[c.n] = (uint32_t)len;
    for (size_t i = 0; ok && i < c.n;) {
        size_t k = pre_token(m->v, &c, i);
        ok = bpe_word(m, cap, text + c.at[i], c.at[i + k] - c.at[i], o);
        i += k;
    }
    free(c.cp);
    free(c.at);
    return ok;
}

/* ---- special tokens, then the fragments between them ---- */

/* The special token starting at text[0..len), or -1. */
static int32_t special_at(const eng_vocab *v, const char *text, size_t len, bool parse_special)
{
    for (uint32_t i = 0; i < v->n_special; i++) {
        const token *t = &v->tok[v->special[i]];
        if (t->type == TOK_CONTROL && !parse_special)
            continue;
        if (t->len <= len && memcmp(text, v->text + t->off, t->len) == 0)
            return (int32_t)v->special[i];
    }
    return -1;
}

int64_t eng_tokenize(const eng_vocab *v, const char *text, size_t len, bool add_special,
                     bool parse_special, int32_t *out, size_t cap)
{
    out_ids o = {out, out ? cap : 0, 0};
    merger m = {.v = v};
    size_t mcap = 0;
    bool ok = true;
    if (add_special && v->add_bos)
        emit(&o, v->bos);
    bool prev_special = true; /* SPM puts a space before text at the start or after a special */
    size_t frag = 0;
    for (size_t i = 0; ok && i <= len;) {
        int32_t sp = i < len ? special_at(v, text + i, len - i, parse_special) : -1;
        if (sp < 0 && i < len) {
            i++;
            continue;
        }
        if (i > frag) {
            const char *f = text + frag;
            size_t fl = i - frag;
            ok = v->bpe ? bpe_fragment(&m, &mcap, f, fl, &o)
                        : spm_fragment(&m, &mcap, f, fl, v->add_space_prefix && prev_special, &o);
            prev_special = false;
        }
        if (sp < 0)
            break;
        emit(&o, sp);
        prev_special = true;
        i += v->tok[sp].len;
        frag = i;
    }
    if (ok && add_special && v->add_eos)
        emit(&o, v->eos);
    free(m.sym);
    free(m.heap);
    free(m.key);
    return ok ? o.n : -1;
}

/* ---- ids → bytes ---- */

/* Appends n bytes to buf within cap; the total length counts them all. */
static void put(char *buf, size_t cap, size_t *len, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++, (*len)++)
        if (*len + 1 < cap)
            buf[*len] = s[i];
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

size_t eng_token_piece(const eng_vocab *v, int32_t id, bool special, char *buf, size_t cap)
{
    size_t len = 0;
    if (id >= 0 && (uint32_t)id < v->n) {
        const token *t = &v->tok[id];
        const char *s = v->text + t->off;
        if (t->type == TOK_CONTROL || t->type == TOK_UNUSED) {
            if (special)
                put(buf, cap, &len, s, t->len);
        } else if (t->type == TOK_USER) {
            put(buf, cap, &len, s, t->len);
        } else if (t->type == TOK_BYTE && !v->bpe && t->len == 6 && hex_digit(s[3]) >= 0 &&
                   hex_digit(s[4]) >= 0) {
            char b = (char)(hex_digit(s[3]) * 16 + hex_digit(s[4]));
            put(buf, cap, &len, &b, 1);
        } else if (!v->bpe) {
            /* U+2581 stands for a space */
            for (uint32_t i = 0; i < t->len;) {
                if (i + 3 <= t->len && memcmp(s + i, "\xe2\x96\x81", 3) == 0) {
                    put(buf, cap, &len, " ", 1);
                    i += 3;
                } else {
                    put(buf, cap, &len, s + i++, 1);
                }
            }
        } else {
            /* each character stands for one byte (GPT-2's table) */
            for (uint32_t i = 0; i < t->len;) {
                size_t l;
                uint32_t cp = eng_utf8_decode(s + i, t->len - i, &l);
                uint32_t b = 256;
                if (cp < 256 && v->byte_to_cp[cp] == cp)
                    b = cp;
                else if (cp >= 256 && cp < 256 + 68)
                    for (b = 0; b < 256 && v->byte_to_cp[b] != cp; b++) {
                    }
                char c = (char)b;
                if (b < 256)
                    put(buf, cap, &len, &c, 1);
                else
                    put(buf, cap, &len, s + i, l); /* not from the table: as written */
                i += (uint32_t)l;
            }
        }
    }
    if (cap)
        buf[len < cap ? len : cap - 1] = '\0';
    return len;
}

size_t eng_detokenize(const eng_vocab *v, const int32_t *ids, size_t n, bool special, char *buf,
                      size_t cap)
{
    size_t len = 0;
    if (cap)
        buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t room = len < cap ? cap - len : 0;
        len += eng_token_piece(v, ids[i], special, room ? buf + len : NULL, room);
    }
    return len;
}
