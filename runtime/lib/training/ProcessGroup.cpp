//===- ProcessGroup.cpp - the processes of one data-parallel job -----------===//
//
// MPI (OpenMPI from Debian) when CMake found it (ATTNEDIT_HAVE_MPI), nothing
// otherwise. Only the main thread calls MPI (MPI_THREAD_FUNNELED): lanes run
// on threads, but the collectives come after they have joined.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Runtime/Training/ProcessGroup.h"
#include "attnedit/Frontend/Error.h"

#include "llvm/Support/FormatVariadic.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <thread>

#ifdef ATTNEDIT_HAVE_MPI
// The C API only: MPI's deprecated C++ bindings warn under our flags.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

using namespace mlir;
using namespace mlir::attnedit;

/// Set by the launcher in every process it starts: OpenMPI's mpirun
/// (OMPI_*), and PMIx / PMI launchers (srun, MPICH's hydra).
static bool launchedByMpirun() {
  for (const char *name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"})
    if (std::getenv(name))
      return true;
  return false;
}

/// ATTNEDIT_MPI_TIMEOUT in seconds. Checked with or without mpirun, as every
/// other variable is: a bad value found only at the job's launch is found late.
static llvm::Expected<double> mpiTimeout() {
  double timeout = 1800;
  if (const char *env = std::getenv("ATTNEDIT_MPI_TIMEOUT"))
    if (llvm::StringRef(env).trim().getAsDouble(timeout) || !(timeout >= 0) ||
        !std::isfinite(timeout))
      return makeError(llvm::Twine("ATTNEDIT_MPI_TIMEOUT='") + env +
                       "' is not a number of seconds (0 = no limit)");
  return timeout;
}

#ifdef ATTNEDIT_HAVE_MPI
namespace {
llvm::Error mpiError(const char *what, int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  return makeError(llvm::formatv("MPI {0} failed: {1} (a rank of the job died or the "
                                 "network failed)",
                                 what, llvm::StringRef(text, length))
                       .str());
}

bool fitsInt(size_t n) { return n <= (size_t)std::numeric_limits<int>::max(); }

/// Ends this process when a collective waits longer than ATTNEDIT_MPI_TIMEOUT
/// seconds (default 1800; 0 = never): OpenMPI ends the job when a rank dies,
/// but not when one hangs (stopped, deadlocked, a partitioned network), and
/// then the others would wait forever. Exiting non-zero makes mpirun stop
/// every rank. A thread of its own, since the main thread is inside MPI.
class Watchdog {
public:
  Watchdog(int rank, double limit) : rank(rank), limit(limit) {
    if (limit > 0)
      thread = std::thread([this] { watch(); });
  }
  ~Watchdog() {
    stop = true;
    if (thread.joinable())
      thread.join();
  }
  /// Times the collective `what` until the guard goes out of scope.
  struct Guard {
    Watchdog &dog;
    Guard(Watchdog &dog, const char *what) : dog(dog) {
      dog.what = what;
      dog.since = now();
    }
    ~Guard() { dog.since = 0; }
  };

private:
  static int64_t now() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  void watch() {
    while (!stop) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      int64_t start = since;
      if (start && now() - start > limit * 1000) {
        // The other ranks' log lines already start with their rank.
        spdlog::error("{}the {} has waited {} s for the other ranks "
                      "(ATTNEDIT_MPI_TIMEOUT): a rank hangs or is unreachable, or rank 0 writes a "
                      "checkpoint slower than that; ending the job",
                      rank == 0 ? "rank 0: " : "", what.load(), limit);
        std::_Exit(1);
      }
    }
  }
  int rank;
  double limit;
  std::atomic<int64_t> since{0};
  std::atomic<const char *> what{""};
  std::atomic<bool> stop{false};
  std::thread thread;
};

class MpiProcessGroup : public ProcessGroup {
public:
  explicit MpiProcessGroup(double timeout) {
    MPI_Comm_rank(MPI_COMM_WORLD, &myRank);
    MPI_Comm_size(MPI_COMM_WORLD, &numRanks);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, myRank, MPI_INFO_NULL, &local);
    MPI_Comm_size(local, &numLocal);
    MPI_Comm_free(&local);
    watchdog = std::make_unique<Watchdog>(myRank, timeout);
  }

  llvm::Error sumLanes(llvm::ArrayRef<const float *> owned, size_t lanes, size_t n,
                       float *out) override {
    size_t N = numRanks, r = myRank;
    auto lanesOf = [&](size_t s) { return s < lanes ? (lanes - s + N - 1) / N : 0; };
    if (owned.size() != lanesOf(r))
      return makeError("internal error: sumLanes got the wrong number of lanes");
    // Slice c of the vector is summed on rank c.
    auto begin = [&](size_t c) { return n * c / N; };
    auto length = [&](size_t c) { return begin(c + 1) - begin(c); };
    if (!fitsInt(lanes * (n / N + 1)) || !fitsInt(n))
      return makeError(llvm::formatv("{0} lanes of {1} gradient values exceed MPI's int "
                                     "counts",
                                     lanes, n)
                           .str());
    std::vector<int> sendCounts(N), sendDispls(N), recvCounts(N), recvDispls(N);
    size_t sent = 0, received = 0;
    for (size_t c = 0; c < N; ++c) {
      sendCounts[c] = owned.size() * length(c);
      sendDispls[c] = sent;
      sent += sendCounts[c];
      recvCounts[c] = lanesOf(c) * length(r);
      recvDispls[c] = received;
      received += recvCounts[c];
    }
    sendBuffer.resize(sent);
    receiveBuffer.resize(received);
    for (size_t c = 0; c < N; ++c)
      for (size_t i = 0; i < owned.size(); ++i)
        std::copy_n(owned[i] + begin(c), length(c),
                    sendBuffer.data() + sendDispls[c] + i * length(c));
    Watchdog::Guard guard(*watchdog, "MPI all-to-all of the gradient lanes");
    if (int e = MPI_Alltoallv(sendBuffer.data(), sendCounts.data(), sendDispls.data(),
                              MPI_FLOAT, receiveBuffer.data(), recvCounts.data(),
                              recvDispls.data(), MPI_FLOAT, MPI_COMM_WORLD))
      return mpiError("all-to-all of the gradient lanes", e);
    // Lane l came from rank l % N, as its (l / N)-th lane.
    float *mine = out + begin(r);
    size_t len = length(r);
    std::fill_n(mine, len, 0.0f);
    for (size_t l = 0; l < lanes; ++l) {
      const float *lane = receiveBuffer.data() + recvDispls[l % N] + (l / N) * len;
      for (size_t j = 0; j < len; ++j)
        mine[j] += lane[j];
    }
    std::vector<int> counts(N), displs(N);
    for (size_t c = 0; c < N; ++c) {
      counts[c] = length(c);
      displs[c] = begin(c);
    }
    if (int e = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, out, counts.data(),
                               displs.data(), MPI_FLOAT, MPI_COMM_WORLD))
      return mpiError("all-gather of the summed gradient", e);
    return llvm::Error::success();
  }

  llvm::Error maxInPlace(llvm::MutableArrayRef<double> values) override {
    Watchdog::Guard guard(*watchdog, "MPI all-reduce (max) of the losses");
    if (int e = MPI_Allreduce(MPI_IN_PLACE, values.data(), values.size(), MPI_DOUBLE, MPI_MAX,
                              MPI_COMM_WORLD))
      return mpiError("all-reduce (max) of the losses", e);
    return llvm::Error::success();
  }

  llvm::Error broadcast(float *data, size_t n, int root) override {
    if (!fitsInt(n))
      return makeError(llvm::formatv("a tensor of {0} values exceeds MPI's int counts", n)
                           .str());
    Watchdog::Guard guard(*watchdog, "MPI broadcast of a layer's weights");
    if (int e = MPI_Bcast(data, n, MPI_FLOAT, root, MPI_COMM_WORLD))
      return mpiError("broadcast of a layer's weights", e);
    return llvm::Error::success();
  }

  /// Untimed: it waits while rank 0 exports the model, which may be long.
  llvm::Error barrier() override {
    if (int e = MPI_Barrier(MPI_COMM_WORLD))
      return mpiError("barrier", e);
    return llvm::Error::success();
  }

  llvm::Expected<std::vector<double>> gather(llvm::ArrayRef<double> mine,
                                             const char *what) override {
    std::string collective = std::string("all-gather of ") + what;
    // The watchdog reads the label from its own thread, while this waits.
    gatherLabel = "MPI " + collective;
    Watchdog::Guard guard(*watchdog, gatherLabel.c_str());
    std::vector<double> all(mine.size() * numRanks);
    if (int e = MPI_Allgather(mine.data(), mine.size(), MPI_DOUBLE, all.data(), mine.size(),
                              MPI_DOUBLE, MPI_COMM_WORLD))
      return mpiError(collective.c_str(), e);
    return all;
  }

  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code); // MPI_Abort does not return; this says so to the compiler
  }

private:
  std::vector<float> sendBuffer, receiveBuffer;
  std::string gatherLabel;
  std::unique_ptr<Watchdog> watchdog;
};

std::unique_ptr<MpiProcessGroup> world;
} // namespace

llvm::Error attnedit::initProcessGroup(int &argc, char **&argv) {
  llvm::Expected<double> timeout = mpiTimeout();
  if (!timeout)
    return timeout.takeError();
  if (!launchedByMpirun() || world)
    return llvm::Error::success();
  int provided = 0;
  if (int e = MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided))
    return mpiError("initialisation", e);
  // Errors come back as codes, so that a failed collective is reported with
  // what it was doing (and then the job aborted) instead of MPI's generic
  // abort.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  world = std::make_unique<MpiProcessGroup>(*timeout);
  return llvm::Error::success();
}

ProcessGroup *attnedit::processGroup() { return world.get(); }

void attnedit::finalizeProcessGroup() {
  if (!world)
    return;
  world.reset();
  MPI_Finalize();
}

#else // !ATTNEDIT_HAVE_MPI

llvm::Error attnedit::initProcessGroup(int &, char **&) {
  if (llvm::Expected<double> timeout = mpiTimeout(); !timeout)
    return timeout.takeError();
  if (launchedByMpirun())
    return makeError("started by mpirun, but this attnedit-run was built without MPI: each "
                     "process would train alone. Install libopenmpi-dev and rebuild "
                     "(scripts/setup.sh), or run without mpirun");
  return llvm::Error::success();
}
ProcessGroup *attnedit::processGroup() { return nullptr; }
void attnedit::finalizeProcessGroup() {}

#endif // ATTNEDIT_HAVE_MPI
