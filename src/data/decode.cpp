// Image decode wrapper with the RELIABILITY.md 1.3 mitigations (size cap before reading, pixel cap
// from the header before decoding, RGB output with strides from 3) and the uint8 resampler. PNG
// goes through stb_image; JPEG through libjpeg-turbo, because fuzzing found stb 2.27's JPEG
// huffman-table parser writing past its arrays (DHT counts summing above 256; see
// tests/fuzz/corpus/fuzz_decode/regress-stb-dht-overflow.jpg). stb's failure reason is
// thread-local in 2.27 and libjpeg keeps all state per decoder, so OpenMP threads are fine.
#include "data/decode.hpp"

#include <jpeglib.h>
#include <stb_image.h>

#include <csetjmp>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>

namespace vit {

namespace {

// One output coordinate's taps along one axis: source indices [first, first + weights.size()).
struct Taps {
  int64_t first = 0;
  std::vector<float> weights;
};

std::vector<Taps> axis_taps(int64_t in, int64_t out, ResizeMode mode) {
  std::vector<Taps> taps(static_cast<size_t>(out));
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  for (int64_t o = 0; o < out; ++o) {
    Taps& t = taps[static_cast<size_t>(o)];
    if (mode == ResizeMode::Bilinear) {
      double src = (static_cast<double>(o) + 0.5) * scale - 0.5;
      if (src < 0) src = 0;
      int64_t i0 = static_cast<int64_t>(std::floor(src));
      double frac = src - static_cast<double>(i0);
      if (i0 >= in - 1) {
        i0 = in - 1;
        frac = 0;
      }
      t.first = i0;
      t.weights = {static_cast<float>(1.0 - frac)};
      if (frac > 0) t.weights.push_back(static_cast<float>(frac));
    } else {  // Area: exact overlap of [o*scale, (o+1)*scale) with each source pixel
      const double a = static_cast<double>(o) * scale, b = static_cast<double>(o + 1) * scale;
      const int64_t lo = static_cast<int64_t>(std::floor(a));
      const int64_t hi = std::min<int64_t>(in, static_cast<int64_t>(std::ceil(b)));
      t.first = lo;
      for (int64_t i = lo; i < hi; ++i) {
        const double overlap = std::min(b, static_cast<double>(i + 1)) - std::max(a, static_cast<double>(i));
        t.weights.push_back(static_cast<float>(overlap / scale));
      }
    }
  }
  return taps;
}

// libjpeg error handling: errors and warnings (corrupt or truncated data) both end the decode
// through longjmp back into decode_jpeg, with the library's message kept for the reason.
struct JpegError {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

extern "C" void jpeg_fail(j_common_ptr cinfo) {
  auto* e = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, e->message);
  std::longjmp(e->jump, 1);
}

extern "C" void jpeg_message(j_common_ptr cinfo, int level) {
  if (level < 0) jpeg_fail(cinfo);  // a warning: refuse rather than return gray-filled pixels
}

// Progressive files with thousands of scans cost CPU time per scan (libjpeg-turbo's scan limit).
constexpr int kJpegMaxScans = 500;
extern "C" void jpeg_scan_limit(j_common_ptr cinfo) {
  auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (d->is_decompressor && d->input_scan_number > kJpegMaxScans) {
    auto* e = reinterpret_cast<JpegError*>(cinfo->err);
    std::snprintf(e->message, sizeof e->message, "more than %d progressive scans", kJpegMaxScans);
    std::longjmp(e->jump, 1);
  }
}

// JPEG bytes -> RGB (h, w, 3) in `rgb`. The header's size is checked against the caps before any
// pixel buffer exists. Only trivially destructible locals live between setjmp and the library calls.
bool decode_jpeg(const uint8_t* bytes, size_t size, int64_t max_pixels, std::vector<uint8_t>& rgb, int& w, int& h,
                 std::string& reason) {
  jpeg_decompress_struct cinfo;
  JpegError err;
  jpeg_progress_mgr progress{};
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = jpeg_fail;
  err.pub.emit_message = jpeg_message;
  err.message[0] = '\0';
  progress.progress_monitor = jpeg_scan_limit;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    reason = std::string("decode failed: ") + err.message;
    return false;
  }
  jpeg_create_decompress(&cinfo);
  cinfo.progress = &progress;
  // Coefficient buffers of progressive files: about 2 bytes per pixel and component.
  cinfo.mem->max_memory_to_use = static_cast<long>(std::min<int64_t>(max_pixels, 1ll << 28) * 8 + (64ll << 20));
  jpeg_mem_src(&cinfo, bytes, static_cast<unsigned long>(size));
  jpeg_read_header(&cinfo, TRUE);
  w = static_cast<int>(cinfo.image_width);
  h = static_cast<int>(cinfo.image_height);
  if (w <= 0 || h <= 0 || w > 8192 || h > 8192 || static_cast<int64_t>(w) * h > max_pixels) {
    jpeg_destroy_decompress(&cinfo);
    reason = "image too large (" + std::to_string(w) + "x" + std::to_string(h) + " pixels > max_pixels " +
             std::to_string(max_pixels) + " or a side > 8192)";
    return false;
  }
  cinfo.out_color_space = JCS_RGB;  // gray is replicated, like stb's req_comp 3
  jpeg_start_decompress(&cinfo);
  if (cinfo.output_components != 3) {
    jpeg_destroy_decompress(&cinfo);
    reason = "decode failed: unsupported JPEG colour space";
    return false;
  }
  try {
    rgb.resize(static_cast<size_t>(w) * static_cast<size_t>(h) * 3);
  } catch (const std::bad_alloc&) {
    jpeg_destroy_decompress(&cinfo);
    reason = "out of memory decoding image";
    return false;
  }
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = rgb.data() + static_cast<size_t>(cinfo.output_scanline) * static_cast<size_t>(w) * 3;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return true;
}

uint8_t round_u8(float v) {
  const float r = std::floor(v + 0.5f);
  return static_cast<uint8_t>(r < 0.f ? 0.f : (r > 255.f ? 255.f : r));
}

// PNG chunk walk before stb sees the file; returns why it is refused, or nullptr. Both cases
// were found by fuzz_decode against stb 2.27 (regressions in tests/fuzz/corpus/fuzz_decode/):
// - a chunk whose length runs past the end of the file: stb grows its IDAT buffer to the claimed
//   length first (up to 4 GiB) and only then notices the missing bytes;
// - a zero-length IDAT before any data: stb passes a null buffer to memcpy (UB).
const char* png_chunk_problem(const uint8_t* bytes, size_t size) {
  for (size_t at = 8; at + 8 <= size;) {
    const uint32_t len = (uint32_t{bytes[at]} << 24) | (uint32_t{bytes[at + 1]} << 16) |
                         (uint32_t{bytes[at + 2]} << 8) | uint32_t{bytes[at + 3]};
    const bool idat = std::memcmp(bytes + at + 4, "IDAT", 4) == 0;
    if (idat && len == 0) return "unsupported PNG: zero-length IDAT chunk";
    if (len > size - at - 8) return "truncated PNG: a chunk runs past the end of the file";
    if (std::memcmp(bytes + at + 4, "IEND", 4) == 0) return nullptr;
    at += size_t{len} + 12;
  }
  return nullptr;
}

}  // namespace

void resize_u8(uint8_t* dst, int64_t dst_h, int64_t dst_w, const uint8_t* src, int64_t src_h,
               int64_t src_w, int64_t src_stride, int64_t channels, ResizeMode mode) {
  const int64_t C = channels;
  if (dst_h == src_h && dst_w == src_w) {
    for (int64_t y = 0; y < src_h; ++y)
      std::memcpy(dst + y * dst_w * C, src + y * src_stride, static_cast<size_t>(src_w * C));
    return;
  }
  const std::vector<Taps> tx = axis_taps(src_w, dst_w, mode), ty = axis_taps(src_h, dst_h, mode);
  // Horizontal pass: (src_h, dst_w, C) floats; then vertical pass into dst.
  std::vector<float> mid(static_cast<size_t>(src_h * dst_w * C));
  for (int64_t y = 0; y < src_h; ++y) {
    const uint8_t* row = src + y * src_stride;
    float* out = mid.data() + y * dst_w * C;
    for (int64_t x = 0; x < dst_w; ++x) {
      const Taps& t = tx[static_cast<size_t>(x)];
      for (int64_t c = 0; c < C; ++c) {
        float acc = 0;
        for (size_t k = 0; k < t.weights.size(); ++k)
          acc += t.weights[k] * static_cast<float>(row[(t.first + static_cast<int64_t>(k)) * C + c]);
        out[x * C + c] = acc;
      }
    }
  }
  for (int64_t y = 0; y < dst_h; ++y) {
    const Taps& t = ty[static_cast<size_t>(y)];
    for (int64_t i = 0; i < dst_w * C; ++i) {
      float acc = 0;
      for (size_t k = 0; k < t.weights.size(); ++k)
        acc += t.weights[k] * mid[static_cast<size_t>((t.first + static_cast<int64_t>(k)) * dst_w * C + i)];
      dst[y * dst_w * C + i] = round_u8(acc);
    }
  }
}

void rgb_to_gray_u8(uint8_t* dst, const uint8_t* rgb, int64_t pixels) {
  for (int64_t p = 0; p < pixels; ++p) {
    const uint32_t r = rgb[3 * p], g = rgb[3 * p + 1], b = rgb[3 * p + 2];
    dst[p] = static_cast<uint8_t>((299 * r + 587 * g + 114 * b + 500) / 1000);
  }
}

bool read_file_capped(const std::string& path, int64_t max_bytes, std::vector<uint8_t>& out,
                      std::string& reason) noexcept {
  try {
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!f) {
      reason = std::string("cannot open: ") + std::strerror(errno);
      return false;
    }
    // Read in chunks up to max_bytes + 1, so a file that grows or lies about its size is still capped.
    out.clear();
    const size_t cap = static_cast<size_t>(std::max<int64_t>(0, max_bytes));
    uint8_t chunk[65536];
    while (true) {
      const size_t want = std::min(sizeof(chunk), cap + 1 - out.size());
      const size_t got = std::fread(chunk, 1, want, f.get());
      out.insert(out.end(), chunk, chunk + got);
      if (out.size() > cap) {
        reason = "file larger than max_file_bytes (" + std::to_string(max_bytes) + ")";
        out.clear();
        return false;
      }
      if (got < want) break;
    }
    if (std::ferror(f.get())) {
      reason = "read error";
      return false;
    }
    return true;
  } catch (const std::bad_alloc&) {
    reason = "out of memory reading file";
    return false;
  }
}

DecodeResult decode_image(const uint8_t* bytes, size_t size, const DataSettings& s) noexcept {
  DecodeResult r;
  try {
    if ((s.channels != 1 && s.channels != 3) || s.image_size <= 0) {
      r.reason = "bad settings: channels must be 1 or 3 and image_size positive";
      return r;
    }
    if (size == 0) {
      r.reason = "empty file";
      return r;
    }
    if (size > static_cast<size_t>(INT32_MAX)) {
      r.reason = "file too large for stb_image";
      return r;
    }
    int w = 0, h = 0;
    std::unique_ptr<stbi_uc, void (*)(void*)> stb_rgb(nullptr, &stbi_image_free);
    std::vector<uint8_t> jpeg_rgb;
    const uint8_t* src = nullptr;
    if (size >= 2 && bytes[0] == 0xFF && bytes[1] == 0xD8) {  // JPEG SOI marker
      if (!decode_jpeg(bytes, size, s.max_pixels, jpeg_rgb, w, h, r.reason)) return r;
      src = jpeg_rgb.data();
    } else {
      const int len = static_cast<int>(size);
      if (size >= 8 && std::memcmp(bytes, "\x89PNG", 4) == 0) {
        if (const char* problem = png_chunk_problem(bytes, size)) {
          r.reason = problem;
          return r;
        }
      }
      int comp = 0;
      if (!stbi_info_from_memory(bytes, len, &w, &h, &comp)) {
        r.reason = std::string("unreadable header: ") + stbi_failure_reason();
        return r;
      }
      if (w <= 0 || h <= 0 || static_cast<int64_t>(w) * h > s.max_pixels) {
        r.reason = "image too large (" + std::to_string(w) + "x" + std::to_string(h) +
                   " pixels > max_pixels " + std::to_string(s.max_pixels) + ")";
        return r;
      }
      // req_comp 3: strides are computed from 3, never from the returned channel count.
      int n = 0;
      stb_rgb.reset(stbi_load_from_memory(bytes, len, &w, &h, &n, 3));
      if (!stb_rgb) {
        r.reason = std::string("decode failed: ") + stbi_failure_reason();
        return r;
      }
      src = stb_rgb.get();
    }
    const int64_t H = h, W = w, C = s.channels, S = s.image_size;
    std::vector<uint8_t> gray;
    if (C == 1) {
      gray.resize(static_cast<size_t>(H * W));
      rgb_to_gray_u8(gray.data(), src, H * W);
      src = gray.data();
    }
    r.image.height = S;
    r.image.width = S;
    r.image.channels = C;
    r.image.pixels.resize(static_cast<size_t>(S * S * C));
    resize_u8(r.image.pixels.data(), S, S, src, H, W, W * C, C, s.resize);
    r.ok = true;
  } catch (const std::bad_alloc&) {
    r = DecodeResult{};
    r.reason = "out of memory decoding image";
  }
  return r;
}

DecodeResult load_image_file(const std::string& path, const DataSettings& s) noexcept {
  std::vector<uint8_t> bytes;
  DecodeResult r;
  if (!read_file_capped(path, s.max_file_bytes, bytes, r.reason)) return r;
  return decode_image(bytes.data(), bytes.size(), s);
}

}  // namespace vit
