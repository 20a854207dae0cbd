/* Tokenizers from GGUF metadata: text → token ids and token id → bytes.
 *
 * Two families, as llama.cpp reads them:
 *   - SentencePiece-style (`tokenizer.ggml.model = llama`): spaces become U+2581, a space
 *     is put before the text, adjacent pieces merge best score first (ties: leftmost), and
 *     pieces without a token fall back to <0xXX> byte tokens.
 *   - byte-level BPE (`gpt2`): the text is split by the pre-tokenizer that
 *     `tokenizer.ggml.pre` names (gpt-2, llama-bpe / Llama 3, qwen2), each byte becomes a
 *     printable character, and `tokenizer.ggml.merges` apply lowest rank first.
 *
 * Special tokens (control, user-defined) are matched in the text before either: always
 * the user-defined ones, the control ones only when asked (parse_special). The vocabulary
 * copies what it needs: the GGUF may be closed after loading. */
#ifndef ENG_VOCAB_H
#define ENG_VOCAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmp_gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct eng_vocab eng_vocab;

/* NULL with the reason in err for a missing or inconsistent tokenizer, an unknown
 * tokenizer model or pre-tokenizer (named), or when out of memory. */
eng_vocab *eng_vocab_load(const cmp_gguf *g, char *err, size_t err_size);
void eng_vocab_destroy(eng_vocab *v);

uint32_t eng_vocab_size(const eng_vocab *v);
int32_t eng_vocab_bos(const eng_vocab *v); /* -1 when none */
int32_t eng_vocab_eos(const eng_vocab *v);
/* Whether tokenizing with add_special puts BOS first (the metadata's rule). */
bool eng_vocab_adds_bos(const eng_vocab *v);
/* True for tokens that end generation: EOS, end-of-turn and the like. */
bool eng_vocab_is_eog(const eng_vocab *v, int32_t id);
/* "spm" or "bpe/llama3", "bpe/qwen2", "bpe/gpt2" (for messages and statistics). */
const char *eng_vocab_kind(const eng_vocab *v);

/* Tokenizes text[0..len). add_special puts BOS (and EOS) around the text when the
 * metadata asks for them; parse_special turns control tokens written in the text
 * (e.g. "<|im_start|>") into their ids. Writes at most cap ids and returns how many
 * there are (call again with a larger buffer when that exceeds cap); -1 when out of
 * host memory. */
int64_t eng_tokenize(const eng_vocab *v, const char *text, size_t len, bool add_special,
                     bool parse_special, int32_t *out, size_t cap);

/* The bytes token `id` stands for, NUL-terminated in buf when it fits; returns the length
 * (call again with a larger buffer when it is ≥ cap). Control tokens give their text
 * only with `special`; unknown ids give "". A token can be part of a UTF-8 character:
 * concatenate pieces before treating them as text. */
size_t eng_token_piece(const eng_vocab *v, int32_t id, bool special, char *buf, size_t cap);

/* The pieces of ids[0..n) joined (eng_token_piece each), NUL-terminated in buf when they
 * fit; returns the length (call again with a larger buffer when it is >= cap; buf may be
 * NULL with cap 0 to measure). */
size_t eng_detokenize(const eng_vocab *v, const int32_t *ids, size_t n, bool special, char *buf,
                      size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* ENG_VOCAB_H */
