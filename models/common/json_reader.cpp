#include "models/common/json_reader.hpp"

#include <cmath>
#include <iterator>
#include <map>
#include <sstream>

#include "models/common/input_file.hpp"
#include "models/common/text.hpp"

namespace lpt {

namespace {

std::string format_what(const std::string& file, const std::string& path,
                        const std::string& message) {
  std::string out = file.empty() ? std::string("<input>") : file;
  out += ": ";
  if (!path.empty()) out += path + ": ";  // empty: about the file as a whole
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

// A value as an error message shows it: scalars as written, strings as a
// short excerpt, containers by size only (never a recursive dump).
std::string shown(const nlohmann::json& v) {
  if (v.is_string()) return quoted_excerpt(v.get_ref<const std::string&>());
  if (v.is_object()) return "with " + std::to_string(v.size()) + " members";
  if (v.is_array()) return "with " + std::to_string(v.size()) + " elements";
  return v.dump();
}

}  // namespace

InputError::InputError(std::string file, std::string json_path, std::string message)
    : std::runtime_error(format_what(file, json_path, message)),
      file_(std::move(file)),
      json_path_(std::move(json_path)),
      message_(std::move(message)) {}

InputError InputError::in_file(std::string file) const {
  if (!file_.empty()) return *this;  // raised while reading another file: keep it
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
  // Asked for, present or not: finish() lists it among the valid keys.
  read_keys_->emplace(key);
  auto it = value_->find(key);
  if (it == value_->end()) return std::nullopt;
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
  fail("expected one of " + expected + ", got " + quoted_excerpt(s));
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

namespace {

// 1-based line and column of byte `offset` of `text`.
std::string position_of(std::string_view text, std::size_t offset) {
  std::size_t line = 1, column = 1;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

// An input iterator over the text that publishes how far the lexer has read,
// so SAX events can be placed in the text (nlohmann's events carry no position).
class TrackedIterator {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  TrackedIterator(const char* at, const char** cursor) : at_(at), cursor_(cursor) {}
  reference operator*() const { return *at_; }
  TrackedIterator& operator++() {
    *cursor_ = ++at_;
    return *this;
  }
  TrackedIterator operator++(int) {
    TrackedIterator before = *this;
    ++*this;
    return before;
  }
  bool operator==(const TrackedIterator& other) const { return at_ == other.at_; }

 private:
  const char* at_;
  const char** cursor_;
};

// Builds the document like nlohmann's own DOM parser, and enforces what it
// does not: a depth limit and unique keys. Errors become InputError.
class StrictDocumentBuilder {
 public:
  using json = nlohmann::json;

  StrictDocumentBuilder(std::string_view text, const std::string& file, json& root)
      : text_(text), file_(file), root_(root), cursor_(text.data()) {}

  const char** cursor() { return &cursor_; }

  bool null() { return put(nullptr); }
  bool boolean(bool v) { return put(v); }
  bool number_integer(json::number_integer_t v) { return put(v); }
  bool number_unsigned(json::number_unsigned_t v) { return put(v); }
  bool number_float(json::number_float_t v, const json::string_t&) { return put(v); }
  bool string(json::string_t& v) { return put(std::move(v)); }
  bool binary(json::binary_t& v) { return put(std::move(v)); }

  bool start_object(std::size_t) { return open(json::object()); }
  bool key(json::string_t& key) {
    Level& level = levels_.back();
    const std::size_t offset = key_start();
    const auto [first, inserted] = level.key_offsets.emplace(key, offset);
    if (!inserted)
      fail(path() + "/" + escape(key),
           "duplicate key " + quoted_excerpt(key) + " (first at " + position_of(text_, first->second) +
               ", again at " + position_of(text_, offset) + ")");
    level.key = key;
    return true;
  }
  bool end_object() { return close(); }
  bool start_array(std::size_t) { return open(json::array()); }
  bool end_array() { return close(); }

  bool parse_error(std::size_t byte, const std::string&, const nlohmann::detail::exception& e) {
    fail("", "invalid JSON at " + position_of(text_, byte == 0 ? 0 : byte - 1) + ": " +
                 readable_parse_message(e.what()));
  }

 private:
  struct Level {
    json* value;
    std::string key;  // the member being read, for objects
    std::map<std::string, std::size_t, std::less<>> key_offsets;
  };

  std::size_t here() const { return static_cast<std::size_t>(cursor_ - text_.data()); }

  // Offset of the opening quote of the key the lexer has just read (it stops
  // right after the closing quote): the first quote before that one that is
  // not escaped by an odd run of backslashes.
  std::size_t key_start() const {
    std::size_t i = here() >= 2 ? here() - 2 : 0;
    while (i > 0) {
      if (text_[i] == '"') {
        std::size_t backslashes = 0;
        while (backslashes < i && text_[i - 1 - backslashes] == '\\') ++backslashes;
        if (backslashes % 2 == 0) return i;
      }
      --i;
    }
    return 0;
  }

  [[noreturn]] void fail(const std::string& path, const std::string& message) const {
    throw InputError(file_, path, message);
  }

  static std::string escape(std::string_view key) {
    std::string out;
    for (char c : key) out += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
    return out;
  }

  std::string path() const {
    std::string out;
    for (std::size_t i = 1; i < levels_.size(); ++i) {
      const json& parent = *levels_[i - 1].value;
      out += "/" + (parent.is_object() ? escape(levels_[i - 1].key)
                                       : std::to_string(parent.size() - 1));
    }
    return out;
  }

  // nlohmann's text without its "[json.exception...] parse error at line L,
  // column C: " prefix (we give the position ourselves), with the echoed
  // input shortened.
  static std::string readable_parse_message(std::string what) {
    if (const auto tag_end = what.find("] "); what.starts_with("[json.") && tag_end != std::string::npos)
      what.erase(0, tag_end + 2);
    if (what.starts_with("parse error")) {
      if (const auto colon = what.find(": "); colon != std::string::npos) what.erase(0, colon + 2);
    }
    const auto last_read = what.find("; last read: '");
    if (last_read != std::string::npos) {
      const std::size_t start = last_read + 14;
      const std::size_t end = what.rfind('\'');
      const std::string echoed = what.substr(start, end > start ? end - start : std::string::npos);
      what = what.substr(0, last_read) + "; last read: " + quoted_excerpt(echoed, 40);
    }
    return what;
  }

  template <class Value>
  json* insert(Value&& v) {
    if (levels_.empty()) {
      root_ = json(std::forward<Value>(v));
      return &root_;
    }
    json& parent = *levels_.back().value;
    if (parent.is_array()) {
      parent.push_back(json(std::forward<Value>(v)));
      return &parent.back();
    }
    json& slot = parent[levels_.back().key];
    slot = json(std::forward<Value>(v));
    return &slot;
  }

  template <class Value>
  bool put(Value&& v) {
    insert(std::forward<Value>(v));
    return true;
  }

  bool open(json container) {
    if (static_cast<int>(levels_.size()) >= kMaxJsonDepth)
      fail(path(), "nesting deeper than " + std::to_string(kMaxJsonDepth) + " levels at " +
                       position_of(text_, here() == 0 ? 0 : here() - 1));
    json* value = insert(std::move(container));
    levels_.push_back({value, {}, {}});
    return true;
  }

  bool close() {
    levels_.pop_back();
    return true;
  }

  std::string_view text_;
  const std::string& file_;
  json& root_;
  const char* cursor_;
  std::vector<Level> levels_;
};

}  // namespace

nlohmann::json parse_json_text(std::string_view text, const std::string& file) {
  nlohmann::json root;
  StrictDocumentBuilder builder(text, file, root);
  const TrackedIterator begin(text.data(), builder.cursor());
  const TrackedIterator end(text.data() + text.size(), builder.cursor());
  nlohmann::json::sax_parse(begin, end, &builder);
  return root;
}

std::string json_text(const nlohmann::json& value, int indent) {
  return value.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

nlohmann::json load_json_file(const std::filesystem::path& file) {
  return parse_json_text(read_input_file(file), file.string());
}

}  // namespace lpt
