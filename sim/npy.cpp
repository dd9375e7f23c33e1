#include "sim/npy.hpp"

#include <bit>
#include <cstring>
#include <regex>

#include "models/common/input_file.hpp"
#include "models/common/json_reader.hpp"
#include "models/common/text.hpp"

namespace lpt {

namespace {

[[noreturn]] void fail(const std::string& file, const std::string& message) {
  throw InputError(file, "", "not a usable .npy tensor: " + message);
}

std::uint64_t little_endian(std::string_view bytes) {
  std::uint64_t v = 0;
  for (std::size_t i = bytes.size(); i-- > 0;) v = (v << 8) | static_cast<unsigned char>(bytes[i]);
  return v;
}

template <class T>
double element(std::string_view data, std::size_t index) {
  T value;
  std::memcpy(&value, data.data() + index * sizeof(T), sizeof(T));
  return static_cast<double>(value);
}

double half_to_double(std::uint16_t h) {
  const int exponent = (h >> 10) & 0x1f;
  const int mantissa = h & 0x3ff;
  const double sign = (h & 0x8000) ? -1.0 : 1.0;
  if (exponent == 0) return sign * std::ldexp(mantissa, -24);
  if (exponent == 31) return mantissa ? std::numeric_limits<double>::quiet_NaN() : sign * HUGE_VAL;
  return sign * std::ldexp(1024 + mantissa, exponent - 25);
}

}  // namespace

std::string NpyArray::shape_text() const {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

NpyArray parse_npy(std::string_view bytes, const std::string& file) {
  static constexpr std::string_view kMagic = "\x93NUMPY";
  if (bytes.size() < 10 || bytes.substr(0, 6) != kMagic) fail(file, "it does not start with NumPy's magic string");
  const int major = static_cast<unsigned char>(bytes[6]);
  if (major < 1 || major > 3) fail(file, "format version " + std::to_string(major) + " (expected 1, 2 or 3)");
  const std::size_t length_bytes = major == 1 ? 2 : 4;
  if (bytes.size() < 8 + length_bytes) fail(file, "the header is cut short");
  const std::uint64_t header_length = little_endian(bytes.substr(8, length_bytes));
  const std::size_t data_start = 8 + length_bytes + header_length;
  if (data_start > bytes.size()) fail(file, "the header is cut short");
  const std::string header(bytes.substr(8 + length_bytes, header_length));

  NpyArray array;
  std::smatch m;
  if (!std::regex_search(header, m, std::regex(R"('descr'\s*:\s*'([^']*)')")))
    fail(file, "its header has no 'descr'");
  array.dtype = m[1];
  // 'fortran_order' is not read: the fidelity pass draws elements uniformly, so their order does not matter.
  if (!std::regex_search(header, m, std::regex(R"('shape'\s*:\s*\(([^)]*)\))"))) fail(file, "its header has no 'shape'");
  const std::string dims = m[1];
  std::uint64_t count = 1;
  const std::regex number(R"(\d+)");
  for (std::sregex_iterator it(dims.begin(), dims.end(), number), end; it != end; ++it) {
    const std::string digits = it->str();
    if (digits.size() > 12) fail(file, "dimension " + digits + " is too large");
    const auto d = static_cast<std::int64_t>(std::stoll(digits));
    array.shape.push_back(d);
    count *= static_cast<std::uint64_t>(d);
    if (count > kMaxNpyBytes) fail(file, "shape " + dims + " has too many elements");
  }

  const std::string& d = array.dtype;
  const bool little = !d.empty() && (d[0] == '<' || d[0] == '|' || (d[0] == '=' && std::endian::native == std::endian::little));
  if (d.size() != 3 || !little || (d[1] != 'f' && d[1] != 'i' && d[1] != 'u'))
    fail(file, "dtype " + quoted_excerpt(d) + " (expected little-endian float or integer: <f2, <f4, <f8, <i1..<i8, <u1..<u8)");
  const std::size_t size = static_cast<std::size_t>(d[2] - '0');
  const bool known = d[1] == 'f' ? (size == 2 || size == 4 || size == 8) : (size == 1 || size == 2 || size == 4 || size == 8);
  if (!known) fail(file, "dtype " + quoted_excerpt(d) + " (expected <f2, <f4, <f8, <i1..<i8 or <u1..<u8)");
  const std::string_view data = bytes.substr(data_start);
  if (data.size() != count * size)
    fail(file, "shape " + array.shape_text() + " of " + d + " needs " + std::to_string(count * size) +
                   " data bytes, the file has " + std::to_string(data.size()));
  array.values.resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    double v = 0;
    if (d[1] == 'f') {
      if (size == 2) v = half_to_double(static_cast<std::uint16_t>(little_endian(data.substr(i * 2, 2))));
      else if (size == 4) v = element<float>(data, i);
      else v = element<double>(data, i);
    } else if (d[1] == 'i') {
      if (size == 1) v = element<std::int8_t>(data, i);
      else if (size == 2) v = element<std::int16_t>(data, i);
      else if (size == 4) v = element<std::int32_t>(data, i);
      else v = element<std::int64_t>(data, i);
    } else {
      if (size == 1) v = element<std::uint8_t>(data, i);
      else if (size == 2) v = element<std::uint16_t>(data, i);
      else if (size == 4) v = element<std::uint32_t>(data, i);
      else v = element<std::uint64_t>(data, i);
    }
    array.values[i] = v;
  }
  return array;
}

NpyArray read_npy(const std::filesystem::path& file) {
  return parse_npy(read_input_file(file, kMaxNpyBytes), file.string());
}

}  // namespace lpt
