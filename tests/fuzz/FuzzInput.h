//===- FuzzInput.h - libFuzzer bytes as a file a parser can open ----------===//
//
// attnedit's parsers take paths (they memory-map or read whole files), so each
// harness hands them its input as an anonymous in-memory file.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_TESTS_FUZZ_FUZZINPUT_H
#define ATTNEDIT_TESTS_FUZZ_FUZZINPUT_H

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <sys/mman.h>
#include <unistd.h>

namespace attnedit_fuzz {

/// `data` as a file, open for the object's lifetime at path().
class InputFile {
public:
  InputFile(const uint8_t *data, size_t size) {
    fd = ::memfd_create("fuzz-input", MFD_CLOEXEC);
    if (fd < 0 || ::write(fd, data, size) != (ssize_t)size)
      std::abort();
  }
  ~InputFile() { ::close(fd); }
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd); }

private:
  int fd;
};

} // namespace attnedit_fuzz

#endif // ATTNEDIT_TESTS_FUZZ_FUZZINPUT_H
