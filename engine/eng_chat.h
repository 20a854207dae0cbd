/* Conversations with instruction-tuned models: the chat formats their GGUF files name in
 * tokenizer.chat_template, and a conversation that hands the session only the tokens it
 * has not seen yet.
 *
 * There is no Jinja interpreter: as in llama.cpp, the template's text is matched against
 * the formats known here (eng_chat_detect) and the conversation is written out by code.
 *
 * Not thread-safe: one conversation per session. */
#ifndef ENG_CHAT_H
#define ENG_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmp_buf.h"
#include "eng_model.h"
#include "eng_vocab.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum eng_chat_style {
    ENG_CHAT_NONE = 0, /* no known format */
    /* <|im_start|>role\n TEXT <|im_end|>\n ... <|im_start|>assistant\n
     * (Qwen, SmolLM, OpenHermes and many more) */
    ENG_CHAT_CHATML,
    /* chatml with every assistant turn opening with an empty think block,
     * <|im_start|>assistant\n<think>\n\n</think>\n\n: Qwen3 with thinking off (its
     * template's enable_thinking=false) */
    ENG_CHAT_CHATML_NOTHINK,
    /* <|start_header_id|>role<|end_header_id|>\n\n TEXT <|eot_id|> (Llama 3; texts trimmed) */
    ENG_CHAT_LLAMA3,
    /* [INST] <<SYS>>\n SYSTEM \n<</SYS>>\n\n USER [/INST] REPLY </s><s>[INST] ...
     * (Llama 2 chat; texts trimmed) */
    ENG_CHAT_LLAMA2,
    /* [INST] USER [/INST]REPLY</s>[INST] ... (Mistral 7B Instruct; a system message is put
     * before the first user message, separated by a blank line) */
    ENG_CHAT_MISTRAL,
    /* <|user|>\n TEXT EOS\n<|assistant|>\n (Zephyr, TinyLlama chat; EOS the model's text) */
    ENG_CHAT_ZEPHYR,
    /* <|user|>\n TEXT <|end|>\n<|assistant|>\n (Phi-3) */
    ENG_CHAT_PHI3,
    /* SYSTEM\n### Instruction:\n USER \n### Response:\n REPLY \n<|EOT|>\n (DeepSeek Coder) */
    ENG_CHAT_DEEPSEEK,
    /* SYSTEM<｜User｜>USER<｜Assistant｜>REPLY<｜end▁of▁sentence｜>...<｜Assistant｜><think>\n
     * (DeepSeek-R1 and its Qwen and Llama distillations): the reply starts inside its
     * reasoning block, which the prompt opens. A past reply that ends its reasoning
     * (holds </think>) is written as generated, reopened with <think>\n, where the
     * model's template keeps only what follows </think>: a conversation then goes on
     * from the tokens the session holds instead of starting over each turn. */
    ENG_CHAT_DEEPSEEK_R1,
    /* <start_of_turn>user\n SYSTEM\n\n USER <end_of_turn>\n<start_of_turn>model\n REPLY
     * <end_of_turn>\n ... (Gemma 1, 2 and 3: no system role, the system message goes before
     * the next user message; texts trimmed) */
    ENG_CHAT_GEMMA,
    ENG_CHAT_COUNT
} eng_chat_style;

/* "chatml", "llama3", ...; "none" for ENG_CHAT_NONE. */
const char *eng_chat_style_name(eng_chat_style style);
/* The style of that name; false (leaving *out) for other names. */
bool eng_chat_style_parse(const char *name, eng_chat_style *out);
/* The names, separated by ", " (for messages). */
const char *eng_chat_style_list(void);

/* The format a Jinja chat template writes, from the markers it contains; ENG_CHAT_NONE
 * when none is recognised. text[0..len) need not be NUL-terminated. */
eng_chat_style eng_chat_detect(const char *text, size_t len);

/* The style a request asking for thinking on or off takes: chatml-nothink for chatml
 * with thinking off where the model's template has that switch (it reads
 * enable_thinking, as Qwen3's does), else `style` (a template without the switch ignores
 * it, as its Jinja would). */
eng_chat_style eng_chat_thinking(eng_chat_style style, const char *tmpl, size_t len,
                                 bool enable_thinking);

/* ---- reasoning ----
 * Reasoning models (Qwen3, QwQ, DeepSeek-R1 and its distillations) open a reply with
 * their thoughts in a <think>...</think> block. eng_think tells a reply's reasoning (the
 * block's text, without the white space around it) from its content (what follows the
 * block, without the white space after it; the whole reply where no block opens it), as
 * llama.cpp's and vLLM's servers give them apart (reasoning_content and content). A reply
 * ended inside the block is all reasoning. It takes the reply in pieces as it streams and
 * hands out each piece's share at once, holding back only what may yet turn out to be
 * part of a tag or the white space before one: any division of a reply into pieces gives
 * the same two texts. */
typedef struct eng_think {
    int state;
    cmp_buf held; /* text not handed out yet */
} eng_think;

/* Whether the prompt text[0..len) leaves the reply inside an open block: it ends with
 * <think> and white space, as deepseek-r1's and QwQ's templates write. */
bool eng_think_opened(const char *text, size_t len);
/* A reply to come; opened: the prompt opened its block (eng_think_opened). t is {0}, or
 * was used before (its buffer is kept). */
void eng_think_init(eng_think *t, bool opened);
/* Takes text[0..n) of the reply and appends what is now known to be reasoning to
 * *reasoning and content to *content. false when out of host memory (a buffer's failed
 * flag, or the text not taken). */
bool eng_think_add(eng_think *t, const char *text, size_t n, cmp_buf *reasoning, cmp_buf *content);
/* The reply's end: what was held back goes where it belongs. t is then as after
 * eng_think_init(t, false). */
bool eng_think_finish(eng_think *t, cmp_buf *reasoning, cmp_buf *content);
void eng_think_free(eng_think *t);

/* Whether a chat template writes reasoning blocks (mentions <think>): a server's
 * reasoning_format auto splits the replies of such models. */
bool eng_chat_template_thinks(const char *tmpl, size_t len);

typedef enum eng_chat_role { ENG_CHAT_SYSTEM, ENG_CHAT_USER, ENG_CHAT_ASSISTANT } eng_chat_role;

typedef struct eng_chat_msg {
    eng_chat_role role;
    const char *text; /* NUL-terminated */
} eng_chat_msg;

/* Writes msgs[0..n) in `style` into out (NUL-terminated when it fits) and returns the
 * length (call again with a larger buffer when it is >= cap). add_assistant ends it with
 * what opens the assistant's reply. eos is the model's end-of-sequence text (zephyr and
 * llama2 write it; NULL: "</s>"). The first message's BOS is not written: the tokenizer
 * adds it where the model's metadata asks. Messages out of the format's order are
 * written as they come. */
size_t eng_chat_format(eng_chat_style style, const char *eos, const eng_chat_msg *msgs, size_t n,
                       bool add_assistant, char *out, size_t cap);

typedef struct eng_chat eng_chat;

/* A conversation in `style` for a model with vocabulary v (which must outlive it),
 * starting with a system message when system is not NULL or empty. NULL when out of
 * memory or style is ENG_CHAT_NONE, with the reason in err. */
eng_chat *eng_chat_create(const eng_vocab *v, eng_chat_style style, const char *system, char *err,
                          size_t err_size);
void eng_chat_destroy(eng_chat *c);

/* What the session must evaluate for the next reply. */
typedef struct eng_chat_turn {
    const int32_t *tokens; /* owned by the conversation, valid until its next call */
    uint32_t n;
    bool restart;     /* reset the session first: tokens are the whole conversation */
    uint32_t dropped; /* the oldest exchanges (a user message and its reply) left out */
} eng_chat_turn;

/* Adds the user's message text[0..len) and says what to evaluate: where the conversation
 * written out with it begins with what the session holds, only the rest (with any reply
 * tokens not yet evaluated, see eng_chat_add_reply); otherwise, or when that would not
 * leave a quarter of n_ctx for the reply, the whole conversation from the start, leaving
 * out the oldest exchanges (never the system message) until it does or none is left.
 * ENG_ERR_CONTEXT_FULL, the message not added, when the system message and this one do
 * not fit n_ctx with a position to spare; ENG_ERR_HOST_MEMORY. The message is in
 * eng_chat_errmsg. */
eng_status eng_chat_add_user(eng_chat *c, const char *text, size_t len, uint32_t n_ctx,
                             eng_chat_turn *turn);

/* The reply to the last user message: the tokens generated for it, without the token that
 * ended it, of which the session has evaluated the first n_evaluated (n, or n - 1 where
 * the last one was taken but not evaluated); the next turn begins with the others.
 * ENG_ERR_ARGUMENT when n_evaluated > n; ENG_ERR_HOST_MEMORY (the next turn then starts
 * over). */
eng_status eng_chat_add_reply(eng_chat *c, const int32_t *ids, size_t n, size_t n_evaluated);

/* Forgets the exchanges (the system message stays); the next turn restarts. */
void eng_chat_clear(eng_chat *c);

/* Tokens of the conversation the session holds, by this conversation's account. */
uint32_t eng_chat_n_tokens(const eng_chat *c);

const char *eng_chat_errmsg(const eng_chat *c);

#ifdef __cplusplus
}
#endif

#endif /* ENG_CHAT_H */
