// Workgroup-wide reductions for kernels with one workgroup per row. Include after
// `layout(local_size_x_id = 0) in;`: before it, gl_WorkGroupSize is the default 1.
//
// wg_sum(v) and wg_max(v) return the reduction of v over the whole workgroup to every
// invocation. Call them in uniform control flow (they contain barriers); calls may follow
// one another. With USE_SUBGROUP, subgroups reduce first (any subgroup size, 4 to 128,
// full or not) and shared memory joins them; without it, a shared-memory tree that works
// for any workgroup size.
#ifndef VKB_REDUCE_GLSL
#define VKB_REDUCE_GLSL

#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

shared float reduce_buf[gl_WorkGroupSize.x];

#ifdef USE_SUBGROUP
#define VKB_REDUCE(name, sg_op, combine, identity)                                             \
    float name(float v)                                                                        \
    {                                                                                          \
        v = sg_op(v);                                                                          \
        barrier(); /* the previous call has read reduce_buf */                                 \
        if (subgroupElect())                                                                   \
            reduce_buf[gl_SubgroupID] = v;                                                     \
        barrier();                                                                             \
        float t = identity;                                                                    \
        for (uint s = 0u; s < gl_NumSubgroups; s++)                                            \
            t = combine(t, reduce_buf[s]);                                                     \
        return t;                                                                              \
    }
#else
#define VKB_REDUCE(name, sg_op, combine, identity)                                             \
    float name(float v)                                                                        \
    {                                                                                          \
        uint lid = gl_LocalInvocationID.x;                                                     \
        barrier();                                                                             \
        reduce_buf[lid] = v;                                                                   \
        barrier();                                                                             \
        uint half_size = 1u;                                                                   \
        while (half_size * 2u < gl_WorkGroupSize.x)                                            \
            half_size *= 2u;                                                                   \
        for (uint s = half_size; s > 0u; s >>= 1) {                                            \
            if (lid < s && lid + s < gl_WorkGroupSize.x)                                       \
                reduce_buf[lid] = combine(reduce_buf[lid], reduce_buf[lid + s]);               \
            barrier();                                                                         \
        }                                                                                      \
        return reduce_buf[0];                                                                  \
    }
#endif

float reduce_add(float a, float b)
{
    return a + b;
}

VKB_REDUCE(wg_sum, subgroupAdd, reduce_add, 0.0)
VKB_REDUCE(wg_max, subgroupMax, max, uintBitsToFloat(0xff800000u))

#endif
