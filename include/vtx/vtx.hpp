#pragma once
// The whole vtx public API.
#include "vtx/cpu.hpp"
#include "vtx/error.hpp"
#include "vtx/export.hpp"
#include "vtx/hub.hpp"
#include "vtx/image.hpp"
#include "vtx/io.hpp"
#include "vtx/model.hpp"
#include "vtx/pipeline.hpp"
#include "vtx/processor.hpp"
#include "vtx/tensor.hpp"
#include "vtx/version.hpp"
