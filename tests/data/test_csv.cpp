#include <gtest/gtest.h>

#include "data_test_util.hpp"
#include "hesse/data/csv.hpp"

namespace hesse::data {
namespace {

using testing::expect_data_error;
using testing::fixture;
using testing::TempDir;

TEST(Csv, HeaderAndLabelByName) {
  TempDir dir;
  const auto path = dir.write("iris.csv", "x,label,y\n1,5,2\n3,-1,4\n5,5,6\n");
  CsvOptions options;
  options.label_name = "label";
  const auto data = load_csv<double>(path, options);
  ASSERT_EQ(data.num_samples(), 3);
  ASSERT_EQ(data.num_features(), 2);
  EXPECT_FALSE(data.is_sparse());
  Matrix<double> expected(2, 3);
  expected << 1, 3, 5, 2, 4, 6;
  EXPECT_EQ(data.features, expected);
  EXPECT_EQ(data.num_classes, 2);
  EXPECT_EQ(data.class_names, (std::vector<std::string>{"-1", "5"}));
  EXPECT_EQ(data.label(0), 1);
  EXPECT_EQ(data.label(1), 0);
  EXPECT_EQ(data.label(2), 1);
  EXPECT_EQ(data.name, path.string());
}

TEST(Csv, NoHeaderLabelLastByDefault) {
  TempDir dir;
  const auto path = dir.write("plain.csv", "0.5,1e-3,2\n-7,+8,0\n");
  const auto data = load_csv<float>(path);
  ASSERT_EQ(data.num_samples(), 2);
  EXPECT_FLOAT_EQ(data.features(1, 0), 1e-3f);
  EXPECT_FLOAT_EQ(data.features(1, 1), 8.0f);
  EXPECT_EQ(data.class_names, (std::vector<std::string>{"0", "2"}));
  EXPECT_EQ(data.label(0), 1);
}

TEST(Csv, LabelByPositiveAndNegativeIndex) {
  TempDir dir;
  const auto path = dir.write("first.csv", "3,1.5,2.5\n1,0.5,9\n");
  CsvOptions first;
  first.label_index = 0;
  auto data = load_csv<double>(path, first);
  EXPECT_EQ(data.class_names, (std::vector<std::string>{"1", "3"}));
  EXPECT_DOUBLE_EQ(data.features(1, 0), 2.5);

  CsvOptions second_to_last;
  second_to_last.label_index = -2;
  second_to_last.task = Task::Regression;
  data = load_csv<double>(path, second_to_last);
  EXPECT_EQ(data.num_classes, 0);
  EXPECT_TRUE(data.class_names.empty());
  EXPECT_DOUBLE_EQ(data.targets(0, 0), 1.5);
  EXPECT_DOUBLE_EQ(data.targets(0, 1), 0.5);
  EXPECT_DOUBLE_EQ(data.features(0, 1), 1.0);
  EXPECT_DOUBLE_EQ(data.features(1, 1), 9.0);
}

TEST(Csv, ForcedHeaderWithNumericNames) {
  TempDir dir;
  const auto path = dir.write("numeric-header.csv", "1,2,3\n4,5,1\n");
  CsvOptions options;
  options.header = CsvHeader::Yes;
  const auto data = load_csv<double>(path, options);
  EXPECT_EQ(data.num_samples(), 1);
}

TEST(Csv, DelimiterCrlfBlankLinesAndSpaces) {
  TempDir dir;
  const auto path = dir.write("semi.csv", "a; b ;c\r\n\r\n 1 ; 2;0\r\n3;4 ;1\r\n\r\n");
  CsvOptions options;
  options.delimiter = ';';
  const auto data = load_csv<double>(path, options);
  ASSERT_EQ(data.num_samples(), 2);
  EXPECT_DOUBLE_EQ(data.features(0, 1), 3.0);
  EXPECT_DOUBLE_EQ(data.features(1, 0), 2.0);
}

TEST(Csv, QuotedHeaderNames) {
  TempDir dir;
  const auto path = dir.write("quoted.csv", "\"x\",\"class\"\n1,0\n2,1\n");
  CsvOptions options;
  options.label_name = "class";
  EXPECT_EQ(load_csv<double>(path, options).num_classes, 2);
}

TEST(Csv, GzipCompressed) {
  CsvOptions options;
  options.label_name = "label";
  const auto data = load_csv<double>(fixture("small.csv.gz"), options);
  ASSERT_EQ(data.num_samples(), 3);
  EXPECT_DOUBLE_EQ(data.features(1, 1), 0.4);
  EXPECT_EQ(data.class_names, (std::vector<std::string>{"7", "9"}));
}

TEST(Csv, SklearnHeader) {
  TempDir dir;
  const auto path = dir.write("bc.csv", "3,2,malignant,benign\n1,2,0\n3,4,1\n5,6,1\n");
  CsvOptions options;
  options.sklearn_header = true;
  const auto data = load_csv<double>(path, options);
  EXPECT_EQ(data.num_samples(), 3);
  EXPECT_EQ(data.num_features(), 2);
  EXPECT_EQ(data.num_classes, 2);
  EXPECT_EQ(data.class_names, (std::vector<std::string>{"malignant", "benign"}));
  EXPECT_EQ(data.label(0), 0);
  EXPECT_EQ(data.label(2), 1);
}

TEST(CsvErrors, MissingFile) {
  expect_data_error([] { load_csv<double>("/nonexistent/hesse/missing.csv"); },
                    {"missing.csv", "no such file"});
}

TEST(CsvErrors, EmptyFile) {
  TempDir dir;
  const auto path = dir.write("empty.csv", "");
  expect_data_error([&] { load_csv<double>(path); }, {"empty.csv", "empty file"});
  const auto blank = dir.write("blank.csv", "\n  \n");
  expect_data_error([&] { load_csv<double>(blank); }, {"blank.csv", "empty file"});
}

TEST(CsvErrors, HeaderOnly) {
  TempDir dir;
  const auto path = dir.write("header.csv", "a,b,c\n");
  expect_data_error([&] { load_csv<double>(path); }, {"header.csv", "no data rows"});
}

TEST(CsvErrors, RaggedRow) {
  TempDir dir;
  const auto path = dir.write("ragged.csv", "a,b,c\n1,2,0\n3,4\n");
  expect_data_error([&] { load_csv<double>(path); }, {"ragged.csv:3: expected 3 columns, found 2"});
}

TEST(CsvErrors, BadNumber) {
  TempDir dir;
  const auto path = dir.write("bad.csv", "1,2,0\n3,x4,1\n");
  expect_data_error([&] { load_csv<double>(path); },
                    {"bad.csv:2:", "column 2: expected a number, found 'x4'"});
  const auto empty_field = dir.write("hole.csv", "1,2,0\n3,,1\n");
  expect_data_error([&] { load_csv<double>(empty_field); }, {"hole.csv:2:", "found ''"});
}

TEST(CsvErrors, NanAndInf) {
  TempDir dir;
  const auto nan = dir.write("nan.csv", "1,2,0\n3,nan,1\n");
  expect_data_error([&] { load_csv<double>(nan); }, {"nan.csv:2:", "expected a finite number"});
  const auto inf = dir.write("inf.csv", "1,2,0\n3,4,1\n-inf,4,1\n");
  expect_data_error([&] { load_csv<double>(inf); }, {"inf.csv:3:", "column 1"});
  const auto too_big = dir.write("big.csv", "1,1e300,0\n");
  expect_data_error([&] { load_csv<float>(too_big); }, {"big.csv:1:", "finite"});
}

TEST(CsvErrors, NonIntegerLabel) {
  TempDir dir;
  const auto path = dir.write("labels.csv", "1,2,0\n3,4,0.5\n");
  expect_data_error([&] { load_csv<double>(path); },
                    {"labels.csv:2:", "expected an integer class label, found '0.5'"});
}

TEST(CsvErrors, UnknownLabelName) {
  TempDir dir;
  const auto path = dir.write("names.csv", "a,b,c\n1,2,0\n");
  CsvOptions options;
  options.label_name = "target";
  expect_data_error([&] { load_csv<double>(path, options); },
                    {"names.csv:1:", "no column named 'target'", "'a', 'b', 'c'"});
  const auto no_header = dir.write("noheader.csv", "1,2,0\n");
  expect_data_error([&] { load_csv<double>(no_header, options); },
                    {"noheader.csv:1:", "no header line"});
}

TEST(CsvErrors, LabelIndexOutOfRange) {
  TempDir dir;
  const auto path = dir.write("range.csv", "1,2,0\n");
  CsvOptions options;
  options.label_index = -4;
  expect_data_error([&] { load_csv<double>(path, options); },
                    {"range.csv:1:", "label column index -4 is out of range for 3 columns"});
}

TEST(CsvErrors, SingleColumn) {
  TempDir dir;
  const auto path = dir.write("one.csv", "1\n2\n");
  expect_data_error([&] { load_csv<double>(path); }, {"one.csv:1:", "at least 2 columns"});
}

TEST(CsvErrors, SklearnHeaderMismatch) {
  TempDir dir;
  CsvOptions options;
  options.sklearn_header = true;
  const auto count = dir.write("count.csv", "3,2,a,b\n1,2,0\n3,4,1\n");
  expect_data_error([&] { load_csv<double>(count, options); },
                    {"count.csv:1:", "declares 3 samples, found 2"});
  const auto label = dir.write("label.csv", "2,2,a,b\n1,2,0\n3,4,2\n");
  expect_data_error([&] { load_csv<double>(label, options); },
                    {"label.csv:3:", "class label 2 is out of range 0..1"});
  const auto header = dir.write("header.csv", "x,2,a,b\n1,2,0\n");
  expect_data_error([&] { load_csv<double>(header, options); },
                    {"header.csv:1:", "n_samples,n_features"});
  const auto width = dir.write("width.csv", "1,3,a,b\n1,2,0\n");
  expect_data_error([&] { load_csv<double>(width, options); },
                    {"width.csv:2: expected 4 columns, found 3"});
}

}  // namespace
}  // namespace hesse::data
