// Classifies images with an installed vtx: `vtx_consumer MODEL_DIR IMAGE...` prints, per image, one line
// "<top label>\t<logit 0> <logit 1> ...". Built by tests/test_install.cpp with find_package(vtx) and pkg-config.
#include <vtx/vtx.hpp>

#include <cstdio>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: vtx_consumer MODEL_DIR IMAGE...\n");
    return 2;
  }
  try {
    static_assert(VTX_VERSION >= VTX_MAKE_VERSION(0, 2, 0), "vtx too old");
    if (std::string(vtx::version_string()) != VTX_VERSION_STRING) {
      std::fprintf(stderr, "header %s, library %s\n", VTX_VERSION_STRING, vtx::version_string());
      return 1;
    }
    vtx::Pipeline pipe = vtx::Pipeline::load(argv[1]);
    std::vector<vtx::Image> images;
    for (int i = 2; i < argc; ++i) images.push_back(vtx::load_image(argv[i]));
    const vtx::ModelOutput out = pipe.forward(images);
    const auto top = vtx::top_k_predictions(out.logits, pipe.model().info().id2label, 1);
    const int64_t C = out.logits.dim(1);
    for (size_t b = 0; b < images.size(); ++b) {
      std::printf("%s\t", top[b][0].label.c_str());
      for (int64_t c = 0; c < C; ++c) std::printf("%s%.9g", c ? " " : "", out.logits.data<float>()[b * C + c]);
      std::printf("\n");
    }
  } catch (const vtx::Error& e) {  // thrown inside libvtx.so, caught here: the type information is exported
    std::fprintf(stderr, "vtx_consumer: %s\n", e.what());
    return 1;
  }
  return 0;
}
