#pragma once
// Atomic output files: every file vtx writes goes to a temporary file in the destination folder, is flushed
// (fsync) and renamed over the destination, so a reader sees the old file or the new one, never half of one.
//
// What may be replaced (the rules of install(1) / mv(1), made strict):
//   - a path that does not exist: created (mode 0666 minus the umask);
//   - a regular file the user owns (as mv / install do, even when its mode is read-only), or one of another user
//     that the user may write to: replaced, keeping its permission bits;
//   - a symbolic link: written THROUGH — the link stays and its final target (which must be an existing,
//     writable regular file) is replaced, as `cp` and shell redirection do; a dangling link is refused;
//   - anything else (folder, FIFO, character or block device such as /dev/null, socket) is refused, as is a
//     file of another user that the user may not write to.
// Errors are vtx::Error "<path>: <problem>"; the temporary file is removed on every failure.
#include <cstddef>
#include <string>

namespace vtx::io {

// The file write_file_atomic(path, ...) would replace: `path`, or the final target of a symlink. Throws
// vtx::Error when that is not allowed (see above). Useful to check outputs before any work is done.
std::string atomic_write_target(const std::string& path);

void write_file_atomic(const std::string& path, const void* data, size_t size);
void write_file_atomic(const std::string& path, const std::string& bytes);

}  // namespace vtx::io
