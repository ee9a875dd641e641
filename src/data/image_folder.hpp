// Scanning an image folder the way torchvision's ImageFolder does (ECOSYSTEM.md 3.5): classes are
// the immediate sub-folders sorted byte-wise, samples are found recursively class by class in
// os.walk-sorted order. Only names are read here; decoding lives in data/decode.hpp.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace vit {

struct ImageSample {
  std::string path;   // root/class/... joined with '/', as os.path.join would
  int32_t label = 0;  // index into ImageFolder::classes
};

struct ImageFolder {
  std::string root;
  std::vector<std::string> classes;           // byte-wise sorted sub-folder names
  std::vector<ImageSample> samples;           // torchvision order
  int64_t skipped_files = 0;                  // files without a png/jpg/jpeg extension
  std::vector<std::string> skipped_examples;  // the first few of them, for the log
};

// True for names ending in .png, .jpg or .jpeg, ASCII case-insensitive.
bool has_image_extension(const std::string& name);

// Throws Error: NoInput when root is missing or not a folder; Data when it has no class
// folders or a class has no image files (the message names the empty classes).
ImageFolder scan_image_folder(const std::string& root);

// Throws Error(Data) unless `other` has exactly train's classes in the same order; the message
// lists the classes missing from `other` and the extra ones. `what` names `other` ("val").
void check_same_classes(const ImageFolder& train, const ImageFolder& other, const std::string& what);

}  // namespace vit
