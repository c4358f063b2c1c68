#include "hesse/optim/kfac.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <utility>

#include "hesse/core/error.hpp"
#include "hesse/core/finite.hpp"
#include "hesse/linalg/dense.hpp"
#include "hesse/optim/hessian_free.hpp"
#include "threads.hpp"

namespace hesse::optim {

namespace {

[[noreturn]] void fail(const char* field, double value, const std::string& rule) {
  std::ostringstream message;
  message << "kfac." << field << " = " << value << ": " << rule;
  throw InvalidArgument(message.str());
}

void require_positive(const char* field, double value) {
  if (!(value > 0 && std::isfinite(value))) fail(field, value, "must be finite and > 0");
}

void require_non_negative(const char* field, double value) {
  if (!(value >= 0 && std::isfinite(value))) fail(field, value, "must be finite and >= 0");
}

void require_period(const char* field, Index value) {
  if (value < 1) fail(field, static_cast<double>(value), "must be >= 1 (steps)");
}

std::string block_name(const char* what, std::size_t b) {
  return std::string("kfac.") + what + "." + std::to_string(b);
}

constexpr Index kLayoutFields = 5;  // layer, weight_offset, rows, cols, bias_offset
// Preconditioning slices of 128 columns (Cholesky: the result's; eigen: the
// first and third products'); the eigen variant's second and fourth
// products by 64 rows (a dense Q_A is packed once per slice: 785 x 785 on
// the benchmark's first layer, twice instead of four times with 32).
constexpr Index kSliceColumns = 128;
constexpr Index kEigenRightSliceRows = 64;
// Columns of a dense damped inverse solved per item of a refresh.
constexpr Index kInverseSliceColumns = 128;

// Chunks of the step on x: each chunk of the momentum buffer is still in
// cache for x.
constexpr Index kStepChunk = 2048;

using detail::SingleThreadedProducts;

}  // namespace

void KfacOptions::validate() const {
  require_positive("learning_rate", learning_rate);
  require_positive("damping", damping);
  if (!(momentum >= 0 && momentum < 1)) fail("momentum", momentum, "must be in [0, 1)");
  if (!(ema_decay >= 0 && ema_decay < 1)) fail("ema_decay", ema_decay, "must be in [0, 1)");
  require_period("inverse_every", inverse_every);
  require_period("statistics_every", statistics_every);
  if (!(statistics_fraction > 0 && statistics_fraction <= 1))
    fail("statistics_fraction", statistics_fraction, "must be in (0, 1]");
  if (fisher != nn::FisherKind::True && fisher != nn::FisherKind::Empirical)
    fail("fisher", static_cast<int>(fisher), "must be 0 (true Fisher) or 1 (empirical Fisher)");
  if (inverse != KfacInverse::Cholesky && inverse != KfacInverse::Eigen)
    fail("inverse", static_cast<int>(inverse), "must be 0 (Cholesky) or 1 (eigen)");
  if (rank < 0) fail("rank", static_cast<double>(rank), "must be >= 0 (0: exact inverses)");
  if (rank > 0 && inverse != KfacInverse::Cholesky)
    fail("rank", static_cast<double>(rank),
         "low-rank factors need the Cholesky variant (inverse = 0); the eigen variant is exact");
  require_period("subspace_iterations", subspace_iterations);
  require_period("damping_every", damping_every);
  if (!(damping_decay > 0 && damping_decay < 1))
    fail("damping_decay", damping_decay, "must be in (0, 1)");
  require_positive("min_damping", min_damping);
  require_positive("max_damping", max_damping);
  if (!(max_damping >= min_damping))
    fail("max_damping", max_damping, "must be >= min_damping = " + std::to_string(min_damping));
  if (!(damping >= min_damping && damping <= max_damping))
    fail("damping", damping,
         "must be in [min_damping, max_damping] = [" + std::to_string(min_damping) + ", " +
             std::to_string(max_damping) + "]");
  require_non_negative("kl_clip", kl_clip);
  require_non_negative("weight_decay", weight_decay);
  if (!(failure_damping_factor > 1 && std::isfinite(failure_damping_factor)))
    fail("failure_damping_factor", failure_damping_factor, "must be finite and > 1");
}

KfacOptions KfacOptions::from_settings(const OptimizerSettings& settings) {
  KfacOptions o;
  SettingsReader r("kfac", settings);
  r.read("lr", o.learning_rate);
  r.read("damping", o.damping);
  r.read("momentum", o.momentum);
  r.read("ema_decay", o.ema_decay);
  r.read("inverse_every", o.inverse_every);
  r.read("statistics_every", o.statistics_every);
  r.read("statistics_fraction", o.statistics_fraction);
  int fisher = static_cast<int>(o.fisher), inverse = static_cast<int>(o.inverse);
  r.read("fisher", fisher);
  r.read("inverse", inverse);
  o.fisher = static_cast<nn::FisherKind>(fisher);
  o.inverse = static_cast<KfacInverse>(inverse);
  r.read("rank", o.rank);
  r.read("subspace_iterations", o.subspace_iterations);
  r.read("adaptive_damping", o.adaptive_damping);
  r.read("damping_every", o.damping_every);
  r.read("damping_decay", o.damping_decay);
  r.read("min_damping", o.min_damping);
  r.read("max_damping", o.max_damping);
  r.read("kl_clip", o.kl_clip);
  r.read("weight_decay", o.weight_decay);
  r.read("failure_damping_factor", o.failure_damping_factor);
  Index seed = 0;
  r.read("seed", seed);
  if (seed < 0) fail("seed", static_cast<double>(seed), "must be >= 0");
  o.seed = static_cast<std::uint64_t>(seed);
  r.finish();
  o.validate();
  return o;
}

template <class T>
Kfac<T>::Kfac(KfacOptions options)
    : options_(options),
      damping_(options.damping),
      rng_(options.seed),
      last_rho_(std::numeric_limits<double>::quiet_NaN()) {
  options_.validate();
}

template <class T>
void Kfac<T>::set_learning_rate(double lr) {
  KfacOptions changed = options_;
  changed.learning_rate = lr;
  changed.validate();
  options_ = changed;
}

template <class T>
void Kfac<T>::raise_damping() {
  damping_ = std::min(options_.max_damping, damping_ * options_.failure_damping_factor);
  refresh_pending_ = true;
}

template <class T>
void Kfac<T>::on_numerical_failure() {
  raise_damping();
}

template <class T>
void Kfac<T>::reset() {
  this->steps_ = 0;
  damping_ = options_.damping;
  rng_.seed(options_.seed);
  dimension_ = 0;
  checked_ = false;
  blocks_.clear();
  plain_ranges_.clear();
  inverse_slices_.clear();
  left_slices_.clear();
  right_slices_.clear();
  factors_ = {};
  batch_factors_ = {};
  have_factors_ = have_inverses_ = have_momentum_ = refresh_pending_ = false;
  last_rho_ = std::numeric_limits<double>::quiet_NaN();
}

template <class T>
void Kfac<T>::allocate(const std::vector<ParameterBlock>& layout, Index dimension) {
  HESSE_REQUIRE(dimension > 0, "kfac: the objective has no parameters");
  std::vector<std::pair<Index, Index>> covered;
  for (const ParameterBlock& p : layout) {
    const bool bias = p.bias_offset >= 0;
    const Index end = p.weight_offset + p.rows * (p.cols + (bias ? 1 : 0));
    HESSE_REQUIRE(p.rows > 0 && p.cols > 0 && p.weight_offset >= 0 && end <= dimension,
                  "kfac: parameter block of layer " + std::to_string(p.layer) + " (" +
                      std::to_string(p.rows) + " x " + std::to_string(p.cols) + " at " +
                      std::to_string(p.weight_offset) + ") does not fit in " +
                      std::to_string(dimension) + " parameters");
    HESSE_REQUIRE(!bias || p.bias_offset == p.weight_offset + p.rows * p.cols,
                  "kfac: the bias of layer " + std::to_string(p.layer) +
                      " does not follow its weight in the parameter vector; K-FAC needs [W b] "
                      "contiguous");
    covered.emplace_back(p.weight_offset, end);
  }
  std::sort(covered.begin(), covered.end());
  plain_ranges_.clear();
  Index next = 0;
  for (const auto& [begin, end] : covered) {
    HESSE_REQUIRE(begin >= next,
                  "kfac: parameter blocks overlap at offset " + std::to_string(begin));
    if (begin > next) plain_ranges_.emplace_back(next, begin);
    next = end;
  }
  if (next < dimension) plain_ranges_.emplace_back(next, dimension);

  // Built in place: a sized Eigen eigensolver must not be copied.
  blocks_ = std::vector<Block>(layout.size());
  factors_.A.assign(layout.size(), Matrix<T>());
  factors_.G.assign(layout.size(), Matrix<T>());
  for (std::size_t b = 0; b < layout.size(); ++b) {
    Block& k = blocks_[b];
    k.layout = layout[b];
    k.width = k.layout.cols + (k.layout.bias_offset >= 0 ? 1 : 0);
    const Index rows = k.layout.rows, width = k.width, a_size = k.layout.cols + 1;
    k.product.setZero(rows, width);
    if (options_.inverse == KfacInverse::Eigen) {
      k.a_values.setZero(width);
      k.g_values.setZero(rows);
      k.rotated.setZero(rows, width);
    }
    factors_.A[b].setZero(a_size, a_size);
    factors_.G[b].setZero(rows, rows);
    const Index r = options_.rank;
    auto size_low_rank = [r](LowRank& low, Index n) {
      low.active = r > 0 && n > r;
      if (low.active) low.resize(n, r);
    };
    size_low_rank(k.a_low, width);
    size_low_rank(k.g_low, rows);
    // A low-rank factor has no dense inverse (785 x 785 on the benchmark's
    // first layer).
    if (!k.a_low.active) k.a_inverse.setZero(width, width);
    if (!k.g_low.active) k.g_inverse.setZero(rows, rows);
  }
  factor_ok_.assign(2 * layout.size(), 0);
  inverse_slices_.clear();
  if (options_.inverse == KfacInverse::Cholesky) {
    for (std::size_t b = 0; b < blocks_.size(); ++b) {
      const Block& k = blocks_[b];
      const auto slice = [&](Index factor, Index n) {
        for (Index c = 0; c < n; c += kInverseSliceColumns)
          inverse_slices_.push_back({factor, c, std::min(kInverseSliceColumns, n - c)});
      };
      if (!k.a_low.active) slice(2 * static_cast<Index>(b), k.width);
      if (!k.g_low.active) slice(2 * static_cast<Index>(b) + 1, k.layout.rows);
    }
  }
  left_slices_.clear();
  right_slices_.clear();
  for (std::size_t b = 0; b < blocks_.size(); ++b) {
    Block& k = blocks_[b];
    const Index rows = k.layout.rows, width = k.width, r = options_.rank;
    k.first_left = left_slices_.size();
    for (Index c = 0; c < width; c += kSliceColumns) {
      const Index count = std::min(kSliceColumns, width - c);
      if (options_.inverse == KfacInverse::Eigen) {
        left_slices_.push_back({.block = b, .begin = c, .count = count});
        continue;
      }
      Slice right{.block = b, .begin = c, .count = count};
      if (k.a_low.active) {
        Slice left{.block = b, .begin = c, .count = count};
        left.partial.setZero(rows, r);
        left_slices_.push_back(std::move(left));
        right.partial.setZero(rows, r);
      }
      if (k.g_low.active) right.work.setZero(r, count);
      right_slices_.push_back(std::move(right));
    }
    k.left_count = left_slices_.size() - k.first_left;
    if (options_.inverse == KfacInverse::Eigen)
      for (Index i = 0; i < rows; i += kEigenRightSliceRows)
        right_slices_.push_back(
            {.block = b, .begin = i, .count = std::min(kEigenRightSliceRows, rows - i)});
  }
  gradient_.setZero(dimension);
  update_.setZero(dimension);
  momentum_buffer_.setZero(dimension);
  if (options_.adaptive_damping) {
    trial_.setZero(dimension);
    curvature_product_.setZero(dimension);
  }
  dimension_ = dimension;
}

template <class T>
void Kfac<T>::set_up(StochasticObjective<T>& f, const Vector<T>& x) {
  if (f.network() == nullptr)
    throw InvalidArgument(
        "kfac: the objective is not a neural network (StochasticObjective::network() is null); "
        "K-FAC needs the layer inputs and output gradients of an nn::NetworkObjective. Use "
        "sgd, adam or a Hessian-free method for other objectives");
  HESSE_REQUIRE(x.size() == f.dimension(), "kfac: x has " + std::to_string(x.size()) +
                                               " entries, the objective has " +
                                               std::to_string(f.dimension()) + " parameters");
  const std::vector<ParameterBlock> layout = f.parameter_blocks();
  if (dimension_ == 0) {
    allocate(layout, f.dimension());
  } else {
    bool same = layout.size() == blocks_.size() && dimension_ == f.dimension();
    for (std::size_t b = 0; same && b < layout.size(); ++b) {
      const ParameterBlock& p = blocks_[b].layout;
      const ParameterBlock& q = layout[b];
      same = p.layer == q.layer && p.weight_offset == q.weight_offset && p.rows == q.rows &&
             p.cols == q.cols && p.bias_offset == q.bias_offset;
    }
    HESSE_REQUIRE(same, "kfac: the optimizer's state belongs to another network (" +
                            std::to_string(blocks_.size()) + " Dense blocks, " +
                            std::to_string(dimension_) + " parameters; the objective has " +
                            std::to_string(layout.size()) + " blocks, " +
                            std::to_string(f.dimension()) + " parameters)");
  }
  checked_ = true;
}

template <class T>
bool Kfac<T>::refresh_inverses(const nn::KroneckerFactors<T>& candidates, std::string& why,
                               int threads) {
  const double shift = damping_ + options_.weight_decay;
  const double gamma = std::sqrt(shift);
  const auto factors = static_cast<Index>(2 * blocks_.size());  // 2b: block b's A, 2b + 1: its G
  const auto factor_of = [&](Index j) {
    const auto b = static_cast<std::size_t>(j / 2);
    const Index n = j % 2 == 0 ? blocks_[b].width : blocks_[b].layout.rows;
    return (j % 2 == 0 ? candidates.A[b] : candidates.G[b]).topLeftCorner(n, n);
  };
  if (options_.inverse == KfacInverse::Cholesky) {
    // Factor j's damping. M&G sec. 6.3: pi balances the two factors' damping
    // by their mean eigenvalues (trace norms); 1 when either factor vanishes.
    const auto damping_of = [&](Index j) {
      const auto A = factor_of(j - j % 2), G = factor_of(j - j % 2 + 1);
      const double mean_a = static_cast<double>(A.trace()) / static_cast<double>(A.rows());
      const double mean_g = static_cast<double>(G.trace()) / static_cast<double>(G.rows());
      double pi = std::sqrt(mean_a / mean_g);
      if (!(mean_a > 0 && mean_g > 0 && std::isfinite(pi))) pi = 1;
      return j % 2 == 0 ? pi * gamma : gamma / pi;
    };
    // Phase 1, a factor per item: its Cholesky factorisation, or its whole
    // low-rank inverse. Phase 2, a fixed slice of columns of a dense
    // inverse per item: (F + shift I)^-1 [:, slice] from the factorisation,
    // the same arithmetic column for column as one solve of the identity.
    // The largest factor's solve (785 x 785 on the benchmark network) is
    // most of a refresh and is shared out; which thread takes an item never
    // changes its result.
    const auto factorise = [&](Index j) {
      Block& k = blocks_[static_cast<std::size_t>(j / 2)];
      const bool a = j % 2 == 0;
      const auto F = factor_of(j);
      const double factor_shift = damping_of(j);
      LowRank& low = a ? k.a_low : k.g_low;
      bool ok;
      if (low.active) {
        ok = low.compute(
            F, factor_shift, options_.subspace_iterations,
            options_.seed ^ (0x9E3779B97F4A7C15ULL * static_cast<std::uint64_t>(j + 1)));
      } else {
        Eigen::LLT<Matrix<T>>& llt = a ? k.a_llt : k.g_llt;
        llt.compute(F + static_cast<T>(factor_shift) * Matrix<T>::Identity(F.rows(), F.cols()));
        ok = llt.info() == Eigen::Success;
      }
      factor_ok_[static_cast<std::size_t>(j)] = ok ? 1 : 0;
    };
    const auto solve = [&](Index i) {
      const InverseSlice& s = inverse_slices_[static_cast<std::size_t>(i)];
      if (!factor_ok_[static_cast<std::size_t>(s.factor)]) return;
      Block& k = blocks_[static_cast<std::size_t>(s.factor / 2)];
      const bool a = s.factor % 2 == 0;
      Matrix<T>& inverse = a ? k.a_inverse : k.g_inverse;
      auto columns = inverse.middleCols(s.begin, s.count);
      columns.setZero();
      columns.diagonal(-s.begin).setOnes();
      (a ? k.a_llt : k.g_llt).solveInPlace(columns);
    };
    detail::parallel_phases(threads, detail::Items{factors, factorise},
                            detail::Items{static_cast<Index>(inverse_slices_.size()), solve});
    for (Index j = 0; j < factors; ++j)
      if (!factor_ok_[static_cast<std::size_t>(j)]) {
        why = "Cholesky factorisation or low-rank approximation of the damped factors of block " +
              std::to_string(j / 2) + " failed";
        return false;
      }
  } else {
    // A factor per item: its eigendecomposition.
    detail::parallel_for(factors, threads, [&](Index j) {
      Block& k = blocks_[static_cast<std::size_t>(j / 2)];
      auto& solver = j % 2 == 0 ? k.a_eigen : k.g_eigen;
      solver.compute(factor_of(j));
      factor_ok_[static_cast<std::size_t>(j)] =
          solver.info() == Eigen::Success && all_finite(solver.eigenvalues()) ? 1 : 0;
    });
    for (std::size_t b = 0; b < blocks_.size(); ++b) {
      Block& k = blocks_[b];
      if (!factor_ok_[2 * b] || !factor_ok_[2 * b + 1]) {
        why = "eigendecomposition of the factors of block " + std::to_string(b) + " failed";
        return false;
      }
      // Both factors are positive semidefinite; rounding can leave tiny
      // negative eigenvalues, which would make d_G d_A^T + lambda vanish.
      k.a_inverse = k.a_eigen.eigenvectors();
      k.g_inverse = k.g_eigen.eigenvectors();
      k.a_values = k.a_eigen.eigenvalues().cwiseMax(T(0));
      k.g_values = k.g_eigen.eigenvalues().cwiseMax(T(0));
    }
  }
  for (std::size_t b = 0; b < blocks_.size(); ++b)
    if (!all_finite(blocks_[b].a_inverse) || !all_finite(blocks_[b].g_inverse)) {
      why = "the inverses of block " + std::to_string(b) + " are not finite";
      return false;
    }
  return true;
}

template <class T>
void KfacLowRankInverse<T>::resize(Index n, Index r) {
  HESSE_REQUIRE(r > 0 && r < n, "kfac: a low-rank factor needs 0 < rank < dimension (rank " +
                                    std::to_string(r) + ", dimension " + std::to_string(n) + ")");
  basis.setZero(n, r);
  scale.setZero(r);
  rest = 0;
  have_basis = false;
}

// The top r eigenpairs by linalg::top_eigenpairs, warm-started from the
// previous basis.
template <class T>
bool KfacLowRankInverse<T>::compute(const Eigen::Ref<const Matrix<T>>& F, double shift,
                                    Index iterations, std::uint64_t seed) {
  const Index n = F.rows(), r = basis.cols();
  HESSE_REQUIRE(F.cols() == n && basis.rows() == n && r > 0 && r < n,
                "kfac: low-rank inverse of a " + std::to_string(F.rows()) + " x " +
                    std::to_string(F.cols()) + " factor with a basis of " +
                    std::to_string(basis.rows()) + " x " + std::to_string(r));
  const bool warm = have_basis;
  have_basis = false;
  Vector<double> values;
  double rest_mean = 0;
  if (!linalg::top_eigenpairs<T>(F, basis, warm, iterations, seed, values, rest_mean)) return false;
  const double inverse_rest = 1 / (rest_mean + shift);
  for (Index i = 0; i < r; ++i) scale[i] = static_cast<T>(1 / (values[i] + shift) - inverse_rest);
  rest = static_cast<T>(inverse_rest);
  // A basis with NaN/Inf must not warm-start the next refresh.
  have_basis = all_finite(scale) && std::isfinite(inverse_rest);
  return have_basis;
}

template struct KfacLowRankInverse<float>;
template struct KfacLowRankInverse<double>;

// G^-1 grad A^-1 = G^-1 (grad A^-1): A's side first, then G's on each
// column, so each slice's part of grad A^-1 stays in its columns (and its
// thread's cache). A low-rank A^-1 = rest I + Q_A S_A Q_A^T needs grad Q_A
// first, from every column: the left slices' shares of it.
template <class T>
void Kfac<T>::left_slice(Slice& s) {
  const Block& k = blocks_[s.block];
  const Index rows = k.layout.rows;
  const ConstMatrixMap<T> grad(gradient_.data() + k.layout.weight_offset + s.begin * rows, rows,
                               s.count);
  s.partial.noalias() = grad * k.a_low.basis.middleRows(s.begin, s.count);
}

template <class T>
void Kfac<T>::right_slice(Slice& s) {
  Block& k = blocks_[s.block];
  const Index rows = k.layout.rows;
  const ConstMatrixMap<T> grad(gradient_.data() + k.layout.weight_offset + s.begin * rows, rows,
                               s.count);
  // product[:, slice] = (grad A^-1)[:, slice]
  auto product = k.product.middleCols(s.begin, s.count);
  if (k.a_low.active) {
    const LowRank& a = k.a_low;
    // grad Q_A S_A: the left slices' shares in slice order, on every slice
    // alike ([rows, r] each, 7 of them on the benchmark's first layer).
    s.partial = left_slices_[k.first_left].partial;
    for (std::size_t i = 1; i < k.left_count; ++i)
      s.partial += left_slices_[k.first_left + i].partial;
    s.partial = s.partial * a.scale.asDiagonal();
    product = a.rest * grad;
    product.noalias() += s.partial * a.basis.middleRows(s.begin, s.count).transpose();
  } else {
    const ConstMatrixMap<T> whole(gradient_.data() + k.layout.weight_offset, rows, k.width);
    product.noalias() = whole * k.a_inverse.middleCols(s.begin, s.count);
  }
  MatrixMap<T> out(update_.data() + k.layout.weight_offset + s.begin * rows, rows, s.count);
  if (k.g_low.active) {
    const LowRank& g = k.g_low;
    s.work.noalias() = g.basis.transpose() * product;
    s.work = g.scale.asDiagonal() * s.work;
    out = g.rest * product;
    out.noalias() += g.basis * s.work;
  } else {
    out.noalias() = k.g_inverse * product;
  }
  record_shares(s, out, grad);
}

// The right slice's shares of V^T grad and |grad|^2, while its part of both
// is in cache.
template <class T>
template <class Out, class Grad>
void Kfac<T>::record_shares(Slice& s, const Out& out, const Grad& grad) {
  s.dot = static_cast<double>((out.array() * grad.array()).sum());
  s.squares = static_cast<double>(grad.squaredNorm());
}

// V = grad outside the Dense blocks.
template <class T>
void Kfac<T>::copy_plain() {
  for (const auto& [begin, end] : plain_ranges_)
    update_.segment(begin, end - begin) = gradient_.segment(begin, end - begin);
}

// The eigen variant's four products by the same slices:
//   left, first:   product[:, slice] = Q_G^T grad[:, slice]
//   right, first:  rotated[slice, :] = (product[slice, :] Q_A) ./ (d_G d_A^T + shift)
//   left, second:  product[:, slice] = Q_G rotated[:, slice]
//   right, second: update[slice, :] = product[slice, :] Q_A^T, with the shares
//                  of V^T grad and |grad|^2 as right_slice's.
template <class T>
void Kfac<T>::eigen_left_slice(Slice& s, bool second) {
  Block& k = blocks_[s.block];
  const Index rows = k.layout.rows;
  auto product = k.product.middleCols(s.begin, s.count);
  if (second) {
    product.noalias() = k.g_inverse * k.rotated.middleCols(s.begin, s.count);
  } else {
    const ConstMatrixMap<T> grad(gradient_.data() + k.layout.weight_offset + s.begin * rows, rows,
                                 s.count);
    product.noalias() = k.g_inverse.transpose() * grad;
  }
}

template <class T>
void Kfac<T>::eigen_right_slice(Slice& s, bool second, T shift) {
  Block& k = blocks_[s.block];
  const Index rows = k.layout.rows, width = k.width;
  const auto product = k.product.middleRows(s.begin, s.count);
  if (!second) {
    auto rotated = k.rotated.middleRows(s.begin, s.count);
    rotated.noalias() = product * k.a_inverse;
    const auto g_values = k.g_values.segment(s.begin, s.count).array();
    for (Index j = 0; j < width; ++j) rotated.col(j).array() /= g_values * k.a_values[j] + shift;
    return;
  }
  MatrixMap<T> whole(update_.data() + k.layout.weight_offset, rows, width);
  auto out = whole.middleRows(s.begin, s.count);
  out.noalias() = product * k.a_inverse.transpose();
  const auto grad = ConstMatrixMap<T>(gradient_.data() + k.layout.weight_offset, rows, width)
                        .middleRows(s.begin, s.count);
  record_shares(s, out, grad);
}

template <class T>
template <class StepChunk>
double Kfac<T>::precondition(int threads, Index chunks, const StepChunk& step_chunk) {
  if (options_.inverse != KfacInverse::Cholesky) {
    copy_plain();
    // (Q_A (x) Q_G) diag(d_A (x) d_G + shift)^-1 (Q_A (x) Q_G)^T vec(grad), in
    // four phases of fixed slices over the threads (three barriers).
    const T shift = static_cast<T>(damping_ + options_.weight_decay);
    const auto left_count = static_cast<Index>(left_slices_.size());
    const auto right_count = static_cast<Index>(right_slices_.size());
    const auto left = [&](std::size_t i, bool second) {
      eigen_left_slice(left_slices_[i], second);
    };
    const auto right = [&](std::size_t i, bool second) {
      eigen_right_slice(right_slices_[i], second, shift);
    };
    const auto left_first = [&](Index i) { left(static_cast<std::size_t>(i), false); };
    const auto right_first = [&](Index i) { right(static_cast<std::size_t>(i), false); };
    const auto left_second = [&](Index i) { left(static_cast<std::size_t>(i), true); };
    const auto right_second = [&](Index i) { right(static_cast<std::size_t>(i), true); };
    detail::parallel_phases(
        threads, detail::Items{left_count, left_first}, detail::Items{right_count, right_first},
        detail::Items{left_count, left_second}, detail::Items{right_count, right_second});
    const double dot = update_dot_gradient();
    detail::parallel_for(chunks, threads, [&](Index j) { step_chunk(j, dot); });
    return dot;
  }
  if (threads <= 1) {
    // No region: libgomp allocates for a team of one on every entry.
    return precondition_slices(false, chunks, step_chunk);
  }
  double dot = 0;  // the same on every member
#pragma omp parallel num_threads(threads)
  {
    const double member_dot = precondition_slices(omp_get_num_threads() > 1, chunks, step_chunk);
    if (omp_get_thread_num() == 0) dot = member_dot;
  }
  return dot;
}

template <class T>
double Kfac<T>::update_dot_gradient() const {
  // |grad|^2 in T, as gradient_.norm() overflows: a gradient the unfused
  // path rejects on its norm gives no step here either.
  double dot = 0;
  T squares = 0;
  for (const Slice& slice : right_slices_) {
    dot += slice.dot;
    squares += static_cast<T>(slice.squares);
  }
  for (const auto& [begin, end] : plain_ranges_) {
    const T plain = gradient_.segment(begin, end - begin).squaredNorm();
    dot += static_cast<double>(plain);
    squares += plain;
  }
  return std::isfinite(squares) ? dot : std::numeric_limits<double>::quiet_NaN();
}

template <class T>
template <class StepChunk>
double Kfac<T>::precondition_slices(bool shared, Index chunks, const StepChunk& step_chunk) {
  // (A (x) G)^-1 vec(grad) = vec(G^-1 grad A^-1)   [rows, width], by
  // column slices: the low-rank A's shares of grad Q_A, then each slice's
  // G^-1 (grad A^-1)[:, slice]. Each slice is the same computation
  // whichever thread runs it.
  const auto left_count = static_cast<Index>(left_slices_.size());
  const auto right_count = static_cast<Index>(right_slices_.size());
  if (!shared) {
    copy_plain();
    for (Slice& slice : left_slices_) left_slice(slice);
    for (Slice& slice : right_slices_) right_slice(slice);
    const double dot = update_dot_gradient();
    for (Index j = 0; j < chunks; ++j) step_chunk(j, dot);
    return dot;
  }
  // The loops' barriers (one without left slices: exact inverses) and
  // whatever ends the region: with OMP_WAIT_POLICY=PASSIVE each one sleeps
  // and wakes a thread, 20 us or more on a virtual machine
  // (docs/optimizers-kfac.md, "Cost per step"). The copy is done before the
  // step's chunks read it: a loop's barrier lies between.
#pragma omp single nowait
  copy_plain();
  if (left_count > 0) {  // the same on every member
#pragma omp for schedule(dynamic, 1)
    for (Index i = 0; i < left_count; ++i) left_slice(left_slices_[static_cast<std::size_t>(i)]);
  }
#pragma omp for schedule(dynamic, 1)
  for (Index i = 0; i < right_count; ++i) right_slice(right_slices_[static_cast<std::size_t>(i)]);
  // Every share is in after the loop's barrier: each thread forms the same
  // sum itself instead of waiting for one to broadcast it.
  const double dot = update_dot_gradient();
#pragma omp for schedule(static) nowait
  for (Index j = 0; j < chunks; ++j) step_chunk(j, dot);
  return dot;
}

template <class T>
StepResult Kfac<T>::reject(StepResult result, const std::string& why) {
  raise_damping();
  std::ostringstream event;
  event << why << ": step rejected, x unchanged, damping raised to " << damping_
        << ", inverses refreshed next step";
  result.accepted = false;
  result.event = event.str();
  return result;
}

template <class T>
StepResult Kfac<T>::step(StochasticObjective<T>& f, Vector<T>& x, std::span<const Index> batch) {
  if (!checked_) set_up(f, x);
  HESSE_REQUIRE(x.size() == dimension_, "kfac: x has " + std::to_string(x.size()) +
                                            " entries, the optimizer was set up for " +
                                            std::to_string(dimension_));
  nn::NetworkObjective<T>* network = f.network();
  HESSE_REQUIRE(network != nullptr, "kfac: the objective is not a neural network");

  StepResult result;
  f.select_batch(batch);
  const bool statistics = !have_factors_ || this->steps_ % options_.statistics_every == 0;
  const bool refresh =
      !have_inverses_ || refresh_pending_ || this->steps_ % options_.inverse_every == 0;
  const bool adapt = options_.adaptive_damping && this->steps_ % options_.damping_every == 0;

  // Ba, Grosse & Martens (2017): lr^2 V^T grad estimates the KL divergence
  // the step causes; V is scaled by nu so that it stays below kl_clip.
  const double lr = options_.learning_rate;
  const auto kl_scale = [&](double dot) {
    if (options_.kl_clip > 0) {
      const double predicted = lr * lr * dot;
      if (predicted > options_.kl_clip) return std::sqrt(options_.kl_clip / predicted);
    }
    return 1.0;
  };
  const T momentum = static_cast<T>(options_.momentum);
  const bool use_momentum = have_momentum_ && options_.momentum > 0;
  const T minus_lr = static_cast<T>(-lr);
  // update_ becomes the new momentum buffer b; the step is delta = -lr b.
  const auto form_buffer = [&](Index begin, Index size, double nu) {
    const T scale = static_cast<T>(nu);
    auto b = update_.segment(begin, size);
    if (use_momentum)
      b = momentum * momentum_buffer_.segment(begin, size) + scale * b;
    else if (nu != 1)
      b *= scale;
  };
  // Without the adaptive rule the step is taken in the preconditioning's
  // region, b and x chunk by chunk (each chunk of b still in cache for x),
  // unless V^T grad says V is not finite: NaN or Inf exactly when an entry
  // of V is (NaN * 0 and Inf * 0 are NaN), or when it overflows.
  const auto step_chunk = [&](Index j, double dot) {
    if (!std::isfinite(dot)) return;
    const Index begin = j * kStepChunk, size = std::min(kStepChunk, dimension_ - begin);
    form_buffer(begin, size, kl_scale(dot));
    x.segment(begin, size).noalias() += minus_lr * update_.segment(begin, size);
  };
  const Index chunks = adapt ? 0 : (dimension_ + kStepChunk - 1) / kStepChunk;

  // A plain step (no statistics, refresh, adaptive rule or weight decay)
  // preconditions and steps on the gradient pass's own threads: one team
  // wake-up per step instead of two. The work is the same as below, bit for
  // bit; a non-finite loss skips it, a non-finite gradient makes V^T grad
  // non-finite so x is not moved, and the checks below reject the step.
  const bool fused = !statistics && !refresh && !adapt && options_.weight_decay == 0 &&
                     options_.inverse == KfacInverse::Cholesky;
  T loss;
  // The candidate averages live in batch_factors_ until the step is taken;
  // the objective folds the batch into them (lower triangles) and checks them.
  Index nonfinite_block = -1;
  // The statistics' samples: the first `sampled` of the batch.
  const auto sampled =
      static_cast<std::size_t>(statistics ? detail::subset_size(static_cast<Index>(batch.size()),
                                                                options_.statistics_fraction)
                                          : 0);
  const auto fold_statistics = [&](Vector<T>* gradient) {
    return network->kronecker_factor_averages(
        x, options_.fisher, rng_, have_factors_ ? &factors_ : nullptr, options_.ema_decay,
        batch_factors_, gradient, nonfinite_block);
  };
  double fused_dot = std::numeric_limits<double>::quiet_NaN();
  if (fused) {
    loss = f.value_and_gradient_then(x, gradient_, [&](T batch_loss, bool shared) {
      if (!std::isfinite(batch_loss)) return;  // the same on every member
      double dot = 0;
      if (shared) {
        dot = precondition_slices(true, chunks, step_chunk);
      } else {
        SingleThreadedProducts guard;
        dot = precondition_slices(false, chunks, step_chunk);
      }
      if (omp_get_thread_num() == 0) fused_dot = dot;  // x moved iff finite
    });
  } else if (statistics && sampled == batch.size()) {
    // The network's own pass: fit()'s gradient clipping applied afterwards.
    loss = fold_statistics(&gradient_);
    f.clip_gradient(gradient_);
  } else if (statistics) {
    // The gradient on the batch, then A and G from a pass of their own.
    loss = f.value_and_gradient(x, &gradient_);
    f.select_batch(batch.first(sampled));
    fold_statistics(nullptr);
    f.select_batch(batch);
  } else {
    loss = f.value_and_gradient(x, &gradient_);
  }
  HESSE_ASSERT(gradient_.size() == dimension_,
               "kfac: the objective returned a gradient of " + std::to_string(gradient_.size()) +
                   " values for " + std::to_string(dimension_) + " parameters");
  result.loss = static_cast<double>(loss);
  result.gradient_norm = static_cast<double>(gradient_.norm());
  result.gradient_evaluations = 1;
  // The norm is NaN or Inf exactly when an entry is (or when the squares
  // overflow, itself numerical trouble): no separate pass over the gradient.
  const bool bad_gradient = !std::isfinite(result.loss) || !std::isfinite(result.gradient_norm);
  if (fused && !std::isfinite(fused_dot))
    return reject(result, bad_gradient ? "non-finite loss or gradient"
                                       : "non-finite preconditioned gradient");
  if (!fused && bad_gradient) return reject(result, "non-finite loss or gradient");

  // The averages of finite old factors are NaN/Inf exactly where the
  // batch's are, so the check runs once, on what becomes the average.
  if (nonfinite_block >= 0)
    return reject(result,
                  "non-finite Kronecker factors in block " + std::to_string(nonfinite_block));
  const nn::KroneckerFactors<T>* averages = statistics ? &batch_factors_ : &factors_;

  if (options_.weight_decay > 0) gradient_ += static_cast<T>(options_.weight_decay) * x;

  double dot = fused_dot;
  if (!fused) {
    SingleThreadedProducts guard;
    if (refresh) {
      std::string why;
      if (!refresh_inverses(*averages, why, guard.saved())) {
        have_inverses_ = false;
        return reject(result, why);
      }
    }
    dot = precondition(guard.saved(), chunks, step_chunk);
  }
  if (!std::isfinite(dot)) return reject(result, "non-finite preconditioned gradient");

  double rho = 0;
  if (adapt) {
    form_buffer(0, dimension_, kl_scale(dot));
    // M&G sec. 6.5: the reduction ratio of delta against the quadratic model
    // with the exact Gauss-Newton (= Fisher for these losses) matrix on the
    // batch and the weight decay's eta I; no damping in the model.
    trial_ = minus_lr * update_;
    f.gauss_newton_vector(x, trial_, curvature_product_);
    result.curvature_products = 1;
    const double eta = options_.weight_decay;
    const double delta_squared = static_cast<double>(trial_.squaredNorm());
    const double model =
        static_cast<double>(gradient_.dot(trial_)) +
        0.5 * (static_cast<double>(trial_.dot(curvature_product_)) + eta * delta_squared);
    const double before =
        result.loss + (eta > 0 ? 0.5 * eta * static_cast<double>(x.squaredNorm()) : 0.0);
    trial_ += x;
    double after = static_cast<double>(f.value_and_gradient(trial_, nullptr));
    if (eta > 0) after += 0.5 * eta * static_cast<double>(trial_.squaredNorm());
    if (!std::isfinite(after)) return reject(result, "non-finite loss after the step");
    // M&G choose delta to minimise the model, so it predicts a decrease. A
    // step the model says increases h overshoots its minimiser by more than
    // twice: a bad step, whatever h did.
    rho = model < 0 ? (after - before) / model : -std::numeric_limits<double>::infinity();
  }

  // The step is taken (x already moved without the adaptive rule): commit
  // x and the state.
  if (adapt) x.noalias() += minus_lr * update_;
  std::swap(momentum_buffer_, update_);
  have_momentum_ = true;
  if (statistics) {
    std::swap(factors_.A, batch_factors_.A);
    std::swap(factors_.G, batch_factors_.G);
    have_factors_ = true;
  }
  if (refresh) {
    have_inverses_ = true;
    refresh_pending_ = false;
  }
  if (adapt) {
    last_rho_ = rho;
    const double omega =
        std::pow(options_.damping_decay, static_cast<double>(options_.damping_every));
    if (rho > 0.75)
      damping_ = std::max(options_.min_damping, damping_ * omega);
    else if (rho < 0.25)
      damping_ = std::min(options_.max_damping, damping_ / omega);
  }
  ++this->steps_;
  return result;
}

template <class T>
void Kfac<T>::save_state(StateDict& state) const {
  state.scalars["kfac.step"] = static_cast<double>(this->steps_);
  state.scalars["kfac.damping"] = damping_;
  state.scalars["kfac.dimension"] = static_cast<double>(dimension_);
  state.scalars["kfac.inverse"] = static_cast<double>(options_.inverse);
  state.scalars["kfac.rank"] = static_cast<double>(options_.rank);
  state.scalars["kfac.have_factors"] = have_factors_;
  state.scalars["kfac.have_inverses"] = have_inverses_;
  state.scalars["kfac.have_momentum"] = have_momentum_;
  state.scalars["kfac.refresh_pending"] = refresh_pending_;
  state.scalars["kfac.last_reduction_ratio"] = last_rho_;
  state.put_rng("kfac.rng", rng_);
  Vector<double> layout(static_cast<Index>(blocks_.size()) * kLayoutFields);
  for (std::size_t b = 0; b < blocks_.size(); ++b) {
    const ParameterBlock& p = blocks_[b].layout;
    layout.segment(static_cast<Index>(b) * kLayoutFields, kLayoutFields) << double(p.layer),
        double(p.weight_offset), double(p.rows), double(p.cols), double(p.bias_offset);
  }
  state.put("kfac.layout", layout);
  if (dimension_ == 0) return;
  for (std::size_t b = 0; b < blocks_.size(); ++b) {
    const Block& k = blocks_[b];
    if (have_factors_) {
      state.put(block_name("A", b),
                Matrix<T>(factors_.A[b].template selfadjointView<Eigen::Lower>()));
      state.put(block_name("G", b),
                Matrix<T>(factors_.G[b].template selfadjointView<Eigen::Lower>()));
    }
    if (!have_inverses_) continue;
    if (options_.inverse == KfacInverse::Cholesky) {
      auto put = [&](const char* factor, const Matrix<T>& inverse, const LowRank& low) {
        if (!low.active) {
          state.put(block_name((std::string(factor) + "_inverse").c_str(), b), inverse);
          return;
        }
        state.put(block_name((std::string(factor) + "_basis").c_str(), b), low.basis);
        state.put(block_name((std::string(factor) + "_scale").c_str(), b), low.scale);
        state.scalars[block_name((std::string(factor) + "_rest").c_str(), b)] =
            static_cast<double>(low.rest);
      };
      put("A", k.a_inverse, k.a_low);
      put("G", k.g_inverse, k.g_low);
    } else {
      state.put(block_name("A_eigenvectors", b), k.a_inverse);
      state.put(block_name("G_eigenvectors", b), k.g_inverse);
      state.put(block_name("A_eigenvalues", b), k.a_values);
      state.put(block_name("G_eigenvalues", b), k.g_values);
    }
  }
  if (have_momentum_) state.put("kfac.momentum_buffer", momentum_buffer_);
}

template <class T>
void Kfac<T>::load_state(const StateDict& state) {
  auto whole = [&](const char* name, double low) {
    const double v = state.scalar(std::string("kfac.") + name);
    if (!(v >= low && v == std::floor(v) && v < 0x1p62))
      throw InvalidArgument("state: scalar 'kfac." + std::string(name) +
                            "' = " + std::to_string(v) + " is not a count");
    return static_cast<Index>(v);
  };
  auto flag = [&](const char* name) { return whole(name, 0) != 0; };
  const Index dimension = whole("dimension", 0);
  const std::vector<double>& raw = state.array("kfac.layout");
  if (raw.size() % kLayoutFields != 0)
    throw InvalidArgument("state: array 'kfac.layout' has " + std::to_string(raw.size()) +
                          " values, not a multiple of " + std::to_string(kLayoutFields));
  std::vector<ParameterBlock> layout(raw.size() / kLayoutFields);
  for (std::size_t b = 0; b < layout.size(); ++b) {
    const double* v = raw.data() + b * kLayoutFields;
    layout[b] = {.layer = Index(v[0]),
                 .weight_offset = Index(v[1]),
                 .rows = Index(v[2]),
                 .cols = Index(v[3]),
                 .bias_offset = Index(v[4])};
  }

  reset();
  this->steps_ = whole("step", 0);
  damping_ = state.scalar("kfac.damping");
  if (!(damping_ > 0 && std::isfinite(damping_)))
    throw InvalidArgument("state: scalar 'kfac.damping' = " + std::to_string(damping_) +
                          " is not a damping");
  last_rho_ = state.scalar("kfac.last_reduction_ratio");
  state.get_rng("kfac.rng", rng_);
  if (dimension == 0) return;
  allocate(layout, dimension);
  have_factors_ = flag("have_factors");
  have_momentum_ = flag("have_momentum");
  // Inverses of the other variant are recomputed on the next step.
  // States from before the rank option have no "kfac.rank": exact inverses.
  const Index saved_rank = state.scalars.count("kfac.rank") != 0 ? whole("rank", 0) : 0;
  have_inverses_ = flag("have_inverses") &&
                   whole("inverse", 0) == static_cast<Index>(options_.inverse) &&
                   saved_rank == options_.rank;
  refresh_pending_ = flag("refresh_pending") || (flag("have_inverses") && !have_inverses_);
  for (std::size_t b = 0; b < blocks_.size(); ++b) {
    Block& k = blocks_[b];
    if (have_factors_) {
      state.get(block_name("A", b), factors_.A[b]);
      state.get(block_name("G", b), factors_.G[b]);
      // Only the lower triangles are kept (Kfac::factors()).
      factors_.A[b].template triangularView<Eigen::StrictlyUpper>().setZero();
      factors_.G[b].template triangularView<Eigen::StrictlyUpper>().setZero();
    }
    if (!have_inverses_) continue;
    if (options_.inverse == KfacInverse::Cholesky) {
      auto get = [&](const char* factor, Matrix<T>& inverse, LowRank& low) {
        if (!low.active) {
          state.get(block_name((std::string(factor) + "_inverse").c_str(), b), inverse);
          return;
        }
        state.get(block_name((std::string(factor) + "_basis").c_str(), b), low.basis);
        state.get(block_name((std::string(factor) + "_scale").c_str(), b), low.scale);
        low.rest =
            static_cast<T>(state.scalar(block_name((std::string(factor) + "_rest").c_str(), b)));
        low.have_basis = true;
      };
      get("A", k.a_inverse, k.a_low);
      get("G", k.g_inverse, k.g_low);
    } else {
      state.get(block_name("A_eigenvectors", b), k.a_inverse);
      state.get(block_name("G_eigenvectors", b), k.g_inverse);
      state.get(block_name("A_eigenvalues", b), k.a_values);
      state.get(block_name("G_eigenvalues", b), k.g_values);
    }
  }
  if (have_momentum_) state.get("kfac.momentum_buffer", momentum_buffer_);
}

template <class T>
std::unique_ptr<Optimizer<T>> make_kfac(const OptimizerSettings& settings) {
  return std::make_unique<Kfac<T>>(KfacOptions::from_settings(settings));
}

template class Kfac<float>;
template class Kfac<double>;
template std::unique_ptr<Optimizer<float>> make_kfac<float>(const OptimizerSettings&);
template std::unique_ptr<Optimizer<double>> make_kfac<double>(const OptimizerSettings&);

}  // namespace hesse::optim
