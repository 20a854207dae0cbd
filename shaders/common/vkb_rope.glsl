// The rotation of rotary position embedding, shared by rope.comp and rope_store.comp so
// that both give the same bits: the pair (x0, x1) turned by the angle pos * freq. The
// angle is reduced to [-pi, pi] in two steps (Cody-Waite) before cos and sin, whose
// accuracy Vulkan only promises there; `precise` keeps the compiler from contracting
// the products into fused multiply-adds differently in different kernels.
#ifndef VKB_ROPE_GLSL
#define VKB_ROPE_GLSL

vec2 rope_rotate(float x0, float x1, int pos, float freq)
{
    precise float theta = float(pos) * freq;
    // theta - k * 2pi with 2pi = C1 + C2, C1 exact in 16 bits so k * C1 is exact
    const float C1 = 6.28125, C2 = 1.9353071795864769e-3;
    precise float k = round(theta * 0.15915494309189535);
    precise float red = (theta - k * C1) - k * C2;
    const float c = cos(red), s = sin(red);
    precise float r0 = x0 * c - x1 * s;
    precise float r1 = x0 * s + x1 * c;
    return vec2(r0, r1);
}

// The two dimensions that pair i < rot_dims / 2 rotates: (2i, 2i+1) in llama's order,
// (i, i + rot_dims/2) in GPT-NeoX's.
uvec2 rope_pair(uint i, uint rot_dims, bool neox)
{
    return neox ? uvec2(i, i + rot_dims / 2u) : uvec2(2u * i, 2u * i + 1u);
}

#endif
