// File helpers shared by every data reader (no HE): whole-file reads that inflate gzip, and the
// data roots where the set-up's installs are looked for.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace hetal::data {

/// Throws std::invalid_argument("<path>: <what>").
[[noreturn]] void fail(const std::string& path, const std::string& what);

/// The file's bytes, inflated if it is gzipped (told by the content: magic 1f 8b; several
/// members allowed). Errors name the file: unreadable, truncated or corrupt gzip data.
std::vector<unsigned char> read_bytes(const std::string& path);

/// Where the set-up's data folder (`data/`, made by scripts/setup.sh) is looked for:
/// `data_root` if given, else $HETAL_DATA if set, else the current directory and then the
/// source tree this library was built from. Each root R is tried as R and as R/data.
std::vector<std::filesystem::path> data_roots(const std::string& data_root = "");

/// The first `root/relative` (over data_roots) that exists as a regular file or folder; empty
/// if none.
std::filesystem::path find_data(const std::string& relative, const std::string& data_root = "");

/// True if p is a regular file (no exceptions).
bool is_file(const std::filesystem::path& p);

}  // namespace hetal::data
