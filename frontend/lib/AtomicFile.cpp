//===- AtomicFile.cpp - files that appear whole or not at all --------------===//

#include "attnedit/Frontend/AtomicFile.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <system_error>

#include <fcntl.h>
#include <unistd.h>

using namespace mlir::attnedit;

std::string mlir::attnedit::followLinks(llvm::StringRef path) {
  std::string current = path.str();
  // Linux's own limit on links followed in one path (ELOOP past it).
  for (int hops = 0; hops < 40; ++hops) {
    char target[4096];
    ssize_t length = ::readlink(current.c_str(), target, sizeof(target));
    if (length < 0 || length == (ssize_t)sizeof(target))
      break;
    llvm::StringRef next(target, length);
    if (llvm::sys::path::is_absolute(next))
      current = next.str();
    else
      current = joinPath(llvm::sys::path::parent_path(current), next);
  }
  return current;
}

llvm::Error mlir::attnedit::writeFileAtomically(
    llvm::StringRef path, llvm::function_ref<void(llvm::raw_ostream &)> write) {
  std::string target = followLinks(path);
  std::string temp = target + ".tmp";
  auto fail = [&](std::error_code ec) {
    llvm::sys::fs::remove(temp);
    return llvm::createStringError(ec, "%s: cannot write: %s", path.str().c_str(),
                                   ec.message().c_str());
  };
  int fd;
  if (std::error_code ec = llvm::sys::fs::openFileForWrite(temp, fd))
    return fail(ec);
  std::error_code ec;
  {
    llvm::raw_fd_ostream os(fd, /*shouldClose=*/false);
    write(os);
    os.flush();
    ec = os.error();
    // An error left set makes the stream's destructor abort the process
    // ("IO failure on output stream") before our message is printed.
    os.clear_error();
  }
  if (!ec && ::fsync(fd) != 0)
    ec = std::error_code(errno, std::generic_category());
  if (::close(fd) != 0 && !ec)
    ec = std::error_code(errno, std::generic_category());
  if (ec)
    return fail(ec);
  if (std::error_code rename = llvm::sys::fs::rename(temp, target))
    return fail(rename);
  return llvm::Error::success();
}

llvm::Error mlir::attnedit::writeFileAtomically(llvm::StringRef path, llvm::StringRef text) {
  return writeFileAtomically(path, [&](llvm::raw_ostream &os) { os << text; });
}

llvm::Error mlir::attnedit::appendDurably(llvm::StringRef path, llvm::StringRef text) {
  auto fail = [&](int error) {
    return llvm::createStringError(std::error_code(error, std::generic_category()),
                                   "%s: cannot write: %s", path.str().c_str(),
                                   std::strerror(error));
  };
  int fd = ::open(path.str().c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    return fail(errno);
  for (size_t done = 0; done < text.size();) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      int error = errno;
      ::close(fd);
      return fail(error);
    }
    done += n;
  }
  int error = ::fsync(fd) != 0 ? errno : 0;
  if (::close(fd) != 0 && !error)
    error = errno;
  return error ? fail(error) : llvm::Error::success();
}

std::error_code mlir::attnedit::createOutputDirectories(llvm::StringRef path) {
  return llvm::sys::fs::create_directories(path, /*IgnoreExisting=*/true,
                                           llvm::sys::fs::all_all);
}

llvm::ErrorOr<std::vector<std::string>>
mlir::attnedit::foreignEntries(llvm::StringRef dir,
                               llvm::function_ref<bool(llvm::StringRef)> ours) {
  std::vector<std::string> foreign;
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(dir, ec), end; it != end && !ec; it.increment(ec)) {
    llvm::StringRef name = llvm::sys::path::filename(it->path());
    if (!ours(name))
      foreign.push_back(name.str());
  }
  if (ec)
    return ec;
  llvm::sort(foreign);
  return foreign;
}

std::string mlir::attnedit::joinPath(llvm::StringRef dir, llvm::StringRef name) {
  llvm::SmallString<256> path(dir);
  llvm::sys::path::append(path, name);
  return path.str().str();
}

bool mlir::attnedit::sameFile(llvm::StringRef a, llvm::StringRef b) {
  bool same = false;
  return !llvm::sys::fs::equivalent(a, b, same) && same;
}

std::string mlir::attnedit::scratchBeside(llvm::StringRef path, llvm::StringRef tag) {
  llvm::SmallString<256> absolute(path);
  llvm::sys::fs::make_absolute(absolute);
  llvm::sys::path::remove_dots(absolute, /*remove_dot_dot=*/true);
  std::string prefix = (llvm::sys::path::filename(absolute) + tag).str();
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(llvm::sys::path::parent_path(absolute), ec), end;
       !ec && it != end; it.increment(ec)) {
    llvm::StringRef name = llvm::sys::path::filename(it->path());
    int pid = 0;
    if (!name.consume_front(prefix) || name.getAsInteger(10, pid) || pid <= 0 ||
        pid == getpid())
      continue;
    // Only a process that is gone: a live one (ours or another's, when the
    // id was reused) keeps its scratch.
    if (kill(pid, 0) != 0 && errno == ESRCH)
      llvm::sys::fs::remove_directories(it->path());
  }
  return (absolute + tag + llvm::Twine(getpid())).str();
}
