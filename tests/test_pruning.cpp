// Filter pruning (models/prune.h, explain/pruning.h): the pruned model computes what the original computes with
// the removed filters' activations set to zero, with and without BatchNorm and in torchvision's layout; the
// criteria's scores; the choice of filters; the errors.
#include <set>

#include "autograd/grad_mode.h"
#include "explain/pruning.h"
#include "explain/pruning_run.h"
#include "explain/trace.h"
#include "layers/layers.h"
#include "models/checkpoint.h"
#include "models/prune.h"
#include "models/registry.h"
#include "temp_dir.h"
#include "testing.h"

using namespace gb;
using namespace gb::testing;

namespace {

// Random non-trivial BatchNorm parameters and statistics (a fresh one is the identity up to eps).
void randomise_batchnorms(models::Vgg& m, uint64_t seed) {
    for (auto& [path, layer] : m.named_layers())
        if (auto* bn = dynamic_cast<layers::BatchNorm2d*>(layer)) {
            const int64_t c = bn->weight().numel();
            bn->weight().copy_from(rand_tensor(Shape{c}, seed++, 0.5f, 1.5f));
            bn->bias().copy_from(rand_tensor(Shape{c}, seed++, -0.3f, 0.3f));
            bn->running_mean().copy_from(rand_tensor(Shape{c}, seed++, -0.2f, 0.2f));
            bn->running_var().copy_from(rand_tensor(Shape{c}, seed++, 0.5f, 2.f));
        }
}

// Every other filter of each convolution plus a few more, never all.
std::vector<std::vector<int64_t>> some_filters(models::Vgg& m) {
    std::vector<std::vector<int64_t>> keep;
    for (int64_t w : m.config().features) {
        if (w == 0) continue;
        std::vector<int64_t> k;
        for (int64_t f = 0; f < w; ++f)
            if (f % 2 == 1 || f % 5 == 0) k.push_back(f);
        keep.push_back(k);
    }
    return keep;
}

// The original model's logits with the filters not in `keep` set to zero after their block (a forward hook on
// the ReLU that ends each convolution's block).
std::vector<float> masked_logits(models::Vgg& m, const std::vector<std::vector<int64_t>>& keep, const Tensor& x) {
    std::vector<int> hooks;
    std::vector<layers::Layer*> hooked;
    size_t l = 0;
    layers::Conv2d* last_conv = nullptr;
    for (const auto& [name, child] : m.features().children()) {
        if (auto* conv = dynamic_cast<layers::Conv2d*>(child.get())) last_conv = conv;
        if (dynamic_cast<layers::ReLU*>(child.get()) && last_conv) {
            std::set<int64_t> kept(keep[l].begin(), keep[l].end());
            hooks.push_back(child->on_forward([kept](layers::Layer&, const Tensor&, const Tensor& out) {
                Tensor o = out;
                const int64_t n = o.dim(0), k = o.dim(1), area = o.numel() / (n * k);
                float* p = o.data<float>();
                for (int64_t i = 0; i < n; ++i)
                    for (int64_t c = 0; c < k; ++c)
                        if (!kept.count(c))
                            for (int64_t q = 0; q < area; ++q) p[(i * k + c) * area + q] = 0.f;
            }));
            hooked.push_back(child.get());
            last_conv = nullptr;
            ++l;
        }
    }
    REQUIRE(l == keep.size());
    std::vector<float> out = m(x).to_vector<float>();
    for (size_t i = 0; i < hooks.size(); ++i) hooked[i]->remove_hook(hooks[i]);
    return out;
}

void check_pruned_equals_masked(models::Vgg& m, const Tensor& x) {
    autograd::NoGradGuard no_grad;
    m.eval();
    const auto keep = some_filters(m);
    const auto pruned = models::prune(m, keep);
    // Genuinely smaller: the widths are the kept counts, and the first Linear has the kept channels' columns.
    size_t l = 0;
    for (int64_t w : pruned->config().features)
        if (w != 0) CHECK(w == static_cast<int64_t>(keep[l++].size()));
    CHECK(pruned->num_parameters() < m.num_parameters());
    const std::vector<float> expected = masked_logits(m, keep, x);
    const std::vector<float> got = (*pruned)(x).to_vector<float>();
    // Not bit for bit: the next convolution (and the first Linear) sum over fewer input channels, so the GEMM's
    // depth K and its blocking, and with them the order of the float additions, differ. Measured 1.4e-7 to 5e-7 of the
    // largest logit; 1e-5 leaves room for other GEMM micro-kernels.
    CHECK(max_abs_diff(got, expected) <= 1e-5f * max_abs(expected));
    // And the masking is not vacuous: the unmasked model differs.
    CHECK(max_abs_diff(m(x).to_vector<float>(), expected) > 1e-3f * max_abs(expected));
}

}  // namespace

TEST_CASE("prune: the pruned vgg-mini equals the original with the removed filters masked") {
    auto m = models::make_model("vgg-mini");
    check_pruned_equals_masked(*m, rand_tensor(Shape{4, 1, 28, 28}, 11));
}

TEST_CASE("prune: with BatchNorm (parameters and running statistics follow their filters)") {
    auto m = models::make_model("vgg-mini-bn");
    randomise_batchnorms(*m, 100);
    check_pruned_equals_masked(*m, rand_tensor(Shape{4, 1, 28, 28}, 12));
}

TEST_CASE("prune: torchvision layout (avgpool before the classifier: the first Linear's blocks of S*S columns)") {
    models::VggConfig c;
    c.name = "tiny-torchvision";
    c.features = {8, 0, 12, 0, 10};
    c.batch_norm = true;
    c.hidden = {16};
    c.in_channels = 3;
    c.input_size = 16;
    c.num_classes = 5;
    c.avgpool = 3;
    Generator g(5);
    models::Vgg m(c, g);
    randomise_batchnorms(m, 200);
    check_pruned_equals_masked(m, rand_tensor(Shape{3, 3, 16, 16}, 13));
}

TEST_CASE("prune: a pruned checkpoint saves, loads, runs and explains like any other") {
    auto m = models::make_model("vgg-mini");
    const auto pruned = models::prune(*m, some_filters(*m));
    TempDir dir("prune");
    const std::string path = dir.path() + "/pruned.safetensors";
    const std::map<std::string, std::string> source = {
        {"normalize.mean", "0.5"}, {"normalize.std", "0.25"}, {"train.epoch", "3"}, {"test_accuracy", "0.9"}};
    models::save_checkpoint(path, *pruned, explain::pruned_metadata(source, *pruned, "l1", 0.4, "src.safetensors"));
    models::Checkpoint ck = models::load_checkpoint(path);
    CHECK(ck.model->config().features == pruned->config().features);
    CHECK(ck.metadata().at("normalize.mean") == "0.5");
    CHECK(ck.metadata().at("prune.criterion") == "l1");
    CHECK(ck.metadata().count("train.epoch") == 0);
    CHECK(ck.metadata().count("test_accuracy") == 0);
    const Tensor x = rand_tensor(Shape{2, 1, 28, 28}, 3);
    {
        autograd::NoGradGuard no_grad;
        CHECK((*ck.model)(x).to_vector<float>() == (*pruned)(x).to_vector<float>());
    }
    explain::Trace trace(*ck.model, x);
    const auto r = trace.relevance(explain::Composite::preset("epsilon-plus"),
                                   trace.seed({explain::Target::of(1)}));
    CHECK(r[0].shape() == x.shape());
}

TEST_CASE("prune: l1 scores are the filters' sums of |w| (closed form)") {
    auto m = models::make_model("vgg-mini");
    auto* conv = dynamic_cast<layers::Conv2d*>(&m->features().child("2"));
    REQUIRE(conv);
    // Filter f of features.2 (32 x 3 x 3 weights each): every weight +-(f - 7) / 4, so sum |w| = 288 |f - 7| / 4.
    std::vector<float> w(32 * 32 * 9);
    for (size_t i = 0; i < w.size(); ++i) {
        const int64_t f = static_cast<int64_t>(i / (32 * 9));
        w[i] = (i % 2 ? 1.f : -1.f) * static_cast<float>(f - 7) / 4.f;
    }
    conv->weight().copy_from(from_vector(w, conv->weight().shape()));
    const auto scores = explain::filter_scores(*m, explain::PruneCriterion::L1, Tensor(), {});
    REQUIRE(scores.size() == 4);
    CHECK(scores[1].layer == "features.2");
    for (int64_t f = 0; f < 32; ++f)
        CHECK(scores[1].scores[static_cast<size_t>(f)] == doctest::Approx(288.0 * std::abs(f - 7) / 4.0).epsilon(1e-12));
    // The normalised scores of a layer sum to 1 (l1 and lrp), or have unit L2 norm (taylor).
    const auto norm = explain::normalized_scores(scores, explain::PruneCriterion::L1);
    double sum = 0;
    for (double v : norm[1]) sum += v;
    CHECK(sum == doctest::Approx(1.0));
}

TEST_CASE("prune: lrp and taylor scores on a reference batch; the global choice keeps one filter per layer") {
    auto m = models::make_model("vgg-mini-bn");
    randomise_batchnorms(*m, 300);
    const Tensor x = rand_tensor(Shape{6, 1, 28, 28}, 21);
    const std::vector<int32_t> y = {0, 1, 2, 3, 4, 5};
    for (auto c : {explain::PruneCriterion::Lrp, explain::PruneCriterion::Taylor}) {
        const auto s = explain::filter_scores(*m, c, x, y, /*batch=*/4);  // two batches, summed
        REQUIRE(s.size() == 4);
        const auto whole = explain::filter_scores(*m, c, x, y, /*batch=*/6);
        for (size_t l = 0; l < s.size(); ++l)
            for (size_t f = 0; f < s[l].scores.size(); ++f)
                CHECK(s[l].scores[f] == doctest::Approx(whole[l].scores[f]).epsilon(1e-4));
        const auto keep = explain::filters_to_keep(s, c, 0.6);
        int64_t kept = 0;
        for (const auto& k : keep) {
            CHECK(!k.empty());
            kept += static_cast<int64_t>(k.size());
        }
        CHECK(kept == 192 - 115);  // round(0.6 * 192) = 115 removed
    }
}

TEST_CASE("prune: errors") {
    auto m = models::make_model("vgg-mini");
    const auto s = explain::filter_scores(*m, explain::PruneCriterion::L1, Tensor(), {});
    for (double rate : {0.0, 1.0, -0.1, 1.5})
        CHECK_THROWS_WITH_AS(explain::filters_to_keep(s, explain::PruneCriterion::L1, rate),
                             doctest::Contains("rate must be inside (0, 1)"), Error);
    auto keep = some_filters(*m);
    keep[2].clear();
    CHECK_THROWS_WITH_AS(models::prune(*m, keep), doctest::Contains("convolution 2 would keep no filter"), Error);
    keep = some_filters(*m);
    keep[0].push_back(32);
    CHECK_THROWS_WITH_AS(models::prune(*m, keep), doctest::Contains("has filters 0..31, asked to keep 32"), Error);
    keep = some_filters(*m);
    keep.pop_back();
    CHECK_THROWS_WITH_AS(models::prune(*m, keep), doctest::Contains("lists of filters to keep"), Error);
    CHECK_THROWS_WITH_AS(explain::parse_prune_criterion("random"),
                         doctest::Contains("unknown criterion 'random' (known: lrp, l1, taylor)"), Error);
    CHECK_THROWS_WITH_AS(explain::filter_scores(*m, explain::PruneCriterion::Lrp, Tensor(), {}),
                         doctest::Contains("needs reference samples"), Error);
}
