#include "explain/cam.h"

#include <algorithm>

#include "core/factory.h"
#include "explain/method_registry.h"
#include "explain/perturbation.h"
#include "kernels/backend.h"

namespace gb::explain {

namespace {

// Every step below composes the backend's primitives on the maps' device; only per-image
// loops and Score-CAM's per-channel scores (a seeded sum over each row of logits) run here.

// [planes] maxima of x viewed as [planes, n]: a max pool whose window is the whole plane.
Tensor plane_max(kernels::Backend& be, const float* x, int64_t planes, int64_t n, Device device) {
    const kernels::Pool2dGeom g = kernels::make_pool2d_geom(1, planes, 1, n, 1, n, 1, 1, 0, 0);
    Tensor out = empty(Shape{planes}, DType::Float32, device), where(Shape{planes}, DType::Int32, device);
    be.maxpool2d_forward(g, x, out.data<float>(), where.data<int32_t>());
    return out;
}

// [planes, n] with v[p] in every element of plane p: zeros plus v as a per-plane bias (a tenth of
// broadcast_dim's time on the CPU backend for a per-plane value).
Tensor spread(kernels::Backend& be, const float* v, int64_t planes, int64_t n, Device device) {
    Tensor out = empty(Shape{planes * n}, DType::Float32, device);
    be.fill(planes * n, 0.f, out.data<float>());
    be.bias_add(1, planes, n, v, out.data<float>());
    return out;
}

// A length-n vector of `value`.
Tensor filled(kernels::Backend& be, int64_t n, float value, Device device) {
    Tensor out = empty(Shape{n}, DType::Float32, device);
    be.fill(n, value, out.data<float>());
    return out;
}

// (x - min) / (max(x - min) + eps) on each of `planes` planes of x: pytorch-grad-cam's
// scale_cam_image with eps = 1e-7, Score-CAM's mask normalisation with eps = 1e-8.
// Two passes over x for the extremes (min as the max of -x), then one per-plane affine map,
// (x - min) * (1 / (max - min + eps)), as an eval-mode batch norm with mean = min, variance 1,
// no epsilon and gamma = that reciprocal: the product by the reciprocal is within an ulp of
// the quotient, and a separate shift, spread and divide would be five passes over x.
// max(x - min) is computed as max(x) - min: float subtraction is monotone, so both are equal.
Tensor scale_planes(const Tensor& x, int64_t planes, float eps) {
    kernels::Backend& be = kernels::backend_for(x.device());
    const Device dev = x.device();
    const int64_t n = x.numel(), per = n / planes;
    Tensor neg = empty(x.shape(), DType::Float32, dev), out = empty(x.shape(), DType::Float32, dev);
    be.scale(n, -1.f, x.data<float>(), neg.data<float>());
    const Tensor neg_min = plane_max(be, neg.data<float>(), planes, per, dev), hi = plane_max(be, x.data<float>(), planes, per, dev);
    Tensor min = empty(Shape{planes}, DType::Float32, dev), range = empty(Shape{planes}, DType::Float32, dev);
    be.scale(planes, -1.f, neg_min.data<float>(), min.data<float>());
    be.add(planes, hi.data<float>(), neg_min.data<float>(), range.data<float>());                 // max - min
    be.bias_add(1, 1, planes, filled(be, 1, eps, dev).data<float>(), range.data<float>());       // + eps (> 0)
    const Tensor ones = filled(be, planes, 1.f, dev);  // the numerator of 1 / range, and the variance
    Tensor inv = empty(Shape{planes}, DType::Float32, dev);
    be.lrp_divide(planes, 0.f, ones.data<float>(), range.data<float>(), inv.data<float>());
    be.batchnorm_forward_eval(1, planes, per, x.data<float>(), inv.data<float>(), nullptr, min.data<float>(),
                              ones.data<float>(), 0.f, out.data<float>());
    return out;
}

// max(x, 0) into a new tensor.
Tensor relu_of(const Tensor& x) {
    Tensor out = empty(x.shape(), DType::Float32, x.device());
    kernels::backend_for(x.device()).relu_forward(x.numel(), x.data<float>(), out.data<float>());
    return out;
}

// x [outer, n, inner] summed over n -> [outer, inner].
Tensor sum_over(const Tensor& x, int64_t outer, int64_t n, int64_t inner) {
    Tensor out = empty(Shape{outer * inner}, DType::Float32, x.device());
    kernels::backend_for(x.device()).sum_dim(outer, n, inner, x.data<float>(), out.data<float>());
    return out;
}

// a * b, element-wise.
Tensor product(const Tensor& a, const Tensor& b) {
    Tensor out = empty(a.shape(), DType::Float32, a.device());
    kernels::backend_for(a.device()).mul(a.numel(), a.data<float>(), b.data<float>(), out.data<float>());
    return out;
}

// num / (den + eps), element-wise; den + eps is added exactly (not lrp_divide's sign-following
// stabiliser, which would subtract eps from a negative denominator) and a zero sum gives 0.
// den is a scratch handle: its storage receives den + eps.
Tensor divide_plus(const Tensor& num, Tensor den, float eps) {
    kernels::Backend& be = kernels::backend_for(num.device());
    Tensor e = empty(Shape{1}, DType::Float32, num.device()), out = empty(num.shape(), DType::Float32, num.device());
    be.fill(1, eps, e.data<float>());
    be.bias_add(1, 1, den.numel(), e.data<float>(), den.data<float>());
    be.lrp_divide(num.numel(), 0.f, num.data<float>(), den.data<float>(), out.data<float>());
    return out;
}

// raw[n] = relu(sum_c w[n, c] A[n, c]): one [1, C] x [C, HW] product per image.
Tensor weighted_sum(const Tensor& A, const Tensor& w, int64_t N, int64_t C, int64_t HW) {
    kernels::Backend& be = kernels::backend_for(A.device());
    Tensor raw = empty(Shape{N, 1, A.dim(2), A.dim(3)}, DType::Float32, A.device());
    for (int64_t n = 0; n < N; ++n)
        be.gemm(false, false, 1, HW, C, 1.f, w.data<float>() + n * C, C, A.data<float>() + n * C * HW, HW, 0.f,
                raw.data<float>() + n * HW, HW);
    return relu_of(raw);
}

// Score-CAM's channel scores: the seeded output for the input masked by each channel's map
// (upsampled, min-max normalised), softmax over the channels. One image's channels at a time,
// `score_batch` per forward pass; score_perturbations multiplies the input by the masks on
// their device (keep planes, replacement 0).
Tensor score_weights(const Trace& trace, const Tensor& A, const Tensor& seed, const CamOptions& o) {
    const Tensor& x = trace.input();
    const int64_t N = A.dim(0), C = A.dim(1), H = x.dim(2), W = x.dim(3);
    const Tensor masks = scale_planes(resize_maps(A, H, W, true), N * C, 1e-8f).view(Shape{N * C, H, W});
    const auto sv = seed.to_vector<float>();
    const int64_t K = seed.dim(1);
    std::vector<float> scores(static_cast<size_t>(N * C));
    for (int64_t n = 0; n < N; ++n) {
        Perturbations p;
        p.images = x.narrow(n, 1);
        p.keep_planes = masks.narrow(n * C, C);
        p.count = C;
        p.batch = std::max<int64_t>(1, o.score_batch);
        p.score = [&](int64_t, const float* logits, int64_t classes) {
            GB_CHECK(classes == K, "Score-CAM: a seed of ", K, " classes for a model of ", classes);
            return seeded_score(sv.data() + n * K, logits, K);
        };
        const std::vector<double> s = score_perturbations(trace.model(), p);
        for (int64_t c = 0; c < C; ++c) scores[static_cast<size_t>(n * C + c)] = static_cast<float>(s[static_cast<size_t>(c)]);
    }
    const Tensor s = from_vector(scores, Shape{N, C}, A.device());
    Tensor w = empty(Shape{N, C}, DType::Float32, A.device());
    kernels::backend_for(A.device()).softmax_forward(N, C, s.data<float>(), w.data<float>());
    return w;
}

}  // namespace

// The names are the method table's (explain/methods/cam.cpp registers each CAM under cam_method_name, with its
// aliases): parse_cam_method maps a registered name or alias back.
CamMethod parse_cam_method(const std::string& name) {
    const MethodInfo* m = find_method(name);
    for (CamMethod c : {CamMethod::GradCam, CamMethod::GradCamPlusPlus, CamMethod::XGradCam, CamMethod::LayerCam, CamMethod::ScoreCam})
        if (m && m->name == cam_method_name(c)) return c;
    GB_FAIL("unknown CAM method '", name, "' (expected gradcam, gradcam++, xgradcam, layercam or scorecam)");
}

std::string cam_method_name(CamMethod m) {
    switch (m) {
        case CamMethod::GradCam: return "gradcam";
        case CamMethod::GradCamPlusPlus: return "gradcam++";
        case CamMethod::XGradCam: return "xgradcam";
        case CamMethod::LayerCam: return "layercam";
        case CamMethod::ScoreCam: return "scorecam";
    }
    return "?";
}

std::string default_cam_layer(const Trace& trace) {
    // The last convolution's rectified feature maps (Selvaraju et al.): the last convolution, or the
    // per-channel affine (BatchNorm) and rectifier layers directly after it when there are any.
    std::vector<const layers::Layer*> leaves;  // in forward order
    std::vector<std::string> paths;
    for (const auto& [path, layer] : trace.model().named_layers())
        if (layer->children().empty() && !path.empty()) leaves.push_back(layer), paths.push_back(path);
    std::string chosen;
    const uint32_t after = layers::Capability::ChannelAffine | layers::Capability::Rectifier;
    for (size_t i = 0; i < leaves.size(); ++i) {
        if (!leaves[i]->has(layers::Capability::Convolution)) continue;
        chosen = paths[i];
        for (size_t j = i + 1; j < leaves.size() && leaves[j]->has_any(after); ++j) chosen = paths[j];
    }
    GB_CHECK(!chosen.empty(), "CAM: the model has no Conv2d layer; name a layer with a [N, C, h, w] output");
    return chosen;
}

Tensor resize_maps(const Tensor& maps, int64_t H, int64_t W, bool align_corners) {
    GB_CHECK(maps.rank() == 4, "resize: expected [N, C, h, w] maps, got ", maps.shape().str());
    GB_CHECK(H > 0 && W > 0, "resize: target size must be positive");
    Tensor out(Shape{maps.dim(0), maps.dim(1), H, W}, DType::Float32, maps.device());
    kernels::backend_for(maps.device())
        .resize_bilinear_forward(maps.dim(0) * maps.dim(1), maps.dim(2), maps.dim(3), H, W, align_corners,
                                 maps.data<float>(), out.data<float>());
    return out;
}

CamResult cam(const Trace& trace, CamMethod method, const std::string& layer, const Tensor& seed, const CamOptions& o) {
    const Tensor& A = trace.layer_output(layer);
    GB_CHECK(A.rank() == 4, "CAM at '", layer, "': the layer's output must be a [N, C, h, w] feature map, got ",
             A.shape().str());
    const int64_t N = A.dim(0), C = A.dim(1), HW = A.dim(2) * A.dim(3), NC = N * C;
    const Device dev = A.device();
    kernels::Backend& be = kernels::backend_for(dev);
    Tensor g, weights, raw;
    if (method != CamMethod::ScoreCam) g = trace.layer_gradients(seed, {layer})[0];
    switch (method) {
        case CamMethod::GradCam:  // mean_hw g
            weights = empty(Shape{N, C}, DType::Float32, dev);
            be.scale(NC, 1.f / static_cast<float>(HW), sum_over(g, NC, HW, 1).data<float>(), weights.data<float>());
            break;
        case CamMethod::GradCamPlusPlus: {  // sum_hw relu(g) g^2 / (2 g^2 + sum_hw(A) g^3 + 1e-6)
            const Tensor g2 = product(g, g);
            const Tensor sa = spread(be, sum_over(A, NC, HW, 1).data<float>(), NC, HW, dev).view(g.shape());
            Tensor den = product(sa, product(g2, g));
            be.axpy(den.numel(), 2.f, g2.data<float>(), den.data<float>());
            // a = 0 where g = 0 as in pytorch-grad-cam: there g^2 = 0 over a denominator of 1e-6.
            weights = sum_over(product(relu_of(g), divide_plus(g2, den, 1e-6f)), NC, HW, 1).view(Shape{N, C});
            break;
        }
        case CamMethod::XGradCam:  // sum_hw g A / (sum_hw A + 1e-7)
            weights = divide_plus(sum_over(product(g, A), NC, HW, 1), sum_over(A, NC, HW, 1), 1e-7f).view(Shape{N, C});
            break;
        case CamMethod::LayerCam:  // relu(sum_c relu(g_c) A_c)
            raw = relu_of(sum_over(product(relu_of(g), A), N, C, HW).view(Shape{N, 1, A.dim(2), A.dim(3)}));
            break;
        case CamMethod::ScoreCam:
            weights = score_weights(trace, A, seed, o);
            break;
    }
    CamResult r;
    if (method != CamMethod::LayerCam) {
        raw = weighted_sum(A, weights, N, C, HW);
        r.weights = weights;
    }
    r.raw = raw;
    const Tensor& x = trace.input();
    r.map = scale_planes(relu_of(resize_maps(scale_planes(raw, N, 1e-7f), x.dim(2), x.dim(3))), N, 1e-7f);
    return r;
}

}  // namespace gb::explain
