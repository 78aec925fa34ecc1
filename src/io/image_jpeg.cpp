// JPEG decoding with libjpeg-turbo, set up exactly like Pillow's JpegDecode.c: libjpeg defaults (JDCT_ISLOW,
// fancy upsampling), output colour space from the component count (1 -> L, 3 -> RGB, 4 -> CMYK read with
// Adobe's inverted convention "CMYK;I"). libjpeg errors longjmp back into small C-style functions that hold no
// C++ objects, so no destructor is ever skipped.
#include <csetjmp>
#include <cstdio>
#include <cstring>

// clang-format off
#include <jpeglib.h>
#include <jerror.h>
// clang-format on

#include "io/image_decode.hpp"

namespace vtx::io {
namespace {

struct JpegJob {
  jpeg_decompress_struct cinfo;
  jpeg_error_mgr err;
  jpeg_progress_mgr progress;
  int max_scans;
  jmp_buf jb;
  char msg[JMSG_LENGTH_MAX + 32];
};

JpegJob* job_of(j_common_ptr c) { return reinterpret_cast<JpegJob*>(c->client_data); }

extern "C" void jpeg_on_error(j_common_ptr c) {
  JpegJob* j = job_of(c);
  (*c->err->format_message)(c, j->msg);
  longjmp(j->jb, 1);
}

// Warnings (corrupt data that libjpeg recovers from: bad Huffman codes, premature markers, extraneous bytes)
// are ignored, as Pillow's JpegDecode.c does (its output_message is empty, decoding goes on with what libjpeg
// reconstructs), except running out of data: Pillow then reports "image file is truncated". Each warning costs
// libjpeg work proportional to the data it skipped, so ignoring them is not a time bomb; scans are bounded by
// the progress monitor below.
extern "C" void jpeg_on_message(j_common_ptr c, int level) {
  if (level == -1 && c->err->msg_code == JWRN_JPEG_EOF) {
    JpegJob* j = job_of(c);
    std::snprintf(j->msg, sizeof j->msg, "image file is truncated");
    longjmp(j->jb, 1);
  }
}

// Called by libjpeg while it consumes input: a progressive file with more scans than the limit is refused
// (libjpeg-turbo's recommended defence against scan bombs; jpeg_start_decompress reads every scan).
extern "C" void jpeg_on_progress(j_common_ptr c) {
  JpegJob* j = job_of(c);
  if (!c->is_decompressor || j->max_scans <= 0) return;
  const int scans = reinterpret_cast<j_decompress_ptr>(c)->input_scan_number;
  if (scans > j->max_scans) {
    std::snprintf(j->msg, sizeof j->msg,
                  "progressive JPEG with more than %d scans (possible scan bomb; raise ImageLoadOptions::max_jpeg_scans "
                  "to allow it)",
                  j->max_scans);
    longjmp(j->jb, 1);
  }
}

bool read_header(JpegJob* j, const uint8_t* data, size_t size) {
  if (setjmp(j->jb)) return false;
  jpeg_create_decompress(&j->cinfo);  // keeps cinfo.err and cinfo.client_data, zeroes the rest
  j->cinfo.progress = &j->progress;
  jpeg_mem_src(&j->cinfo, data, static_cast<unsigned long>(size));
  jpeg_save_markers(&j->cinfo, JPEG_APP0 + 1, 0xFFFF);
  jpeg_read_header(&j->cinfo, TRUE);
  return true;
}

bool read_pixels(JpegJob* j, uint8_t* out, size_t row_bytes) {
  if (setjmp(j->jb)) return false;
  jpeg_start_decompress(&j->cinfo);
  if (static_cast<size_t>(j->cinfo.output_width) * j->cinfo.output_components != row_bytes) {
    std::snprintf(j->msg, sizeof j->msg, "unexpected decoder output layout");
    return false;
  }
  while (j->cinfo.output_scanline < j->cinfo.output_height) {
    JSAMPROW row = out + static_cast<size_t>(j->cinfo.output_scanline) * row_bytes;
    jpeg_read_scanlines(&j->cinfo, &row, 1);
  }
  return true;
}

// Owns the libjpeg state; destroyed on every path.
struct JpegHolder {
  JpegJob* j;
  JpegHolder() : j(new JpegJob) {
    std::memset(j, 0, sizeof *j);
    j->cinfo.err = jpeg_std_error(&j->err);
    j->cinfo.client_data = j;
    j->err.error_exit = jpeg_on_error;
    j->err.emit_message = jpeg_on_message;
    j->progress.progress_monitor = jpeg_on_progress;
  }
  ~JpegHolder() {
    jpeg_destroy_decompress(&j->cinfo);
    delete j;
  }
  JpegHolder(const JpegHolder&) = delete;
  JpegHolder& operator=(const JpegHolder&) = delete;
};

}  // namespace

Decoded decode_jpeg(const uint8_t* data, size_t size, const std::string& name, const ImageLoadOptions& opt) {
  JpegHolder h;
  JpegJob* j = h.j;
  j->max_scans = opt.max_jpeg_scans;
  if (!read_header(j, data, size)) fail(name, "invalid JPEG: ", j->msg);
  jpeg_decompress_struct& ci = j->cinfo;

  Decoded r;
  r.info.format = "JPEG";
  r.info.width = static_cast<int>(ci.image_width);
  r.info.height = static_cast<int>(ci.image_height);
  if (ci.data_precision != 8)
    throw Error(name + ": cannot handle " + std::to_string(ci.data_precision) + "-bit JPEG layers");
  switch (ci.num_components) {
    case 1: r.info.mode = std::string("L"); ci.out_color_space = JCS_GRAYSCALE; break;
    case 3: r.info.mode = std::string("RGB"); ci.out_color_space = JCS_RGB; break;
    case 4: r.info.mode = std::string("CMYK"); ci.out_color_space = JCS_CMYK; break;
    default: throw Error(name + ": cannot handle " + std::to_string(ci.num_components) + "-layer JPEG images");
  }
  check_dimensions(name, ci.image_width, ci.image_height, opt);
  for (jpeg_saved_marker_ptr m = ci.marker_list; m; m = m->next) {
    if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && std::memcmp(m->data, "Exif\0", 5) == 0) {
      r.exif.assign(m->data + 6, m->data + m->data_length);
      break;
    }
  }

  const int comps = ci.num_components;
  const size_t w = ci.image_width, hgt = ci.image_height;
  r.img = Image(static_cast<int>(w), static_cast<int>(hgt));
  if (comps == 3) {
    if (!read_pixels(j, r.img.rgb.data(), w * 3)) fail(name, "invalid JPEG: ", j->msg);
    return r;
  }
  std::vector<uint8_t> raw(w * hgt * comps);
  if (!read_pixels(j, raw.data(), w * comps)) fail(name, "invalid JPEG: ", j->msg);
  uint8_t* out = r.img.rgb.data();
  if (comps == 1) {
    for (size_t i = 0; i < w * hgt; ++i) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = raw[i];
  } else {
    for (uint8_t& v : raw) v = static_cast<uint8_t>(255 - v);  // "CMYK;I": Adobe stores inverted CMYK
    cmyk_to_rgb(raw.data(), out, w * hgt);
  }
  return r;
}

}  // namespace vtx::io
