// The gated FFN's activations of a gate value g, shared by eltwise.comp, quantize_q8.comp
// and matvec.comp's GLU epilogue so that the fused and the plain paths give the same bits:
//
//   silu(g) = g / (1 + exp(-g))                       (llama, qwen, mistral)
//   gelu(g) = 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3)))   (gemma: the tanh
//             approximation, as ggml computes GELU), written as g / (1 + exp(-2 t)) with
//             t the tanh's argument: one exp, and no inf / inf at either end
//
// `precise` keeps every driver from contracting the products into fused multiply-adds in
// one kernel and not in another.
#ifndef VKB_ACT_GLSL
#define VKB_ACT_GLSL

#define ACT_SILU 0u
#define ACT_GELU 1u

// 2 sqrt(2/pi) and the cubic term's coefficient
#define ACT_GELU_K 1.5957691216057308
#define ACT_GELU_C 0.044715

float act_silu(float g)
{
    return g / (1.0 + exp(-g));
}

float act_gelu(float g)
{
    precise float t = ACT_GELU_K * g * (1.0 + ACT_GELU_C * g * g);
    return g / (1.0 + exp(-t));
}

vec4 act_silu4(vec4 g)
{
    return g / (1.0 + exp(-g));
}

vec4 act_gelu4(vec4 g)
{
    precise vec4 t = ACT_GELU_K * g * (1.0 + ACT_GELU_C * g * g);
    return g / (1.0 + exp(-t));
}

// act(g) · u for the activation `act` (ACT_SILU, ACT_GELU)
float act_mul(uint act, float g, float u)
{
    return (act == ACT_GELU ? act_gelu(g) : act_silu(g)) * u;
}

vec4 act_mul4(uint act, vec4 g, vec4 u)
{
    return (act == ACT_GELU ? act_gelu4(g) : act_silu4(g)) * u;
}

// Logit soft-capping (gemma 2's attention): cap · tanh(s / cap), with tanh(x) written as
// 1 - 2 / (exp(2x) + 1), which goes to ±1 where exp overflows or vanishes
float act_softcap(float s, float cap)
{
    return cap * (1.0 - 2.0 / (exp(2.0 * s / cap) + 1.0));
}

#endif // VKB_ACT_GLSL
