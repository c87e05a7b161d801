//===- fuzz_recipe.cpp - recipe.json --------------------------------------===//
#include "../FuzzInput.h"
#include "attnedit/Runtime/Training/Recipe.h"

using namespace mlir::attnedit;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  attnedit_fuzz::InputFile file(data, size);
  auto recipe = Recipe::parse(file.path(), Recipe());
  if (!recipe) {
    llvm::consumeError(recipe.takeError());
    return 0;
  }
  for (const StageRecipe &stage : recipe->stages) {
    (void)stage.buildOptions();
    for (int64_t step : {int64_t(0), stage.warmup, stage.steps})
      (void)stage.learningRate(step);
  }
  (void)recipe->toJson();
  return 0;
}
