// Source locations: every op and weight carries the file:line:col it came from.
#pragma once
#include <string>

namespace qlc {

struct Location {
  std::string file; // empty = unknown
  unsigned line = 0;
  unsigned col = 0;

  bool isKnown() const { return !file.empty(); }
  std::string str() const {
    return isKnown() ? file + ":" + std::to_string(line) + ":" + std::to_string(col)
                     : std::string("<unknown>");
  }
  friend bool operator==(const Location &, const Location &) = default;
};

} // namespace qlc
