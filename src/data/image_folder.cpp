// torchvision-compatible image-folder scan. The order rules (pytorch/vision folder.py):
// classes = sorted(d for d in scandir(root) if d.is_dir()); per class,
// for dirpath, _, files in sorted(os.walk(class_dir, followlinks=True)): for f in sorted(files).
// Python sorts str by code point, which equals byte order for UTF-8, so plain std::sort matches.
#include "data/image_folder.hpp"

#include <algorithm>
#include <filesystem>
#include <set>
#include <system_error>
#include <utility>

#include "core/error.hpp"

namespace vit {
namespace fs = std::filesystem;

namespace {

std::string ascii_lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// One os.walk step: (dirpath, non-directory names). Directory symlinks are followed, like
// followlinks=True. A directory whose canonical path is one of its own ancestors (a symlink
// cycle, where os.walk would loop forever) is not entered; `stack` holds those ancestors.
using WalkEntry = std::pair<std::string, std::vector<std::string>>;

void walk(const std::string& dir, std::vector<WalkEntry>& out, std::set<std::string>& stack) {
  std::error_code ec;
  const std::string canon = fs::canonical(dir, ec).string();
  if (ec || !stack.insert(canon).second) return;
  std::vector<std::string> files, subdirs;
  fs::directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::error_code ec2;
    if (it->is_directory(ec2)) subdirs.push_back(name);  // follows symlinks, like DirEntry.is_dir()
    else files.push_back(name);
  }
  std::sort(files.begin(), files.end());
  out.emplace_back(dir, std::move(files));
  for (const std::string& sub : subdirs) walk(dir + "/" + sub, out, stack);
  stack.erase(canon);
}

// Well-formed UTF-8 (no overlong forms, surrogates or code points above U+10FFFF).
bool valid_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  for (size_t i = 0, n = s.size(); i < n;) {
    const unsigned c = p[i];
    size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || i + len > n) return false;
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

std::string join_names(const std::vector<std::string>& names) {
  std::string s;
  for (size_t i = 0; i < names.size(); ++i) s += (i ? ", '" : "'") + names[i] + "'";
  return s;
}

}  // namespace

bool has_image_extension(const std::string& name) {
  const std::string lower = ascii_lower(name);
  return ends_with(lower, ".png") || ends_with(lower, ".jpg") || ends_with(lower, ".jpeg");
}

ImageFolder scan_image_folder(const std::string& root_in) {
  std::string root = root_in;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  std::error_code ec;
  if (root.empty() || !fs::is_directory(root, ec))
    fail(ErrorKind::NoInput, "image folder '", root_in, "' does not exist or is not a folder");

  ImageFolder folder;
  folder.root = root;
  fs::directory_iterator it(root, ec), end;
  if (ec) fail(ErrorKind::NoInput, "cannot list image folder '", root, "': ", ec.message());
  for (; !ec && it != end; it.increment(ec)) {
    std::error_code ec2;
    if (it->is_directory(ec2)) folder.classes.push_back(it->path().filename().string());
  }
  std::sort(folder.classes.begin(), folder.classes.end());
  // Class names travel through JSON (checkpoints, stdout), which holds UTF-8 only: a non-UTF-8
  // name would come back replaced and no longer match its folder when the checkpoint is evaluated.
  for (const std::string& c : folder.classes)
    if (!valid_utf8(c))
      fail(ErrorKind::Data, "image folder '", root, "': class folder name '", c,
           "' is not valid UTF-8 (class names are stored in JSON); rename it");
  if (folder.classes.empty())
    fail(ErrorKind::Data, "image folder '", root, "' has no class sub-folders (expected ",
         "root/<class>/<image>.png)");

  std::vector<std::string> empty_classes;
  for (size_t label = 0; label < folder.classes.size(); ++label) {
    std::vector<WalkEntry> entries;
    std::set<std::string> stack;
    walk(root + "/" + folder.classes[label], entries, stack);
    std::sort(entries.begin(), entries.end(),
              [](const WalkEntry& a, const WalkEntry& b) { return a.first < b.first; });
    const size_t before = folder.samples.size();
    for (const WalkEntry& entry : entries) {
      for (const std::string& name : entry.second) {
        std::string path = entry.first + "/" + name;
        if (has_image_extension(name)) {
          folder.samples.push_back({std::move(path), static_cast<int32_t>(label)});
        } else {
          if (folder.skipped_examples.size() < 5) folder.skipped_examples.push_back(std::move(path));
          ++folder.skipped_files;
        }
      }
    }
    if (folder.samples.size() == before) empty_classes.push_back(folder.classes[label]);
  }
  if (!empty_classes.empty())
    fail(ErrorKind::Data, "image folder '", root, "': no .png/.jpg/.jpeg files for the classes ",
         join_names(empty_classes));
  return folder;
}

void check_same_classes(const ImageFolder& train, const ImageFolder& other, const std::string& what) {
  if (train.classes == other.classes) return;
  const std::set<std::string> a(train.classes.begin(), train.classes.end());
  const std::set<std::string> b(other.classes.begin(), other.classes.end());
  std::vector<std::string> missing, extra;
  for (const std::string& c : a)
    if (!b.count(c)) missing.push_back(c);
  for (const std::string& c : b)
    if (!a.count(c)) extra.push_back(c);
  fail(ErrorKind::Data, what, " folder '", other.root, "' has different classes from the training folder '",
       train.root, "': missing ", missing.empty() ? "none" : join_names(missing), "; extra ",
       extra.empty() ? "none" : join_names(extra));
}

}  // namespace vit
