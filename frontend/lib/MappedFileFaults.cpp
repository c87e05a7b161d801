//===- MappedFileFaults.cpp - a clear error for a mapped file that shrank --===//
//
// The handler may only use async-signal-safe calls: it reads a fixed table
// (entries claimed under a mutex, published with release stores) and
// writes with write(2).
//
//===----------------------------------------------------------------------===//

#include "MappedFileFaults.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>
#include <unistd.h>

namespace {

struct Watched {
  std::atomic<const char *> begin{nullptr};
  size_t size = 0;
  char path[1024] = {};
};

// More weight files than a job maps at once (a sharded 70B model has ~30).
constexpr int kWatched = 256;
Watched watched[kWatched];
struct sigaction previous;

void writeAll(const char *text) {
  size_t left = std::strlen(text);
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, text, left);
    if (n <= 0)
      return;
    text += n;
    left -= n;
  }
}

void onBusError(int, siginfo_t *info, void *) {
  const char *address = static_cast<const char *>(info->si_addr);
  for (Watched &w : watched) {
    const char *begin = w.begin.load(std::memory_order_acquire);
    if (!begin || address < begin || address >= begin + w.size)
      continue;
    // Threads reading the same pages fault together: one reports.
    static std::atomic<bool> reporting{false};
    if (reporting.exchange(true))
      for (;;)
        ::pause();
    writeAll(program_invocation_short_name);
    writeAll(": error: ");
    writeAll(w.path);
    writeAll(": the file shrank while this process read it (truncated or rewritten by "
             "another process); rerun once it is complete\n");
    ::_exit(1);
  }
  // Not a weight file's fault: returning re-runs the faulting access under
  // the disposition installed before this handler.
  ::sigaction(SIGBUS, &previous, nullptr);
}

} // namespace

void mlir::attnedit::watchMapping(const void *begin, size_t size, llvm::StringRef path) {
  static std::once_flag installed;
  std::call_once(installed, [] {
    struct sigaction action = {};
    action.sa_sigaction = onBusError;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGBUS, &action, &previous);
  });
  static std::mutex claiming;
  std::lock_guard<std::mutex> lock(claiming);
  for (Watched &w : watched) {
    if (w.begin.load(std::memory_order_relaxed))
      continue;
    w.size = size;
    size_t length = std::min(path.size(), sizeof(w.path) - 1);
    std::memcpy(w.path, path.data(), length);
    w.path[length] = '\0';
    w.begin.store(static_cast<const char *>(begin), std::memory_order_release);
    return;
  }
  // A full table: this file's fault is reported as the system reports it.
}

void mlir::attnedit::unwatchMapping(const void *begin) {
  for (Watched &w : watched)
    if (w.begin.load(std::memory_order_relaxed) == begin)
      w.begin.store(nullptr, std::memory_order_release);
}
