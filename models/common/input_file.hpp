// Reading user input files safely: only regular files below a size limit, so a
// FIFO, a device such as /dev/zero or a directory named as input gets a clear
// error at once instead of a hang, unbounded memory or a misleading parse error.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace lpt {

// Far above any real config, trace or topology (ResNet-50's trace is ~20 KiB),
// low enough that reading one never strains memory.
inline constexpr std::uintmax_t kMaxInputFileBytes = std::uintmax_t{32} << 20;

// The whole file. Throws InputError naming the file when it is not a regular
// file, is larger than `max_bytes` or cannot be read.
std::string read_input_file(const std::filesystem::path& file,
                            std::uintmax_t max_bytes = kMaxInputFileBytes);

// Creates `dir` (and its parents) if needed and checks that files can be
// created in it, so a run fails before simulating rather than after.
// Throws InputError naming the directory.
void prepare_output_directory(const std::filesystem::path& dir);

}  // namespace lpt
