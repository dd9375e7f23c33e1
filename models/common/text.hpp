// Text checks and renderings shared by readers and reports.
#pragma once

#include <string>
#include <string_view>

namespace lpt {

bool is_valid_utf8(std::string_view text);

// `text` as a short double-quoted excerpt for an error message: at most
// `max_chars` bytes (cut at a UTF-8 boundary, then "..."), control characters
// and invalid bytes escaped, so a message stays one readable line.
std::string quoted_excerpt(std::string_view text, std::size_t max_chars = 60);

// One CSV cell per RFC 4180: quoted when it holds a comma, quote, CR or LF
// (quotes doubled). A text cell that a spreadsheet would run as a formula
// (leading = + - @, tab or CR) gets a leading apostrophe first.
std::string csv_text_cell(std::string_view text);

// A stable 64-bit digest of `text` as 16 hex digits (FNV-1a; std::hash is not
// stable across builds), for keys of results and caches.
std::string stable_digest(std::string_view text);

}  // namespace lpt
