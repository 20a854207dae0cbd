/* Weight-matrix ops: matvec (decode), matmul (prefill), get_rows (embedding lookup).
 *
 * A matrix may span many parts of its buffer (vkb_buffer_alloc with the granule
 * vkb_matrix_granule gives), each holding whole rows; the ops dispatch once per part with
 * the part's first row and row count in the push constants. */
#include <stdio.h>
#include <string.h>

#include "vkb_internal.h"
#include "vkb_ops.h"

static const char *format_name(cmp_type type)
{
    switch (type) {
    case CMP_TYPE_F32: return "f32";
    case CMP_TYPE_F16: return "f16";
    case CMP_TYPE_BF16: return "bf16";
    case CMP_TYPE_Q4_0: return "q4_0";
    case CMP_TYPE_Q4_1: return "q4_1";
    case CMP_TYPE_Q5_0: return "q5_0";
    case CMP_TYPE_Q5_1: return "q5_1";
    case CMP_TYPE_Q8_0: return "q8_0";
    case CMP_TYPE_Q4_K: return "q4_k";
    case CMP_TYPE_Q5_K: return "q5_k";
    case CMP_TYPE_Q6_K: return "q6_k";
    case CMP_TYPE_IQ4_NL: return "iq4_nl";
    }
    return NULL;
}

bool vkb_op_type_supported(cmp_type type)
{
    return format_name(type) != NULL;
}

uint64_t vkb_matrix_granule(cmp_type type, uint32_t k)
{
    uint64_t rb = cmp_row_bytes(type, k);
    if (rb == 0)
        return 0;
    return rb % 4 == 0 ? rb : rb % 2 == 0 ? 2 * rb : 4 * rb;
}

uint64_t vkb_matrix_bytes(cmp_type type, uint32_t k, uint32_t rows)
{
    return ((uint64_t)cmp_row_bytes(type, k) * rows + 3) / 4 * 4;
}

/* ---- per-device choices ---- */

static bool is_float_format(cmp_type type)
{
    return type == CMP_TYPE_F32 || type == CMP_TYPE_F16 || type == CMP_TYPE_BF16;
}

void vkb_op_matvec_tune(vkb_device *dev, const vkb_matvec_tuning *t)
{
    dev->matvec_tuning = t ? *t : (vkb_matvec_tuning){0};
}

bool vkb_matvec_tuning_parse(const char *text, vkb_matvec_tuning *t)
{
    unsigned wg, rows;
    int used = 0;
    if (!text || sscanf(text, "%ux%u%n", &wg, &rows, &used) != 2 || wg == 0 || rows == 0)
        return false;
    *t = (vkb_matvec_tuning){.wg = wg, .rows = rows};
    for (const char *c = text + used; *c; c++) {
        if (*c == 's') {
            t->staged = true;
        } else if (*c == 'l') {
            t->lanes = true;
        } else if (*c == 'i' || *c == 'f') {
            t->int_dot = *c == 'i' ? 1 : -1;
        } else {
            return false;
        }
    }
    /* lanes: up to VKB_LANE_ROWS rows per invocation; otherwise up to 16 per workgroup */
    return t->lanes ? rows <= VKB_LANE_ROWS * wg : rows <= 16;
}

/* matvec.comp LANE_ROWS: a workgroup of one subgroup, x broadcast from lane to lane, on
 * CPU drivers (their subgroup is the SIMD width, fixed; a GPU may run a workgroup the
 * size of its subgroup as smaller subgroups). */
static bool lanes_allowed(const vkb_device *dev)
{
    const vkb_device_info *info = &dev->info;
    uint32_t need = VKB_SUBGROUP_BASIC | VKB_SUBGROUP_BALLOT;
    return info->type == VKB_DEVICE_CPU && vkb_op_use_subgroups(dev) && info->shader_int64 &&
           (info->subgroup_ops & need) == need && info->subgroup_size >= 8 &&
           info->subgroup_size <= vkb_max_workgroup_x(info);
}

/* CPU drivers without the lanes kernel (and the integer-dot one there): a subgroup-wide
 * workgroup taking four rows. */
static vkb_matvec_tuning cpu_subgroup_plan(uint32_t sg)
{
    return (vkb_matvec_tuning){.wg = sg < 8 ? 8 : sg, .rows = 4};
}

/* Decode is bandwidth-bound: enough invocations in flight per row to cover memory
 * latency on GPUs. On a CPU driver one workgroup runs on one thread and every invocation's
 * load from a buffer is a scalar load of its own, so each invocation takes whole rows and
 * x comes once per subgroup (lanes; lavapipe, 2-core VM, 4096 x 4096: q4_0 5.3 -> 1.8 ms,
 * q8_0 5.1 -> 2.6, q4_K 8.0 -> 2.8; docs/benchmarks.md). Four rows per invocation (one
 * load of x for four rows) over two: 7% less time over four formats and five llama-1b /
 * smollm shapes, llama-1b decode +9% (Q4_0) and +14% (Q4_K_M) on lavapipe. Else a
 * subgroup-wide workgroup taking four rows shares each load of x among them. Staging rows
 * through shared memory would only add copies there. */
vkb_matvec_tuning vkb_op_matvec_plan(const vkb_device *dev, cmp_type type, uint32_t ncols)
{
    uint32_t sg = dev->info.subgroup_size ? dev->info.subgroup_size : 32;
    vkb_matvec_tuning p;
    switch (dev->info.type) {
    case VKB_DEVICE_CPU:
        p = lanes_allowed(dev) ? (vkb_matvec_tuning){.wg = sg, .rows = 4 * sg, .lanes = true}
                               : cpu_subgroup_plan(sg);
        break;
    case VKB_DEVICE_DISCRETE: p = (vkb_matvec_tuning){.wg = 128, .rows = 2}; break;
    default: p = (vkb_matvec_tuning){.wg = 64, .rows = 1}; break;
    }
    if (dev->info.profile == VKB_PROFILE_MOBILE)
        p = (vkb_matvec_tuning){.wg = 64, .rows = 1};
    /* staged rows pay off where the decode per byte is cheap next to the loads: Q4_K/Q5_K
     * (their scale decoded once per 32 values) ran 1.4-1.6x faster staged on an H100; the
     * 18- and 34-byte blocks and Q6_K did not (docs/benchmarks.md) */
    if (dev->info.type != VKB_DEVICE_CPU)
        p.staged = type == CMP_TYPE_Q4_K || type == CMP_TYPE_Q5_K;
    if (dev->matvec_tuning.wg)
        p = dev->matvec_tuning;
    else if ((unsigned)type < VKB_TUNED_TYPES && dev->format_tuning[type].wg)
        p = dev->format_tuning[type];
    /* lanes: one subgroup per workgroup, 1 to VKB_LANE_ROWS rows per invocation; the
     * integer-dot kernel reads x's 8-bit blocks its own way (a subgroup-wide workgroup) */
    if (p.lanes && vkb_op_matvec_int_dot(dev, type)) {
        int int_dot = p.int_dot;
        p = cpu_subgroup_plan(sg);
        p.int_dot = int_dot;
    }
    p.lanes = p.lanes && lanes_allowed(dev);
    if (p.lanes) {
        uint32_t per = (p.rows + p.wg - 1) / p.wg;
        p.wg = sg;
        p.rows = sg * (per > VKB_LANE_ROWS ? VKB_LANE_ROWS : per);
        p.staged = false;
        return p;
    }
    if (p.rows > 16)
        p.rows = 16;
    /* staged: needs subgroup sums, whole blocks per chunk and a 16-byte aligned chunk */
    p.staged = p.staged && !is_float_format(type) && vkb_op_use_subgroups(dev) && p.wg % 16 == 0;
    uint32_t red = 4 * (p.rows + 1) * ncols; /* matvec.comp's red[] with NORM, per invocation */
    p.wg = vkb_op_wg_size(dev, p.wg, red);
    uint32_t limit = dev->info.max_shared_memory;
    while (p.staged && p.wg > 16 && vkb_matvec_shared_bytes(p.wg, p.rows, ncols, true) > limit)
        p.wg /= 2;
    p.staged =
        p.staged && p.wg % 16 == 0 && vkb_matvec_shared_bytes(p.wg, p.rows, ncols, true) <= limit;
    return p;
}

/* Tiles by device type. Register blocks of RM x RN outputs per invocation: RM + RN shared
 * loads feed RM x RN multiply-adds, and where shared-memory loads bound the kernel (4 x 4
 * is half a load per multiply-add) a larger block is the way up.
 *  - CPU drivers: 128 x 64, K by 16, 16 x 8 per invocation (64 invocations, 12 KiB).
 *    lavapipe, 2-core VM, q4_0 4096x4096 n=512: 2.4x the 32 x 32 / 4 x 4 tiles (16 x 16
 *    spills and is 3x slower again; docs/benchmarks.md).
 *  - discrete GPUs: 128 x 64, K by 16, 8 x 8 (128 invocations, 12 KiB): a quarter load
 *    per multiply-add, what an NVIDIA SM's shared memory feeds at its FMA rate. Not yet
 *    measured; the H100 reached 30% of its FMA rate with 64 x 64 / 4 x 4.
 *  - others (integrated and mobile GPUs, fewer registers): 32 x 32, K by 32, 4 x 4 (64
 *    invocations, 8 KiB).
 * VKLLM_MATMUL / vkb_op_matmul_tune replace the choice. */
vkb_matmul_tuning vkb_op_matmul_plan(const vkb_device *dev)
{
    const vkb_device_info *info = &dev->info;
    if (dev->matmul_tuning.tm)
        return dev->matmul_tuning;
    if (info->type == VKB_DEVICE_CPU)
        return (vkb_matmul_tuning){128, 64, 16, 16, 8};
    if (info->type == VKB_DEVICE_DISCRETE && vkb_max_workgroup_x(info) >= 128 &&
        info->profile == VKB_PROFILE_NATIVE)
        return (vkb_matmul_tuning){128, 64, 16, 8, 8};
    return (vkb_matmul_tuning){32, 32, 32, 4, 4};
}

/* matmul_int_dot.comp's spec {workgroup, TM, TN, TKB, OUTS, RM, RN}. CPU drivers: 64 x 64
 * tiles, four blocks of K a step, 8 x 4 per invocation (128 invocations, 19.5 KiB): on
 * lavapipe (2-core VM, q4_0 4096x4096 n=512) 1.45x the 32 x 32 / two blocks / 4 x 4 it
 * had, which stays the choice where shared memory is short; 8 x 8 was slower (the integer
 * and float sums both live in registers). Discrete GPUs that allow 256 invocations: 64 x
 * 64, two blocks, 4 x 4, as measured on the H100. VKLLM_MATMUL / vkb_op_matmul_tune set
 * these tiles too, K by TK / 32 blocks (at least one). */
static vkb_spec matmul_int_dot_spec(const vkb_device *dev, uint32_t outs)
{
    const vkb_device_info *info = &dev->info;
    uint32_t tm = 32, tn = 32, tkb = 2, rm = 4, rn = 4;
    const vkb_matmul_tuning *t = &dev->matmul_tuning;
    if (t->tm)
        tm = t->tm, tn = t->tn, tkb = t->tk < 64 ? 1 : t->tk / 32, rm = t->rm, rn = t->rn;
    else if (info->type == VKB_DEVICE_CPU)
        tm = tn = 64, tkb = 4, rm = 8;
    else if (info->type == VKB_DEVICE_DISCRETE && vkb_max_workgroup_x(info) >= 256 &&
             info->profile == VKB_PROFILE_NATIVE)
        tm = tn = 64;
    uint32_t shared = 4 * tkb * (8 * (tm + tn) + 2 * tm + 2 * tn); /* vkb_kernels.c's formula */
    if (shared > info->max_shared_memory || (tm / rm) * (tn / rn) > vkb_max_workgroup_x(info))
        tm = tn = 32, tkb = 2, rm = rn = 4;
    return (vkb_spec){.count = 7, .values = {(tm / rm) * (tn / rn), tm, tn, tkb, outs, rm, rn}};
}

uint32_t vkb_op_matmul_min_columns(const vkb_device *dev)
{
    if (dev->matmul_min)
        return dev->matmul_min;
    if (vkb_op_matmul_coopmat(dev))
        return 9;
    uint32_t n = vkb_op_matmul_plan(dev).tn * 7 / 8;
    return n > 9 ? n : 9;
}

uint32_t vkb_matmul_tuning_wg(const vkb_matmul_tuning *t)
{
    return (t->tm / t->rm) * (t->tn / t->rn);
}

bool vkb_matmul_tuning_parse(const char *text, vkb_matmul_tuning *t)
{
    unsigned tm, tn, tk, rm, rn;
    int end = 0;
    if (sscanf(text, "%ux%ux%u/%ux%u%n", &tm, &tn, &tk, &rm, &rn, &end) != 5 || text[end] || !tm ||
        !tn || !tk || !rm || !rn || tm % rm || tn % rn || tk % 8 || rm * rn > 256 || tm > 1024 ||
        tn > 1024 || tk > 256)
        return false;
    *t = (vkb_matmul_tuning){tm, tn, tk, rm, rn};
    return true;
}

void vkb_op_matmul_tune(vkb_device *dev, const vkb_matmul_tuning *t)
{
    dev->matmul_tuning = t ? *t : (vkb_matmul_tuning){0};
}

static const char *matvec_variant(const vkb_device *dev, cmp_type type,
                                  const vkb_matvec_tuning *plan)
{
    static _Thread_local char name[40];
    const char *f = format_name(type);
    if (!f)
        return NULL;
    snprintf(name, sizeof name, "matvec_%s_%s", f,
             plan->staged                ? "staged"
             : plan->lanes               ? "lanes"
             : vkb_op_use_subgroups(dev) ? "subgroup"
                                         : "shared");
    return name;
}

/* The integer-dot switch in force for matvec of `type`: VKLLM_MATVEC / vkb_op_matvec_tune's
 * where set, else the stored choice's (0: the device decides). */
static int int_dot_switch(const vkb_device *dev, cmp_type type)
{
    if (dev->matvec_tuning.wg || dev->matvec_tuning.int_dot)
        return dev->matvec_tuning.int_dot;
    return (unsigned)type < VKB_TUNED_TYPES ? dev->format_tuning[type].int_dot : 0;
}

/* The weight formats the integer-dot kernels read: matvec.comp INT_DOT (q4_0, q8_0, q4_K,
 * q5_K, q6_K), matmul_int_dot.comp (every quantized one). */
static bool q8_format(cmp_type type, bool matmul)
{
    if (matmul)
        return !is_float_format(type) && format_name(type);
    return type == CMP_TYPE_Q4_0 || type == CMP_TYPE_Q8_0 || type == CMP_TYPE_Q4_K ||
           type == CMP_TYPE_Q5_K || type == CMP_TYPE_Q6_K;
}

/* q8_format's list as text ("q4_0, q8_0"), for errors. */
static const char *q8_format_names(bool matmul)
{
    static _Thread_local char names[80];
    size_t n, len = 0;
    const cmp_type_info *types = cmp_type_list(&n);
    names[0] = '\0';
    for (size_t i = 0; i < n && len < sizeof names; i++)
        if (q8_format(types[i].type, matmul))
            len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", len ? ", " : "",
                                    types[i].name);
    return names;
}

bool vkb_op_matvec_int_dot(const vkb_device *dev, cmp_type type)
{
    const vkb_device_info *info = &dev->info;
    int sw = int_dot_switch(dev, type);
    if (!q8_format(type, false) || !info->int_dot || !vkb_op_use_subgroups(dev) || sw < 0)
        return false;
    return sw > 0 || info->int_dot_4x8_signed_accel;
}

uint64_t vkb_q8_bytes(uint32_t k, uint32_t ncols)
{
    return (uint64_t)ncols * (k / 32) * 40;
}

static const char *int_dot_variant(const char *op, cmp_type type)
{
    static _Thread_local char name[40];
    snprintf(name, sizeof name, "%s_%s_int_dot", op, format_name(type));
    return name;
}

/* Prefill dots integers where the device accelerates it, and on CPU drivers: lavapipe's
 * LLVM turns the dots into vector code, 3x the f32 kernel's rate (bench kernels, q4_0
 * 4096x4096 n=512) and 1.8x a 135M model's pp128 (docs/benchmarks.md), where its matvec
 * gained nothing measurable. */
bool vkb_op_matmul_int_dot(const vkb_device *dev, cmp_type type)
{
    const vkb_device_info *info = &dev->info;
    if (!q8_format(type, true) || !info->int_dot || dev->matvec_tuning.int_dot < 0 ||
        vkb_op_matmul_coopmat(dev))
        return false;
    return dev->matvec_tuning.int_dot > 0 || info->int_dot_4x8_signed_accel ||
           info->type == VKB_DEVICE_CPU;
}

const char *vkb_op_matvec_variant(const vkb_device *dev, cmp_type type)
{
    if (vkb_op_matvec_int_dot(dev, type))
        return int_dot_variant("matvec", type);
    vkb_matvec_tuning plan = vkb_op_matvec_plan(dev, type, 1);
    return matvec_variant(dev, type, &plan);
}

static const char *matmul_float_variant(cmp_type type)
{
    static _Thread_local char name[40];
    const char *f = format_name(type);
    if (!f)
        return NULL;
    snprintf(name, sizeof name, "matmul_%s", f);
    return name;
}

vkb_coopmat_mode vkb_op_coopmat_mode(vkb_device *dev, vkb_coopmat_mode mode)
{
    vkb_coopmat_mode was = dev->coopmat;
    dev->coopmat = mode;
    return was;
}

bool vkb_coopmat_mode_parse(const char *text, vkb_coopmat_mode *mode)
{
    static const struct {
        const char *name;
        vkb_coopmat_mode mode;
    } names[] = {{"0", VKB_COOPMAT_OFF}, {"off", VKB_COOPMAT_OFF},      {"1", VKB_COOPMAT_ON},
                 {"on", VKB_COOPMAT_ON}, {"emu", VKB_COOPMAT_EMULATED}, {"auto", VKB_COOPMAT_AUTO}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(text, names[i].name) == 0) {
            *mode = names[i].mode;
            return true;
        }
    return false;
}

/* A workgroup of `subgroups` subgroups of the device's size for the cooperative-matrix
 * kernels (their tiles need exactly that many; the emulation, 8 invocations or more per
 * subgroup); 0 where it does not fit. */
static uint32_t coopmat_wg(const vkb_device *dev, uint32_t subgroups)
{
    const vkb_device_info *info = &dev->info;
    uint32_t wg = subgroups * info->subgroup_size;
    if (info->subgroup_size < 8 || !(info->subgroup_ops & VKB_SUBGROUP_BASIC) ||
        !info->shader_float16 || wg > info->max_workgroup_size[0] ||
        wg > info->max_workgroup_invocations)
        return 0;
    return wg;
}

/* The cooperative-matrix kernels' variant in force: on matrix units or emulated. */
static const char *coopmat_suffix(const vkb_device *dev)
{
    return dev->coopmat == VKB_COOPMAT_EMULATED ? "coopmat_emu" : "coopmat";
}

bool vkb_coopmat_spec(const vkb_device *dev, uint32_t subgroups, vkb_spec *spec,
                      const char **suffix)
{
    const vkb_device_info *info = &dev->info;
    uint32_t wg = coopmat_wg(dev, subgroups);
    if (!wg || !vkb_op_matmul_coopmat(dev))
        return false;
    *spec = (vkb_spec){.count = 1, .values = {wg}};
    if (info->subgroup_size_control && info->subgroup_size >= info->subgroup_size_min &&
        info->subgroup_size <= info->subgroup_size_max)
        spec->required_subgroup_size = info->subgroup_size;
    *suffix = coopmat_suffix(dev);
    return true;
}

bool vkb_op_matmul_coopmat(const vkb_device *dev)
{
    const vkb_device_info *info = &dev->info;
    if (!coopmat_wg(dev, 4))
        return false;
    switch (dev->coopmat) {
    case VKB_COOPMAT_ON: return info->coopmat_nv_f16 && info->memory_model;
    case VKB_COOPMAT_EMULATED: return true;
    default: return false;
    }
}

static const char *matmul_coopmat_variant(const vkb_device *dev, cmp_type type)
{
    static _Thread_local char name[40];
    snprintf(name, sizeof name, "matmul_%s_%s", format_name(type), coopmat_suffix(dev));
    return name;
}

const char *vkb_op_matmul_variant(const vkb_device *dev, cmp_type type)
{
    if (!format_name(type))
        return NULL;
    if (vkb_op_matmul_coopmat(dev))
        return matmul_coopmat_variant(dev, type);
    if (vkb_op_matmul_int_dot(dev, type))
        return int_dot_variant("matmul", type);
    return matmul_float_variant(type);
}

/* ---- argument checks ---- */

static vkb_status check_matrix(vkb_device *dev, const char *op, const vkb_matrix *w)
{
    if (!w || !w->buffer)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT, "%s: no weight matrix", op);
    const cmp_type_info *ti = cmp_type_get(w->type);
    if (!ti || !vkb_op_type_supported(w->type))
        return vkb_dev_fail(dev, VKB_ERR_UNSUPPORTED, "%s: no kernel reads tensor type %d (%s)", op,
                            (int)w->type, ti ? ti->name : "unknown");
    if (w->rows == 0 || w->k == 0 || w->k % ti->block_size || w->k % 8)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "%s: %s matrix of %u x %u: rows must be at least 1 and k a positive "
                            "multiple of %u and of 8",
                            op, ti->name, w->rows, w->k, ti->block_size);
    uint64_t need = vkb_matrix_bytes(w->type, w->k, w->rows);
    if (vkb_buffer_size(w->buffer) < need)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "%s: %s matrix of %u x %u needs %llu bytes; its buffer holds %llu", op,
                            ti->name, w->rows, w->k, (unsigned long long)need,
                            (unsigned long long)vkb_buffer_size(w->buffer));
    if (cmp_row_bytes(w->type, w->k) > UINT32_MAX / 2)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT, "%s: rows of %u values are too long", op,
                            w->k);
    return VKB_OK;
}

/* Part i of the matrix: its byte range to bind and the rows it holds. */
struct matrix_part {
    uint64_t offset, bytes;
    uint32_t row0, rows;
};

static vkb_status matrix_part(vkb_device *dev, const char *op, const vkb_matrix *w, uint32_t i,
                              struct matrix_part *out)
{
    uint64_t rb = cmp_row_bytes(w->type, w->k), off, size;
    vkb_buffer_part(w->buffer, i, &off, &size);
    uint64_t total = (uint64_t)w->rows * rb;
    bool last = i + 1 == vkb_buffer_part_count(w->buffer) || off + size >= total;
    if (off % rb || (!last && size % vkb_matrix_granule(w->type, w->k)))
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "%s: part %u of the weight buffer [%llu, +%llu) splits a row of %llu "
                            "bytes; allocate it with granule vkb_matrix_granule()",
                            op, i, (unsigned long long)off, (unsigned long long)size,
                            (unsigned long long)rb);
    out->row0 = (uint32_t)(off / rb);
    uint64_t rows = size / rb;
    if (rows > w->rows - out->row0)
        rows = w->rows - out->row0;
    out->rows = (uint32_t)rows;
    out->offset = off;
    out->bytes = (rows * rb + 3) / 4 * 4;
    if (out->bytes > size)
        out->bytes = size;
    return VKB_OK;
}

/* Parts that hold rows of w (a buffer may be larger than its matrix). */
static uint32_t matrix_parts(const vkb_matrix *w)
{
    uint64_t total = (uint64_t)w->rows * cmp_row_bytes(w->type, w->k);
    uint32_t n = vkb_buffer_part_count(w->buffer);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t off, size;
        vkb_buffer_part(w->buffer, i, &off, &size);
        if (off + size >= total)
            return i + 1;
    }
    return n;
}

/* Records one dispatch of p per part of w. The push constants are the part's
 * {k, row_bytes, row0, rows}, the prefix matvec.comp, matmul.comp and get_rows.comp
 * share, then `extra`. W is binding 0, io the bindings after it. The grid covers x_elems
 * (0: the part's rows) by y_elems. */
static vkb_status dispatch_parts(vkb_stream *s, const char *op, const vkb_matrix *w,
                                 vkb_pipeline *p, const vkb_binding *io, uint32_t n_io,
                                 const uint32_t *extra, uint32_t n_extra, uint64_t x_elems,
                                 uint64_t y_elems)
{
    vkb_device *dev = vkb_stream_device(s);
    uint32_t push[16] = {w->k, (uint32_t)cmp_row_bytes(w->type, w->k)};
    memcpy(push + 4, extra, n_extra * sizeof *extra);
    vkb_binding b[VKB_MAX_BINDINGS];
    memcpy(b + 1, io, n_io * sizeof *io);
    for (uint32_t i = 0, parts = matrix_parts(w); i < parts; i++) {
        struct matrix_part part = {0};
        vkb_status st = matrix_part(dev, op, w, i, &part);
        if (st != VKB_OK)
            return st;
        push[2] = part.row0;
        push[3] = part.rows;
        b[0] = (vkb_binding){w->buffer, part.offset, part.bytes};
        uint64_t elems[3] = {x_elems ? x_elems : part.rows, y_elems, 1};
        if ((st = vkb_stream_dispatch(s, p, b, 1 + n_io, push, (4 + n_extra) * sizeof *push, elems,
                                      op)))
            return st;
    }
    return VKB_OK;
}

/* ---- the ops ---- */

/* One output: all of W's rows. */
static vkb_outputs one_output(const vkb_matrix *w, const vkb_buffer *y)
{
    return (vkb_outputs){1, {y}, {w->rows}};
}

/* A weight product's arguments: W; x, n columns (1 to max_cols: 8 for matvec) of k floats
 * or, with q8, their 8-bit blocks (q8_format's weights); the outputs (n columns of their rows
 * each), which must cover W's rows. Sets the bindings after W: x, then the three outputs
 * (the first repeated where there are fewer), and the push constants' {rows_all, split1,
 * split2}. */
static vkb_status check_product(vkb_device *dev, const char *op, const vkb_matrix *w,
                                const vkb_buffer *x, bool q8, const vkb_outputs *out, uint32_t n,
                                uint32_t max_cols, vkb_binding io[4], uint32_t out_push[3])
{
    vkb_status st;
    if ((st = check_matrix(dev, op, w)) != VKB_OK)
        return st;
    bool matmul = max_cols > 8;
    if (q8 && !q8_format(w->type, matmul))
        return vkb_dev_fail(dev, VKB_ERR_UNSUPPORTED, "%s: reads %s weights, not %s", op,
                            q8_format_names(matmul), format_name(w->type));
    if (n == 0)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT, "%s: 0 columns", op);
    if (n > max_cols)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "%s: %u columns (1 to %u; use matmul for more)", op, n, max_cols);
    if ((uint64_t)n * w->k > UINT32_MAX || (uint64_t)n * w->rows > UINT32_MAX)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "%s: %u columns of %u x %u is more than 2^32 values", op, n, w->rows,
                            w->k);
    if (!out || out->count < 1 || out->count > VKB_MAX_OUTPUTS)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT, "%s: %u outputs (1 to %d)", op,
                            out ? out->count : 0, VKB_MAX_OUTPUTS);
    uint64_t x_bytes = q8 ? vkb_q8_bytes(w->k, n) : (uint64_t)n * w->k * 4;
    if ((st = vkb_op_need_single_part(dev, op, "x", x, x_bytes)) != VKB_OK)
        return st;
    io[0] = (vkb_binding){x, 0, x_bytes};
    uint64_t sum = 0;
    out_push[0] = out_push[1] = out_push[2] = w->rows;
    for (uint32_t i = 0; i < out->count; i++) {
        uint64_t bytes = (uint64_t)n * out->rows[i] * 4;
        if (out->rows[i] == 0)
            return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT, "%s: output %u takes 0 rows", op, i);
        if ((st = vkb_op_need_single_part(dev, op, "out", out->y[i], bytes)) != VKB_OK)
            return st;
        if (i > 0)
            out_push[i] = (uint32_t)sum;
        sum += out->rows[i];
        io[1 + i] = (vkb_binding){out->y[i], 0, bytes};
    }
    if (sum != w->rows)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "%s: the outputs take %llu rows; the matrix has %u", op,
                            (unsigned long long)sum, w->rows);
    for (uint32_t i = out->count; i < VKB_MAX_OUTPUTS; i++)
        io[1 + i] = io[1];
    return VKB_OK;
}

/* The norm a product reads its input through (vkb_op_matvec_norm_split). */
struct norm_in {
    const vkb_buffer *g;
    float eps;
};

/* The plan with rows per workgroup (lanes: per invocation) a multiple of `group`, staging
 * dropped where the stage no longer fits. GLU: 2, a gate row and its up row for each
 * output; ROPE: 4, quads of rows holding two rotated pairs (the lanes kernel's VKB_LANE_ROWS). */
static void group_plan(const vkb_device *dev, vkb_matvec_tuning *p, uint32_t ncols, uint32_t group)
{
    if (p->lanes) {
        uint32_t per = p->rows / p->wg;
        p->rows = p->wg * ((per + group - 1) / group * group);
        return;
    }
    p->rows = p->rows < group ? group : p->rows / group * group;
    if (p->staged &&
        vkb_matvec_shared_bytes(p->wg, p->rows, ncols, true) > dev->info.max_shared_memory)
        p->staged = false;
}

/* ROPE: bindings 2 to 4 and 6 to 8 of the fused prologue (q, the caches, the positions,
 * frequencies and biases) and its push constants {head_dim, rot_dims, neox, cache_row0,
 * bias}, after checking that W is q, k and v stacked in one part for ncols tokens. */
static vkb_status check_rope_write(vkb_device *dev, const char *op, const vkb_matrix *w,
                                   const vkb_buffer *q, const vkb_kv_write *kv, uint32_t ncols,
                                   vkb_binding io[8], uint32_t push[5])
{
    const vkb_rope_shape *sh = &kv->shape;
    if (sh->head_dim == 0 || sh->head_dim % 4 || sh->rot_dims == 0 || sh->rot_dims % 2 ||
        sh->rot_dims > sh->head_dim || (sh->neox && sh->rot_dims % 4) || sh->heads == 0 ||
        kv->kv_heads == 0 || kv->kv_heads > sh->heads || sh->tokens != ncols)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "%s: head_dim %u (a multiple of 4), rot_dims %u (even, a multiple of 4 "
                            "in neox order, 0 < rot_dims <= head_dim), %u heads, %u kv heads (1 "
                            "to heads), %u tokens (the product's %u columns)",
                            op, sh->head_dim, sh->rot_dims, sh->heads, kv->kv_heads, sh->tokens,
                            ncols);
    uint64_t qw = (uint64_t)sh->heads * sh->head_dim, kvw = (uint64_t)kv->kv_heads * sh->head_dim;
    if (qw + 2 * kvw != w->rows)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "%s: W's %u rows are not q's %llu, k's and v's %llu stacked", op,
                            w->rows, (unsigned long long)qw, (unsigned long long)kvw);
    if (matrix_parts(w) != 1)
        return vkb_dev_fail(dev, VKB_ERR_UNSUPPORTED,
                            "%s: W is bound in %u parts; a workgroup writes whole heads' pairs "
                            "from one (run the split product and vkb_op_rope_store_f16)",
                            op, matrix_parts(w));
    /* rows at pos: the caches bound whole (where the positions point is the caller's) */
    bool at_pos = kv->row0 == VKB_AT_POS;
    uint64_t cache_bytes = ((kv->row0 + (uint64_t)ncols) * kvw + 1) / 2 * 4;
    if (at_pos)
        cache_bytes = vkb_op_caches_bytes(kv->k_cache, kv->v_cache);
    vkb_status st;
    if (cache_bytes > UINT32_MAX * 2ull || cache_bytes < (ncols * kvw + 1) / 2 * 4)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "%s: caches of %llu bytes for rows of %llu values from %s %u (below "
                            "2^32 values, %u rows at least)",
                            op, (unsigned long long)cache_bytes, (unsigned long long)kvw,
                            at_pos ? "positions" : "row", at_pos ? 0 : kv->row0, ncols);
    struct {
        const char *what;
        const vkb_buffer *b;
        uint64_t bytes;
        uint32_t slot;
        bool optional; /* NULL: x stays bound there */
    } bind[] = {{"q", q, ncols * qw * 4, 1, false},
                {"k_cache", kv->k_cache, cache_bytes, 2, false},
                {"v_cache", kv->v_cache, cache_bytes, 3, false},
                {"pos", kv->pos, (uint64_t)ncols * 4, 5, false},
                {"freqs", kv->freqs, (uint64_t)sh->rot_dims / 2 * 4, 6, false},
                {"bias", kv->bias, (uint64_t)w->rows * 4, 7, true}};
    for (size_t i = 0; i < sizeof bind / sizeof *bind; i++) {
        if (!bind[i].b && bind[i].optional)
            continue;
        if ((st = vkb_op_need_single_part(dev, op, bind[i].what, bind[i].b, bind[i].bytes)))
            return st;
        io[bind[i].slot] = (vkb_binding){bind[i].b, 0, bind[i].bytes};
    }
    push[0] = sh->head_dim;
    push[1] = sh->rot_dims;
    push[2] = sh->neox;
    push[3] = kv->row0;
    push[4] = kv->bias != NULL;
    return VKB_OK;
}

/* The decode product, one dispatch per part of w: x as floats, or (q8) as 8-bit blocks
 * for the integer-dot kernel; accumulate: out += W·x; norm: x through rms_norm first; glu
 * (not NULL): W is gate and up stacked and out one output of half its rows, act(gate·x) ·
 * (up·x) with *glu's activation;
 * rope: W is q, k and v stacked, out q's output alone, and k and v go to the caches. */
static vkb_status matvec(vkb_stream *s, const vkb_matrix *w, const vkb_buffer *x, bool q8,
                         const vkb_outputs *out, uint32_t ncols, bool accumulate,
                         const struct norm_in *norm, const vkb_act *glu, const vkb_kv_write *rope)
{
    vkb_device *dev = vkb_stream_device(s);
    const char *op = rope   ? "matvec_rope"
                     : glu  ? "matvec_glu"
                     : norm ? "matvec_norm"
                     : q8   ? "matvec_q8"
                            : "matvec";
    vkb_binding io[8];
    uint32_t rope_push[5] = {0};
    uint32_t out_push[3];
    vkb_status st;
    vkb_outputs halves = {2, {out->y[0], out->y[0]}, {w->rows / 2, w->rows / 2}};
    if (glu && (w->rows % 2 || out->count != 1 || out->rows[0] != w->rows / 2))
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "%s: W's %u rows are not gate and up rows stacked for an output of "
                            "%u rows",
                            op, w->rows, out->rows[0]);
    if (glu && matrix_parts(w) != 1)
        return vkb_dev_fail(dev, VKB_ERR_UNSUPPORTED,
                            "%s: W is bound in %u parts; a workgroup needs a gate row and its up "
                            "row in one (run the split product and silu_mul)",
                            op, matrix_parts(w));
    /* ROPE: q's rows, then k's and v's; their outputs are the caches (bound below) */
    vkb_outputs qkv = {1, {out->y[0]}, {w->rows}};
    if (rope) {
        uint32_t kvw = rope->kv_heads * rope->shape.head_dim;
        qkv = (vkb_outputs){3, {out->y[0], out->y[0], out->y[0]}, {w->rows - 2 * kvw, kvw, kvw}};
        if (kvw == 0 || 2ull * kvw >= w->rows)
            return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                                "%s: %u kv heads of %u values do not leave q rows in W's %u", op,
                                rope->kv_heads, rope->shape.head_dim, w->rows);
    }
    if ((st = check_product(dev, op, w, x, q8,
                            glu    ? &halves
                            : rope ? &qkv
                                   : out,
                            ncols, 8, io, out_push)) != VKB_OK)
        return st;
    if (glu) { /* one output of rows / 2 (store_output's rows) */
        out_push[0] = out_push[1] = out_push[2] = w->rows / 2;
        io[2] = io[3] = io[1];
    }
    /* matvec.comp's bindings 5 (without NORM), 6 to 8 (without ROPE): read, never used */
    io[4] = io[5] = io[6] = io[7] = io[0];
    if (rope && (st = check_rope_write(dev, op, w, out->y[0], rope, ncols, io, rope_push)))
        return st;
    if (norm) {
        if (!(norm->eps >= 0.0f))
            return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT, "%s: eps %g is negative", op,
                                norm->eps);
        if ((st = vkb_op_need_single_part(dev, op, "g", norm->g, (uint64_t)w->k * 4)) != VKB_OK)
            return st;
        io[4] = (vkb_binding){norm->g, 0, (uint64_t)w->k * 4};
    }
    vkb_matvec_tuning plan = vkb_op_matvec_plan(dev, w->type, ncols);
    if (glu)
        group_plan(dev, &plan, ncols, 2);
    if (rope)
        group_plan(dev, &plan, ncols, 4);
    const char *name =
        q8 ? int_dot_variant("matvec", w->type) : matvec_variant(dev, w->type, &plan);
    vkb_spec spec = {.count = 8,
                     .values = {plan.wg, plan.rows, ncols, accumulate,
                                rope  ? 3
                                : glu ? 1
                                      : out->count,
                                norm != NULL, glu ? 1u + *glu : 0u, rope != NULL}};
    vkb_pipeline *p;
    if ((st = vkb_pipeline_get(dev, name, &spec, &p)) != VKB_OK)
        return st;
    /* x_stride (floats; unused for blocks), rows_all, split1, split2, eps, then ROPE's */
    float eps = norm ? norm->eps : 0.0f;
    uint32_t extra[10] = {w->k, out_push[0], out_push[1], out_push[2]};
    memcpy(&extra[4], &eps, 4);
    memcpy(&extra[5], rope_push, sizeof rope_push);
    return dispatch_parts(s, "matvec", w, p, io, 8, extra, 10, 0, 1);
}

vkb_status vkb_op_matvec(vkb_stream *s, const vkb_matrix *w, const vkb_buffer *x,
                         const vkb_buffer *y, uint32_t ncols)
{
    vkb_outputs out = one_output(w, y);
    return matvec(s, w, x, false, &out, ncols, false, NULL, NULL, NULL);
}

vkb_status vkb_op_matvec_add(vkb_stream *s, const vkb_matrix *w, const vkb_buffer *x,
                             const vkb_buffer *y, uint32_t ncols)
{
    vkb_outputs out = one_output(w, y);
    return matvec(s, w, x, false, &out, ncols, true, NULL, NULL, NULL);
}

vkb_status vkb_op_matvec_split(vkb_stream *s, const vkb_matrix *w, const vkb_buffer *x,
                               const vkb_outputs *out, uint32_t ncols)
{
    return matvec(s, w, x, false, out, ncols, false, NULL, NULL, NULL);
}

vkb_status vkb_op_matvec_norm_split(vkb_stream *s, const vkb_matrix *w, const vkb_buffer *x,
                                    const vkb_buffer *g, float eps, const vkb_outputs *out,
                                    uint32_t ncols)
{
    struct norm_in norm = {g, eps};
    return matvec(s, w, x, false, out, ncols, false, &norm, NULL, NULL);
}

vkb_status vkb_op_matvec_glu(vkb_stream *s, vkb_act act, const vkb_matrix *w, const vkb_buffer *x,
                             const vkb_buffer *g, float eps, const vkb_buffer *h, uint32_t ncols)
{
    struct norm_in norm = {g, eps};
    vkb_outputs out = {1, {h}, {w->rows / 2}};
    vkb_status st = vkb_op_check_act(vkb_stream_device(s), "matvec_glu", act);
    return st ? st : matvec(s, w, x, false, &out, ncols, false, g ? &norm : NULL, &act, NULL);
}

vkb_status vkb_op_matvec_q8_glu(vkb_stream *s, vkb_act act, const vkb_matrix *w,
                                const vkb_buffer *xq, const vkb_buffer *h, uint32_t ncols)
{
    vkb_outputs out = {1, {h}, {w->rows / 2}};
    vkb_status st = vkb_op_check_act(vkb_stream_device(s), "matvec_q8_glu", act);
    return st ? st : matvec(s, w, xq, true, &out, ncols, false, NULL, &act, NULL);
}

vkb_status vkb_op_matvec_rope(vkb_stream *s, const vkb_matrix *w, const vkb_buffer *x,
                              const vkb_buffer *g, float eps, const vkb_buffer *q,
                              const vkb_kv_write *kv, uint32_t ncols)
{
    struct norm_in norm = {g, eps};
    vkb_outputs out = {1, {q}, {0}};
    if (!kv)
        return vkb_dev_fail(vkb_stream_device(s), VKB_ERR_INVALID_ARGUMENT,
                            "matvec_rope: no caches to write");
    return matvec(s, w, x, false, &out, ncols, false, g ? &norm : NULL, false, kv);
}

vkb_status vkb_op_matvec_q8_rope(vkb_stream *s, const vkb_matrix *w, const vkb_buffer *xq,
                                 const vkb_buffer *q, const vkb_kv_write *kv, uint32_t ncols)
{
    vkb_outputs out = {1, {q}, {0}};
    if (!kv)
        return vkb_dev_fail(vkb_stream_device(s), VKB_ERR_INVALID_ARGUMENT,
                            "matvec_q8_rope: no caches to write");
    return matvec(s, w, xq, true, &out, ncols, false, NULL, false, kv);
}

vkb_status vkb_op_matvec_q8(vkb_stream *s, const vkb_matrix *w, const vkb_buffer *xq,
                            const vkb_buffer *y, uint32_t ncols)
{
    vkb_outputs out = one_output(w, y);
    return matvec(s, w, xq, true, &out, ncols, false, NULL, NULL, NULL);
}

vkb_status vkb_op_matvec_q8_add(vkb_stream *s, const vkb_matrix *w, const vkb_buffer *xq,
                                const vkb_buffer *y, uint32_t ncols)
{
    vkb_outputs out = one_output(w, y);
    return matvec(s, w, xq, true, &out, ncols, true, NULL, NULL, NULL);
}

vkb_status vkb_op_matvec_q8_split(vkb_stream *s, const vkb_matrix *w, const vkb_buffer *xq,
                                  const vkb_outputs *out, uint32_t ncols)
{
    return matvec(s, w, xq, true, out, ncols, false, NULL, NULL, NULL);
}

/* The prefill product: f32 tiles, cooperative matrices where vkb_op_matmul_coopmat says
 * so, or (q8) x as 8-bit blocks for the integer-dot kernel, whose K goes two blocks (64
 * values) a step, as the float path's TK 64 or 32. */
static vkb_status matmul(vkb_stream *s, const vkb_matrix *w, const vkb_buffer *x, bool q8,
                         const vkb_outputs *out, uint32_t n)
{
    vkb_device *dev = vkb_stream_device(s);
    vkb_binding io[4];
    uint32_t out_push[3];
    vkb_status st;
    if ((st = check_product(dev, q8 ? "matmul_q8" : "matmul", w, x, q8, out, n, UINT32_MAX, io,
                            out_push)) != VKB_OK)
        return st;
    vkb_matmul_tuning plan = vkb_op_matmul_plan(dev);
    vkb_spec spec = {.count = 7,
                     .values = {vkb_matmul_tuning_wg(&plan), plan.tm, plan.tn, plan.tk, out->count,
                                plan.rm, plan.rn}};
    if (q8)
        spec = matmul_int_dot_spec(dev, out->count);
    const char *name = q8 ? int_dot_variant("matmul", w->type) : matmul_float_variant(w->type);
    const char *suffix;
    if (!q8 && vkb_coopmat_spec(dev, 4, &spec, &suffix)) {
        /* 64 x 64 tiles, K by 32; VKLLM_MATMUL's TM, TN (multiples of 32 up to 128) and TK
         * (a multiple of 16) where set */
        uint32_t tm = 64, tn = 64, tk = 32;
        const vkb_matmul_tuning *t = &dev->matmul_tuning;
        if (t->tm && t->tm % 32 == 0 && t->tn % 32 == 0 && t->tm <= 128 && t->tn <= 128 &&
            t->tk % 16 == 0 && t->tk <= 64)
            tm = t->tm, tn = t->tn, tk = t->tk;
        spec.count = 7;
        spec.values[1] = tm;
        spec.values[2] = tn;
        spec.values[3] = tk;
        spec.values[4] = out->count;
        spec.values[5] = tm / 32;
        spec.values[6] = tn / 32;
        name = matmul_coopmat_variant(dev, w->type);
    }
    vkb_pipeline *p;
    if ((st = vkb_pipeline_get(dev, name, &spec, &p)) != VKB_OK)
        return st;
    /* n, x_stride (floats; unused for blocks), rows_all, split1, split2 */
    uint32_t extra[5] = {n, w->k, out_push[0], out_push[1], out_push[2]};
    return dispatch_parts(s, "matmul", w, p, io, 4, extra, 5, 0, n);
}

vkb_status vkb_op_matmul_split(vkb_stream *s, const vkb_matrix *w, const vkb_buffer *x,
                               const vkb_outputs *out, uint32_t n)
{
    return matmul(s, w, x, false, out, n);
}

vkb_status vkb_op_matmul_q8_split(vkb_stream *s, const vkb_matrix *w, const vkb_buffer *xq,
                                  const vkb_outputs *out, uint32_t n)
{
    return matmul(s, w, xq, true, out, n);
}

vkb_status vkb_op_matmul(vkb_stream *s, const vkb_matrix *w, const vkb_buffer *x,
                         const vkb_buffer *out, uint32_t n)
{
    vkb_outputs outs = one_output(w, out);
    return matmul(s, w, x, false, &outs, n);
}

vkb_status vkb_op_get_rows(vkb_stream *s, const vkb_matrix *w, const vkb_buffer *ids,
                           uint32_t n_ids, const vkb_buffer *out)
{
    vkb_device *dev = vkb_stream_device(s);
    vkb_status st;
    if ((st = check_matrix(dev, "get_rows", w)) != VKB_OK)
        return st;
    if (n_ids == 0 || n_ids > dev->info.max_workgroup_count[1] ||
        (uint64_t)n_ids * w->k > UINT32_MAX)
        return vkb_dev_fail(dev, VKB_ERR_INVALID_ARGUMENT,
                            "get_rows: %u ids (1 to %u, ids x k below 2^32)", n_ids,
                            dev->info.max_workgroup_count[1]);
    uint64_t out_bytes = (uint64_t)n_ids * w->k * 4;
    if ((st = vkb_op_need_single_part(dev, "get_rows", "ids", ids, (uint64_t)n_ids * 4)) !=
            VKB_OK ||
        (st = vkb_op_need_single_part(dev, "get_rows", "out", out, out_bytes)) != VKB_OK)
        return st;
    vkb_spec spec = {.count = 1, .values = {vkb_op_wg_size(dev, 64, 8) / 8 * 8}};
    char name[40];
    snprintf(name, sizeof name, "get_rows_%s", format_name(w->type));
    vkb_pipeline *p;
    if ((st = vkb_pipeline_get(dev, name, &spec, &p)) != VKB_OK)
        return st;
    vkb_binding io[2] = {{ids, 0, (uint64_t)n_ids * 4}, {out, 0, out_bytes}};
    uint32_t extra[1] = {w->k}; /* out_stride */
    return dispatch_parts(s, "get_rows", w, p, io, 2, extra, 1, w->k / 8, n_ids);
}
