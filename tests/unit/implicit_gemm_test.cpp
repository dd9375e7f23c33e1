#include "sim/implicit_gemm.hpp"

#include <gtest/gtest.h>

namespace lpt {
namespace {

// A 3x3 convolution, stride 1, padding 1, over 64 channels of 56 x 56.
const ConvWindow kSame3x3{64, 56, 56, 56, 56, 3, 3, 1, 1, false, 64 * 9, true};

TEST(ImplicitGemm, WholeImagesReadTheTensorOnce) {
  EXPECT_EQ(window_elements(kSame3x3, 56 * 56, 576), 64.0L * 56 * 56);
  EXPECT_EQ(window_elements(kSame3x3, 2 * 56 * 56, 576), 2 * 64.0L * 56 * 56);
  // 1.5 images touch two whole images.
  EXPECT_EQ(window_elements(kSame3x3, 3 * 56 * 28, 576), 2 * 64.0L * 56 * 56);
}

TEST(ImplicitGemm, RowsOfPixelsBringTheirHalo) {
  // Two output rows need rows r-1 .. r+2 of the input: 4 rows of 56.
  EXPECT_EQ(window_elements(kSame3x3, 112, 576), 64.0L * 4 * 56);
  // Against 9 x the block in im2col form: the halo costs 4/2, not 9.
  EXPECT_LT(window_elements(kSame3x3, 112, 576), 112.0L * 576 / 4);
}

TEST(ImplicitGemm, PartOfARowAndOneChannel) {
  // 28 pixels of one row, the 9 columns of one channel: 3 rows x (27 + 3) columns.
  EXPECT_EQ(window_elements(kSame3x3, 28, 9), 3.0L * 30);
  // Never more than the im2col block itself.
  EXPECT_EQ(window_elements(kSame3x3, 1, 2), 2.0L);
}

TEST(ImplicitGemm, StrideSpreadsTheRows) {
  // 7x7 stride 2 over 224 x 224 (ResNet's conv1): 2 output rows of 112 need
  // (2 - 1) * 2 + 7 = 9 input rows.
  const ConvWindow conv1{3, 224, 224, 112, 112, 7, 7, 2, 2, false, 147, true};
  EXPECT_EQ(window_elements(conv1, 224, 147), 3.0L * 9 * 224);
}

TEST(ImplicitGemm, TransposedConvolutionReadsTheCoarserGrid) {
  // The data gradient of a 3x3 stride-2 convolution (dY: 128 x 28 x 28, dX:
  // 56 x 56): two rows of dX need ceil(1/2) + ceil(3/2) = 3 rows of dY.
  const ConvWindow gradient{128, 28, 28, 56, 56, 3, 3, 2, 2, true, 288, true};
  EXPECT_EQ(window_elements(gradient, 112, 288), 128.0L * 3 * 28);
  EXPECT_EQ(window_elements(gradient, 56 * 56, 288), 128.0L * 28 * 28);
}

TEST(ImplicitGemm, WeightGradientReadsTheTransposedBlock) {
  ConvWindow transposed = kSame3x3;
  transposed.pixels_along_rows = false;
  EXPECT_EQ(a_block_elements(transposed, 576, 112), window_elements(kSame3x3, 112, 576));
  EXPECT_EQ(a_block_elements(kSame3x3, 112, 576), window_elements(kSame3x3, 112, 576));
}

}  // namespace
}  // namespace lpt
