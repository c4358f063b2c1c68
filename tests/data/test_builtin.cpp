#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <optional>

#include "data_test_util.hpp"
#include "hesse/data/builtin.hpp"

namespace hesse::data {
namespace {

using testing::expect_data_error;
using testing::fixture;
using testing::TempDir;

std::optional<BuiltinInfo> info_of(const std::string& name) {
  for (auto& info : builtin_datasets())
    if (info.name == name) return info;
  return std::nullopt;
}

// Skips the calling test when the set's files are absent from this machine.
#define SKIP_UNLESS_AVAILABLE(name)                                                    \
  do {                                                                                 \
    const auto info = info_of(name);                                                   \
    ASSERT_TRUE(info.has_value());                                                     \
    if (!info->available) GTEST_SKIP() << name << " is not installed (scripts/setup)"; \
  } while (false)

TEST(Builtin, Catalogue) {
  const auto sets = builtin_datasets();
  std::vector<std::string> names;
  for (const auto& set : sets) {
    names.push_back(set.name);
    EXPECT_GT(set.num_features, 0) << set.name;
    EXPECT_GE(set.num_classes, 2) << set.name;
    EXPECT_GT(set.num_train, set.num_test) << set.name;
    EXPECT_FALSE(set.source.empty()) << set.name;
    EXPECT_FALSE(set.licence.empty()) << set.name;
    EXPECT_FALSE(set.files.empty()) << set.name;
    EXPECT_EQ(set.available, !set.location.empty()) << set.name;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"fashion-mnist", "mnist", "digits", "breast-cancer",
                                             "heart-scale"}));
}

class EachBuiltin : public ::testing::TestWithParam<std::string> {};

// Shapes, label ranges and split sizes agree with the catalogue.
TEST_P(EachBuiltin, MatchesItsCatalogueEntry) {
  const std::string name = GetParam();
  SKIP_UNLESS_AVAILABLE(name);
  const auto info = *info_of(name);
  BuiltinOptions options;
  options.dense = true;
  const auto parts = load_builtin<float>(name, options);
  for (const auto* part : {&parts.train, &parts.test}) {
    EXPECT_EQ(part->name, name);
    EXPECT_FALSE(part->is_sparse());
    EXPECT_EQ(part->num_features(), info.num_features);
    EXPECT_EQ(part->num_classes, info.num_classes);
    EXPECT_EQ(part->class_names.size(), static_cast<std::size_t>(info.num_classes));
    EXPECT_EQ(part->targets.rows(), 1);
    EXPECT_TRUE(part->features.allFinite());
    EXPECT_GE(part->targets.minCoeff(), 0.0f);
    EXPECT_LE(part->targets.maxCoeff(), static_cast<float>(info.num_classes - 1));
  }
  EXPECT_EQ(parts.train.num_samples(), info.num_train);
  EXPECT_EQ(parts.test.num_samples(), info.num_test);
  // Every class occurs in the training part.
  std::vector<int> seen(static_cast<std::size_t>(info.num_classes), 0);
  for (Index i = 0; i < parts.train.num_samples(); ++i)
    seen[static_cast<std::size_t>(parts.train.label(i))] = 1;
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), info.num_classes);
}

INSTANTIATE_TEST_SUITE_P(Data, EachBuiltin,
                         ::testing::Values("fashion-mnist", "mnist", "digits", "breast-cancer",
                                           "heart-scale"),
                         [](const auto& param) {
                           std::string name = param.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

TEST(Builtin, PixelRanges) {
  for (const std::string name : {"mnist", "digits"}) {
    const auto info = info_of(name);
    if (!info || !info->available) continue;
    const auto parts = load_builtin<double>(name);
    EXPECT_GE(parts.train.features.minCoeff(), 0.0) << name;
    EXPECT_LE(parts.train.features.maxCoeff(), 1.0) << name;
    EXPECT_EQ(parts.train.features.maxCoeff(), 1.0) << name;
  }
}

TEST(Builtin, SeededSplitIsReproducible) {
  SKIP_UNLESS_AVAILABLE("digits");
  BuiltinOptions options;
  options.seed = 3;
  const auto a = load_builtin<double>("digits", options);
  const auto b = load_builtin<double>("digits", options);
  EXPECT_EQ(a.train.features, b.train.features);
  EXPECT_EQ(a.test.targets, b.test.targets);
  options.seed = 4;
  const auto c = load_builtin<double>("digits", options);
  EXPECT_NE(a.test.features, c.test.features);
  options.test_fraction = 0.5;
  EXPECT_EQ(load_builtin<double>("digits", options).test.num_samples(), 899);  // 898.5 rounds up
}

TEST(Builtin, BreastCancerClassNames) {
  SKIP_UNLESS_AVAILABLE("breast-cancer");
  const auto parts = load_builtin<double>("breast-cancer");
  EXPECT_EQ(parts.train.class_names, (std::vector<std::string>{"malignant", "benign"}));
}

TEST(Builtin, HeartScaleSparseByDefaultAndStandardized) {
  SKIP_UNLESS_AVAILABLE("heart-scale");
  const auto sparse = load_builtin<double>("heart-scale");
  EXPECT_TRUE(sparse.train.is_sparse());
  EXPECT_EQ(sparse.train.class_names, (std::vector<std::string>{"-1", "1"}));
  BuiltinOptions options;
  options.dense = true;
  options.standardize = true;
  const auto dense = load_builtin<double>("heart-scale", options);
  ASSERT_FALSE(dense.train.is_sparse());
  EXPECT_LT(dense.train.features.rowwise().mean().cwiseAbs().maxCoeff(), 1e-12);
}

TEST(Builtin, UnknownNameListsTheKnownOnes) {
  expect_data_error([] { load_builtin<float>("cifar-10"); },
                    {"unknown data set 'cifar-10'", "fashion-mnist", "heart-scale"});
  expect_data_error([] { load_dataset<float>("cifar-10"); },
                    {"'cifar-10' is neither a built-in data set", "mnist"});
}

// Points the data directories at an empty place for the scope of a test.
class ScopedDataDirs {
 public:
  explicit ScopedDataDirs(const std::filesystem::path& dir) {
    for (const char* name : {"HESSE_DATA_DIR", "XDG_CACHE_HOME"}) {
      const char* value = std::getenv(name);
      saved_.emplace_back(name, value ? std::optional<std::string>(value) : std::nullopt);
      ::setenv(name, dir.c_str(), 1);
    }
  }
  ~ScopedDataDirs() {
    for (const auto& [name, value] : saved_) {
      if (value)
        ::setenv(name.c_str(), value->c_str(), 1);
      else
        ::unsetenv(name.c_str());
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

TEST(Builtin, MissingSetSaysToRunSetup) {
  TempDir empty;
  ScopedDataDirs scoped(empty.path());
  EXPECT_EQ(data_directories().front(), empty.path());
  EXPECT_FALSE(info_of("mnist")->available);  // mnist lives only in the data directories
  expect_data_error([] { load_builtin<float>("mnist"); },
                    {"data set 'mnist' is not on this machine", "run scripts/setup"});
}

TEST(Builtin, DataDirectoryComesFirst) {
  TempDir dir;
  ScopedDataDirs scoped(dir.path());
  dir.write("heart_scale", "+1 1:0.5\n-1 2:1\n+1 1:1\n-1 2:0.5\n+1 1:0.25\n");
  const auto info = info_of("heart-scale");
  EXPECT_EQ(info->location, dir.path());
  const auto parts = load_builtin<double>("heart-scale");
  EXPECT_EQ(parts.train.num_samples() + parts.test.num_samples(), 5);
}

TEST(LoadDataset, FilesByExtension) {
  TempDir dir;
  const auto csv = dir.write("points.csv", "a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n9,10,0\n");
  BuiltinOptions options;
  options.test_fraction = 0.4;
  auto parts = load_dataset<double>(csv.string(), options);
  EXPECT_EQ(parts.train.num_samples(), 3);
  EXPECT_EQ(parts.test.num_samples(), 2);
  EXPECT_EQ(parts.train.name, csv.string());

  const auto svm = dir.write("points.txt", "+1 1:1\n-1 2:1\n+1 1:2\n-1 2:3\n+1 3:1\n");
  parts = load_dataset<double>(svm.string(), options);
  EXPECT_TRUE(parts.train.is_sparse());
  EXPECT_EQ(parts.train.num_features(), 3);

  // NPY and IDX find their labels next to the features.
  parts = load_dataset<double>(fixture("features_f4.npy").string(), options,
                               FileOptions{fixture("labels_i8.npy"), {}, {}});
  EXPECT_EQ(parts.train.num_samples() + parts.test.num_samples(), 5);
  parts = load_dataset<double>(fixture("tiny-images-idx3-ubyte.gz").string(), options);
  EXPECT_EQ(parts.train.num_features(), 6);

  std::filesystem::copy_file(fixture("features_f4.npy"), dir.path() / "digits_X.npy");
  std::filesystem::copy_file(fixture("labels_i8.npy"), dir.path() / "digits_y.npy");
  parts = load_dataset<double>((dir.path() / "digits_X.npy").string(), options);
  EXPECT_EQ(parts.test.num_samples(), 2);
  std::filesystem::copy_file(fixture("features_f4.npy"), dir.path() / "lonely.npy");
  expect_data_error([&] { load_dataset<double>((dir.path() / "lonely.npy").string()); },
                    {"lonely.npy", "no labels file"});
}

}  // namespace
}  // namespace hesse::data
