#include "explain/perturbation.h"

#include <algorithm>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "core/factory.h"

namespace gb::explain {

Tensor predict(layers::Layer& model, const Tensor& x, int64_t batch) {
    GB_CHECK(x.defined() && x.rank() == 4 && x.dtype() == DType::Float32,
             "predict: the input must be a float32 batch [N, C, H, W], got ",
             x.defined() ? x.shape().str() : std::string("(undefined)"));
    GB_CHECK(batch > 0, "predict: batch must be positive, got ", batch);
    const bool was_training = model.is_training();
    model.eval();
    autograd::NoGradGuard no_grad;
    const int64_t N = x.dim(0);
    std::vector<float> out;
    int64_t K = 0;
    try {
        for (int64_t b = 0; b < N; b += batch) {
            const Tensor logits = model(x.narrow(b, std::min(batch, N - b)));
            GB_CHECK(logits.rank() == 2, "predict: the model's output must be [N, classes], got ", logits.shape().str());
            K = logits.dim(1);
            const auto v = logits.to_vector<float>();
            out.insert(out.end(), v.begin(), v.end());
        }
    } catch (...) {
        model.train(was_training);
        throw;
    }
    model.train(was_training);
    return from_vector(out, Shape{N, K}, x.device());
}

std::vector<double> seeded_scores(const Tensor& logits, const std::vector<float>& seed, int64_t N) {
    const int64_t R = logits.dim(0), K = logits.dim(1);
    GB_CHECK(static_cast<int64_t>(seed.size()) == N * K && R % N == 0, "seeded_scores: seed of ", seed.size(),
             " values for ", N, " samples and logits ", logits.shape().str());
    const auto l = logits.to_vector<float>();
    std::vector<double> out(static_cast<size_t>(R));
    for (int64_t r = 0; r < R; ++r) out[static_cast<size_t>(r)] = seeded_score(seed.data() + (r % N) * K, l.data() + r * K, K);
    return out;
}

double seeded_score(const float* seed, const float* logits, int64_t classes) {
    double s = 0;
    for (int64_t k = 0; k < classes; ++k) s += static_cast<double>(seed[k]) * logits[k];
    return s;
}

std::vector<double> score_perturbations(layers::Layer& model, const Perturbations& p) {
    GB_CHECK(p.input.rank() == 3, "score_perturbations: one input is [C, H, W], got ", p.input.str());
    GB_CHECK(p.count >= 0 && p.batch > 0 && p.fill && p.score, "score_perturbations: needs count >= 0 (got ", p.count,
             "), batch > 0 (got ", p.batch, "), fill and score");
    const int64_t per = p.input.numel();
    std::vector<double> scores(static_cast<size_t>(p.count));
    std::vector<float> in;
    for (int64_t b = 0; b < p.count; b += p.batch) {
        const int64_t B = std::min(p.batch, p.count - b);
        in.resize(static_cast<size_t>(B * per));  // the buffer of the previous batch, refilled whole
        for (int64_t j = 0; j < B; ++j) p.fill(b + j, in.data() + j * per);
        const Tensor logits = predict(model, from_vector(in, Shape{B, p.input[0], p.input[1], p.input[2]}, p.device), p.batch);
        const int64_t K = logits.dim(1);
        const auto l = logits.to_vector<float>();
        for (int64_t j = 0; j < B; ++j) scores[static_cast<size_t>(b + j)] = p.score(b + j, l.data() + j * K, K);
        if (p.progress) p.progress(b + B, p.count);
    }
    return scores;
}

Tensor occlusion(layers::Layer& model, const Tensor& x, const Tensor& seed, const OcclusionOptions& o) {
    GB_CHECK(x.rank() == 4, "occlusion: the input must be [N, C, H, W], got ", x.shape().str());
    const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
    GB_CHECK(o.window >= 1 && o.window <= std::min(H, W) && o.stride >= 1 && o.batch > 0, "occlusion: window ",
             o.window, " and stride ", o.stride, " must be >= 1 and the window at most the input's ", H, "x", W);
    GB_CHECK(seed.rank() == 2 && seed.dim(0) == N, "occlusion: seed ", seed.shape().str(), " for ", N, " samples");
    const auto sv = seed.to_vector<float>();
    const auto xv = x.to_vector<float>();
    const std::vector<double> base = seeded_scores(predict(model, x, o.batch), sv, N);
    std::vector<std::pair<int64_t, int64_t>> pos;
    for (int64_t y = 0; y + o.window <= H; y += o.stride)
        for (int64_t xx = 0; xx + o.window <= W; xx += o.stride) pos.emplace_back(y, xx);
    // Perturbation i occludes window i % P of image i / P.
    const int64_t P = static_cast<int64_t>(pos.size()), per = C * H * W, K = seed.dim(1);
    Perturbations p;
    p.input = Shape{C, H, W};
    p.device = x.device();
    p.count = N * P;
    p.batch = o.batch;
    p.fill = [&](int64_t i, float* dst) {
        const int64_t n = i / P;
        const auto [py, px] = pos[static_cast<size_t>(i % P)];
        std::copy(xv.begin() + n * per, xv.begin() + (n + 1) * per, dst);
        for (int64_t c = 0; c < C; ++c)
            for (int64_t y = py; y < py + o.window; ++y)
                std::fill(dst + (c * H + y) * W + px, dst + (c * H + y) * W + px + o.window, o.baseline);
    };
    p.score = [&](int64_t i, const float* logits, int64_t classes) {
        GB_CHECK(classes == K, "occlusion: a seed of ", K, " classes for a model of ", classes);
        return seeded_score(sv.data() + (i / P) * K, logits, K);
    };
    const std::vector<double> scores = score_perturbations(model, p);
    std::vector<double> sum(static_cast<size_t>(N * H * W), 0.0), count(static_cast<size_t>(N * H * W), 0.0);
    for (int64_t i = 0; i < N * P; ++i) {
        const int64_t n = i / P;
        const auto [py, px] = pos[static_cast<size_t>(i % P)];
        const double drop = base[static_cast<size_t>(n)] - scores[static_cast<size_t>(i)];
        for (int64_t y = py; y < py + o.window; ++y)
            for (int64_t xx = px; xx < px + o.window; ++xx) {
                sum[static_cast<size_t>((n * H + y) * W + xx)] += drop;
                count[static_cast<size_t>((n * H + y) * W + xx)] += 1.0;
            }
    }
    std::vector<float> out(sum.size());
    for (size_t i = 0; i < out.size(); ++i) out[i] = count[i] > 0 ? static_cast<float>(sum[i] / count[i]) : 0.f;
    return from_vector(out, Shape{N, 1, H, W}, x.device());
}

Tensor random_map(int64_t N, int64_t H, int64_t W, uint64_t seed, Device device) {
    Generator g(seed);
    return uniform(Shape{N, 1, H, W}, 0.f, 1.f, g, device);
}

}  // namespace gb::explain
