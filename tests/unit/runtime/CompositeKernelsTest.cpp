//===- CompositeKernelsTest.cpp - composite kernels vs their decompositions -===//
//
// Each composite attention op is defined by its primitive expansion; its
// direct kernel must agree with evaluating that expansion, on random weights
// at non-trivial positions. MLA's absorbed form must agree with its naive one.
//
//===----------------------------------------------------------------------===//

#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/Runtime/Execution/Evaluator.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

#include <random>

using namespace mlir;
using namespace mlir::attnedit;

namespace {

class CompositeKernelsTest : public ::testing::Test {
protected:
  CompositeKernelsTest() { context.loadDialect<AttnEditDialect, func::FuncDialect>(); }

  /// Parses `body` as the one op of @f over the given arguments.
  OwningOpRef<ModuleOp> parse(const std::string &text) {
    OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(text, &context);
    EXPECT_TRUE(module) << text;
    return module;
  }

  /// Random arguments for @f: token positions 3..3+T-1 for i32 vectors, small
  /// normals for everything else.
  std::vector<Tensor> randomArgs(func::FuncOp func) {
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 0.3f);
    std::vector<Tensor> args;
    for (Type type : func.getArgumentTypes()) {
      auto shaped = cast<RankedTensorType>(type);
      if (shaped.getElementType().isInteger(32)) {
        std::vector<int32_t> pos(shaped.getDimSize(0));
        for (size_t i = 0; i < pos.size(); ++i)
          pos[i] = 3 + i;
        args.push_back(Tensor::ints(pos));
        continue;
      }
      Tensor t = Tensor::zeros(shaped.getShape());
      for (int64_t i = 0; i < t.numel(); ++i)
        t.mutableData()[i] = normal(rng);
      args.push_back(t);
    }
    return args;
  }

  /// max |a - b| / max |b|; NaN anywhere or an all-zero b counts as total
  /// disagreement so that a broken kernel cannot pass.
  static double maxRelativeError(const Tensor &a, const Tensor &b) {
    double diff = 0, scale = 0;
    for (int64_t i = 0; i < a.numel(); ++i) {
      if (std::isnan(a.data()[i]) || std::isnan(b.data()[i]))
        return INFINITY;
      diff = std::max(diff, (double)std::fabs(a.data()[i] - b.data()[i]));
      scale = std::max(scale, (double)std::fabs(b.data()[i]));
    }
    return scale == 0 ? INFINITY : diff / scale;
  }

  /// Evaluates @f with the direct kernel, then with the op decomposed, and
  /// returns the relative difference.
  double kernelVsDecomposition(const std::string &text, EvaluatorOptions options = {}) {
    OwningOpRef<ModuleOp> module = parse(text);
    auto func = module->lookupSymbol<func::FuncOp>("f");
    std::vector<Tensor> args = randomArgs(func);
    ParameterStore none;
    auto direct = evaluate(func, args, none, options);
    EXPECT_TRUE(bool(direct)) << llvm::toString(direct.takeError());

    SmallVector<DecomposableOpInterface> composites;
    func.walk([&](DecomposableOpInterface op) { composites.push_back(op); });
    EXPECT_EQ(composites.size(), 1u);
    OpBuilder builder(composites.front());
    auto expansion = composites.front().decompose(builder);
    EXPECT_TRUE(succeeded(expansion));
    composites.front()->replaceAllUsesWith(*expansion);
    composites.front()->erase();
    EXPECT_TRUE(succeeded(module->verify()));

    auto expanded = evaluate(func, args, none);
    EXPECT_TRUE(bool(expanded)) << llvm::toString(expanded.takeError());
    return maxRelativeError(direct->front(), expanded->front());
  }

  MLIRContext context;
};

const char *kGqa = R"mlir(
func.func @f(%x: tensor<6x32xf32>, %pos: tensor<6xi32>, %wq: tensor<64x32xf32>, %wk: tensor<32x32xf32>, %wv: tensor<32x32xf32>, %wo: tensor<32x64xf32>, %bq: tensor<64xf32>, %bk: tensor<32xf32>, %bv: tensor<32xf32>, %qn: tensor<16xf32>, %kn: tensor<16xf32>) -> tensor<6x32xf32> {
  %0 = attnedit.attention %x, %pos weights(%wq, %wk, %wv, %wo) qkv_bias(%bq, %bk, %bv) qk_norm(%qn, %kn) {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64, scale = 0.25 : f64, rope_theta = 10000.0 : f64, rotary_dim = 16 : i64, rope_style = #attnedit<rope_style interleaved>, window = 3 : i64} : (tensor<6x32xf32>, tensor<6xi32>, tensor<64x32xf32>, tensor<32x32xf32>, tensor<32x32xf32>, tensor<32x64xf32>, tensor<64xf32>, tensor<32xf32>, tensor<32xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<6x32xf32>
  return %0 : tensor<6x32xf32>
})mlir";

TEST_F(CompositeKernelsTest, AttentionKernelMatchesDecomposition) {
  EXPECT_LT(kernelVsDecomposition(kGqa), 1e-5);
}

std::string gateSwa(const std::string &gate, bool sinks) {
  std::string gateType = gate == "headwise" ? "tensor<4x32xf32>" : "tensor<64x32xf32>";
  std::string args = gate == "none" ? "" : ", %g: " + gateType;
  std::string operands = gate == "none" ? "" : " gate(%g)";
  std::string types = gate == "none" ? "" : ", " + gateType;
  if (sinks) {
    args += ", %s: tensor<4xf32>";
    operands += " sinks(%s)";
    types += ", tensor<4xf32>";
  }
  return R"mlir(
func.func @f(%x: tensor<7x32xf32>, %pos: tensor<7xi32>, %wq: tensor<64x32xf32>, %wk: tensor<16x32xf32>, %wv: tensor<16x32xf32>, %wo: tensor<32x64xf32>)mlir" +
         args + R"mlir() -> tensor<7x32xf32> {
  %0 = attnedit.gate_swa %x, %pos weights(%wq, %wk, %wv, %wo))mlir" +
         operands + R"mlir( {num_heads = 4 : i64, num_kv_heads = 1 : i64, head_dim = 16 : i64, scale = 0.25 : f64, rope_theta = 500000.0 : f64, rotary_dim = 8 : i64, rope_style = #attnedit<rope_style rotate_half>, window = 4 : i64, gate = #attnedit<gate_kind )mlir" +
         gate + R"mlir(>} : (tensor<7x32xf32>, tensor<7xi32>, tensor<64x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>, tensor<32x64xf32>)mlir" +
         types + R"mlir() -> tensor<7x32xf32>
  return %0 : tensor<7x32xf32>
})mlir";
}

TEST_F(CompositeKernelsTest, GateSwaKernelMatchesDecompositionForEveryGateAndSinks) {
  for (const char *gate : {"none", "headwise", "elementwise"})
    for (bool sinks : {false, true})
      EXPECT_LT(kernelVsDecomposition(gateSwa(gate, sinks)), 1e-5)
          << "gate " << gate << " sinks " << sinks;
}

// H = 4, n = 8, r = 4, dv = 6, kv_lora_rank = 12, hidden 32.
const char *kMlaFullQ = R"mlir(
func.func @f(%x: tensor<5x32xf32>, %pos: tensor<5xi32>, %q: tensor<48x32xf32>, %kva: tensor<16x32xf32>, %kvn: tensor<12xf32>, %kvb: tensor<56x12xf32>, %o: tensor<32x24xf32>) -> tensor<5x32xf32> {
  %0 = attnedit.mla %x, %pos q(%q) kv(%kva, %kvn, %kvb) out(%o) {num_heads = 4 : i64, q_lora_rank = 0 : i64, kv_lora_rank = 12 : i64, qk_nope_head_dim = 8 : i64, qk_rope_head_dim = 4 : i64, v_head_dim = 6 : i64, scale = 0.3 : f64, rope_theta = 10000.0 : f64, rope_style = #attnedit<rope_style rotate_half>} : (tensor<5x32xf32>, tensor<5xi32>, tensor<48x32xf32>, tensor<16x32xf32>, tensor<12xf32>, tensor<56x12xf32>, tensor<32x24xf32>) -> tensor<5x32xf32>
  return %0 : tensor<5x32xf32>
})mlir";

const char *kMlaLoraQ = R"mlir(
func.func @f(%x: tensor<5x32xf32>, %pos: tensor<5xi32>, %qa: tensor<10x32xf32>, %qan: tensor<10xf32>, %qb: tensor<48x10xf32>, %kva: tensor<16x32xf32>, %kvn: tensor<12xf32>, %kvb: tensor<56x12xf32>, %o: tensor<32x24xf32>) -> tensor<5x32xf32> {
  %0 = attnedit.mla %x, %pos q_lora(%qa, %qan, %qb) kv(%kva, %kvn, %kvb) out(%o) {num_heads = 4 : i64, q_lora_rank = 10 : i64, kv_lora_rank = 12 : i64, qk_nope_head_dim = 8 : i64, qk_rope_head_dim = 4 : i64, v_head_dim = 6 : i64, scale = 0.3 : f64, rope_theta = 10000.0 : f64, rope_style = #attnedit<rope_style interleaved>} : (tensor<5x32xf32>, tensor<5xi32>, tensor<10x32xf32>, tensor<10xf32>, tensor<48x10xf32>, tensor<16x32xf32>, tensor<12xf32>, tensor<56x12xf32>, tensor<32x24xf32>) -> tensor<5x32xf32>
  return %0 : tensor<5x32xf32>
})mlir";

TEST_F(CompositeKernelsTest, MlaKernelMatchesDecomposition) {
  EXPECT_LT(kernelVsDecomposition(kMlaFullQ), 1e-5);
  EXPECT_LT(kernelVsDecomposition(kMlaLoraQ), 1e-5);
}

TEST_F(CompositeKernelsTest, MlaAbsorbedFormMatchesDecomposition) {
  EvaluatorOptions absorbed;
  absorbed.absorbMla = true;
  EXPECT_LT(kernelVsDecomposition(kMlaFullQ, absorbed), 1e-5);
  EXPECT_LT(kernelVsDecomposition(kMlaLoraQ, absorbed), 1e-5);
}

} // namespace
