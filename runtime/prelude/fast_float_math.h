
/* e^x for sigmoid and tanh: Cephes expf's reduction and polynomial, without branches. Below
   -87.3 it returns e^-87.3 and from 88.4 up +inf; NaN passes through (every comparison with it
   is false). */
SYMRNN_INLINE float symrnn_fast_expf(float x)
{
    x = x < -87.3f ? -87.3f : x;
    x = x > 89.0f ? 89.0f : x;
    const float k = __builtin_rintf(x * 0x1.715476p+0f); /* x / ln 2 */
    float r = __builtin_fmaf(k, -0.693359375f, x); /* x - k ln 2, ln 2 in two parts */
    r = __builtin_fmaf(k, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = __builtin_fmaf(p, r, 1.3981999507e-3f);
    p = __builtin_fmaf(p, r, 8.3334519073e-3f);
    p = __builtin_fmaf(p, r, 4.1665795894e-2f);
    p = __builtin_fmaf(p, r, 1.6666665459e-1f);
    p = __builtin_fmaf(p, r, 5.0000001201e-1f);
    p = __builtin_fmaf(p, r * r, r) + 1.0f;
    const int32_t bits = ((int32_t)k + 127) << 23; /* 2^k; k = 128 gives +inf */
    float scale;
    __builtin_memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* tanh: Cephes tanhf's odd polynomial below 0.625, 1 - 2 / (e^(2|x|) + 1) above. */
SYMRNN_INLINE float symrnn_fast_tanhf(float x)
{
    const float a = __builtin_fabsf(x), z = x * x;
    float p = -5.70498872745e-3f;
    p = __builtin_fmaf(p, z, 2.06390887954e-2f);
    p = __builtin_fmaf(p, z, -5.37397155531e-2f);
    p = __builtin_fmaf(p, z, 1.33314422036e-1f);
    p = __builtin_fmaf(p, z, -3.33332819422e-1f);
    const float small = __builtin_fmaf(p * z, x, x);
    const float e = symrnn_fast_expf(2.0f * a);
    const float large = __builtin_copysignf(1.0f - 2.0f / (e + 1.0f), x);
    return a < 0.625f ? small : large;
}
