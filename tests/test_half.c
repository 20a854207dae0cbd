/* f16 and bf16 conversions: exhaustive decode/encode round trips, and round-to-nearest-even
 * checked against the neighbours of every result (an oracle that does not share the
 * implementation's arithmetic). */
#include <math.h>
#include <string.h>

#include "cmp_half.h"
#include "harness.h"

static bool is_nan16(uint16_t h)
{
    return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu);
}

static void test_f16_round_trip(void)
{
    uint32_t bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = cmp_f16_to_f32((uint16_t)h);
        uint16_t back = cmp_f32_to_f16(f);
        if (is_nan16((uint16_t)h))
            bad += !isnan(f) || !is_nan16(back);
        else
            bad += back != h;
    }
    CHECK_MSG(bad == 0, "%u of 65536 f16 values do not survive f16 -> f32 -> f16", bad);
    CHECK(cmp_f16_to_f32(0x3c00) == 1.0f);
    CHECK(cmp_f16_to_f32(0xc000) == -2.0f);
    CHECK(cmp_f16_to_f32(0x0001) == ldexpf(1.0f, -24));
    CHECK(cmp_f16_to_f32(0x7bff) == 65504.0f);
    CHECK(isinf(cmp_f16_to_f32(0x7c00)));
}

/* f is an ordinary float; h must be the nearest f16, ties to even. */
static bool nearest_even(float f, uint16_t h)
{
    double x = f, v = cmp_f16_to_f32(h);
    if (isinf(v)) /* overflow: only when |f| rounds past 65504 (≥ 65520) */
        return fabs(x) >= 65520.0 && (v > 0) == (x > 0);
    double err = fabs(x - v);
    uint16_t mag = h & 0x7fffu;
    for (int d = -1; d <= 1; d += 2) {
        int nm = (int)mag + d;
        if (nm < 0 || nm > 0x7bff)
            continue;
        double nv = cmp_f16_to_f32((uint16_t)((h & 0x8000u) | (uint16_t)nm));
        double nerr = fabs(x - nv);
        if (nerr < err || (nerr == err && (mag & 1u)))
            return false;
    }
    /* the other sign's zero is never nearer; |x - v| ≤ half an ulp was checked above */
    return true;
}

static void test_f32_to_f16_rounding(void)
{
    uint64_t seed = 42;
    uint32_t bad = 0, checked = 0;
    for (int i = 0; i < 2000000; i++) {
        uint32_t u = (uint32_t)t_rand_u64(&seed);
        /* concentrate on the f16 range, including subnormals and exact ties */
        if (i % 2)
            u = (u & 0x80000000u) | (((u >> 23) % 40 + 100) << 23) | (u & 0x7fffffu);
        if (i % 5 == 0)
            u &= 0xffffe000u | 0x1000u; /* exact halfway points between f16 values */
        float f;
        memcpy(&f, &u, 4);
        if (isnan(f)) {
            bad += !is_nan16(cmp_f32_to_f16(f));
            continue;
        }
        checked++;
        if (!nearest_even(f, cmp_f32_to_f16(f)))
            bad++;
    }
    CHECK_MSG(bad == 0, "%u of %u conversions are not round-to-nearest-even", bad, checked);
    CHECK(cmp_f32_to_f16(65519.0f) == 0x7bff);
    CHECK(cmp_f32_to_f16(65520.0f) == 0x7c00);
    CHECK(cmp_f32_to_f16(-1e9f) == 0xfc00);
    CHECK(cmp_f32_to_f16(ldexpf(1.0f, -25)) == 0x0000); /* tie to even: 0 */
    CHECK(cmp_f32_to_f16(ldexpf(1.5f, -25)) == 0x0001);
    CHECK(cmp_f32_to_f16(-0.0f) == 0x8000);
}

static void test_bf16(void)
{
    uint32_t bad = 0;
    for (uint32_t b = 0; b < 65536; b++) {
        float f = cmp_bf16_to_f32((uint16_t)b);
        uint16_t back = cmp_f32_to_bf16(f);
        bad += isnan(f) ? !isnan(cmp_bf16_to_f32(back)) : back != b;
    }
    CHECK(bad == 0);
    CHECK(cmp_f32_to_bf16(1.0f) == 0x3f80);
    /* 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even gives 1 */
    CHECK(cmp_f32_to_bf16(1.0f + ldexpf(1.0f, -8)) == 0x3f80);
    CHECK(cmp_f32_to_bf16(1.0f + 3 * ldexpf(1.0f, -8)) == 0x3f82);
}

int main(int argc, char **argv)
{
    static const t_case cases[] = {
        {"f16_round_trip", test_f16_round_trip, false},
        {"f32_to_f16_rounding", test_f32_to_f16_rounding, false},
        {"bf16", test_bf16, false},
    };
    return t_main(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
}
