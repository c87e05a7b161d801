//===- InputFile.cpp - the one way attnedit reads a file it is given ------===//

#include "attnedit/Frontend/InputFile.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"

using namespace mlir::attnedit;
namespace fs = llvm::sys::fs;

llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>>
mlir::attnedit::readInputFile(const llvm::Twine &path, bool isText, bool requiresNullTerminator,
                              bool isVolatile) {
  fs::file_status status;
  // A missing file's or a directory's error is getFile's.
  if (fs::status(path, status) || fs::is_regular_file(status) || fs::is_directory(status))
    return llvm::MemoryBuffer::getFile(path, isText, requiresNullTerminator, isVolatile);
  llvm::Expected<fs::file_t> file = fs::openNativeFileForRead(path);
  if (!file)
    return llvm::errorToErrorCode(file.takeError());
  llvm::SmallString<0> bytes;
  std::error_code ec;
  while (!ec) {
    size_t size = bytes.size();
    bytes.resize_for_overwrite(size + (1 << 20));
    llvm::Expected<size_t> got =
        fs::readNativeFile(*file, llvm::MutableArrayRef(bytes.data() + size, 1 << 20));
    if (!got)
      ec = llvm::errorToErrorCode(got.takeError());
    bytes.truncate(size + (got ? *got : 0));
    if (got && !*got)
      break;
    if (bytes.size() > kMaxStreamBytes)
      ec = std::make_error_code(std::errc::file_too_large);
  }
  fs::closeFile(*file);
  if (ec)
    return ec;
  return llvm::MemoryBuffer::getMemBufferCopy(bytes, path);
}
