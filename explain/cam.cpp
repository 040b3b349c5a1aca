#include "explain/cam.h"
#include "explain/method_registry.h"

#include <algorithm>
#include <cmath>

#include "core/factory.h"
#include "explain/perturbation.h"
#include "kernels/backend.h"

namespace gb::explain {

namespace {

// pytorch-grad-cam's scale_cam_image on each [h, w] plane: (x - min) / (1e-7 + max(x - min)).
void scale_planes(std::vector<float>& v, int64_t planes) {
    const int64_t per = static_cast<int64_t>(v.size()) / planes;
    for (int64_t p = 0; p < planes; ++p) {
        const auto b = v.begin() + p * per, e = b + per;
        const float lo = *std::min_element(b, e);
        for (auto it = b; it != e; ++it) *it -= lo;
        const float hi = *std::max_element(b, e);
        for (auto it = b; it != e; ++it) *it /= 1e-7f + hi;
    }
}

// raw[n] = relu(sum_c w[n, c] A[n, c])
std::vector<float> weighted_sum(const std::vector<float>& A, const std::vector<float>& w, int64_t N, int64_t C, int64_t HW) {
    std::vector<float> raw(static_cast<size_t>(N * HW), 0.f);
    for (int64_t n = 0; n < N; ++n)
        for (int64_t c = 0; c < C; ++c) {
            const float wc = w[static_cast<size_t>(n * C + c)];
            for (int64_t i = 0; i < HW; ++i) raw[static_cast<size_t>(n * HW + i)] += wc * A[static_cast<size_t>((n * C + c) * HW + i)];
        }
    for (float& r : raw) r = std::max(r, 0.f);
    return raw;
}

// Score-CAM's channel scores: the seeded output for the input masked by each channel's map
// (upsampled, min-max normalised), softmax over the channels. One image's channels at a time,
// `score_batch` per forward pass.
std::vector<float> score_weights(const Trace& trace, const std::vector<float>& A, const Tensor& seed, int64_t N, int64_t C,
                                 int64_t h, int64_t w, const CamOptions& o) {
    const Tensor& x = trace.input();
    const int64_t Cin = x.dim(1), H = x.dim(2), W = x.dim(3), plane = H * W;
    const auto up = resize_maps(from_vector(A, Shape{N, C, h, w}, x.device()), H, W, true).to_vector<float>();
    const auto xv = x.to_vector<float>(), sv = seed.to_vector<float>();
    const int64_t K = seed.dim(1);
    std::vector<float> scores(static_cast<size_t>(N * C));
    for (int64_t n = 0; n < N; ++n) {
        Perturbations p;
        p.input = Shape{Cin, H, W};
        p.device = x.device();
        p.count = C;
        p.batch = std::max<int64_t>(1, o.score_batch);
        p.fill = [&](int64_t c, float* dst) {  // x * the normalised map of channel c
            const float* u = up.data() + (n * C + c) * plane;
            const auto [lo, hi] = std::minmax_element(u, u + plane);
            const float range = *hi - *lo + 1e-8f;
            for (int64_t ch = 0; ch < Cin; ++ch)
                for (int64_t i = 0; i < plane; ++i)
                    dst[ch * plane + i] = xv[static_cast<size_t>((n * Cin + ch) * plane + i)] * ((u[i] - *lo) / range);
        };
        p.score = [&](int64_t, const float* logits, int64_t classes) {
            GB_CHECK(classes == K, "Score-CAM: a seed of ", K, " classes for a model of ", classes);
            return seeded_score(sv.data() + n * K, logits, K);
        };
        const std::vector<double> s = score_perturbations(trace.model(), p);
        for (int64_t c = 0; c < C; ++c) scores[static_cast<size_t>(n * C + c)] = static_cast<float>(s[static_cast<size_t>(c)]);
    }
    for (int64_t n = 0; n < N; ++n) {  // softmax over channels
        float* s = scores.data() + n * C;
        const float m = *std::max_element(s, s + C);
        double z = 0;
        for (int64_t c = 0; c < C; ++c) z += std::exp(static_cast<double>(s[c] - m));
        for (int64_t c = 0; c < C; ++c) s[c] = static_cast<float>(std::exp(static_cast<double>(s[c] - m)) / z);
    }
    return scores;
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
    const Tensor& act = trace.layer_output(layer);
    GB_CHECK(act.rank() == 4, "CAM at '", layer, "': the layer's output must be a [N, C, h, w] feature map, got ",
             act.shape().str());
    const int64_t N = act.dim(0), C = act.dim(1), h = act.dim(2), w = act.dim(3), HW = h * w;
    const auto A = act.to_vector<float>();
    std::vector<float> g;
    if (method != CamMethod::ScoreCam) g = trace.layer_gradients(seed, {layer})[0].to_vector<float>();
    std::vector<float> weights(static_cast<size_t>(N * C), 0.f), raw;
    auto at = [HW, C](int64_t n, int64_t c, int64_t i) { return static_cast<size_t>((n * C + c) * HW + i); };
    switch (method) {
        case CamMethod::GradCam:
            for (int64_t n = 0; n < N; ++n)
                for (int64_t c = 0; c < C; ++c) {
                    double s = 0;
                    for (int64_t i = 0; i < HW; ++i) s += g[at(n, c, i)];
                    weights[static_cast<size_t>(n * C + c)] = static_cast<float>(s / static_cast<double>(HW));
                }
            break;
        case CamMethod::GradCamPlusPlus:
            for (int64_t n = 0; n < N; ++n)
                for (int64_t c = 0; c < C; ++c) {
                    double sa = 0, s = 0;
                    for (int64_t i = 0; i < HW; ++i) sa += A[at(n, c, i)];
                    for (int64_t i = 0; i < HW; ++i) {
                        const double gi = g[at(n, c, i)], g2 = gi * gi;
                        const double a = gi != 0 ? g2 / (2 * g2 + sa * g2 * gi + 1e-6) : 0.0;
                        s += std::max(gi, 0.0) * a;
                    }
                    weights[static_cast<size_t>(n * C + c)] = static_cast<float>(s);
                }
            break;
        case CamMethod::XGradCam:
            for (int64_t n = 0; n < N; ++n)
                for (int64_t c = 0; c < C; ++c) {
                    double sa = 0, s = 0;
                    for (int64_t i = 0; i < HW; ++i) {
                        sa += A[at(n, c, i)];
                        s += static_cast<double>(g[at(n, c, i)]) * A[at(n, c, i)];
                    }
                    weights[static_cast<size_t>(n * C + c)] = static_cast<float>(s / (sa + 1e-7));
                }
            break;
        case CamMethod::LayerCam: {
            std::vector<float> ones(static_cast<size_t>(N * C), 1.f), pos(A.size());
            for (size_t i = 0; i < A.size(); ++i) pos[i] = std::max(g[i], 0.f) * A[i];
            raw = weighted_sum(pos, ones, N, C, HW);
            break;
        }
        case CamMethod::ScoreCam:
            weights = score_weights(trace, A, seed, N, C, h, w, o);
            break;
    }
    CamResult r;
    if (method != CamMethod::LayerCam) {
        raw = weighted_sum(A, weights, N, C, HW);
        r.weights = from_vector(weights, Shape{N, C}, act.device());
    }
    r.raw = from_vector(raw, Shape{N, 1, h, w}, act.device());
    std::vector<float> scaled = raw;
    scale_planes(scaled, N);
    const Tensor& x = trace.input();
    auto up = resize_maps(from_vector(scaled, Shape{N, 1, h, w}, act.device()), x.dim(2), x.dim(3)).to_vector<float>();
    for (float& v : up) v = std::max(v, 0.f);
    scale_planes(up, N);
    r.map = from_vector(up, Shape{N, 1, x.dim(2), x.dim(3)}, act.device());
    return r;
}

}  // namespace gb::explain
