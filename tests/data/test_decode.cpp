// Decoder tests: PNG/JPEG in gray, gray+alpha, RGB and RGBA to 1 and 3 channels (constant colours
// with hand-computed expected values), the resamplers against double-precision references, and
// the documented outcome for hostile files: each is refused with a reason, never a crash.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "data/decode.hpp"
#include "data/image_fixtures.hpp"

using vit::DataSettings;
using vit::DecodeResult;

namespace {

DataSettings settings(int64_t size, int64_t channels) {
  DataSettings s;
  s.image_size = size;
  s.channels = channels;
  return s;
}

DecodeResult decode(const std::vector<uint8_t>& bytes, const DataSettings& s) {
  return vit::decode_image(bytes.data(), bytes.size(), s);
}

// Every pixel of r.image equals `value` (per channel) within tol.
void expect_constant(const DecodeResult& r, const std::vector<int>& value, int tol) {
  ASSERT_TRUE(r.ok) << r.reason;
  const int64_t C = r.image.channels;
  ASSERT_EQ(static_cast<size_t>(C), value.size());
  ASSERT_EQ(r.image.pixels.size(), static_cast<size_t>(r.image.height * r.image.width * C));
  for (size_t i = 0; i < r.image.pixels.size(); ++i)
    ASSERT_NEAR(r.image.pixels[i], value[i % static_cast<size_t>(C)], tol) << "byte " << i;
}

uint32_t crc32(const uint8_t* p, size_t n) {  // PNG's CRC (reflected 0xEDB88320), bitwise
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return c ^ 0xFFFFFFFFu;
}

void put_be32(std::vector<uint8_t>& v, uint32_t x) {
  for (int s = 24; s >= 0; s -= 8) v.push_back(static_cast<uint8_t>(x >> s));
}

// A PNG signature + IHDR claiming width x height RGB8, a tiny IDAT and IEND: a few dozen bytes.
std::vector<uint8_t> png_header_only(uint32_t width, uint32_t height) {
  std::vector<uint8_t> png{0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  auto chunk = [&](const char* type, const std::vector<uint8_t>& body) {
    put_be32(png, static_cast<uint32_t>(body.size()));
    std::vector<uint8_t> tb(type, type + 4);
    tb.insert(tb.end(), body.begin(), body.end());
    png.insert(png.end(), tb.begin(), tb.end());
    put_be32(png, crc32(tb.data(), tb.size()));
  };
  std::vector<uint8_t> ihdr;
  put_be32(ihdr, width);
  put_be32(ihdr, height);
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});  // 8-bit, colour type 2 (RGB)
  chunk("IHDR", ihdr);
  chunk("IDAT", {0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01});  // zlib of nothing
  chunk("IEND", {});
  return png;
}

}  // namespace

// BT.601 luma of (200, 100, 50): (299*200 + 587*100 + 114*50 + 500) / 1000 = 124.
constexpr int kLuma = 124;

TEST(Decode, PngChannelsConvert) {
  const int w = 6, h = 4;
  const auto gray = vit_test::encode_png(w, h, 1, vit_test::constant_pixels(w, h, {77}));
  const auto gray_a = vit_test::encode_png(w, h, 2, vit_test::constant_pixels(w, h, {77, 10}));
  const auto rgb = vit_test::encode_png(w, h, 3, vit_test::constant_pixels(w, h, {200, 100, 50}));
  const auto rgba = vit_test::encode_png(w, h, 4, vit_test::constant_pixels(w, h, {200, 100, 50, 0}));
  for (int64_t size : {4, 8, 3}) {  // smaller, larger, odd: a constant image stays constant
    SCOPED_TRACE(size);
    expect_constant(decode(gray, settings(size, 1)), {77}, 0);
    expect_constant(decode(gray, settings(size, 3)), {77, 77, 77}, 0);  // replicated
    expect_constant(decode(gray_a, settings(size, 1)), {77}, 0);        // alpha dropped
    expect_constant(decode(rgb, settings(size, 3)), {200, 100, 50}, 0);
    expect_constant(decode(rgb, settings(size, 1)), {kLuma}, 0);
    expect_constant(decode(rgba, settings(size, 3)), {200, 100, 50}, 0);  // alpha 0 ignored, not composited
    expect_constant(decode(rgba, settings(size, 1)), {kLuma}, 0);
    const DecodeResult r = decode(rgb, settings(size, 3));
    EXPECT_EQ(r.image.height, size);
    EXPECT_EQ(r.image.width, size);
    EXPECT_EQ(r.image.channels, 3);
  }
}

TEST(Decode, JpegChannelsConvert) {
  const int w = 16, h = 16;
  const auto gray = vit_test::encode_jpg(w, h, 1, vit_test::constant_pixels(w, h, {90}));
  const auto rgb = vit_test::encode_jpg(w, h, 3, vit_test::constant_pixels(w, h, {200, 100, 50}));
  expect_constant(decode(gray, settings(8, 1)), {90}, 2);
  expect_constant(decode(gray, settings(8, 3)), {90, 90, 90}, 2);
  expect_constant(decode(rgb, settings(8, 3)), {200, 100, 50}, 4);  // lossy YCbCr round trip
  expect_constant(decode(rgb, settings(12, 1)), {kLuma}, 4);
}

TEST(Decode, PixelsKeepTheirPlaces) {
  // At its own size an image comes back byte for byte, row-major HWC.
  const std::vector<uint8_t> sq{0, 10, 20, 30, 40, 50, 60, 70, 80};
  const DecodeResult r = decode(vit_test::encode_png(3, 3, 1, sq), settings(3, 1));
  ASSERT_TRUE(r.ok) << r.reason;
  EXPECT_EQ(r.image.pixels, sq);
  std::vector<uint8_t> rgb(4 * 4 * 3);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<uint8_t>(i * 5);
  const DecodeResult c = decode(vit_test::encode_png(4, 4, 3, rgb), settings(4, 3));
  ASSERT_TRUE(c.ok) << c.reason;
  EXPECT_EQ(c.image.pixels, rgb);
  // A non-square file is resized to the square image_size.
  const DecodeResult ns = decode(vit_test::encode_png(6, 2, 3, std::vector<uint8_t>(36, 9)), settings(4, 3));
  ASSERT_TRUE(ns.ok) << ns.reason;
  EXPECT_EQ(ns.image.pixels, std::vector<uint8_t>(48, 9));
}

// Reference bilinear (half-pixel centres, edge clamp) and area (exact box integral), in double.
double ref_bilinear(const std::vector<uint8_t>& src, int sh, int sw, int dh, int dw, int y, int x) {
  auto coord = [](int o, int in, int out, int& i0, int& i1, double& f) {
    double s = (o + 0.5) * in / out - 0.5;
    s = std::max(0.0, std::min(s, in - 1.0));
    i0 = static_cast<int>(std::floor(s));
    i1 = std::min(i0 + 1, in - 1);
    f = s - i0;
  };
  int y0, y1, x0, x1;
  double fy, fx;
  coord(y, sh, dh, y0, y1, fy);
  coord(x, sw, dw, x0, x1, fx);
  auto at = [&](int yy, int xx) { return static_cast<double>(src[static_cast<size_t>(yy * sw + xx)]); };
  return (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x1)) + fy * ((1 - fx) * at(y1, x0) + fx * at(y1, x1));
}

double ref_area(const std::vector<uint8_t>& src, int sh, int sw, int dh, int dw, int y, int x) {
  const double ay = y * double(sh) / dh, by = (y + 1) * double(sh) / dh;
  const double ax = x * double(sw) / dw, bx = (x + 1) * double(sw) / dw;
  double sum = 0;
  for (int i = 0; i < sh; ++i)
    for (int j = 0; j < sw; ++j) {
      const double oy = std::max(0.0, std::min(by, i + 1.0) - std::max(ay, double(i)));
      const double ox = std::max(0.0, std::min(bx, j + 1.0) - std::max(ax, double(j)));
      sum += oy * ox * src[static_cast<size_t>(i * sw + j)];
    }
  return sum / ((by - ay) * (bx - ax));
}

TEST(Resize, MatchesDoubleReferences) {
  std::vector<uint8_t> src(7 * 9);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>((i * 37 + 11) % 251);
  const int sh = 7, sw = 9;
  for (auto mode : {vit::ResizeMode::Bilinear, vit::ResizeMode::Area}) {
    for (auto [dh, dw] : {std::pair{4, 5}, std::pair{14, 20}, std::pair{3, 9}, std::pair{7, 4}}) {
      std::vector<uint8_t> dst(static_cast<size_t>(dh * dw));
      vit::resize_u8(dst.data(), dh, dw, src.data(), sh, sw, sw, 1, mode);
      for (int y = 0; y < dh; ++y)
        for (int x = 0; x < dw; ++x) {
          const double ref = mode == vit::ResizeMode::Bilinear ? ref_bilinear(src, sh, sw, dh, dw, y, x)
                                                              : ref_area(src, sh, sw, dh, dw, y, x);
          // float accumulation may land on the other side of a .5 boundary: 1 step allowed.
          ASSERT_NEAR(dst[static_cast<size_t>(y * dw + x)], ref, 0.5 + 1e-3)
              << "mode " << int(mode) << " " << dh << "x" << dw << " at " << y << "," << x;
        }
    }
  }
}

TEST(Resize, AreaHalvingIsBlockMean) {
  // 4x4 -> 2x2: each output is the mean of its 2x2 block (sums chosen divisible by 4).
  const std::vector<uint8_t> src{0, 4, 8, 12, 8, 4, 16, 0, 100, 100, 40, 40, 100, 100, 40, 40};
  std::vector<uint8_t> dst(4);
  vit::resize_u8(dst.data(), 2, 2, src.data(), 4, 4, 4, 1, vit::ResizeMode::Area);
  EXPECT_EQ(dst, (std::vector<uint8_t>{4, 9, 100, 40}));
}

TEST(Rgb2Gray, Bt601Weights) {
  const std::vector<uint8_t> rgb{255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 10, 20, 30};
  std::vector<uint8_t> g(5);
  vit::rgb_to_gray_u8(g.data(), rgb.data(), 5);
  // round(255*.299)=76, round(255*.587)=150 (149.685), round(255*.114)=29 (29.07), 255, 18.15 -> 18
  EXPECT_EQ(g, (std::vector<uint8_t>{76, 150, 29, 255, 18}));
}

// Hostile inputs: documented outcome = ok false, a reason, no crash (run under ASan in CI).
TEST(DecodeHostile, TruncatedZeroByteAndNotAnImage) {
  const DataSettings s = settings(8, 3);
  const auto png = vit_test::encode_png(32, 32, 3, vit_test::constant_pixels(32, 32, {1, 2, 3}));
  std::vector<uint8_t> gradient(48 * 48 * 3);
  for (size_t i = 0; i < gradient.size(); ++i) gradient[i] = static_cast<uint8_t>(i * 7);
  const auto jpg = vit_test::encode_jpg(48, 48, 3, gradient);
  ASSERT_TRUE(decode(png, s).ok);
  ASSERT_TRUE(decode(jpg, s).ok);
  for (size_t cut : {size_t{1}, size_t{8}, size_t{20}, png.size() / 2, png.size() - 13}) {
    const DecodeResult r = decode(std::vector<uint8_t>(png.begin(), png.begin() + static_cast<long>(cut)), s);
    EXPECT_FALSE(r.ok) << "png cut at " << cut;
    EXPECT_FALSE(r.reason.empty());
  }
  for (size_t cut : {size_t{2}, size_t{100}, jpg.size() / 2, jpg.size() - 2}) {
    const DecodeResult r = decode(std::vector<uint8_t>(jpg.begin(), jpg.begin() + static_cast<long>(cut)), s);
    EXPECT_FALSE(r.ok) << "jpg cut at " << cut;
  }
  EXPECT_EQ(decode({}, s).reason, "empty file");
  const std::string text = "this is a text file, not a PNG\n";
  const DecodeResult t = decode(std::vector<uint8_t>(text.begin(), text.end()), s);
  EXPECT_FALSE(t.ok);
  EXPECT_NE(t.reason.find("unknown image type"), std::string::npos) << t.reason;
  // GIF/BMP are compiled out: a valid-looking GIF header is "unknown image type" too.
  const std::string gif = "GIF89a\x01\x00\x01\x00\x00\x00\x00;";
  EXPECT_FALSE(decode(std::vector<uint8_t>(gif.begin(), gif.end()), s).ok);
}

TEST(DecodeHostile, HugeDimensionsAreRefusedBeforeDecoding) {
  const DataSettings s = settings(8, 3);
  // 100000 x 100000: above STBI_MAX_DIMENSIONS (8192), so stbi_info's PNG parser refuses it;
  // stbi_info then tries the JPEG parser too and reports "unknown image type".
  const DecodeResult huge = decode(png_header_only(100000, 100000), s);
  EXPECT_FALSE(huge.ok);
  EXPECT_NE(huge.reason.find("unreadable header"), std::string::npos) << huge.reason;
  // 8000 x 8000 passes stb's limit; our max_pixels (4096^2 default) stops it before allocation.
  const DecodeResult big = decode(png_header_only(8000, 8000), s);
  EXPECT_FALSE(big.ok);
  EXPECT_NE(big.reason.find("max_pixels"), std::string::npos) << big.reason;
  // Under the caps, the same tiny header fails in decoding (no pixel data), not in allocation.
  const DecodeResult small = decode(png_header_only(4, 4), s);
  EXPECT_FALSE(small.ok);
}

TEST(ReadFile, CapAndMissingFile) {
  vit_test::TempDir t("readfile");
  vit_test::write_bytes(t / "ten.bin", std::vector<uint8_t>(10, 7));
  std::vector<uint8_t> out;
  std::string reason;
  EXPECT_TRUE(vit::read_file_capped(t / "ten.bin", 10, out, reason));
  EXPECT_EQ(out, std::vector<uint8_t>(10, 7));
  EXPECT_FALSE(vit::read_file_capped(t / "ten.bin", 9, out, reason));
  EXPECT_NE(reason.find("max_file_bytes"), std::string::npos);
  EXPECT_FALSE(vit::read_file_capped(t / "missing.png", 100, out, reason));
  EXPECT_NE(reason.find("cannot open"), std::string::npos);
  vit_test::write_bytes(t / "zero.png", {});
  DataSettings s = settings(4, 1);
  const DecodeResult r = vit::load_image_file(t / "zero.png", s);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "empty file");
}
