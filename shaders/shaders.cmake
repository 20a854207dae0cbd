# One line per SPIR-V variant: vkllm_shader(NAME SOURCE [DEFINES ...]).
# Included from backend/CMakeLists.txt, whose library embeds the compiled words.
vkllm_shader(copy_vec4 copy_vec4.comp)
vkllm_shader(add_f32 add_f32.comp)
vkllm_shader(sum_subgroup sum_f32.comp DEFINES USE_SUBGROUP)
vkllm_shader(sum_shared sum_f32.comp)
