#include "models/common/json_reader.hpp"

#include <cmath>
#include <fstream>
#include <sstream>

namespace lpt {

namespace {

std::string format_what(const std::string& file, const std::string& path,
                        const std::string& message) {
  std::string out = file.empty() ? std::string("<input>") : file;
  out += ": ";
  out += path.empty() ? std::string("/") : path;
  out += ": ";
  out += message;
  return out;
}

// JSON pointer escaping (RFC 6901) so keys with '/' or '~' stay unambiguous.
std::string pointer_token(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

std::string shown(const nlohmann::json& v) {
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

}  // namespace

InputError::InputError(std::string file, std::string json_path, std::string message)
    : std::runtime_error(format_what(file, json_path, message)),
      file_(std::move(file)),
      json_path_(std::move(json_path)),
      message_(std::move(message)) {}

InputError InputError::in_file(std::string file) const {
  return InputError(std::move(file), json_path_, message_);
}

JsonReader::JsonReader(const nlohmann::json& value, std::string path)
    : value_(&value),
      path_(std::move(path)),
      read_keys_(std::make_shared<std::set<std::string, std::less<>>>()) {}

void JsonReader::fail(const std::string& message) const {
  throw InputError("", path_, message);
}

void JsonReader::fail_at(std::string_view key, const std::string& message) const {
  throw InputError("", path_ + "/" + pointer_token(key), message);
}

std::string JsonReader::type_name() const { return value_->type_name(); }

void JsonReader::expect_object() const {
  if (!value_->is_object()) fail("expected an object, got " + type_name());
}

bool JsonReader::has(std::string_view key) const {
  expect_object();
  return value_->find(key) != value_->end();
}

JsonReader JsonReader::at(std::string_view key) const {
  expect_object();
  auto it = value_->find(key);
  if (it == value_->end()) fail_at(key, "missing required key");
  read_keys_->emplace(key);
  return JsonReader(*it, path_ + "/" + pointer_token(key));
}

std::optional<JsonReader> JsonReader::find(std::string_view key) const {
  expect_object();
  auto it = value_->find(key);
  if (it == value_->end()) return std::nullopt;
  read_keys_->emplace(key);
  return JsonReader(*it, path_ + "/" + pointer_token(key));
}

std::vector<std::pair<std::string, JsonReader>> JsonReader::members() const {
  expect_object();
  std::vector<std::pair<std::string, JsonReader>> out;
  for (auto it = value_->begin(); it != value_->end(); ++it) {
    read_keys_->insert(it.key());
    out.emplace_back(it.key(), JsonReader(it.value(), path_ + "/" + pointer_token(it.key())));
  }
  return out;
}

void JsonReader::finish() const {
  expect_object();
  for (auto it = value_->begin(); it != value_->end(); ++it) {
    if (read_keys_->count(it.key())) continue;
    std::string known;
    for (const auto& k : *read_keys_) known += (known.empty() ? "" : ", ") + k;
    fail_at(it.key(), "unknown key" +
                          (known.empty() ? std::string() : "; expected one of: " + known));
  }
}

std::int64_t JsonReader::integer(std::int64_t min, std::int64_t max) const {
  const auto range = "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
  std::int64_t v = 0;
  if (value_->is_number_integer()) {
    if (value_->is_number_unsigned() &&
        value_->get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX))
      fail("expected " + range + ", got " + shown(*value_));
    v = value_->get<std::int64_t>();
  } else if (value_->is_number_float()) {
    const double d = value_->get<double>();
    if (!(std::floor(d) == d && std::abs(d) < 9.0e15))
      fail("expected " + range + ", got " + shown(*value_));
    v = static_cast<std::int64_t>(d);
  } else {
    fail("expected " + range + ", got " + type_name() + " " + shown(*value_));
  }
  if (v < min || v > max) fail("expected " + range + ", got " + std::to_string(v));
  return v;
}

double JsonReader::number(double min, double max) const {
  std::ostringstream range;
  range << "a number in [" << min << ", " << max << "]";
  if (!value_->is_number())
    fail("expected " + range.str() + ", got " + type_name() + " " + shown(*value_));
  const double v = value_->get<double>();
  if (!std::isfinite(v) || v < min || v > max)
    fail("expected " + range.str() + ", got " + shown(*value_));
  return v;
}

bool JsonReader::boolean() const {
  if (!value_->is_boolean()) fail("expected true or false, got " + type_name() + " " + shown(*value_));
  return value_->get<bool>();
}

std::string JsonReader::string() const {
  if (!value_->is_string()) fail("expected a string, got " + type_name() + " " + shown(*value_));
  std::string s = value_->get<std::string>();
  if (s.empty()) fail("expected a non-empty string");
  return s;
}

std::string JsonReader::one_of(std::initializer_list<std::string_view> choices) const {
  const std::string s = string();
  std::string expected;
  for (auto c : choices) {
    if (s == c) return s;
    expected += (expected.empty() ? "" : "|") + std::string(c);
  }
  fail("expected one of " + expected + ", got \"" + s + "\"");
}

std::vector<JsonReader> JsonReader::elements(std::size_t min_size, std::size_t max_size) const {
  if (!value_->is_array()) fail("expected an array, got " + type_name() + " " + shown(*value_));
  const std::size_t n = value_->size();
  if (n < min_size || n > max_size) {
    std::string expected = min_size == max_size ? std::to_string(min_size)
                           : max_size == SIZE_MAX
                               ? "at least " + std::to_string(min_size)
                               : std::to_string(min_size) + " to " + std::to_string(max_size);
    fail("expected an array of " + expected + " elements, got " + std::to_string(n));
  }
  std::vector<JsonReader> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) out.emplace_back((*value_)[i], path_ + "/" + std::to_string(i));
  return out;
}

std::vector<std::int64_t> JsonReader::integers(std::size_t size, std::int64_t min,
                                               std::int64_t max) const {
  std::vector<std::int64_t> out;
  for (const auto& e : elements(size, size)) out.push_back(e.integer(min, max));
  return out;
}

nlohmann::json load_json_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError(file.string(), "", "cannot open file for reading");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    std::size_t line = 1, column = 1;
    for (std::size_t i = 0; i + 1 < e.byte && i < text.size(); ++i) {
      if (text[i] == '\n') { ++line; column = 1; } else { ++column; }
    }
    std::string what = e.what();
    const auto colon = what.rfind(": ");
    throw InputError(file.string(), "",
                     "invalid JSON at line " + std::to_string(line) + ", column " +
                         std::to_string(column) + ": " +
                         (colon == std::string::npos ? what : what.substr(colon + 2)));
  }
}

}  // namespace lpt
