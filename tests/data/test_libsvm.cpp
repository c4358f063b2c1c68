#include <gtest/gtest.h>

#include "data_test_util.hpp"
#include "hesse/data/libsvm.hpp"

namespace hesse::data {
namespace {

using testing::expect_data_error;
using testing::TempDir;

TEST(Libsvm, SparseRoundTrip) {
  TempDir dir;
  const auto path =
      dir.write("small.svm", "+1 1:0.5 3:2\n-1 2:1e1   # a comment\n\n# only a comment\n+1\n");
  const auto data = load_libsvm<double>(path);
  ASSERT_TRUE(data.is_sparse());
  ASSERT_EQ(data.num_samples(), 3);
  ASSERT_EQ(data.num_features(), 3);
  EXPECT_EQ(data.sparse_features.nonZeros(), 3);
  EXPECT_EQ(data.num_classes, 2);
  EXPECT_EQ(data.class_names, (std::vector<std::string>{"-1", "1"}));
  EXPECT_EQ(data.label(0), 1);
  EXPECT_EQ(data.label(1), 0);
  EXPECT_EQ(data.label(2), 1);

  const auto dense = data.to_dense();
  EXPECT_FALSE(dense.is_sparse());
  Matrix<double> expected(3, 3);
  expected << 0.5, 0, 0,  //
      0, 10, 0,           //
      2, 0, 0;
  EXPECT_EQ(dense.features, expected);
  EXPECT_EQ(dense.targets, data.targets);
}

TEST(Libsvm, MulticlassAndNumFeatures) {
  TempDir dir;
  const auto path = dir.write("multi.svm", "3 1:1\n1 2:1\n2 1:-1\t2:+2\n");
  LibsvmOptions options;
  options.num_features = 5;
  const auto data = load_libsvm<float>(path, options);
  EXPECT_EQ(data.num_features(), 5);
  EXPECT_EQ(data.num_classes, 3);
  EXPECT_EQ(data.label(0), 2);
  EXPECT_EQ(data.label(1), 0);
  EXPECT_EQ(data.label(2), 1);
  EXPECT_FLOAT_EQ(data.sparse_features.coeff(1, 2), 2.0f);
}

TEST(Libsvm, Regression) {
  TempDir dir;
  const auto path = dir.write("reg.svm", "0.25 1:1\n-1.5 2:1\n");
  LibsvmOptions options;
  options.task = Task::Regression;
  const auto data = load_libsvm<double>(path, options);
  EXPECT_EQ(data.num_classes, 0);
  EXPECT_DOUBLE_EQ(data.targets(0, 0), 0.25);
  EXPECT_DOUBLE_EQ(data.targets(0, 1), -1.5);
}

TEST(LibsvmErrors, MissingAndEmpty) {
  expect_data_error([] { load_libsvm<double>("/nonexistent/heart_scale"); },
                    {"heart_scale", "no such file"});
  TempDir dir;
  const auto comments = dir.write("comments.svm", "# nothing\n\n");
  expect_data_error([&] { load_libsvm<double>(comments); }, {"comments.svm", "empty file"});
}

TEST(LibsvmErrors, Indices) {
  TempDir dir;
  const auto zero = dir.write("zero.svm", "1 1:1\n1 0:1\n");
  expect_data_error([&] { load_libsvm<double>(zero); }, {"zero.svm:2:", "1-based"});
  const auto decreasing = dir.write("decreasing.svm", "1 3:1 2:1\n");
  expect_data_error([&] { load_libsvm<double>(decreasing); },
                    {"decreasing.svm:1:", "feature index 2 after 3", "strictly increasing"});
  const auto repeated = dir.write("repeated.svm", "1 1:1\n-1 2:1 2:3\n");
  expect_data_error([&] { load_libsvm<double>(repeated); }, {"repeated.svm:2:", "index 2 after 2"});
  const auto text = dir.write("text.svm", "1 a:1\n");
  expect_data_error([&] { load_libsvm<double>(text); },
                    {"text.svm:1:", "expected an integer feature index, found 'a:1'"});
  const auto huge = dir.write("huge.svm", "1 99999999999:1\n");
  expect_data_error([&] { load_libsvm<double>(huge); }, {"huge.svm:1:", "out of range"});
  LibsvmOptions options;
  options.num_features = 2;
  const auto wide = dir.write("wide.svm", "1 1:1\n1 3:1\n");
  expect_data_error([&] { load_libsvm<double>(wide, options); },
                    {"wide.svm:2:", "feature index 3 exceeds num_features = 2"});
}

TEST(LibsvmErrors, Values) {
  TempDir dir;
  const auto colon = dir.write("colon.svm", "1 1:1 2\n");
  expect_data_error([&] { load_libsvm<double>(colon); },
                    {"colon.svm:1:", "expected index:value, found '2'"});
  const auto bad = dir.write("bad.svm", "1 1:1\n1 1:0x3\n");
  expect_data_error([&] { load_libsvm<double>(bad); },
                    {"bad.svm:2:", "feature 1: expected a number, found '0x3'"});
  const auto nan = dir.write("nan.svm", "1 1:nan\n");
  expect_data_error([&] { load_libsvm<double>(nan); }, {"nan.svm:1:", "finite"});
  const auto qid = dir.write("qid.svm", "1 qid:3 1:1\n");
  expect_data_error([&] { load_libsvm<double>(qid); }, {"qid.svm:1:", "qid"});
}

TEST(LibsvmErrors, Labels) {
  TempDir dir;
  const auto fraction = dir.write("fraction.svm", "1 1:1\n0.5 1:1\n");
  expect_data_error([&] { load_libsvm<double>(fraction); },
                    {"fraction.svm:2:", "expected an integer class label, found '0.5'"});
  const auto word = dir.write("word.svm", "yes 1:1\n");
  expect_data_error([&] { load_libsvm<double>(word); }, {"word.svm:1:", "expected a label"});
  const auto inf = dir.write("inf.svm", "inf 1:1\n");
  expect_data_error([&] { load_libsvm<double>(inf); }, {"inf.svm:1:", "expected a label"});
}

TEST(LibsvmErrors, NegativeNumFeaturesIsAnOptionError) {
  LibsvmOptions options;
  options.num_features = -1;
  EXPECT_THROW(load_libsvm<double>("whatever", options), InvalidArgument);
}

}  // namespace
}  // namespace hesse::data
