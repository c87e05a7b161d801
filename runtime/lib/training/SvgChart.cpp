//===- SvgChart.cpp - the training lib's line charts ----------------------===//

#include "SvgChart.h"
#include "attnedit/Frontend/AtomicFile.h"

#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <cmath>

using namespace mlir::attnedit;

double SvgChart::Panel::px(double x) const {
  return xHigh > xLow ? left + (x - xLow) / (xHigh - xLow) * width : left;
}

double SvgChart::Panel::py(double y) const {
  double low = std::log10(yLow), high = std::log10(yHigh);
  double t = (std::log10(std::clamp(y, yLow, yHigh)) - low) / (high - low);
  return top + height * (1 - t);
}

SvgChart::SvgChart(double width, double height) {
  svg = llvm::formatv("<svg xmlns='http://www.w3.org/2000/svg' width='{0}' height='{1}' "
                      "font-family='sans-serif' font-size='12'>\n"
                      "<rect width='100%' height='100%' fill='white'/>\n",
                      width, height);
}

void SvgChart::text(double x, double y, const llvm::Twine &content,
                    llvm::StringRef attributes) {
  svg += llvm::formatv("<text x='{0:F1}' y='{1:F1}'{2}{3}>{4}</text>\n", x, y,
                       attributes.empty() ? "" : " ", attributes, content.str());
}

void SvgChart::frame(const Panel &panel) {
  svg += llvm::formatv("<rect x='{0}' y='{1}' width='{2}' height='{3}' fill='none' "
                       "stroke='#888'/>\n",
                       panel.left, panel.top, panel.width, panel.height);
}

void SvgChart::gridLine(const Panel &panel, double y, llvm::StringRef label) {
  svg += llvm::formatv("<line x1='{0}' x2='{1}' y1='{2:F1}' y2='{2:F1}' stroke='#e4e4e4'/>"
                       "<text x='{3}' y='{4:F1}' text-anchor='end'>{5}</text>\n",
                       panel.left, panel.left + panel.width, panel.py(y), panel.left - 4,
                       panel.py(y) + 4, label);
}

void SvgChart::polyline(const Panel &panel, llvm::ArrayRef<std::pair<double, double>> points,
                        llvm::StringRef color, double strokeWidth) {
  svg += llvm::formatv("<polyline fill='none' stroke='{0}' stroke-width='{1}' points='", color,
                       strokeWidth);
  for (auto [x, y] : points)
    svg += llvm::formatv("{0:F1},{1:F1} ", panel.px(x), panel.py(y));
  svg += "'/>\n";
}

llvm::Error SvgChart::write(llvm::StringRef path) {
  svg += "</svg>\n";
  return writeFileAtomically(path, svg);
}
