//===- AtomicFile.h - files that appear whole or not at all ----*- C++ -*-===//
//
// Every file attnedit writes (checkpoints, safetensors, modules, logs,
// plots, reports, logits) goes through writeFileAtomically: a reader sees the
// old file or the new one, never a torn one, and a failed write (a full
// disk) leaves no partial file behind to keep the disk full.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_FRONTEND_ATOMICFILE_H
#define ATTNEDIT_FRONTEND_ATOMICFILE_H

#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/ErrorOr.h"
#include "llvm/Support/raw_ostream.h"

#include <string>
#include <vector>

namespace mlir::attnedit {

/// What writing `path` replaces: a symbolic link's final target (dangling
/// or not), as `>` and cp write through a link, else `path`. A rename over
/// the link itself would replace the link and leave its target stale.
std::string followLinks(llvm::StringRef path);

/// Writes `path` (followLinks) through NAME.tmp: `write` fills the
/// temporary, which is flushed, fsynced and renamed over it. On failure the
/// temporary is removed, the file is untouched, and the error names `path`
/// and the system's reason (e.g. "No space left on device").
llvm::Error writeFileAtomically(llvm::StringRef path,
                                llvm::function_ref<void(llvm::raw_ostream &)> write);
llvm::Error writeFileAtomically(llvm::StringRef path, llvm::StringRef text);

/// Appends `text` to `path` (created if missing) and fsyncs it: a log that
/// grows by what is new, where rewriting it whole made each write cost its
/// whole history. A reader of a file a failed append left longer than its
/// owner recorded keeps the recorded length. Errors name `path`.
llvm::Error appendDurably(llvm::StringRef path, llvm::StringRef text);

/// Creates directory `path` and its missing parents as mkdir -p does: 0777
/// less the umask (LLVM's default, 0770 less it, left outputs 0750).
std::error_code createOutputDirectories(llvm::StringRef path);

/// The entries of directory `dir` that `ours` does not accept, sorted by
/// name. A directory that is replaced whole (an exported model, a compiled
/// artifact) may hold only what its writer puts there: anything else would
/// be lost with it.
llvm::ErrorOr<std::vector<std::string>>
foreignEntries(llvm::StringRef dir, llvm::function_ref<bool(llvm::StringRef)> ours);

/// Whether `a` and `b` name one existing file, whatever their spelling or
/// links: an output written over a file the job reads would destroy it.
bool sameFile(llvm::StringRef a, llvm::StringRef b);

/// `path` + `tag` + this process's id: a scratch file or directory beside
/// `path`, on its disk rather than in a small /tmp. Those a killed process
/// left (its id no longer runs) are removed first, so they do not pile up.
std::string scratchBeside(llvm::StringRef path, llvm::StringRef tag);

/// `dir`/`name` in the platform's spelling.
std::string joinPath(llvm::StringRef dir, llvm::StringRef name);

} // namespace mlir::attnedit

#endif // ATTNEDIT_FRONTEND_ATOMICFILE_H
