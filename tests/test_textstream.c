/* Generated text shown as it grows (engine/eng_textstream.h): characters split between
 * tokens held until whole, bytes that cannot be characters replaced, the text cut at the
 * first stop string and nothing shown that a stop string could still take back; any
 * cutting of a text into pieces shows the same text as the whole at once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng_textstream.h"
#include "harness.h"

/* Adds s and checks what take then gives. */
static void add_take(eng_textstream *t, const char *s, const char *want)
{
    CHECK(eng_textstream_add(t, s, strlen(s)));
    size_t n;
    const char *p = eng_textstream_take(t, &n);
    CHECK_MSG(n == strlen(want) && memcmp(p, want, n) == 0,
              "after adding \"%s\": took \"%.*s\", want \"%s\"", s, (int)n, p, want);
}

static void check_text(const eng_textstream *t, const char *want)
{
    size_t n;
    const char *p = eng_textstream_text(t, &n);
    CHECK_MSG(n == strlen(want) && strcmp(p, want) == 0, "text \"%s\", want \"%s\"", p, want);
}

static void test_utf8(void)
{
    eng_textstream *t = eng_textstream_create(NULL, 0);
    CHECK(t != NULL);
    if (!t)
        return;
    add_take(t, "caf", "caf");
    add_take(t, "\xC3", ""); /* é's first byte waits */
    check_text(t, "caf");
    add_take(t, "\xA9 \xE2\x82", "\xC3\xA9 ");
    add_take(t, "\xAC!", "\xE2\x82\xAC!");
    add_take(t,
             "\xFF"
             "a",
             "\xEF\xBF\xBD"
             "a"); /* never a lead byte */
    add_take(t,
             "\xC3"
             "b",
             "\xEF\xBF\xBD"
             "b");                                       /* a lead byte without its follower */
    add_take(t, "\xC0\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD"); /* overlong: each byte replaced */
    add_take(t, "\xF0\x9F", "");
    CHECK(eng_textstream_finish(t)); /* the unfinished character becomes one U+FFFD */
    size_t n;
    const char *p = eng_textstream_take(t, &n);
    CHECK_MSG(n == 3 && memcmp(p, "\xEF\xBF\xBD", 3) == 0, "finish took %zu bytes", n);
    CHECK(eng_textstream_stop(t) == -1);
    eng_textstream_destroy(t);
}

static void test_stops(void)
{
    const char *stops[] = {"\n\n", "", "END"};
    eng_textstream *t = eng_textstream_create(stops, 3);
    CHECK(t != NULL);
    if (!t)
        return;
    add_take(t, "abc E", "abc ");
    add_take(t, "N", "");
    add_take(t, "x\n", "ENx"); /* not a stop after all; the newline may begin one */
    add_take(t, "y E", "\ny ");
    add_take(t, "ND and more", "");
    CHECK(eng_textstream_stop(t) == 2);
    check_text(t, "abc ENx\ny ");
    add_take(t, "ignored", ""); /* nothing after a stop */
    CHECK(eng_textstream_finish(t));
    check_text(t, "abc ENx\ny ");
    eng_textstream_destroy(t);

    /* the earliest stop string wins, whichever comes first in the list */
    const char *two[] = {"bc", "abcd"};
    t = eng_textstream_create(two, 2);
    CHECK(t != NULL);
    if (t) {
        add_take(t, "xab", "x");
        add_take(t, "cd", "");
        CHECK(eng_textstream_stop(t) == 1);
        check_text(t, "x");
        eng_textstream_destroy(t);
    }
    /* the end of the text releases what was held back */
    const char *nl[] = {"\n\n"};
    t = eng_textstream_create(nl, 1);
    CHECK(t != NULL);
    if (t) {
        add_take(t, "foo\n", "foo");
        CHECK(eng_textstream_finish(t));
        size_t n;
        const char *p = eng_textstream_take(t, &n);
        CHECK(n == 1 && p[0] == '\n');
        eng_textstream_destroy(t);
    }
}

/* The text cut at its first stop string, by plain search (the reference). */
static size_t reference_end(const char *s, size_t len, const char *const *stops, size_t n_stops)
{
    size_t end = len;
    for (size_t i = 0; i < n_stops; i++) {
        size_t sl = strlen(stops[i]);
        for (size_t p = 0; p + sl <= len && p < end; p++)
            if (memcmp(s + p, stops[i], sl) == 0)
                end = p;
    }
    return end;
}

/* Random ASCII texts cut into random pieces: the pieces taken, joined, are the text up to
 * the first stop string, and a stop string is never shown. */
static void test_pieces(void)
{
    const char *stops[] = {"aab", "ba", "\n\n", "abba"};
    uint64_t rng = 42;
    for (int round = 0; round < 2000; round++) {
        char s[64], shown[64];
        size_t len = 1 + t_rand_u64(&rng) % 40, n_shown = 0;
        for (size_t i = 0; i < len; i++)
            s[i] = "ab\nc"[t_rand_u64(&rng) % 4];
        size_t n_stops = t_rand_u64(&rng) % 5;
        eng_textstream *t = eng_textstream_create(stops, n_stops);
        CHECK(t != NULL);
        if (!t)
            return;
        for (size_t at = 0; at < len;) {
            size_t piece = 1 + t_rand_u64(&rng) % 4;
            piece = piece < len - at ? piece : len - at;
            CHECK(eng_textstream_add(t, s + at, piece));
            at += piece;
            size_t n;
            const char *p = eng_textstream_take(t, &n);
            memcpy(shown + n_shown, p, n);
            n_shown += n;
        }
        CHECK(eng_textstream_finish(t));
        size_t n;
        const char *p = eng_textstream_take(t, &n);
        memcpy(shown + n_shown, p, n);
        n_shown += n;
        size_t end = reference_end(s, len, stops, n_stops);
        CHECK_MSG(n_shown == end && memcmp(shown, s, end) == 0,
                  "round %d: \"%.*s\" with %zu stops showed \"%.*s\"", round, (int)len, s, n_stops,
                  (int)n_shown, shown);
        CHECK((eng_textstream_stop(t) >= 0) == (end < len));
        eng_textstream_destroy(t);
    }
}

int main(int argc, char **argv)
{
    static const t_case cases[] = {
        {"utf8", test_utf8, false},
        {"stops", test_stops, false},
        {"pieces", test_pieces, false},
    };
    return t_main(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
}
