//===- EditPlanTest.cpp - the plan chosen under a KV budget ---------------===//
//
// leastDamagePlan against an exhaustive search over every plan of random
// candidates, and on the case a greedy restore got wrong.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Passes/EditPlan.h"

#include <gtest/gtest.h>

#include <random>

using namespace mlir::attnedit;

namespace {

using Choices = std::vector<std::vector<PlanChoice>>;

double sum(const Choices &choices, const std::vector<size_t> &chosen, bool bytes) {
  double total = 0;
  for (size_t l = 0; l < choices.size(); ++l)
    total += bytes ? choices[l][chosen[l]].bytesPerToken : choices[l][chosen[l]].damage;
  return total;
}

/// Each layer's choice, found by the window the plan gives it (every
/// candidate of a layer has its own window).
std::vector<size_t> indicesOf(const Choices &choices, const EditPlan &plan) {
  std::vector<size_t> indices;
  for (size_t l = 0; l < choices.size(); ++l)
    for (size_t c = 0; c < choices[l].size(); ++c)
      if (choices[l][c].edit.window == plan.layers[l].window)
        indices.push_back(c);
  return indices;
}

/// The least damage of any plan within `budget`, trying every one; -1 if none fits.
double exhaustiveLeastDamage(const Choices &choices, double budget) {
  double best = -1;
  std::vector<size_t> plan(choices.size(), 0);
  for (;;) {
    if (sum(choices, plan, true) <= budget && (best < 0 || sum(choices, plan, false) < best))
      best = sum(choices, plan, false);
    size_t l = 0;
    while (l < plan.size() && ++plan[l] == choices[l].size())
      plan[l++] = 0;
    if (l == plan.size())
      return best;
  }
}

/// A candidate told apart by its window, `index`.
PlanChoice choice(double bytes, double damage, int64_t index) {
  PlanChoice c;
  c.edit.window = index;
  c.bytesPerToken = bytes;
  c.damage = damage;
  return c;
}

// Stories260K at 64 tokens: keep 128 B/token per layer, a window of 32 64, MLA 40; MLA
// damages most. Half the teacher's 640 B: a greedy restore of the biggest damage first took
// MLA in three layers (sum KL 0.67); five windows fit and damage far less.
TEST(EditPlanTest, SpendsTheBudgetWhereItRemovesTheMostDamagePerByte) {
  Choices choices;
  for (double swa : {0.002, 0.017, 0.009, 0.011, 0.069})
    choices.push_back({choice(128, 0, 0), choice(64, swa, 1), choice(40, 0.13 + 3 * swa, 2)});
  std::optional<ChosenPlan> plan = leastDamagePlan(choices, 320);
  ASSERT_TRUE(plan);
  std::vector<size_t> chosen = indicesOf(choices, plan->plan);
  ASSERT_EQ(chosen.size(), 5u);
  EXPECT_LE(sum(choices, chosen, true), 320);
  EXPECT_DOUBLE_EQ(sum(choices, chosen, false), exhaustiveLeastDamage(choices, 320));
  EXPECT_DOUBLE_EQ(plan->bytesPerToken, sum(choices, chosen, true));
  EXPECT_DOUBLE_EQ(plan->damage, sum(choices, chosen, false));
  EXPECT_EQ(chosen, (std::vector<size_t>{1, 1, 1, 1, 1}));
}

TEST(EditPlanTest, MatchesAnExhaustiveSearchOnRandomCandidates) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> unit(0, 1);
  for (int trial = 0; trial < 300; ++trial) {
    Choices choices(1 + trial % 6);
    for (auto &layer : choices) {
      layer.push_back(choice(640, 0, 0));
      for (int c = 1 + trial % 3; c-- > 0;)
        layer.push_back(
            choice(std::round(1 + 600 * unit(rng)), unit(rng), (int64_t)layer.size()));
    }
    double budget = 100 + 3000 * unit(rng);
    double best = exhaustiveLeastDamage(choices, budget);
    std::optional<ChosenPlan> plan = leastDamagePlan(choices, budget);
    if (best < 0) {
      EXPECT_FALSE(plan) << "trial " << trial;
      continue;
    }
    ASSERT_TRUE(plan) << "trial " << trial;
    std::vector<size_t> chosen = indicesOf(choices, plan->plan);
    ASSERT_EQ(chosen.size(), choices.size()) << "trial " << trial;
    EXPECT_LE(sum(choices, chosen, true), budget * (1 + 1e-9)) << "trial " << trial;
    EXPECT_NEAR(sum(choices, chosen, false), best, 1e-12) << "trial " << trial;
  }
}

} // namespace
