#include "sim/scalesim_import.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace lpt {
namespace {

constexpr const char* kConvHeader =
    "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
    "Strides,\n";

Trace import(const std::string& text) {
  std::istringstream in(text);
  return import_scalesim_csv(in, "net.csv", "net");
}

// Expects the import to fail on `line` with a message containing `fragment`.
void expect_error(const std::string& text, int line, const std::string& fragment) {
  try {
    import(text);
    FAIL() << "accepted:\n" << text;
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), "net.csv");
    EXPECT_EQ(e.json_path(), "line " + std::to_string(line)) << e.what();
    EXPECT_NE(e.message().find(fragment), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("line " + std::to_string(line)), std::string::npos);
  }
}

TEST(ScaleSimImport, ConvRowsWithTrailingCommasBlanksAndComments) {
  // Spacing, the blank line, the tab and the "#dw" comment are as in SCALE-Sim's
  // own topologies/conv_nets files.
  const Trace t = import(std::string(kConvHeader) +
                         "\n"
                         "Conv1     ,224  ,224 ,11 ,11 ,3  ,96 ,4 ,\n"
                         "\tConv2,27,27,5,5,96,256,1\n"
                         "Conv3, 13, 13, 3, 3, 1, 1, 2,#dw\n");
  EXPECT_EQ(t.network, "net");
  EXPECT_EQ(t.batch, 1);
  ASSERT_EQ(t.layers.size(), 3u);
  EXPECT_EQ(t.layers[0].name, "Conv1");
  EXPECT_EQ(t.layers[0].type, "conv2d");
  const auto& c1 = std::get<ConvLayer>(t.layers[0].shape);
  EXPECT_EQ(c1.in_channels, 3);
  EXPECT_EQ(c1.in_h, 224);
  EXPECT_EQ(c1.in_w, 224);
  EXPECT_EQ(c1.kernel_h, 11);
  EXPECT_EQ(c1.out_channels, 96);
  EXPECT_EQ(c1.stride_h, 4);
  EXPECT_EQ(c1.stride_w, 4);
  // SCALE-Sim's ofmap size is ceil((224 - 11 + 4) / 4) = 55 where unpadded
  // PyTorch gives 54: the import pads by 2 to keep SCALE-Sim's size and MACs.
  EXPECT_EQ(c1.pad_h, 2);
  EXPECT_EQ(c1.out_h(), 55);
  EXPECT_EQ(c1.out_w(), 55);
  // (27 - 5) is a multiple of the stride: no padding needed.
  EXPECT_EQ(std::get<ConvLayer>(t.layers[1].shape).pad_h, 0);
  EXPECT_EQ(std::get<ConvLayer>(t.layers[1].shape).out_h(), 23);
  EXPECT_EQ(t.layers[1].name, "Conv2");
  EXPECT_EQ(std::get<ConvLayer>(t.layers[1].shape).out_channels, 256);
  EXPECT_EQ(std::get<ConvLayer>(t.layers[2].shape).stride_h, 2);
}

TEST(ScaleSimImport, SeparateStrideWidthColumn) {
  const Trace t = import(
      "Layer name,IFMAP height,IFMAP width,Filter height,Filter width,Channels,Num filter,"
      "Stride height,Stride width,\n"
      "c,32,64,3,3,8,16,1,2,\n");
  const auto& c = std::get<ConvLayer>(t.layers[0].shape);
  EXPECT_EQ(c.stride_h, 1);
  EXPECT_EQ(c.stride_w, 2);
  EXPECT_EQ(c.out_h(), 30);
  EXPECT_EQ(c.out_w(), 32);  // ceil((64 - 3 + 2) / 2)
}

TEST(ScaleSimImport, DpRowsAreDepthwise) {
  // SCALE-Sim expands "DP" layers into one convolution per input channel, each
  // with Num Filter filters.
  const Trace t = import(std::string(kConvHeader) + "Conv_DP1,112,112,3,3,32,2,1,\n");
  EXPECT_EQ(t.layers[0].type, "depthwise_conv2d");
  const auto& c = std::get<ConvLayer>(t.layers[0].shape);
  EXPECT_TRUE(c.depthwise);
  EXPECT_EQ(c.groups, 32);
  EXPECT_EQ(c.out_channels, 64);
  EXPECT_EQ(t.layers[0].parameters(), 64 * 9);
}

TEST(ScaleSimImport, GemmForm) {
  const Trace t = import("Layer,M,N,K,\nfc1,128,4096,1024,\n2, 32, 10, 64\n");
  ASSERT_EQ(t.layers.size(), 2u);
  EXPECT_EQ(t.layers[0].type, "linear");
  const auto& l = std::get<LinearLayer>(t.layers[0].shape);
  EXPECT_EQ(l.tokens, 128);
  EXPECT_EQ(l.out_features, 4096);
  EXPECT_EQ(l.in_features, 1024);
  EXPECT_FALSE(l.bias);
  EXPECT_EQ(t.layers[1].name, "2");
  EXPECT_EQ(t.layers[0].parameters(), 4096 * 1024);
}

TEST(ScaleSimImport, ImportedTraceRoundTripsThroughTheTraceParser) {
  const Trace t = import(std::string(kConvHeader) + "a,16,16,3,3,4,8,1,\nb_DP,14,14,3,3,8,1,1,\n");
  const nlohmann::json written = t;
  const Trace again = parse_trace(JsonReader(written, ""));
  ASSERT_EQ(again.layers.size(), 2u);
  EXPECT_EQ(again.layers[1].type, "depthwise_conv2d");
  EXPECT_EQ(again.layers[1].parameters(), t.layers[1].parameters());
}

TEST(ScaleSimImport, MalformedHeader) {
  expect_error("", 1, "no header");
  expect_error("\n\nname,height,width\nc,1,1\n", 3, "expected a SCALE-Sim header");
  expect_error("Layer,M,N\nx,1,2\n", 1, "expected a SCALE-Sim header");
}

TEST(ScaleSimImport, HeaderWithoutRows) {
  expect_error(std::string(kConvHeader) + "\n# nothing\n", 1, "no layer rows");
}

TEST(ScaleSimImport, WrongFieldCount) {
  expect_error(std::string(kConvHeader) + "a,8,8,3,3,1,1,1,\nb,8,8,3,3,1,1\n", 3,
               "expected 8 or 9 fields");
  expect_error(std::string(kConvHeader) + "a,8,8,3,3,1,1,1,1,1\n", 2, "got 10");
  expect_error("Layer, M, N, K\ng,1,2,3,4\n", 2, "expected 4 fields");
}

TEST(ScaleSimImport, NonIntegerField) {
  expect_error(std::string(kConvHeader) + "a,8,8,3,3,1,1,1,\nb,8,eight,3,3,1,1,1,\n", 3,
               "IFMAP width (column 3) must be an integer, got \"eight\"");
  expect_error(std::string(kConvHeader) + "a,8,8,3.5,3,1,1,1,\n", 2, "filter height");
  expect_error("Layer,M,N,K\ng,1,,3\n", 2, "N (column 3) must be an integer");
}

TEST(ScaleSimImport, NonPositiveField) {
  expect_error(std::string(kConvHeader) + "a,8,8,3,3,1,1,0,\n", 2, "stride (column 8) must be");
  expect_error("Layer,M,N,K\ng,-4,2,3\n", 2, "M (column 2) must be between 1");
}

TEST(ScaleSimImport, FilterLargerThanIfmap) {
  expect_error(std::string(kConvHeader) + "a,8,8,3,3,1,1,1,\n\nb,4,8,5,3,1,1,1,\n", 4,
               "filter 5x3 is larger than the IFMAP 4x8");
}

TEST(ScaleSimImport, EmptyAndDuplicateNames) {
  expect_error(std::string(kConvHeader) + " ,8,8,3,3,1,1,1,\n", 2, "empty layer name");
  expect_error("Layer,M,N,K\ng,1,2,3\ng,1,2,3\n", 3, "duplicate layer name \"g\"");
}

TEST(ScaleSimImport, FromFileUsesTheStemAsNetworkName) {
  const auto path = std::filesystem::temp_directory_path() / "lptsim_scalesim_import_test.csv";
  {
    std::ofstream out(path);
    out << "Layer,M,N,K\r\nfc,8,4,2\r\n";  // Windows line ends too
  }
  const Trace t = import_scalesim_csv(path);
  EXPECT_EQ(t.network, "lptsim_scalesim_import_test");
  EXPECT_EQ(t.layers.at(0).name, "fc");
  std::filesystem::remove(path);
  EXPECT_THROW(import_scalesim_csv(path), InputError);
}

TEST(ImportScaleSimCommand, WritesATraceTheParserAccepts) {
  const auto dir = std::filesystem::temp_directory_path();
  const auto csv = dir / "lptsim_import_command_test.csv";
  const auto json = dir / "lptsim_import_command_test.json";
  {
    std::ofstream out(csv);
    out << kConvHeader << "c1,34,34,3,3,3,16,1,\nc2_DP,32,32,3,3,16,1,2,\n";
  }
  std::ostringstream out, err;
  ASSERT_EQ(run_import_scalesim({csv.string(), "--out", json.string(), "--batch", "4"}, out, err), 0)
      << err.str();
  EXPECT_NE(out.str().find("2 layers"), std::string::npos);
  const Trace t = load_trace(json);
  EXPECT_EQ(t.network, "lptsim_import_command_test");
  EXPECT_EQ(t.batch, 4);
  ASSERT_EQ(t.layers.size(), 2u);
  EXPECT_EQ(std::get<ConvLayer>(t.layers[0].shape).out_h(), 32);
  EXPECT_EQ(t.layers[1].type, "depthwise_conv2d");
  std::filesystem::remove(csv);
  std::filesystem::remove(json);
}

TEST(ImportScaleSimCommand, PrintsOneLayerPerLineWithoutOut) {
  const auto csv = std::filesystem::temp_directory_path() / "lptsim_import_print_test.csv";
  {
    std::ofstream out(csv);
    out << "Layer,M,N,K\na,2,3,4\nb,5,6,7\n";
  }
  std::ostringstream out, err;
  ASSERT_EQ(run_import_scalesim({csv.string()}, out, err), 0) << err.str();
  std::filesystem::remove(csv);
  const std::string text = out.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 9) << text;  // 5 header lines, 2 layers, 2 closing
  const auto doc = nlohmann::json::parse(text);
  EXPECT_EQ(doc.at("layers").size(), 2u);
  EXPECT_EQ(doc.at("batch"), 1);
}

TEST(ImportScaleSimCommand, UsageAndInputErrors) {
  std::ostringstream help, help_err;
  EXPECT_EQ(run_import_scalesim({"--help"}, help, help_err), 0);
  EXPECT_NE(help.str().find("usage: lptsim import-scalesim"), std::string::npos);
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {}, {"a.csv", "b.csv"}, {"a.csv", "--out"}, {"a.csv", "--batch", "0"}, {"--x"}}) {
    std::ostringstream o, e;
    EXPECT_EQ(run_import_scalesim(args, o, e), 2);
    EXPECT_FALSE(e.str().empty());
  }
  std::ostringstream o, e;
  EXPECT_EQ(run_import_scalesim({"/nonexistent/net.csv"}, o, e), 2);
  EXPECT_NE(e.str().find("/nonexistent/net.csv"), std::string::npos) << e.str();
}

}  // namespace
}  // namespace lpt
