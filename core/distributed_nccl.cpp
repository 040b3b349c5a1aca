// core/distributed.h's device collective over NCCL, in CUDA builds with MPI and NCCL (the CUDA toolkit's
// libnccl). One NCCL communicator per (MPI communicator, device), made on first use: rank 0's ncclUniqueId is
// broadcast over MPI, then ncclCommInitRank. Sums run in place on the legacy default stream, where every
// kernel of the CUDA backend runs, so a bucket's sum follows the kernels that wrote its gradients and the
// kernels after wait() see the result. register_nccl_backend() is called with the build's backends
// (kernels/registry.h; CMakeLists.txt lists "nccl" among them in such builds).
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include <map>
#include <mutex>
#include <utility>

#include "core/distributed.h"
#include "core/error.h"

namespace gb::dist {

namespace {

void check_nccl(ncclResult_t r, const char* what) {
    GB_CHECK(r == ncclSuccess, "NCCL ", what, " failed: ", ncclGetErrorString(r));
}

void check_cuda(cudaError_t e, const char* what) {
    GB_CHECK(e == cudaSuccess, "CUDA ", what, " failed: ", cudaGetErrorString(e));
}

ncclComm_t comm_for(MPI_Comm mpi, int device) {
    static std::mutex mutex;
    static std::map<std::pair<MPI_Comm, int>, ncclComm_t> comms;
    std::lock_guard<std::mutex> lock(mutex);
    const auto key = std::make_pair(mpi, device);
    if (auto it = comms.find(key); it != comms.end()) return it->second;
    int rank = 0, size = 1;
    MPI_Comm_rank(mpi, &rank);
    MPI_Comm_size(mpi, &size);
    ncclUniqueId id{};
    if (rank == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    GB_CHECK(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, mpi) == MPI_SUCCESS, "MPI_Bcast of the NCCL id failed");
    check_cuda(cudaSetDevice(device), "cudaSetDevice");
    ncclComm_t c = nullptr;
    check_nccl(ncclCommInitRank(&c, size, id, rank), "ncclCommInitRank");
    comms[key] = c;
    return c;
}

void start(float* data, int64_t n, int device, const void* mpi_comm) {
    const MPI_Comm mpi = *static_cast<const MPI_Comm*>(mpi_comm);
    const ncclComm_t comm = comm_for(mpi, device);
    check_cuda(cudaSetDevice(device), "cudaSetDevice");
    check_nccl(ncclAllReduce(data, data, static_cast<size_t>(n), ncclFloat, ncclSum, comm, cudaStreamLegacy),
               "ncclAllReduce");
}

void wait(int device) {
    check_cuda(cudaSetDevice(device), "cudaSetDevice");
    check_cuda(cudaStreamSynchronize(cudaStreamLegacy), "cudaStreamSynchronize after ncclAllReduce");
}

}  // namespace

}  // namespace gb::dist

namespace gb::kernels {

void register_nccl_backend() { dist::set_device_collective(dist::DeviceCollective{dist::start, dist::wait}); }

}  // namespace gb::kernels
