#include "sim/trace_info.hpp"

#include <gtest/gtest.h>

#include "tests/support/source_dir.hpp"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace lpt {
namespace {

using lpt::test_support::source_dir;

TraceInfo info_of(const std::string& trace_file) {
  return compute_trace_info(load_trace((source_dir() / "traces/").string() + trace_file));
}

// Published figures are rounded to a few significant digits; a value matches
// when it lies in the rounding interval of the published number, i.e. within
// half a unit of its last printed digit.
void expect_rounds_to(double value, double published, double last_digit_unit) {
  EXPECT_LE(std::abs(value - published), last_digit_unit / 2)
      << value << " does not round to " << published;
}

TEST(TraceInfo, ResNet50MatchesPublishedFigures) {
  const TraceInfo info = info_of("resnet50.json");
  ASSERT_EQ(info.batch, 32);
  const double fwd_per_image = static_cast<double>(info.total.fwd_macs) / 32.0;
  // "4.1 G" multiply-accumulates per 224x224 image for torchvision's ResNet-50
  // (v1.5, stride on the 3x3 conv; torchvision model docs list 4.09 GFLOPS = MACs).
  expect_rounds_to(fwd_per_image, 4.09e9, 0.01e9);
  // The exact sum over the 53 convolutions and the classifier of
  // Cout·Cin·kh·kw·Ho·Wo, computed independently from the torchvision shapes.
  EXPECT_EQ(info.total.fwd_macs, std::int64_t{4'089'184'256} * 32);
  // 25.6 M parameters (He et al., CVPR 2016; torchvision: 25,557,032 including
  // the batch-norm scales and shifts).
  expect_rounds_to(static_cast<double>(info.total.parameters), 25.6e6, 0.1e6);
  EXPECT_EQ(info.total.parameters, 25'557'032);
}

TEST(TraceInfo, TrainingPhasesOfACnn) {
  const TraceInfo info = info_of("resnet50.json");
  // Every GEMM's weight gradient has the forward's MACs; the backward-data pass
  // skips only the first layer (nothing consumes the gradient of the image).
  EXPECT_EQ(info.total.wgrad_macs, info.total.fwd_macs);
  const LayerInfo& conv1 = info.layers.front();
  EXPECT_EQ(conv1.name, "conv1");
  EXPECT_EQ(conv1.fwd_macs, std::int64_t{64} * 3 * 7 * 7 * 112 * 112 * 32);
  EXPECT_EQ(conv1.bwd_macs, 0);
  EXPECT_EQ(info.total.bwd_macs, info.total.fwd_macs - conv1.fwd_macs);
  EXPECT_EQ(conv1.activation_elements, std::int64_t{64} * 112 * 112 * 32);
}

TEST(TraceInfo, TorchvisionCnnsMatchTheirPublishedParameterCounts) {
  // Parameter counts and GFLOPS (multiply-accumulates) from the torchvision
  // 0.14 model documentation; the GFLOPS are printed with 2 decimals.
  struct Published {
    const char* file;
    std::int64_t parameters;
    double gmacs;
  };
  for (const Published& p : {Published{"resnet18.json", 11'689'512, 1.81},
                             Published{"mobilenet_v2.json", 3'504'872, 0.30},
                             Published{"vgg16.json", 138'357'544, 15.47},
                             Published{"alexnet.json", 61'100'840, 0.71}}) {
    SCOPED_TRACE(p.file);
    const TraceInfo info = info_of(p.file);
    EXPECT_EQ(info.total.parameters, p.parameters);
    expect_rounds_to(static_cast<double>(info.total.fwd_macs) / static_cast<double>(info.batch),
                     p.gmacs * 1e9, 0.01e9);
  }
}

TEST(TraceInfo, BertBaseMatchesPublishedParameterCount) {
  const TraceInfo info = info_of("bert_base.json");
  // Devlin et al. (NAACL 2019) give "110M" parameters for BERT-base: two
  // significant digits, so anything in [105 M, 115 M) is that figure. The exact
  // count of the encoder, embeddings and pooler (no task head) is 109,482,240.
  expect_rounds_to(static_cast<double>(info.total.parameters), 110e6, 10e6);
  EXPECT_EQ(info.total.parameters, 109'482'240);
  // Per token and layer, 12·H² MACs in the projections and FFN plus 2·S·H in
  // attention; with S = 128, H = 768, the pooler adds H² per sequence.
  const std::int64_t per_sequence =
      12 * (128 * 12 * std::int64_t{768} * 768 + 2 * 128 * 128 * 768) + 768 * 768;
  EXPECT_EQ(info.total.fwd_macs, per_sequence * info.batch);
}

TEST(TraceInfo, ShippedTracesAllExpand) {
  for (const char* file : {"resnet18.json", "resnet50.json", "mobilenet_v2.json", "vgg16.json",
                           "alexnet.json", "bert_base.json", "transformer_base.json",
                           "lstm_speech.json", "tiny-cnn.json"}) {
    SCOPED_TRACE(file);
    const TraceInfo info = info_of(file);
    EXPECT_GT(info.total.fwd_macs, 0);
    EXPECT_GT(info.total.parameters, 0);
    EXPECT_EQ(info.layers.size(), load_trace((source_dir() / "traces/").string() + file).layers.size());
  }
}

TEST(TraceInfo, LstmTotalsFollowTheGateCount) {
  const TraceInfo info = info_of("lstm_speech.json");
  // 4 bidirectional layers, 4 gates of 320 cells, 300 frames: input 40 then 640.
  const std::int64_t gates = 4 * 320;
  const std::int64_t per_frame =
      2 * (gates * (40 + 320) + 3 * gates * (640 + 320)) + 640 * 29;
  EXPECT_EQ(info.total.fwd_macs, per_frame * 300 * info.batch);
}

TEST(TraceInfoCli, PrintsATableWithTotals) {
  std::ostringstream out, err;
  const int code = run_trace_info({(source_dir() / "traces/tiny-cnn.json").string()}, out, err);
  EXPECT_EQ(code, 0) << err.str();
  const TraceInfo info = info_of("tiny-cnn.json");
  const std::string text = out.str();
  EXPECT_NE(text.find("network tiny-cnn, batch 8"), std::string::npos) << text;
  EXPECT_NE(text.find("conv1"), std::string::npos);
  EXPECT_NE(text.find(std::to_string(info.total.fwd_macs)), std::string::npos) << text;
  EXPECT_NE(text.find("parameters: " + std::to_string(info.total.parameters)), std::string::npos);
}

TEST(TraceInfoCli, JsonWithBatchOverrideAndElementBytes) {
  std::ostringstream out, err;
  const int code = run_trace_info(
      {"--json", (source_dir() / "traces/tiny-cnn.json").string(), "--batch", "2", "--element-bytes", "1"},
      out, err);
  ASSERT_EQ(code, 0) << err.str();
  const auto doc = nlohmann::json::parse(out.str());
  EXPECT_EQ(doc.at("batch"), 2);
  const TraceInfo at_eight = info_of("tiny-cnn.json");
  EXPECT_EQ(doc.at("total").at("fwd_macs").get<std::int64_t>() * 4, at_eight.total.fwd_macs);
  EXPECT_EQ(doc.at("total").at("activation_bytes"), doc.at("total").at("activation_elements"));
  EXPECT_EQ(doc.at("layers").size(), at_eight.layers.size());
}

TEST(TraceInfoCli, ReadsScaleSimTopologies) {
  const auto path = std::filesystem::temp_directory_path() / "lptsim_trace_info_test.csv";
  {
    std::ofstream csv(path);
    csv << "Layer,M,N,K,\nfc,10,20,30,\n";
  }
  std::ostringstream out, err;
  ASSERT_EQ(run_trace_info({path.string(), "--json"}, out, err), 0) << err.str();
  std::filesystem::remove(path);
  EXPECT_EQ(nlohmann::json::parse(out.str()).at("total").at("fwd_macs"), 10 * 20 * 30);
}

TEST(TraceInfoCli, UsageAndInputErrors) {
  std::ostringstream out, err;
  EXPECT_EQ(run_trace_info({"--help"}, out, err), 0);
  EXPECT_NE(out.str().find("usage: lptsim trace-info"), std::string::npos);
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{},
                                             {"a.json", "b.json"},
                                             {"--bogus", "a.json"},
                                             {"a.json", "--batch"},
                                             {"a.json", "--batch", "0"},
                                             {"a.json", "--element-bytes", "two"}}) {
    std::ostringstream o, e;
    EXPECT_EQ(run_trace_info(args, o, e), 2);
    EXPECT_FALSE(e.str().empty());
  }
  std::ostringstream o, e;
  EXPECT_EQ(run_trace_info({"/nonexistent/trace.json"}, o, e), 2);
  EXPECT_NE(e.str().find("/nonexistent/trace.json"), std::string::npos) << e.str();
}

}  // namespace
}  // namespace lpt
