//===- CompiledExecutorTest.cpp - every lowered op vs the reference evaluator ===//
//
// Each case is one function of one or a few attnedit ops; the compiled CPU
// executor (backends/cpu, JIT) must give the reference evaluator's results
// within 1e-5 relative on random inputs, dynamic dimensions included.
// Whole models (forward, generation, gradients) are checked end to end by
// tests/e2e/test_cpu_parity.py.
//
//===----------------------------------------------------------------------===//

#include "attnedit/CPU/JitModule.h"
#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/Runtime/Execution/Executor.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/ExecutionEngine/CRunnerUtils.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Object/ELFObjectFile.h"
#include "llvm/Support/ErrorHandling.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

using namespace mlir;
using namespace mlir::attnedit;

namespace {

struct Case {
  const char *name;
  const char *body; // a func.func @f
  int64_t dynamic;  // the size given to every dynamic dimension
  bool ignoreFirst = false; // the first id is -1 (an ignored target)
};

std::ostream &operator<<(std::ostream &os, const Case &c) { return os << c.name; }

const Case kCases[] = {
    {"embedding", R"(func.func @f(%t: tensor<8x6xf32>, %ids: tensor<?xi32>) -> tensor<?x6xf32> {
       %0 = attnedit.embedding %t[%ids] : (tensor<8x6xf32>, tensor<?xi32>) -> tensor<?x6xf32>
       return %0 : tensor<?x6xf32> })", 5},
    {"linear_bias_rank3", R"(func.func @f(%x: tensor<2x?x6xf32>, %w: tensor<5x6xf32>, %b: tensor<5xf32>) -> tensor<2x?x5xf32> {
       %0 = attnedit.linear %x, %w, %b : (tensor<2x?x6xf32>, tensor<5x6xf32>, tensor<5xf32>) -> tensor<2x?x5xf32>
       return %0 : tensor<2x?x5xf32> })", 3},
    {"rms_norm", R"(func.func @f(%x: tensor<?x16xf32>, %w: tensor<16xf32>) -> tensor<?x16xf32> {
       %0 = attnedit.rms_norm %x, %w {eps = 1.0e-6 : f64} : (tensor<?x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
       return %0 : tensor<?x16xf32> })", 4},
    {"rope_rotate_half_partial", R"(func.func @f(%x: tensor<?x2x8xf32>, %p: tensor<?xi32>) -> tensor<?x2x8xf32> {
       %0 = attnedit.rope %x, %p {rotary_dim = 4 : i64, style = #attnedit<rope_style rotate_half>, theta = 10000.0 : f64} : (tensor<?x2x8xf32>, tensor<?xi32>) -> tensor<?x2x8xf32>
       return %0 : tensor<?x2x8xf32> })", 5},
    {"rope_interleaved_inverse", R"(func.func @f(%x: tensor<?x2x8xf32>, %p: tensor<?xi32>) -> tensor<?x2x8xf32> {
       %0 = attnedit.rope %x, %p {rotary_dim = 8 : i64, style = #attnedit<rope_style interleaved>, theta = 500.0 : f64, inverse} : (tensor<?x2x8xf32>, tensor<?xi32>) -> tensor<?x2x8xf32>
       return %0 : tensor<?x2x8xf32> })", 5},
    {"rope_llama3", R"(func.func @f(%x: tensor<?x1x16xf32>, %p: tensor<?xi32>) -> tensor<?x1x16xf32> {
       %0 = attnedit.rope %x, %p {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 10000.0 : f64, llama3_scaling = array<f64: 8.0, 1.0, 4.0, 32.0>} : (tensor<?x1x16xf32>, tensor<?xi32>) -> tensor<?x1x16xf32>
       return %0 : tensor<?x1x16xf32> })", 6},
    {"matmul_rank4_transposed_rhs", R"(func.func @f(%a: tensor<2x3x?x4xf32>, %b: tensor<2x3x5x4xf32>) -> tensor<2x3x?x5xf32> {
       %t = attnedit.transpose %b {permutation = array<i64: 0, 1, 3, 2>} : (tensor<2x3x5x4xf32>) -> tensor<2x3x4x5xf32>
       %0 = attnedit.matmul %a, %t : (tensor<2x3x?x4xf32>, tensor<2x3x4x5xf32>) -> tensor<2x3x?x5xf32>
       return %0 : tensor<2x3x?x5xf32> })", 3},
    {"matmul_transposed_lhs", R"(func.func @f(%a: tensor<4x?xf32>, %b: tensor<4x5xf32>) -> tensor<?x5xf32> {
       %t = attnedit.transpose %a {permutation = array<i64: 1, 0>} : (tensor<4x?xf32>) -> tensor<?x4xf32>
       %0 = attnedit.matmul %t, %b : (tensor<?x4xf32>, tensor<4x5xf32>) -> tensor<?x5xf32>
       return %0 : tensor<?x5xf32> })", 3},
    {"attention_scores_masked_softmax_sinks", R"(func.func @f(%s: tensor<2x?x?xf32>, %k: tensor<2xf32>) -> tensor<2x?x?xf32> {
       %0 = attnedit.scale %s {factor = 0.5 : f64} : tensor<2x?x?xf32>
       %1 = attnedit.causal_mask %0 {window = 2 : i64} : tensor<2x?x?xf32>
       %2 = attnedit.softmax %1 sinks(%k : tensor<2xf32>) {axis = 2 : i64} : tensor<2x?x?xf32>
       return %2 : tensor<2x?x?xf32> })", 4},
    // The fused attention kernel (AttentionLibrary.cpp): 100 tokens span
    // several 32-query and 64-key blocks; GQA with a window smaller than a
    // block; sinks; and 3 queries at the end of 70 keys (Tq < Tk).
    {"fused_attention_gqa_window", R"(func.func @f(%q: tensor<?x4x8xf32>, %k: tensor<?x2x8xf32>, %v: tensor<?x2x8xf32>) -> tensor<?x4x8xf32> {
       %qt = attnedit.transpose %q {permutation = array<i64: 1, 0, 2>} : (tensor<?x4x8xf32>) -> tensor<4x?x8xf32>
       %kt = attnedit.transpose %k {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x8xf32>) -> tensor<2x?x8xf32>
       %vt = attnedit.transpose %v {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x8xf32>) -> tensor<2x?x8xf32>
       %kr = attnedit.repeat_kv %kt {repeats = 2 : i64} : (tensor<2x?x8xf32>) -> tensor<4x?x8xf32>
       %vr = attnedit.repeat_kv %vt {repeats = 2 : i64} : (tensor<2x?x8xf32>) -> tensor<4x?x8xf32>
       %kT = attnedit.transpose %kr {permutation = array<i64: 0, 2, 1>} : (tensor<4x?x8xf32>) -> tensor<4x8x?xf32>
       %s = attnedit.matmul %qt, %kT : (tensor<4x?x8xf32>, tensor<4x8x?xf32>) -> tensor<4x?x?xf32>
       %ss = attnedit.scale %s {factor = 0.35 : f64} : tensor<4x?x?xf32>
       %m = attnedit.causal_mask %ss {window = 20 : i64} : tensor<4x?x?xf32>
       %p = attnedit.softmax %m {axis = 2 : i64} : tensor<4x?x?xf32>
       %o = attnedit.matmul %p, %vr : (tensor<4x?x?xf32>, tensor<4x?x8xf32>) -> tensor<4x?x8xf32>
       %ot = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : (tensor<4x?x8xf32>) -> tensor<?x4x8xf32>
       return %ot : tensor<?x4x8xf32> })", 100},
    {"fused_attention_sinks", R"(func.func @f(%q: tensor<?x2x8xf32>, %k: tensor<?x2x8xf32>, %v: tensor<?x2x6xf32>, %sk: tensor<2xf32>) -> tensor<2x?x6xf32> {
       %qt = attnedit.transpose %q {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x8xf32>) -> tensor<2x?x8xf32>
       %kt = attnedit.transpose %k {permutation = array<i64: 1, 2, 0>} : (tensor<?x2x8xf32>) -> tensor<2x8x?xf32>
       %vt = attnedit.transpose %v {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x6xf32>) -> tensor<2x?x6xf32>
       %kT = attnedit.transpose %kt {permutation = array<i64: 0, 2, 1>} : (tensor<2x8x?xf32>) -> tensor<2x?x8xf32>
       %kTT = attnedit.transpose %kT {permutation = array<i64: 0, 2, 1>} : (tensor<2x?x8xf32>) -> tensor<2x8x?xf32>
       %s = attnedit.matmul %qt, %kTT : (tensor<2x?x8xf32>, tensor<2x8x?xf32>) -> tensor<2x?x?xf32>
       %m = attnedit.causal_mask %s : tensor<2x?x?xf32>
       %p = attnedit.softmax %m sinks(%sk : tensor<2xf32>) {axis = 2 : i64} : tensor<2x?x?xf32>
       %o = attnedit.matmul %p, %vt : (tensor<2x?x?xf32>, tensor<2x?x6xf32>) -> tensor<2x?x6xf32>
       return %o : tensor<2x?x6xf32> })", 70},
    {"fused_attention_last_queries", R"(func.func @f(%q: tensor<2x3x8xf32>, %k: tensor<2x?x8xf32>, %v: tensor<2x?x8xf32>) -> tensor<3x2x8xf32> {
       %kT = attnedit.transpose %k {permutation = array<i64: 0, 2, 1>} : (tensor<2x?x8xf32>) -> tensor<2x8x?xf32>
       %s = attnedit.matmul %q, %kT : (tensor<2x3x8xf32>, tensor<2x8x?xf32>) -> tensor<2x3x?xf32>
       %m = attnedit.causal_mask %s {window = 5 : i64} : tensor<2x3x?xf32>
       %p = attnedit.softmax %m {axis = 2 : i64} : tensor<2x3x?xf32>
       %o = attnedit.matmul %p, %v : (tensor<2x3x?xf32>, tensor<2x?x8xf32>) -> tensor<2x3x8xf32>
       %ot = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : (tensor<2x3x8xf32>) -> tensor<3x2x8xf32>
       return %ot : tensor<3x2x8xf32> })", 70},
    {"softmax_axis0_mask_zero_fill", R"(func.func @f(%s: tensor<3x?x4xf32>) -> tensor<3x?x4xf32> {
       %0 = attnedit.causal_mask %s {zero_fill} : tensor<3x?x4xf32>
       %1 = attnedit.softmax %0 {axis = 0 : i64} : tensor<3x?x4xf32>
       return %1 : tensor<3x?x4xf32> })", 2},
    {"repeat_kv", R"(func.func @f(%x: tensor<2x?x3xf32>) -> tensor<6x?x3xf32> {
       %0 = attnedit.repeat_kv %x {repeats = 3 : i64} : (tensor<2x?x3xf32>) -> tensor<6x?x3xf32>
       return %0 : tensor<6x?x3xf32> })", 4},
    {"elementwise", R"(func.func @f(%x: tensor<?x7xf32>, %y: tensor<?x7xf32>) -> tensor<?x7xf32> {
       %0 = attnedit.silu %x : tensor<?x7xf32>
       %1 = attnedit.sigmoid %y : tensor<?x7xf32>
       %2 = attnedit.mul %0, %1 : tensor<?x7xf32>
       %3 = attnedit.add %2, %x : tensor<?x7xf32>
       return %3 : tensor<?x7xf32> })", 3},
    {"shape_ops", R"(func.func @f(%x: tensor<?x6xf32>, %g: tensor<?x1x3xf32>) -> tensor<?x2x5xf32> {
       %0 = attnedit.reshape %x : (tensor<?x6xf32>) -> tensor<?x2x3xf32>
       %1 = attnedit.broadcast %g : (tensor<?x1x3xf32>) -> tensor<?x2x3xf32>
       %2 = attnedit.mul %0, %1 : tensor<?x2x3xf32>
       %3 = attnedit.slice %2 {axis = 2 : i64, offset = 1 : i64, size = 2 : i64} : (tensor<?x2x3xf32>) -> tensor<?x2x2xf32>
       %4 = attnedit.concat %2, %3 {axis = 2 : i64} : (tensor<?x2x3xf32>, tensor<?x2x2xf32>) -> tensor<?x2x5xf32>
       return %4 : tensor<?x2x5xf32> })", 3},
    {"reduce_sum_pad", R"(func.func @f(%x: tensor<?x4x5xf32>) -> (tensor<?x5xf32>, tensor<?x1x5xf32>, tensor<?x7x5xf32>) {
       %0 = attnedit.reduce_sum %x {axis = 1 : i64} : (tensor<?x4x5xf32>) -> tensor<?x5xf32>
       %1 = attnedit.reduce_sum %x {axis = 1 : i64, keep_dims} : (tensor<?x4x5xf32>) -> tensor<?x1x5xf32>
       %2 = attnedit.pad %x {axis = 1 : i64, before = 1 : i64, after = 2 : i64} : (tensor<?x4x5xf32>) -> tensor<?x7x5xf32>
       return %0, %1, %2 : tensor<?x5xf32>, tensor<?x1x5xf32>, tensor<?x7x5xf32> })", 3},
    {"losses", R"(func.func @f(%a: tensor<?x8xf32>, %b: tensor<?x8xf32>, %t: tensor<?xi32>) -> (tensor<f32>, tensor<f32>, tensor<f32>, tensor<f32>) {
       %0 = attnedit.mse_loss %a, %b : tensor<?x8xf32>
       %1 = attnedit.kl_loss %a, %b {temperature = 2.0 : f64} : tensor<?x8xf32>
       %2 = attnedit.cross_entropy_loss %a, %t : (tensor<?x8xf32>, tensor<?xi32>) -> tensor<f32>
       %3 = attnedit.cosine_loss %a, %b : tensor<?x8xf32>
       return %0, %1, %2, %3 : tensor<f32>, tensor<f32>, tensor<f32>, tensor<f32> })", 5, true},
    {"loss_grads", R"(func.func @f(%a: tensor<?x8xf32>, %b: tensor<?x8xf32>, %t: tensor<?xi32>, %g: tensor<f32>) -> (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>) {
       %0 = attnedit.loss_grad %a, %b, %g {kind = #attnedit<loss_kind mse>, operand = 1 : i64} : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<f32>) -> tensor<?x8xf32>
       %1 = attnedit.loss_grad %a, %b, %g {kind = #attnedit<loss_kind kl>, operand = 1 : i64, temperature = 2.0 : f64} : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<f32>) -> tensor<?x8xf32>
       %2 = attnedit.loss_grad %a, %t, %g {kind = #attnedit<loss_kind cross_entropy>, operand = 0 : i64} : (tensor<?x8xf32>, tensor<?xi32>, tensor<f32>) -> tensor<?x8xf32>
       %3 = attnedit.loss_grad %a, %b, %g {kind = #attnedit<loss_kind cosine>, operand = 0 : i64} : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<f32>) -> tensor<?x8xf32>
       %4 = attnedit.loss_grad %a, %b, %g {kind = #attnedit<loss_kind cosine>, operand = 1 : i64} : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<f32>) -> tensor<?x8xf32>
       return %0, %1, %2, %3, %4 : tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32> })", 5, true},
    {"backward_ops", R"(func.func @f(%x: tensor<?x6xf32>, %w: tensor<6xf32>, %g: tensor<?x6xf32>, %ids: tensor<?xi32>) -> (tensor<8x6xf32>, tensor<?x6xf32>, tensor<6xf32>, tensor<?x6xf32>, tensor<?x6xf32>, tensor<?x6xf32>) {
       %0 = attnedit.embedding_grad %g[%ids] : (tensor<?x6xf32>, tensor<?xi32>) -> tensor<8x6xf32>
       %1 = attnedit.rms_norm_grad %x, %w, %g {eps = 1.0e-5 : f64} : (tensor<?x6xf32>, tensor<6xf32>, tensor<?x6xf32>) -> tensor<?x6xf32>
       %2 = attnedit.rms_norm_weight_grad %x, %g {eps = 1.0e-5 : f64} : (tensor<?x6xf32>, tensor<?x6xf32>) -> tensor<6xf32>
       %y = attnedit.softmax %x {axis = 1 : i64} : tensor<?x6xf32>
       %3 = attnedit.softmax_grad %y, %g {axis = 1 : i64} : tensor<?x6xf32>
       %4 = attnedit.silu_grad %x, %g : tensor<?x6xf32>
       %s = attnedit.sigmoid %x : tensor<?x6xf32>
       %5 = attnedit.sigmoid_grad %s, %g : tensor<?x6xf32>
       return %0, %1, %2, %3, %4, %5 : tensor<8x6xf32>, tensor<?x6xf32>, tensor<6xf32>, tensor<?x6xf32>, tensor<?x6xf32>, tensor<?x6xf32> })", 5},
    {"sink_grad", R"(func.func @f(%s: tensor<2x?x?xf32>, %k: tensor<2xf32>, %g: tensor<2x?x?xf32>) -> tensor<2xf32> {
       %y = attnedit.softmax %s sinks(%k : tensor<2xf32>) {axis = 2 : i64} : tensor<2x?x?xf32>
       %0 = attnedit.sink_grad %y, %g : (tensor<2x?x?xf32>, tensor<2x?x?xf32>) -> tensor<2xf32>
       return %0 : tensor<2xf32> })", 3},    // --attnedit-autodiff's gradient of an MSE through an attention chain: the
    // training rewrite fuses the chain and its backward ops (flash forward
    // with log-sum-exp, FlashAttention-2 backward). Lengths span several key
    // (64) and query (32) blocks: GQA with a window and GateSWA's sinks
    // (their gradient too) on two packed sequences of 75 tokens, and MLA's
    // shapes (query and key width 24, value width 16) without sinks.
    {"attention_training_sinks", R"(func.func @f(%arg0: tensor<?x4x16xf32>, %arg1: tensor<?x2x16xf32>, %arg2: tensor<?x2x16xf32>, %arg3: tensor<4xf32>, %arg4: tensor<?x4x16xf32>) -> (tensor<f32>, tensor<?x4x16xf32>, tensor<?x2x16xf32>, tensor<?x2x16xf32>, tensor<4xf32>) {
       %0 = attnedit.transpose %arg0 {permutation = array<i64: 1, 0, 2>} : (tensor<?x4x16xf32>) -> tensor<4x?x16xf32>
       %1 = attnedit.transpose %arg1 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
       %2 = attnedit.transpose %arg2 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
       %3 = attnedit.repeat_kv %1 {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
       %4 = attnedit.repeat_kv %2 {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
       %5 = attnedit.transpose %3 {permutation = array<i64: 0, 2, 1>} : (tensor<4x?x16xf32>) -> tensor<4x16x?xf32>
       %6 = attnedit.matmul %0, %5 : (tensor<4x?x16xf32>, tensor<4x16x?xf32>) -> tensor<4x?x?xf32>
       %7 = attnedit.scale %6 {factor = 2.500000e-01 : f64} : tensor<4x?x?xf32>
       %8 = attnedit.causal_mask %7 {segments = 2 : i64, window = 70 : i64} : tensor<4x?x?xf32>
       %9 = attnedit.softmax %8 sinks(%arg3 : tensor<4xf32>) {axis = 2 : i64} : tensor<4x?x?xf32>
       %10 = attnedit.matmul %9, %4 : (tensor<4x?x?xf32>, tensor<4x?x16xf32>) -> tensor<4x?x16xf32>
       %11 = attnedit.transpose %10 {permutation = array<i64: 1, 0, 2>} : (tensor<4x?x16xf32>) -> tensor<?x4x16xf32>
       %12 = attnedit.mse_loss %11, %arg4 : tensor<?x4x16xf32>
       %cst = arith.constant dense<1.000000e+00> : tensor<f32>
       %13 = attnedit.loss_grad %11, %arg4, %cst {kind = #attnedit<loss_kind mse>, operand = 0 : i64} : (tensor<?x4x16xf32>, tensor<?x4x16xf32>, tensor<f32>) -> tensor<?x4x16xf32>
       %14 = attnedit.loss_grad %11, %arg4, %cst {kind = #attnedit<loss_kind mse>, operand = 1 : i64} : (tensor<?x4x16xf32>, tensor<?x4x16xf32>, tensor<f32>) -> tensor<?x4x16xf32>
       %15 = attnedit.transpose %13 {permutation = array<i64: 1, 0, 2>} : (tensor<?x4x16xf32>) -> tensor<4x?x16xf32>
       %16 = attnedit.transpose %4 {permutation = array<i64: 0, 2, 1>} : (tensor<4x?x16xf32>) -> tensor<4x16x?xf32>
       %17 = attnedit.matmul %15, %16 : (tensor<4x?x16xf32>, tensor<4x16x?xf32>) -> tensor<4x?x?xf32>
       %18 = attnedit.transpose %9 {permutation = array<i64: 0, 2, 1>} : (tensor<4x?x?xf32>) -> tensor<4x?x?xf32>
       %19 = attnedit.matmul %18, %15 : (tensor<4x?x?xf32>, tensor<4x?x16xf32>) -> tensor<4x?x16xf32>
       %20 = attnedit.softmax_grad %9, %17 {axis = 2 : i64} : tensor<4x?x?xf32>
       %21 = attnedit.sink_grad %9, %17 : (tensor<4x?x?xf32>, tensor<4x?x?xf32>) -> tensor<4xf32>
       %22 = attnedit.causal_mask %20 {segments = 2 : i64, window = 70 : i64, zero_fill} : tensor<4x?x?xf32>
       %23 = attnedit.scale %22 {factor = 2.500000e-01 : f64} : tensor<4x?x?xf32>
       %24 = attnedit.transpose %5 {permutation = array<i64: 0, 2, 1>} : (tensor<4x16x?xf32>) -> tensor<4x?x16xf32>
       %25 = attnedit.matmul %23, %24 : (tensor<4x?x?xf32>, tensor<4x?x16xf32>) -> tensor<4x?x16xf32>
       %26 = attnedit.transpose %0 {permutation = array<i64: 0, 2, 1>} : (tensor<4x?x16xf32>) -> tensor<4x16x?xf32>
       %27 = attnedit.matmul %26, %23 : (tensor<4x16x?xf32>, tensor<4x?x?xf32>) -> tensor<4x16x?xf32>
       %28 = attnedit.transpose %27 {permutation = array<i64: 0, 2, 1>} : (tensor<4x16x?xf32>) -> tensor<4x?x16xf32>
       %29 = attnedit.reshape %19 : (tensor<4x?x16xf32>) -> tensor<2x2x?xf32>
       %30 = attnedit.reduce_sum %29 {axis = 1 : i64} : (tensor<2x2x?xf32>) -> tensor<2x?xf32>
       %31 = attnedit.reshape %30 : (tensor<2x?xf32>) -> tensor<2x?x16xf32>
       %32 = attnedit.reshape %28 : (tensor<4x?x16xf32>) -> tensor<2x2x?xf32>
       %33 = attnedit.reduce_sum %32 {axis = 1 : i64} : (tensor<2x2x?xf32>) -> tensor<2x?xf32>
       %34 = attnedit.reshape %33 : (tensor<2x?xf32>) -> tensor<2x?x16xf32>
       %35 = attnedit.transpose %31 {permutation = array<i64: 1, 0, 2>} : (tensor<2x?x16xf32>) -> tensor<?x2x16xf32>
       %36 = attnedit.transpose %34 {permutation = array<i64: 1, 0, 2>} : (tensor<2x?x16xf32>) -> tensor<?x2x16xf32>
       %37 = attnedit.transpose %25 {permutation = array<i64: 1, 0, 2>} : (tensor<4x?x16xf32>) -> tensor<?x4x16xf32>
       return %12, %37, %36, %35, %21 : tensor<f32>, tensor<?x4x16xf32>, tensor<?x2x16xf32>, tensor<?x2x16xf32>, tensor<4xf32>
       })", 150},
    {"attention_training_mla_shapes", R"(func.func @f(%arg0: tensor<?x2x24xf32>, %arg1: tensor<?x2x24xf32>, %arg2: tensor<?x2x16xf32>, %arg3: tensor<?x2x16xf32>) -> (tensor<f32>, tensor<?x2x24xf32>, tensor<?x2x24xf32>, tensor<?x2x16xf32>) {
       %0 = attnedit.transpose %arg0 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x24xf32>) -> tensor<2x?x24xf32>
       %1 = attnedit.transpose %arg1 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x24xf32>) -> tensor<2x?x24xf32>
       %2 = attnedit.transpose %arg2 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
       %3 = attnedit.transpose %1 {permutation = array<i64: 0, 2, 1>} : (tensor<2x?x24xf32>) -> tensor<2x24x?xf32>
       %4 = attnedit.matmul %0, %3 : (tensor<2x?x24xf32>, tensor<2x24x?xf32>) -> tensor<2x?x?xf32>
       %5 = attnedit.scale %4 {factor = 2.000000e-01 : f64} : tensor<2x?x?xf32>
       %6 = attnedit.causal_mask %5 : tensor<2x?x?xf32>
       %7 = attnedit.softmax %6 {axis = 2 : i64} : tensor<2x?x?xf32>
       %8 = attnedit.matmul %7, %2 : (tensor<2x?x?xf32>, tensor<2x?x16xf32>) -> tensor<2x?x16xf32>
       %9 = attnedit.transpose %8 {permutation = array<i64: 1, 0, 2>} : (tensor<2x?x16xf32>) -> tensor<?x2x16xf32>
       %10 = attnedit.mse_loss %9, %arg3 : tensor<?x2x16xf32>
       %cst = arith.constant dense<1.000000e+00> : tensor<f32>
       %11 = attnedit.loss_grad %9, %arg3, %cst {kind = #attnedit<loss_kind mse>, operand = 0 : i64} : (tensor<?x2x16xf32>, tensor<?x2x16xf32>, tensor<f32>) -> tensor<?x2x16xf32>
       %12 = attnedit.loss_grad %9, %arg3, %cst {kind = #attnedit<loss_kind mse>, operand = 1 : i64} : (tensor<?x2x16xf32>, tensor<?x2x16xf32>, tensor<f32>) -> tensor<?x2x16xf32>
       %13 = attnedit.transpose %11 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
       %14 = attnedit.transpose %2 {permutation = array<i64: 0, 2, 1>} : (tensor<2x?x16xf32>) -> tensor<2x16x?xf32>
       %15 = attnedit.matmul %13, %14 : (tensor<2x?x16xf32>, tensor<2x16x?xf32>) -> tensor<2x?x?xf32>
       %16 = attnedit.transpose %7 {permutation = array<i64: 0, 2, 1>} : (tensor<2x?x?xf32>) -> tensor<2x?x?xf32>
       %17 = attnedit.matmul %16, %13 : (tensor<2x?x?xf32>, tensor<2x?x16xf32>) -> tensor<2x?x16xf32>
       %18 = attnedit.softmax_grad %7, %15 {axis = 2 : i64} : tensor<2x?x?xf32>
       %19 = attnedit.causal_mask %18 {zero_fill} : tensor<2x?x?xf32>
       %20 = attnedit.scale %19 {factor = 2.000000e-01 : f64} : tensor<2x?x?xf32>
       %21 = attnedit.transpose %3 {permutation = array<i64: 0, 2, 1>} : (tensor<2x24x?xf32>) -> tensor<2x?x24xf32>
       %22 = attnedit.matmul %20, %21 : (tensor<2x?x?xf32>, tensor<2x?x24xf32>) -> tensor<2x?x24xf32>
       %23 = attnedit.transpose %0 {permutation = array<i64: 0, 2, 1>} : (tensor<2x?x24xf32>) -> tensor<2x24x?xf32>
       %24 = attnedit.matmul %23, %20 : (tensor<2x24x?xf32>, tensor<2x?x?xf32>) -> tensor<2x24x?xf32>
       %25 = attnedit.transpose %24 {permutation = array<i64: 0, 2, 1>} : (tensor<2x24x?xf32>) -> tensor<2x?x24xf32>
       %26 = attnedit.transpose %17 {permutation = array<i64: 1, 0, 2>} : (tensor<2x?x16xf32>) -> tensor<?x2x16xf32>
       %27 = attnedit.transpose %25 {permutation = array<i64: 1, 0, 2>} : (tensor<2x?x24xf32>) -> tensor<?x2x24xf32>
       %28 = attnedit.transpose %22 {permutation = array<i64: 1, 0, 2>} : (tensor<2x?x24xf32>) -> tensor<?x2x24xf32>
       return %10, %28, %27, %26 : tensor<f32>, tensor<?x2x24xf32>, tensor<?x2x24xf32>, tensor<?x2x16xf32>
       })", 100},
};

/// The case named `name` (a name no case has stops the tests).
const Case &caseNamed(llvm::StringRef name) {
  const Case *c = std::find_if(std::begin(kCases), std::end(kCases),
                               [&](const Case &x) { return name == x.name; });
  if (c == std::end(kCases))
    llvm::report_fatal_error("no test case named '" + name + "'");
  return *c;
}

/// Case `name`'s body with every `from` replaced by its `to` (head dims).
std::string withHeadDims(llvm::StringRef name,
                         std::initializer_list<std::pair<llvm::StringRef, llvm::StringRef>> dims) {
  std::string body = caseNamed(name).body;
  for (auto [from, to] : dims)
    for (size_t at = body.find(from); at != std::string::npos; at = body.find(from, at + to.size()))
      body.replace(at, from.size(), to.str());
  return body;
}

/// kCases, and two at wider heads, where the attention kernels take other
/// paths: the GQA-window forward at head dim 64 (P·V rows of 4 vectors), and
/// the MLA-shapes training at 80 (q, k: rows of 5 vectors, the kernels'
/// generic loop in dQ and dK) and 128 (v: 8 vectors).
std::vector<Case> allCases() {
  static const std::string gqa64 = withHeadDims("fused_attention_gqa_window", {{"x8x", "x64x"}});
  static const std::string wide =
      withHeadDims("attention_training_mla_shapes", {{"x24x", "x80x"}, {"x16x", "x128x"}});
  std::vector<Case> cases(std::begin(kCases), std::end(kCases));
  cases.push_back({"fused_attention_gqa_window_head_dim_64", gqa64.c_str(), 100});
  cases.push_back({"attention_training_wide_heads", wide.c_str(), 70});
  return cases;
}

/// Random arguments for @f: i32 vectors hold ids 0..7 (with `ignoreFirst`
/// the first is -1, an ignored target), everything else small normals.
std::vector<Tensor> randomArgs(func::FuncOp func, int64_t dynamic, bool ignoreFirst) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 0.7f);
  std::vector<Tensor> args;
  for (Type type : func.getArgumentTypes()) {
    auto shaped = cast<RankedTensorType>(type);
    llvm::SmallVector<int64_t> shape;
    for (int64_t d : shaped.getShape())
      shape.push_back(ShapedType::isDynamic(d) ? dynamic : d);
    if (shaped.getElementType().isInteger(32)) {
      std::vector<int32_t> ids(shape[0]);
      for (size_t i = 0; i < ids.size(); ++i)
        ids[i] = (int32_t)((i * 5 + 1) % 8);
      if (ignoreFirst)
        ids[0] = -1;
      args.push_back(Tensor::ints(ids));
      continue;
    }
    Tensor t = Tensor::zeros(shape);
    for (int64_t i = 0; i < t.numel(); ++i)
      t.mutableData()[i] = normal(rng);
    args.push_back(t);
  }
  return args;
}

class CompiledExecutorTest : public ::testing::TestWithParam<Case> {};

// Tests that the compiled result of each case equals the reference's within
// 1e-5 relative (per result, against its largest magnitude).
TEST_P(CompiledExecutorTest, MatchesReference) {
  MLIRContext context;
  context.loadDialect<AttnEditDialect, func::FuncDialect, arith::ArithDialect>();
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(GetParam().body, &context);
  ASSERT_TRUE(module);
  auto func = module->lookupSymbol<func::FuncOp>("f");
  std::vector<Tensor> args = randomArgs(func, GetParam().dynamic, GetParam().ignoreFirst);
  ParameterStore none;
  auto expected = createReferenceExecutor()->run(func, args, none);
  ASSERT_TRUE(bool(expected)) << llvm::toString(expected.takeError());
  std::unique_ptr<Executor> cpu = createCompiledExecutor(/*cacheDir=*/"");
  auto got = cpu->run(func, args, none);
  ASSERT_TRUE(bool(got)) << llvm::toString(got.takeError());
  ASSERT_EQ(got->size(), expected->size());
  for (size_t r = 0; r < got->size(); ++r) {
    const Tensor &a = (*got)[r], &b = (*expected)[r];
    ASSERT_EQ(a.shapeString(), b.shapeString()) << "result " << r;
    double scale = 0, diff = 0;
    for (int64_t i = 0; i < b.numel(); ++i) {
      scale = std::max(scale, (double)std::fabs(b.data()[i]));
      diff = std::isnan(a.data()[i]) ? INFINITY
                                     : std::max(diff, (double)std::fabs(a.data()[i] - b.data()[i]));
    }
    EXPECT_LE(diff, 1e-5 * std::max(scale, 1e-30)) << "result " << r << " of " << GetParam().name;
  }
  // A second call reuses the compiled function and gives the same values.
  auto again = cpu->run(func, args, none);
  ASSERT_TRUE(bool(again)) << llvm::toString(again.takeError());
  EXPECT_EQ(again->front().data()[0], got->front().data()[0]);
}

INSTANTIATE_TEST_SUITE_P(Ops, CompiledExecutorTest, ::testing::ValuesIn(allCases()),
                         [](const ::testing::TestParamInfo<Case> &info) {
                           return std::string(info.param.name);
                         });

// Tests that ids outside the table are refused before any compiled code
// runs, as the reference refuses them, and bad argument shapes are named.
TEST(CompiledExecutorErrors, BadIdsAndShapes) {
  MLIRContext context;
  context.loadDialect<AttnEditDialect, func::FuncDialect>();
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(kCases[0].body, &context);
  ASSERT_TRUE(module);
  auto func = module->lookupSymbol<func::FuncOp>("f");
  ParameterStore none;
  std::unique_ptr<Executor> cpu = createCompiledExecutor(/*cacheDir=*/"");
  auto bad = cpu->run(func, {Tensor::zeros({8, 6}), Tensor::ints({1, 8})}, none);
  ASSERT_FALSE(bool(bad));
  EXPECT_NE(llvm::toString(bad.takeError()).find("token id 8 at position 1 is outside the vocabulary [0, 8)"),
            std::string::npos);
  auto shape = cpu->run(func, {Tensor::zeros({7, 6}), Tensor::ints({1})}, none);
  ASSERT_FALSE(bool(shape));
  EXPECT_NE(llvm::toString(shape.takeError()).find("argument 0 has shape"), std::string::npos);
}

// Tests that a call whose working memory the machine cannot hold is
// refused with its size, before compiled code runs: the arena's allocation
// failed under a ulimit and the code faulted on the null pointer. Here an
// intermediate of 2^33 floats (32 GiB) lives only inside the call.
TEST(CompiledExecutorErrors, RefusesWorkingMemoryPastTheMachine) {
  if (physicalMemoryBytes() >= 32.0 * (1 << 30))
    GTEST_SKIP() << "this machine holds the 32 GiB intermediate; the refusal needs less memory";
  MLIRContext context;
  context.loadDialect<AttnEditDialect, func::FuncDialect>();
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(
      R"(func.func @f(%x: tensor<1x1024xf32>) -> tensor<1x1024xf32> {
           %0 = attnedit.pad %x {axis = 0 : i64, before = 0 : i64, after = 8388607 : i64} : (tensor<1x1024xf32>) -> tensor<8388608x1024xf32>
           %1 = attnedit.slice %0 {axis = 0 : i64, offset = 8388607 : i64, size = 1 : i64} : (tensor<8388608x1024xf32>) -> tensor<1x1024xf32>
           return %1 : tensor<1x1024xf32> })",
      &context);
  ASSERT_TRUE(module);
  ParameterStore none;
  auto result = createCompiledExecutor(/*cacheDir=*/"")->run(
      module->lookupSymbol<func::FuncOp>("f"), {Tensor::zeros({1, 1024})}, none);
  ASSERT_FALSE(bool(result));
  std::string message = llvm::toString(result.takeError());
  EXPECT_NE(message.find("cpu backend: a call needs 32.00 GiB of working memory"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("cannot allocate: use fewer tokens per call"), std::string::npos)
      << message;
}

// Tests the disk cache: a second executor (a later run) finds the object
// code and calling convention the first wrote and gives the same results
// without compiling; a corrupt entry is ignored and rebuilt, not trusted.
TEST(CompiledExecutorCache, SecondRunLoadsFromDisk) {
  MLIRContext context;
  context.loadDialect<AttnEditDialect, func::FuncDialect, arith::ArithDialect>();
  // losses: several results, i32 input, id checks
  const Case &c = caseNamed("losses");
  ASSERT_STREQ(c.name, "losses");
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(c.body, &context);
  ASSERT_TRUE(module);
  auto func = module->lookupSymbol<func::FuncOp>("f");
  std::vector<Tensor> args = randomArgs(func, c.dynamic, c.ignoreFirst);
  ParameterStore none;
  llvm::SmallString<128> dir;
  ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("attnedit-cache", dir));
  auto first = createCompiledExecutor(dir.str().str())->run(func, args, none);
  ASSERT_TRUE(bool(first)) << llvm::toString(first.takeError());
  std::error_code ec;
  std::vector<std::string> entries;
  for (llvm::sys::fs::directory_iterator it(dir, ec), end; it != end && !ec; it.increment(ec))
    entries.push_back(llvm::sys::path::filename(it->path()).str());
  llvm::sort(entries);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_TRUE(llvm::StringRef(entries[0]).ends_with("-f.aexm"));
  EXPECT_TRUE(llvm::StringRef(entries[1]).ends_with("-f.o"));

  auto second = createCompiledExecutor(dir.str().str())->run(func, args, none);
  ASSERT_TRUE(bool(second)) << llvm::toString(second.takeError());
  for (size_t r = 0; r < first->size(); ++r)
    EXPECT_EQ((*first)[r].data()[0], (*second)[r].data()[0]) << "result " << r;
  // Bad ids are still refused with the cached calling convention.
  std::vector<Tensor> bad = args;
  bad[2] = Tensor::ints(std::vector<int32_t>(c.dynamic, 9));
  auto refused = createCompiledExecutor(dir.str().str())->run(func, bad, none);
  ASSERT_FALSE(bool(refused));
  EXPECT_NE(llvm::toString(refused.takeError()).find("target id 9"), std::string::npos);

  {
    llvm::raw_fd_ostream manifest((dir + "/" + entries[0]).str(), ec);
    manifest << "AEXM but not a flatbuffer";
  }
  auto rebuilt = createCompiledExecutor(dir.str().str())->run(func, args, none);
  ASSERT_TRUE(bool(rebuilt)) << llvm::toString(rebuilt.takeError());
  EXPECT_EQ((*rebuilt)[0].data()[0], (*first)[0].data()[0]);
  llvm::sys::fs::remove_directories(dir);
}

// Tests prepare: every function is compiled (its cache entry written)
// before any runs, and the runs then give what an executor compiling on
// first use gives.
TEST(CompiledExecutorCache, PrepareCompilesAheadOfTheRuns) {
  MLIRContext context;
  context.loadDialect<AttnEditDialect, func::FuncDialect, arith::ArithDialect>();
  std::vector<OwningOpRef<ModuleOp>> modules;
  SmallVector<func::FuncOp> funcs;
  std::vector<const Case *> cases;
  for (const char *name : {"losses", "rms_norm", "fused_attention_gqa_window"}) {
    cases.push_back(&caseNamed(name));
    modules.push_back(parseSourceString<ModuleOp>(cases.back()->body, &context));
    ASSERT_TRUE(modules.back()) << name;
    funcs.push_back(modules.back()->lookupSymbol<func::FuncOp>("f"));
  }
  llvm::SmallString<128> dir;
  ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("attnedit-cache", dir));
  std::unique_ptr<Executor> prepared = createCompiledExecutor(dir.str().str());
  prepared->prepare(funcs);
  std::error_code ec;
  int objects = 0;
  for (llvm::sys::fs::directory_iterator it(dir, ec), end; it != end && !ec; it.increment(ec))
    objects += llvm::StringRef(it->path()).ends_with("-f.o");
  EXPECT_EQ(objects, 3);
  std::unique_ptr<Executor> onFirstUse = createCompiledExecutor(/*cacheDir=*/"");
  ParameterStore none;
  for (size_t i = 0; i < funcs.size(); ++i) {
    std::vector<Tensor> args = randomArgs(funcs[i], cases[i]->dynamic, cases[i]->ignoreFirst);
    auto a = prepared->run(funcs[i], args, none);
    auto b = onFirstUse->run(funcs[i], args, none);
    ASSERT_TRUE(bool(a)) << cases[i]->name << ": " << llvm::toString(a.takeError());
    ASSERT_TRUE(bool(b)) << cases[i]->name << ": " << llvm::toString(b.takeError());
    for (size_t r = 0; r < a->size(); ++r)
      for (int64_t j = 0; j < (*a)[r].numel(); ++j)
        ASSERT_EQ((*a)[r].data()[j], (*b)[r].data()[j]) << cases[i]->name << " result " << r;
  }
  llvm::sys::fs::remove_directories(dir);
}

/// The test case `name`'s function, parsed into `module`.
func::FuncOp parseCase(MLIRContext &context, llvm::StringRef name, const Case *&c,
                       OwningOpRef<ModuleOp> &module) {
  c = &caseNamed(name);
  module = parseSourceString<ModuleOp>(c->body, &context);
  return module ? module->lookupSymbol<func::FuncOp>("f") : func::FuncOp();
}

/// The cache directory's file names.
std::set<std::string> filesIn(llvm::StringRef dir) {
  std::set<std::string> names;
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(dir, ec), end; it != end && !ec; it.increment(ec))
    names.insert(llvm::sys::path::filename(it->path()).str());
  return names;
}

/// The total size of `names` in `dir`.
uint64_t bytesOf(llvm::StringRef dir, const std::set<std::string> &names) {
  uint64_t total = 0;
  for (const std::string &name : names) {
    uint64_t size = 0;
    EXPECT_FALSE(llvm::sys::fs::file_size((dir + "/" + name).str(), size)) << name;
    total += size;
  }
  return total;
}

// Tests ATTNEDIT_CACHE_MAX_SIZE: a new entry evicts the least recently
// used ones (a load counts as a use) until the cache fits, never itself.
TEST(CompiledExecutorCache, StaysWithinItsSizeEvictingTheLeastRecentlyUsed) {
  MLIRContext context;
  context.loadDialect<AttnEditDialect, func::FuncDialect, arith::ArithDialect>();
  std::vector<OwningOpRef<ModuleOp>> modules;
  SmallVector<func::FuncOp> funcs;
  std::vector<std::vector<Tensor>> args;
  for (const char *name : {"losses", "rms_norm", "fused_attention_gqa_window", "elementwise"}) {
    const Case *c;
    modules.emplace_back();
    funcs.push_back(parseCase(context, name, c, modules.back()));
    ASSERT_TRUE(funcs.back()) << name;
    args.push_back(randomArgs(funcs.back(), c->dynamic, c->ignoreFirst));
  }
  llvm::SmallString<128> dir, scratch;
  ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("attnedit-cache", dir));
  ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("attnedit-cache", scratch));
  ParameterStore none;
  // The files function i adds to `in` (a fresh executor: compiled or loaded).
  auto run = [&](size_t i, llvm::StringRef in) {
    std::set<std::string> before = filesIn(in), added;
    auto result = createCompiledExecutor(in.str())->run(funcs[i], args[i], none);
    EXPECT_TRUE(bool(result)) << llvm::toString(result.takeError());
    for (const std::string &name : filesIn(in))
      if (!before.count(name))
        added.insert(name);
    return added;
  };
  auto setUsed = [&](const std::set<std::string> &names, time_t seconds) {
    for (const std::string &name : names) {
      struct timeval times[2] = {{seconds, 0}, {seconds, 0}};
      ASSERT_EQ(::utimes((dir + "/" + name).str().c_str(), times), 0) << name;
    }
  };

  // Smaller than any entry: none is stored (the cache would otherwise stay
  // above the bound) and none already there is evicted for it.
  std::set<std::string> first = run(0, dir);
  EXPECT_EQ(first.size(), 2u); // object and manifest
  setenv("ATTNEDIT_CACHE_MAX_SIZE", "1K", 1);
  EXPECT_TRUE(run(1, dir).empty());
  EXPECT_EQ(filesIn(dir), first);
  unsetenv("ATTNEDIT_CACHE_MAX_SIZE");

  // Within the default bound, nothing is evicted.
  std::set<std::string> second = run(1, dir);
  std::set<std::string> third = run(2, dir);
  EXPECT_EQ(filesIn(dir).size(), 6u);
  // Used long ago, in this order: first, second, third; then first is
  // loaded (no new files), which makes second the least recently used.
  setUsed(first, 1000);
  setUsed(second, 2000);
  setUsed(third, 3000);
  EXPECT_TRUE(run(0, dir).empty());
  // A bound one byte short of holding them all with the fourth's entry
  // (its size from a scratch cache) evicts exactly one: the second.
  std::set<std::string> all = filesIn(dir);
  uint64_t fourthBytes = bytesOf(scratch, run(3, scratch));
  setenv("ATTNEDIT_CACHE_MAX_SIZE",
         std::to_string(bytesOf(dir, all) + fourthBytes - 1).c_str(), 1);
  std::set<std::string> fourth = run(3, dir);
  unsetenv("ATTNEDIT_CACHE_MAX_SIZE");
  std::set<std::string> expected;
  for (const auto *entry : {&first, &third, &fourth})
    expected.insert(entry->begin(), entry->end());
  EXPECT_EQ(filesIn(dir), expected);
  llvm::sys::fs::remove_directories(dir);
  llvm::sys::fs::remove_directories(scratch);
}

/// Each function of the object file `path` (one the cache wrote: any
/// error reading it fails the test) by name: its bytes.
std::map<std::string, std::string> functionBytes(const std::string &path) {
  auto buffer = llvm::MemoryBuffer::getFile(path);
  EXPECT_TRUE(bool(buffer)) << path;
  if (!buffer)
    return {};
  auto file =
      llvm::cantFail(llvm::object::ObjectFile::createObjectFile((*buffer)->getMemBufferRef()));
  std::map<std::string, std::string> bytes;
  for (llvm::object::ELFSymbolRef symbol : file->symbols()) {
    auto section = llvm::cantFail(symbol.getSection());
    if (llvm::cantFail(symbol.getType()) == llvm::object::SymbolRef::ST_Function &&
        section != file->section_end())
      bytes[llvm::cantFail(symbol.getName()).str()] =
          llvm::cantFail(section->getContents())
              .substr(llvm::cantFail(symbol.getAddress()), symbol.getSize())
              .str();
  }
  return bytes;
}

/// The perf-map tests compile the rms_norm case.
class CompiledExecutorPerfMap : public testing::Test {
protected:
  void SetUp() override {
    context.loadDialect<AttnEditDialect, func::FuncDialect, arith::ArithDialect>();
    func = parseCase(context, "rms_norm", c, module);
    ASSERT_TRUE(func);
  }
  MLIRContext context;
  const Case *c = nullptr;
  OwningOpRef<ModuleOp> module;
  func::FuncOp func;
};

// Tests ATTNEDIT_PERF_MAP: compiling a function and loading it from the
// cache each name its functions in perf's /tmp/perf-<pid>.map, where each
// address holds that function's code (its bytes in the object file, but
// for the few that relocation patched); without it, nothing is written.
TEST_F(CompiledExecutorPerfMap, NamesCompiledFunctionsAtTheirCode) {
  std::vector<Tensor> args = randomArgs(func, c->dynamic, c->ignoreFirst);
  ParameterStore none;
  llvm::SmallString<128> dir;
  ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("attnedit-cache", dir));
  std::string mapPath = "/tmp/perf-" + std::to_string(getpid()) + ".map";
  llvm::sys::fs::remove(mapPath);
  setenv("ATTNEDIT_PERF_MAP", "1", 1);
  // Alive to the end: their code stays mapped.
  std::unique_ptr<Executor> compiling = createCompiledExecutor(dir.str().str());
  std::unique_ptr<Executor> loading = createCompiledExecutor(dir.str().str());
  std::unique_ptr<Executor> unnamed = createCompiledExecutor(dir.str().str());
  auto compiled = compiling->run(func, args, none);
  ASSERT_TRUE(bool(compiled)) << llvm::toString(compiled.takeError());
  std::string object;
  for (const std::string &name : filesIn(dir))
    if (llvm::StringRef(name).ends_with(".o"))
      object = (dir + "/" + name).str();
  ASSERT_FALSE(object.empty()) << "no cached object: the second run would compile, not load";
  auto loaded = loading->run(func, args, none);
  ASSERT_TRUE(bool(loaded)) << llvm::toString(loaded.takeError());
  unsetenv("ATTNEDIT_PERF_MAP");
  auto plain = unnamed->run(func, args, none);
  ASSERT_TRUE(bool(plain)) << llvm::toString(plain.takeError());

  std::map<std::string, std::string> code = functionBytes(object);
  ASSERT_TRUE(code.count("_mlir_ciface_f"));
  std::ifstream map(mapPath);
  std::string line;
  int entries = 0, lines = 0;
  while (std::getline(map, line)) {
    ++lines;
    uint64_t address, size;
    char name[256] = {};
    ASSERT_EQ(std::sscanf(line.c_str(), "%lx %lx %255s", &address, &size, name), 3) << line;
    ASSERT_TRUE(code.count(name)) << line << ": not a function of " << object;
    const std::string &expected = code[name];
    ASSERT_EQ(size, expected.size()) << line;
    int same = 0;
    for (size_t i = 0; i < size; ++i)
      same += reinterpret_cast<const char *>(address)[i] == expected[i];
    EXPECT_GE(same, 0.9 * size) << line << ": " << same << " of its bytes match the object's";
    entries += std::string(name) == "_mlir_ciface_f";
  }
  // Once when compiled, once when loaded; not when the variable was unset.
  EXPECT_EQ(entries, 2) << lines << " lines in " << mapPath;
  llvm::sys::fs::remove(mapPath);
  llvm::sys::fs::remove_directories(dir);
}

// Tests that compiling leaves no jitdump behind: MLIR's ExecutionEngine
// turns LLVM's perf listener on by default, which wrote every object to
// .debug/jit/*/jit-<pid>.dump (under $JITDUMPDIR, else $HOME or the temp
// directory) and never deleted it.
TEST_F(CompiledExecutorPerfMap, CompilingWritesNoJitDump) {
  ParameterStore none;
  auto result = createCompiledExecutor(/*cacheDir=*/"")->run(
      func, randomArgs(func, c->dynamic, c->ignoreFirst), none);
  ASSERT_TRUE(bool(result)) << llvm::toString(result.takeError());
  std::vector<llvm::SmallString<128>> bases(3);
  if (const char *dir = std::getenv("JITDUMPDIR"))
    bases[0] = dir;
  llvm::sys::path::home_directory(bases[1]);
  llvm::sys::path::system_temp_directory(/*ErasedOnReboot=*/true, bases[2]);
  std::string dump = "jit-" + std::to_string(getpid()) + ".dump";
  for (llvm::SmallString<128> &jit : bases) {
    if (jit.empty())
      continue;
    llvm::sys::path::append(jit, ".debug", "jit");
    std::error_code ec;
    for (llvm::sys::fs::directory_iterator it(jit, ec), end; it != end && !ec; it.increment(ec))
      EXPECT_FALSE(llvm::sys::fs::exists(it->path() + "/" + dump)) << it->path() << "/" << dump;
  }
}

// Tests that attnedit ops in a loop (as a toolchain that loads the dialect
// may write) compile and compute what the loop unrolled computes on the
// reference evaluator; bufferization refused the loop-carried tensor.
TEST(CompiledExecutorLoops, LoopMatchesItsUnrolledReference) {
  MLIRContext context;
  context.loadDialect<AttnEditDialect, func::FuncDialect, arith::ArithDialect,
                      scf::SCFDialect>();
  OwningOpRef<ModuleOp> loop = parseSourceString<ModuleOp>(
      R"(func.func @f(%x: tensor<?x8xf32>, %w: tensor<8x8xf32>) -> tensor<?x8xf32> {
           %c0 = arith.constant 0 : index
           %c1 = arith.constant 1 : index
           %c3 = arith.constant 3 : index
           %r = scf.for %i = %c0 to %c3 step %c1 iter_args(%h = %x) -> (tensor<?x8xf32>) {
             %0 = attnedit.silu %h : tensor<?x8xf32>
             %1 = attnedit.linear %0, %w : (tensor<?x8xf32>, tensor<8x8xf32>) -> tensor<?x8xf32>
             %2 = attnedit.add %1, %h : tensor<?x8xf32>
             scf.yield %2 : tensor<?x8xf32>
           }
           return %r : tensor<?x8xf32> })",
      &context);
  std::string step = R"(
           %a0 = attnedit.silu %hA : tensor<?x8xf32>
           %a1 = attnedit.linear %a0, %w : (tensor<?x8xf32>, tensor<8x8xf32>) -> tensor<?x8xf32>
           %hB = attnedit.add %a1, %hA : tensor<?x8xf32>)";
  // Three steps from %h0: %h1, %h2, %h3.
  std::string body = "func.func @f(%h0: tensor<?x8xf32>, %w: tensor<8x8xf32>) -> tensor<?x8xf32> {";
  for (int i = 0; i < 3; ++i) {
    std::string s = step;
    for (auto [from, to] : {std::pair{std::string("%a"), "%a" + std::to_string(i) + "_"},
                            {std::string("%hA"), "%h" + std::to_string(i)},
                            {std::string("%hB"), "%h" + std::to_string(i + 1)}})
      for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
        s.replace(at, from.size(), to);
    body += s;
  }
  body += "\n return %h3 : tensor<?x8xf32> }";
  OwningOpRef<ModuleOp> unrolled = parseSourceString<ModuleOp>(body, &context);
  ASSERT_TRUE(loop && unrolled);
  auto loopFunc = loop->lookupSymbol<func::FuncOp>("f");
  std::vector<Tensor> args = randomArgs(loopFunc, 5, false);
  ParameterStore none;
  auto expected = createReferenceExecutor()->run(unrolled->lookupSymbol<func::FuncOp>("f"), args,
                                                 none);
  ASSERT_TRUE(bool(expected)) << llvm::toString(expected.takeError());
  auto got = createCompiledExecutor(/*cacheDir=*/"")->run(loopFunc, args, none);
  ASSERT_TRUE(bool(got)) << llvm::toString(got.takeError());
  const Tensor &a = got->front(), &b = expected->front();
  ASSERT_EQ(a.shapeString(), b.shapeString());
  for (int64_t i = 0; i < b.numel(); ++i)
    EXPECT_NEAR(a.data()[i], b.data()[i], 1e-5 * std::max(1.0f, std::fabs(b.data()[i])))
        << "element " << i;
}

} // namespace

// Static results live in blocks the executor reuses: a result still held
// must keep its values while later calls compute theirs.
TEST(CompiledExecutorResults, HeldResultsSurviveLaterCalls) {
  MLIRContext context;
  context.loadDialect<AttnEditDialect, func::FuncDialect, arith::ArithDialect>();
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(
      R"(func.func @f(%x: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<f32>) {
           %s = attnedit.silu %x : tensor<4x8xf32>
           %l = attnedit.mse_loss %s, %x : tensor<4x8xf32>
           return %s, %l : tensor<4x8xf32>, tensor<f32> })",
      &context);
  ASSERT_TRUE(module);
  auto func = module->lookupSymbol<func::FuncOp>("f");
  ParameterStore none;
  std::unique_ptr<Executor> cpu = createCompiledExecutor(/*cacheDir=*/"");
  std::vector<Tensor> a = randomArgs(func, 0, false);
  auto first = cpu->run(func, a, none);
  ASSERT_TRUE(bool(first)) << llvm::toString(first.takeError());
  std::vector<float> kept((*first)[0].data(), (*first)[0].data() + (*first)[0].numel());
  float keptLoss = (*first)[1].data()[0];
  for (int call = 0; call < 3; ++call) {
    Tensor other = Tensor::zeros({4, 8});
    for (int64_t i = 0; i < other.numel(); ++i)
      other.mutableData()[i] = 0.25f * (i + call);
    auto later = cpu->run(func, {other}, none);
    ASSERT_TRUE(bool(later)) << llvm::toString(later.takeError());
    EXPECT_NE((*later)[0].data(), (*first)[0].data()) << "call " << call;
  }
  for (size_t i = 0; i < kept.size(); ++i)
    ASSERT_EQ((*first)[0].data()[i], kept[i]) << "element " << i;
  EXPECT_EQ((*first)[1].data()[0], keptLoss);
}

// Results over glibc's largest mmap threshold (32 MiB) come from blocks the
// compiled code's malloc keeps: a held one is never handed out again, and a
// released one is reused by the next call instead of being mapped anew.
TEST(CompiledExecutorResults, LargeResultBlocksAreReusedOnlyOnceReleased) {
  MLIRContext context;
  context.loadDialect<AttnEditDialect, func::FuncDialect, arith::ArithDialect>();
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(
      R"(func.func @f(%x: tensor<?x4096xf32>) -> tensor<?x4096xf32> {
           %s = attnedit.silu %x : tensor<?x4096xf32>
           return %s : tensor<?x4096xf32> })",
      &context);
  ASSERT_TRUE(module);
  auto func = module->lookupSymbol<func::FuncOp>("f");
  ParameterStore none;
  std::unique_ptr<Executor> cpu = createCompiledExecutor(/*cacheDir=*/"");
  auto input = [](float value) {
    Tensor x = Tensor::zeros({2200, 4096}); // 36 MB
    std::fill(x.mutableData(), x.mutableData() + x.numel(), value);
    return x;
  };
  auto first = cpu->run(func, {input(1.0f)}, none);
  ASSERT_TRUE(bool(first)) << llvm::toString(first.takeError());
  const float *held = (*first)[0].data();
  float silu1 = 1.0f / (1.0f + std::exp(-1.0f));
  auto second = cpu->run(func, {input(2.0f)}, none);
  ASSERT_TRUE(bool(second)) << llvm::toString(second.takeError());
  EXPECT_NE((*second)[0].data(), held);
  const float *released = (*second)[0].data();
  second->clear();
  // A block mapped anew would page-fault its 8800 pages in again.
  Tensor x3 = input(3.0f);
  auto faults = [] {
    rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_minflt;
  };
  long before = faults();
  auto third = cpu->run(func, {x3}, none);
  long faulted = faults() - before;
  ASSERT_TRUE(bool(third)) << llvm::toString(third.takeError());
  EXPECT_EQ((*third)[0].data(), released) << "a released block is reused";
  EXPECT_LT(faulted, 1000) << "page faults in a call whose result reuses a kept block";
  EXPECT_FLOAT_EQ((*third)[0].data()[0], 3.0f / (1.0f + std::exp(-3.0f)));
  for (int64_t i : {int64_t(0), (*first)[0].numel() - 1})
    ASSERT_FLOAT_EQ((*first)[0].data()[i], silu1) << "element " << i;
}

using GemmShim = void (*)(StridedMemRefType<float, 2> *, StridedMemRefType<float, 2> *,
                          StridedMemRefType<float, 2> *);

/// The GEMM shim named attnedit_cpu_`name` (gemm_nt, gemm_nt_overwrite, ...).
static GemmShim gemmShim(llvm::StringRef name) {
  void *address = cpu::librarySymbol(("_mlir_ciface_attnedit_cpu_" + name).str());
  if (!address || !name.starts_with("gemm_"))
    ADD_FAILURE() << name.str() << " is not a GEMM shim";
  return reinterpret_cast<GemmShim>(address);
}

// The GEMM shims compiled code calls: the `_overwrite` forms (where
// attnedit-cpu-library-calls erased the zero fill) write op(A)·op(B) whatever
// C held (NaN here), the plain forms add it to C; both through BLAS (unit
// last strides) and through the loop taken when C's last stride is not 1.
TEST(GemmShims, OverwriteWritesTheProductAndAccumulateAddsIt) {
  // A [2, 3] · Bᵀ with B [4, 3]: C [4 columns].
  std::vector<float> a = {1, 2, 3, 4, 5, 6}, b = {1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1};
  const float product[2][4] = {{1, 2, 3, 6}, {4, 5, 6, 15}};
  StridedMemRefType<float, 2> am{a.data(), a.data(), 0, {2, 3}, {3, 1}};
  StridedMemRefType<float, 2> bm{b.data(), b.data(), 0, {4, 3}, {3, 1}};
  for (int64_t columnStride : {1, 2}) {
    SCOPED_TRACE("C's column stride " + std::to_string(columnStride));
    std::vector<float> c(2 * 4 * columnStride, std::nanf(""));
    StridedMemRefType<float, 2> cm{c.data(), c.data(), 0, {2, 4}, {4 * columnStride, columnStride}};
    auto at = [&](int i, int j) { return c[i * 4 * columnStride + j * columnStride]; };
    gemmShim("gemm_nt_overwrite")(&am, &bm, &cm);
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 4; ++j)
        EXPECT_EQ(at(i, j), product[i][j]) << "overwrite, C[" << i << "][" << j << "]";
    gemmShim("gemm_nt")(&am, &bm, &cm);
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 4; ++j)
        EXPECT_EQ(at(i, j), 2 * product[i][j]) << "accumulate, C[" << i << "][" << j << "]";
  }
}

// GEMMs large enough for the packed AVX-512 kernel (PackedGemm.cpp) in each
// transpose pair, against a double-precision sum: edges in every dimension
// (70 rows = 5 panels of 14, 77 columns = 2 panels of 32 and 13), two K
// blocks (300 > 256, the second not a multiple of 16), two column blocks
// (800 > 768), operands inside wider buffers (leading dimension > width),
// and both overwrite (C starts NaN) and accumulate; 300 rows give a thread
// more than one block of 8 row panels; row-major A is read in place, its
// partial last panel copied, except at a 4 KiB row stride (1021 + 3
// floats), which copies every panel; 1600 columns (over one block of B) are
// split between the threads by columns. Decoding's few rows against a large
// weight (FewRowsGemm.cpp, the nt layout): one row, 30 (groups of 8 and one
// of 6), and 13 over a weight split between threads, K not a multiple of 16.
TEST(GemmShims, LargeGemmsMatchADoubleSumInEveryLayout) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uniform(-1, 1);
  struct Shape {
    int64_t m, n, k;
  };
  for (Shape shape : {Shape{70, 77, 300}, Shape{57, 800, 20}, Shape{128, 64, 256},
                      Shape{300, 70, 40}, Shape{1, 700, 300}, Shape{30, 600, 200},
                      Shape{13, 1100, 500}, Shape{100, 96, 1021}, Shape{100, 1600, 40}})
    for (const char *flags : {"nn", "nt", "tn", "tt"})
      for (bool overwrite : {true, false}) {
        auto [m, n, k] = shape;
        bool ta = flags[0] == 't', tb = flags[1] == 't';
        SCOPED_TRACE(std::string(flags) + (overwrite ? " overwrite " : " accumulate ") +
                     std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k));
        // Stored shapes and a padded leading dimension for each operand.
        int64_t aRows = ta ? k : m, aCols = ta ? m : k, bRows = tb ? n : k, bCols = tb ? k : n;
        int64_t lda = aCols + 3, ldb = bCols + 5, ldc = n + 7;
        std::vector<float> a(aRows * lda), b(bRows * ldb), c(m * ldc);
        for (float &x : a)
          x = uniform(rng);
        for (float &x : b)
          x = uniform(rng);
        for (float &x : c)
          x = overwrite ? std::nanf("") : uniform(rng);
        std::vector<float> before = c;
        StridedMemRefType<float, 2> am{a.data(), a.data(), 0, {aRows, aCols}, {lda, 1}};
        StridedMemRefType<float, 2> bm{b.data(), b.data(), 0, {bRows, bCols}, {ldb, 1}};
        StridedMemRefType<float, 2> cm{c.data(), c.data(), 0, {m, n}, {ldc, 1}};
        gemmShim(std::string("gemm_") + flags + (overwrite ? "_overwrite" : ""))(&am, &bm, &cm);
        int wrong = 0;
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < n; ++j) {
            double sum = overwrite ? 0.0 : before[i * ldc + j];
            for (int64_t p = 0; p < k; ++p)
              sum += double(ta ? a[p * lda + i] : a[i * lda + p]) *
                     double(tb ? b[j * ldb + p] : b[p * ldb + j]);
            float got = c[i * ldc + j];
            if (!(std::fabs(got - sum) <= 1e-5 * std::sqrt(double(k)) * 4) && wrong++ < 5)
              ADD_FAILURE() << "C[" << i << "][" << j << "] = " << got << ", expected " << sum;
          }
        // The padding between rows is not C's: it keeps its value.
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = n; j < ldc; ++j)
            if (!(std::isnan(c[i * ldc + j]) && std::isnan(before[i * ldc + j])) &&
                c[i * ldc + j] != before[i * ldc + j] && wrong++ < 5)
              ADD_FAILURE() << "padding C[" << i << "][" << j << "] written";
      }
}

// The attention kernels read q, k, v, o and dO and write the output and
// the gradients (per query head, [H, T, ·]) through their strides: with
// each row's elements 2 floats apart (NaN between them), the packers', the
// queries' and the stores' strided paths must give the contiguous
// operands' output, log-sum-exp and gradients bit for bit. Head
// widths 24 and 20 (partial vectors), 70 keys (a partial key block), GQA
// 4 / 2, causal.
TEST(AttentionKernels, StridedOperandsMatchContiguous) {
  using Memref3 = StridedMemRefType<float, 3>;
  using Forward = void (*)(Memref3 *, Memref3 *, Memref3 *, StridedMemRefType<float, 1> *,
                           Memref3 *, StridedMemRefType<float, 2> *);
  using Backward = void (*)(Memref3 *, Memref3 *, Memref3 *, Memref3 *,
                            StridedMemRefType<float, 2> *, Memref3 *,
                            StridedMemRefType<float, 1> *, Memref3 *, Memref3 *, Memref3 *);
  auto forward = reinterpret_cast<Forward>(
      cpu::librarySymbol("_mlir_ciface_attnedit_cpu_attention_train"));
  auto backward = reinterpret_cast<Backward>(
      cpu::librarySymbol("_mlir_ciface_attnedit_cpu_attention_backward"));
  ASSERT_TRUE(forward && backward);
  const int64_t t = 70, heads = 4, kvHeads = 2, d = 24, dv = 20;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> uniform(-1, 1);
  auto values = [&](int64_t n) {
    std::vector<float> x(n);
    for (float &v : x)
      v = uniform(rng);
    return x;
  };
  std::vector<float> q = values(t * heads * d), k = values(t * kvHeads * d),
                     v = values(t * kvHeads * dv), dout = values(t * heads * dv);
  std::vector<float> params = {1.0f / std::sqrt(float(d)), 1.0f, 0.0f, 1.0f};
  StridedMemRefType<float, 1> pm{params.data(), params.data(), 0, {4}, {1}};
  struct Results {
    std::vector<float> out, lse, dq, dk, dv;
  };
  // `x` [a, b, c] with its elements `spread` floats apart, NaN between them.
  auto spreadOut = [](std::vector<float> &storage, const std::vector<float> &x, int64_t a,
                      int64_t b, int64_t c, int64_t spread) {
    storage.assign(x.size() * spread, std::nanf(""));
    for (size_t i = 0; i < x.size(); ++i)
      storage[i * spread] = x[i];
    return Memref3{storage.data(), storage.data(), 0, {a, b, c},
                   {b * c * spread, c * spread, spread}};
  };
  // Every elementwise-strided operand and result spread apart, then gathered.
  auto gather = [](const std::vector<float> &storage, int64_t spread) {
    std::vector<float> x(storage.size() / spread);
    for (size_t i = 0; i < x.size(); ++i)
      x[i] = storage[i * spread];
    return x;
  };
  auto run = [&](int64_t spread) {
    std::vector<float> qs, ks, vs, os, gs, outs, dqs, dks, dvs, lse(heads * t);
    Memref3 qm = spreadOut(qs, q, t, heads, d, spread);
    Memref3 km = spreadOut(ks, k, t, kvHeads, d, spread);
    Memref3 vm = spreadOut(vs, v, t, kvHeads, dv, spread);
    Memref3 om = spreadOut(outs, std::vector<float>(t * heads * dv), t, heads, dv, spread);
    StridedMemRefType<float, 2> lm{lse.data(), lse.data(), 0, {heads, t}, {t, 1}};
    forward(&qm, &km, &vm, &pm, &om, &lm);
    Memref3 gm = spreadOut(gs, dout, t, heads, dv, spread);
    Memref3 dqm = spreadOut(dqs, std::vector<float>(heads * t * d), heads, t, d, spread);
    Memref3 dkm = spreadOut(dks, std::vector<float>(heads * t * d), heads, t, d, spread);
    Memref3 dvm = spreadOut(dvs, std::vector<float>(heads * t * dv), heads, t, dv, spread);
    backward(&qm, &km, &vm, &om, &lm, &gm, &pm, &dqm, &dkm, &dvm);
    return Results{gather(outs, spread), lse, gather(dqs, spread), gather(dks, spread),
                   gather(dvs, spread)};
  };
  Results contiguous = run(1), strided = run(2);
  for (auto [name, a, b] : {std::tuple{"out", &contiguous.out, &strided.out},
                            std::tuple{"lse", &contiguous.lse, &strided.lse},
                            std::tuple{"dq", &contiguous.dq, &strided.dq},
                            std::tuple{"dk", &contiguous.dk, &strided.dk},
                            std::tuple{"dv", &contiguous.dv, &strided.dv}}) {
    int wrong = 0;
    for (size_t i = 0; i < a->size(); ++i)
      if (!std::isfinite((*a)[i]) || (*a)[i] != (*b)[i])
        if (wrong++ < 5)
          ADD_FAILURE() << name << "[" << i << "]: contiguous " << (*a)[i] << ", strided "
                        << (*b)[i];
  }
  EXPECT_NE(contiguous.dq[d], 0.0f) << "the gradients are not trivially zero";
}
