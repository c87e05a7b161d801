//===- AsanDefaultOptions.cpp - ASan options of sanitized executables ------===//
//
// Linked into every executable of a sanitized build (-DATTNEDIT_SANITIZE=ON)
// and into the fuzzers; ASan reads it at start-up, before ASAN_OPTIONS.
//
// allow_user_poisoning=0: LLVM's BumpPtrAllocator (llvm/Support/Allocator.h)
// and ArrayRecycler poison their memory by hand when the code that inlines
// them is built with ASan: a new slab is poisoned whole, and each allocation
// unpoisons only itself. Debian's libMLIR/libLLVM are built without ASan,
// so their copies of the same inline code never unpoison. The two halves
// share allocators (the MLIRContext's type and attribute uniquer): when our
// code starts a slab (e.g. constructing an ascend BufType), every later
// allocation libMLIR makes in it (e.g. a RankedTensorType) stays poisoned,
// and the first write to it, libMLIR's memmove of the shape, is reported as
// use-after-poison. The report is false (the memory is allocated and live),
// and the hand-made poisoning cannot be right while half of the allocator
// code is uninstrumented, so it is switched off; this disables nothing but
// __asan_(un)poison_memory_region, which only those LLVM headers call here.
// ASan's own checks (heap, stack, globals, use-after-free) stay on.
//
//===----------------------------------------------------------------------===//

extern "C" const char *__asan_default_options() { return "allow_user_poisoning=0"; }
