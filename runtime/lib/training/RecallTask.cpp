//===- RecallTask.cpp - synthetic multi-query associative recall -----------===//

#include "attnedit/Runtime/Training/RecallTask.h"

#include <algorithm>
#include <numeric>

using namespace mlir::attnedit;

llvm::Error RecallTask::validate() const {
  if (numKeys < 1 || numValues < 1 || pairs < 1 || pairs > numKeys || gap < 0)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "recall task: needs 1 <= pairs <= keys, values >= 1 and "
                                   "gap >= 0 (got keys %lld, values %lld, pairs %lld, gap %lld)",
                                   (long long)numKeys, (long long)numValues, (long long)pairs,
                                   (long long)gap);
  return llvm::Error::success();
}

RecallTask::Sample RecallTask::sample(std::mt19937_64 &rng) const {
  std::vector<int32_t> keys(numKeys);
  std::iota(keys.begin(), keys.end(), 2);
  std::shuffle(keys.begin(), keys.end(), rng);
  keys.resize(pairs);
  std::uniform_int_distribution<int32_t> value(2 + numKeys, 2 + numKeys + numValues - 1);
  std::vector<int32_t> values(pairs);
  for (int32_t &v : values)
    v = value(rng);

  Sample s;
  s.tokens.push_back(0);
  for (int64_t i = 0; i < pairs; ++i) {
    s.tokens.push_back(keys[i]);
    s.tokens.push_back(values[i]);
  }
  s.tokens.insert(s.tokens.end(), gap, 1);
  std::vector<int64_t> order(pairs);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  for (int64_t i : order) {
    s.queryPositions.push_back(s.tokens.size());
    s.tokens.push_back(keys[i]);
    s.tokens.push_back(values[i]);
  }
  return s;
}
