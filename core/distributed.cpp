// core/distributed.h over MPI (GB_WITH_MPI), or one process. Only the C API of MPI is used.
#include "core/distributed.h"

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/cuda_runtime.h"
#include "core/error.h"

#ifdef GB_WITH_MPI
#include <mpi.h>
#endif

namespace gb::dist {

namespace {

#ifdef GB_WITH_MPI
// CRC-32 and size of this program's executable: the same program on every rank.
std::string program_identity() {
    std::ifstream in("/proc/self/exe", std::ios::binary);
    if (!in) return "unknown";
    std::vector<char> buf(1 << 20);
    uLong crc = crc32(0L, Z_NULL, 0);
    uint64_t size = 0;
    while (in) {
        in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
        const std::streamsize n = in.gcount();
        if (n <= 0) break;
        crc = crc32(crc, reinterpret_cast<const Bytef*>(buf.data()), static_cast<uInt>(n));
        size += static_cast<uint64_t>(n);
    }
    std::ostringstream s;
    s << std::hex << crc << std::dec << "/" << size << " bytes, glassbox " << GB_VERSION;
    return s.str();
}
#endif

bool g_initialized = false;

}  // namespace

bool launched_by_mpi() {
    for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMI_RANK", "PMIX_RANK", "MPI_LOCALNRANKS"})
        if (const char* s = std::getenv(v); s && *s) return true;
    return false;
}

bool initialized() { return g_initialized; }

Shard shard_of(int64_t total, int rank, int ranks) {
    GB_CHECK(ranks > 0 && rank >= 0 && rank < ranks && total >= 0, "shard_of: rank ", rank, " of ", ranks, " for ",
             total, " rows");
    const int64_t base = total / ranks, extra = total % ranks;
    return {rank * base + std::min<int64_t>(rank, extra), base + (rank < extra ? 1 : 0)};
}

std::string rank_prefix() {
    const Comm& w = world();
    return w.size() > 1 ? "rank " + std::to_string(w.rank()) + " of " + std::to_string(w.size()) + ": " : "";
}

#ifdef GB_WITH_MPI

struct Comm::Handle {
    MPI_Comm comm;
};

struct Pending::Impl {
    std::vector<MPI_Request> requests;
    int device = -1;  // a device collective in flight on this CUDA device (DeviceCollective::wait)
};

namespace {

const Comm::Handle g_world{MPI_COMM_WORLD};
const Comm::Handle g_self{MPI_COMM_SELF};

// MPI counts are int: larger buffers go in pieces.
constexpr int64_t kChunk = INT_MAX / 2;

void check_mpi(int rc, const char* what) {
    if (rc == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    GB_FAIL("MPI ", what, " failed: ", std::string(text, static_cast<size_t>(len)));
}

template <class T>
void allreduce(const Comm::Handle* h, T* data, int64_t n, MPI_Datatype type, MPI_Op op) {
    if (!h) return;
    for (int64_t i = 0; i < n; i += kChunk)
        check_mpi(MPI_Allreduce(MPI_IN_PLACE, data + i, static_cast<int>(std::min(kChunk, n - i)), type, op, h->comm),
                  "MPI_Allreduce");
}

}  // namespace

bool built_with_mpi() { return true; }

void init(int* argc, char*** argv) {
    if (g_initialized || !launched_by_mpi()) return;
    int already = 0;
    MPI_Initialized(&already);
    if (!already) {
        int provided = 0;
        check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
        std::atexit(finalize);
    }
    g_initialized = true;
    // Errors come back as return codes (check_mpi turns them into gb::Error, which fail_job reports).
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    const std::vector<std::string> ids = world().allgather(program_identity());
    std::string differ;
    for (size_t r = 1; r < ids.size(); ++r)
        if (ids[r] != ids[0]) differ += "\n  rank " + std::to_string(r) + ": " + ids[r];
    GB_CHECK(differ.empty(), "the ranks of this job run different programs (rank 0: ", ids[0], ")", differ,
             "\nrun the same glassbox build on every node");
}

void finalize() {
    if (!g_initialized) return;
    int done = 0;
    MPI_Finalized(&done);
    if (!done) MPI_Finalize();
    g_initialized = false;
}

const Comm& world() {
    static Comm one(nullptr, 0, 1);
    if (!g_initialized) return one;
    static const Comm w = [] {
        int r = 0, s = 1;
        MPI_Comm_rank(MPI_COMM_WORLD, &r);
        MPI_Comm_size(MPI_COMM_WORLD, &s);
        return Comm(&g_world, r, s);
    }();
    return w;
}

const Comm& self() {
    static Comm one(nullptr, 0, 1);
    static Comm s(&g_self, 0, 1);
    return g_initialized ? s : one;
}

void Comm::allreduce_sum(float* data, int64_t n) const { allreduce(h_, data, n, MPI_FLOAT, MPI_SUM); }
void Comm::allreduce_sum(double* data, int64_t n) const { allreduce(h_, data, n, MPI_DOUBLE, MPI_SUM); }
void Comm::allreduce_sum(int64_t* data, int64_t n) const { allreduce(h_, data, n, MPI_INT64_T, MPI_SUM); }
void Comm::allreduce_max(uint64_t* data, int64_t n) const { allreduce(h_, data, n, MPI_UINT64_T, MPI_MAX); }

Pending Comm::start_allreduce_sum(float* data, int64_t n) const {
    Pending p;
    if (!h_ || size_ == 1) return p;
    p.impl_ = std::make_unique<Pending::Impl>();
    for (int64_t i = 0; i < n; i += kChunk) {
        MPI_Request req;
        check_mpi(MPI_Iallreduce(MPI_IN_PLACE, data + i, static_cast<int>(std::min(kChunk, n - i)), MPI_FLOAT, MPI_SUM,
                                 h_->comm, &req),
                  "MPI_Iallreduce");
        p.impl_->requests.push_back(req);
    }
    return p;
}

namespace {
DeviceCollective g_device_collective;
}  // namespace

void set_device_collective(DeviceCollective c) { g_device_collective = c; }

Pending Comm::start_allreduce_sum(float* data, int64_t n, Device device) const {
    if (device.is_cpu()) return start_allreduce_sum(data, n);
    Pending p;
    if (!h_ || size_ == 1 || n == 0) return p;
    if (g_device_collective.start) {
        g_device_collective.start(data, n, device.index(), &h_->comm);
        p.impl_ = std::make_unique<Pending::Impl>();
        p.impl_->device = device.index();
        return p;
    }
    // Through host memory (blocking: the sum is done when this returns).
    std::vector<float> host(static_cast<size_t>(n));
    const size_t bytes = host.size() * sizeof(float);
    cuda::memcpy_d2h(host.data(), data, bytes, device.index());
    allreduce_sum(host.data(), n);
    cuda::memcpy_h2d(data, host.data(), bytes, device.index());
    return p;
}

std::vector<std::string> Comm::allgather(const std::string& mine) const {
    if (!h_ || size_ == 1) return {mine};
    GB_CHECK(mine.size() < static_cast<size_t>(INT_MAX), "allgather: a string of ", mine.size(), " bytes");
    int len = static_cast<int>(mine.size());
    std::vector<int> lens(static_cast<size_t>(size_)), offsets(static_cast<size_t>(size_));
    check_mpi(MPI_Allgather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, h_->comm), "MPI_Allgather");
    int64_t total = 0;
    for (int r = 0; r < size_; ++r) {
        offsets[static_cast<size_t>(r)] = static_cast<int>(total);
        total += lens[static_cast<size_t>(r)];
    }
    GB_CHECK(total < INT_MAX, "allgather: ", total, " bytes in all");
    std::string all(static_cast<size_t>(total), '\0');
    check_mpi(MPI_Allgatherv(mine.data(), len, MPI_CHAR, all.data(), lens.data(), offsets.data(), MPI_CHAR, h_->comm),
              "MPI_Allgatherv");
    std::vector<std::string> out;
    for (int r = 0; r < size_; ++r)
        out.push_back(all.substr(static_cast<size_t>(offsets[static_cast<size_t>(r)]),
                                 static_cast<size_t>(lens[static_cast<size_t>(r)])));
    return out;
}

std::string Comm::broadcast(const std::string& s, int root) const {
    if (!h_ || size_ == 1) return s;
    uint64_t len = rank_ == root ? s.size() : 0;
    check_mpi(MPI_Bcast(&len, 1, MPI_UINT64_T, root, h_->comm), "MPI_Bcast");
    GB_CHECK(len < static_cast<uint64_t>(INT_MAX), "broadcast: a string of ", len, " bytes");
    std::string out = rank_ == root ? s : std::string(static_cast<size_t>(len), '\0');
    check_mpi(MPI_Bcast(out.data(), static_cast<int>(len), MPI_CHAR, root, h_->comm), "MPI_Bcast");
    return out;
}

void Comm::barrier() const {
    if (h_ && size_ > 1) check_mpi(MPI_Barrier(h_->comm), "MPI_Barrier");
}

void Pending::wait() {
    if (!impl_) return;
    std::vector<MPI_Request> reqs = std::move(impl_->requests);
    const int device = impl_->device;
    impl_.reset();
    if (device >= 0) g_device_collective.wait(device);
    check_mpi(MPI_Waitall(static_cast<int>(reqs.size()), reqs.data(), MPI_STATUSES_IGNORE), "MPI_Waitall");
}

void fail_job(const std::string& message, int code) {
    if (!g_initialized) return;
    // stdio, not std::cerr: the CLI silences the streams of ranks other than 0.
    std::fprintf(stderr, "glassbox: error: %s%s\n", rank_prefix().c_str(), message.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
}

#else  // one process

struct Comm::Handle {};
struct Pending::Impl {};

bool built_with_mpi() { return false; }

void init(int*, char***) {
    GB_CHECK(!launched_by_mpi() || std::getenv("GB_IGNORE_MPI_LAUNCHER"),
             "this process was started by an MPI launcher, but this glassbox was built without MPI: every rank "
             "would run the whole job on its own. Build with -DGB_MPI=ON (OpenMPI: apt-get install "
             "libopenmpi-dev), or run without mpirun (GB_IGNORE_MPI_LAUNCHER=1 accepts it)");
}
void finalize() {}

const Comm& world() {
    static Comm one(nullptr, 0, 1);
    return one;
}
const Comm& self() { return world(); }

void Comm::allreduce_sum(float*, int64_t) const {}
void Comm::allreduce_sum(double*, int64_t) const {}
void Comm::allreduce_sum(int64_t*, int64_t) const {}
void Comm::allreduce_max(uint64_t*, int64_t) const {}
Pending Comm::start_allreduce_sum(float*, int64_t) const { return Pending(); }
Pending Comm::start_allreduce_sum(float*, int64_t, Device) const { return Pending(); }
void set_device_collective(DeviceCollective) {}
std::vector<std::string> Comm::allgather(const std::string& mine) const { return {mine}; }
std::string Comm::broadcast(const std::string& s, int) const { return s; }
void Comm::barrier() const {}
void Pending::wait() { impl_.reset(); }
void fail_job(const std::string&, int) {}

#endif

Pending::Pending() = default;
Pending::Pending(Pending&&) noexcept = default;
Pending& Pending::operator=(Pending&& o) noexcept {
    if (this != &o) {
        if (impl_) wait();
        impl_ = std::move(o.impl_);
    }
    return *this;
}
Pending::~Pending() {
    if (!impl_) return;
    try {
        wait();
    } catch (...) {
        // A destructor cannot report; the job's next collective will.
    }
}
bool Pending::active() const { return impl_ != nullptr; }

}  // namespace gb::dist
