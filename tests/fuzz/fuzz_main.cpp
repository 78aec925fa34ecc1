// LLVMFuzzerTestOneInput for one target, chosen at compile time: -DVTX_FUZZ_TARGET=<name> (fuzz_targets.hpp).
#include "fuzz_targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { return vtx::fuzz::VTX_FUZZ_TARGET(data, size); }
