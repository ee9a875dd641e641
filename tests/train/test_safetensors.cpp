// safetensors reader/writer: round trip and every malformed case of RELIABILITY.md §3 rules 1-8
// and 11, each rejected with ErrorKind::Data and the rule named. Malformed files are built by hand
// here (header text + buffer), independently of the writer.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>

#include "core/error.hpp"
#include "train/safetensors.hpp"

using namespace vit;

namespace {

std::string file_of(const std::string& header, const std::string& data, uint64_t n_override = 0) {
  std::string out(8, '\0');
  const uint64_t n = n_override ? n_override : header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

std::string floats_bytes(std::initializer_list<float> v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), std::data(v), s.size());
  return s;
}

void expect_rejected(const std::string& bytes, const std::string& rule, const std::string& detail = "") {
  try {
    parse_safetensors(bytes, "bad.safetensors");
    ADD_FAILURE() << "accepted; expected " << rule;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(e.kind(), ErrorKind::Data) << msg;
    EXPECT_NE(msg.find("bad.safetensors"), std::string::npos) << msg;
    EXPECT_NE(msg.find("(" + rule + ")"), std::string::npos) << "want " << rule << ": " << msg;
    if (!detail.empty()) {
      EXPECT_NE(msg.find(detail), std::string::npos) << msg;
    }
  }
}

const std::string k8 = floats_bytes({1.0f, 2.0f});  // 8 bytes

}  // namespace

TEST(SafeTensors, Xxh64KnownAnswers) {
  EXPECT_EQ(xxh64("", 0), 0xEF46DB3751D8E999ull);
  EXPECT_EQ(xxh64("abc", 3), 0x44BC2CF5AD770999ull);
  const std::string s = "Nobody inspects the spammish repetition";  // 39 bytes: stripes + tail
  EXPECT_EQ(xxh64(s.data(), s.size()), 0xFBCEA83C8A378BF1ull);
  EXPECT_EQ(hex64(0xEF46DB3751D8E999ull), "ef46db3751d8e999");
}

TEST(SafeTensors, RoundTrip) {
  Tensor a = Tensor::from({2, 3}, {1, -2, 3.5f, 4, 5, 6e-30f});
  Tensor b = Tensor::from({4}, {0.25f, 0.5f, 0.75f, 1});
  Tensor scalar = Tensor::from({}, {42});
  Tensor empty = Tensor::zeros({0, 5});
  Tensor conv = Tensor::full({2, 1, 2, 2}, -1.5f);
  const std::string bytes = serialize_safetensors(
      {{"z.weight", &a}, {"a.bias", &b}, {"s", &scalar}, {"e", &empty}, {"patch_embed.proj.weight", &conv}},
      {{"format", "test"}, {"note", "ünïcode"}});
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u) << "header padded to 8 bytes";
  EXPECT_EQ(bytes[8], '{');
  const SafeTensors st = parse_safetensors(bytes, "rt");
  EXPECT_EQ(st.metadata.at("format"), "test");
  EXPECT_EQ(st.metadata.at("note"), "ünïcode");
  EXPECT_EQ(st.metadata.at("data_xxh64").size(), 16u);
  ASSERT_EQ(st.tensors.size(), 5u);
  EXPECT_EQ(st.tensors.at("z.weight").shape(), (Shape{2, 3}));
  EXPECT_EQ(st.tensors.at("z.weight").to_vector(), a.to_vector());
  EXPECT_EQ(st.tensors.at("a.bias").to_vector(), b.to_vector());
  EXPECT_EQ(st.tensors.at("s").shape(), Shape{});
  EXPECT_EQ(st.tensors.at("s")[0], 42.0f);
  EXPECT_EQ(st.tensors.at("e").numel(), 0);
  EXPECT_EQ(st.tensors.at("patch_embed.proj.weight").shape(), (Shape{2, 1, 2, 2}));
  // Deterministic and independent of the caller's order.
  EXPECT_EQ(serialize_safetensors({{"a.bias", &b}, {"z.weight", &a}}, {}),
            serialize_safetensors({{"z.weight", &a}, {"a.bias", &b}}, {}));
  // Data of the first tensor by name starts right after the header.
  float first;
  std::memcpy(&first, bytes.data() + 8 + n, 4);
  EXPECT_EQ(first, 0.25f) << "tensors are laid out in name order";
}

TEST(SafeTensors, AcceptsLeadingWhitespaceAndNoMetadata) {
  const std::string h = R"(  {"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const SafeTensors st = parse_safetensors(file_of(h, k8), "ws");
  EXPECT_EQ(st.tensors.at("w")[1], 2.0f);
  EXPECT_TRUE(st.metadata.empty());
}

TEST(SafeTensors, RejectsEveryTruncation) {
  Tensor a = Tensor::from({3}, {1, 2, 3});
  const std::string bytes = serialize_safetensors({{"a", &a}}, {{"k", "v"}});
  for (size_t len = 0; len < bytes.size(); ++len) {
    SCOPED_TRACE(len);
    EXPECT_THROW(
        {
          try {
            parse_safetensors(bytes.substr(0, len), "cut");
          } catch (const Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::Data);
            throw;
          }
        },
        Error);
  }
  expect_rejected(std::string(5, '\0'), "HeaderTooSmall");
}

TEST(SafeTensors, HeaderLengthRules) {
  const std::string h = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  expect_rejected(file_of(h, k8, std::numeric_limits<uint64_t>::max()), "HeaderTooLarge");
  expect_rejected(file_of(h, k8, 100000001), "HeaderTooLarge");
  expect_rejected(file_of(h, k8, h.size() + k8.size() + 1), "InvalidHeaderLength");
}

TEST(SafeTensors, HeaderTextRules) {
  expect_rejected(file_of("{\"__metadata__\":{\"a\":\"\xff\"}}", ""), "InvalidHeader", "UTF-8");
  expect_rejected(file_of("{\"__metadata__\":{\"a\":\"\xc0\xaf\"}}", ""), "InvalidHeader");  // overlong
  expect_rejected(file_of(std::string("{}\0", 3), ""), "InvalidHeader");
  expect_rejected(file_of("[]", ""), "InvalidHeaderStart");
  expect_rejected(file_of("{\"w\":", ""), "InvalidHeaderDeserialization");
  const std::string e = R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  expect_rejected(file_of("{\"w\":" + e + ",\"w\":" + e + "}", k8), "InvalidHeaderDeserialization",
                  "duplicate key w");
  expect_rejected(file_of(R"({"__metadata__":{"a":1}})", ""), "InvalidMetadata");
  expect_rejected(file_of(R"({"__metadata__":[]})", ""), "InvalidMetadata");
}

TEST(SafeTensors, EntryRules) {
  expect_rejected(file_of(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", k8), "InvalidTensorEntry");
  expect_rejected(file_of(R"({"w":{"dtype":"F32","shape":[2]}})", k8), "InvalidTensorEntry");
  expect_rejected(file_of(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", k8), "InvalidTensorEntry");
  expect_rejected(file_of(R"({"w":{"dtype":"F32","shape":[1,1,1,1,2],"data_offsets":[0,8]}})", k8), "InvalidTensorEntry");
  expect_rejected(file_of(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0.5,8]}})", k8), "InvalidTensorEntry");
  expect_rejected(file_of(R"({"bad name!":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", k8), "InvalidTensorName");
  expect_rejected(file_of(R"({"w":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}})", k8), "UnknownDtype");
  expect_rejected(file_of(R"({"w":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}})", k8), "UnsupportedDtype", "F16");
  expect_rejected(file_of(R"({"w":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]}})", k8), "UnsupportedDtype");
}

TEST(SafeTensors, SizeAndOffsetRules) {
  expect_rejected(file_of(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", k8), "TensorInvalidInfo");
  expect_rejected(file_of(R"({"w":{"dtype":"F32","shape":[2147483647,2147483647,2147483647,2147483647],"data_offsets":[0,8]}})", k8),
                  "ValidationOverflow");
  expect_rejected(file_of(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", k8), "InvalidOffset", "end < begin");
  // Overlap: b starts inside a.
  expect_rejected(file_of(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                          k8 + floats_bytes({3})),
                  "InvalidOffset", "overlapping");
  // Two tensors on the same bytes (the DoS case).
  expect_rejected(file_of(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", k8),
                  "InvalidOffset");
  // Gap (hole) between tensors, and a first tensor not at 0.
  expect_rejected(file_of(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                          k8 + floats_bytes({3})),
                  "InvalidOffset", "gap");
  expect_rejected(file_of(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", k8), "InvalidOffset");
  // Out of range.
  expect_rejected(file_of(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", k8), "InvalidOffset", "beyond");
  // Trailing bytes (polyglot).
  expect_rejected(file_of(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", k8 + "JUNK"), "MetadataIncompleteBuffer");
}

TEST(SafeTensors, ChecksumAndValues) {
  Tensor a = Tensor::from({4}, {1, 2, 3, 4});
  std::string bytes = serialize_safetensors({{"a", &a}}, {});
  bytes[bytes.size() - 3] ^= 0x10;  // one bit in the data
  expect_rejected(bytes, "ChecksumMismatch");

  Tensor nan = Tensor::from({3}, {1, std::nanf(""), 3});
  const std::string with_nan = serialize_safetensors({{"w", &nan}}, {});
  expect_rejected(with_nan, "NonFinite", "index 1");
  SafeTensorsReadOptions allow;
  allow.allow_nonfinite = true;
  EXPECT_TRUE(std::isnan(parse_safetensors(with_nan, "x", allow).tensors.at("w")[1]));
  const std::string inf = file_of(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                                  floats_bytes({std::numeric_limits<float>::infinity()}));
  expect_rejected(inf, "NonFinite");
}

TEST(SafeTensors, MissingFileIsNoInput) {
  try {
    read_safetensors("/nonexistent/w.safetensors");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::NoInput);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/w.safetensors"), std::string::npos);
  }
}
