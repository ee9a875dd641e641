// Dataset and loader tests on a generated folder of 3 classes x 7 gray 8x8 PNGs whose pixels are
// a known function of the image id: cache vs streaming, bad-file policy, normalised values,
// shuffle/resume/thread determinism, and per-sample augmentation (flip, padded crop, RRC boxes).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include "core/error.hpp"
#include "core/parallel.hpp"
#include "core/rng.hpp"
#include "data/dataset.hpp"
#include "data/image_fixtures.hpp"
#include "data/loader.hpp"
#include "data/transforms.hpp"

using vit::ErrorKind;

namespace {

constexpr int kClasses = 3, kPerClass = 7, kSide = 8;

uint8_t pixel(int id, int y, int x) { return static_cast<uint8_t>((id * 29 + y * 8 + x * 3) % 256); }

std::vector<uint8_t> image_of(int id) {
  std::vector<uint8_t> px(kSide * kSide);
  for (int y = 0; y < kSide; ++y)
    for (int x = 0; x < kSide; ++x) px[static_cast<size_t>(y * kSide + x)] = pixel(id, y, x);
  return px;
}

class LoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int c = 0; c < kClasses; ++c)
      for (int j = 0; j < kPerClass; ++j)
        vit_test::write_bytes(dir_ / ("c" + std::to_string(c) + "/img" + std::to_string(j) + ".png"),
                              vit_test::encode_png(kSide, kSide, 1, image_of(c * kPerClass + j)));
    settings_.image_size = kSide;
    settings_.channels = 1;
    settings_.mean = {0.5f};
    settings_.std = {0.25f};
  }
  void TearDown() override { vit::set_num_threads(2); }
  vit::ImageDataset dataset() const { return vit::ImageDataset(vit::scan_image_folder(dir_.path()), settings_); }

  vit_test::TempDir dir_{"loader"};
  vit::DataSettings settings_;
};

bool same(const vit::Batch& a, const vit::Batch& b) {
  return a.epoch == b.epoch && a.index == b.index && a.labels == b.labels && a.samples == b.samples &&
         a.images.shape() == b.images.shape() &&
         std::memcmp(a.images.data(), b.images.data(), sizeof(float) * static_cast<size_t>(a.images.numel())) == 0;
}

// uint8 pixels of sample slot b in a batch normalised with mean 0, std 1.
std::vector<uint8_t> slot_u8(const vit::Batch& batch, int64_t b) {
  const int64_t n = batch.images.numel() / batch.images.size(0);
  std::vector<uint8_t> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    out[static_cast<size_t>(i)] = static_cast<uint8_t>(std::lround(batch.images[b * n + i] * 255.0f));
  return out;
}

}  // namespace

TEST_F(LoaderTest, DatasetCachesEveryImageInFileOrder) {
  const auto ds = dataset();
  ASSERT_EQ(ds.size(), kClasses * kPerClass);
  EXPECT_TRUE(ds.cached());
  EXPECT_EQ(ds.cache_bytes(), ds.size() * kSide * kSide);
  std::vector<uint8_t> px(kSide * kSide);
  std::string reason;
  for (int64_t i = 0; i < ds.size(); ++i) {
    EXPECT_EQ(ds.label(i), i / kPerClass);
    ASSERT_TRUE(ds.read(i, px.data(), reason));
    EXPECT_EQ(px, image_of(static_cast<int>(i))) << i;
  }
}

TEST_F(LoaderTest, EvalBatchesAreNormalisedInFileOrder) {
  const auto ds = dataset();
  vit::DataLoader eval(ds, settings_, {8, /*train=*/false, 1});
  ASSERT_EQ(eval.batches_per_epoch(), 3);  // 21 = 8 + 8 + 5: the last batch is kept, short
  const vit::Batch last = eval.make_batch(0, 2);
  EXPECT_EQ(last.images.shape(), (vit::Shape{5, 1, kSide, kSide}));
  for (int64_t idx = 0; idx < 3; ++idx) {
    const vit::Batch b = eval.make_batch(0, idx);
    for (int64_t s = 0; s < b.images.size(0); ++s) {
      const int id = static_cast<int>(idx * 8 + s);
      EXPECT_EQ(b.samples[static_cast<size_t>(s)], id);
      EXPECT_EQ(b.labels[static_cast<size_t>(s)], id / kPerClass);
      for (int y = 0; y < kSide; ++y)
        for (int x = 0; x < kSide; ++x) {
          const double ref = (pixel(id, y, x) / 255.0 - 0.5) / 0.25;
          ASSERT_NEAR(b.images[(s * kSide + y) * kSide + x], ref, 1e-6);
        }
    }
  }
}

TEST_F(LoaderTest, StreamingGivesTheSameBatchesAsTheCache) {
  const auto cached = dataset();
  settings_.cache_limit_mb = 0;
  const auto streamed = dataset();
  ASSERT_FALSE(streamed.cached());
  settings_.augment.hflip = true;
  settings_.augment.crop_padding = 2;
  for (bool train : {true, false}) {
    vit::DataLoader a(cached, settings_, {6, train, 5}), b(streamed, settings_, {6, train, 5});
    for (int64_t i = 0; i < a.batches_per_epoch(); ++i) EXPECT_TRUE(same(a.make_batch(1, i), b.make_batch(1, i)));
  }
}

TEST_F(LoaderTest, BadFilesAreSkippedUntilTheFractionIsExceeded) {
  // Documented outcome for each hostile file: skipped with a warning naming path and reason.
  const auto good = vit_test::encode_png(kSide, kSide, 1, image_of(0));
  vit_test::write_bytes(dir_ / "c0/trunc.png", std::vector<uint8_t>(good.begin(), good.begin() + 40));
  vit_test::write_bytes(dir_ / "c1/bad.png", {'n', 'o', 't', ' ', 'p', 'n', 'g'});
  std::vector<uint8_t> huge(good.begin(), good.begin() + 33);  // signature + IHDR only
  huge[16] = 0x00; huge[17] = 0x01; huge[18] = 0x86; huge[19] = 0xA0;  // width 100000
  huge[20] = 0x00; huge[21] = 0x01; huge[22] = 0x86; huge[23] = 0xA0;  // height 100000
  vit_test::write_bytes(dir_ / "c1/huge.png", huge);
  vit_test::write_bytes(dir_ / "c2/zero.png", {});
  settings_.max_bad_fraction = 0.2;  // 4 of 25 = 0.16
  const auto ds = dataset();
  EXPECT_EQ(ds.size(), kClasses * kPerClass);
  ASSERT_EQ(ds.bad_files().size(), 4u);
  EXPECT_EQ(ds.bad_files()[0].path, dir_ / "c0/trunc.png");
  EXPECT_EQ(ds.bad_files()[1].path, dir_ / "c1/bad.png");
  EXPECT_EQ(ds.bad_files()[2].path, dir_ / "c1/huge.png");
  EXPECT_EQ(ds.bad_files()[3].reason, "empty file");
  // The good files keep their labels around the holes.
  for (int64_t i = 0; i < ds.size(); ++i) EXPECT_EQ(ds.label(i), i / kPerClass);
  settings_.max_bad_fraction = 0.1;
  try {
    dataset();
    FAIL() << "expected a data error";
  } catch (const vit::Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Data);
    EXPECT_NE(std::string(e.what()).find("trunc.png"), std::string::npos) << e.what();
  }
}

TEST_F(LoaderTest, ShuffleIsAPermutationPerEpoch) {
  const auto p0 = vit::shuffled_order(21, 7, 0), p1 = vit::shuffled_order(21, 7, 1);
  auto sorted = p0;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 21; ++i) EXPECT_EQ(sorted[static_cast<size_t>(i)], i);
  EXPECT_NE(p0, p1);
  EXPECT_NE(p0, vit::shuffled_order(21, 8, 0));
  EXPECT_EQ(p0, vit::shuffled_order(21, 7, 0));

  const auto ds = dataset();
  vit::DataLoader train(ds, settings_, {8, true, 7});
  ASSERT_EQ(train.batches_per_epoch(), 2);  // drop_last: 21 -> 2 x 8
  std::set<int64_t> seen;
  for (int64_t i = 0; i < 2; ++i) {
    const auto b = train.make_batch(0, i);
    for (size_t k = 0; k < b.samples.size(); ++k) {
      EXPECT_EQ(b.samples[k], p0[static_cast<size_t>(i * 8) + k]);
      EXPECT_EQ(b.labels[k], b.samples[k] / kPerClass);
      seen.insert(b.samples[k]);
    }
  }
  EXPECT_EQ(seen.size(), 16u);
  EXPECT_NE(train.make_batch(0, 0).samples, train.make_batch(1, 0).samples);
}

TEST_F(LoaderTest, SameBatchesWithOneAndTwoThreadsAndAfterResume) {
  settings_.augment.hflip = true;
  settings_.augment.crop_padding = 2;
  settings_.augment.random_resized_crop = true;
  const auto ds = dataset();
  std::vector<vit::Batch> one, two;
  for (int threads : {1, 2}) {
    vit::set_num_threads(threads);
    vit::DataLoader loader(ds, settings_, {4, true, 123});
    auto& out = threads == 1 ? one : two;
    for (int k = 0; k < 12; ++k) out.push_back(loader.next());  // 5 batches per epoch: crosses 2 epochs
  }
  ASSERT_EQ(one.size(), two.size());
  for (size_t k = 0; k < one.size(); ++k) EXPECT_TRUE(same(one[k], two[k])) << k;
  EXPECT_EQ(one[5].epoch, 1);
  EXPECT_EQ(one[5].index, 0);
  // The stream equals the pure function, and a loader started at (epoch, index) continues it.
  vit::DataLoader fresh(ds, settings_, {4, true, 123});
  for (size_t k = 0; k < one.size(); ++k)
    EXPECT_TRUE(same(one[k], fresh.make_batch(one[k].epoch, one[k].index))) << k;
  vit::DataLoader resumed(ds, settings_, {4, true, 123});
  resumed.seek(1, 3);
  for (size_t k = 8; k < one.size(); ++k) EXPECT_TRUE(same(resumed.next(), one[k])) << k;
  EXPECT_NE(one[0].samples, one[5].samples);  // epochs differ
  // A different seed gives a different stream.
  vit::DataLoader other(ds, settings_, {4, true, 124});
  EXPECT_FALSE(same(other.next(), one[0]));
}

TEST_F(LoaderTest, AugmentationDependsOnSampleNotOnBatch) {
  settings_.mean = {0.f};
  settings_.std = {1.f};
  settings_.augment.hflip = true;
  settings_.augment.crop_padding = 2;
  settings_.augment.random_resized_crop = true;
  const auto ds = dataset();
  auto images_by_sample = [&](int64_t batch_size, int64_t epoch) {
    vit::DataLoader loader(ds, settings_, {batch_size, true, 9});
    std::map<int64_t, std::vector<uint8_t>> out;
    for (int64_t i = 0; i < loader.batches_per_epoch(); ++i) {
      const auto b = loader.make_batch(epoch, i);
      for (size_t k = 0; k < b.samples.size(); ++k) out[b.samples[k]] = slot_u8(b, static_cast<int64_t>(k));
    }
    return out;
  };
  const auto by4 = images_by_sample(4, 0), by5 = images_by_sample(5, 0), next_epoch = images_by_sample(4, 1);
  int common = 0, changed = 0;
  for (const auto& [s, img] : by4) {
    if (by5.count(s)) {
      EXPECT_EQ(img, by5.at(s)) << "sample " << s;
      ++common;
    }
    if (next_epoch.count(s) && next_epoch.at(s) != img) ++changed;
  }
  EXPECT_GE(common, 10);
  EXPECT_GE(changed, 5);  // epoch is part of the key
}

TEST_F(LoaderTest, FlipAndPaddedCropMoveOriginalPixels) {
  settings_.mean = {0.f};
  settings_.std = {1.f};
  settings_.augment.hflip = true;
  const auto ds = dataset();
  vit::DataLoader flip(ds, settings_, {21, true, 3});
  const auto b = flip.make_batch(0, 0);
  int flipped = 0;
  for (int64_t k = 0; k < 21; ++k) {
    const auto img = slot_u8(b, k), orig = image_of(static_cast<int>(b.samples[static_cast<size_t>(k)]));
    auto mirror = orig;
    for (int y = 0; y < kSide; ++y) std::reverse(mirror.begin() + y * kSide, mirror.begin() + (y + 1) * kSide);
    EXPECT_TRUE(img == orig || img == mirror);
    flipped += img == mirror;
  }
  EXPECT_GT(flipped, 0);
  EXPECT_LT(flipped, 21);

  settings_.augment.hflip = false;
  settings_.augment.crop_padding = 3;
  vit::DataLoader crop(ds, settings_, {21, true, 3});
  const auto c = crop.make_batch(0, 0);
  for (int64_t k = 0; k < 21; ++k) {
    const auto img = slot_u8(c, k);
    const int id = static_cast<int>(c.samples[static_cast<size_t>(k)]);
    bool found = false;  // some shift (dy, dx) in [-3, 3]^2 with zero fill explains the output
    for (int dy = -3; dy <= 3 && !found; ++dy)
      for (int dx = -3; dx <= 3 && !found; ++dx) {
        bool ok = true;
        for (int y = 0; y < kSide && ok; ++y)
          for (int x = 0; x < kSide && ok; ++x) {
            const int sy = y + dy, sx = x + dx;
            const uint8_t want = (sy < 0 || sy >= kSide || sx < 0 || sx >= kSide) ? 0 : pixel(id, sy, sx);
            ok = img[static_cast<size_t>(y * kSide + x)] == want;
          }
        found = ok;
      }
    EXPECT_TRUE(found) << "sample " << id;
  }
}

TEST(RandomResizedCrop, BoxesStayInsideAndFollowTheScaleRange) {
  vit::AugmentSettings a;
  a.random_resized_crop = true;
  a.rrc_scale_min = 0.25f;
  a.rrc_scale_max = 0.5f;
  for (uint64_t s = 0; s < 500; ++s) {
    vit::Rng rng(1, vit::RngPurpose::Augment, 0, s);
    const auto box = vit::random_resized_crop_box(64, 48, a, rng);
    ASSERT_GE(box.top, 0);
    ASSERT_GE(box.left, 0);
    ASSERT_LE(box.top + box.height, 64);
    ASSERT_LE(box.left + box.width, 48);
    const double frac = static_cast<double>(box.height * box.width) / (64.0 * 48.0);
    const double ratio = static_cast<double>(box.width) / static_cast<double>(box.height);
    // Rounding w and h to integers moves area and ratio a little.
    ASSERT_GT(frac, 0.25 * 0.85);
    ASSERT_LT(frac, 0.5 * 1.15);
    ASSERT_GT(ratio, 0.75 * 0.85);
    ASSERT_LT(ratio, 4.0 / 3.0 * 1.15);
  }
}

TEST(RandomResizedCrop, FallbackIsACentreCropWithClampedRatio) {
  vit::AugmentSettings a;
  a.rrc_scale_min = a.rrc_scale_max = 1.5f;  // never fits: 10 failed tries, then the fallback
  vit::Rng rng(1, vit::RngPurpose::Augment, 0, 0);
  // 10 x 40 (ratio 4 > 4/3): h = 10, w = round(10 * 4/3) = 13, centred: left = (40 - 13) / 2 = 13.
  const auto wide = vit::random_resized_crop_box(10, 40, a, rng);
  EXPECT_EQ(wide.top, 0);
  EXPECT_EQ(wide.height, 10);
  EXPECT_EQ(wide.width, 13);
  EXPECT_EQ(wide.left, 13);
  // 40 x 10 (ratio 0.25 < 0.75): w = 10, h = round(10 / 0.75) = 13, top = (40 - 13) / 2 = 13.
  const auto tall = vit::random_resized_crop_box(40, 10, a, rng);
  EXPECT_EQ(tall.width, 10);
  EXPECT_EQ(tall.height, 13);
  EXPECT_EQ(tall.top, 13);
  const auto square = vit::random_resized_crop_box(20, 20, a, rng);  // ratio 1 in range: whole image
  EXPECT_EQ(square.height, 20);
  EXPECT_EQ(square.width, 20);
}

TEST_F(LoaderTest, TrainingSetSmallerThanABatchIsAConfigError) {
  const auto ds = dataset();
  try {
    vit::DataLoader loader(ds, settings_, {64, true, 0});
    FAIL() << "expected a config error";
  } catch (const vit::Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Config);
  }
  EXPECT_NO_THROW(vit::DataLoader(ds, settings_, {64, false, 0}));  // eval: one short batch
}

// The bundled sample (data/README.md): 10 readable class folders, 500 + 100 PNGs per class,
// the same classes in train and val, every file decodes.
TEST(BundledSample, ScansAndDecodesCleanly) {
  const std::string root = std::string(VIT_SOURCE_DIR) + "/data/fashion-mnist-small";
  const auto train = vit::scan_image_folder(root + "/train");
  const auto val = vit::scan_image_folder(root + "/val");
  const std::vector<std::string> classes{"ankle_boot", "bag",   "coat",    "dress",       "pullover",
                                         "sandal",     "shirt", "sneaker", "t-shirt_top", "trouser"};
  EXPECT_EQ(train.classes, classes);
  EXPECT_NO_THROW(vit::check_same_classes(train, val, "val"));
  ASSERT_EQ(train.samples.size(), 5000u);
  ASSERT_EQ(val.samples.size(), 1000u);
  EXPECT_EQ(train.skipped_files, 0);
  std::vector<int> per_class(10, 0);
  for (const auto& s : train.samples) ++per_class[static_cast<size_t>(s.label)];
  EXPECT_EQ(per_class, std::vector<int>(10, 500));
  vit::DataSettings s;  // defaults: 28x28, 1 channel
  const vit::ImageDataset ds(val, s);
  EXPECT_EQ(ds.size(), 1000);
  EXPECT_TRUE(ds.bad_files().empty());
}
