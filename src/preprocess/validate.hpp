#pragma once
// Internal: checks of a ProcessorConfig shared by from_json_string and the ImageProcessor constructor.
#include <string>

#include "vtx/processor.hpp"

namespace vtx {

// Sizes in range, and rescale_factor / image_mean / image_std finite and nonzero in float32 (the precision the
// normalisation runs in), so that no preprocessed value can be NaN or infinite. Throws vtx::Error "<name>: ...".
void validate_processor_config(const ProcessorConfig& c, const std::string& name);

}  // namespace vtx
