// The swamping experiment (sim/numerics_swamping.*) at a small size: the papers' shape.
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <stdexcept>
#include <string>

#include "sim/numerics_swamping.hpp"

namespace lpt {
namespace {

const SwampingCurve& curve(const SwampingResult& result, const std::string& name) {
  for (const SwampingCurve& c : result.curves)
    if (c.name == name) return c;
  throw std::logic_error("no curve " + name);
}

TEST(NumericsSwamping, PlainFp16StallsWhileChunksAndSrKeepTracking) {
  SwampingOptions options;
  options.max_log2_n = 14;
  options.trials = 2;
  const SwampingResult result = run_swamping(options);
  ASSERT_EQ(result.lengths.size(), 9u);  // 2^6 .. 2^14
  const std::size_t last = result.lengths.size() - 1;
  // Products average 1/256 (at most 1/64): plain FP16 stops moving once half its gap
  // exceeds them, at a sum of a few times 2^5, while the exact sum at n = 2^14 is 64.
  EXPECT_GT(curve(result, "fp16").mean_relative_error[last], 0.3);
  EXPECT_LT(curve(result, "fp16").mean_relative_error[0], 0.01);
  for (const char* chunked : {"fp16_chunk16", "fp16_chunk64", "fp16_chunk256"})
    EXPECT_LT(curve(result, chunked).mean_relative_error[last], 0.01) << chunked;
  EXPECT_LT(curve(result, "fp16_sr").mean_relative_error[last], 0.05);
  EXPECT_LT(curve(result, "fp32").mean_relative_error[last], 1e-5);
  // Plain FP16's error grows with n.
  EXPECT_GT(curve(result, "fp16").mean_relative_error[last], 10 * curve(result, "fp16").mean_relative_error[2]);

  std::ostringstream csv;
  write_swamping_csv(result, options.trials, csv);
  const std::string text = csv.str();
  EXPECT_EQ(text.rfind("config,n,mean_relative_error,max_relative_error,trials\n", 0), 0u);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1 + 6 * 9);
}

TEST(NumericsSwamping, RejectsOptionsOutOfRange) {
  SwampingOptions options;
  options.max_log2_n = 5;
  EXPECT_THROW(run_swamping(options), std::invalid_argument);
  options = {};
  options.trials = 0;
  EXPECT_THROW(run_swamping(options), std::invalid_argument);
  options = {};
  options.operand = "fp7";
  EXPECT_THROW(run_swamping(options), std::invalid_argument);
  options = {};
  options.range = -1;
  EXPECT_THROW(run_swamping(options), std::invalid_argument);
}

}  // namespace
}  // namespace lpt
