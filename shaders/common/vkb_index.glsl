// Shared helpers for 1-D kernels whose grid may be folded into y by the backend
// (contract flag flatten_x: more workgroups than maxComputeWorkGroupCount[0]).
#ifndef VKB_INDEX_GLSL
#define VKB_INDEX_GLSL

uint flat_group_id()
{
    return gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
}

// A position or cache row given as AT_POS in the push constants is read from the
// positions buffer when the dispatch runs (vkb_ops.h, VKB_AT_POS): one recording of a
// decode step then serves every position.
#define AT_POS 0xffffffffu

#endif
