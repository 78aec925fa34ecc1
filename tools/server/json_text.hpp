#pragma once
// Answers' nested lists of float32 as JSON text, written directly (no json tree): each value the shortest decimal
// that reads back to the same float (std::to_chars, what nlohmann prints for a float json), non-finite ones as null.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace vtx::server {

// Runs a task on another thread, later (the server's decode/preprocess pool).
using Post = std::function<void(std::function<void()>)>;

// Appends x (row-major, `shape`) as nested lists.
void append_nested(std::string& out, const float* x, const std::vector<int64_t>& shape);

// The same text. From kSplitMinValues numbers on, the second half of the first dimension longer than 1 is offered to
// `post`; this thread writes the first half, then the second one too if no other thread has started it. At
// concurrency 1 the text of a DINOv2-S token answer (98,688 numbers, about 3 ms) or of a depth map is on the
// critical path while the other core is idle; under load the offered half is simply taken back.
inline constexpr int64_t kSplitMinValues = 16384;
void append_nested_split(std::string& out, const float* x, const std::vector<int64_t>& shape, const Post& post);

}  // namespace vtx::server
