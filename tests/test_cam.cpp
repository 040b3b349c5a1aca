// explain/cam: Grad-CAM, Grad-CAM++, XGrad-CAM, LayerCAM and Score-CAM at a
// conv output (pre-ReLU) and at a ReLU output, against Captum's LayerGradCam
// and pytorch-grad-cam 1.5.5's formulas (tests/data/vgg_mini.cam.safetensors):
// channel weights, raw maps, the returned normalised maps; plus hooks' tensors.
#include "explain/cam.h"
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
