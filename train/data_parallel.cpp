// train/data_parallel.h: shards, the bucketed gradient allreduce, and the checks that ranks agree.
#include "train/data_parallel.h"

#include <zlib.h>

#include <algorithm>
#include <sstream>

#include "core/error.h"
#include "kernels/backend.h"
#include "layers/layer.h"

namespace gb::train {

GradientSync::GradientSync(const dist::Comm& comm, NamedTensors params, int64_t bucket_bytes)
    : comm_(comm), params_(std::move(params)), device_(params_.empty() ? Device::cpu() : params_[0].second.device()) {
    GB_CHECK(bucket_bytes > 0, "GradientSync: bucket size must be positive");
    const size_t n = params_.size();
    bucket_of_.resize(n);
    offset_of_.resize(n);
    flag_of_.resize(n);
    filled_.assign(n, false);
    // Reverse order: the backward pass completes the last layer's gradients first.
    for (size_t k = n; k-- > 0;) {
        const Tensor& p = params_[k].second;
        GB_CHECK(p.dtype() == DType::Float32, "data-parallel training: parameter '", params_[k].first,
                 "' is not float32");
        GB_CHECK(p.device() == device_, "data-parallel training: parameter '", params_[k].first, "' is on ",
                 p.device().str(), ", the others on ", device_.str());
        if (buckets_.empty() || buckets_.back().size * 4 >= bucket_bytes) buckets_.emplace_back();
        Bucket& b = buckets_.back();
        bucket_of_[k] = buckets_.size() - 1;
        offset_of_[k] = static_cast<size_t>(b.size);
        b.params.push_back(k);
        b.size += p.numel();
        index_[p.impl_ptr().get()] = k;
    }
    // The flags after the values.
    for (Bucket& b : buckets_) {
        for (size_t i = 0; i < b.params.size(); ++i) flag_of_[b.params[i]] = static_cast<size_t>(b.size) + i;
        b.size += static_cast<int64_t>(b.params.size());
        b.data = Tensor(Shape{b.size}, DType::Float32, device_);
    }
}

void GradientSync::begin(int64_t rows, int64_t total) {
    GB_CHECK(!active_, "GradientSync: begin() twice without finish()");
    GB_CHECK(total > 0 && rows >= 0 && rows <= total, "GradientSync: ", rows, " rows of ", total);
    scale_ = static_cast<float>(static_cast<double>(rows) / static_cast<double>(total));
    std::fill(filled_.begin(), filled_.end(), false);
    for (Bucket& b : buckets_) b.waiting = static_cast<int64_t>(b.params.size());
    active_ = true;
}

// The parameter's scaled gradient (zeros without one) and its flag into its bucket, with the device's kernels.
void GradientSync::fill(size_t k) {
    Bucket& b = buckets_[bucket_of_[k]];
    const Tensor& p = params_[k].second;
    auto& be = kernels::backend_for(device_);
    float* dst = b.data.data<float>() + offset_of_[k];
    const int64_t n = p.numel();
    const Tensor g = p.grad();
    if (g.defined()) {
        GB_CHECK(g.device() == device_ && g.numel() == n, "data-parallel training: the gradient of '",
                 params_[k].first, "' is not a tensor of its parameter's size on ", device_.str());
        be.scale(n, scale_, g.data<float>(), dst);
    } else {
        be.fill(n, 0.f, dst);
    }
    be.fill(1, g.defined() ? 1.f : 0.f, b.data.data<float>() + flag_of_[k]);
    filled_[k] = true;
    if (--b.waiting == 0) start(b);
}

void GradientSync::start(Bucket& b) {
    b.pending = comm_.start_allreduce_sum(b.data.data<float>(), b.size, device_);
}

void GradientSync::ready(TensorImpl& leaf) {
    if (!active_) return;
    const auto it = index_.find(&leaf);
    if (it == index_.end() || filled_[it->second]) return;
    fill(it->second);
}

void GradientSync::finish() {
    GB_CHECK(active_, "GradientSync: finish() without begin()");
    active_ = false;
    // In bucket order, as every rank starts them: collectives must be started in the same order everywhere.
    for (Bucket& b : buckets_)
        for (size_t k : b.params)
            if (!filled_[k]) fill(k);
    auto& be = kernels::backend_for(device_);
    for (Bucket& b : buckets_) {
        b.pending.wait();
        // The flags: which parameters some rank had a gradient for.
        const int64_t values = b.size - static_cast<int64_t>(b.params.size());
        const std::vector<float> flags =
            b.data.narrow(values, static_cast<int64_t>(b.params.size())).to(Device::cpu()).to_vector<float>();
        for (size_t k : b.params) {
            Tensor& p = params_[k].second;
            if (flags[flag_of_[k] - static_cast<size_t>(values)] == 0.f) continue;  // no rank had a gradient
            Tensor g = p.grad();
            if (!g.defined()) {
                g = Tensor(p.shape(), DType::Float32, p.device());
                p.set_grad(g);
            }
            be.scale(p.numel(), 1.f, b.data.data<float>() + offset_of_[k], g.data<float>());  // a copy (x 1 is exact)
        }
    }
}

std::string digest(const NamedTensors& tensors) {
    uLong crc = crc32(0L, Z_NULL, 0);
    for (const auto& [name, t] : tensors) {
        const std::string head = name + ":" + t.shape().str() + ";";
        crc = crc32(crc, reinterpret_cast<const Bytef*>(head.data()), static_cast<uInt>(head.size()));
        if (!t.defined() || t.numel() == 0) continue;
        const Tensor c = t.to(Device::cpu());
        const auto* bytes = static_cast<const Bytef*>(c.raw_data());
        const size_t size = c.nbytes();
        for (size_t i = 0; i < size; i += size_t{1} << 30)
            crc = crc32(crc, bytes + i, static_cast<uInt>(std::min(size - i, size_t{1} << 30)));
    }
    std::ostringstream s;
    s << std::hex << crc;
    return s.str();
}

void check_same_on_all_ranks(const dist::Comm& comm, const NamedTensors& tensors, const std::string& what) {
    if (comm.size() == 1) return;
    const std::vector<std::string> all = comm.allgather(digest(tensors));
    std::string differ;
    for (size_t r = 1; r < all.size(); ++r)
        if (all[r] != all[0]) differ += (differ.empty() ? "" : ", ") + std::to_string(r);
    GB_CHECK(differ.empty(), what, " differ between the ranks: rank(s) ", differ, " do not match rank 0 (digests ",
             all[0], " vs ", all[std::stoul(differ.substr(0, differ.find(',')))], "). The ranks must start from the "
             "same files and run the same program; a drift during training is a bug, please report it");
}

void average_buffers(const dist::Comm& comm, layers::Layer& model) {
    if (comm.size() == 1) return;
    const float inv = 1.f / static_cast<float>(comm.size());
    for (auto& [name, t] : model.named_buffers()) {
        if (t.dtype() != DType::Float32 || t.numel() == 0) continue;
        float* p = t.data<float>();
        comm.start_allreduce_sum(p, t.numel(), t.device()).wait();
        kernels::backend_for(t.device()).scale(t.numel(), inv, p, p);
        t.bump_version();
    }
}

}  // namespace gb::train
