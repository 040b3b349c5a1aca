// Explain four Fashion-MNIST test images with LRP and Grad-CAM from ONE recorded forward pass.
// Usage: explain CHECKPOINT OUT_DIR
#include <glassbox/explain/cam.h>
#include <glassbox/explain/heatmap.h>
#include <glassbox/explain/inputs.h>
#include <glassbox/explain/trace.h>
#include <glassbox/models/checkpoint.h>

#include <filesystem>
#include <iostream>

using namespace gb;

int main(int argc, char** argv) try {
    if (argc < 3) {
        std::cerr << "usage: explain CHECKPOINT OUT_DIR\n";
        return 2;
    }
    const models::Checkpoint ck = models::load_checkpoint(argv[1]);  // the model is rebuilt from the file

    // The inputs as the model was trained on them: the checkpoint records the normalisation.
    explain::ExplainInputs in;
    explain::read_checkpoint_conventions(ck, in, std::cout);
    explain::load_samples("fashion-mnist", "", "test", {0, 1, 2, 3}, ck.model->config(), in);
    explain::normalize_inputs(in);

    explain::Trace trace(*ck.model, in.normalized);  // the one forward pass
    const Tensor seed = trace.seed({explain::Target::predicted()});
    // EpsilonGammaBox needs the input's range: [0, 1] pixels after the normalisation.
    const auto composite = explain::Composite::preset("epsilon-gamma-box", explain::preset_options(in));
    const Tensor lrp = trace.relevance(composite, seed)[0];
    const Tensor cam = explain::cam(trace, explain::CamMethod::GradCam, explain::default_cam_layer(trace), seed).map;

    std::filesystem::create_directories(argv[2]);
    for (int64_t i = 0; i < lrp.dim(0); ++i) {
        const std::string base = std::string(argv[2]) + "/" + std::to_string(i);
        explain::save_heatmap_png(base + "_lrp.png", lrp.narrow(i, 1).view(Shape{1, 28, 28}), "bwr", true, 8);
        explain::save_heatmap_png(base + "_gradcam.png", cam.narrow(i, 1).view(Shape{1, 28, 28}), "jet", false, 8);
    }
    std::cout << "forward passes: " << explain::Trace::forward_passes() << "; maps in " << argv[2] << "\n";
} catch (const std::exception& e) {
    std::cerr << "explain: " << e.what() << "\n";
    return 1;
}
