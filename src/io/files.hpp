#pragma once
// Reading files safely: the file type is checked before open (a FIFO, device, socket or folder given as a
// config, checkpoint, index or image would block or mislead), sizes are bounded, and messages name the file.
#include <cstddef>
#include <cstdint>
#include <string>

namespace vtx::io {

// Opens `path` read-only once stat() says it is a regular file (following symlinks), with O_NONBLOCK so that
// a file swapped for a FIFO between the check and the open cannot block, and checks the opened file again.
// Returns the descriptor (the caller closes it). Throws vtx::Error "<path>: <problem>" otherwise; `what`
// ("config", "image", ...) is put in front of "is not a regular file" when given.
int open_regular(const std::string& path, const std::string& what = "");

// The whole file (regular files only, see open_regular), at most max_bytes long.
std::string read_file(const std::string& path, const std::string& what = "", uint64_t max_bytes = uint64_t{1} << 30);

// True when both paths exist and name the same file (device and inode), following symlinks.
bool same_file(const std::string& a, const std::string& b);

// "a FIFO", "a folder", "a character device", ... for a stat() st_mode.
std::string file_kind(unsigned mode);

}  // namespace vtx::io
