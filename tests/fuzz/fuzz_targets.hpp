#pragma once
// libFuzzer targets (issue 16). Each target is a plain function so that the normal test suite
// (tests/test_fuzz_regressions.cpp) replays tests/fuzz/regressions/<target>/* through exactly the code the
// fuzzer ran; the fuzz build (-DVTX_FUZZ=ON, clang) wraps each one in LLVMFuzzerTestOneInput (fuzz_main.cpp).
// A target returns normally for any input that ends in a vtx::Error; anything else (a crash, a sanitizer
// report, another exception type, a hang, a memory blow-up) is a finding.
#include <cstddef>
#include <cstdint>
#include <string>

namespace vtx::fuzz {

int safetensors(const uint8_t* data, size_t size);  // header parser + WeightStore (single file)
int config(const uint8_t* data, size_t size);       // config.json -> Model::load with a small golden checkpoint, one forward
int processor(const uint8_t* data, size_t size);    // preprocessor_config.json -> ImageProcessor -> preprocess
int jpeg(const uint8_t* data, size_t size);         // decode_image with the JPEG magic forced
int png(const uint8_t* data, size_t size);
int webp(const uint8_t* data, size_t size);
int bmp(const uint8_t* data, size_t size);

// The golden folder (../shared/golden, or $VTX_SHARED_DIR/golden).
std::string golden_dir();

}  // namespace vtx::fuzz
