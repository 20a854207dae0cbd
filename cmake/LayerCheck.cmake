# DESIGN.md layer rule: only backend/ may include volk.h or the Vulkan headers.
# Runs at build time (target layer_check, part of ALL) so a violation fails the build.
add_custom_target(layer_check ALL
    COMMAND ${CMAKE_COMMAND} -DROOT=${PROJECT_SOURCE_DIR} -P ${CMAKE_CURRENT_LIST_DIR}/layer_check.cmake
    COMMENT "checking layer rules (Vulkan headers only in backend/)"
    VERBATIM)
