// The L-BFGS curvature pairs and the two-loop recursion (Nocedal & Wright,
// 2nd ed., Algorithm 7.4), shared by the full-batch solver (lbfgs.hpp) and
// the full-batch L-BFGS optimizer of fit() (full_batch_lbfgs.hpp).
//
// The last m pairs s_i = x_{i+1} - x_i, y_i = g_{i+1} - g_i live in two n x m
// ring buffers allocated once; direction() computes -H g with the initial
// matrix gamma I, gamma = s^T y / y^T y of the newest pair (eq. 7.20). A pair
// with s^T y <= threshold |s| |y| is refused, so H stays positive definite.
#pragma once

#include <string>

#include "hesse/core/types.hpp"

namespace hesse::optim {

template <class T>
class LbfgsHistory {
 public:
  LbfgsHistory() = default;
  LbfgsHistory(Index n, int memory) { resize(n, memory); }

  void resize(Index n, int memory) {
    s_.resize(n, memory);
    y_.resize(n, memory);
    rho_.resize(memory);
    alpha_.resize(memory);
    clear();
  }
  void clear() { oldest_ = count_ = 0; }
  int size() const { return count_; }
  int memory() const { return static_cast<int>(rho_.size()); }

  /// Stores the pair unless s^T y <= threshold |s| |y|; returns whether it did.
  bool push(const Vector<T>& s, const Vector<T>& y, double threshold) {
    const T sy = s.dot(y);
    if (!(static_cast<double>(sy) > threshold * static_cast<double>(s.norm() * y.norm())))
      return false;
    const int m = memory();
    const int slot = count_ < m ? column(count_) : oldest_;
    s_.col(slot) = s;
    y_.col(slot) = y;
    rho_[slot] = T(1) / sy;
    if (count_ < m)
      ++count_;
    else
      oldest_ = (oldest_ + 1) % m;
    return true;
  }

  /// direction = -H g by the two-loop recursion.
  void direction(const Vector<T>& g, Vector<T>& direction) {
    direction = g;
    for (int j = count_ - 1; j >= 0; --j) {
      const int i = column(j);
      alpha_[i] = rho_[i] * s_.col(i).dot(direction);
      direction.noalias() -= alpha_[i] * y_.col(i);
    }
    if (count_ > 0) {
      const int newest = column(count_ - 1);
      direction *= T(1) / (rho_[newest] * y_.col(newest).squaredNorm());
    }
    for (int j = 0; j < count_; ++j) {
      const int i = column(j);
      const T beta = rho_[i] * y_.col(i).dot(direction);
      direction.noalias() += (alpha_[i] - beta) * s_.col(i);
    }
    direction = -direction;
  }

  // For checkpoints: the buffers and the ring's position.
  const Matrix<T>& s_pairs() const { return s_; }
  const Matrix<T>& y_pairs() const { return y_; }
  const Vector<T>& rho() const { return rho_; }
  int oldest() const { return oldest_; }
  Matrix<T>& s_pairs() { return s_; }
  Matrix<T>& y_pairs() { return y_; }
  Vector<T>& rho() { return rho_; }
  void set_position(int oldest, int count) {
    oldest_ = oldest;
    count_ = count;
  }

 private:
  int column(int j) const { return (oldest_ + j) % memory(); }
  Matrix<T> s_, y_;
  Vector<T> rho_, alpha_;
  int oldest_ = 0;
  int count_ = 0;
};

}  // namespace hesse::optim
