#include "hesse/optim/optimizer.hpp"

#include <omp.h>

#include <cstring>
#include <sstream>

#include "hesse/core/atomic_file.hpp"

namespace hesse::optim {

template <class T>
void StochasticObjective<T>::hessian_vector(const Vector<T>&, const Vector<T>&, Vector<T>&) {
  throw InvalidArgument(
      "this objective has no Hessian-vector product (hessian_vector(x, v, Hv)); choose an "
      "optimizer that needs only gradients");
}

template <class T>
void StochasticObjective<T>::gauss_newton_vector(const Vector<T>&, const Vector<T>&, Vector<T>&) {
  throw InvalidArgument(
      "this objective has no Gauss-Newton-vector product (gauss_newton_vector(x, v, Gv)); "
      "choose an optimizer that needs only gradients or Hessian-vector products");
}

template <class T>
T StochasticObjective<T>::value_and_gradient_then(const Vector<T>& x, Vector<T>& gradient,
                                                  const AfterGradient& then) {
  const T loss = value_and_gradient(x, &gradient);
  const int threads = omp_get_max_threads();
  if (threads > 1) {
#pragma omp parallel num_threads(threads)
    then(loss, omp_get_num_threads() > 1);
  } else {
    then(loss, false);
  }
  return loss;
}

template class StochasticObjective<float>;
template class StochasticObjective<double>;

// ---- StateDict ----------------------------------------------------------

const std::vector<double>& StateDict::array(const std::string& name) const {
  const auto it = arrays.find(name);
  if (it == arrays.end()) throw InvalidArgument("state: no array named '" + name + "'");
  return it->second;
}

double StateDict::scalar(const std::string& name) const {
  const auto it = scalars.find(name);
  if (it == scalars.end()) throw InvalidArgument("state: no scalar named '" + name + "'");
  return it->second;
}

const std::string& StateDict::text(const std::string& name) const {
  const auto it = texts.find(name);
  if (it == texts.end()) throw InvalidArgument("state: no text named '" + name + "'");
  return it->second;
}

void StateDict::put_rng(const std::string& name, const Rng& rng) {
  std::ostringstream out;
  out << rng;
  texts[name] = out.str();
}

void StateDict::get_rng(const std::string& name, Rng& rng) const {
  std::istringstream in(text(name));
  in >> rng;
  if (!in) throw InvalidArgument("state: text '" + name + "' is not a random generator state");
}

namespace {

constexpr char kMagic[] = "HESSE-STATE-1\n";

void put_u64(std::string& out, std::uint64_t v) {
  char b[8];
  std::memcpy(b, &v, 8);
  out.append(b, 8);
}
void put_string(std::string& out, const std::string& s) {
  put_u64(out, s.size());
  out += s;
}

class Reader {
 public:
  Reader(const std::string& bytes, const std::string& source) : b_(bytes), source_(source) {}
  std::uint64_t u64(const char* what) {
    need(8, what);
    std::uint64_t v;
    std::memcpy(&v, b_.data() + pos_, 8);
    pos_ += 8;
    return v;
  }
  std::string string(const char* what) {
    const std::uint64_t n = u64(what);
    need(n, what);
    std::string s = b_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  double f64(const char* what) {
    need(8, what);
    double v;
    std::memcpy(&v, b_.data() + pos_, 8);
    pos_ += 8;
    return v;
  }
  void need(std::uint64_t n, const char* what) const {
    if (n > b_.size() - pos_)
      throw DataError(source_ + ": truncated state file: " + what + " at byte " +
                      std::to_string(pos_) + " needs " + std::to_string(n) + " bytes, " +
                      std::to_string(b_.size() - pos_) + " left");
  }
  std::size_t pos() const { return pos_; }
  void skip(std::size_t n) { pos_ += n; }
  bool done() const { return pos_ == b_.size(); }

 private:
  const std::string& b_;
  const std::string& source_;
  std::size_t pos_ = 0;
};

}  // namespace

std::string StateDict::serialize() const {
  std::string out(kMagic);
  put_u64(out, arrays.size());
  for (const auto& [name, a] : arrays) {
    put_string(out, name);
    put_u64(out, a.size());
    out.append(reinterpret_cast<const char*>(a.data()), a.size() * sizeof(double));
  }
  put_u64(out, scalars.size());
  for (const auto& [name, v] : scalars) {
    put_string(out, name);
    out.append(reinterpret_cast<const char*>(&v), sizeof(double));
  }
  put_u64(out, texts.size());
  for (const auto& [name, t] : texts) {
    put_string(out, name);
    put_string(out, t);
  }
  return out;
}

StateDict StateDict::deserialize(const std::string& bytes, const std::string& source) {
  const std::size_t magic = sizeof(kMagic) - 1;
  if (bytes.size() < magic || bytes.compare(0, magic, kMagic) != 0)
    throw DataError(source + ": not a hesse state file (the header '" +
                    std::string(kMagic, magic - 1) + "' is missing)");
  Reader r(bytes, source);
  r.skip(magic);
  StateDict s;
  for (std::uint64_t n = r.u64("array count"), i = 0; i < n; ++i) {
    std::string name = r.string("array name");
    const std::uint64_t len = r.u64("array length");
    if (len > (bytes.size() - r.pos()) / sizeof(double)) r.need(len * sizeof(double), "array data");
    std::vector<double> a(len);
    for (auto& v : a) v = r.f64("array value");
    s.arrays.emplace(std::move(name), std::move(a));
  }
  for (std::uint64_t n = r.u64("scalar count"), i = 0; i < n; ++i) {
    std::string name = r.string("scalar name");
    s.scalars.emplace(std::move(name), r.f64("scalar value"));
  }
  for (std::uint64_t n = r.u64("text count"), i = 0; i < n; ++i) {
    std::string name = r.string("text name");
    s.texts.emplace(std::move(name), r.string("text"));
  }
  if (!r.done())
    throw DataError(source + ": " + std::to_string(bytes.size() - r.pos()) +
                    " unexpected bytes after the state at byte " + std::to_string(r.pos()));
  return s;
}

void StateDict::save(const std::string& path) const { write_file_atomically(path, serialize()); }

StateDict StateDict::load(const std::string& path) { return deserialize(read_file(path), path); }

// ---- SettingsReader -----------------------------------------------------

const double* SettingsReader::find(const std::string& key) {
  known_.push_back(key);
  const auto it = settings_.find(key);
  return it == settings_.end() ? nullptr : &it->second;
}

void SettingsReader::read(const std::string& key, double& field) {
  if (const double* v = find(key)) field = *v;
}
void SettingsReader::read(const std::string& key, float& field) {
  if (const double* v = find(key)) field = static_cast<float>(*v);
}
void SettingsReader::read(const std::string& key, Index& field) {
  if (const double* v = find(key)) {
    if (*v != static_cast<double>(static_cast<Index>(*v)))
      throw InvalidArgument(optimizer_ + ": setting '" + key + "' must be a whole number, got " +
                            std::to_string(*v));
    field = static_cast<Index>(*v);
  }
}
void SettingsReader::read(const std::string& key, int& field) {
  Index v = field;
  read(key, v);
  field = static_cast<int>(v);
}
void SettingsReader::read(const std::string& key, bool& field) {
  if (const double* v = find(key)) {
    if (*v != 0 && *v != 1)
      throw InvalidArgument(optimizer_ + ": setting '" + key + "' must be 0 or 1, got " +
                            std::to_string(*v));
    field = *v != 0;
  }
}

void SettingsReader::finish() const {
  for (const auto& [key, value] : settings_) {
    bool ok = false;
    for (const auto& k : known_) ok = ok || k == key;
    if (!ok) {
      std::string list;
      for (const auto& k : known_) list += (list.empty() ? "" : ", ") + k;
      throw InvalidArgument(optimizer_ + ": unknown setting '" + key + "' (known: " + list + ")");
    }
  }
}

}  // namespace hesse::optim
