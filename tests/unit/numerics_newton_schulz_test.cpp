#include "models/numerics/newton_schulz.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>

namespace lpt::num {
namespace {

Datapath datapath(const char* operands, const char* accumulator) {
  DatapathConfig c;
  c.operand_a = c.operand_b = *find_format(operands);
  c.accumulator = *find_format(accumulator);
  c.output = c.operand_a;
  return Datapath(c);
}

// A 32-row factor, damped enough that 30 iterations converge in FP64.
NewtonSchulzParams small_factor() {
  NewtonSchulzParams p;
  p.dimension = 32;
  p.iterations = 30;
  p.damping = 1e-2;
  return p;
}

TEST(NewtonSchulz, ConvergesQuadraticallyOnceTheSmallestEigenvaluesAreReached) {
  NewtonSchulzParams p = small_factor();
  const NewtonSchulzResult fp32 = measure_newton_schulz(datapath("fp32", "fp32"), p);
  ASSERT_EQ(fp32.residual.size(), 30u);
  // FP64 alone: the residual never grows until it reaches rounding level, where it ends.
  for (std::size_t k = 1; k < fp32.fp64_residual.size(); ++k)
    EXPECT_LE(fp32.fp64_residual[k], std::max(fp32.fp64_residual[k - 1], 1e-14));
  EXPECT_LT(fp32.fp64_residual.back(), 1e-12);
  // FP32 tracks it down to its own precision.
  EXPECT_LT(fp32.residual.back(), 1e-4);
  EXPECT_GT(fp32.inverse.sqnr_db, 80);
  EXPECT_GT(fp32.condition, 10);
  // Too few iterations leave the small eigenvalues unconverged, in any format.
  p.iterations = 3;
  const NewtonSchulzResult few = measure_newton_schulz(datapath("fp32", "fp32"), p);
  EXPECT_GT(few.fp64_residual.back(), 0.1);
  EXPECT_LT(few.inverse.sqnr_db, 20);
}

TEST(NewtonSchulz, NarrowFormatsStopShortOfFp64) {
  NewtonSchulzParams p = small_factor();
  const NewtonSchulzResult fp32 = measure_newton_schulz(datapath("fp32", "fp32"), p);
  const NewtonSchulzResult dl16 = measure_newton_schulz(datapath("dlfloat16", "fp32"), p);
  EXPECT_GT(dl16.residual.back(), 10 * fp32.residual.back());
  EXPECT_LT(dl16.inverse.sqnr_db, fp32.inverse.sqnr_db);
  EXPECT_GT(dl16.inverse.sqnr_db, 30);  // 9 fraction bits: about 60 dB at best
  // Same factor, same FP64 iterations whatever the datapath.
  EXPECT_EQ(dl16.fp64_residual, fp32.fp64_residual);
  EXPECT_EQ(dl16.condition, fp32.condition);
}

TEST(NewtonSchulz, RejectsDegenerateParameters) {
  NewtonSchulzParams p;
  p.dimension = 1;
  EXPECT_THROW(measure_newton_schulz(datapath("fp32", "fp32"), p), std::invalid_argument);
  p.dimension = 8;
  p.iterations = 0;
  EXPECT_THROW(measure_newton_schulz(datapath("fp32", "fp32"), p), std::invalid_argument);
}

}  // namespace
}  // namespace lpt::num
