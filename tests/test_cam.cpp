// explain/cam: Grad-CAM, Grad-CAM++, XGrad-CAM, LayerCAM and Score-CAM at a
// conv output (pre-ReLU) and at a ReLU output, against Captum's LayerGradCam
// and pytorch-grad-cam 1.5.5's formulas (tests/data/vgg_mini.cam.safetensors):
// channel weights, raw maps, the returned normalised maps; plus hooks' tensors.
// And every CAM formula in closed form on a hand-made activation.
#include <algorithm>
#include <cmath>

#include "explain/cam.h"
#include "layers/layers.h"
#include "models/checkpoint.h"
#include "reference.h"
#include "temp_dir.h"

using namespace gb;
using namespace gb::testing;
using namespace gb::explain;

TEST_CASE("CAM family matches Captum and pytorch-grad-cam on vgg-mini") {
    const io::SafeTensors data = io::load_safetensors(data_file("vgg_mini.data.safetensors"));
    const io::SafeTensors ref = io::load_safetensors(data_file("vgg_mini.cam.safetensors"));
    models::Checkpoint ck = models::load_checkpoint(data_file("vgg_mini.model.safetensors"), "vgg-mini");
    Trace trace(*ck.model, data.at("input"));
    const Tensor seed = trace.seed(targets_of(data.at("target")));
    CHECK(default_cam_layer(trace) == "features.8");  // the ReLU after the last Conv2d
    auto check = [&](const Tensor& got, const std::string& key) {
        check_reference(got, ref.at(key), reference_tol(ref, key), key);
    };
    for (const std::string layer : {"features.7", "features.8"}) {
        CAPTURE(layer);
        check(trace.layer_output(layer), "cam.act." + layer);
        check(trace.gradient(seed, {layer})[1], "cam.grad." + layer);
        const CamResult gc = cam(trace, CamMethod::GradCam, layer, seed);
        check(gc.raw, "gradcam." + layer);
        check(resize_maps(gc.raw, 28, 28), "gradcam." + layer + ".up28");
        for (const std::string m : {"gradcam", "gradcampp", "xgradcam", "layercam", "scorecam"}) {
            CAPTURE(m);
            const CamResult r = cam(trace, parse_cam_method(m), layer, seed);
            const std::string key = "pgc." + m + "." + layer;
            check(r.map, key);
            check(r.raw, key + ".raw");
            if (m != "layercam") check(r.weights, key + ".weights");
        }
    }
    CHECK_THROWS_WITH_AS(cam(trace, CamMethod::GradCam, "classifier.0", seed), doctest::Contains("[N, C, h, w]"), Error);
    CHECK_THROWS_WITH_AS(parse_cam_method("eigencam"), doctest::Contains("unknown CAM method"), Error);
}

TEST_CASE("Grad-CAM at the pre-BatchNorm conv of vgg-mini-bn matches Captum") {
    const io::SafeTensors data = io::load_safetensors(data_file("vgg_mini_bn.data.safetensors"));
    const io::SafeTensors ref = io::load_safetensors(data_file("vgg_mini_bn.gradient.safetensors"));
    models::Checkpoint ck = models::load_checkpoint(data_file("vgg_mini_bn.model.safetensors"), "vgg-mini-bn");
    Trace trace(*ck.model, data.at("input"));
    const CamResult gc = cam(trace, CamMethod::GradCam, "features.10", trace.seed(targets_of(data.at("target"))));
    check_reference(gc.raw, ref.at("gradcam.features.10"), reference_tol(ref, "gradcam.features.10"), "gradcam f10");
    check_reference(resize_maps(gc.raw, 28, 28), ref.at("gradcam.features.10.up28"),
                    reference_tol(ref, "gradcam.features.10.up28"), "gradcam f10 up28");
}

// ReLU -> Flatten -> Linear(8, 2) on a non-negative [2, 2, 2, 2] input: the CAM layer "0" outputs
// A = x, and the gradient of logit 1 there is the Linear's row 1, g, whatever the input. The maps
// are at the input's size, where the half-pixel resize is the identity, so every result is the
// formula of explain/cam.h evaluated here in double. Tolerance: 1e-5 relative (float rounding).
TEST_CASE("CAM family in closed form on a hand-made activation") {
    Generator gen(3);
    layers::Sequential model;
    model.add(std::make_shared<layers::ReLU>());
    model.add(std::make_shared<layers::Flatten>());
    auto lin = model.add(std::make_shared<layers::Linear>(8, 2, true, gen));
    const std::vector<float> A = {1, 2, 3, 4, 4, 0, 1, 0,   // image 0: channel 0, channel 1 (2x2 each)
                                  0, 1, 0, 2, 3, 1, 2, 0};  // image 1
    const std::vector<float> g = {0.5f, 0.5f, 1, 0, -1, 0, 0, -1};  // logit 1's weights, [C=2, 2, 2]
    const std::vector<float> w0 = {0.25f, -0.5f, 0, 1, 2, 0, -0.25f, 0.5f};  // logit 0's (Score-CAM's softmax sees both)
    std::copy(w0.begin(), w0.end(), lin->weight().data<float>());
    std::copy(g.begin(), g.end(), lin->weight().data<float>() + 8);
    const float bias[2] = {0.1f, -0.2f};
    std::copy(bias, bias + 2, lin->bias().data<float>());
    Trace trace(model, from_vector(A, Shape{2, 2, 2, 2}));
    const Tensor seed = trace.seed({Target::of(1)});
    auto a = [&](int n, int c, int i) { return static_cast<double>(A[static_cast<size_t>(n * 8 + c * 4 + i)]); };
    auto scaled = [](std::vector<double> v, double eps) {  // (v - min) / (max(v - min) + eps)
        const double lo = *std::min_element(v.begin(), v.end());
        for (double& x : v) x -= lo;
        const double hi = *std::max_element(v.begin(), v.end());
        for (double& x : v) x /= hi + eps;
        return v;
    };
    auto logit1 = [&](const std::vector<double>& x) {  // logit 1 of one [2, 2, 2] input
        double s = bias[1];
        for (size_t i = 0; i < 8; ++i) s += g[i] * x[i];
        return s;
    };
    auto check = [](const Tensor& got, const std::vector<double>& want, const std::string& what) {
        CAPTURE(what);
        const auto v = got.to_vector<float>();
        REQUIRE(v.size() == want.size());
        for (size_t i = 0; i < v.size(); ++i) CHECK(v[i] == doctest::Approx(want[i]).epsilon(1e-5));
    };
    for (const CamMethod m : {CamMethod::GradCam, CamMethod::GradCamPlusPlus, CamMethod::XGradCam, CamMethod::LayerCam,
                              CamMethod::ScoreCam}) {
        CAPTURE(cam_method_name(m));
        const CamResult r = cam(trace, m, "0", seed);
        std::vector<double> weights, raw, map;
        for (int n = 0; n < 2; ++n) {
            double wc[2] = {0, 0};
            for (int c = 0; c < 2; ++c) {
                double sa = 0, sga = 0, sg = 0, spp = 0;
                for (int i = 0; i < 4; ++i) {
                    const double gi = g[static_cast<size_t>(c * 4 + i)];
                    sa += a(n, c, i), sga += gi * a(n, c, i), sg += gi;
                }
                for (int i = 0; i < 4; ++i) {
                    const double gi = g[static_cast<size_t>(c * 4 + i)];
                    spp += gi > 0 ? gi * gi * gi / (2 * gi * gi + sa * gi * gi * gi + 1e-6) : 0.0;
                }
                if (m == CamMethod::GradCam) wc[c] = sg / 4;
                if (m == CamMethod::GradCamPlusPlus) wc[c] = spp;
                if (m == CamMethod::XGradCam) wc[c] = sga / (sa + 1e-7);
                if (m == CamMethod::ScoreCam) {  // logit 1 of x times channel c's normalised map
                    std::vector<double> mask(4), xm(8);
                    for (int i = 0; i < 4; ++i) mask[static_cast<size_t>(i)] = a(n, c, i);
                    mask = scaled(mask, 1e-8);
                    for (int ch = 0; ch < 2; ++ch)
                        for (int i = 0; i < 4; ++i) xm[static_cast<size_t>(ch * 4 + i)] = a(n, ch, i) * mask[static_cast<size_t>(i)];
                    wc[c] = logit1(xm);
                }
            }
            if (m == CamMethod::ScoreCam) {  // softmax over the channels
                const double mx = std::max(wc[0], wc[1]), z = std::exp(wc[0] - mx) + std::exp(wc[1] - mx);
                for (double& w : wc) w = std::exp(w - mx) / z;
            }
            weights.insert(weights.end(), wc, wc + 2);
            std::vector<double> rn(4);
            for (int i = 0; i < 4; ++i) {
                double s = 0;
                for (int c = 0; c < 2; ++c)
                    s += (m == CamMethod::LayerCam ? std::max<double>(g[static_cast<size_t>(c * 4 + i)], 0) : wc[c]) * a(n, c, i);
                rn[static_cast<size_t>(i)] = std::max(s, 0.0);
            }
            raw.insert(raw.end(), rn.begin(), rn.end());
            const auto mn = scaled(scaled(rn, 1e-7), 1e-7);
            map.insert(map.end(), mn.begin(), mn.end());
        }
        check(r.raw, raw, "raw");
        check(r.map, map, "map");
        if (m != CamMethod::LayerCam) check(r.weights, weights, "weights");
        CHECK(r.raw.shape() == Shape{2, 1, 2, 2});
        CHECK(r.map.shape() == Shape{2, 1, 2, 2});
    }
    // Grad-CAM by hand for image 0: w = (0.5, -0.5), raw = relu(0.5 A_0 - 0.5 A_1) = (0, 1, 1, 2).
    CHECK(cam(trace, CamMethod::GradCam, "0", seed).raw.to_vector<float>() == std::vector<float>{0, 1, 1, 2, 0, 0, 0, 1});
}
