// The strict JSON reader: parse errors, limits and messages (models/common/json_reader).
#include "models/common/json_reader.hpp"

#include <gtest/gtest.h>

#include <string>

namespace lpt {
namespace {

// The InputError that parsing `text` raises (fails the test if none).
InputError parse_error_of(const std::string& text) {
  try {
    parse_json_text(text, "in.json");
  } catch (const InputError& e) {
    return e;
  }
  ADD_FAILURE() << "accepted: " << text.substr(0, 80);
  return InputError("", "", "");
}

TEST(JsonReader, ParsesNestedDocumentsLikeNlohmann) {
  const std::string text = R"({"a": [1, 2.5, "x", true, null, {"b": []}], "c": {"d": -3}})";
  EXPECT_EQ(parse_json_text(text, "in.json"), nlohmann::json::parse(text));
  EXPECT_EQ(parse_json_text("7", "in.json"), nlohmann::json(7));
}

TEST(JsonReader, DuplicateKeysAreRejectedWithBothPlaces) {
  const InputError e = parse_error_of("{\"batch\":8,\"batch\":3}");
  EXPECT_EQ(e.file(), "in.json");
  EXPECT_EQ(e.json_path(), "/batch");
  EXPECT_NE(e.message().find("duplicate key \"batch\""), std::string::npos) << e.what();
  EXPECT_NE(e.message().find("first at line 1, column 2"), std::string::npos) << e.what();
  EXPECT_NE(e.message().find("again at line 1, column 12"), std::string::npos) << e.what();
  // The same key in different objects is fine; nested duplicates carry their path.
  EXPECT_NO_THROW(parse_json_text(R"({"a": {"x": 1}, "b": {"x": 2}})", "f"));
  EXPECT_EQ(parse_error_of(R"({"l": [{"x": 1}, {"y": 1, "y": 2}]})").json_path(), "/l/1/y");
}

TEST(JsonReader, DeepNestingIsRejectedAtTheLimitWithoutRecursion) {
  const int depth = 100'000;
  const InputError e = parse_error_of(std::string(depth, '[') + std::string(depth, ']'));
  EXPECT_NE(e.message().find("nesting deeper than 64 levels"), std::string::npos) << e.what();
  std::string at_limit = std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']');
  EXPECT_NO_THROW(parse_json_text(at_limit, "f"));
  EXPECT_THROW(parse_json_text("[" + at_limit + "]", "f"), InputError);
}

TEST(JsonReader, NumbersOutOfRangeAreInputErrors) {
  const InputError e = parse_error_of(R"({"batch": 1e400})");
  EXPECT_NE(e.message().find("number overflow"), std::string::npos) << e.what();
  EXPECT_NE(e.message().find("line 1"), std::string::npos) << e.what();
  // Beyond 64 bits an integer parses as a float; the reader's integer() rejects it.
  const auto doc = parse_json_text(R"({"batch": 99999999999999999999})", "f");
  try {
    JsonReader(doc, "").at("batch").integer(1, 100);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.json_path(), "/batch");
  }
}

TEST(JsonReader, SyntaxMessagesAreWholeWithPositionAndShortEcho) {
  const InputError e = parse_error_of("{\n  \"a\": tru\n}");
  EXPECT_EQ(e.json_path(), "");
  EXPECT_NE(e.message().find("line 2"), std::string::npos) << e.what();
  EXPECT_NE(e.message().find("syntax error while parsing value - invalid literal"), std::string::npos)
      << e.what();
  // A long unterminated string is echoed shortened.
  const InputError long_echo = parse_error_of("\"" + std::string(10'000, 'x'));
  EXPECT_LT(long_echo.message().size(), 300u) << long_echo.what();
  EXPECT_NE(parse_error_of("").message().find("unexpected end of input"), std::string::npos);
}

TEST(JsonReader, InvalidUtf8InStringsIsASyntaxError) {
  const InputError e = parse_error_of("{\"name\": \"\xff\"}");
  EXPECT_NE(e.message().find("UTF-8"), std::string::npos) << e.what();
}

TEST(JsonReader, EchoedValuesAreBounded) {
  nlohmann::json deep = nlohmann::json::array();
  for (int i = 0; i < 1000; ++i) deep = nlohmann::json::array({deep});
  const nlohmann::json doc = {{"rows", deep}, {"name", std::string(5000, 'n')}};
  const JsonReader in(doc, "");
  for (const char* key : {"rows", "name"}) {
    try {
      in.at(key).integer(1, 2);
      FAIL();
    } catch (const InputError& e) {
      EXPECT_LT(e.message().size(), 200u) << e.what();
    }
  }
}

TEST(JsonReader, FileLevelErrorsShowNoPath) {
  EXPECT_EQ(std::string(InputError("f.json", "", "is a directory").what()), "f.json: is a directory");
  EXPECT_EQ(std::string(InputError("f.json", "/a", "bad").what()), "f.json: /a: bad");
}

TEST(JsonReader, ErrorsRaisedInAnotherFileKeepIt) {
  const InputError inner("chip.json", "/cores", "bad");
  EXPECT_EQ(inner.in_file("config.json").file(), "chip.json");
  EXPECT_EQ(InputError("", "/cores", "bad").in_file("config.json").file(), "config.json");
}

TEST(JsonReader, JsonTextReplacesInvalidUtf8) {
  EXPECT_EQ(json_text(nlohmann::json("a\xff")), "\"a\xef\xbf\xbd\"");
}

}  // namespace
}  // namespace lpt
