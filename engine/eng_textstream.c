/* Generated text as it grows: valid UTF-8, cut at the first stop string, shown as far
 * as it can no longer change. */
#include <stdlib.h>
#include <string.h>

#include "eng_textstream.h"
#include "eng_unicode.h"

struct eng_textstream {
    char *text; /* valid UTF-8, NUL-terminated */
    size_t len, cap;
    size_t taken;     /* text[0..taken) was handed out */
    char pending[4];  /* an unfinished character's bytes */
    size_t n_pending; /* (fewer than its lead byte announces) */
    char **stops;     /* the stop strings (empty ones never match) */
    size_t n_stops;
    int stop; /* the stop string found, -1 */
    bool finished;
};

static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */

eng_textstream *eng_textstream_create(const char *const *stops, size_t n_stops)
{
    eng_textstream *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->stop = -1;
    t->cap = 256;
    t->text = malloc(t->cap);
    t->stops = calloc(n_stops ? n_stops : 1, sizeof *t->stops);
    if (!t->text || !t->stops)
        goto fail;
    t->text[0] = '\0';
    for (; t->n_stops < n_stops; t->n_stops++) {
        const char *stop = stops[t->n_stops] ? stops[t->n_stops] : "";
        if (!(t->stops[t->n_stops] = malloc(strlen(stop) + 1)))
            goto fail;
        strcpy(t->stops[t->n_stops], stop);
    }
    return t;
fail:
    eng_textstream_destroy(t);
    return NULL;
}

void eng_textstream_destroy(eng_textstream *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_stops; i++)
        free(t->stops[i]);
    free(t->stops);
    free(t->text);
    free(t);
}

/* Room for `more` bytes and the NUL. */
static bool reserve(eng_textstream *t, size_t more)
{
    if (t->len + more + 1 <= t->cap)
        return true;
    size_t cap = 2 * (t->len + more + 1);
    char *p = realloc(t->text, cap);
    if (!p)
        return false;
    t->text = p;
    t->cap = cap;
    return true;
}

static void put(eng_textstream *t, const char *s, size_t n)
{
    memcpy(t->text + t->len, s, n);
    t->len += n;
}

/* Ends the text before the earliest stop string in what was not handed out (a stop string
 * cannot begin in what was: take holds back every possible beginning). */
static void find_stop(eng_textstream *t)
{
    size_t at = t->len;
    for (size_t i = 0; i < t->n_stops; i++) {
        size_t sl = strlen(t->stops[i]);
        for (size_t p = t->taken; sl && p + sl <= t->len && p < at; p++) /* sl 0: none */
            if (memcmp(t->text + p, t->stops[i], sl) == 0) {
                at = p;
                t->stop = (int)i;
                break;
            }
    }
    if (t->stop >= 0) {
        t->len = at;
        t->n_pending = 0;
    }
    t->text[t->len] = '\0';
}

/* Appends the characters of w[0..n), keeping an unfinished last one in pending. The text
 * has room for 3 bytes per byte of w (each may become U+FFFD). */
static void decode_into(eng_textstream *t, const char *w, size_t n)
{
    size_t i = 0;
    t->n_pending = 0;
    while (i < n) {
        size_t want = eng_utf8_len(w + i, 4);
        if (i + want > n) { /* cut short: wait for the rest if it may still come */
            bool more = true;
            for (size_t j = i + 1; j < n; j++)
                more = more && ((uint8_t)w[j] & 0xC0) == 0x80;
            if (more) {
                memcpy(t->pending, w + i, n - i);
                t->n_pending = n - i;
                return;
            }
        }
        size_t len;
        if (eng_utf8_decode(w + i, n - i, &len) >= 0x110000u) {
            put(t, replacement, 3);
            i++;
        } else {
            put(t, w + i, len);
            i += len;
        }
    }
}

bool eng_textstream_add(eng_textstream *t, const char *bytes, size_t n)
{
    if (t->stop >= 0 || t->finished || n == 0)
        return true;
    size_t total = t->n_pending + n;
    char *w = malloc(total);
    if (!w || !reserve(t, 3 * total)) {
        free(w);
        return false;
    }
    memcpy(w, t->pending, t->n_pending);
    memcpy(w + t->n_pending, bytes, n);
    decode_into(t, w, total);
    free(w);
    find_stop(t);
    return true;
}

bool eng_textstream_add_token(eng_textstream *t, const eng_vocab *v, int32_t token, bool special)
{
    char small[128];
    size_t len = eng_token_piece(v, token, special, small, sizeof small);
    if (len < sizeof small)
        return eng_textstream_add(t, small, len);
    char *big = malloc(len + 1);
    if (!big)
        return false;
    eng_token_piece(v, token, special, big, len + 1);
    bool ok = eng_textstream_add(t, big, len);
    free(big);
    return ok;
}

bool eng_textstream_finish(eng_textstream *t)
{
    if (t->stop < 0 && !t->finished && t->n_pending) {
        if (!reserve(t, 3))
            return false;
        put(t, replacement, 3);
        t->n_pending = 0;
        find_stop(t);
    }
    t->finished = true;
    return true;
}

int eng_textstream_stop(const eng_textstream *t)
{
    return t->stop;
}

/* The longest end of the text not handed out that begins some stop string. */
static size_t held_back(const eng_textstream *t)
{
    size_t open = t->len - t->taken, best = 0;
    for (size_t i = 0; i < t->n_stops; i++) {
        size_t sl = strlen(t->stops[i]);
        if (sl == 0)
            continue;
        for (size_t k = sl - 1 < open ? sl - 1 : open; k > best; k--)
            if (memcmp(t->text + t->len - k, t->stops[i], k) == 0) {
                best = k;
                break;
            }
    }
    return best;
}

const char *eng_textstream_take(eng_textstream *t, size_t *n)
{
    size_t end = t->len;
    if (t->stop < 0 && !t->finished) {
        end -= held_back(t);
        while (end > t->taken && ((uint8_t)t->text[end] & 0xC0) == 0x80)
            end--; /* a character's start */
    }
    const char *p = t->text + t->taken;
    *n = end - t->taken;
    t->taken = end;
    return p;
}

const char *eng_textstream_text(const eng_textstream *t, size_t *n)
{
    *n = t->len;
    return t->text;
}
