#include "explain/perturbation.h"

#include <algorithm>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "core/factory.h"
#include "kernels/backend.h"
#include "kernels/geometry.h"

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
    Tensor out = empty(Shape{N, 0}, DType::Float32, x.device());  // [N, K] once the first batch gives K
    try {
        for (int64_t b = 0; b < N; b += batch) {
            const int64_t B = std::min(batch, N - b);
            const Tensor logits = model(x.narrow(b, B));
            GB_CHECK(logits.rank() == 2 && logits.dim(0) == B && (b == 0 || logits.dim(1) == out.dim(1)),
                     "predict: the model's output must be [N, classes], got ", logits.shape().str());
            if (b == 0) out = empty(Shape{N, logits.dim(1)}, DType::Float32, x.device());
            kernels::backend_for(x.device()).copy(logits.numel(), logits.data<float>(), out.data<float>() + b * out.dim(1));
        }
    } catch (...) {
        model.train(was_training);
        throw;
    }
    model.train(was_training);
    return out;
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

namespace {

// The rows of `from` [N, per] that perturbations b .. b+B-1 start from, into out [B, per]: a run
// of perturbations from one image is one broadcast of its row (times 1, exact).
void gather_rows(kernels::Backend& be, const Perturbations& p, const Tensor& from, int64_t b, int64_t B, int64_t per,
                 float* out) {
    const int64_t N = from.dim(0);
    auto image = [&](int64_t j) {
        const int64_t n = p.image ? p.image(b + j) : 0;
        GB_CHECK(n >= 0 && n < N, "score_perturbations: perturbation ", b + j, " starts from image ", n, " of ", N);
        return n;
    };
    for (int64_t j = 0; j < B;) {
        const int64_t n = image(j);
        int64_t run = 1;
        while (j + run < B && image(j + run) == n) ++run;
        be.broadcast_dim(1, run, per, 1.f, from.data<float>() + n * per, out + j * per);
        j += run;
    }
}

}  // namespace

std::vector<double> score_perturbations(layers::Layer& model, const Perturbations& p) {
    GB_CHECK(p.images.defined() && p.images.rank() == 4 && p.images.dtype() == DType::Float32,
             "score_perturbations: the images must be a float32 batch [N, C, H, W], got ",
             p.images.defined() ? p.images.shape().str() : std::string("(undefined)"));
    GB_CHECK(p.count >= 0 && p.batch > 0 && (p.keep || p.keep_planes.defined()) && p.score,
             "score_perturbations: needs count >= 0 (got ", p.count, "), batch > 0 (got ", p.batch,
             "), keep (or keep_planes) and score");
    const Device dev = p.images.device();
    const int64_t C = p.images.dim(1), H = p.images.dim(2), W = p.images.dim(3), HW = H * W, per = C * HW;
    GB_CHECK(!p.keep_planes.defined() || (p.keep_planes.numel() == p.count * HW && p.keep_planes.device() == dev),
             "score_perturbations: keep_planes ", p.keep_planes.defined() ? p.keep_planes.shape().str() : std::string(),
             " for ", p.count, " planes of ", H, "x", W, " on the images' device");
    GB_CHECK(!p.replacement.defined() || (p.replacement.shape() == p.images.shape() && p.replacement.device() == dev),
             "score_perturbations: the replacement ", p.replacement.defined() ? p.replacement.shape().str() : std::string(),
             " must match the images ", p.images.shape().str(), " on their device");
    std::vector<double> scores(static_cast<size_t>(p.count));
    if (p.count == 0) return scores;
    kernels::Backend& be = kernels::backend_for(dev);
    // Buffers of the largest batch, reused: the inputs, the images' rows, keep spread over the channels.
    const int64_t cap = std::min(p.batch, p.count);
    Tensor in = empty(Shape{cap, C, H, W}, DType::Float32, dev), rows = empty(Shape{cap * per}, DType::Float32, dev),
           spread = empty(Shape{cap * per}, DType::Float32, dev), planes, rest, ones, term;
    // Without a replacement image a value of 0 adds nothing: input = x * keep.
    const bool replaces = p.replacement.defined() || p.value != 0.f;
    if (replaces) {  // 1 - keep; a replacement image's term r * (1 - keep) needs a buffer of its own
        rest = empty(Shape{cap * HW}, DType::Float32, dev);
        ones = empty(Shape{cap * HW}, DType::Float32, dev);
        be.fill(cap * HW, 1.f, ones.data<float>());
        term = p.replacement.defined() ? empty(Shape{cap * per}, DType::Float32, dev) : spread;
    }
    std::vector<float> host;  // keep planes written on the host, one batch
    for (int64_t b = 0; b < p.count; b += p.batch) {
        const int64_t B = std::min(p.batch, p.count - b), n = B * per;
        const float* keep = nullptr;
        if (p.keep_planes.defined()) {
            keep = p.keep_planes.data<float>() + b * HW;
        } else {
            host.resize(static_cast<size_t>(B * HW));
            for (int64_t j = 0; j < B; ++j) p.keep(b + j, host.data() + j * HW);
            planes = from_vector(host, Shape{B * HW}, dev);
            keep = planes.data<float>();
        }
        gather_rows(be, p, p.images, b, B, per, rows.data<float>());
        be.broadcast_dim(B, C, HW, 1.f, keep, spread.data<float>());
        be.mul(n, rows.data<float>(), spread.data<float>(), in.data<float>());  // x * keep
        if (replaces) {
            be.sub(B * HW, ones.data<float>(), keep, rest.data<float>());  // 1 - keep
            if (p.replacement.defined()) {
                gather_rows(be, p, p.replacement, b, B, per, rows.data<float>());
                be.broadcast_dim(B, C, HW, 1.f, rest.data<float>(), spread.data<float>());
                be.mul(n, rows.data<float>(), spread.data<float>(), term.data<float>());  // r * (1 - keep)
            } else {  // spread is free again: it takes value * (1 - keep)
                be.broadcast_dim(B, C, HW, p.value, rest.data<float>(), term.data<float>());
            }
            be.axpy(n, 1.f, term.data<float>(), in.data<float>());  // exact: 1 * term
        }
        const Tensor logits = predict(model, in.narrow(0, B), p.batch);
        const int64_t K = logits.dim(1);
        const auto l = logits.to_vector<float>();
        for (int64_t j = 0; j < B; ++j) scores[static_cast<size_t>(b + j)] = p.score(b + j, l.data() + j * K, K);
        if (p.progress) p.progress(b + B, p.count);
    }
    return scores;
}

Tensor occlusion(layers::Layer& model, const Tensor& x, const Tensor& seed, const OcclusionOptions& o) {
    GB_CHECK(x.rank() == 4, "occlusion: the input must be [N, C, H, W], got ", x.shape().str());
    const int64_t N = x.dim(0), H = x.dim(2), W = x.dim(3), HW = H * W;
    GB_CHECK(o.window >= 1 && o.window <= std::min(H, W) && o.stride >= 1 && o.batch > 0, "occlusion: window ",
             o.window, " and stride ", o.stride, " must be >= 1 and the window at most the input's ", H, "x", W);
    GB_CHECK(seed.rank() == 2 && seed.dim(0) == N, "occlusion: seed ", seed.shape().str(), " for ", N, " samples");
    const auto sv = seed.to_vector<float>();
    const std::vector<double> base = seeded_scores(predict(model, x, o.batch), sv, N);
    // Windows at 0, stride, ... while they fit: the output grid of a window x window convolution.
    const kernels::Conv2dGeom g = kernels::make_conv2d_geom(N, 1, H, W, 1, o.window, o.window, o.stride, o.stride, 0, 0);
    // Perturbation i occludes window i % P (row-major on the grid) of image i / P.
    const int64_t Px = g.Q, P = g.P * g.Q, K = seed.dim(1);
    Perturbations p;
    p.images = x;
    p.image = [P](int64_t i) { return i / P; };
    p.keep = [&](int64_t i, float* keep) {
        const int64_t py = (i % P) / Px * o.stride, px = (i % P) % Px * o.stride;
        std::fill(keep, keep + HW, 1.f);
        for (int64_t y = py; y < py + o.window; ++y) std::fill(keep + y * W + px, keep + y * W + px + o.window, 0.f);
    };
    p.value = o.baseline;
    p.count = N * P;
    p.batch = o.batch;
    p.score = [&](int64_t i, const float* logits, int64_t classes) {
        GB_CHECK(classes == K, "occlusion: a seed of ", K, " classes for a model of ", classes);
        return seeded_score(sv.data() + (i / P) * K, logits, K);
    };
    const std::vector<double> scores = score_perturbations(model, p);
    std::vector<float> drops(scores.size());  // per perturbation the score drop: [N, 1, Py, Px]
    for (int64_t i = 0; i < N * P; ++i)
        drops[static_cast<size_t>(i)] = static_cast<float>(base[static_cast<size_t>(i / P)] - scores[static_cast<size_t>(i)]);
    // The mean over the windows covering each pixel: the drops spread onto their windows by the
    // transposed convolution with a kernel of ones, divided by the same spread of ones (the cover
    // counts; lrp_divide with eps 0 gives 0 where no window covers a pixel).
    const Device dev = x.device();
    kernels::Backend& be = kernels::backend_for(dev);
    Tensor ones = empty(Shape{std::max(P, o.window * o.window)}, DType::Float32, dev);
    be.fill(ones.numel(), 1.f, ones.data<float>());
    Tensor sums = empty(Shape{N * HW}, DType::Float32, dev), cover = empty(Shape{HW}, DType::Float32, dev),
           counts = empty(Shape{N * HW}, DType::Float32, dev), out = empty(Shape{N, 1, H, W}, DType::Float32, dev);
    const Tensor d = from_vector(drops, Shape{N, 1, g.P, g.Q}, dev);
    be.conv2d_backward_data(g, d.data<float>(), ones.data<float>(), sums.data<float>());
    kernels::Conv2dGeom single = g;  // one grid of ones
    single.N = 1;
    be.conv2d_backward_data(single, ones.data<float>(), ones.data<float>(), cover.data<float>());
    be.broadcast_dim(1, N, HW, 1.f, cover.data<float>(), counts.data<float>());
    be.lrp_divide(N * HW, 0.f, sums.data<float>(), counts.data<float>(), out.data<float>());
    return out;
}

Tensor random_map(int64_t N, int64_t H, int64_t W, uint64_t seed, Device device) {
    Generator g(seed);
    return uniform(Shape{N, 1, H, W}, 0.f, 1.f, g, device);
}

}  // namespace gb::explain
