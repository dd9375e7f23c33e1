// Reading NumPy's .npy tensors (format versions 1.0-3.0: a magic string, a
// header dict with 'descr', 'fortran_order' and 'shape', then the raw data),
// for real tensors in the fidelity pass. Little-endian floats (f2, f4, f8) and
// integers (i1-i8, u1-u8); anything else is an error naming what was found.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace lpt {

// Far above the tensors a fidelity sample needs; bounds what reading one costs.
inline constexpr std::uintmax_t kMaxNpyBytes = std::uintmax_t{1} << 30;

struct NpyArray {
  std::vector<std::int64_t> shape;  // empty for a scalar
  std::string dtype;                // e.g. "<f4"
  std::vector<double> values;       // in file order

  std::string shape_text() const;   // "(64, 3, 7, 7)"
};

// Throws InputError naming the file and what was expected.
NpyArray parse_npy(std::string_view bytes, const std::string& file);
NpyArray read_npy(const std::filesystem::path& file);

}  // namespace lpt
