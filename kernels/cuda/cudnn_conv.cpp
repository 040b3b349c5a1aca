// cuDNN's legacy convolution API (cudnnConvolutionForward / BackwardData /
// BackwardFilter) with one cached plan (descriptors, algorithms, workspace
// sizes) per geometry and GPU, one handle per GPU and workspaces from the
// caching allocator of core/cuda_runtime.
#include "kernels/cuda/cudnn_conv.h"

#include <cudnn.h>

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "core/cuda_runtime.h"
#include "core/error.h"

namespace gb::kernels::gpu {

namespace {

void check(cudnnStatus_t st, const char* what) {
    GB_CHECK(st == CUDNN_STATUS_SUCCESS, "cuDNN ", what, " failed: ", cudnnGetErrorString(st));
}

// One handle per GPU, created on first use and never destroyed (as the backends).
cudnnHandle_t handle(int device) {
    static std::mutex mutex;
    static auto& handles = *new std::vector<cudnnHandle_t>();
    std::lock_guard lock(mutex);
    if (handles.size() <= static_cast<size_t>(device)) handles.resize(static_cast<size_t>(device) + 1, nullptr);
    if (!handles[static_cast<size_t>(device)]) check(cudnnCreate(&handles[static_cast<size_t>(device)]), "cudnnCreate");
    return handles[static_cast<size_t>(device)];
}

// The descriptors of one convolution geometry.
struct Descriptors {
    cudnnTensorDescriptor_t x = nullptr, y = nullptr;
    cudnnFilterDescriptor_t w = nullptr;
    cudnnConvolutionDescriptor_t conv = nullptr;

    explicit Descriptors(const Conv2dGeom& g) {
        check(cudnnCreateTensorDescriptor(&x), "cudnnCreateTensorDescriptor");
        check(cudnnCreateTensorDescriptor(&y), "cudnnCreateTensorDescriptor");
        check(cudnnCreateFilterDescriptor(&w), "cudnnCreateFilterDescriptor");
        check(cudnnCreateConvolutionDescriptor(&conv), "cudnnCreateConvolutionDescriptor");
        auto i = [](int64_t v) { return static_cast<int>(v); };
        check(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, i(g.N), i(g.C), i(g.H), i(g.W)),
              "cudnnSetTensor4dDescriptor (x)");
        check(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, i(g.N), i(g.K), i(g.P), i(g.Q)),
              "cudnnSetTensor4dDescriptor (y)");
        check(cudnnSetFilter4dDescriptor(w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, i(g.K), i(g.C), i(g.R), i(g.S)),
              "cudnnSetFilter4dDescriptor");
        check(cudnnSetConvolution2dDescriptor(conv, i(g.pad_h), i(g.pad_w), i(g.stride_h), i(g.stride_w), i(g.dil_h),
                                              i(g.dil_w), CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
              "cudnnSetConvolution2dDescriptor");
        check(cudnnSetConvolutionMathType(conv, CUDNN_FMA_MATH), "cudnnSetConvolutionMathType");
    }
    ~Descriptors() {
        cudnnDestroyConvolutionDescriptor(conv);
        cudnnDestroyFilterDescriptor(w);
        cudnnDestroyTensorDescriptor(y);
        cudnnDestroyTensorDescriptor(x);
    }
    Descriptors(const Descriptors&) = delete;
    Descriptors& operator=(const Descriptors&) = delete;
};

struct Workspace {
    Workspace(size_t bytes, int device)
        : bytes(bytes), device(device), p(bytes ? cuda::malloc(bytes, device) : nullptr) {}
    ~Workspace() { cuda::free(p, device); }
    size_t bytes;
    int device;
    void* p;
};

// The heuristic's first algorithm that succeeded in its query.
template <typename Perf, typename Query>
auto first_algo(Query query, const char* what) {
    Perf perf[8];
    int count = 0;
    check(query(perf, 8, &count), what);
    for (int i = 0; i < count; ++i)
        if (perf[i].status == CUDNN_STATUS_SUCCESS) return perf[i].algo;
    GB_FAIL("cuDNN ", what, " offered no usable algorithm");
}

// One convolution geometry on one GPU: its descriptors and, per direction, the
// algorithm and workspace size, asked of cuDNN's heuristic once (that query
// costs milliseconds on cuDNN 9, longer than the convolutions of a small model,
// so asking per call made cuDNN the slowest path: docs/cuda.md).
struct Plan {
    explicit Plan(const Conv2dGeom& g) : d(g) {}
    Descriptors d;
    std::once_flag fwd_once, bwd_data_once, bwd_filter_once;
    cudnnConvolutionFwdAlgo_t fwd{};
    cudnnConvolutionBwdDataAlgo_t bwd_data{};
    cudnnConvolutionBwdFilterAlgo_t bwd_filter{};
    size_t fwd_bytes = 0, bwd_data_bytes = 0, bwd_filter_bytes = 0;
};

using PlanKey = std::array<int64_t, 16>;

// The plan of (device, geometry), made on first use and kept for the process
// (a model has a handful of geometries; plans are a few hundred bytes each).
Plan& plan_for(int device, const Conv2dGeom& g) {
    static std::mutex mutex;
    static auto& plans = *new std::map<PlanKey, std::unique_ptr<Plan>>();
    const PlanKey key{device, g.N, g.C, g.H, g.W, g.K, g.R, g.S, g.stride_h, g.stride_w, g.pad_h, g.pad_w,
                      g.dil_h, g.dil_w, g.P, g.Q};
    std::lock_guard lock(mutex);
    auto& slot = plans[key];
    if (!slot) slot = std::make_unique<Plan>(g);
    return *slot;
}

}  // namespace

void cudnn_conv2d_forward(int device, const Conv2dGeom& g, const float* x, const float* w, float* y) {
    if (g.y_numel() == 0) return;
    cudnnHandle_t h = handle(device);
    Plan& p = plan_for(device, g);
    const Descriptors& d = p.d;
    std::call_once(p.fwd_once, [&] {
        p.fwd = first_algo<cudnnConvolutionFwdAlgoPerf_t>(
            [&](auto* perf, int n, int* count) {
                return cudnnGetConvolutionForwardAlgorithm_v7(h, d.x, d.w, d.conv, d.y, n, count, perf);
            },
            "cudnnGetConvolutionForwardAlgorithm_v7");
        check(cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.conv, d.y, p.fwd, &p.fwd_bytes),
              "cudnnGetConvolutionForwardWorkspaceSize");
    });
    Workspace ws(p.fwd_bytes, device);
    const float one = 1.f, zero = 0.f;
    check(cudnnConvolutionForward(h, &one, d.x, x, d.w, w, d.conv, p.fwd, ws.p, ws.bytes, &zero, d.y, y),
          "cudnnConvolutionForward");
}

void cudnn_conv2d_backward_data(int device, const Conv2dGeom& g, const float* dy, const float* w, float* dx) {
    if (g.x_numel() == 0) return;
    cudnnHandle_t h = handle(device);
    Plan& p = plan_for(device, g);
    const Descriptors& d = p.d;
    std::call_once(p.bwd_data_once, [&] {
        p.bwd_data = first_algo<cudnnConvolutionBwdDataAlgoPerf_t>(
            [&](auto* perf, int n, int* count) {
                return cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d.w, d.y, d.conv, d.x, n, count, perf);
            },
            "cudnnGetConvolutionBackwardDataAlgorithm_v7");
        check(cudnnGetConvolutionBackwardDataWorkspaceSize(h, d.w, d.y, d.conv, d.x, p.bwd_data, &p.bwd_data_bytes),
              "cudnnGetConvolutionBackwardDataWorkspaceSize");
    });
    Workspace ws(p.bwd_data_bytes, device);
    const float one = 1.f, zero = 0.f;
    check(cudnnConvolutionBackwardData(h, &one, d.w, w, d.y, dy, d.conv, p.bwd_data, ws.p, ws.bytes, &zero, d.x, dx),
          "cudnnConvolutionBackwardData");
}

void cudnn_conv2d_backward_weight(int device, const Conv2dGeom& g, const float* x, const float* dy, float* dw) {
    if (g.w_numel() == 0) return;
    cudnnHandle_t h = handle(device);
    Plan& p = plan_for(device, g);
    const Descriptors& d = p.d;
    std::call_once(p.bwd_filter_once, [&] {
        p.bwd_filter = first_algo<cudnnConvolutionBwdFilterAlgoPerf_t>(
            [&](auto* perf, int n, int* count) {
                return cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.x, d.y, d.conv, d.w, n, count, perf);
            },
            "cudnnGetConvolutionBackwardFilterAlgorithm_v7");
        check(cudnnGetConvolutionBackwardFilterWorkspaceSize(h, d.x, d.y, d.conv, d.w, p.bwd_filter,
                                                             &p.bwd_filter_bytes),
              "cudnnGetConvolutionBackwardFilterWorkspaceSize");
    });
    Workspace ws(p.bwd_filter_bytes, device);
    const float one = 1.f, zero = 0.f;
    check(cudnnConvolutionBackwardFilter(h, &one, d.x, x, d.y, dy, d.conv, p.bwd_filter, ws.p, ws.bytes, &zero, d.w,
                                         dw),
          "cudnnConvolutionBackwardFilter");
}

}  // namespace gb::kernels::gpu
