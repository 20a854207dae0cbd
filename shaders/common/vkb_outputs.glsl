// The outputs of a weight product (matvec.comp, matmul.comp): W's rows in OUTS runs, one
// after the other, run i written to binding 2 + i as columns of its own rows. q, k and v
// (or gate and up) computed by one product over their rows stacked: one dispatch where
// there were three. With OUTS 1 only binding 2 is written (the backend binds it three times).
//
// The includer declares the specialization constants OUTS and ACC (add to the output
// instead of writing it).
#ifndef VKB_OUTPUTS_GLSL
#define VKB_OUTPUTS_GLSL

layout(std430, binding = 2) buffer Out0 { float out0[]; };
layout(std430, binding = 3) buffer Out1 { float out1[]; };
layout(std430, binding = 4) buffer Out2 { float out2[]; };

// Column c of W's row `row` (counted over all parts and runs): rows [0, split1) go to
// out0, [split1, split2) to out1, [split2, rows) to out2; each output's columns are as
// long as its run.
void store_output(uint c, uint row, float v, uint rows, uint split1, uint split2)
{
    if (OUTS > 2u && row >= split2) {
        const uint at = c * (rows - split2) + row - split2;
        out2[at] = ACC ? out2[at] + v : v;
    } else if (OUTS > 1u && row >= split1) {
        const uint end = OUTS > 2u ? split2 : rows;
        const uint at = c * (end - split1) + row - split1;
        out1[at] = ACC ? out1[at] + v : v;
    } else {
        const uint at = c * (OUTS > 1u ? split1 : rows) + row;
        out0[at] = ACC ? out0[at] + v : v;
    }
}

#endif
