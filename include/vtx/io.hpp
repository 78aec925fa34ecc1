#pragma once
// File formats the tools read and write: safetensors, NumPy .npy, PNG; and the atomic write they all use.
//
//   auto tensors = vtx::load_safetensors("inputs.safetensors");           // name -> Tensor
//   vtx::save_safetensors("out.safetensors", out.named());               // atomic
//   vtx::save_npy("emb.npy", embeddings);                                // float32, C order
//
// Every failure is a vtx::Error naming the file and the problem.
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "vtx/error.hpp"
#include "vtx/export.hpp"
#include "vtx/image.hpp"
#include "vtx/tensor.hpp"

namespace vtx {

// Every tensor of a safetensors file (validated as Model::load validates checkpoints), copied out;
// as_f32 converts F16/BF16/U8/I*/BOOL to F32.
VTX_API std::map<std::string, Tensor> load_safetensors(const std::string& path, bool as_f32 = false);
// "file.safetensors[:key]": the named tensor, or, without a key, `default_key` if present, else the only one.
VTX_API Tensor load_safetensors_tensor(const std::string& spec, const std::string& default_key = "");
// Writes tensors in the order given, atomically. Metadata goes into "__metadata__".
VTX_API void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                              const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

// NumPy .npy v1.0, little-endian float32, C order (F16/BF16 tensors are converted).
VTX_API std::string npy_bytes(const Tensor& t);
VTX_API void save_npy(const std::string& path, const Tensor& t);  // atomic
VTX_API Tensor load_npy(const std::string& path);                // '<f4', C order

// Replaces `path` with `bytes` atomically: a temporary file in the same folder, flushed, then renamed over
// the target, so a reader sees the old file or the new one, never a part. Throws vtx::Error naming path.
// Only a new path or a regular file is replaced; a symlink is written through to its existing target; FIFOs,
// devices, folders and other users' unwritable files are refused (rules: docs/robustness.md).
VTX_API void write_file_atomic(const std::string& path, const std::string& bytes);

// --- output-path checks (issue 16, hardening) ---
// The file write_file_atomic(path, ...) would replace: `path`, or a symlink's final target. Throws vtx::Error
// when writing there is refused (see write_file_atomic). Lets a command check its outputs before any work.
VTX_API std::string atomic_write_target(const std::string& path);
// Throws vtx::Error "<output>: is one of the inputs (...)" when an output names the same file as an input
// (symlinks and hard links followed; an input folder stands for the files directly in it, e.g. a model
// folder), and refuses outputs atomic_write_target refuses. No command may write over one of its inputs.
VTX_API void check_outputs(const std::vector<std::string>& outputs, const std::vector<std::string>& inputs);
// --- end of output-path checks ---

// PNG encoding (libpng). tEXt chunks are written in the order given.
using PngText = std::vector<std::pair<std::string, std::string>>;
VTX_API std::string encode_png(const Image& rgb, const PngText& text = {});  // 8-bit RGB
// 8-bit (samples: width*height bytes) or 16-bit grayscale (native-endian uint16 samples).
VTX_API std::string encode_png_gray8(const uint8_t* samples, int width, int height, const PngText& text = {});
VTX_API std::string encode_png_gray16(const uint16_t* samples, int width, int height, const PngText& text = {});

}  // namespace vtx
