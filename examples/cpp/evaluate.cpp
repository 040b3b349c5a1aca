// Measure three explanation methods with two metrics (AOPC with noise patches, deletion AUC) on
// the first N Fashion-MNIST test images, per image and on average: what `glassbox evaluate` runs.
// Usage: evaluate CHECKPOINT [IMAGES]
#include <glassbox/explain/evaluation.h>
#include <glassbox/explain/inputs.h>
#include <glassbox/models/checkpoint.h>

#include <cstdlib>
#include <iostream>
#include <numeric>

using namespace gb;

int main(int argc, char** argv) try {
    if (argc < 2) {
        std::cerr << "usage: evaluate CHECKPOINT [IMAGES]\n";
        return 2;
    }
    const int64_t images = argc > 2 ? std::atoll(argv[2]) : 100;
    models::Checkpoint ck = models::load_checkpoint(argv[1]);

    explain::ExplainInputs in;
    explain::read_checkpoint_conventions(ck, in, std::cout);
    std::vector<int64_t> indices(static_cast<size_t>(images));
    std::iota(indices.begin(), indices.end(), 0);
    explain::load_samples("fashion-mnist", "", "test", indices, ck.model->config(), in);
    explain::normalize_inputs(in);

    explain::EvaluationPlan plan;
    plan.model = ck.model;
    plan.inputs = in.normalized;
    plan.labels = in.labels;
    plan.methods = {"lrp:epsilon-plus-flat", "gradcam", "saliency"};
    plan.preset = explain::preset_options(in);  // black pixel and [low, high] after normalisation
    plan.options.metrics = {"aopc", "deletion"};
    plan.options.batch = 25;
    plan.data = "fashion-mnist";
    plan.split = "test";
    plan.checkpoint = argv[1];

    const explain::EvaluationResults results = explain::run_evaluation(plan, [](const explain::EvaluationProgress& p) {
        std::cout << "batch " << p.batch << "/" << p.batches << ", " << p.images << " images\n";
    });
    std::cout << explain::results_markdown(results);  // means with standard errors
    // Per-image values: one vector per column, in image order.
    for (const auto& m : results.methods)
        std::cout << m.spec.text << ": deletion AUC of image 0 = " << m.values.at("deletion").front() << "\n";
} catch (const std::exception& e) {
    std::cerr << "evaluate: " << e.what() << "\n";
    return 1;
}
