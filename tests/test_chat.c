/* Chat formats and conversations (engine/eng_chat.h): each format written out exactly, the
 * template markers recognised, a conversation handing out only the tokens the session
 * has not seen, the same as tokenizing the whole conversation, and a reply's reasoning
 * told from its content however the reply is divided into pieces. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmp_buf.h"
#include "eng_chat.h"
#include "harness.h"

/* A conversation call that must return `want`; on mismatch its message is shown. */
#define CHECK_CHAT(c, call, want)                                                                  \
    do {                                                                                           \
        eng_status st_ = (call);                                                                   \
        CHECK_MSG(st_ == (want), "%s returned %s, want %s (%s)", #call, eng_status_name(st_),      \
                  eng_status_name(want), eng_chat_errmsg(c));                                      \
    } while (0)

/* deepseek-r1's markers: fullwidth bars (U+FF5C), U+2581 for the spaces */
#define R1_USER      "<｜User｜>"
#define R1_ASSISTANT "<｜Assistant｜>"
#define R1_EOS       "<｜end▁of▁sentence｜>"

static const eng_chat_msg conversation[] = {
    {ENG_CHAT_SYSTEM, "Be brief."},
    {ENG_CHAT_USER, " Hi "},
    {ENG_CHAT_ASSISTANT, "Hello."},
    {ENG_CHAT_USER, "Again"},
};

/* Every format: the conversation above, with the assistant's opening. The texts are the
 * formats' definitions (the Jinja templates the models ship, written out by hand); the
 * spaces around " Hi " show which formats trim. */
static void test_formats(void)
{
    static const struct {
        eng_chat_style style;
        const char *want;
    } cases[] = {
        {ENG_CHAT_CHATML, "<|im_start|>system\nBe brief.<|im_end|>\n"
                          "<|im_start|>user\n Hi <|im_end|>\n"
                          "<|im_start|>assistant\nHello.<|im_end|>\n"
                          "<|im_start|>user\nAgain<|im_end|>\n"
                          "<|im_start|>assistant\n"},
        {ENG_CHAT_CHATML_NOTHINK, "<|im_start|>system\nBe brief.<|im_end|>\n"
                                  "<|im_start|>user\n Hi <|im_end|>\n"
                                  "<|im_start|>assistant\n<think>\n\n</think>\n\nHello.<|im_end|>\n"
                                  "<|im_start|>user\nAgain<|im_end|>\n"
                                  "<|im_start|>assistant\n<think>\n\n</think>\n\n"},
        {ENG_CHAT_LLAMA3, "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                          "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                          "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
                          "<|start_header_id|>user<|end_header_id|>\n\nAgain<|eot_id|>"
                          "<|start_header_id|>assistant<|end_header_id|>\n\n"},
        {ENG_CHAT_LLAMA2, "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello. </s>"
                          "<s>[INST] Again [/INST]"},
        {ENG_CHAT_MISTRAL, "[INST] Be brief.\n\n Hi  [/INST]Hello.</s>[INST] Again [/INST]"},
        {ENG_CHAT_ZEPHYR, "<|system|>\nBe brief.</s>\n<|user|>\n Hi </s>\n"
                          "<|assistant|>\nHello.</s>\n<|user|>\nAgain</s>\n<|assistant|>\n"},
        {ENG_CHAT_PHI3, "<|system|>\nBe brief.<|end|>\n<|user|>\n Hi <|end|>\n"
                        "<|assistant|>\nHello.<|end|>\n<|user|>\nAgain<|end|>\n<|assistant|>\n"},
        {ENG_CHAT_DEEPSEEK, "Be brief.\n### Instruction:\n Hi \n### Response:\nHello.\n<|EOT|>\n"
                            "### Instruction:\nAgain\n### Response:\n"},
        {ENG_CHAT_DEEPSEEK_R1, "Be brief." R1_USER " Hi " R1_ASSISTANT "Hello." R1_EOS R1_USER
                               "Again" R1_ASSISTANT "<think>\n"},
        {ENG_CHAT_GEMMA, "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n"
                         "<start_of_turn>model\nHello.<end_of_turn>\n"
                         "<start_of_turn>user\nAgain<end_of_turn>\n<start_of_turn>model\n"},
    };
    size_t n_msgs = sizeof conversation / sizeof conversation[0];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[1024];
        size_t len =
            eng_chat_format(cases[i].style, NULL, conversation, n_msgs, true, out, sizeof out);
        CHECK_MSG(len == strlen(cases[i].want) && strcmp(out, cases[i].want) == 0,
                  "%s: got\n%s\nwant\n%s", eng_chat_style_name(cases[i].style), out, cases[i].want);
        /* a short buffer: the length all the same, the start written and terminated */
        char small[8];
        size_t len2 =
            eng_chat_format(cases[i].style, NULL, conversation, n_msgs, true, small, sizeof small);
        CHECK(len2 == len && strlen(small) == sizeof small - 1 &&
              memcmp(small, cases[i].want, sizeof small - 1) == 0);
        eng_chat_style back = ENG_CHAT_NONE;
        CHECK(eng_chat_style_parse(eng_chat_style_name(cases[i].style), &back) &&
              back == cases[i].style);
    }
    /* without the assistant's opening, and the model's own end-of-sequence text */
    char out[256];
    eng_chat_format(ENG_CHAT_ZEPHYR, "<|endoftext|>", conversation + 1, 1, false, out, sizeof out);
    CHECK_MSG(strcmp(out, "<|user|>\n Hi <|endoftext|>\n") == 0, "%s", out);
    /* deepseek-r1: a past reply with its reasoning (generated after the prompt's <think>)
     * is reopened; one with its own block, or none, is written as it is */
    const eng_chat_msg r1[] = {{ENG_CHAT_ASSISTANT, "Hmm.</think>\n\nHi."},
                               {ENG_CHAT_ASSISTANT, "<think>a</think>b"}};
    eng_chat_format(ENG_CHAT_DEEPSEEK_R1, NULL, r1, 2, false, out, sizeof out);
    CHECK_MSG(strcmp(out, R1_ASSISTANT "<think>\nHmm.</think>\n\nHi." R1_EOS R1_ASSISTANT
                                       "<think>a</think>b" R1_EOS) == 0,
              "%s", out);
    eng_chat_style unchanged = ENG_CHAT_PHI3;
    CHECK(!eng_chat_style_parse("jinja", &unchanged) && unchanged == ENG_CHAT_PHI3);
    CHECK(!eng_chat_style_parse("none", &unchanged));
}

/* The markers of each family's templates (abridged from real ones) and nothing else. */
static void test_detect(void)
{
    static const struct {
        const char *tmpl;
        eng_chat_style want;
    } cases[] = {
        {"{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
         "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}",
         ENG_CHAT_CHATML},
        {"{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + "
         "message['content'] | trim + '<|eot_id|>' }}",
         ENG_CHAT_LLAMA3},
        {"{{ bos_token + '[INST] ' + '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' }}",
         ENG_CHAT_LLAMA2},
        {"{{ '[INST] ' + message['content'] + ' [/INST]' }}{{ message['content'] + eos_token }}",
         ENG_CHAT_MISTRAL},
        {"{{ '<|user|>\\n' + message['content'] + eos_token }}{{ '<|assistant|>' }}",
         ENG_CHAT_ZEPHYR},
        {"{{'<|user|>' + '\\n' + message['content'] + '<|end|>' + '\\n' + '<|assistant|>'}}",
         ENG_CHAT_PHI3},
        {"{{ '### Instruction:\\n' + message['content'] + '\\n' }}{{ '<|EOT|>' }}",
         ENG_CHAT_DEEPSEEK},
        {"{{bos_token}}{{ns.system_prompt}}{{'" R1_USER "' + message['content']}}"
         "{{'" R1_ASSISTANT "' + content + '" R1_EOS "'}}{{'" R1_ASSISTANT "<think>\\n'}}",
         ENG_CHAT_DEEPSEEK_R1},
        {"{{ bos_token }}{{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first "
         "else '') }}{{ message['content'] | trim }}{{ '<end_of_turn>\\n' }}",
         ENG_CHAT_GEMMA},
        {"{% for m in messages %}{{ m['content'] }}{% endfor %}", ENG_CHAT_NONE},
        {"", ENG_CHAT_NONE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        eng_chat_style got = eng_chat_detect(cases[i].tmpl, strlen(cases[i].tmpl));
        CHECK_MSG(got == cases[i].want, "template %zu: %s, want %s", i, eng_chat_style_name(got),
                  eng_chat_style_name(cases[i].want));
    }
    CHECK(eng_chat_detect(NULL, 0) == ENG_CHAT_NONE);
    /* thinking off: chatml-nothink where the template has the switch (Qwen3's reads
     * enable_thinking), else the style as it is */
    const char *qwen3 = "{%- if enable_thinking is defined and enable_thinking is false %}"
                        "{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}<|im_start|>";
    size_t ql = strlen(qwen3);
    CHECK(eng_chat_detect(qwen3, ql) == ENG_CHAT_CHATML);
    CHECK(eng_chat_thinking(ENG_CHAT_CHATML, qwen3, ql, false) == ENG_CHAT_CHATML_NOTHINK);
    CHECK(eng_chat_thinking(ENG_CHAT_CHATML, qwen3, ql, true) == ENG_CHAT_CHATML);
    CHECK(eng_chat_thinking(ENG_CHAT_CHATML, "<|im_start|>", 12, false) == ENG_CHAT_CHATML);
    CHECK(eng_chat_thinking(ENG_CHAT_CHATML, NULL, 0, false) == ENG_CHAT_CHATML);
    CHECK(eng_chat_thinking(ENG_CHAT_LLAMA3, qwen3, ql, false) == ENG_CHAT_LLAMA3);
    /* templates that write reasoning blocks */
    CHECK(eng_chat_template_thinks(qwen3, ql));
    CHECK(!eng_chat_template_thinks("<|im_start|>", 12) && !eng_chat_template_thinks(NULL, 0));
    /* the length bounds the search: the marker past it is not seen */
    const char *t = "abc<|im_start|>";
    CHECK(eng_chat_detect(t, 3) == ENG_CHAT_NONE);
}

static eng_vocab *qwen2_vocab(char **tmpl)
{
    const char *dir = t_shared_dir();
    if (!dir) {
        t_skip("../shared not found (set VKLLM_SHARED_DIR); the qwen2 vocabulary is needed");
        return NULL;
    }
    char path[1024], err[256] = "";
    snprintf(path, sizeof path, "%s/models/vocab/ggml-vocab-qwen2.gguf", dir);
    cmp_gguf *g = NULL;
    if (cmp_gguf_open(path, &g, err, sizeof err) != CMP_GGUF_OK) {
        t_fail_at(__FILE__, __LINE__, "%s: %s", path, err);
        return NULL;
    }
    eng_vocab *v = eng_vocab_load(g, err, sizeof err);
    CHECK_MSG(v != NULL, "%s: %s", path, err);
    cmp_gguf_str s;
    if (tmpl && cmp_gguf_get_str(g, "tokenizer.chat_template", &s) == CMP_GGUF_OK) {
        *tmpl = malloc(s.len + 1);
        if (*tmpl) {
            memcpy(*tmpl, s.ptr, s.len);
            (*tmpl)[s.len] = '\0';
        }
    }
    cmp_gguf_close(g);
    return v;
}

/* ids of text (no BOS: qwen2 adds none), into a malloc'd array */
static int32_t *tokens_of(const eng_vocab *v, const char *text, bool special, int64_t *n)
{
    size_t cap = strlen(text) + 8;
    int32_t *ids = malloc(sizeof *ids * cap);
    *n = ids ? eng_tokenize(v, text, strlen(text), true, special, ids, cap) : -1;
    CHECK(*n >= 0 && (size_t)*n <= cap);
    return ids;
}

/* Qwen2's real template is chatml. A conversation of three turns hands out the first
 * turn whole, then only what follows the reply (beginning with the reply's token that was
 * taken but not evaluated): together exactly the tokens of the whole conversation. In
 * chatml-nothink too, whose replies follow an empty think block in the history as they
 * did when generated. */
static void turns_case(eng_chat_style style, const char *const replies[3])
{
    char *tmpl = NULL;
    eng_vocab *v = qwen2_vocab(&tmpl);
    if (!v)
        return;
    CHECK_MSG(tmpl && eng_chat_detect(tmpl, strlen(tmpl)) == ENG_CHAT_CHATML,
              "qwen2's tokenizer.chat_template is not read as chatml");
    char err[256];
    eng_chat *c = eng_chat_create(v, style, "You are terse.", err, sizeof err);
    CHECK_MSG(c != NULL, "%s", err);
    if (!c)
        goto done;
    static const char *const users[] = {"Hello there", "Tell me a joke", "Another one"};
    eng_chat_msg msgs[8] = {{ENG_CHAT_SYSTEM, "You are terse."}};
    size_t n_msgs = 1;
    int32_t held[512];
    size_t n_held = 0;
    for (int t = 0; t < 3; t++) {
        eng_chat_turn turn;
        CHECK_CHAT(c, eng_chat_add_user(c, users[t], strlen(users[t]), 4096, &turn), ENG_OK);
        CHECK(turn.restart == (t == 0) && turn.dropped == 0);
        if (turn.restart)
            n_held = 0;
        if (n_held + turn.n > 512)
            break;
        memcpy(held + n_held, turn.tokens, sizeof *held * turn.n);
        n_held += turn.n;
        msgs[n_msgs++] = (eng_chat_msg){ENG_CHAT_USER, users[t]};
        /* the session holds the conversation so far: the same tokens as tokenizing it */
        char text[2048];
        eng_chat_format(style, NULL, msgs, n_msgs, true, text, sizeof text);
        int64_t n_want;
        int32_t *want = tokens_of(v, text, true, &n_want);
        CHECK_MSG(want && (size_t)n_want == n_held &&
                      memcmp(want, held, sizeof *held * n_held) == 0,
                  "turn %d: %zu tokens handed out, the conversation has %lld", t, n_held,
                  (long long)n_want);
        free(want);
        CHECK(eng_chat_n_tokens(c) == n_held);
        /* the reply, its last token taken but not evaluated on the second turn */
        int64_t n_reply;
        int32_t *reply = tokens_of(v, replies[t], false, &n_reply);
        size_t n_eval = (size_t)n_reply - (t == 1);
        CHECK_CHAT(c, eng_chat_add_reply(c, reply, (size_t)n_reply, n_eval), ENG_OK);
        memcpy(held + n_held, reply, sizeof *held * n_eval);
        n_held += n_eval;
        if (t == 1) {
            /* the next turn starts with the token left */
            eng_chat_turn next;
            CHECK_CHAT(c, eng_chat_add_user(c, users[2], strlen(users[2]), 4096, &next), ENG_OK);
            CHECK(next.n > 0 && next.tokens[0] == reply[n_reply - 1] && !next.restart);
            /* undo by starting over: clear keeps the system message */
            eng_chat_clear(c);
            CHECK(eng_chat_n_tokens(c) == 0);
            n_msgs = 1;
            n_held = 0;
            free(reply);
            break;
        }
        msgs[n_msgs++] = (eng_chat_msg){ENG_CHAT_ASSISTANT, replies[t]};
        free(reply);
    }
    /* after a clear the next turn is whole again, the system message first */
    eng_chat_turn turn;
    CHECK_CHAT(c, eng_chat_add_user(c, "Bye", 3, 4096, &turn), ENG_OK);
    char text[1024], want[256];
    eng_detokenize(v, turn.tokens, turn.n, true, text, sizeof text);
    const eng_chat_msg bye[] = {{ENG_CHAT_SYSTEM, "You are terse."}, {ENG_CHAT_USER, "Bye"}};
    eng_chat_format(style, NULL, bye, 2, true, want, sizeof want);
    CHECK_MSG(turn.restart && strcmp(text, want) == 0, "%s", text);
    if (style == ENG_CHAT_CHATML)
        CHECK_MSG(strcmp(text, "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\n"
                               "Bye<|im_end|>\n<|im_start|>assistant\n") == 0,
                  "%s", text);
done:
    free(tmpl);
    eng_chat_destroy(c);
    eng_vocab_destroy(v);
}

static void test_turns(void)
{
    static const char *const replies[] = {"Hi! How can I help?", "Why did the cat sit?",
                                          "No more jokes."};
    turns_case(ENG_CHAT_CHATML, replies);
    turns_case(ENG_CHAT_CHATML_NOTHINK, replies);
    /* the replies as deepseek-r1 generates them, after the prompt's <think>\n (each ends
     * in a letter: qwen2's vocabulary lacks R1's end-of-sentence token, so "?<" would be
     * one piece of the conversation's text) */
    static const char *const r1_replies[] = {"A greeting.</think>\n\nHi, how can I help",
                                             "A joke.\n</think>\n\nWhy did the cat sit",
                                             "\n</think>\n\nNo more jokes"};
    turns_case(ENG_CHAT_DEEPSEEK_R1, r1_replies);
    /* gemma's markers are text to qwen2's vocabulary too: replies ending in a letter */
    static const char *const plain_replies[] = {"Hi, how can I help", "Why did the cat sit",
                                                "No more jokes"};
    turns_case(ENG_CHAT_GEMMA, plain_replies);
}

/* A reply split into its reasoning and its content (eng_think): whole, in every division
 * into two and three pieces, and a byte at a time, the same two texts. */
static void think_case(bool opened, const char *reply, const char *reasoning, const char *content)
{
    size_t n = strlen(reply);
    eng_think t = {0};
    cmp_buf r = {0}, c = {0};
    for (size_t a = 0; a <= n; a++) {
        for (size_t b = a; b <= n; b++) {
            for (int bytewise = 0; bytewise < 2 && (bytewise == 0 || (a == 0 && b == 0));
                 bytewise++) {
                eng_think_init(&t, opened);
                r.n = c.n = 0;
                bool ok = true;
                if (bytewise) {
                    for (size_t i = 0; i < n; i++)
                        ok = eng_think_add(&t, reply + i, 1, &r, &c) && ok;
                } else {
                    ok = eng_think_add(&t, reply, a, &r, &c) && ok;
                    ok = eng_think_add(&t, reply + a, b - a, &r, &c) && ok;
                    ok = eng_think_add(&t, reply + b, n - b, &r, &c) && ok;
                }
                ok = eng_think_finish(&t, &r, &c) && ok;
                bool same = ok && r.n == strlen(reasoning) && c.n == strlen(content) &&
                            memcmp(r.p ? r.p : "", reasoning, r.n) == 0 &&
                            memcmp(c.p ? c.p : "", content, c.n) == 0;
                CHECK_MSG(same,
                          "\"%s\"%s in pieces at %zu, %zu%s: reasoning \"%.*s\", content \"%.*s\"",
                          reply, opened ? " (opened)" : "", a, b, bytewise ? " (bytewise)" : "",
                          (int)r.n, r.p ? r.p : "", (int)c.n, c.p ? c.p : "");
                if (!same)
                    goto done;
            }
        }
    }
done:
    eng_think_free(&t);
    free(r.p);
    free(c.p);
}

static void test_think(void)
{
    static const struct {
        bool opened; /* by the prompt */
        const char *reply, *reasoning, *content;
    } cases[] = {
        {false, "plain answer", "", "plain answer"},
        {false, "<think>\nLet me see.\n</think>\n\nThe answer.", "Let me see.", "The answer."},
        {false, "  \n<think>a  b</think>c", "a  b", "c"},
        {false, "<think>\n\n</think>\n\nHi", "", "Hi"},
        {false, "<think>cut off mid thought \n", "cut off mid thought", ""},
        {false, "<thi", "", "<thi"},
        {false, "<thinking>", "", "<thinking>"},
        {false, "Sure. <think>not a block</think>", "", "Sure. <think>not a block</think>"},
        {false, "</think>stray", "", "</think>stray"},
        {false, " \n ", "", " \n "},
        {false, "<think>a </thinking> b</think>c", "a </thinking> b", "c"},
        {false, "<think>x</think>", "x", ""},
        {false, "<think>x</think>\n\n  y  ", "x", "y  "},
        {false, "", "", ""},
        {true, "Thoughts.\n</think>\n\nAnswer <think> kept", "Thoughts.", "Answer <think> kept"},
        {true, "never closed </thi", "never closed </thi", ""},
        {true, "\n\n", "", ""},
        {true, "", "", ""},
        {true, "</think>\n\nno thoughts", "", "no thoughts"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        think_case(cases[i].opened, cases[i].reply, cases[i].reasoning, cases[i].content);
    /* a prompt that opens the block */
    CHECK(eng_think_opened(R1_ASSISTANT "<think>\n", strlen(R1_ASSISTANT "<think>\n")));
    CHECK(eng_think_opened("<think>", 7));
    CHECK(!eng_think_opened("<think>\n\n</think>\n\n", 19));
    CHECK(!eng_think_opened("", 0) && !eng_think_opened("think>", 6));
}

/* A small context: the oldest exchanges are left out (the system message stays) so that a
 * quarter is left for the reply; a message that cannot fit is refused and changes
 * nothing. */
static void test_fit(void)
{
    eng_vocab *v = qwen2_vocab(NULL);
    if (!v)
        return;
    char err[256];
    eng_chat *c = eng_chat_create(v, ENG_CHAT_CHATML, "Sys.", err, sizeof err);
    CHECK_MSG(c != NULL, "%s", err);
    if (!c)
        goto done;
    int32_t one = 1;
    CHECK_CHAT(c, eng_chat_add_reply(c, &one, 1, 2), ENG_ERR_ARGUMENT);
    const uint32_t n_ctx = 64;
    uint32_t dropped = 0;
    for (int t = 0; t < 6; t++) {
        char msg[64];
        snprintf(msg, sizeof msg, "message number %d of the test", t);
        eng_chat_turn turn;
        CHECK_CHAT(c, eng_chat_add_user(c, msg, strlen(msg), n_ctx, &turn), ENG_OK);
        dropped += turn.dropped;
        CHECK_MSG(eng_chat_n_tokens(c) <= n_ctx - n_ctx / 4, "turn %d holds %u tokens", t,
                  eng_chat_n_tokens(c));
        if (turn.dropped) {
            char text[1024];
            eng_detokenize(v, turn.tokens, turn.n, true, text, sizeof text);
            CHECK_MSG(turn.restart &&
                          strncmp(text, "<|im_start|>system\nSys.<|im_end|>", 33) == 0 &&
                          strstr(text, msg) && !strstr(text, "number 0 "),
                      "turn %d after dropping: %s", t, text);
        }
        int64_t n_reply;
        int32_t *reply = tokens_of(v, "A short reply.", false, &n_reply);
        CHECK_CHAT(c, eng_chat_add_reply(c, reply, (size_t)n_reply, (size_t)n_reply), ENG_OK);
        free(reply);
    }
    CHECK_MSG(dropped > 0, "six exchanges fit 64 positions");
    /* too long a message: refused; the conversation goes on as before */
    uint32_t before = eng_chat_n_tokens(c);
    char long_msg[400];
    memset(long_msg, 'x', sizeof long_msg - 1);
    for (size_t i = 0; i < sizeof long_msg - 1; i += 4)
        long_msg[i] = ' ';
    long_msg[sizeof long_msg - 1] = '\0';
    eng_chat_turn turn;
    CHECK_CHAT(c, eng_chat_add_user(c, long_msg, strlen(long_msg), n_ctx, &turn),
               ENG_ERR_CONTEXT_FULL);
    CHECK_MSG(strstr(eng_chat_errmsg(c), "context holds 64"), "%s", eng_chat_errmsg(c));
    CHECK(eng_chat_n_tokens(c) == before);
    CHECK_CHAT(c, eng_chat_add_user(c, "ok", 2, n_ctx, &turn), ENG_OK);
    CHECK(!turn.restart || turn.dropped > 0);
done:
    eng_chat_destroy(c);
    eng_vocab_destroy(v);
}

static void test_create(void)
{
    char err[256] = "";
    CHECK(eng_chat_create(NULL, ENG_CHAT_NONE, NULL, err, sizeof err) == NULL);
    CHECK_MSG(strstr(err, "chatml"), "%s", err);
    eng_chat_destroy(NULL);
}

int main(int argc, char **argv)
{
    static const t_case cases[] = {
        {"formats", test_formats, false}, {"detect", test_detect, false},
        {"turns", test_turns, false},     {"fit", test_fit, false},
        {"create", test_create, false},   {"think", test_think, false},
    };
    return t_main(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
}
