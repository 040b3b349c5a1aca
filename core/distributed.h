// The processes of one job and the collectives between them: MPI underneath (OpenMPI, MPICH; started by
// mpirun, mpiexec or srun), never home-made networking. A build without MPI (GB_MPI=OFF, or none found), or a
// program not started by an MPI launcher, is one process: world() has size 1 and every collective is a copy.
//
//   dist::init(&argc, &argv);          // the program's first line (the CLI's main); idempotent
//   const dist::Comm& w = dist::world();
//   w.allreduce_sum(grad, n);          // in place, the same result on every rank
//   dist::Pending p = w.start_allreduce_sum(bucket, n);  ... p.wait();
//
// Collectives must be called by every rank of the communicator in the same order (MPI's rule); a rank that
// fails calls fail_job (the CLI does), which prints its message and ends every rank (MPI_Abort), so a job never
// hangs on a dead rank. MPI runs in MPI_THREAD_FUNNELED mode: collectives from the thread that called init.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "device.h"

namespace gb::dist {

// Whether this build has MPI (GB_MPI found one).
bool built_with_mpi();
// Whether this process was started by an MPI launcher (its environment says so: OMPI_COMM_WORLD_SIZE,
// PMI_SIZE, PMIX_RANK ...). Without MPI in the build, such a process is refused by init (it would run the
// whole job once per rank).
bool launched_by_mpi();
// Starts MPI when the build has it and a launcher started this process; otherwise does nothing (one
// process). Then checks that every rank runs the same program (the executable's contents hash the same):
// gb::Error naming the ranks that differ. Idempotent; finalize() (or exit, atexit) ends MPI.
void init(int* argc, char*** argv);
void finalize();
bool initialized();  // init() started MPI

// A nonblocking collective in flight; wait() completes it (the destructor waits too).
class Pending {
public:
    Pending();
    Pending(Pending&&) noexcept;
    Pending& operator=(Pending&&) noexcept;
    ~Pending();
    void wait();
    bool active() const;
    struct Impl;

private:
    friend class Comm;
    std::unique_ptr<Impl> impl_;
};

// A group of ranks: world() (every process of the job) or self() (this process alone, as a run with P = 1).
class Comm {
public:
    int rank() const { return rank_; }
    int size() const { return size_; }
    bool is_root() const { return rank_ == 0; }

    // data[i] = sum over ranks of data[i], the same bits on every rank.
    void allreduce_sum(float* data, int64_t n) const;
    void allreduce_sum(double* data, int64_t n) const;
    void allreduce_sum(int64_t* data, int64_t n) const;
    void allreduce_max(uint64_t* data, int64_t n) const;
    // The same sum, started now and completed by Pending::wait (data must stay alive and untouched till then).
    Pending start_allreduce_sum(float* data, int64_t n) const;
    // The same on `device`'s memory: in CUDA builds with NCCL, ncclAllReduce on the default stream (the stream
    // every kernel runs on) with a communicator made on first use; elsewhere (no NCCL, the emulated device of
    // the tests) through host memory: copied out, summed over MPI, copied back. CPU memory: the call above.
    Pending start_allreduce_sum(float* data, int64_t n, Device device) const;
    // Every rank's string, in rank order.
    std::vector<std::string> allgather(const std::string& mine) const;
    // root's string on every rank.
    std::string broadcast(const std::string& s, int root = 0) const;
    void barrier() const;

    struct Handle;  // the MPI communicator (null for a one-process group)

private:
    friend const Comm& world();
    friend const Comm& self();
    Comm(const Handle* h, int rank, int size) : h_(h), rank_(rank), size_(size) {}
    const Handle* h_;
    int rank_, size_;
};

const Comm& world();
const Comm& self();

// Rows [first, first + count) of `total` for rank `rank` of `ranks`: contiguous, in rank order, the first
// total % ranks ranks one row more; concatenated in rank order they are all the rows.
struct Shard {
    int64_t first = 0, count = 0;
};
Shard shard_of(int64_t total, int rank, int ranks);

// The device collective of CUDA builds with NCCL, registered by that build (core/distributed_nccl.cpp) when its
// backends are (kernels/registry.h); without one, device sums go through host memory.
struct DeviceCollective {
    // Starts the sum of n floats at data on CUDA device `device` over the MPI communicator *mpi_comm.
    void (*start)(float* data, int64_t n, int device, const void* mpi_comm) = nullptr;
    void (*wait)(int device) = nullptr;  // completes every sum started on the device
};
void set_device_collective(DeviceCollective c);

// "rank R of P: " in a job of more than one process, else "".
std::string rank_prefix();
// Ends the job because of `message`: printed to stderr with the rank, then MPI_Abort on every rank (the exit
// status `code`). Without MPI running: prints nothing and returns, so the caller reports as it always does.
void fail_job(const std::string& message, int code);

}  // namespace gb::dist
