// vtx._vtx: the pybind11 extension behind the Python package `vtx` (issue 13).
//
// Only the public API (<vtx/...>) is used. What this file does:
//   * Model: a loaded vtx::Model plus a pool of vtx::Session objects, so one model can be called from many Python
//     threads at once (each concurrent call leases its own Session; sessions are reused afterwards).
//   * The GIL is released while images are decoded / preprocessed and while the model runs.
//   * Inputs: C-contiguous, aligned float32 arrays are wrapped without a copy (vtx::Tensor::wrap keeps a reference
//     to the array); other float arrays (float64, float16, non-contiguous) are converted to a float32 copy;
//     integer / bool / complex / object arrays are refused.
//   * Outputs: every returned array hands over the vtx::Tensor storage (a capsule owns a Tensor copy): no copy.
//   * Errors: vtx::Error raised while reading files (model folders, checkpoints, configs, images given by path)
//     becomes vtx.FileError (an OSError); raised on bad arguments or arrays it becomes vtx.InputError (a
//     ValueError). Both derive from vtx.Error. The classes are defined in vtx/_errors.py.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <vtx/error.hpp>
#include <vtx/image.hpp>
#include <vtx/model.hpp>
#include <vtx/pipeline.hpp>
#include <vtx/processor.hpp>
#include <vtx/tensor.hpp>
#if __has_include(<vtx/hub.hpp>)
#include <vtx/hub.hpp>
#define VTX_PY_HUB 1
#endif

namespace py = pybind11;

namespace {

// ---- errors ----

struct InputErr : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct FileErr : std::runtime_error {
  using std::runtime_error::runtime_error;
};

PyObject* g_input_error = nullptr;  // vtx.InputError (vtx.Error, ValueError)
PyObject* g_file_error = nullptr;   // vtx.FileError (vtx.Error, OSError)

template <class F>
decltype(auto) file_errors(F&& f) {
  try {
    return f();
  } catch (const vtx::Error& e) {
    throw FileErr(e.what());
  }
}
template <class F>
decltype(auto) input_errors(F&& f) {
  try {
    return f();
  } catch (const vtx::Error& e) {
    throw InputErr(e.what());
  }
}

// vtx::set_num_threads replaces the kernels' thread pool and must not run while any computation does: every
// computation holds this lock shared, set_num_threads holds it exclusively.
std::shared_mutex g_compute_mu;
using ComputeLock = std::shared_lock<std::shared_mutex>;

// ---- tensors <-> numpy ----

py::dtype numpy_dtype(vtx::DType t) {
  switch (t) {
    case vtx::DType::F32: return py::dtype::of<float>();
    case vtx::DType::U8: return py::dtype::of<uint8_t>();
    case vtx::DType::I8: return py::dtype::of<int8_t>();
    case vtx::DType::I32: return py::dtype::of<int32_t>();
    case vtx::DType::I64: return py::dtype::of<int64_t>();
    case vtx::DType::BOOL: return py::dtype("bool");
    case vtx::DType::F16: return py::dtype("float16");
    case vtx::DType::BF16: break;
  }
  return py::dtype();
}

// Hands the tensor's storage to numpy: the array's base is a capsule owning a copy of the Tensor (shared storage).
py::array to_numpy(const vtx::Tensor& t) {
  if (t.dtype() == vtx::DType::BF16) return to_numpy(t.to_f32());  // numpy has no bfloat16
  auto* keep = new vtx::Tensor(t);
  py::capsule owner(keep, [](void* p) { delete static_cast<vtx::Tensor*>(p); });
  std::vector<py::ssize_t> shape(t.shape().begin(), t.shape().end());
  std::vector<py::ssize_t> strides(shape.size());
  py::ssize_t s = static_cast<py::ssize_t>(vtx::dtype_size(t.dtype()));
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = s;
    s *= shape[i];
  }
  return py::array(numpy_dtype(t.dtype()), shape, strides, keep->raw(), owner);
}

std::string shape_text(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  if (a.ndim() == 1) s += ",";
  return s + ")";
}

std::string dtype_text(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

py::array as_array(py::handle obj, const std::string& what) {
  if (py::isinstance<py::array>(obj)) return py::reinterpret_borrow<py::array>(obj);
  try {
    return py::array::ensure(obj);
  } catch (py::error_already_set&) {
  }
  throw InputErr(what + ": expected a numpy array, got " + py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
}

// A float32 view of a float array: no copy when it is C-contiguous, aligned, native float32; a float32 copy for
// any other floating dtype or layout; InputErr for non-float dtypes. Needs the GIL.
vtx::Tensor float_tensor(py::handle obj, const std::string& what) {
  py::array a = as_array(obj, what);
  const char kind = a.dtype().kind();
  if (kind != 'f')
    throw InputErr(what + ": dtype " + dtype_text(a) +
                   " is not supported; pass float32 (other float dtypes are converted to float32)");
  auto f = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(a);
  if (!f) throw InputErr(what + ": cannot convert dtype " + dtype_text(a) + " to float32");
  if (reinterpret_cast<uintptr_t>(f.data()) % alignof(float) != 0) {  // misaligned view: copy
    decltype(f) c(std::vector<py::ssize_t>(f.shape(), f.shape() + f.ndim()));
    std::memcpy(c.mutable_data(), f.data(), static_cast<size_t>(f.nbytes()));
    f = c;
  }
  std::vector<int64_t> shape(f.shape(), f.shape() + f.ndim());
  PyObject* ref = f.ptr();
  Py_INCREF(ref);
  // The array stays referenced while any Tensor copy lives; dropping the reference needs the GIL.
  std::shared_ptr<void> owner(ref, [](void* p) {
    py::gil_scoped_acquire gil;
    Py_DECREF(static_cast<PyObject*>(p));
  });
  return vtx::Tensor::wrap(std::move(shape), vtx::DType::F32, const_cast<float*>(f.data()), std::move(owner));
}

vtx::Tensor u8_copy(py::handle obj, const std::string& what) {
  py::array a = as_array(obj, what);
  const char kind = a.dtype().kind();
  if (kind != 'b' && kind != 'u' && kind != 'i')
    throw InputErr(what + ": dtype " + dtype_text(a) + " is not supported; pass bool or integer 0/1 values");
  auto u = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>::ensure(a);
  std::vector<int64_t> shape(u.shape(), u.shape() + u.ndim());
  vtx::Tensor t(shape, vtx::DType::U8);
  if (t.nbytes()) std::memcpy(t.raw(), u.data(), t.nbytes());
  return t;
}

// ---- images ----

// One input image: a file path (decoded by vtx, as the CLI does) or an HWC uint8 RGB array.
struct ImageSource {
  std::string path;
  py::array_t<uint8_t, py::array::c_style> pixels;  // when path is empty
};

std::vector<ImageSource> image_sources(const py::list& items) {
  std::vector<ImageSource> out;
  py::module_ os = py::module_::import("os");
  for (size_t i = 0; i < items.size(); ++i) {
    py::handle it = items[i];
    const std::string what = "image " + std::to_string(i);
    ImageSource s;
    if (py::isinstance<py::str>(it) || py::isinstance<py::bytes>(it) || py::hasattr(it, "__fspath__")) {
      s.path = py::str(os.attr("fsdecode")(it)).cast<std::string>();
    } else {
      py::array a = as_array(it, what);
      if (a.dtype().kind() != 'u' || a.dtype().itemsize() != 1)
        throw InputErr(what + ": dtype " + dtype_text(a) + " is not supported; pass an HWC uint8 RGB array");
      if (a.ndim() != 3 || a.shape(2) != 3)
        throw InputErr(what + ": expected an HWC uint8 array with 3 channels (RGB), got shape " + shape_text(a));
      if (a.shape(0) <= 0 || a.shape(1) <= 0) throw InputErr(what + ": empty image " + shape_text(a));
      if (a.shape(0) > INT32_MAX / 4 || a.shape(1) > INT32_MAX / 4) throw InputErr(what + ": image too large " + shape_text(a));
      s.pixels = py::array_t<uint8_t, py::array::c_style>::ensure(a);
    }
    out.push_back(std::move(s));
  }
  return out;
}

// Without the GIL: decodes paths (FileErr on failure) and copies arrays into vtx::Image.
std::vector<vtx::Image> load_images(const std::vector<ImageSource>& src) {
  std::vector<vtx::Image> imgs;
  imgs.reserve(src.size());
  for (const auto& s : src) {
    if (!s.path.empty()) {
      imgs.push_back(file_errors([&] { return vtx::load_image(s.path); }));
    } else {
      vtx::Image im(static_cast<int>(s.pixels.shape(1)), static_cast<int>(s.pixels.shape(0)));
      std::memcpy(im.rgb.data(), s.pixels.data(), im.rgb.size());
      imgs.push_back(std::move(im));
    }
  }
  return imgs;
}

// ---- processor ----

struct PyProcessor {
  vtx::ImageProcessor proc;

  // stack: one [B,3,H,W] array (InputErr when sizes differ); else a list of [3,H,W] arrays.
  py::object call(const py::list& items, bool stack) const {
    if (items.size() == 0) throw InputErr("images: empty list");
    std::vector<ImageSource> src = image_sources(items);
    std::vector<vtx::Tensor> out;
    vtx::Tensor batch;
    {
      py::gil_scoped_release nogil;
      ComputeLock lock(g_compute_mu);
      std::vector<vtx::Image> imgs = load_images(src);
      input_errors([&] {
        if (stack) {
          batch = proc.preprocess(imgs);
        } else {
          for (const auto& im : imgs) out.push_back(proc.preprocess(im));
        }
        return 0;
      });
    }
    if (stack) return to_numpy(batch);
    py::list l;
    for (const auto& t : out) l.append(to_numpy(t));
    return l;
  }

  py::dict config() const {
    const auto& c = proc.config();
    py::dict d;
    d["image_processor_type"] = c.type;
    d["do_resize"] = c.do_resize;
    if (c.size_shortest_edge > 0) {
      d["size"] = py::dict(py::arg("shortest_edge") = c.size_shortest_edge);
    } else {
      d["size"] = py::dict(py::arg("height") = c.size_height, py::arg("width") = c.size_width);
    }
    d["resample"] = static_cast<int>(c.resample);
    d["do_center_crop"] = c.do_center_crop;
    d["crop_size"] = py::dict(py::arg("height") = c.crop_height, py::arg("width") = c.crop_width);
    d["do_rescale"] = c.do_rescale;
    d["rescale_factor"] = c.rescale_factor;
    d["do_normalize"] = c.do_normalize;
    d["image_mean"] = std::vector<double>(c.image_mean.begin(), c.image_mean.end());
    d["image_std"] = std::vector<double>(c.image_std.begin(), c.image_std.end());
    d["do_convert_rgb"] = c.do_convert_rgb;
    d["keep_aspect_ratio"] = c.keep_aspect_ratio;
    d["ensure_multiple_of"] = c.ensure_multiple_of;
    d["do_pad"] = c.do_pad;
    d["size_divisor"] = c.size_divisor == 0 ? py::object(py::none()) : py::object(py::int_(c.size_divisor));
    return d;
  }
};

// ---- model ----

class PyModel {
 public:
  explicit PyModel(std::shared_ptr<const vtx::Model> m) : model_(std::move(m)) {}

  const vtx::ModelInfo& info() const { return model_->info(); }

  // A Session for the duration of one call: taken from the pool (or created) and returned afterwards.
  class Lease {
   public:
    Lease(PyModel& m) : m_(m) {
      std::lock_guard<std::mutex> g(m_.mu_);
      if (!m_.free_.empty()) {
        s_ = std::move(m_.free_.back());
        m_.free_.pop_back();
      }
      if (!s_) s_ = std::make_unique<vtx::Session>(m_.model_);
    }
    ~Lease() {
      std::lock_guard<std::mutex> g(m_.mu_);
      if (m_.free_.size() < kMaxIdleSessions) m_.free_.push_back(std::move(s_));
    }
    vtx::Session& operator*() { return *s_; }

   private:
    PyModel& m_;
    std::unique_ptr<vtx::Session> s_;
  };

  vtx::Tensor pixel_values(py::handle obj) const {
    vtx::Tensor t = float_tensor(obj, "pixel_values");
    const auto& in = info();
    if (t.ndim() != 4)
      throw InputErr("pixel_values: expected a 4-d array [batch, channels, height, width], got shape " + t.shape_str());
    if (t.dim(0) == 0) throw InputErr("pixel_values: empty batch " + t.shape_str());
    if (t.dim(1) != in.num_channels)
      throw InputErr("pixel_values: expected " + std::to_string(in.num_channels) + " channels (num_channels of " +
                     in.architecture + "), got shape " + t.shape_str());
    return t;
  }

  vtx::ModelOutput run(const vtx::Tensor& pv, const vtx::ForwardOptions& opt) {
    py::gil_scoped_release nogil;
    ComputeLock lock(g_compute_mu);
    Lease s(*this);
    return input_errors([&] { return (*s).forward(pv, opt); });
  }

  py::dict forward(py::handle pixels, bool hidden, bool attentions, py::object head_mask, py::object masked,
                   bool interpolate) {
    vtx::Tensor pv = pixel_values(pixels);
    vtx::ForwardOptions opt;
    opt.output_hidden_states = hidden;
    opt.output_attentions = attentions;
    opt.interpolate_pos_encoding = interpolate;
    if (!head_mask.is_none()) opt.head_mask = float_tensor(head_mask, "head_mask");
    if (!masked.is_none()) opt.bool_masked_pos = u8_copy(masked, "bool_masked_pos");
    vtx::ModelOutput out = run(pv, opt);
    pv = vtx::Tensor();
    return to_dict(out);
  }

  static py::dict to_dict(const vtx::ModelOutput& o) {
    py::dict d;
    auto put = [&](const char* k, const vtx::Tensor& t) {
      if (!t.empty()) d[k] = to_numpy(t);
    };
    auto put_list = [&](const char* k, const std::vector<vtx::Tensor>& v) {
      if (v.empty()) return;
      py::tuple t(v.size());
      for (size_t i = 0; i < v.size(); ++i) t[i] = to_numpy(v[i]);
      d[k] = t;
    };
    put("last_hidden_state", o.last_hidden_state);
    put("pooler_output", o.pooler_output);
    put_list("hidden_states", o.hidden_states);
    put_list("attentions", o.attentions);
    put("logits", o.logits);
    put("cls_logits", o.cls_logits);
    put("distillation_logits", o.distillation_logits);
    put_list("feature_maps", o.feature_maps);
    put("reconstruction", o.reconstruction);
    put("loss", o.loss);
    put("predicted_depth", o.predicted_depth);
    if (!o.extra.empty()) {
      py::dict e;
      for (const auto& [k, v] : o.extra) e[py::str(k)] = to_numpy(v);
      d["extra"] = e;
    }
    return d;
  }

  // image-classification pipeline post-processing (vtx::top_k_predictions): [[(label, score, index), ...], ...]
  py::list classify(py::handle pixels, int top_k) {
    if (info().task != vtx::Task::Classification)
      throw InputErr(info().architecture + " is not an image classifier (no classification head)");
    vtx::Tensor pv = pixel_values(pixels);
    std::vector<std::vector<vtx::Prediction>> preds;
    {
      py::gil_scoped_release nogil;
      ComputeLock lock(g_compute_mu);
      Lease s(*this);
      preds = input_errors([&] {  // default ForwardOptions, as vtx::Pipeline and the transformers pipeline
        return vtx::top_k_predictions((*s).forward(pv).logits, info().id2label, top_k);
      });
      pv = vtx::Tensor();
    }
    py::list r;
    for (const auto& per : preds) {
      py::list l;
      for (const auto& p : per) l.append(py::make_tuple(p.label, p.score, p.index));
      r.append(l);
    }
    return r;
  }

  // image-feature-extraction pipeline (vtx::pool_embeddings).
  py::array embed(py::handle pixels, const std::string& pool_name) {
    const vtx::Pool pool = input_errors([&] { return vtx::parse_pool(pool_name); });
    vtx::Tensor pv = pixel_values(pixels);
    vtx::Tensor e;
    {
      py::gil_scoped_release nogil;
      ComputeLock lock(g_compute_mu);
      Lease s(*this);
      e = input_errors([&] { return vtx::pool_embeddings((*s).forward(pv), info(), pool); });
      pv = vtx::Tensor();
    }
    return to_numpy(e);
  }
  double flops(int64_t h, int64_t w) const { return vtx::forward_flops(info(), h, w); }

 private:
  static constexpr size_t kMaxIdleSessions = 8;
  std::shared_ptr<const vtx::Model> model_;
  std::mutex mu_;
  std::vector<std::unique_ptr<vtx::Session>> free_;
};

std::shared_ptr<PyModel> load_model(const std::string& dir, const std::string& dtype, const std::string& compute) {
  vtx::LoadOptions opt;
  if (!dtype.empty()) opt.dtype = input_errors([&] { return vtx::parse_weight_type(dtype); });
  if (!compute.empty()) opt.compute = input_errors([&] { return vtx::parse_compute_type(compute); });
  std::shared_ptr<const vtx::Model> m;
  {
    py::gil_scoped_release nogil;
    ComputeLock lock(g_compute_mu);
    m = file_errors([&] { return vtx::Model::load(dir, opt); });
  }
  return std::make_shared<PyModel>(std::move(m));
}

// A post-processing function of the public API on one float array (named `what` in errors), without the GIL.
template <class F>
py::array post_process(py::handle input, const char* what, F&& f) {
  vtx::Tensor t = float_tensor(input, what);
  vtx::Tensor out;
  {
    py::gil_scoped_release nogil;
    ComputeLock lock(g_compute_mu);
    out = input_errors([&] { return f(t); });
    t = vtx::Tensor();
  }
  return to_numpy(out);
}

// post_process_depth_estimation for one image of the batch.
py::array resize_depth(py::handle depth, int64_t index, int64_t height, int64_t width) {
  return post_process(depth, "predicted_depth", [&](const vtx::Tensor& d) {
    return vtx::post_process_depth_estimation(d, index, height, width);
  });
}

// post_process_semantic_segmentation for one image of the batch: int64 [height, width] class ids (height = width
// = 0: at the logits' own size, transformers' target_sizes=None).
py::array semantic_segmentation(py::handle logits, int64_t index, int64_t height, int64_t width) {
  return post_process(logits, "logits", [&](const vtx::Tensor& l) {
    return vtx::post_process_semantic_segmentation(l, index, height, width);
  });
}

#ifdef VTX_PY_HUB
// from_pretrained's revision / cache_dir / local_files_only: a folder is itself, a hub id its cached (or
// downloaded) snapshot folder (vtx/hub.hpp).
std::string resolve_model_py(const std::string& id, const std::string& revision, const std::string& cache_dir,
                             bool offline) {
  vtx::HubOptions o;
  o.revision = revision;
  o.cache_dir = cache_dir;
  o.offline = offline;
  o.progress = false;
  py::gil_scoped_release nogil;
  return file_errors([&] { return vtx::resolve_model(id, o).dir; });
}
#endif

py::array load_image_py(py::object path, bool exif_transpose) {
  const std::string p = py::str(py::module_::import("os").attr("fsdecode")(path)).cast<std::string>();
  vtx::Image img;
  {
    py::gil_scoped_release nogil;
    vtx::ImageLoadOptions o;
    o.exif_transpose = exif_transpose;
    img = file_errors([&] { return vtx::load_image(p, o); });
  }
  auto* keep = new vtx::Image(std::move(img));
  py::capsule owner(keep, [](void* q) { delete static_cast<vtx::Image*>(q); });
  return py::array_t<uint8_t>({static_cast<py::ssize_t>(keep->height), static_cast<py::ssize_t>(keep->width),
                               static_cast<py::ssize_t>(3)},
                              keep->rgb.data(), owner);
}

}  // namespace

PYBIND11_MODULE(_vtx, m) {
  m.doc() = "vtx C++ core (use the `vtx` package, not this module directly)";
  py::module_ errors = py::module_::import("vtx._errors");
  g_input_error = errors.attr("InputError").ptr();
  g_file_error = errors.attr("FileError").ptr();
  Py_INCREF(g_input_error);
  Py_INCREF(g_file_error);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const FileErr& e) {
      PyErr_SetString(g_file_error, e.what());
    } catch (const InputErr& e) {
      PyErr_SetString(g_input_error, e.what());
    } catch (const vtx::Error& e) {
      PyErr_SetString(g_input_error, e.what());
    }
  });

  py::class_<vtx::ModelInfo>(m, "ModelInfo", "What vtx read from the checkpoint (vtx::ModelInfo).")
      .def_readonly("model_type", &vtx::ModelInfo::model_type)
      .def_readonly("architecture", &vtx::ModelInfo::architecture)
      .def_property_readonly("task", [](const vtx::ModelInfo& i) { return std::string(vtx::task_name(i.task)); },
                             "\"features\", \"classification\", \"backbone\", \"mim\", \"depth\" or \"segmentation\"")
      .def_property_readonly("pipeline_task",
                             [](const vtx::ModelInfo& i) { return std::string(vtx::pipeline_task_name(i.task)); },
                             "the transformers pipeline task of the head (\"image-classification\", ...) or \"\"")
      .def_readonly("hidden_size", &vtx::ModelInfo::hidden_size)
      .def_readonly("num_layers", &vtx::ModelInfo::num_layers)
      .def_readonly("num_heads", &vtx::ModelInfo::num_heads)
      .def_readonly("image_size", &vtx::ModelInfo::image_size)
      .def_readonly("patch_size", &vtx::ModelInfo::patch_size)
      .def_readonly("num_channels", &vtx::ModelInfo::num_channels)
      .def_readonly("num_register_tokens", &vtx::ModelInfo::num_register_tokens)
      .def_readonly("mlp_hidden_size", &vtx::ModelInfo::mlp_hidden_size)
      .def_readonly("swiglu", &vtx::ModelInfo::swiglu)
      .def_readonly("num_special_tokens", &vtx::ModelInfo::num_special_tokens)
      .def_readonly("num_parameters", &vtx::ModelInfo::num_parameters)
      .def_readonly("dtype_counts", &vtx::ModelInfo::dtype_counts)
      .def_readonly("id2label", &vtx::ModelInfo::id2label)
      .def_readonly("out_features", &vtx::ModelInfo::out_features)
      .def_property_readonly("weights", [](const vtx::ModelInfo& i) { return std::string(vtx::weight_type_name(i.weights)); },
                             "precision of the encoder linears as loaded: f32, f16, bf16, int8, int4")
      .def_readonly("mixed_precision", &vtx::ModelInfo::mixed_precision)
      .def_property_readonly("compute", [](const vtx::ModelInfo& i) { return std::string(vtx::compute_type_name(i.compute)); },
                             "arithmetic of the encoder linears: f32, or bf16 (compute=\"bfloat16\")")
      .def_property_readonly("int4_method", [](const vtx::ModelInfo& i) { return std::string(vtx::int4_method_name(i.int4_method)); })
      .def_readonly("metric_depth", &vtx::ModelInfo::metric_depth)
      .def_readonly("max_depth", &vtx::ModelInfo::max_depth)
      .def_readonly("source_dir", &vtx::ModelInfo::source_dir)
      .def("__repr__", [](const vtx::ModelInfo& i) {
        return "ModelInfo(architecture='" + i.architecture + "', model_type='" + i.model_type + "', task='" + vtx::task_name(i.task) +
               "', hidden_size=" + std::to_string(i.hidden_size) + ", num_layers=" + std::to_string(i.num_layers) +
               ", num_parameters=" + std::to_string(i.num_parameters) + ", weights='" + vtx::weight_type_name(i.weights) + "')";
      });

  py::class_<PyModel, std::shared_ptr<PyModel>>(m, "Model")
      .def_property_readonly("info", &PyModel::info, py::return_value_policy::reference_internal)
      .def("forward", &PyModel::forward, py::arg("pixel_values"), py::arg("output_hidden_states") = false,
           py::arg("output_attentions") = false, py::arg("head_mask") = py::none(),
           py::arg("bool_masked_pos") = py::none(), py::arg("interpolate_pos_encoding") = false)
      .def("classify", &PyModel::classify, py::arg("pixel_values"), py::arg("top_k") = 5)
      .def("embed", &PyModel::embed, py::arg("pixel_values"), py::arg("pool") = "cls")
      .def("flops", &PyModel::flops, py::arg("height"), py::arg("width"));
  m.def("load_model", &load_model, py::arg("path"), py::arg("dtype") = "", py::arg("compute") = "");
  m.def("bf16_compute_available", &vtx::bf16_compute_available,
        "True when compute=\"bfloat16\" can run here (the CPU has AVX512-BF16 and VTX_DISABLE_BF16 is not set)");

  py::class_<PyProcessor>(m, "ImageProcessor")
      .def_static(
          "from_pretrained",
          [](const std::string& dir) {
            py::gil_scoped_release nogil;
            return PyProcessor{file_errors([&] { return vtx::ImageProcessor::from_pretrained(dir); })};
          },
          py::arg("path"))
      .def_static(
          "from_json_string",
          [](const std::string& text, const std::string& name) {
            return PyProcessor{file_errors([&] { return vtx::ImageProcessor::from_json_string(text, name); })};
          },
          py::arg("text"), py::arg("name") = "preprocessor_config.json")
      .def("__call__", &PyProcessor::call, py::arg("images"), py::arg("stack") = true)
      .def_property_readonly("config", &PyProcessor::config);

  m.def("resize_predicted_depth", &resize_depth, py::arg("predicted_depth"), py::arg("index"), py::arg("height"),
        py::arg("width"));
  m.def("post_process_semantic_segmentation", &semantic_segmentation, py::arg("logits"), py::arg("index"),
        py::arg("height") = 0, py::arg("width") = 0);
#ifdef VTX_PY_HUB
  m.def("resolve_model", &resolve_model_py, py::arg("id"), py::arg("revision") = "", py::arg("cache_dir") = "",
        py::arg("offline") = false);
#endif
  m.def("load_image", &load_image_py, py::arg("path"), py::arg("exif_transpose") = true);
  m.def("set_num_threads", [](int n) {
    if (n < 0) throw InputErr("set_num_threads: n must be >= 0 (0 = VTX_NUM_THREADS or all cores)");
    py::gil_scoped_release nogil;
    std::unique_lock<std::shared_mutex> lock(g_compute_mu);
    vtx::set_num_threads(n);
  });
  m.def("num_threads", &vtx::num_threads);
}
