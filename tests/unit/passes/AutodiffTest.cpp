//===- AutodiffTest.cpp - every VJP rule against finite differences --------===//
//
// Each case is one op inside L = Σ op(args) ⊙ R for a random cotangent R.
// --attnedit-autodiff gives ∂L/∂arg; central differences of L, evaluated by
// the reference evaluator (f32 kernels, double reductions), check it.
//
//===----------------------------------------------------------------------===//

#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/Passes/Passes.h"
#include "attnedit/Runtime/Execution/Evaluator.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"

#include <gtest/gtest.h>

#include <random>

using namespace mlir;
using namespace mlir::attnedit;

namespace {

struct Case {
  const char *name;
  /// `func.func @loss` arguments (those to differentiate carry {attnedit.wrt})
  /// then the body computing %y.
  std::string args, body;
  std::string yType; // static type of %y
};

void PrintTo(const Case &c, std::ostream *os) { *os << c.name; }

class AutodiffTest : public ::testing::TestWithParam<Case> {
protected:
  AutodiffTest() {
    context.loadDialect<AttnEditDialect, arith::ArithDialect, func::FuncDialect>();
  }

  MLIRContext context;
};

std::string moduleText(const Case &c) {
  auto type = c.yType;
  if (type == "tensor<f32>") // already a loss
    return "func.func @loss(" + c.args + ") -> tensor<f32> {\n" + c.body +
           "\n  return %y : tensor<f32>\n}\n";
  int64_t elements = 1;
  llvm::StringRef dims = llvm::StringRef(type).drop_front(7).rsplit('x').first;
  llvm::SmallVector<llvm::StringRef> parts;
  dims.split(parts, 'x');
  for (llvm::StringRef p : parts)
    elements *= std::stoll(p.str());
  std::string flat = "tensor<" + std::to_string(elements) + "xf32>";
  return "func.func @loss(" + c.args + ", %r: " + type + ") -> tensor<f32> {\n" + c.body +
         "\n  %yr = attnedit.mul %y, %r : " + type + "\n  %flat = attnedit.reshape %yr : (" +
         type + ") -> " + flat + "\n  %l = attnedit.reduce_sum %flat {axis = 0 : i64} : (" +
         flat + ") -> tensor<f32>\n  return %l : tensor<f32>\n}\n";
}

std::vector<Tensor> randomArgs(func::FuncOp func) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 0.7f);
  std::vector<Tensor> args;
  for (Type type : func.getArgumentTypes()) {
    auto shaped = cast<RankedTensorType>(type);
    if (shaped.getElementType().isInteger(32)) {
      std::vector<int32_t> ids(shaped.getDimSize(0));
      for (size_t i = 0; i < ids.size(); ++i)
        ids[i] = (int32_t)((2 + 3 * i) % 5);
      args.push_back(Tensor::ints(ids));
      continue;
    }
    Tensor t = Tensor::zeros(shaped.getShape());
    for (int64_t i = 0; i < t.numel(); ++i)
      t.mutableData()[i] = normal(rng);
    args.push_back(t);
  }
  return args;
}

Tensor copyOf(const Tensor &t) {
  Tensor out = Tensor::zeros(t.shape());
  std::copy_n(t.data(), t.numel(), out.mutableData());
  return out;
}

TEST_P(AutodiffTest, VjpMatchesCentralDifferences) {
  const Case &c = GetParam();
  std::string text = moduleText(c);
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(text, &context);
  ASSERT_TRUE(module) << text;
  PassManager pm(&context);
  pm.addPass(createAutodiffPass());
  ASSERT_TRUE(succeeded(pm.run(*module))) << text;
  auto loss = module->lookupSymbol<func::FuncOp>("loss");
  auto grad = module->lookupSymbol<func::FuncOp>("loss_grad");
  ASSERT_TRUE(grad);

  ParameterStore none;
  std::vector<Tensor> args = randomArgs(loss);
  auto analytic = evaluate(grad, args, none);
  ASSERT_TRUE(bool(analytic)) << llvm::toString(analytic.takeError());
  auto names = grad->getAttrOfType<ArrayAttr>("attnedit.gradients");
  ASSERT_EQ(names.size() + 1, analytic->size());

  auto lossAt = [&](std::vector<Tensor> &point) {
    auto value = evaluate(loss, point, none);
    EXPECT_TRUE(bool(value));
    return (double)value->front().data()[0];
  };
  for (auto [index, name] : llvm::enumerate(names.getAsValueRange<StringAttr>())) {
    unsigned argNo = std::stoul(name.drop_front(3).str());
    const Tensor &g = (*analytic)[index + 1];
    double worst = 0, scale = 1e-3;
    for (int64_t i = 0; i < args[argNo].numel(); ++i) {
      std::vector<Tensor> point = args;
      point[argNo] = copyOf(args[argNo]);
      float x = args[argNo].data()[i], h = 1e-2f * std::max(1.0f, std::fabs(x));
      point[argNo].mutableData()[i] = x + h;
      double up = lossAt(point);
      point[argNo].mutableData()[i] = x - h;
      double down = lossAt(point);
      double numeric = (up - down) / (2.0 * h);
      worst = std::max(worst, std::fabs(numeric - g.data()[i]));
      scale = std::max(scale, std::fabs(numeric));
    }
    EXPECT_LT(worst / scale, 5e-3) << c.name << " d/d" << name.str();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Ops, AutodiffTest,
    ::testing::Values(
        Case{"linear",
             "%x: tensor<3x4xf32> {attnedit.wrt}, %w: tensor<5x4xf32> {attnedit.wrt}, "
             "%b: tensor<5xf32> {attnedit.wrt}",
             "  %y = attnedit.linear %x, %w, %b : (tensor<3x4xf32>, tensor<5x4xf32>, "
             "tensor<5xf32>) -> tensor<3x5xf32>",
             "tensor<3x5xf32>"},
        Case{"embedding",
             "%t: tensor<5x3xf32> {attnedit.wrt}, %ids: tensor<4xi32>",
             "  %y = attnedit.embedding %t[%ids] : (tensor<5x3xf32>, tensor<4xi32>) -> "
             "tensor<4x3xf32>",
             "tensor<4x3xf32>"},
        Case{"rms_norm",
             "%x: tensor<3x6xf32> {attnedit.wrt}, %w: tensor<6xf32> {attnedit.wrt}",
             "  %y = attnedit.rms_norm %x, %w {eps = 1.0e-5 : f64} : (tensor<3x6xf32>, "
             "tensor<6xf32>) -> tensor<3x6xf32>",
             "tensor<3x6xf32>"},
        Case{"rope_rotate_half",
             "%x: tensor<3x2x8xf32> {attnedit.wrt}, %p: tensor<3xi32>",
             "  %y = attnedit.rope %x, %p {theta = 100.0 : f64, rotary_dim = 6 : i64, style = "
             "#attnedit<rope_style rotate_half>} : (tensor<3x2x8xf32>, tensor<3xi32>) -> "
             "tensor<3x2x8xf32>",
             "tensor<3x2x8xf32>"},
        Case{"rope_interleaved_llama3",
             "%x: tensor<3x2x8xf32> {attnedit.wrt}, %p: tensor<3xi32>",
             "  %y = attnedit.rope %x, %p {theta = 100.0 : f64, rotary_dim = 8 : i64, style = "
             "#attnedit<rope_style interleaved>, llama3_scaling = array<f64: 8.0, 1.0, 4.0, "
             "64.0>} : (tensor<3x2x8xf32>, tensor<3xi32>) -> tensor<3x2x8xf32>",
             "tensor<3x2x8xf32>"},
        Case{"matmul",
             "%a: tensor<2x3x4xf32> {attnedit.wrt}, %b: tensor<2x4x5xf32> {attnedit.wrt}",
             "  %y = attnedit.matmul %a, %b : (tensor<2x3x4xf32>, tensor<2x4x5xf32>) -> "
             "tensor<2x3x5xf32>",
             "tensor<2x3x5xf32>"},
        Case{"softmax",
             "%x: tensor<2x3x4xf32> {attnedit.wrt}",
             "  %y = attnedit.softmax %x {axis = 1 : i64} : tensor<2x3x4xf32>",
             "tensor<2x3x4xf32>"},
        Case{"softmax_sinks",
             "%x: tensor<2x3x4xf32> {attnedit.wrt}, %s: tensor<2xf32> {attnedit.wrt}",
             "  %y = attnedit.softmax %x sinks(%s : tensor<2xf32>) {axis = 2 : i64} : "
             "tensor<2x3x4xf32>",
             "tensor<2x3x4xf32>"},
        Case{"causal_mask_softmax",
             "%x: tensor<2x4x4xf32> {attnedit.wrt}",
             "  %m = attnedit.causal_mask %x {window = 2 : i64} : tensor<2x4x4xf32>\n"
             "  %y = attnedit.softmax %m {axis = 2 : i64} : tensor<2x4x4xf32>",
             "tensor<2x4x4xf32>"},
        Case{"repeat_kv",
             "%x: tensor<2x3x4xf32> {attnedit.wrt}",
             "  %y = attnedit.repeat_kv %x {repeats = 3 : i64} : (tensor<2x3x4xf32>) -> "
             "tensor<6x3x4xf32>",
             "tensor<6x3x4xf32>"},
        Case{"silu_sigmoid",
             "%x: tensor<7xf32> {attnedit.wrt}",
             "  %s = attnedit.silu %x : tensor<7xf32>\n"
             "  %y = attnedit.sigmoid %s : tensor<7xf32>",
             "tensor<7xf32>"},
        Case{"add_mul_scale",
             "%a: tensor<6xf32> {attnedit.wrt}, %b: tensor<6xf32> {attnedit.wrt}",
             "  %m = attnedit.mul %a, %b : tensor<6xf32>\n"
             "  %s = attnedit.scale %m {factor = 0.5 : f64} : tensor<6xf32>\n"
             "  %y = attnedit.add %s, %a : tensor<6xf32>",
             "tensor<6xf32>"},
        Case{"reshape_transpose",
             "%x: tensor<2x3x4xf32> {attnedit.wrt}",
             "  %t = attnedit.transpose %x {permutation = array<i64: 2, 0, 1>} : "
             "(tensor<2x3x4xf32>) -> tensor<4x2x3xf32>\n"
             "  %y = attnedit.reshape %t : (tensor<4x2x3xf32>) -> tensor<8x3xf32>",
             "tensor<8x3xf32>"},
        Case{"slice_concat",
             "%a: tensor<3x5xf32> {attnedit.wrt}, %b: tensor<3x2xf32> {attnedit.wrt}",
             "  %s = attnedit.slice %a {axis = 1 : i64, offset = 1 : i64, size = 3 : i64} : "
             "(tensor<3x5xf32>) -> tensor<3x3xf32>\n"
             "  %y = attnedit.concat %b, %s {axis = 1 : i64} : (tensor<3x2xf32>, "
             "tensor<3x3xf32>) -> tensor<3x5xf32>",
             "tensor<3x5xf32>"},
        Case{"broadcast",
             "%x: tensor<3x1x4xf32> {attnedit.wrt}",
             "  %y = attnedit.broadcast %x : (tensor<3x1x4xf32>) -> tensor<3x5x4xf32>",
             "tensor<3x5x4xf32>"},
        Case{"convert",
             "%x: tensor<4xf32> {attnedit.wrt}",
             "  %y = attnedit.convert %x : tensor<4xf32> -> tensor<4xf32>",
             "tensor<4xf32>"},
        // Losses (the KL teacher side is frozen: only the student is checked).
        Case{"mse_loss",
             "%a: tensor<3x4xf32> {attnedit.wrt}, %b: tensor<3x4xf32> {attnedit.wrt}",
             "  %y = attnedit.mse_loss %a, %b : tensor<3x4xf32>", "tensor<f32>"},
        Case{"kl_loss",
             "%t: tensor<2x3x5xf32>, %s: tensor<2x3x5xf32> {attnedit.wrt}",
             "  %y = attnedit.kl_loss %t, %s {temperature = 2.0 : f64} : tensor<2x3x5xf32>",
             "tensor<f32>"},
        Case{"cross_entropy_loss",
             "%l: tensor<4x5xf32> {attnedit.wrt}, %ids: tensor<4xi32>",
             "  %y = attnedit.cross_entropy_loss %l, %ids : (tensor<4x5xf32>, tensor<4xi32>) "
             "-> tensor<f32>",
             "tensor<f32>"},
        Case{"cosine_loss",
             "%a: tensor<3x4xf32> {attnedit.wrt}, %b: tensor<3x4xf32> {attnedit.wrt}",
             "  %y = attnedit.cosine_loss %a, %b : tensor<3x4xf32>", "tensor<f32>"},
        // Composites, through their decompositions.
        Case{"attention_gqa_qk_norm",
             "%x: tensor<5x16xf32> {attnedit.wrt}, %p: tensor<5xi32>, %wq: tensor<16x16xf32> "
             "{attnedit.wrt}, %wk: tensor<8x16xf32> {attnedit.wrt}, %wv: tensor<8x16xf32> "
             "{attnedit.wrt}, %wo: tensor<16x16xf32> {attnedit.wrt}, %qn: tensor<4xf32> "
             "{attnedit.wrt}, %kn: tensor<4xf32> {attnedit.wrt}",
             std::string("  %y = attnedit.attention %x, %p weights(%wq, %wk, %wv, %wo) "
                         "qk_norm(%qn, %kn) {num_heads = 4 : i64, num_kv_heads = 2 : i64, "
                         "head_dim = 4 : i64, scale = 0.5 : f64, rope_theta = 100.0 : f64, "
                         "rotary_dim = 4 : i64, rope_style = #attnedit<rope_style "
                         "rotate_half>, window = 3 : i64} : ") +
                 "(tensor<5x16xf32>, tensor<5xi32>, tensor<16x16xf32>, tensor<8x16xf32>, "
                 "tensor<8x16xf32>, tensor<16x16xf32>, tensor<4xf32>, tensor<4xf32>) -> "
                 "tensor<5x16xf32>",
             "tensor<5x16xf32>"},
        Case{"gate_swa_headwise_sinks",
             "%x: tensor<5x16xf32> {attnedit.wrt}, %p: tensor<5xi32>, %wq: tensor<16x16xf32>, "
             "%wk: tensor<8x16xf32>, %wv: tensor<8x16xf32>, %wo: tensor<16x16xf32> "
             "{attnedit.wrt}, %g: tensor<4x16xf32> {attnedit.wrt}, %s: tensor<4xf32> "
             "{attnedit.wrt}",
             std::string("  %y = attnedit.gate_swa %x, %p weights(%wq, %wk, %wv, %wo) gate(%g) "
                         "sinks(%s) {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = "
                         "4 : i64, scale = 0.5 : f64, rope_theta = 100.0 : f64, rotary_dim = 4 "
                         ": i64, rope_style = #attnedit<rope_style interleaved>, window = 2 : "
                         "i64, gate = #attnedit<gate_kind headwise>} : ") +
                 "(tensor<5x16xf32>, tensor<5xi32>, tensor<16x16xf32>, tensor<8x16xf32>, "
                 "tensor<8x16xf32>, tensor<16x16xf32>, tensor<4x16xf32>, tensor<4xf32>) -> "
                 "tensor<5x16xf32>",
             "tensor<5x16xf32>"},
        Case{"mla_q_lora",
             "%x: tensor<4x16xf32> {attnedit.wrt}, %p: tensor<4xi32>, %qa: tensor<6x16xf32> "
             "{attnedit.wrt}, %qan: tensor<6xf32> {attnedit.wrt}, %qb: tensor<24x6xf32> "
             "{attnedit.wrt}, %kva: tensor<10x16xf32> {attnedit.wrt}, %kvn: tensor<8xf32> "
             "{attnedit.wrt}, %kvb: tensor<28x8xf32> {attnedit.wrt}, %o: tensor<16x12xf32> "
             "{attnedit.wrt}",
             std::string("  %y = attnedit.mla %x, %p q_lora(%qa, %qan, %qb) kv(%kva, %kvn, "
                         "%kvb) out(%o) {num_heads = 4 : i64, q_lora_rank = 6 : i64, "
                         "kv_lora_rank = 8 : i64, qk_nope_head_dim = 4 : i64, "
                         "qk_rope_head_dim = 2 : i64, v_head_dim = 3 : i64, scale = 0.4 : "
                         "f64, rope_theta = 100.0 : f64, rope_style = #attnedit<rope_style "
                         "rotate_half>} : ") +
                 "(tensor<4x16xf32>, tensor<4xi32>, tensor<6x16xf32>, tensor<6xf32>, "
                 "tensor<24x6xf32>, tensor<10x16xf32>, tensor<8xf32>, tensor<28x8xf32>, "
                 "tensor<16x12xf32>) -> tensor<4x16xf32>",
             "tensor<4x16xf32>"}),
    [](const ::testing::TestParamInfo<Case> &info) { return std::string(info.param.name); });

} // namespace
