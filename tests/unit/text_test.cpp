// UTF-8 checks, message excerpts and CSV cells (models/common/text).
#include "models/common/text.hpp"

#include <gtest/gtest.h>

namespace lpt {
namespace {

TEST(Text, Utf8Validation) {
  EXPECT_TRUE(is_valid_utf8("plain"));
  EXPECT_TRUE(is_valid_utf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));  // é € 😀
  EXPECT_FALSE(is_valid_utf8("\xff"));
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xe2\x82"));          // truncated
}

TEST(Text, ExcerptsAreShortEscapedAndCutAtCharacterBoundaries) {
  EXPECT_EQ(quoted_excerpt("a\"b\n"), "\"a\\\"b\\x0a\"");
  EXPECT_EQ(quoted_excerpt("\xff"), "\"\\xff\"");
  EXPECT_EQ(quoted_excerpt(std::string(100, 'x'), 10), "\"xxxxxxxxxx\"... (100 bytes)");
  // A 2-byte character straddling the cut is kept whole.
  EXPECT_EQ(quoted_excerpt("abc\xc3\xa9z", 4), "\"abc\xc3\xa9\"... (6 bytes)");
}

TEST(Text, CsvCellsFollowRfc4180AndDefuseFormulas) {
  EXPECT_EQ(csv_text_cell("conv1"), "conv1");
  EXPECT_EQ(csv_text_cell("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_text_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_text_cell("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(csv_text_cell("=SUM(A1)"), "'=SUM(A1)");
  EXPECT_EQ(csv_text_cell("=1,2"), "\"'=1,2\"");
  for (const char* lead : {"+", "-", "@", "\t"}) EXPECT_EQ(csv_text_cell(std::string(lead) + "x")[0], '\'');
}

}  // namespace
}  // namespace lpt
