//===- SvgChart.h - the training lib's line charts --------------*- C++ -*-===//
//
// The loss curves and the distillation evidence are line charts over a
// log-scale y axis (both quantities span decades), written as SVG text so
// that a run needs no plotting library. Private to the runtime library.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_RUNTIME_LIB_TRAINING_SVGCHART_H
#define ATTNEDIT_RUNTIME_LIB_TRAINING_SVGCHART_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/Error.h"

#include <string>
#include <utility>

namespace mlir::attnedit {

class SvgChart {
public:
  /// A rectangle of the chart and the data range it shows: x linear, y
  /// logarithmic over [yLow, yHigh] (both positive).
  struct Panel {
    double left, top, width, height;
    double xLow, xHigh, yLow, yHigh;
    double px(double x) const;
    /// Values outside [yLow, yHigh] are drawn at its ends.
    double py(double y) const;
  };

  SvgChart(double width, double height);
  /// `attributes` are extra SVG attributes ("text-anchor='middle'").
  void text(double x, double y, const llvm::Twine &content, llvm::StringRef attributes = "");
  void frame(const Panel &panel);
  /// A horizontal grid line across `panel` at `y`, `label` left of it.
  void gridLine(const Panel &panel, double y, llvm::StringRef label);
  void polyline(const Panel &panel, llvm::ArrayRef<std::pair<double, double>> points,
                llvm::StringRef color, double strokeWidth);
  /// Closes the chart and writes it atomically.
  llvm::Error write(llvm::StringRef path);

private:
  std::string svg;
};

} // namespace mlir::attnedit

#endif // ATTNEDIT_RUNTIME_LIB_TRAINING_SVGCHART_H
