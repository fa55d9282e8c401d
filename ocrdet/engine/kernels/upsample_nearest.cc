// Nearest-neighbour upsampling of NCHW float32 planes by an integer factor F, and its gradient, for the CPU.
// The FPN necks upsample each level to stride 4; Paddle 3.3.1 runs that on the CPU as a depthwise transposed conv
// (or interpolate), several times the memory traffic of the copy it is. Forward: every output pixel is its source
// pixel (exact). Backward: every input gradient is the sum of its F x F output block, summed row by row.
#include "paddle/extension.h"

#include <type_traits>
#include <vector>

namespace {

// `factor` is an int or a std::integral_constant: with a constant (the necks' 2, 4, 8) the block loops unroll.
template <class Factor>
void upsample_plane(const float* __restrict x, float* __restrict y, int H, int W, Factor factor) {
  const int F = factor;
  const long OW = static_cast<long>(W) * F;
  for (int h = 0; h < H; ++h) {
    const float* xr = x + static_cast<long>(h) * W;
    float* y0 = y + static_cast<long>(h) * F * OW;
    for (int w = 0; w < W; ++w) {
      const float v = xr[w];
      for (int b = 0; b < F; ++b) y0[w * F + b] = v;
    }
    for (int a = 1; a < F; ++a) {  // the block's other rows repeat the first
      float* ya = y0 + a * OW;
      for (long k = 0; k < OW; ++k) ya[k] = y0[k];
    }
  }
}

template <class Factor>
void upsample_grad_plane(const float* __restrict g, float* __restrict dx, int H, int W, Factor factor) {
  const int F = factor;
  const long OW = static_cast<long>(W) * F;
  for (int h = 0; h < H; ++h) {
    float* dr = dx + static_cast<long>(h) * W;
    const float* g0 = g + static_cast<long>(h) * F * OW;
    for (int w = 0; w < W; ++w) {
      float s = 0.f;
      for (int a = 0; a < F; ++a)
        for (int b = 0; b < F; ++b) s += g0[a * OW + w * F + b];
      dr[w] = s;
    }
  }
}

// fn(p, factor) for every plane p on the math threads (static schedule: see depthwise_conv.cc), with the factor as
// a compile-time constant where it is one of the necks'.
template <class Fn>
void for_each_plane(long planes, int factor, Fn&& fn) {
#pragma omp parallel for schedule(static)
  for (long p = 0; p < planes; ++p) {
    switch (factor) {
      case 2: fn(p, std::integral_constant<int, 2>()); break;
      case 4: fn(p, std::integral_constant<int, 4>()); break;
      case 8: fn(p, std::integral_constant<int, 8>()); break;
      default: fn(p, factor);
    }
  }
}

void check(const paddle::Tensor& t, int factor) {
  PD_CHECK(t.is_cpu() && t.dtype() == paddle::DataType::FLOAT32, "ocrdet_upsample_nearest takes CPU float32");
  PD_CHECK(t.shape().size() == 4, "ocrdet_upsample_nearest takes NCHW tensors");
  PD_CHECK(factor >= 1, "ocrdet_upsample_nearest: factor must be >= 1, got ", factor);
}

}  // namespace

std::vector<paddle::Tensor> UpsampleNearestForward(const paddle::Tensor& x, int factor) {
  check(x, factor);
  const auto& d = x.shape();
  const int H = d[2], W = d[3];
  auto y = paddle::empty({d[0], d[1], d[2] * factor, d[3] * factor}, paddle::DataType::FLOAT32, paddle::CPUPlace());
  const long in = static_cast<long>(H) * W, out = in * factor * factor;
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  for_each_plane(d[0] * d[1], factor, [&](long p, auto f) { upsample_plane(xp + p * in, yp + p * out, H, W, f); });
  return {y};
}

// Only the output gradient is kept for the backward (the input's shape follows from it).
std::vector<paddle::Tensor> UpsampleNearestBackward(const paddle::Tensor& dy, int factor) {
  check(dy, factor);
  const auto& g = dy.shape();
  PD_CHECK(g[2] % factor == 0 && g[3] % factor == 0, "ocrdet_upsample_nearest: gradient shape");
  const int H = g[2] / factor, W = g[3] / factor;
  auto dx = paddle::empty({g[0], g[1], H, W}, paddle::DataType::FLOAT32, paddle::CPUPlace());
  const long in = static_cast<long>(H) * W, out = in * factor * factor;
  const float* gp = dy.data<float>();
  float* dp = dx.data<float>();
  for_each_plane(g[0] * g[1], factor, [&](long p, auto f) { upsample_grad_plane(gp + p * out, dp + p * in, H, W, f); });
  return {dx};
}

std::vector<std::vector<int64_t>> UpsampleNearestShape(const std::vector<int64_t>& x, int factor) {
  return {{x[0], x[1], x[2] * factor, x[3] * factor}};
}

std::vector<paddle::DataType> UpsampleNearestDtype(const paddle::DataType& x) { return {x}; }

PD_BUILD_OP(ocrdet_upsample_nearest)
    .Inputs({"X"})
    .Outputs({"Out"})
    .Attrs({"factor: int"})
    .SetKernelFn(PD_KERNEL(UpsampleNearestForward))
    .SetInferShapeFn(PD_INFER_SHAPE(UpsampleNearestShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(UpsampleNearestDtype));

PD_BUILD_GRAD_OP(ocrdet_upsample_nearest)
    .Inputs({paddle::Grad("Out")})
    .Outputs({paddle::Grad("X")})
    .Attrs({"factor: int"})
    .SetKernelFn(PD_KERNEL(UpsampleNearestBackward));
