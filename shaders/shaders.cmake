# One line per SPIR-V variant: vkllm_shader(NAME SOURCE [DEFINES ...]).
# Included from backend/CMakeLists.txt, whose library embeds the compiled words.
vkllm_shader(copy_vec4 copy_vec4.comp)
vkllm_shader(add_f32 add_f32.comp)
vkllm_shader(sum_subgroup sum_f32.comp DEFINES USE_SUBGROUP)
vkllm_shader(sum_shared sum_f32.comp)

# Weight formats: one SPIR-V blob per format for each kernel that reads weights.
set(VKLLM_WEIGHT_FORMATS f32 f16 bf16 q4_0 q4_1 q5_0 q5_1 q8_0 q4_k q5_k q6_k iq4_nl)
foreach(fmt ${VKLLM_WEIGHT_FORMATS})
    string(TOUPPER ${fmt} FMT)
    vkllm_shader(matvec_${fmt}_subgroup matvec.comp DEFINES FORMAT_${FMT} USE_SUBGROUP)
    vkllm_shader(matvec_${fmt}_shared matvec.comp DEFINES FORMAT_${FMT})
    vkllm_shader(matvec_${fmt}_lanes matvec.comp DEFINES FORMAT_${FMT} LANE_ROWS)
    if(fmt MATCHES "^(q4_0|q8_0|q4_k|q5_k|q6_k)$")
        vkllm_shader(matvec_${fmt}_int_dot matvec.comp DEFINES FORMAT_${FMT} USE_SUBGROUP INT_DOT)
    endif()
    if(NOT fmt MATCHES "^(f32|f16|bf16)$")
        vkllm_shader(matmul_${fmt}_int_dot matmul_int_dot.comp DEFINES FORMAT_${FMT})
        vkllm_shader(matvec_${fmt}_staged matvec.comp DEFINES FORMAT_${FMT} USE_SUBGROUP STAGED)
    endif()
    vkllm_shader(matmul_${fmt} matmul.comp DEFINES FORMAT_${FMT})
    vkllm_shader(matmul_${fmt}_coopmat matmul_coopmat.comp DEFINES FORMAT_${FMT})
    vkllm_shader(matmul_${fmt}_coopmat_emu matmul_coopmat.comp DEFINES FORMAT_${FMT} COOPMAT_EMU)
    vkllm_shader(get_rows_${fmt} get_rows.comp DEFINES FORMAT_${FMT})
endforeach()

# Activations to 8-bit blocks for the integer-dot-product matvec.
vkllm_shader(quantize_q8 quantize_q8.comp)
vkllm_shader(silu_mul_q8 quantize_q8.comp DEFINES SILU_MUL)
vkllm_shader(gelu_mul_q8 quantize_q8.comp DEFINES GELU_MUL)

# Row-wise ops reduce across a workgroup: a subgroup variant and a shared-memory one.
foreach(op rms_norm softmax attention)
    vkllm_shader(${op}_subgroup ${op}.comp DEFINES USE_SUBGROUP)
    vkllm_shader(${op}_shared ${op}.comp)
endforeach()

# rms_norm with its output also quantized for the integer-dot-product matvec.
vkllm_shader(rms_norm_q8_subgroup rms_norm.comp DEFINES USE_SUBGROUP Q8)
vkllm_shader(rms_norm_q8_shared rms_norm.comp DEFINES Q8)
# rms_norm added to the residual stream (gemma's norms after the attention and the FFN).
vkllm_shader(rms_norm_add_subgroup rms_norm.comp DEFINES USE_SUBGROUP ADD)
vkllm_shader(rms_norm_add_shared rms_norm.comp DEFINES ADD)

# Prefill attention over f16 caches on cooperative matrices, and its emulation.
vkllm_shader(attention_coopmat attention_coopmat.comp)
vkllm_shader(attention_coopmat_emu attention_coopmat.comp DEFINES COOPMAT_EMU)

# Split-K attention's merge of the partial results.
vkllm_shader(attention_merge attention_merge.comp)
vkllm_shader(attention_merge_q8 attention_merge.comp DEFINES Q8)

# Quantize-on-write into the KV cache.
vkllm_shader(kv_store_q8_0 kv_store.comp DEFINES TYPE=KV_Q8_0)
vkllm_shader(kv_store_q4_0 kv_store.comp DEFINES TYPE=KV_Q4_0)
vkllm_shader(kv_store_f16 kv_store.comp DEFINES TYPE=KV_F16)
# KIVI caches: what leaves the f16 window folded into the store, and the window's rows.
vkllm_shader(kv_fold_keys kv_kivi.comp DEFINES FOLD_KEYS)
vkllm_shader(kv_fold_values kv_kivi.comp DEFINES FOLD_VALUES)
vkllm_shader(kv_window kv_kivi.comp DEFINES WINDOW)

# The unfused attention path: scores to memory, softmax, then the value product.
vkllm_shader(attention_scores attention_unfused.comp DEFINES SCORES)
vkllm_shader(attention_values attention_unfused.comp DEFINES VALUES)

# Greedy decoding's pick on the GPU, written where the next step reads its token.
vkllm_shader(argmax argmax.comp)
# The best logits for a sampler that needs no others (top-k with or without a penalty).
vkllm_shader(top_logits top_logits.comp)
# Sampling's pick on the GPU from those, fed to the next step as greedy's is.
vkllm_shader(sample sample.comp)

vkllm_shader(rope_f32 rope.comp)
vkllm_shader(rope_store_f16 rope_store.comp)
# qwen3's per-head norms of q and k before rope, in the same dispatch
vkllm_shader(rope_store_norm_f16 rope_store.comp DEFINES NORM)
vkllm_shader(silu_mul_f32 eltwise.comp DEFINES OP_SILU_MUL)
vkllm_shader(gelu_mul_f32 eltwise.comp DEFINES OP_GELU_MUL)
vkllm_shader(scale_f32 eltwise.comp DEFINES OP_SCALE)
vkllm_shader(softcap_f32 eltwise.comp DEFINES OP_SOFTCAP)
vkllm_shader(convert_f32_f16 eltwise.comp DEFINES OP_F32_F16)
vkllm_shader(convert_f16_f32 eltwise.comp DEFINES OP_F16_F32)

# Benchmark yardsticks
vkllm_shader(fma_peak fma_peak.comp)
