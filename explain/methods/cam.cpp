// The CAM family (explain/cam.h; formulas in docs/explain.md), at a layer given as the
// spec's argument or the default CAM layer.
#include "explain/cam.h"
#include "explain/methods.h"

using namespace gb::explain;

GB_EXPLAIN_METHODS(cam) {
    struct Cam {  // the names are cam_method_name's
        std::vector<std::string> aliases;
        CamMethod method;
        const char* description;
    };
    const Cam cams[] = {
        {{}, CamMethod::GradCam, "Grad-CAM: channels weighted by their mean gradient"},
        {{"gradcampp"}, CamMethod::GradCamPlusPlus, "Grad-CAM++: channels weighted by positive gradients with higher-order terms"},
        {{}, CamMethod::XGradCam, "XGrad-CAM: channels weighted by activation-weighted gradients"},
        {{}, CamMethod::LayerCam, "LayerCAM: every position weighted by its positive gradient"},
        {{}, CamMethod::ScoreCam, "Score-CAM: channels weighted by the score of the input masked by each (one forward pass per channel, batched)"},
    };
    for (const Cam& cam_info : cams) {
        const CamMethod method = cam_info.method;
        registry.add({.name = cam_method_name(method),
                      .aliases = cam_info.aliases,
                      .kind = MethodKind::Cam,
                      .arg = {.name = "LAYER", .required = false, .what = "layer",
                              .choices = {}, .help = "layer path (default: the last Conv2d's rectified output)"},
                      .params = {},
                      .description = cam_info.description,
                      .is_signed = false,
                      .fn = [method](const MethodCall& c) -> Attribution {
                          const std::string layer = c.spec.arg.empty() ? default_cam_layer(c.trace) : c.spec.arg;
                          return {cam(c.trace, method, layer, c.seed()).map, false, "", layer};
                      }});
    }
}
