//===- TileLayout.h - where a tile's elements live ------------*- C++ -*-===//
//
// Padded sizes and element offsets of ND and fractal tiles (S7, S8, S44):
// a fractal is 16 rows x C0 columns, C0 = 32 bytes / element size, 512 bytes
// in all; ND tiles on chip pad each row to 32 bytes. Shared by the
// verifier (capacity), the simulator (addresses) and the cost model (bytes).
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_ASCEND_TILELAYOUT_H
#define ATTNEDIT_ASCEND_TILELAYOUT_H

#include "attnedit/Ascend/AscendEnums.h"

#include <cstdint>

namespace mlir::attnedit::ascend {

constexpr int64_t kFractalRows = 16;
constexpr int64_t kBlockBytes = 32; // S19: a DMA / vector data block

inline int64_t ceilDiv(int64_t x, int64_t m) { return (x + m - 1) / m; }
inline int64_t roundUp(int64_t x, int64_t m) { return ceilDiv(x, m) * m; }
inline int64_t c0(int64_t elementBytes) { return kBlockBytes / elementBytes; }

/// Rows and columns after padding to the layout's granule.
inline void paddedShape(Layout layout, int64_t rows, int64_t cols, int64_t eb, bool gm,
                        int64_t &prows, int64_t &pcols) {
  switch (layout) {
  case Layout::ND:
    prows = rows;
    pcols = gm ? cols : roundUp(cols, c0(eb));
    return;
  case Layout::NZ:
  case Layout::ZZ:
    prows = roundUp(rows, kFractalRows);
    pcols = roundUp(cols, c0(eb));
    return;
  case Layout::ZN:
    prows = roundUp(rows, c0(eb));
    pcols = roundUp(cols, kFractalRows);
    return;
  }
  prows = rows;
  pcols = cols;
}

inline int64_t tileBytes(Layout layout, int64_t rows, int64_t cols, int64_t eb, bool gm) {
  int64_t pr, pc;
  paddedShape(layout, rows, cols, eb, gm, pr, pc);
  return pr * pc * eb;
}

/// Element index of (r, c) in a tile of `rows` x `cols` (before padding).
inline int64_t elementIndex(Layout layout, int64_t rows, int64_t cols, int64_t eb, bool gm,
                            int64_t r, int64_t c) {
  int64_t pr, pc;
  paddedShape(layout, rows, cols, eb, gm, pr, pc);
  int64_t k = c0(eb);
  switch (layout) {
  case Layout::ND:
    return r * pc + c;
  case Layout::NZ: // [cols/C0][rows][C0]
    return (c / k) * pr * k + r * k + c % k;
  case Layout::ZZ: // [rows/16][cols/C0][16][C0]
    return ((r / kFractalRows) * (pc / k) + c / k) * kFractalRows * k + (r % kFractalRows) * k +
           c % k;
  case Layout::ZN: // [rows/C0][cols/16][16 cols][C0 rows]
    return ((r / k) * (pc / kFractalRows) + c / kFractalRows) * kFractalRows * k +
           (c % kFractalRows) * k + r % k;
  }
  return 0;
}

/// Row and column granule a window offset into the layout must respect.
inline void windowGranule(Layout layout, int64_t eb, bool gm, int64_t &rowStep,
                          int64_t &colStep) {
  switch (layout) {
  case Layout::ND:
    rowStep = 1;
    colStep = gm ? 1 : c0(eb);
    return;
  case Layout::NZ:
  case Layout::ZZ:
    rowStep = kFractalRows;
    colStep = c0(eb);
    return;
  case Layout::ZN:
    rowStep = c0(eb);
    colStep = kFractalRows;
    return;
  }
  rowStep = colStep = 1;
}

} // namespace mlir::attnedit::ascend

#endif // ATTNEDIT_ASCEND_TILELAYOUT_H
