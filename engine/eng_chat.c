/* Chat formats and conversations (eng_chat.h). */
#include "eng_chat.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmp_buf.h"

/* ---- styles ---- */

static const char *const style_names[ENG_CHAT_COUNT] = {
    "none",   "chatml", "chatml-nothink", "llama3",      "llama2", "mistral",
    "zephyr", "phi3",   "deepseek",       "deepseek-r1", "gemma",
};

const char *eng_chat_style_name(eng_chat_style style)
{
    return style < ENG_CHAT_COUNT ? style_names[style] : "?";
}

bool eng_chat_style_parse(const char *name, eng_chat_style *out)
{
    for (int s = ENG_CHAT_NONE + 1; s < ENG_CHAT_COUNT; s++) {
        if (strcmp(name, style_names[s]) == 0) {
            *out = (eng_chat_style)s;
            return true;
        }
    }
    return false;
}

const char *eng_chat_style_list(void)
{
    return "chatml, chatml-nothink, llama3, llama2, mistral, zephyr, phi3, deepseek, deepseek-r1, "
           "gemma";
}

/* deepseek-r1's markers: fullwidth bars (U+FF5C), U+2581 for the spaces */
#define R1_USER      "<｜User｜>"
#define R1_ASSISTANT "<｜Assistant｜>"
#define R1_EOS       "<｜end▁of▁sentence｜>"

/* The first `needle` in text[0..len), or NULL. */
static const char *find(const char *text, size_t len, const char *needle)
{
    size_t nl = strlen(needle);
    for (size_t i = 0; i + nl <= len; i++)
        if (text[i] == needle[0] && memcmp(text + i, needle, nl) == 0)
            return text + i;
    return NULL;
}

static bool contains(const char *text, size_t len, const char *needle)
{
    return find(text, len, needle) != NULL;
}

eng_chat_style eng_chat_detect(const char *text, size_t len)
{
    if (!text)
        return ENG_CHAT_NONE;
    if (contains(text, len, R1_USER) && contains(text, len, R1_ASSISTANT))
        return ENG_CHAT_DEEPSEEK_R1;
    if (contains(text, len, "<|im_start|>"))
        return ENG_CHAT_CHATML;
    if (contains(text, len, "<|start_header_id|>") && contains(text, len, "<|end_header_id|>"))
        return ENG_CHAT_LLAMA3;
    if (contains(text, len, "[INST]"))
        return contains(text, len, "<<SYS>>") ? ENG_CHAT_LLAMA2 : ENG_CHAT_MISTRAL;
    if (contains(text, len, "<|assistant|>"))
        return contains(text, len, "<|end|>") ? ENG_CHAT_PHI3 : ENG_CHAT_ZEPHYR;
    if (contains(text, len, "### Instruction:") && contains(text, len, "<|EOT|>"))
        return ENG_CHAT_DEEPSEEK;
    if (contains(text, len, "<start_of_turn>"))
        return ENG_CHAT_GEMMA;
    return ENG_CHAT_NONE;
}

eng_chat_style eng_chat_thinking(eng_chat_style style, const char *tmpl, size_t len,
                                 bool enable_thinking)
{
    if (style == ENG_CHAT_CHATML && !enable_thinking && tmpl &&
        contains(tmpl, len, "enable_thinking"))
        return ENG_CHAT_CHATML_NOTHINK;
    return style;
}

#define THINK_OPEN  "<think>"
#define THINK_CLOSE "</think>"
/* What opens an assistant turn of chatml-nothink after its role line. */
#define EMPTY_THINK THINK_OPEN "\n\n" THINK_CLOSE "\n\n"

/* ---- reasoning ---- */

/* before the block; inside it, before its text; in its text; after it; content */
enum { T_START, T_OPENED, T_REASONING, T_AFTER, T_CONTENT };

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The length of the longest proper prefix of tag that text[0..len) ends with. */
static size_t tag_start(const char *text, size_t len, const char *tag)
{
    size_t k = strlen(tag) - 1;
    for (k = k < len ? k : len; k > 0; k--)
        if (memcmp(text + len - k, tag, k) == 0)
            return k;
    return 0;
}

bool eng_chat_template_thinks(const char *tmpl, size_t len)
{
    return tmpl && contains(tmpl, len, THINK_OPEN);
}

bool eng_think_opened(const char *text, size_t len)
{
    while (len && is_space(text[len - 1]))
        len--;
    size_t tl = strlen(THINK_OPEN);
    return len >= tl && memcmp(text + len - tl, THINK_OPEN, tl) == 0;
}

void eng_think_init(eng_think *t, bool opened)
{
    t->state = opened ? T_OPENED : T_START;
    t->held.n = 0;
    t->held.failed = false;
}

/* Hands out what of held[0..n) is known; the rest stays held. At the end (`last`) all of
 * it goes. */
static void think_split(eng_think *t, bool last, cmp_buf *reasoning, cmp_buf *content)
{
    const char *h = t->held.p;
    size_t n = t->held.n, i = 0; /* h[0..i) is handed out */
    for (bool more = true; more;) {
        switch (t->state) {
        case T_START: { /* white space, then the block or the content */
            size_t s = i, tl = strlen(THINK_OPEN);
            while (s < n && is_space(h[s]))
                s++;
            if (n - s >= tl && memcmp(h + s, THINK_OPEN, tl) == 0) {
                i = s + tl;
                t->state = T_OPENED;
            } else if (!last && n - s < tl && memcmp(h + s, THINK_OPEN, n - s) == 0) {
                more = false; /* white space, or what may become the tag */
            } else {
                t->state = T_CONTENT;
            }
            break;
        }
        case T_OPENED:
        case T_AFTER: /* white space left out */
            while (i < n && is_space(h[i]))
                i++;
            if (i < n)
                t->state = t->state == T_OPENED ? T_REASONING : T_CONTENT;
            else
                more = false;
            break;
        case T_REASONING: {
            const char *close = find(h + i, n - i, THINK_CLOSE);
            size_t end = close  ? (size_t)(close - h)
                         : last ? n
                                : n - tag_start(h + i, n - i, THINK_CLOSE);
            size_t e = end;
            while (e > i && is_space(h[e - 1]))
                e--; /* the white space before a tag, or held until text follows it */
            cmp_buf_add(reasoning, h + i, e - i);
            if (close) {
                i = end + strlen(THINK_CLOSE);
                t->state = T_AFTER;
            } else {
                i = last ? n : e;
                more = false;
            }
            break;
        }
        default:
            cmp_buf_add(content, h + i, n - i);
            i = n;
            more = false;
            break;
        }
    }
    memmove(t->held.p, h + i, n - i);
    t->held.n = n - i;
}

bool eng_think_add(eng_think *t, const char *text, size_t n, cmp_buf *reasoning, cmp_buf *content)
{
    if (n == 0)
        return true;
    if (t->state == T_CONTENT && t->held.n == 0) {
        cmp_buf_add(content, text, n);
        return !content->failed;
    }
    cmp_buf_add(&t->held, text, n);
    if (t->held.failed)
        return false;
    think_split(t, false, reasoning, content);
    return !reasoning->failed && !content->failed;
}

bool eng_think_finish(eng_think *t, cmp_buf *reasoning, cmp_buf *content)
{
    if (t->held.n)
        think_split(t, true, reasoning, content);
    eng_think_init(t, false);
    return !reasoning->failed && !content->failed;
}

void eng_think_free(eng_think *t)
{
    free(t->held.p);
    *t = (eng_think){0};
}

/* ---- writing a conversation out ---- */

static void put(cmp_buf *b, const char *s)
{
    cmp_buf_add(b, s, strlen(s));
}

/* s without leading and trailing ASCII white space (the templates' `| trim`) */
static void put_trimmed(cmp_buf *b, const char *s)
{
    size_t n = strlen(s);
    while (n && is_space(s[0])) {
        s++;
        n--;
    }
    while (n && is_space(s[n - 1]))
        n--;
    cmp_buf_add(b, s, n);
}

static const char *role_name(eng_chat_role r)
{
    return r == ENG_CHAT_SYSTEM ? "system" : r == ENG_CHAT_USER ? "user" : "assistant";
}

/* The [INST] formats: a system message goes inside the next user message. */
static void put_inst(cmp_buf *b, eng_chat_style style, const char *eos, const eng_chat_msg *msgs,
                     size_t n)
{
    const char *system = NULL;
    bool after_reply = false;
    for (size_t i = 0; i < n; i++) {
        const eng_chat_msg *m = &msgs[i];
        if (m->role == ENG_CHAT_SYSTEM) {
            system = m->text;
            continue;
        }
        if (m->role == ENG_CHAT_ASSISTANT) {
            if (style == ENG_CHAT_LLAMA2) {
                put(b, " ");
                put_trimmed(b, m->text);
                put(b, " ");
            } else {
                put(b, m->text);
            }
            put(b, eos);
            after_reply = true;
            continue;
        }
        if (after_reply && style == ENG_CHAT_LLAMA2)
            put(b, "<s>");
        put(b, "[INST] ");
        if (system && style == ENG_CHAT_LLAMA2) {
            put(b, "<<SYS>>\n");
            put(b, system);
            put(b, "\n<</SYS>>\n\n");
        } else if (system) {
            put(b, system);
            put(b, "\n\n");
        }
        system = NULL;
        if (style == ENG_CHAT_LLAMA2)
            put_trimmed(b, m->text);
        else
            put(b, m->text);
        put(b, " [/INST]");
        after_reply = false;
    }
    if (system) { /* a system message and nothing after it */
        put(b, "[INST] ");
        put(b, system);
    }
}

/* gemma's turns: user and model; a system message (trimmed) opens the next user turn. */
static void put_gemma(cmp_buf *b, const eng_chat_msg *msgs, size_t n)
{
    const char *system = NULL;
    for (size_t i = 0; i < n; i++) {
        const eng_chat_msg *m = &msgs[i];
        if (m->role == ENG_CHAT_SYSTEM) {
            system = m->text;
            continue;
        }
        bool user = m->role == ENG_CHAT_USER;
        put(b, user ? "<start_of_turn>user\n" : "<start_of_turn>model\n");
        if (system && user) {
            put_trimmed(b, system);
            put(b, "\n\n");
            system = NULL;
        }
        put_trimmed(b, m->text);
        put(b, "<end_of_turn>\n");
    }
}

static void format_into(cmp_buf *b, eng_chat_style style, const char *eos, const eng_chat_msg *msgs,
                        size_t n, bool add_assistant)
{
    if (style == ENG_CHAT_LLAMA2 || style == ENG_CHAT_MISTRAL) {
        put_inst(b, style, eos, msgs, n);
        return; /* the reply follows [/INST] directly */
    }
    if (style == ENG_CHAT_GEMMA) {
        put_gemma(b, msgs, n);
        if (add_assistant)
            put(b, "<start_of_turn>model\n");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const eng_chat_msg *m = &msgs[i];
        const char *role = role_name(m->role);
        switch (style) {
        case ENG_CHAT_CHATML:
        case ENG_CHAT_CHATML_NOTHINK:
            put(b, "<|im_start|>"), put(b, role), put(b, "\n");
            if (style == ENG_CHAT_CHATML_NOTHINK && m->role == ENG_CHAT_ASSISTANT)
                put(b, EMPTY_THINK);
            put(b, m->text), put(b, "<|im_end|>\n");
            break;
        case ENG_CHAT_LLAMA3:
            put(b, "<|start_header_id|>"), put(b, role), put(b, "<|end_header_id|>\n\n");
            put_trimmed(b, m->text), put(b, "<|eot_id|>");
            break;
        case ENG_CHAT_ZEPHYR:
        case ENG_CHAT_PHI3:
            put(b, "<|"), put(b, role), put(b, "|>\n"), put(b, m->text);
            put(b, style == ENG_CHAT_PHI3 ? "<|end|>" : eos), put(b, "\n");
            break;
        case ENG_CHAT_DEEPSEEK:
            if (m->role == ENG_CHAT_SYSTEM)
                put(b, m->text), put(b, "\n");
            else if (m->role == ENG_CHAT_USER)
                put(b, "### Instruction:\n"), put(b, m->text), put(b, "\n");
            else
                put(b, "### Response:\n"), put(b, m->text), put(b, "\n<|EOT|>\n");
            break;
        case ENG_CHAT_DEEPSEEK_R1:
            if (m->role == ENG_CHAT_USER)
                put(b, R1_USER);
            if (m->role == ENG_CHAT_ASSISTANT) {
                put(b, R1_ASSISTANT);
                if (strstr(m->text, THINK_CLOSE) &&
                    strncmp(m->text, THINK_OPEN, strlen(THINK_OPEN)) != 0)
                    put(b, THINK_OPEN "\n"); /* the prompt opened it */
            }
            put(b, m->text);
            if (m->role == ENG_CHAT_ASSISTANT)
                put(b, R1_EOS);
            break;
        default: put(b, m->text); break;
        }
    }
    if (!add_assistant)
        return;
    switch (style) {
    case ENG_CHAT_CHATML: put(b, "<|im_start|>assistant\n"); break;
    case ENG_CHAT_CHATML_NOTHINK: put(b, "<|im_start|>assistant\n" EMPTY_THINK); break;
    case ENG_CHAT_LLAMA3: put(b, "<|start_header_id|>assistant<|end_header_id|>\n\n"); break;
    case ENG_CHAT_ZEPHYR:
    case ENG_CHAT_PHI3: put(b, "<|assistant|>\n"); break;
    case ENG_CHAT_DEEPSEEK: put(b, "### Response:\n"); break;
    case ENG_CHAT_DEEPSEEK_R1: put(b, R1_ASSISTANT THINK_OPEN "\n"); break;
    default: break;
    }
}

size_t eng_chat_format(eng_chat_style style, const char *eos, const eng_chat_msg *msgs, size_t n,
                       bool add_assistant, char *out, size_t cap)
{
    cmp_buf b = {0};
    format_into(&b, style, eos ? eos : "</s>", msgs, n, add_assistant);
    if (b.failed) {
        free(b.p);
        return SIZE_MAX;
    }
    if (cap) {
        size_t k = b.n < cap ? b.n : cap - 1;
        if (k)
            memcpy(out, b.p, k);
        out[k] = '\0';
    }
    free(b.p);
    return b.n;
}

/* ---- conversations ---- */

struct eng_chat {
    const eng_vocab *v;
    eng_chat_style style;
    char eos[64];
    eng_chat_msg *msgs; /* texts owned */
    size_t n_msgs, cap_msgs;
    cmp_buf held;     /* the conversation the session holds, written out */
    uint32_t n_held;  /* its tokens */
    int32_t *pending; /* reply tokens taken but not evaluated */
    size_t n_pending, cap_pending;
    int32_t *turn; /* what eng_chat_add_user hands out */
    size_t cap_turn;
    char err[256];
};

static eng_status fail(eng_chat *c, eng_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return st;
}

static bool push_msg(eng_chat *c, eng_chat_role role, const char *text, size_t len)
{
    if (c->n_msgs == c->cap_msgs) {
        size_t cap = c->cap_msgs ? 2 * c->cap_msgs : 8;
        eng_chat_msg *m = realloc(c->msgs, sizeof *m * cap);
        if (!m)
            return false;
        c->msgs = m;
        c->cap_msgs = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return false;
    memcpy(copy, text, len);
    copy[len] = '\0';
    c->msgs[c->n_msgs++] = (eng_chat_msg){role, copy};
    return true;
}

/* Removes msgs[from..to). */
static void remove_msgs(eng_chat *c, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        free((char *)c->msgs[i].text);
    if (to < c->n_msgs)
        memmove(c->msgs + from, c->msgs + to, sizeof *c->msgs * (c->n_msgs - to));
    c->n_msgs -= to - from;
}

eng_chat *eng_chat_create(const eng_vocab *v, eng_chat_style style, const char *system, char *err,
                          size_t err_size)
{
    if (style <= ENG_CHAT_NONE || style >= ENG_CHAT_COUNT) {
        snprintf(err, err_size, "no chat format: the model names none known here (%s)",
                 eng_chat_style_list());
        return NULL;
    }
    eng_chat *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, err_size, "out of host memory");
        return NULL;
    }
    c->v = v;
    c->style = style;
    int32_t eos = eng_vocab_eos(v);
    size_t n = eos >= 0 ? eng_token_piece(v, eos, true, c->eos, sizeof c->eos) : 0;
    if (n == 0 || n >= sizeof c->eos)
        snprintf(c->eos, sizeof c->eos, "</s>");
    if (system && system[0] && !push_msg(c, ENG_CHAT_SYSTEM, system, strlen(system))) {
        eng_chat_destroy(c);
        snprintf(err, err_size, "out of host memory");
        return NULL;
    }
    return c;
}

void eng_chat_destroy(eng_chat *c)
{
    if (!c)
        return;
    remove_msgs(c, 0, c->n_msgs);
    free(c->msgs);
    free(c->held.p);
    free(c->pending);
    free(c->turn);
    free(c);
}

/* *ids holds at least n tokens (*cap grows to n); false when out of memory. */
static bool reserve_ids(int32_t **ids, size_t *cap, size_t n)
{
    if (n <= *cap)
        return true;
    int32_t *p = realloc(*ids, sizeof *p * n);
    if (!p)
        return false;
    *ids = p;
    *cap = n;
    return true;
}

/* c->turn[at..) = the tokens of text[0..len); how many, or -1 when out of memory. */
static int64_t tokenize_into(eng_chat *c, size_t at, const char *text, size_t len, bool first)
{
    for (int pass = 0; pass < 2; pass++) {
        size_t room = c->cap_turn - at;
        int64_t got = eng_tokenize(c->v, text, len, first, true, c->turn + at, room);
        if (got < 0 || (size_t)got <= room)
            return got;
        if (!reserve_ids(&c->turn, &c->cap_turn, at + (size_t)got))
            return -1;
    }
    return -1;
}

/* The oldest exchange after the system message: [*from, *to); false when the last user
 * message is the only one. */
static bool oldest_exchange(const eng_chat *c, size_t *from, size_t *to)
{
    size_t i = 0;
    while (i < c->n_msgs && c->msgs[i].role == ENG_CHAT_SYSTEM)
        i++;
    size_t j = i + 1;
    while (j < c->n_msgs && c->msgs[j].role != ENG_CHAT_USER)
        j++;
    if (j >= c->n_msgs)
        return false; /* msgs[i] is the message being added */
    *from = i;
    *to = j;
    return true;
}

eng_status eng_chat_add_user(eng_chat *c, const char *text, size_t len, uint32_t n_ctx,
                             eng_chat_turn *turn)
{
    *turn = (eng_chat_turn){0};
    if (!push_msg(c, ENG_CHAT_USER, text, len))
        return fail(c, ENG_ERR_HOST_MEMORY, "out of host memory");
    /* the least the conversation can be: the system message and this one */
    eng_chat_msg least[2];
    size_t n_least = 0;
    if (c->n_msgs > 1 && c->msgs[0].role == ENG_CHAT_SYSTEM)
        least[n_least++] = c->msgs[0];
    least[n_least++] = c->msgs[c->n_msgs - 1];
    cmp_buf alone = {0};
    format_into(&alone, c->style, c->eos, least, n_least, true);
    int64_t n_alone = alone.failed ? -1 : eng_tokenize(c->v, alone.p, alone.n, true, true, NULL, 0);
    free(alone.p);
    if (n_alone < 0 || (uint64_t)n_alone + 1 > n_ctx) {
        remove_msgs(c, c->n_msgs - 1, c->n_msgs);
        if (n_alone < 0)
            return fail(c, ENG_ERR_HOST_MEMORY, "out of host memory");
        return fail(c, ENG_ERR_CONTEXT_FULL,
                    "the message needs %lld tokens with the system message but the context "
                    "holds %u: shorten it or raise --ctx",
                    (long long)n_alone, n_ctx);
    }
    uint32_t room = n_ctx - n_ctx / 4; /* a quarter of the context for the reply */
    uint32_t dropped = 0;
    bool restart = c->held.n == 0;
    for (;;) {
        cmp_buf full = {0};
        format_into(&full, c->style, c->eos, c->msgs, c->n_msgs, true);
        if (!restart && (full.n < c->held.n || memcmp(full.p, c->held.p, c->held.n) != 0))
            restart = true; /* the format rewrote what the session holds (a trim, say) */
        size_t at = restart ? 0 : c->n_pending;
        int64_t got = -1;
        if (!full.failed && reserve_ids(&c->turn, &c->cap_turn, at + 16)) {
            if (!restart && c->n_pending)
                memcpy(c->turn, c->pending, sizeof *c->turn * c->n_pending);
            size_t from = restart ? 0 : c->held.n;
            got = tokenize_into(c, at, full.p + from, full.n - from, restart);
        }
        if (got < 0) {
            free(full.p);
            remove_msgs(c, c->n_msgs - 1, c->n_msgs);
            return fail(c, ENG_ERR_HOST_MEMORY, "out of host memory");
        }
        uint64_t n_new = at + (uint64_t)got;
        uint64_t total = (restart ? 0 : c->n_held) + n_new;
        size_t from, to;
        if (total > room && oldest_exchange(c, &from, &to)) {
            free(full.p);
            remove_msgs(c, from, to);
            dropped++;
            restart = true;
            continue;
        }
        if (total + 1 > n_ctx && !restart) {
            free(full.p);
            restart = true; /* the tokens of a conversation written afresh can be fewer */
            continue;
        }
        if (total + 1 > n_ctx) { /* the last exchange took what the system message left */
            free(full.p);
            remove_msgs(c, c->n_msgs - 1, c->n_msgs);
            return fail(c, ENG_ERR_CONTEXT_FULL,
                        "the conversation needs %llu tokens but the context holds %u",
                        (unsigned long long)total, n_ctx);
        }
        free(c->held.p);
        c->held = full;
        c->n_held = (uint32_t)total;
        c->n_pending = 0;
        *turn = (eng_chat_turn){c->turn, (uint32_t)n_new, restart, dropped};
        return ENG_OK;
    }
}

eng_status eng_chat_add_reply(eng_chat *c, const int32_t *ids, size_t n, size_t n_evaluated)
{
    if (n_evaluated > n)
        return fail(c, ENG_ERR_ARGUMENT, "%zu of a reply of %zu tokens evaluated", n_evaluated, n);
    size_t n_text = eng_detokenize(c->v, ids, n, false, NULL, 0);
    char *text = malloc(n_text + 1);
    size_t n_pending = n - n_evaluated;
    bool ok = text && reserve_ids(&c->pending, &c->cap_pending, n_pending);
    if (ok) {
        eng_detokenize(c->v, ids, n, false, text, n_text + 1);
        ok = push_msg(c, ENG_CHAT_ASSISTANT, text, n_text);
    }
    if (!ok) {
        free(text);
        c->held.n = 0; /* the next turn starts again */
        return fail(c, ENG_ERR_HOST_MEMORY, "out of host memory");
    }
    cmp_buf_add(&c->held, text, n_text);
    free(text);
    if (c->held.failed) { /* out of memory: the next turn starts again */
        c->held.n = 0;
        c->held.failed = false;
    }
    if (n_pending)
        memcpy(c->pending, ids + n_evaluated, sizeof *ids * n_pending);
    c->n_pending = n_pending;
    c->n_held += (uint32_t)n_evaluated;
    return ENG_OK;
}

void eng_chat_clear(eng_chat *c)
{
    size_t i = 0;
    while (i < c->n_msgs && c->msgs[i].role == ENG_CHAT_SYSTEM)
        i++;
    remove_msgs(c, i, c->n_msgs);
    c->held.n = 0;
    c->n_held = 0;
    c->n_pending = 0;
}

uint32_t eng_chat_n_tokens(const eng_chat *c)
{
    return c->n_held;
}

const char *eng_chat_errmsg(const eng_chat *c)
{
    return c->err;
}
