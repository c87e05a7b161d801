//===- MlaInit.cpp - initial weights of an MLA student ---------------------===//
//
// Linear algebra is in double through LAPACK (OpenBLAS carries it), on
// matrices no larger than [2·Hkv·D, hidden] per layer.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Passes/MlaInit.h"

#include "llvm/ADT/STLExtras.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>
#include <random>

using namespace mlir::attnedit;

extern "C" {
void dgesdd_(const char *jobz, const int *m, const int *n, double *a, const int *lda, double *s,
             double *u, const int *ldu, double *vt, const int *ldvt, double *work,
             const int *lwork, int *iwork, int *info);
void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
            double *w, double *work, const int *lwork, int *info);
}

namespace {

/// A dense row-major matrix of doubles.
struct Matrix {
  int64_t rows = 0, cols = 0;
  std::vector<double> data;

  Matrix() = default;
  Matrix(int64_t rows, int64_t cols) : rows(rows), cols(cols), data(rows * cols, 0.0) {}
  double &at(int64_t r, int64_t c) { return data[r * cols + c]; }
  double at(int64_t r, int64_t c) const { return data[r * cols + c]; }
  double *row(int64_t r) { return data.data() + r * cols; }
  const double *row(int64_t r) const { return data.data() + r * cols; }
};

/// Rows [first, first + count) of a row-major f32 matrix with `cols` columns.
Matrix rowsOf(llvm::ArrayRef<float> m, int64_t cols, int64_t first, int64_t count) {
  Matrix out(count, cols);
  std::copy(m.begin() + first * cols, m.begin() + (first + count) * cols, out.data.begin());
  return out;
}

double frobenius(const Matrix &m) {
  double sum = 0;
  for (double v : m.data)
    sum += v * v;
  return std::sqrt(sum);
}

/// Thin SVD a = U·diag(S)·Vt, singular values descending.
struct Svd {
  Matrix u, vt;
  std::vector<double> s;
};

llvm::Expected<Svd> svd(const Matrix &a) {
  int m = a.rows, n = a.cols, k = std::min(m, n);
  std::vector<double> colMajor(a.data.size()), u(m * k), vt(k * n);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j)
      colMajor[i + j * m] = a.at(i, j);
  Svd out;
  out.s.resize(k);
  std::vector<int> iwork(8 * k);
  int lwork = -1, info = 0;
  double query = 0;
  dgesdd_("S", &m, &n, colMajor.data(), &m, out.s.data(), u.data(), &m, vt.data(), &k, &query,
          &lwork, iwork.data(), &info);
  lwork = (int)query;
  std::vector<double> work(std::max(1, lwork));
  dgesdd_("S", &m, &n, colMajor.data(), &m, out.s.data(), u.data(), &m, vt.data(), &k,
          work.data(), &lwork, iwork.data(), &info);
  if (info != 0)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "SVD of a %dx%d matrix did not converge (LAPACK info %d)",
                                   m, n, info);
  out.u = Matrix(m, k);
  out.vt = Matrix(k, n);
  for (int i = 0; i < m; ++i)
    for (int c = 0; c < k; ++c)
      out.u.at(i, c) = u[i + c * m];
  for (int c = 0; c < k; ++c)
    for (int j = 0; j < n; ++j)
      out.vt.at(c, j) = vt[c + j * k];
  return out;
}

/// The unit eigenvector of the largest eigenvalue of a symmetric matrix.
std::vector<double> topEigenvector(Matrix a) {
  int n = a.rows, lwork = -1, info = 0;
  std::vector<double> w(n);
  double query = 0;
  dsyev_("V", "U", &n, a.data.data(), &n, w.data(), &query, &lwork, &info);
  lwork = (int)query;
  std::vector<double> work(std::max(1, lwork));
  dsyev_("V", "U", &n, a.data.data(), &n, w.data(), work.data(), &lwork, &info);
  // Eigenvalues ascend; a symmetric matrix reads the same in either major
  // order, and LAPACK stores eigenvector i as column i.
  std::vector<double> u(n);
  for (int g = 0; g < n; ++g)
    u[g] = a.data[g + (n - 1) * n];
  double sign = std::accumulate(u.begin(), u.end(), 0.0) < 0 ? -1 : 1;
  for (double &x : u)
    x *= sign;
  return u;
}

/// C^1/2 and C^-1/2 of a symmetric positive semi-definite matrix, its
/// eigenvalues floored at 1e-6 of the largest (directions the data never
/// takes cost nothing, but must stay invertible).
void symmetricRoots(Matrix c, Matrix &root, Matrix &inverseRoot) {
  int n = c.rows, lwork = -1, info = 0;
  std::vector<double> w(n);
  double query = 0;
  dsyev_("V", "U", &n, c.data.data(), &n, w.data(), &query, &lwork, &info);
  lwork = (int)query;
  std::vector<double> work(std::max(1, lwork));
  dsyev_("V", "U", &n, c.data.data(), &n, w.data(), work.data(), &lwork, &info);
  double floor = std::max(1e-30, 1e-6 * (n ? w[n - 1] : 0.0));
  root = Matrix(n, n);
  inverseRoot = Matrix(n, n);
  for (int k = 0; k < n; ++k) {
    double lambda = std::max(w[k], floor), s = std::sqrt(lambda), si = 1 / s;
    const double *v = c.data.data() + k * n; // eigenvector k (column k)
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) {
        root.at(i, j) += s * v[i] * v[j];
        inverseRoot.at(i, j) += si * v[i] * v[j];
      }
  }
}

/// Best rank-`rank` factors of `a` (m x n) as a ≈ left · right with left
/// [m, rank] and right [rank, n], √σ on each side; zero-padded past a's rank.
llvm::Error lowRank(const Matrix &a, int64_t rank, Matrix &left, Matrix &right) {
  auto d = svd(a);
  if (!d)
    return d.takeError();
  left = Matrix(a.rows, rank);
  right = Matrix(rank, a.cols);
  for (int64_t c = 0; c < std::min<int64_t>(rank, d->s.size()); ++c) {
    double root = std::sqrt(d->s[c]);
    for (int64_t i = 0; i < a.rows; ++i)
      left.at(i, c) = d->u.at(i, c) * root;
    for (int64_t j = 0; j < a.cols; ++j)
      right.at(c, j) = d->vt.at(c, j) * root;
  }
  return llvm::Error::success();
}

Matrix multiply(const Matrix &a, const Matrix &b) {
  Matrix out(a.rows, b.cols);
  for (int64_t i = 0; i < a.rows; ++i)
    for (int64_t k = 0; k < a.cols; ++k) {
      double x = a.at(i, k);
      if (x != 0)
        for (int64_t j = 0; j < b.cols; ++j)
          out.at(i, j) += x * b.at(k, j);
    }
  return out;
}

Matrix transposed(const Matrix &a) {
  Matrix out(a.cols, a.rows);
  for (int64_t i = 0; i < a.rows; ++i)
    for (int64_t j = 0; j < a.cols; ++j)
      out.at(j, i) = a.at(i, j);
  return out;
}

/// Expected RMS of `w`·x for x = g ⊙ x̂, x̂ of identity covariance.
double expectedRms(const Matrix &w, llvm::ArrayRef<float> g) {
  double sum = 0;
  for (int64_t i = 0; i < w.rows; ++i)
    for (int64_t j = 0; j < w.cols; ++j) {
      double scaled = w.at(i, j) * (g.empty() ? 1.0 : g[j]);
      sum += scaled * scaled;
    }
  return std::sqrt(sum / std::max<int64_t>(1, w.rows));
}

/// Expected RMS of `w`·x for x of covariance `c` (calibrated inputs).
double expectedRmsUnder(const Matrix &w, const Matrix &c) {
  Matrix wc = multiply(w, c);
  double sum = 0;
  for (int64_t i = 0; i < w.rows; ++i)
    for (int64_t j = 0; j < w.cols; ++j)
      sum += wc.at(i, j) * w.at(i, j);
  return std::sqrt(std::max(sum, 0.0) / std::max<int64_t>(1, w.rows));
}

/// Rows [first, rows) of `up` (a per-head up-projection wider than the
/// teacher's head) drawn N(0, rms(like)²) from `seed`. Their partners (the
/// query rows or o_proj columns) start at zero, so the start's function is
/// unchanged, but both would stay zero if these did too: each one's
/// gradient is proportional to the other.
void spareRows(Matrix &up, int64_t first, const Matrix &like, uint64_t seed) {
  if (first >= up.rows)
    return;
  double rms = frobenius(like) / std::sqrt((double)std::max<size_t>(1, like.data.size()));
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, rms > 0 ? rms : 1.0);
  for (int64_t i = first; i < up.rows; ++i)
    for (int64_t c = 0; c < up.cols; ++c)
      up.at(i, c) = normal(rng);
}

/// The latent `down` (rows spanning the subspace to keep; zero rows past
/// the factorisation's rank are completed with orthonormal directions)
/// re-expressed with rows orthonormal in z = x / g, so that the latent's RMS
/// stays near rms(z) = 1 and the latent RMSNorm passes it at a fixed gain
/// (exactly at rank = hidden); returns the up-projection refitted to `target`
/// by least squares on inputs of covariance `c`: target·C·Dᵀ·(D·C·Dᵀ)⁻¹.
llvm::Expected<Matrix> normExactLatent(const Matrix &target, Matrix &down, const Matrix &c,
                                       llvm::ArrayRef<float> g) {
  int64_t h = down.cols;
  auto gain = [&](int64_t x) { return g.empty() || g[x] == 0 ? 1.0 : (double)g[x]; };
  Matrix inZ = down;
  for (int64_t r = 0; r < down.rows; ++r)
    for (int64_t x = 0; x < h; ++x)
      inZ.at(r, x) *= gain(x);
  auto basis = svd(inZ);
  if (!basis)
    return basis.takeError();
  // A latent wider than the input keeps its extra rows at zero.
  for (int64_t r = 0; r < down.rows; ++r)
    for (int64_t x = 0; x < h; ++x)
      down.at(r, x) = r < basis->vt.rows ? basis->vt.at(r, x) / gain(x) : 0.0;
  Matrix cd = multiply(c, transposed(down)), root, inverseRoot;
  symmetricRoots(multiply(down, cd), root, inverseRoot);
  return multiply(multiply(target, cd), multiply(inverseRoot, inverseRoot));
}

void append(std::vector<float> &out, const Matrix &m) {
  for (double v : m.data)
    out.push_back((float)v);
}

llvm::Error shapeError(const llvm::Twine &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg.str());
}

} // namespace

double mlir::attnedit::studentRopeTheta(double teacherTheta, const MlaShape &shape, int64_t d) {
  int64_t kept = ropeStrideOf(shape, d) * shape.qkRopeHeadDim;
  return kept == d ? teacherTheta : std::pow(teacherTheta, (double)kept / (double)d);
}

llvm::Expected<MlaWeights> mlir::attnedit::svdInitMla(const TeacherAttention &t,
                                                      const MlaShape &s, MlaStart start) {
  int64_t h = t.hidden, hq = t.numHeads, hkv = t.numKvHeads, d = t.headDim;
  int64_t r = s.qkRopeHeadDim, n = s.qkNopeHeadDim, dv = s.vHeadDim, rank = s.kvLoraRank;
  if (r < 2 || r % 2 || r > d || (!s.ropeStride && d % r))
    return shapeError("qk-rope-head-dim " + llvm::Twine(r) +
                      " (the option's default is 64) must be even, at most the teacher's "
                      "head_dim " + llvm::Twine(d) +
                      " and divide it unless rope-stride is given (MLA's RoPE frequencies "
                      "must be the teacher's)");
  int64_t stride = ropeStrideOf(s, d);
  if (stride < 1 || (r / 2 - 1) * stride >= d / 2)
    return shapeError("rope-stride " + llvm::Twine(stride) + " with qk-rope-head-dim " +
                      llvm::Twine(r) + " reaches past the teacher's " + llvm::Twine(d / 2) +
                      " RoPE pairs");
  if (rank < 1 || n < 0 || dv < 1 || s.qLoraRank < 0 || hq % hkv)
    return shapeError("kv-lora-rank and v-head-dim must be >= 1, qk-nope-head-dim and "
                      "q-lora-rank >= 0");
  int64_t group = hq / hkv;
  bool rorope = start == MlaStart::RoRoPE;
  if (rorope && t.inputCovariance.empty())
    return shapeError("the rorope start measures keys and values on calibration data: it needs "
                      "the input covariance (activations=FILE from attnedit-run "
                      "calibrate-activations)");
  Matrix covariance;
  bool aware = !t.inputCovariance.empty();
  if (aware) {
    if ((int64_t)t.inputCovariance.size() != h * h)
      return shapeError("the input covariance has " + llvm::Twine(t.inputCovariance.size()) +
                        " values, not hidden² = " + llvm::Twine(h * h));
    covariance = Matrix(h, h);
    std::copy(t.inputCovariance.begin(), t.inputCovariance.end(), covariance.data.begin());
  }

  // Per-head teacher weights, Qwen3's static norm weights folded into rows.
  std::vector<Matrix> wq(hq), wk(hkv), wv(hkv);
  for (int64_t j = 0; j < hq; ++j) {
    wq[j] = rowsOf(t.q, h, j * d, d);
    for (int64_t c = 0; !t.qNorm.empty() && c < d; ++c)
      for (int64_t x = 0; x < h; ++x)
        wq[j].at(c, x) *= t.qNorm[c];
  }
  for (int64_t g = 0; g < hkv; ++g) {
    wk[g] = rowsOf(t.k, h, g * d, d);
    wv[g] = rowsOf(t.v, h, g * d, d);
    for (int64_t c = 0; !t.kNorm.empty() && c < d; ++c)
      for (int64_t x = 0; x < h; ++x)
        wk[g].at(c, x) *= t.kNorm[c];
  }

  // RoPE: kept teacher pair j·stride -> student pair j, shared across heads.
  auto pair = [&](int64_t i, int64_t dim) {
    return t.interleavedRope ? std::pair{2 * i, 2 * i + 1} : std::pair{i, i + dim / 2};
  };
  Matrix kPe(r, h);
  std::vector<Matrix> qPe(hq, Matrix(r, h));
  std::vector<Matrix> kNope = wk;
  for (int64_t j = 0; j < r / 2; ++j) {
    auto [a, b] = pair(j * stride, d);
    auto [sa, sb] = pair(j, r);
    // The heads' pair rows, times C when the keys are measured on data.
    std::vector<Matrix> rowsA(hkv, Matrix(2, h)), rowsB = rowsA;
    for (int64_t g = 0; g < hkv; ++g)
      for (auto [i, c] : llvm::enumerate(std::array{a, b}))
        std::copy(wk[g].row(c), wk[g].row(c) + h, rowsA[g].row(i));
    for (int64_t g = 0; g < hkv; ++g)
      rowsB[g] = rorope ? multiply(rowsA[g], covariance) : rowsA[g];
    Matrix gram(hkv, hkv);
    for (int64_t g = 0; g < hkv; ++g)
      for (int64_t g2 = 0; g2 < hkv; ++g2)
        for (int64_t i = 0; i < 2 * h; ++i)
          gram.at(g, g2) += rowsA[g].data[i] * rowsB[g2].data[i];
    std::vector<double> u = topEigenvector(gram);
    for (auto [c, sc] : {std::pair{a, sa}, std::pair{b, sb}}) {
      for (int64_t x = 0; x < h; ++x) {
        double mixed = 0;
        for (int64_t g = 0; g < hkv; ++g)
          mixed += u[g] * wk[g].at(c, x);
        kPe.at(sc, x) = mixed;
        for (int64_t g = 0; g < hkv; ++g)
          kNope[g].at(c, x) -= u[g] * mixed;
      }
      for (int64_t q = 0; q < hq; ++q)
        for (int64_t x = 0; x < h; ++x)
          qPe[q].at(sc, x) = u[q / group] * wq[q].at(c, x);
    }
  }

  // Joint low rank of the NoPE keys and the values.
  Matrix kvStack(2 * hkv * d, h);
  double kNorm = 0, vNorm = 0;
  for (int64_t g = 0; g < hkv; ++g) {
    // BKV: the energies of the keys and values the data produces.
    kNorm += rorope ? d * std::pow(expectedRmsUnder(kNope[g], covariance), 2)
                    : std::pow(frobenius(kNope[g]), 2);
    vNorm += rorope ? d * std::pow(expectedRmsUnder(wv[g], covariance), 2)
                    : std::pow(frobenius(wv[g]), 2);
  }
  double alpha = kNorm > 0 ? std::sqrt(vNorm / kNorm) : 1.0;
  for (int64_t g = 0; g < hkv; ++g)
    for (int64_t c = 0; c < d; ++c)
      for (int64_t x = 0; x < h; ++x) {
        kvStack.at(g * d + c, x) = alpha * kNope[g].at(c, x);
        kvStack.at((hkv + g) * d + c, x) = wv[g].at(c, x);
      }
  Matrix whiten, unwhiten, balanced = kvStack;
  if (aware) {
    symmetricRoots(covariance, whiten, unwhiten);
    kvStack = multiply(kvStack, whiten);
  }
  auto joint = svd(kvStack);
  if (!joint)
    return joint.takeError();
  if (aware)
    joint->vt = multiply(joint->vt, unwhiten);
  int64_t kept = std::min<int64_t>(rank, joint->s.size());
  Matrix down(rank, h);
  std::vector<Matrix> upK(hkv, Matrix(d, rank)), upV(hkv, Matrix(d, rank));
  for (int64_t c = 0; c < kept; ++c) {
    std::copy(joint->vt.row(c), joint->vt.row(c) + h, down.row(c));
    for (int64_t g = 0; g < hkv; ++g)
      for (int64_t e = 0; e < d; ++e) {
        upK[g].at(e, c) = joint->u.at(g * d + e, c) * joint->s[c] / alpha;
        upV[g].at(e, c) = joint->u.at((hkv + g) * d + e, c) * joint->s[c];
      }
  }
  if (rorope) {
    auto fit = normExactLatent(balanced, down, covariance, t.inputNorm);
    if (!fit)
      return fit.takeError();
    for (int64_t c = 0; c < rank; ++c)
      for (int64_t g = 0; g < hkv; ++g)
        for (int64_t e = 0; e < d; ++e) {
          upK[g].at(e, c) = fit->at(g * d + e, c) / alpha;
          upV[g].at(e, c) = fit->at((hkv + g) * d + e, c);
        }
  }

  // Per query head: NoPE query and key up-projection, value up-projection and
  // output columns, re-factored when the student's head is narrower.
  MlaWeights w;
  std::vector<Matrix> qNopeRows(hq), kUp(hq), vUp(hq), oCols(hq);
  for (int64_t q = 0; q < hq; ++q) {
    const Matrix &uk = upK[q / group], &uv = upV[q / group];
    Matrix wo(h, d);
    for (int64_t x = 0; x < h; ++x)
      for (int64_t e = 0; e < d; ++e)
        wo.at(x, e) = t.o[x * hq * d + q * d + e];
    if (n >= d) {
      qNopeRows[q] = Matrix(n, h);
      kUp[q] = Matrix(n, rank);
      std::copy(wq[q].data.begin(), wq[q].data.end(), qNopeRows[q].data.begin());
      std::copy(uk.data.begin(), uk.data.end(), kUp[q].data.begin());
      spareRows(kUp[q], d, uk, 2 * q);
    } else if (n > 0) {
      Matrix left, right; // Wqᵀ·Uk ≈ left·right: q_nope = leftᵀ, k_up = right
      if (llvm::Error e = lowRank(multiply(transposed(wq[q]), uk), n, left, right))
        return std::move(e);
      qNopeRows[q] = transposed(left);
      kUp[q] = right;
    }
    if (dv >= d) {
      vUp[q] = Matrix(dv, rank);
      oCols[q] = Matrix(h, dv);
      std::copy(uv.data.begin(), uv.data.end(), vUp[q].data.begin());
      spareRows(vUp[q], d, uv, 2 * q + 1);
      for (int64_t x = 0; x < h; ++x)
        for (int64_t e = 0; e < d; ++e)
          oCols[q].at(x, e) = wo.at(x, e);
    } else {
      if (llvm::Error e = lowRank(multiply(wo, uv), dv, oCols[q], vUp[q]))
        return std::move(e);
    }
  }

  Matrix query(hq * (n + r), h);
  for (int64_t q = 0; q < hq; ++q) {
    for (int64_t e = 0; e < n; ++e)
      std::copy(qNopeRows[q].row(e), qNopeRows[q].row(e) + h, query.row(q * (n + r) + e));
    for (int64_t e = 0; e < r; ++e)
      std::copy(qPe[q].row(e), qPe[q].row(e) + h, query.row(q * (n + r) + n + e));
  }
  if (s.qLoraRank == 0) {
    append(w.qProj, query);
  } else {
    Matrix left, right; // query ≈ q_b·q_a
    if (llvm::Error e = lowRank(query, s.qLoraRank, left, right))
      return std::move(e);
    append(w.qAProj, right);
    w.qANorm.assign(s.qLoraRank, (float)(aware ? expectedRmsUnder(right, covariance)
                                               : expectedRms(right, t.inputNorm)));
    append(w.qBProj, left);
  }
  append(w.kvAProj, down);
  append(w.kvAProj, kPe);
  // The latent norm's gain: the latent's typical RMS, on the calibration
  // inputs when there are any.
  w.kvANorm.assign(rank, (float)(aware ? expectedRmsUnder(down, covariance)
                                       : expectedRms(down, t.inputNorm)));
  for (int64_t q = 0; q < hq; ++q) {
    append(w.kvBProj, kUp[q]);
    append(w.kvBProj, vUp[q]);
  }
  w.oProj.resize(h * hq * dv);
  for (int64_t x = 0; x < h; ++x)
    for (int64_t q = 0; q < hq; ++q)
      for (int64_t e = 0; e < dv; ++e)
        w.oProj[x * hq * dv + q * dv + e] = (float)oCols[q].at(x, e);
  return w;
}

MlaWeights mlir::attnedit::randomInitMla(int64_t hidden, int64_t numHeads, const MlaShape &s,
                                         uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto normal = [&](int64_t rows, int64_t fanIn) {
    std::normal_distribution<double> dist(0.0, 1.0 / std::sqrt((double)fanIn));
    std::vector<float> out(rows * fanIn);
    for (float &v : out)
      v = (float)dist(rng);
    return out;
  };
  int64_t qk = s.qkNopeHeadDim + s.qkRopeHeadDim;
  MlaWeights w;
  if (s.qLoraRank == 0) {
    w.qProj = normal(numHeads * qk, hidden);
  } else {
    w.qAProj = normal(s.qLoraRank, hidden);
    w.qANorm.assign(s.qLoraRank, 1.0f);
    w.qBProj = normal(numHeads * qk, s.qLoraRank);
  }
  w.kvAProj = normal(s.kvLoraRank + s.qkRopeHeadDim, hidden);
  w.kvANorm.assign(s.kvLoraRank, 1.0f);
  w.kvBProj = normal(numHeads * (s.qkNopeHeadDim + s.vHeadDim), s.kvLoraRank);
  w.oProj = normal(hidden, numHeads * s.vHeadDim);
  return w;
}
