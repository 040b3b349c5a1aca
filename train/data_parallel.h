// Data-parallel training over the ranks of a dist::Comm (core/distributed.h): every rank holds the whole model
// and optimizer, takes its shard of each global batch, and the ranks average their gradients before every step,
// so parameters and optimizer state stay identical on every rank (checked: check_same_on_all_ranks).
//
// The gradient of the global batch's mean loss is sum_r (n_r / B) g_r, g_r being rank r's gradient of the mean
// over its n_r rows: GradientSync scales each gradient by n_r / B into a bucket and sums the buckets with an
// allreduce, started (nonblocking) as soon as the backward pass has completed every gradient in the bucket
// (autograd::RunOptions::leaf_done), so communication overlaps the rest of the backward. Buckets hold
// parameters in reverse order (the order the backward completes them), about bucket_bytes each, on the
// parameters' device: CPU buckets are summed over MPI, CUDA buckets through NCCL where the build has it
// (dist::Comm::start_allreduce_sum with a device); the bucket logic is the same for both.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "../core/distributed.h"
#include "../core/tensor.h"
#include "optimizer.h"

namespace gb::layers {
class Layer;
}

namespace gb::train {

class GradientSync {
public:
    GradientSync(const dist::Comm& comm, NamedTensors params, int64_t bucket_bytes = int64_t{1} << 20);

    // Before a backward: this rank's gradients will be of the mean over `rows` of a batch of `total` rows.
    void begin(int64_t rows, int64_t total);
    // A parameter's gradient is complete (pass as autograd's leaf_done); other leaves are ignored.
    void ready(TensorImpl& leaf);
    // Starts the buckets not started yet (a rank without rows has no gradients: it adds zeros), waits for all,
    // and sets each parameter's .grad to the average. A parameter gets a gradient when some rank had one.
    void finish();

    int64_t buckets() const { return static_cast<int64_t>(buckets_.size()); }

private:
    struct Bucket {
        std::vector<size_t> params;  // indices into params_
        int64_t size = 0;            // floats: each parameter's values, then one flag per parameter (1: a gradient)
        Tensor data;                 // [size] on the parameters' device
        int64_t waiting = 0;         // parameters not ready yet in this step
        dist::Pending pending;
    };
    void fill(size_t index);
    void start(Bucket& b);

    const dist::Comm& comm_;
    NamedTensors params_;
    Device device_;
    std::vector<Bucket> buckets_;
    std::vector<size_t> bucket_of_, offset_of_, flag_of_;
    std::vector<bool> filled_;
    std::unordered_map<const TensorImpl*, size_t> index_;
    float scale_ = 1.f;
    bool active_ = false;
};

// A digest (CRC-32 per tensor, names and shapes included) of named tensors, the same on every machine for
// the same bits.
std::string digest(const NamedTensors& tensors);
// gb::Error on every rank when some rank's tensors differ from rank 0's (`what` names them and the moment).
void check_same_on_all_ranks(const dist::Comm& comm, const NamedTensors& tensors, const std::string& what);
// Running statistics (BatchNorm's buffers: every state tensor that is not a parameter) averaged over the ranks,
// which saw different rows: the same on every rank afterwards.
void average_buffers(const dist::Comm& comm, layers::Layer& model);

}  // namespace gb::train
