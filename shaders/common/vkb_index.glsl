// Shared helpers for 1-D kernels whose grid may be folded into y by the backend
// (contract flag flatten_x: more workgroups than maxComputeWorkGroupCount[0]).
#ifndef VKB_INDEX_GLSL
#define VKB_INDEX_GLSL

uint flat_group_id()
{
    return gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
}

#endif
