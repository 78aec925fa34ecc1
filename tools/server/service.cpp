#include "service.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "http_error.hpp"
#include "json_text.hpp"
#include "util.hpp"
#include "vtx/pipeline.hpp"
#include "vtx/io.hpp"
#include "vtx/version.hpp"

namespace vtx::server {

namespace {

using json = nlohmann::json;
// Answers hold float32 values: a json whose numbers are float prints each with the shortest decimal that
// reads back to the same float.
using ojson = nlohmann::basic_json<std::map, std::vector, std::string, bool, std::int64_t, std::uint64_t, float>;

Response json_response(const ojson& j, int status = 200) {
  Response r;
  r.status = status;
  r.body = j.dump();
  return r;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string media_type(const std::string& content_type) {
  std::string t = content_type.substr(0, content_type.find(';'));
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.pop_back();
  while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.erase(t.begin());
  return lower(t);
}

json parse_json(const std::string& body) {
  try {
    return json::parse(body);
  } catch (const json::parse_error& e) {
    std::string m = e.what();
    const auto p = m.find("] ");
    if (p != std::string::npos) m = m.substr(p + 2);
    throw HttpError(400, "invalid_json", "malformed JSON body: " + m);
  }
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    const size_t j = path.find('/', i);
    const std::string part = path.substr(i, j == std::string::npos ? std::string::npos : j - i);
    if (!part.empty()) parts.push_back(part);
    if (j == std::string::npos) break;
    i = j;
  }
  return parts;
}

// The route's answer follows the model's pipeline task; heads without a pipeline of their own (backbones, MIM)
// answer as feature extraction (their last_hidden_state).
std::string pipeline_task(const ModelInfo& info) {
  const std::string t = pipeline_task_name(info.task);
  return t.empty() ? "image-feature-extraction" : t;
}

// id2label[c], or "LABEL_<c>" as transformers names a label the config does not.
std::string label_of(const ModelInfo& info, int64_t c) {
  return c >= 0 && c < static_cast<int64_t>(info.id2label.size()) && !info.id2label[c].empty()
             ? info.id2label[c] : "LABEL_" + std::to_string(c);
}


ojson flat(const float* x, int64_t n) {
  ojson a = ojson::array();
  a.get_ref<ojson::array_t&>().reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) a.push_back(x[i]);
  return a;
}

const json* param(const json& params, const char* key) {
  auto it = params.find(key);
  return it == params.end() || it->is_null() ? nullptr : &*it;
}

void check_known(const json& params, const std::vector<std::string>& known, const std::string& task) {
  if (!params.is_object()) throw HttpError(400, "invalid_parameter", "\"parameters\" must be a JSON object");
  for (auto it = params.begin(); it != params.end(); ++it) {
    if (std::find(known.begin(), known.end(), it.key()) == known.end()) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      throw HttpError(400, "invalid_parameter",
                      "unknown parameter '" + it.key() + "' for " + task + (list.empty() ? " (it takes none)" : " (" + list + ")"));
    }
  }
}

int int_param(const json& v, const char* name, int lo, int hi) {
  if (!v.is_number_integer()) throw HttpError(400, "invalid_parameter", std::string(name) + " must be an integer");
  const int64_t x = v.get<int64_t>();
  if (x < lo || x > hi)
    throw HttpError(400, "invalid_parameter",
                    std::string(name) + " must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  return static_cast<int>(x);
}

std::string string_param(const json& v, const char* name, const std::vector<std::string>& allowed) {
  if (!v.is_string()) throw HttpError(400, "invalid_parameter", std::string(name) + " must be a string");
  const std::string s = v.get<std::string>();
  if (std::find(allowed.begin(), allowed.end(), s) == allowed.end()) {
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    throw HttpError(400, "invalid_parameter", std::string(name) + ": unknown value \"" + s + "\" (" + list + ")");
  }
  return s;
}

// image-classification answer for one image, as the transformers pipeline: [{"label", "score"}], best first.
ojson classify_answer(const ModelOutput& o, const ModelInfo& info, int top_k, const std::string& fn) {
  const Tensor logits = o.logits.to_f32();
  const int64_t C = logits.dim(1);
  const int k = static_cast<int>(std::min<int64_t>(top_k, C));
  ojson a = ojson::array();
  // The pipeline's default (softmax, or sigmoid for one label) is vtx::top_k_predictions: same numbers as vtx classify.
  if (fn.empty() || (fn == "softmax" && C > 1) || (fn == "sigmoid" && C == 1)) {
    const auto preds = top_k_predictions(logits, info.id2label, k);
    for (const auto& p : preds[0]) a.push_back({{"label", p.label}, {"score", p.score}});
    return a;
  }
  const float* x = logits.data<float>();
  std::vector<float> s(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c)
    s[c] = fn == "sigmoid" ? 1.0f / (1.0f + std::exp(-x[c])) : fn == "softmax" ? 1.0f : x[c];
  std::vector<int64_t> idx(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) idx[c] = c;
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t p, int64_t q) { return s[p] > s[q]; });
  for (int i = 0; i < k; ++i) {
    const int64_t c = idx[i];
    a.push_back({{"label", label_of(info, c)}, {"score", s[c]}});
  }
  return a;
}

// depth-estimation answer: depth at the original size and an 8-bit PNG of it, as the transformers pipeline
// ((d - min) / (max - min) * 255, truncated to uint8).
// {"predicted_depth": [[...]], "depth": "<base64 PNG>"} as JSON text: the depth map at the image's size and the
// transformers pipeline's gray picture of it (vtx::depth_to_image).
void append_depth_answer(std::string& out, const ModelOutput& o, int height, int width, const Post& post) {
  Tensor d = post_process_depth_estimation(o.predicted_depth, 0, height, width);
  const Image img = depth_to_image(d);
  std::vector<uint8_t> px(static_cast<size_t>(d.numel()));
  for (size_t i = 0; i < px.size(); ++i) px[i] = img.rgb[3 * i];
  const std::string png = encode_png_gray8(px.data(), width, height);
  out.reserve(out.size() + px.size() * 12 + png.size() * 4 / 3 + 64);
  out += "{\"predicted_depth\":";
  append_nested_split(out, d.data<float>(), {height, width}, post);
  out += ",\"depth\":\"" + base64_encode(png.data(), png.size()) + "\"}";
}

// image-segmentation answer (subtask "semantic"), as transformers' ImageSegmentationPipeline and the Inference
// API: the label map at the original size (post_process_semantic_segmentation, as vtx segment), then one entry per
// class present in it, ascending class id (np.unique): {"score": null, "label": id2label[c], "mask": base64 PNG,
// mode L, 255 where the label map is c, else 0}.
ojson segment_answer(const ModelOutput& o, const ModelInfo& info, int height, int width) {
  const Tensor map = post_process_semantic_segmentation(o.logits.to_f32(), 0, height, width);
  const int64_t* m = map.data<int64_t>();
  const int64_t n = map.numel();
  const std::set<int64_t> present(m, m + n);
  std::vector<uint8_t> px(static_cast<size_t>(n));
  ojson a = ojson::array();
  for (const int64_t c : present) {
    for (int64_t i = 0; i < n; ++i) px[i] = m[i] == c ? 255 : 0;
    const std::string png = encode_png_gray8(px.data(), width, height);
    a.push_back({{"score", nullptr}, {"label", label_of(info, c)}, {"mask", base64_encode(png.data(), png.size())}});
  }
  return a;
}

std::vector<std::string> default_outputs(const ServedModel& m) {
  std::vector<std::string> r;
  const Task task = m.info().task;
  for (const auto& [name, shape] : m.outputs) {
    const bool fmap = name.rfind("feature_maps.", 0) == 0;
    if ((task == Task::Classification && name == "logits") || (task == Task::DepthEstimation && name == "predicted_depth") ||
        (task == Task::Backbone && fmap) || (task == Task::MaskedImageModeling && name == "reconstruction") ||
        (task == Task::SemanticSegmentation && name == "logits") ||
        ((task == Task::Features || task == Task::MaskedImageModeling) && (name == "last_hidden_state" || name == "pooler_output")))
      r.push_back(name);
  }
  if (r.empty() && !m.outputs.empty()) r.push_back(m.outputs[0].first);
  return r;
}

Tensor output_by_name(const ModelOutput& o, const std::string& name) {
  for (auto& [n, t] : o.named())
    if (n == name) return t;
  return Tensor();
}

std::string dtype_of(const ServedModel& m) {
  if (m.info().weights == WeightType::Int8 || m.info().weights == WeightType::Int4) return weight_type_name(m.info().weights);
  std::string r;
  for (const auto& [dt, n] : m.info().dtype_counts) r += (r.empty() ? "" : "+") + dt;
  return r.empty() ? "F32" : r;
}

}  // namespace

std::string Service::route_of(const std::string& method, const std::string& path) {
  const auto p = split_path(path.substr(0, path.find('?')));
  if (p.empty()) return "/";
  if (p.size() == 1 && (p[0] == "predict" || p[0] == "health" || p[0] == "info" || p[0] == "metrics")) return "/" + p[0];
  if (p.size() == 2 && p[0] == "models") return "/models/{name}";
  if (p.size() == 2 && p[0] == "v1" && p[1] == "embeddings") return "/v1/embeddings";
  if (!p.empty() && p[0] == "v2") {
    if (p.size() == 1) return "/v2";
    if (p.size() == 3 && p[1] == "health") return "/v2/health/" + (p[2] == "live" || p[2] == "ready" ? p[2] : "other");
    if (p.size() >= 3 && p[1] == "models") {
      const std::string last = p.back();
      if (last == "infer") return "/v2/models/{name}/infer";
      if (last == "ready") return "/v2/models/{name}/ready";
      return "/v2/models/{name}";
    }
  }
  return "other";
}

std::shared_ptr<Pending> Service::handle(Request req, std::function<void(Response)> deliver) {
  auto pending = std::make_shared<Pending>(std::move(deliver));
  Response r;
  bool async = false;
  try {
    r = dispatch(req, pending, async);
    if (async) return pending;  // submitted: the engine answers
  } catch (const HttpError& e) {
    r = error_response(e.status, e.type, e.what());
    r.headers = e.headers;
  } catch (const Error& e) {
    r = error_response(400, "invalid_input", e.what());
  } catch (const std::bad_alloc&) {
    r = error_response(503, "out_of_memory", "out of memory");
  } catch (const std::exception& e) {
    r = error_response(500, "internal", e.what());
  }
  pending->answer(std::move(r));
  return pending;
}

ServedModel* Service::model_or_404(const std::string& name) const {
  ServedModel* m = engine_.find(name);
  if (!m) {
    std::string list;
    for (const auto& x : engine_.models()) list += (list.empty() ? "" : ", ") + x->name;
    throw HttpError(404, "unknown_model", "unknown model '" + name + "' (served: " + list + ")");
  }
  return m;
}

void Service::check_serving() const {
  if (state_ == State::Loading) throw HttpError(503, "unavailable", "the server is loading its models", {{"Retry-After", "1"}});
  if (state_ == State::Draining) throw HttpError(503, "unavailable", "the server is shutting down");
}

Response Service::dispatch(Request& req, const std::shared_ptr<Pending>& pending, bool& async) {
  const std::string path = req.target.substr(0, req.target.find('?'));
  const auto p = split_path(path);
  const std::string route = route_of(req.method, req.target);
  const bool is_get = req.method == "GET" || req.method == "HEAD", is_post = req.method == "POST";

  // Authentication: every route but the probes and /metrics (those too with --protect-metrics).
  const bool open = route == "/health" || route == "/metrics" || route == "/v2/health/live" || route == "/v2/health/ready";
  if (!opt_.api_key.empty() && (!open || opt_.protect_metrics)) {
    std::string token;
    if (req.authorization.size() > 7 && lower(req.authorization.substr(0, 7)) == "bearer ") token = req.authorization.substr(7);
    if (!constant_time_equal(token, opt_.api_key))
      throw HttpError(401, "unauthorized",
                      req.authorization.empty() ? "missing Authorization: Bearer <api key>" : "invalid API key",
                      {{"WWW-Authenticate", "Bearer"}});
  }
  auto method_not_allowed = [&](const char* allow) {
    return HttpError(405, "method_not_allowed", req.method + " " + path + ": method not allowed (use " + allow + ")",
                     {{"Allow", allow}});
  };

  if (route == "/health") {
    if (!is_get) throw method_not_allowed("GET");
    const State s = state_;
    if (s == State::Ready) return json_response({{"status", "ok"}});
    return json_response({{"status", s == State::Loading ? "loading" : "draining"}}, 503);
  }
  if (route == "/info") {
    if (!is_get) throw method_not_allowed("GET");
    if (state_ == State::Loading) check_serving();
    return info();
  }
  if (route == "/metrics") {
    if (!is_get) throw method_not_allowed("GET");
    Response r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = metrics_.render();
    return r;
  }
  if (route == "/v2/health/live") {
    if (!is_get) throw method_not_allowed("GET");
    return json_response({{"live", true}});
  }
  if (route == "/v2/health/ready") {
    if (!is_get) throw method_not_allowed("GET");
    const bool ready = state_ == State::Ready;
    return json_response({{"ready", ready}}, ready ? 200 : 503);
  }
  if (route == "/v2") {
    if (!is_get) throw method_not_allowed("GET");
    return json_response({{"name", "vtx"}, {"version", VTX_VERSION_STRING}, {"extensions", ojson::array()}});
  }
  if (route.rfind("/v2/models/", 0) == 0) {
    // /v2/models/{name}[/versions/{v}][/ready|/infer]
    const std::string& name = p[2];
    size_t rest = 3;
    if (p.size() >= 5 && p[3] == "versions") rest = 5;
    const std::string tail = p.size() > rest ? p[rest] : "";
    if (p.size() > rest + 1 || (!tail.empty() && tail != "ready" && tail != "infer"))
      throw HttpError(404, "not_found", "no route " + path);
    if (state_ == State::Loading) check_serving();
    ServedModel* m = model_or_404(name);
    if (rest == 5 && p[4] != "1")
      throw HttpError(404, "unknown_model", "model '" + name + "' has no version '" + p[4] + "' (only \"1\")");
    if (tail == "ready") {
      if (!is_get) throw method_not_allowed("GET");
      const bool ready = state_ == State::Ready;
      return json_response({{"name", m->name}, {"ready", ready}}, ready ? 200 : 503);
    }
    if (tail == "infer") {
      if (!is_post) throw method_not_allowed("POST");
      async = true;
      return kserve_infer(req, m, pending);
    }
    if (!is_get) throw method_not_allowed("GET");
    return model_metadata(*m);
  }
  if (route == "/" || route == "/predict" || route == "/models/{name}") {
    if (!is_post) throw method_not_allowed("POST");
    check_serving();
    ServedModel* m = route == "/models/{name}" ? model_or_404(p[1]) : engine_.models().front().get();
    async = true;
    return hf_predict(req, m, pending);
  }
  if (route == "/v1/embeddings") {
    if (!is_post) throw method_not_allowed("POST");
    check_serving();
    async = true;
    return openai_embeddings(req, pending);
  }
  throw HttpError(404, "not_found", "no route " + req.method + " " + path);
}

// ---- Hugging Face Inference API ------------------------------------------------------------------------

Response Service::hf_predict(Request& req, ServedModel* m, const std::shared_ptr<Pending>& pending) {
  auto job = std::make_shared<Job>();
  job->model = m;
  job->pending = pending;
  const std::string type = media_type(req.content_type);
  const std::string task = pipeline_task(m->info());
  json params = json::object();
  bool many = false;
  const bool looks_json = type.empty() && !req.body.empty() && req.body.find_first_not_of(" \t\r\n") != std::string::npos &&
                          (req.body[req.body.find_first_not_of(" \t\r\n")] == '{');
  if (type == "application/json" || looks_json) {
    json j = parse_json(req.body);
    req.body.clear();
    if (!j.is_object() || !j.contains("inputs"))
      throw HttpError(400, "invalid_input", "JSON body must be an object {\"inputs\": \"<base64 image or data URI>\", \"parameters\": {...}}");
    for (auto it = j.begin(); it != j.end(); ++it)
      if (it.key() != "inputs" && it.key() != "parameters" && it.key() != "options")
        throw HttpError(400, "invalid_parameter", "unknown field '" + it.key() + "' (inputs, parameters, options)");
    const json& in = j["inputs"];
    if (in.is_string()) {
      job->encoded.push_back(decode_image_string(in.get_ref<const std::string&>(), "inputs"));
    } else if (in.is_array() && !in.empty()) {
      many = true;
      if (static_cast<int>(in.size()) > opt_.max_images_per_request)
        throw HttpError(413, "too_many_images", std::to_string(in.size()) + " images in one request exceeds --max-images-per-request " +
                                                    std::to_string(opt_.max_images_per_request));
      for (size_t i = 0; i < in.size(); ++i) {
        if (!in[i].is_string()) throw HttpError(400, "invalid_input", "inputs[" + std::to_string(i) + "] must be a string");
        job->encoded.push_back(decode_image_string(in[i].get_ref<const std::string&>(), "inputs[" + std::to_string(i) + "]"));
      }
    } else {
      throw HttpError(400, "invalid_input", "\"inputs\" must be a base64 image or data URI (or a non-empty list of them)");
    }
    if (j.contains("parameters") && !j["parameters"].is_null()) params = j["parameters"];
  } else if (type == "application/octet-stream" || type.rfind("image/", 0) == 0 || type.empty()) {
    static const std::vector<std::string> ok = {"image/jpeg", "image/jpg", "image/pjpeg", "image/png", "image/webp",
                                                "image/bmp", "image/x-ms-bmp", "image/x-bmp"};
    if (!type.empty() && type != "application/octet-stream" && std::find(ok.begin(), ok.end(), type) == ok.end())
      throw HttpError(415, "unsupported_media_type",
                      "unsupported image type " + type + " (image/jpeg, image/png, image/webp, image/bmp)");
    if (req.body.empty()) throw HttpError(400, "invalid_image", "empty request body (send the image bytes)");
    job->encoded.push_back(std::move(req.body));
  } else {
    throw HttpError(415, "unsupported_media_type",
                    "unsupported Content-Type " + type +
                        " (raw image bytes as image/jpeg|png|webp|bmp or application/octet-stream, or application/json)");
  }

  const ModelInfo& info = m->info();
  if (task == "image-classification") {
    check_known(params, {"top_k", "function_to_apply"}, task);
    int top_k = 5;
    std::string fn;
    if (auto v = param(params, "top_k")) top_k = int_param(*v, "top_k", 1, 1 << 30);
    if (auto v = param(params, "function_to_apply")) fn = string_param(*v, "function_to_apply", {"softmax", "sigmoid", "none"});
    job->respond = [top_k, fn, many](Job& jb) {
      ojson all = ojson::array();
      for (const auto& o : jb.outputs) all.push_back(classify_answer(o.out, jb.model->info(), top_k, fn));
      return json_response(many ? all : all[0]);
    };
  } else if (task == "depth-estimation") {
    check_known(params, {}, task);
    job->respond = [many, post = pool_post()](Job& jb) {
      Response r;
      if (many) r.body += '[';
      for (size_t i = 0; i < jb.outputs.size(); ++i) {
        if (i) r.body += ',';
        append_depth_answer(r.body, jb.outputs[i].out, jb.sizes[i].first, jb.sizes[i].second, post);
      }
      if (many) r.body += ']';
      return r;
    };
  } else if (task == "image-segmentation") {
    // The Inference API's image-segmentation parameters. A semantic model has one subtask; transformers ignores the
    // thresholds for it (they only reach the panoptic / instance post-processing), and so does vtx.
    check_known(params, {"subtask", "threshold", "mask_threshold", "overlap_mask_area_threshold"}, task);
    if (auto v = param(params, "subtask")) {
      if (!v->is_string()) throw HttpError(400, "invalid_parameter", "subtask must be a string");
      if (v->get<std::string>() != "semantic")
        throw HttpError(400, "invalid_parameter",
                        "subtask \"" + v->get<std::string>() + "\" is not supported by model '" + m->name + "' (" +
                            info.architecture + " is a semantic segmentation model: subtask \"semantic\")");
    }
    for (const char* k : {"threshold", "mask_threshold", "overlap_mask_area_threshold"})
      if (auto v = param(params, k); v && !v->is_number())
        throw HttpError(400, "invalid_parameter", std::string(k) + " must be a number");
    job->respond = [many](Job& jb) {
      ojson all = ojson::array();
      for (size_t i = 0; i < jb.outputs.size(); ++i)
        all.push_back(segment_answer(jb.outputs[i].out, jb.model->info(), jb.sizes[i].first, jb.sizes[i].second));
      return json_response(many ? all : all[0]);
    };
  } else {
    check_known(params, {"pool"}, task);
    Pool pool = Pool::Tokens;
    if (auto v = param(params, "pool"))
      pool = parse_pool(string_param(*v, "pool", {"cls", "mean", "cls+mean", "patch", "tokens", "pooler"}));
    if (pool == Pool::Pooler && std::none_of(m->outputs.begin(), m->outputs.end(), [](auto& o) { return o.first == "pooler_output"; }))
      throw HttpError(400, "invalid_parameter", "pool: model '" + m->name + "' (" + info.architecture + ") has no pooler_output");
    job->respond = [pool, many, post = pool_post()](Job& jb) {
      Response r;
      r.status = 200;
      if (many) r.body += '[';
      for (size_t i = 0; i < jb.outputs.size(); ++i) {
        Tensor e = pool_embeddings(jb.outputs[i].out, jb.model->info(), pool);
        if (i) r.body += ',';
        r.body.reserve(r.body.size() + static_cast<size_t>(e.numel()) * 12 + 16);
        append_nested_split(r.body, e.data<float>(), e.shape(), post);
      }
      if (many) r.body += ']';
      return r;
    };
  }
  engine_.submit(job);
  return Response{};
}

// ---- Open Inference Protocol (KServe v2) ---------------------------------------------------------------

Response Service::model_metadata(const ServedModel& m) const {
  const auto& in = m.input_shape;
  ojson inputs = ojson::array();
  inputs.push_back({{"name", "pixel_values"}, {"datatype", "FP32"}, {"shape", {-1, 3, -1, -1}}});
  if (m.has_processor) inputs.push_back({{"name", "image"}, {"datatype", "BYTES"}, {"shape", {-1}}});
  ojson outputs = ojson::array();
  for (const auto& [name, shape] : m.outputs) {
    std::vector<int64_t> s = shape;
    s[0] = -1;
    if (name == "predicted_depth" || name == "reconstruction") {
      for (size_t d = 1; d < s.size(); ++d)
        if (!(name == "reconstruction" && d == 1)) s[d] = -1;
    } else if (s.size() == 3) {
      s[1] = -1;  // tokens depend on the input size
    } else if (s.size() == 4) {
      s[2] = s[3] = -1;
    }
    outputs.push_back({{"name", name}, {"datatype", "FP32"}, {"shape", s}});
  }
  return json_response({{"name", m.name},
                        {"versions", {"1"}},
                        {"platform", "vtx"},
                        {"inputs", inputs},
                        {"outputs", outputs},
                        {"parameters", {{"architecture", m.info().architecture},
                                        {"task", pipeline_task(m.info())},
                                        {"preprocessed_shape", {in.size() == 3 ? 3 : 0, in.size() == 3 ? in[1] : 0, in.size() == 3 ? in[2] : 0}},
                                        {"default_outputs", default_outputs(m)}}}});
}

namespace {
void flatten_numbers(const json& v, std::vector<float>& out, size_t limit) {
  if (v.is_array()) {
    for (const auto& x : v) flatten_numbers(x, out, limit);
    return;
  }
  if (!v.is_number()) throw HttpError(400, "invalid_tensor", "FP32 data must hold numbers only");
  if (out.size() >= limit) throw HttpError(400, "invalid_tensor", "data holds more values than the shape");
  out.push_back(v.get<float>());
}
void flatten_strings(const json& v, std::vector<const std::string*>& out) {
  if (v.is_array()) {
    for (const auto& x : v) flatten_strings(x, out);
    return;
  }
  if (!v.is_string()) throw HttpError(400, "invalid_tensor", "BYTES data must hold strings (base64 images or data URIs)");
  out.push_back(&v.get_ref<const std::string&>());
}
}  // namespace

Response Service::kserve_infer(Request& req, ServedModel* m, const std::shared_ptr<Pending>& pending) {
  check_serving();
  const std::string type = media_type(req.content_type);
  if (type == "application/octet-stream")
    throw HttpError(415, "unsupported_media_type",
                    "the binary tensor extension is not supported: send JSON tensors (tritonclient: binary_data=False)");
  if (!type.empty() && type != "application/json")
    throw HttpError(415, "unsupported_media_type", "unsupported Content-Type " + type + " (application/json)");
  json j = parse_json(req.body);
  req.body.clear();
  if (!j.is_object()) throw HttpError(400, "invalid_input", "infer request must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it)
    if (it.key() != "id" && it.key() != "inputs" && it.key() != "outputs" && it.key() != "parameters")
      throw HttpError(400, "invalid_parameter", "unknown field '" + it.key() + "' (id, inputs, outputs, parameters)");
  if (!j.contains("inputs") || !j["inputs"].is_array() || j["inputs"].size() != 1)
    throw HttpError(400, "invalid_input", "\"inputs\" must hold exactly one tensor: pixel_values (FP32 [B,3,H,W]) or image (BYTES [B])");
  const json& in = j["inputs"][0];
  if (!in.is_object() || !in.contains("name") || !in.contains("shape") || !in.contains("datatype") || !in.contains("data"))
    throw HttpError(400, "invalid_tensor", "each input needs \"name\", \"shape\", \"datatype\" and \"data\"");
  if (!in["datatype"].is_string() || !in["name"].is_string())
    throw HttpError(400, "invalid_tensor", "input name and datatype must be strings");
  const std::string name = in["name"], dtype = in["datatype"];
  std::vector<int64_t> shape;
  if (!in["shape"].is_array()) throw HttpError(400, "invalid_tensor", "input shape must be a list of integers");
  for (const auto& d : in["shape"]) {
    if (!d.is_number_integer() || d.get<int64_t>() < 1)
      throw HttpError(400, "invalid_tensor", "input shape must be a list of positive integers");
    shape.push_back(d.get<int64_t>());
  }
  auto shape_text = [&] {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
    return s + "]";
  };
  if (in.contains("parameters") && in["parameters"].is_object() && in["parameters"].contains("binary_data_size"))
    throw HttpError(400, "invalid_tensor", "the binary tensor extension is not supported: send the data in JSON");

  auto job = std::make_shared<Job>();
  job->model = m;
  job->pending = pending;
  if (dtype == "FP32") {
    if (shape.size() != 4 || shape[1] != 3)
      throw HttpError(400, "invalid_tensor", "input '" + name + "': FP32 pixel_values must have shape [B,3,H,W], got " + shape_text());
    if (shape[0] > opt_.max_images_per_request)
      throw HttpError(413, "too_many_images", "batch of " + std::to_string(shape[0]) + " exceeds --max-images-per-request " +
                                                  std::to_string(opt_.max_images_per_request));
    if (shape[2] * shape[3] > opt_.max_image_pixels)
      throw HttpError(413, "image_too_large", "input '" + name + "': " + std::to_string(shape[2]) + "x" + std::to_string(shape[3]) +
                                                  " exceeds --max-image-pixels " + std::to_string(opt_.max_image_pixels));
    const int64_t p = m->info().patch_size;
    if (p > 0 && (shape[2] < p || shape[3] < p))
      throw HttpError(400, "invalid_tensor", "input '" + name + "': " + shape_text() + " is smaller than one " +
                                                 std::to_string(p) + "x" + std::to_string(p) + " patch");
    const int64_t n = shape[0] * 3 * shape[2] * shape[3];
    std::vector<float> data;
    data.reserve(static_cast<size_t>(n));
    flatten_numbers(in["data"], data, static_cast<size_t>(n));
    if (static_cast<int64_t>(data.size()) != n)
      throw HttpError(400, "invalid_tensor", "input '" + name + "': shape " + shape_text() + " needs " + std::to_string(n) +
                                                 " values, data has " + std::to_string(data.size()));
    job->pixel_values = Tensor::from_data(shape, data.data());
  } else if (dtype == "BYTES") {
    if (shape.empty() || shape.size() > 2 || (shape.size() == 2 && shape[1] != 1))
      throw HttpError(400, "invalid_tensor", "input '" + name + "': BYTES images must have shape [B] or [B,1], got " + shape_text());
    if (shape[0] > opt_.max_images_per_request)
      throw HttpError(413, "too_many_images", "batch of " + std::to_string(shape[0]) + " exceeds --max-images-per-request " +
                                                  std::to_string(opt_.max_images_per_request));
    std::vector<const std::string*> items;
    flatten_strings(in["data"], items);
    if (static_cast<int64_t>(items.size()) != shape[0])
      throw HttpError(400, "invalid_tensor", "input '" + name + "': shape " + shape_text() + " needs " + std::to_string(shape[0]) +
                                                 " strings, data has " + std::to_string(items.size()));
    for (size_t i = 0; i < items.size(); ++i)
      job->encoded.push_back(decode_image_string(*items[i], "input '" + name + "'[" + std::to_string(i) + "]"));
  } else {
    throw HttpError(400, "invalid_tensor",
                    "input '" + name + "': datatype " + dtype + " is not supported (FP32 pixel_values or BYTES images)");
  }

  std::vector<std::string> wanted;
  if (j.contains("outputs")) {
    if (!j["outputs"].is_array()) throw HttpError(400, "invalid_parameter", "\"outputs\" must be a list of {\"name\": ...}");
    for (const auto& o : j["outputs"]) {
      if (!o.is_object() || !o.contains("name") || !o["name"].is_string())
        throw HttpError(400, "invalid_parameter", "each requested output needs a \"name\"");
      const std::string on = o["name"];
      if (std::none_of(m->outputs.begin(), m->outputs.end(), [&](auto& x) { return x.first == on; })) {
        std::string list;
        for (const auto& x : m->outputs) list += (list.empty() ? "" : ", ") + x.first;
        throw HttpError(400, "invalid_parameter", "unknown output '" + on + "' (available: " + list + ")");
      }
      wanted.push_back(on);
    }
  }
  if (wanted.empty()) wanted = default_outputs(*m);
  std::string id;
  if (j.contains("id")) {
    if (!j["id"].is_string()) throw HttpError(400, "invalid_parameter", "\"id\" must be a string");
    id = j["id"];
  }
  job->respond = [wanted, id](Job& jb) {
    ojson outs = ojson::array();
    for (const auto& name : wanted) {
      std::vector<Tensor> rows;
      for (const auto& o : jb.outputs) rows.push_back(output_by_name(o.out, name).to_f32());
      std::vector<int64_t> shape = rows[0].shape();
      for (const auto& r : rows)
        if (r.shape() != rows[0].shape())
          throw HttpError(400, "invalid_input", "output '" + name + "' has different shapes for the request's images (" +
                                                    rows[0].shape_str() + " vs " + r.shape_str() + "); send them separately");
      shape[0] = static_cast<int64_t>(rows.size());
      ojson data = ojson::array();
      auto& arr = data.get_ref<ojson::array_t&>();
      arr.reserve(static_cast<size_t>(rows[0].numel()) * rows.size());
      for (const auto& r : rows)
        for (int64_t i = 0; i < r.numel(); ++i) arr.emplace_back(r.data<float>()[i]);
      outs.push_back({{"name", name}, {"datatype", "FP32"}, {"shape", shape}, {"data", std::move(data)}});
    }
    ojson r = {{"model_name", jb.model->name}, {"model_version", "1"}, {"outputs", std::move(outs)}};
    if (!id.empty()) r["id"] = id;
    return json_response(r);
  };
  engine_.submit(job);
  return Response{};
}

// ---- OpenAI-style embeddings ----------------------------------------------------------------------------

Response Service::openai_embeddings(Request& req, const std::shared_ptr<Pending>& pending) {
  const std::string type = media_type(req.content_type);
  if (!type.empty() && type != "application/json")
    throw HttpError(415, "unsupported_media_type", "unsupported Content-Type " + type + " (application/json)");
  json j = parse_json(req.body);
  req.body.clear();
  if (!j.is_object()) throw HttpError(400, "invalid_input", "request must be a JSON object {\"model\", \"input\"}");
  for (auto it = j.begin(); it != j.end(); ++it)
    if (it.key() != "model" && it.key() != "input" && it.key() != "encoding_format" && it.key() != "user" && it.key() != "pool")
      throw HttpError(400, "invalid_parameter", "unknown field '" + it.key() + "' (model, input, encoding_format, pool, user)");
  ServedModel* m = nullptr;
  if (j.contains("model") && !j["model"].is_null()) {
    if (!j["model"].is_string()) throw HttpError(400, "invalid_parameter", "\"model\" must be a string");
    m = model_or_404(j["model"]);
  } else if (engine_.models().size() == 1) {
    m = engine_.models().front().get();
  } else {
    throw HttpError(400, "invalid_parameter", "\"model\" is required when several models are served");
  }
  if (m->info().task == Task::DepthEstimation || m->info().task == Task::Backbone ||
      m->info().task == Task::SemanticSegmentation)
    throw HttpError(400, "invalid_parameter", "model '" + m->name + "' (" + m->info().architecture + ") does not produce embeddings");
  bool b64 = false;
  if (j.contains("encoding_format") && !j["encoding_format"].is_null())
    b64 = string_param(j["encoding_format"], "encoding_format", {"float", "base64"}) == "base64";
  Pool pool = Pool::Cls;
  if (j.contains("pool") && !j["pool"].is_null())
    pool = parse_pool(string_param(j["pool"], "pool", {"cls", "mean", "cls+mean", "pooler"}));
  if (pool == Pool::Pooler && std::none_of(m->outputs.begin(), m->outputs.end(), [](auto& o) { return o.first == "pooler_output"; }))
    throw HttpError(400, "invalid_parameter", "pool: model '" + m->name + "' has no pooler_output");
  if (!j.contains("input")) throw HttpError(400, "invalid_input", "\"input\" is required (a base64 image or data URI, or a list of them)");
  auto job = std::make_shared<Job>();
  job->model = m;
  job->pending = pending;
  const json& in = j["input"];
  if (in.is_string()) {
    job->encoded.push_back(decode_image_string(in.get_ref<const std::string&>(), "input"));
  } else if (in.is_array() && !in.empty()) {
    if (static_cast<int>(in.size()) > opt_.max_images_per_request)
      throw HttpError(413, "too_many_images", std::to_string(in.size()) + " images in one request exceeds --max-images-per-request " +
                                                  std::to_string(opt_.max_images_per_request));
    for (size_t i = 0; i < in.size(); ++i) {
      if (!in[i].is_string()) throw HttpError(400, "invalid_input", "input[" + std::to_string(i) + "] must be a string");
      job->encoded.push_back(decode_image_string(in[i].get_ref<const std::string&>(), "input[" + std::to_string(i) + "]"));
    }
  } else {
    throw HttpError(400, "invalid_input", "\"input\" must be a base64 image or data URI, or a non-empty list of them");
  }
  job->respond = [pool, b64](Job& jb) {
    ojson data = ojson::array();
    int64_t tokens = 0;
    for (size_t i = 0; i < jb.outputs.size(); ++i) {
      const ModelOutput& o = jb.outputs[i].out;
      Tensor e = pool_embeddings(o, jb.model->info(), pool);
      if (!o.last_hidden_state.empty()) tokens += o.last_hidden_state.dim(1);
      ojson item = {{"object", "embedding"}, {"index", static_cast<int64_t>(i)}};
      if (b64) item["embedding"] = base64_encode(e.data<float>(), e.nbytes());
      else item["embedding"] = flat(e.data<float>(), e.numel());
      data.push_back(std::move(item));
    }
    return json_response({{"object", "list"}, {"data", std::move(data)}, {"model", jb.model->name},
                          {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}});
  };
  engine_.submit(job);
  return Response{};
}

// ---- operations -----------------------------------------------------------------------------------------

Response Service::info() const {
  ojson models = ojson::array();
  for (const auto& mp : engine_.models()) {
    const ServedModel& m = *mp;
    const ModelInfo& i = m.info();
    ojson labels = ojson::array();
    for (const auto& l : i.id2label) labels.push_back(l);
    models.push_back({{"name", m.name},
                      {"source", m.source},
                      {"path", m.dir},
                      {"hub_id", m.hub_id.empty() ? ojson() : ojson(m.hub_id)},
                      {"commit", m.commit.empty() ? ojson() : ojson(m.commit)},
                      {"model_type", i.model_type},
                      {"architecture", i.architecture},
                      {"task", pipeline_task(i)},
                      {"dtype", dtype_of(m)},
                      {"weights", weight_type_name(i.weights)},
                      {"compute", compute_type_name(i.compute)},
                      {"task_head", task_name(i.task)},
                      {"metric_depth", i.metric_depth},
                      {"num_parameters", i.num_parameters},
                      {"hidden_size", i.hidden_size},
                      {"num_layers", i.num_layers},
                      {"image_size", i.image_size},
                      {"patch_size", i.patch_size},
                      {"num_labels", static_cast<int64_t>(i.id2label.size())},
                      {"input_shape", m.input_shape},
                      {"image_processor", m.has_processor ? ojson(m.processor.config().type) : ojson()}});
  }
  const State s = state_;
  return json_response(
      {{"name", "vtx"},
       {"version", VTX_VERSION_STRING},
       {"state", s == State::Ready ? "ready" : s == State::Loading ? "loading" : "draining"},
       {"models", models},
       {"batching", {{"max_batch_size", opt_.max_batch_size}, {"max_batch_delay_ms", opt_.max_batch_delay_ms},
                     {"preprocess_threads", opt_.preprocess_threads},
                     {"preprocess_nice", opt_.preprocess_nice}, {"inference_threads", num_threads()}}},
       {"limits", {{"max_payload_bytes", opt_.max_payload_bytes}, {"max_header_bytes", opt_.max_header_bytes},
                   {"max_queue", opt_.max_queue}, {"max_image_pixels", opt_.max_image_pixels},
                   {"max_images_per_request", opt_.max_images_per_request}, {"request_timeout_ms", opt_.request_timeout_ms},
                   {"header_timeout_ms", opt_.header_timeout_ms}, {"idle_timeout_ms", opt_.idle_timeout_ms},
                   {"max_connections", opt_.max_connections}}},
       {"auth", !opt_.api_key.empty()}});
}

}  // namespace vtx::server
