// Scanner tests: class and sample order against torchvision's ImageFolder rules (worked out by
// hand below, and re-derived by a Python os.walk transcription of folder.py when python3 is
// available), non-image files counted, and the error kinds for bad roots and class mismatches.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "core/error.hpp"
#include "data/image_folder.hpp"
#include "data/image_fixtures.hpp"

using vit::ErrorKind;
using vit_test::TempDir;
namespace fs = std::filesystem;

namespace {

void touch(const std::string& path) { vit_test::write_bytes(path, {}); }

std::vector<std::string> relative_paths(const vit::ImageFolder& f) {
  std::vector<std::string> out;
  for (const auto& s : f.samples) out.push_back(s.path.substr(f.root.size() + 1));
  return out;
}

ErrorKind kind_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const vit::Error& e) {
    return e.kind();
  }
  return ErrorKind::Internal;  // "no error" shows up as a mismatch
}

// A tree exercising every ordering rule.
void make_tree(const TempDir& t) {
  for (const char* p : {"a/x.png", "a/B.PNG", "a/c.JPeG", "a/notes.txt", "a/Sub/k.png", "a/sub/y.jpg",
                        "a/sub b/z.png", "a/sub-b/w.png", "a/sub/deeper/m.png", "a/sub0/q.png",
                        "B/img.jpg", "B/readme.md", "Z/1.png", "Z/10.png", "Z/2.png",
                        "\xc3\xa4pfel/\xc3\xbc.png", "\xc3\xa4pfel/u.png", ".hidden/h.png", "a b/f.jpg",
                        "a-b/g.jpeg"})
    touch(t / p);
  touch(t / "stray_file_at_root.png");  // not in a class folder: ignored (not a class)
}

}  // namespace

TEST(ImageFolder, ClassOrderIsByteWise) {
  TempDir t("scan_classes");
  make_tree(t);
  const vit::ImageFolder f = vit::scan_image_folder(t.path());
  // '.'(2E) < 'B'(42) < 'Z'(5A) < 'a'(61); "a" < "a b" < "a-b"; UTF-8 'ä' (C3 A4) last.
  const std::vector<std::string> expected{".hidden", "B", "Z", "a", "a b", "a-b", "\xc3\xa4pfel"};
  EXPECT_EQ(f.classes, expected);
}

TEST(ImageFolder, SampleOrderFollowsSortedOsWalk) {
  TempDir t("scan_samples");
  make_tree(t);
  const vit::ImageFolder f = vit::scan_image_folder(t.path() + "/");  // trailing slash is harmless
  // sorted(os.walk(class_dir)) orders by directory path: "a" < "a/Sub" < "a/sub" < "a/sub b"
  // < "a/sub-b" < "a/sub/deeper" ('/' is 2F) < "a/sub0"; files sorted inside each directory.
  const std::vector<std::string> expected{
      ".hidden/h.png", "B/img.jpg",      "Z/1.png",         "Z/10.png",           "Z/2.png",
      "a/B.PNG",       "a/c.JPeG",       "a/x.png",         "a/Sub/k.png",        "a/sub/y.jpg",
      "a/sub b/z.png", "a/sub-b/w.png",  "a/sub/deeper/m.png", "a/sub0/q.png",    "a b/f.jpg",
      "a-b/g.jpeg",    "\xc3\xa4pfel/u.png", "\xc3\xa4pfel/\xc3\xbc.png"};
  EXPECT_EQ(relative_paths(f), expected);
  const std::vector<int32_t> labels{0, 1, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4, 5, 6, 6};
  ASSERT_EQ(f.samples.size(), labels.size());
  for (size_t i = 0; i < labels.size(); ++i) EXPECT_EQ(f.samples[i].label, labels[i]) << i;
  EXPECT_EQ(f.skipped_files, 2);  // a/notes.txt, B/readme.md
  EXPECT_EQ(f.root, t.path());
}

// The same tree through a transcription of torchvision's make_dataset (os.walk + sorted).
TEST(ImageFolder, MatchesPythonOsWalkReference) {
  if (std::system("python3 -c 'import os' >/dev/null 2>&1") != 0) GTEST_SKIP() << "python3 not available";
  TempDir t("scan_python");
  make_tree(t);
  const std::string out = t / "ref.txt";
  const std::string script =
      "import os,sys\n"
      "root=sys.argv[1]\n"
      "ext=('.png','.jpg','.jpeg')\n"
      "classes=sorted(e.name for e in os.scandir(root) if e.is_dir())\n"
      "with open(sys.argv[2],'w',encoding='utf-8',errors='surrogateescape') as f:\n"
      "  for i,c in enumerate(classes):\n"
      "    for r,_,fn in sorted(os.walk(os.path.join(root,c),followlinks=True)):\n"
      "      for n in sorted(fn):\n"
      "        p=os.path.join(r,n)\n"
      "        if p.lower().endswith(ext): f.write('%d %s\\n'%(i,p))\n";
  const std::string py = t / "ref.py";
  { std::ofstream(py) << script; }
  ASSERT_EQ(std::system(("python3 '" + py + "' '" + t.path() + "' '" + out + "'").c_str()), 0);
  std::ifstream in(out);
  std::vector<std::string> ref;
  for (std::string line; std::getline(in, line);) ref.push_back(line);
  const vit::ImageFolder f = vit::scan_image_folder(t.path());
  std::vector<std::string> ours;
  for (const auto& s : f.samples) ours.push_back(std::to_string(s.label) + " " + s.path);
  EXPECT_EQ(ours, ref);
}

TEST(ImageFolder, ExtensionsAreCaseInsensitive) {
  EXPECT_TRUE(vit::has_image_extension("a.PNG"));
  EXPECT_TRUE(vit::has_image_extension("a.JpEg"));
  EXPECT_TRUE(vit::has_image_extension("x.y.jpg"));
  EXPECT_FALSE(vit::has_image_extension("a.png.txt"));
  EXPECT_FALSE(vit::has_image_extension("a.webp"));
  EXPECT_FALSE(vit::has_image_extension("png"));
  EXPECT_FALSE(vit::has_image_extension(".gif"));
}

TEST(ImageFolder, MissingRootIsNoInput) {
  TempDir t("scan_missing");
  EXPECT_EQ(kind_of([&] { vit::scan_image_folder(t / "nope"); }), ErrorKind::NoInput);
  touch(t / "file.png");
  EXPECT_EQ(kind_of([&] { vit::scan_image_folder(t / "file.png"); }), ErrorKind::NoInput);
}

TEST(ImageFolder, EmptyRootAndEmptyClassAreDataErrors) {
  TempDir t("scan_empty");
  EXPECT_EQ(kind_of([&] { vit::scan_image_folder(t.path()); }), ErrorKind::Data);
  touch(t / "loose.png");  // files only, still no class folder
  EXPECT_EQ(kind_of([&] { vit::scan_image_folder(t.path()); }), ErrorKind::Data);
  touch(t / "cat/1.png");
  touch(t / "dog/readme.txt");
  fs::create_directories(t / "emu/inner");
  try {
    vit::scan_image_folder(t.path());
    FAIL() << "expected a data error";
  } catch (const vit::Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Data);
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'dog'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'emu'"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("'cat'"), std::string::npos) << msg;
  }
}

TEST(ImageFolder, ClassListMismatchNamesTheDifferences) {
  TempDir t("scan_mismatch");
  for (const char* p : {"train/cat/1.png", "train/dog/1.png", "train/emu/1.png", "val/cat/1.png",
                        "val/dog/1.png", "val/yak/1.png"})
    touch(t / p);
  const auto train = vit::scan_image_folder(t / "train");
  const auto val = vit::scan_image_folder(t / "val");
  EXPECT_NO_THROW(vit::check_same_classes(train, train, "train"));
  try {
    vit::check_same_classes(train, val, "val");
    FAIL() << "expected a data error";
  } catch (const vit::Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Data);
    const std::string msg = e.what();
    EXPECT_NE(msg.find("missing 'emu'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("extra 'yak'"), std::string::npos) << msg;
  }
}

TEST(ImageFolder, SymlinksAreFollowedAndCyclesCut) {
  TempDir t("scan_links");
  touch(t / "c/real/1.png");
  fs::create_directory_symlink(t / "c/real", t / "c/link");  // os.walk(followlinks=True) enters it
  fs::create_directory_symlink(t / "c", t / "c/real/loop");  // a cycle must not hang
  const auto f = vit::scan_image_folder(t.path());
  const auto rel = relative_paths(f);
  ASSERT_GE(rel.size(), 2u);
  EXPECT_EQ(rel[0], "c/link/1.png");
  EXPECT_EQ(rel[1], "c/real/1.png");
}
