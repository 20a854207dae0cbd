/* Generated text as it grows, for showing it while it is generated: the tokens' pieces
 * joined into valid UTF-8 and cut at the first stop string, with what may be shown so far
 * held back wherever it could still change.
 *
 * - A character whose bytes are split between tokens waits for its last byte; bytes that
 *   cannot become a character are replaced by U+FFFD, so the text is always valid UTF-8
 *   (what JSON and terminals want).
 * - Text that could be the beginning of a stop string is held back until the next
 *   tokens show whether it is one; a stop string found ends the text just before it.
 *
 * Not thread-safe. */
#ifndef ENG_TEXTSTREAM_H
#define ENG_TEXTSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eng_vocab.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct eng_textstream eng_textstream;

/* A stream ending at the first of stops[0..n_stops) (NUL-terminated; empty ones are
 * ignored; copied). NULL when out of memory. */
eng_textstream *eng_textstream_create(const char *const *stops, size_t n_stops);
void eng_textstream_destroy(eng_textstream *t);

/* Appends bytes[0..n). Nothing is added after a stop string was found. False when out of
 * memory (the stream is unchanged). */
bool eng_textstream_add(eng_textstream *t, const char *bytes, size_t n);
/* Appends token's text (eng_token_piece; control tokens' text only with special). */
bool eng_textstream_add_token(eng_textstream *t, const eng_vocab *v, int32_t token, bool special);
/* The end of the text: an unfinished character becomes U+FFFD and nothing is held back
 * any more. False when out of memory. */
bool eng_textstream_finish(eng_textstream *t);

/* The index of the stop string that ended the text; -1 while none has. */
int eng_textstream_stop(const eng_textstream *t);

/* The text not taken before that may be shown now (*n bytes; not NUL-terminated), marked
 * taken; valid until the next call. */
const char *eng_textstream_take(eng_textstream *t, size_t *n);

/* The whole text so far (*n bytes, NUL-terminated), without the stop string and any
 * unfinished character, including what is held back. */
const char *eng_textstream_text(const eng_textstream *t, size_t *n);

#ifdef __cplusplus
}
#endif

#endif /* ENG_TEXTSTREAM_H */
