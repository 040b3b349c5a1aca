// Explain a torchvision VGG exported from PyTorch (examples/python/export_torchvision.py writes
// its state dict with safetensors): the architecture is read from the tensors' names and shapes,
// the image goes through torchvision's evaluation transform (resize 256, centre crop 224,
// ImageNet normalisation), and one trace gives LRP (EpsilonGammaBox) and Grad-CAM.
// Usage: torchvision STATE_DICT.safetensors IMAGE OUT_DIR
#include <glassbox/explain/cam.h>
#include <glassbox/explain/heatmap.h>
#include <glassbox/explain/inputs.h>
#include <glassbox/explain/trace.h>
#include <glassbox/models/checkpoint.h>

#include <filesystem>
#include <iostream>

using namespace gb;

int main(int argc, char** argv) try {
    if (argc < 4) {
        std::cerr << "usage: torchvision STATE_DICT.safetensors IMAGE OUT_DIR\n";
        return 2;
    }
    const models::Checkpoint ck = models::load_checkpoint(argv[1]);  // e.g. "vgg16": inferred
    std::cout << "model: " << ck.model->describe() << "\n";

    explain::ExplainInputs in;
    explain::read_checkpoint_conventions(ck, in, std::cout);  // ImageNet normalisation for 224x224 RGB
    explain::load_images({argv[2]}, ck.model->config(), in, std::cout);
    explain::normalize_inputs(in);

    explain::Trace trace(*ck.model, in.normalized);
    const Tensor seed = trace.seed({explain::Target::predicted()});
    const Tensor lrp =
        trace.relevance(explain::Composite::preset("epsilon-gamma-box", explain::preset_options(in)), seed)[0];
    const Tensor cam = explain::cam(trace, explain::CamMethod::GradCam, explain::default_cam_layer(trace), seed).map;

    std::filesystem::create_directories(argv[3]);
    const std::string out = argv[3];
    explain::save_heatmap_png(out + "/lrp.png", lrp.narrow(0, 1).view(Shape{lrp.dim(1), lrp.dim(2), lrp.dim(3)}), "bwr",
                              true);
    explain::save_png(out + "/gradcam_overlay.png",
                      explain::overlay(in.raw.narrow(0, 1).view(Shape{in.raw.dim(1), in.raw.dim(2), in.raw.dim(3)}),
                                       cam.narrow(0, 1).view(Shape{1, cam.dim(2), cam.dim(3)}), "jet", false, 0.5f));
    std::cout << "predicted class " << explain::resolve_classes({explain::Target::predicted()}, trace.logits())[0]
              << "; maps in " << out << "\n";
} catch (const std::exception& e) {
    std::cerr << "torchvision: " << e.what() << "\n";
    return 1;
}
