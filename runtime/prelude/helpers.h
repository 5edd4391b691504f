
typedef {real} real;

SYMRNN_INLINE real symrnn_sigmoid(real x) {{ return (real)1 / ((real)1 + {sigmoid_exp}(-x)); }}
SYMRNN_INLINE real symrnn_tanh(real x) {{ return {activation_tanh}(x); }}
/* `x < 0 ? 0 : x` (not `x > 0 ? x : 0`) lets NaN through, as np.maximum does. */
SYMRNN_INLINE real symrnn_relu(real x) {{ return x < (real)0 ? (real)0 : x; }}
SYMRNN_INLINE real symrnn_exp(real x) {{ return {exp}(x); }}
SYMRNN_INLINE real symrnn_log(real x) {{ return {log}(x); }}

/* Inverted dropout's factor: 0 where the draw `bits` is below the threshold, else scale; 1 at
   inference. `train` is a literal 0 or 1: each mode has its own copy of the loops. */
SYMRNN_INLINE real symrnn_dropout(int train, uint32_t bits, uint32_t threshold, real scale)
{{
    return train ? (bits < threshold ? (real)0 : scale) : (real)1;
}}

/* Zoneout: keep `prev` where the draw is below the threshold (never when p == 0, so the
   result is `next` exactly); at inference the expectation p * prev + (1 - p) * next. */
SYMRNN_INLINE real symrnn_zoneout(int train, uint32_t bits, uint32_t threshold, real p,
                                  real prev, real next)
{{
    return train ? (bits < threshold ? prev : next) : p * prev + ((real)1 - p) * next;
}}
