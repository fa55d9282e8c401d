// Depthwise 2-D convolution (NCHW, float32, square odd kernel K, padding K/2, stride 1 or 2, no dilation) for the
// CPU: forward, input gradient and weight gradient as direct loops over each channel's plane. Paddle 3.3.1 runs
// depthwise convs on the CPU as an im2col + GEMM per channel (GEMMs of one row), 2-3x slower than these loops.
// K and S are template parameters so that the compiler vectorises the row loops; one OpenMP team (Paddle's own
// runtime, libiomp5, linked by the loader) spreads the planes over the math threads.
#include "paddle/extension.h"

#include <omp.h>

#include <cstring>
#include <vector>

namespace {

// Output columns ow whose input column ow*S - P + j lies inside [0, W).
template <int K, int S>
inline void valid_cols(int j, int W, int OW, int* lo, int* hi) {
  constexpr int P = K / 2;
  *lo = P - j > 0 ? (P - j + S - 1) / S : 0;
  const int last = W - 1 + P - j;  // ow*S <= last; negative (a plane narrower than the tap's offset): no column
  const int h = last < 0 ? -1 : last / S;
  *hi = h < OW - 1 ? h : OW - 1;
}

// A plane as the taps read it. Stride 1: the plane itself; tap j reads row[ow + j - P]. Stride 2: its even and odd
// columns split into two planes, so that tap j reads a contiguous run (row[ow + offset] of the half that holds
// column 2*ow + j - P) and the row loops vectorise; strided loads and stores ran 3-5x slower.
inline void split_columns(const float* src, float* even, float* odd, int H, int W) {
  const int we = (W + 1) / 2, wo = W / 2;
  for (int r = 0; r < H; ++r) {
    const float* s = src + static_cast<long>(r) * W;
    float* e = even + static_cast<long>(r) * we;
    float* o = odd + static_cast<long>(r) * wo;
    for (int k = 0; k < wo; ++k) {
      e[k] = s[2 * k];
      o[k] = s[2 * k + 1];
    }
    if (we > wo) e[wo] = s[W - 1];
  }
}

inline void merge_columns(const float* even, const float* odd, float* dst, int H, int W) {
  const int we = (W + 1) / 2, wo = W / 2;
  for (int r = 0; r < H; ++r) {
    float* d = dst + static_cast<long>(r) * W;
    const float* e = even + static_cast<long>(r) * we;
    const float* o = odd + static_cast<long>(r) * wo;
    for (int k = 0; k < wo; ++k) {
      d[2 * k] = e[k];
      d[2 * k + 1] = o[k];
    }
    if (we > wo) d[W - 1] = e[wo];
  }
}

// Where tap j (offset d = j - P) of input row ih starts for output column 0: (base pointer, its row width, offset).
template <int K, int S>
inline const float* tap_row(const float* x, const float* even, const float* odd, int ih, int j, int W, int* off) {
  constexpr int P = K / 2;
  const int d = j - P;
  if constexpr (S == 1) {
    *off = d;
    return x + static_cast<long>(ih) * W;
  } else {
    const int we = (W + 1) / 2, wo = W / 2;
    if (d % 2 == 0) {  // column 2*ow + d is even: even[ow + d/2]
      *off = d / 2;
      return even + static_cast<long>(ih) * we;
    }
    *off = (d - 1) / 2;  // odd: odd[ow + (d-1)/2] (d - 1 is even, so the division is exact)
    return odd + static_cast<long>(ih) * wo;
  }
}

// Calls fn(i, j, ih, lo, hi) for each tap (i, j) of output row oh whose input row ih lies inside the plane, with the
// output columns [lo, hi] it reaches.
template <int K, int S, class Fn>
inline void for_each_tap(int oh, int H, int W, int OW, Fn&& fn) {
  constexpr int P = K / 2;
  for (int i = 0; i < K; ++i) {
    const int ih = oh * S - P + i;
    if (ih < 0 || ih >= H) continue;
    for (int j = 0; j < K; ++j) {
      int lo, hi;
      valid_cols<K, S>(j, W, OW, &lo, &hi);
      fn(i, j, ih, lo, hi);
    }
  }
}

// `scratch`: 2*H*W floats per thread for stride 2 (the split input and, in the backward, the split input gradient).
template <int K, int S>
void forward_plane(const float* x, const float* w, float* y, float* scratch, int H, int W, int OH, int OW) {
  constexpr int P = K / 2;
  float* even = scratch;
  float* odd = scratch + static_cast<long>(H) * ((W + 1) / 2);
  if constexpr (S == 2) split_columns(x, even, odd, H, W);
  std::memset(y, 0, sizeof(float) * OH * OW);
  for (int oh = 0; oh < OH; ++oh) {
    float* __restrict yr = y + static_cast<long>(oh) * OW;
    for_each_tap<K, S>(oh, H, W, OW, [&](int i, int j, int ih, int lo, int hi) {
      const float wv = w[i * K + j];
      int off;
      const float* __restrict xs = tap_row<K, S>(x, even, odd, ih, j, W, &off) + off;
      for (int ow = lo; ow <= hi; ++ow) yr[ow] += wv * xs[ow];
    });
  }
}

// dx of one plane (overwritten) and this plane's contribution added to dw[K*K].
template <int K, int S>
void backward_plane(const float* x, const float* w, const float* g, float* dx, float* dw, float* scratch, int H,
                    int W, int OH, int OW) {
  constexpr int P = K / 2;
  const long half = static_cast<long>(H) * ((W + 1) / 2);
  float* even = scratch;          // split input (stride 2)
  float* odd = scratch + half;
  float* deven = scratch + 2 * half;  // split input gradient (stride 2)
  float* dodd = scratch + 3 * half;
  float* gx = dx;
  if constexpr (S == 2) {
    split_columns(x, even, odd, H, W);
    std::memset(deven, 0, sizeof(float) * 2 * half);
  } else {
    std::memset(dx, 0, sizeof(float) * H * W);
  }
  for (int oh = 0; oh < OH; ++oh) {
    const float* gr = g + static_cast<long>(oh) * OW;
    for_each_tap<K, S>(oh, H, W, OW, [&](int i, int j, int ih, int lo, int hi) {
      const float wv = w[i * K + j];
      int off;
      const float* xs = tap_row<K, S>(x, even, odd, ih, j, W, &off) + off;
      // not restrict: the unrolled taps write overlapping runs of the same row
      float* ds = const_cast<float*>(tap_row<K, S>(gx, deven, dodd, ih, j, W, &off)) + off;
      for (int ow = lo; ow <= hi; ++ow) ds[ow] += wv * gr[ow];
      float sum = 0.f;
#pragma omp simd reduction(+ : sum)  // vectorised in float32 lanes: summation order differs from Paddle's GEMM
      for (int ow = lo; ow <= hi; ++ow) sum += gr[ow] * xs[ow];
      dw[i * K + j] += sum;
    });
  }
  if constexpr (S == 2) merge_columns(deven, dodd, dx, H, W);
}

struct Geometry {
  int N, C, H, W, K, S, OH, OW;
};

Geometry geometry(const paddle::Tensor& x, const paddle::Tensor& w, int stride) {
  PD_CHECK(x.is_cpu() && w.is_cpu(), "ocrdet_depthwise_conv runs on the CPU only");
  PD_CHECK(x.dtype() == paddle::DataType::FLOAT32 && w.dtype() == paddle::DataType::FLOAT32,
           "ocrdet_depthwise_conv takes float32 tensors");
  PD_CHECK(x.shape().size() == 4 && w.shape().size() == 4, "ocrdet_depthwise_conv takes NCHW input, Cx1xKxK weight");
  Geometry s;
  s.N = x.shape()[0], s.C = x.shape()[1], s.H = x.shape()[2], s.W = x.shape()[3];
  s.K = w.shape()[2], s.S = stride;
  PD_CHECK(w.shape()[0] == s.C && w.shape()[1] == 1 && w.shape()[3] == s.K, "depthwise weight must be [C, 1, K, K]");
  s.OH = (s.H + 2 * (s.K / 2) - s.K) / s.S + 1;
  s.OW = (s.W + 2 * (s.K / 2) - s.K) / s.S + 1;
  return s;
}

// Scratch floats per thread: the split planes of stride 2 (input, and input gradient in the backward).
template <int S>
long scratch_size(const Geometry& s, int planes) {
  return S == 2 ? planes * static_cast<long>(s.H) * ((s.W + 1) / 2) : 0;
}

template <int K, int S>
void run_forward(const Geometry& s, const float* x, const float* w, float* y) {
  const long planes = static_cast<long>(s.N) * s.C;
#pragma omp parallel
  {
    std::vector<float> scratch(scratch_size<S>(s, 2));
#pragma omp for schedule(static)
    for (long p = 0; p < planes; ++p) {
      forward_plane<K, S>(x + p * s.H * s.W, w + (p % s.C) * K * K, y + p * s.OH * s.OW, scratch.data(), s.H, s.W,
                          s.OH, s.OW);
    }
  }
}

template <int K, int S>
void run_backward(const Geometry& s, const float* x, const float* w, const float* g, float* dx, float* dw) {
  // One channel per iteration: its weight gradient sums over the batch without sharing between threads. Static
  // schedules only: GCC compiles them without calls into the OpenMP runtime's loop API, which the libiomp5 that
  // Paddle loads does not fully provide for GCC (a dynamic schedule ran every iteration on every thread).
#pragma omp parallel
  {
    std::vector<float> scratch(scratch_size<S>(s, 4));
#pragma omp for schedule(static)
    for (int c = 0; c < s.C; ++c) {
      float acc[K * K] = {0.f};
      for (int n = 0; n < s.N; ++n) {
        const long p = static_cast<long>(n) * s.C + c;
        backward_plane<K, S>(x + p * s.H * s.W, w + static_cast<long>(c) * K * K, g + p * s.OH * s.OW,
                             dx + p * s.H * s.W, acc, scratch.data(), s.H, s.W, s.OH, s.OW);
      }
      std::memcpy(dw + static_cast<long>(c) * K * K, acc, sizeof(acc));
    }
  }
}

#define OCRDET_DISPATCH(FN, ...)                                                          \
  switch (s.K * 10 + s.S) {                                                               \
    case 31: FN<3, 1>(__VA_ARGS__); break;                                                \
    case 32: FN<3, 2>(__VA_ARGS__); break;                                                \
    case 51: FN<5, 1>(__VA_ARGS__); break;                                                \
    case 52: FN<5, 2>(__VA_ARGS__); break;                                                \
    case 71: FN<7, 1>(__VA_ARGS__); break;                                                \
    case 72: FN<7, 2>(__VA_ARGS__); break;                                                \
    case 91: FN<9, 1>(__VA_ARGS__); break;                                                \
    case 92: FN<9, 2>(__VA_ARGS__); break;                                                \
    default: PD_THROW("ocrdet_depthwise_conv: kernel 3/5/7/9 and stride 1/2 only, got ", s.K, "/", s.S); \
  }

}  // namespace

std::vector<paddle::Tensor> DepthwiseConvForward(const paddle::Tensor& x, const paddle::Tensor& w, int stride) {
  const Geometry s = geometry(x, w, stride);
  auto y = paddle::empty({s.N, s.C, s.OH, s.OW}, paddle::DataType::FLOAT32, paddle::CPUPlace());
  OCRDET_DISPATCH(run_forward, s, x.data<float>(), w.data<float>(), y.data<float>());
  return {y};
}

std::vector<paddle::Tensor> DepthwiseConvBackward(const paddle::Tensor& x, const paddle::Tensor& w,
                                                  const paddle::Tensor& dy, int stride) {
  const Geometry s = geometry(x, w, stride);
  PD_CHECK(dy.shape()[2] == s.OH && dy.shape()[3] == s.OW, "ocrdet_depthwise_conv: output gradient shape");
  auto dx = paddle::empty({s.N, s.C, s.H, s.W}, paddle::DataType::FLOAT32, paddle::CPUPlace());
  auto dw = paddle::empty({s.C, 1, s.K, s.K}, paddle::DataType::FLOAT32, paddle::CPUPlace());
  OCRDET_DISPATCH(run_backward, s, x.data<float>(), w.data<float>(), dy.data<float>(), dx.data<float>(),
                  dw.data<float>());
  return {dx, dw};
}

std::vector<std::vector<int64_t>> DepthwiseConvShape(const std::vector<int64_t>& x, const std::vector<int64_t>& w,
                                                     int stride) {
  const int64_t k = w[2], p = k / 2;
  return {{x[0], x[1], (x[2] + 2 * p - k) / stride + 1, (x[3] + 2 * p - k) / stride + 1}};
}

std::vector<paddle::DataType> DepthwiseConvDtype(const paddle::DataType& x, const paddle::DataType& w) { return {x}; }

PD_BUILD_OP(ocrdet_depthwise_conv)
    .Inputs({"X", "W"})
    .Outputs({"Out"})
    .Attrs({"stride: int"})
    .SetKernelFn(PD_KERNEL(DepthwiseConvForward))
    .SetInferShapeFn(PD_INFER_SHAPE(DepthwiseConvShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(DepthwiseConvDtype));

PD_BUILD_GRAD_OP(ocrdet_depthwise_conv)
    .Inputs({"X", "W", paddle::Grad("Out")})
    .Outputs({paddle::Grad("X"), paddle::Grad("W")})
    .Attrs({"stride: int"})
    .SetKernelFn(PD_KERNEL(DepthwiseConvBackward));
