#include "bulwark/data/idx.h"

#include <torch/torch.h>
#include <zlib.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "bulwark/core/files.h"
#include "core/check.h"
#include "data/byte_reader.h"

namespace bulwark {
namespace detail {

ByteReader::ByteReader(const std::filesystem::path& path, std::string_view where)
    : path_(path), where_(where) {
  BULWARK_CHECK(std::filesystem::exists(path), "{}: file '{}' does not exist", where,
                path.string());
  BULWARK_CHECK(std::filesystem::is_regular_file(path), "{}: '{}' is not a regular file", where,
                path.string());
  file_ = gzopen(path.c_str(), "rb");
  BULWARK_CHECK(file_ != nullptr, "{}: cannot open '{}': {}", where, path.string(),
                std::strerror(errno));
}

ByteReader::~ByteReader() {
  if (file_ != nullptr) gzclose(static_cast<gzFile>(file_));
}

size_t ByteReader::read(void* data, size_t size) {
  auto* out = static_cast<char*>(data);
  size_t total = 0;
  while (total < size) {
    const auto chunk = static_cast<unsigned>(std::min<size_t>(size - total, 1u << 30));
    const int got = gzread(static_cast<gzFile>(file_), out + total, chunk);
    if (got < 0) {
      int code = 0;
      const char* message = gzerror(static_cast<gzFile>(file_), &code);
      throw Error(fmt::format("{}: '{}' is corrupt or unreadable: {}", where_, path_.string(),
                              message != nullptr ? message : "read error"));
    }
    if (got == 0) break;
    total += static_cast<size_t>(got);
  }
  return total;
}

void ByteReader::read_exact(void* data, size_t size, std::string_view what) {
  const auto got = read(data, size);
  BULWARK_CHECK(got == size, "{}: '{}' is truncated: expected {} bytes of {}, got {}", where_,
                path_.string(), size, what, got);
}

bool ByteReader::at_end() {
  char c = 0;
  return read(&c, 1) == 0;
}

}  // namespace detail

at::Tensor read_idx(const std::filesystem::path& path) {
  constexpr std::string_view where = "read_idx";
  detail::ByteReader reader(path, where);
  std::array<uint8_t, 4> magic{};
  reader.read_exact(magic.data(), magic.size(), "header");
  BULWARK_CHECK(magic[0] == 0 && magic[1] == 0,
                "read_idx: '{}' is not an IDX file: its magic number starts with bytes {:#04x} "
                "{:#04x}, expected 0x00 0x00",
                path.string(), magic[0], magic[1]);
  BULWARK_CHECK(magic[2] == 0x08,
                "read_idx: '{}' has element type code {:#04x}; only unsigned bytes (0x08) are "
                "supported",
                path.string(), magic[2]);
  const int dims = magic[3];
  BULWARK_CHECK(dims >= 1 && dims <= 4, "read_idx: '{}' declares {} dimensions, expected 1 to 4",
                path.string(), dims);
  std::vector<int64_t> shape(dims);
  int64_t count = 1;
  // The product of the nonzero sizes: a zero size makes the data empty, but the shape must
  // still be one a tensor can have (LibTorch refuses shapes whose product overflows).
  int64_t extent = 1;
  for (int d = 0; d < dims; ++d) {
    std::array<uint8_t, 4> b{};
    reader.read_exact(b.data(), b.size(), "header");
    shape[d] = (int64_t{b[0]} << 24) | (int64_t{b[1]} << 16) | (int64_t{b[2]} << 8) | b[3];
    // 2^33 bytes is far beyond any IDX data set and keeps the product from overflowing.
    BULWARK_CHECK(shape[d] <= (int64_t{1} << 33) / extent,
                  "read_idx: '{}' declares an implausible size ({} in dimension {})",
                  path.string(), shape[d], d);
    count *= shape[d];
    extent *= std::max<int64_t>(shape[d], 1);
  }
  // Grow the buffer as data arrives, so a lying header costs no more memory than the data
  // really present.
  std::vector<uint8_t> data;
  auto remaining = static_cast<size_t>(count);
  while (remaining > 0) {
    const size_t chunk = std::min<size_t>(remaining, size_t{16} << 20);
    const size_t old_size = data.size();
    data.resize(old_size + chunk);
    const size_t got = reader.read(data.data() + old_size, chunk);
    data.resize(old_size + got);
    remaining -= got;
    if (got < chunk) break;
  }
  BULWARK_CHECK(remaining == 0, "read_idx: '{}' is truncated: its header declares {} data bytes, got {}",
                path.string(), count, data.size());
  auto result = at::empty(shape, at::TensorOptions().dtype(at::kByte));
  if (count > 0) std::memcpy(result.mutable_data_ptr<uint8_t>(), data.data(), data.size());
  BULWARK_CHECK(reader.at_end(),
                "read_idx: '{}' has bytes after the {} its header declares: wrong header or "
                "corrupt file",
                path.string(), count);
  return result;
}

namespace {

std::filesystem::path find_file(const std::filesystem::path& directory, const std::string& stem) {
  for (const auto& candidate : {directory / (stem + ".gz"), directory / stem}) {
    if (std::filesystem::exists(candidate)) return candidate;
  }
  throw Error(fmt::format("load_mnist_format: neither '{}' nor '{}' exists", 
                          (directory / (stem + ".gz")).string(), (directory / stem).string()));
}

}  // namespace

Dataset load_mnist_format(const std::filesystem::path& directory, Split split,
                          const std::string& name) {
  BULWARK_CHECK(std::filesystem::is_directory(directory),
                "load_mnist_format: data directory '{}' does not exist", directory.string());
  const std::string prefix = split == Split::Train ? "train" : "t10k";
  const auto image_file = find_file(directory, prefix + "-images-idx3-ubyte");
  const auto label_file = find_file(directory, prefix + "-labels-idx1-ubyte");
  const auto images = read_idx(image_file);
  const auto labels = read_idx(label_file);
  BULWARK_CHECK(images.dim() == 3, "load_mnist_format: '{}' must hold images [N, H, W], got {}",
                image_file.string(), detail::shape_string(images));
  BULWARK_CHECK(labels.dim() == 1, "load_mnist_format: '{}' must hold labels [N], got {}",
                label_file.string(), detail::shape_string(labels));
  BULWARK_CHECK(images.size(0) == labels.size(0),
                "load_mnist_format: '{}' has {} images but '{}' has {} labels",
                image_file.string(), images.size(0), label_file.string(), labels.size(0));
  BULWARK_CHECK(labels.numel() == 0 || labels.max().item<int64_t>() < 10,
                "load_mnist_format: '{}' has a label {} outside [0, 10)", label_file.string(),
                labels.numel() ? labels.max().item<int64_t>() : 0);
  return Dataset(images.unsqueeze(1).to(at::kFloat).div_(255.0f), labels.to(at::kLong), 10,
                 name + (split == Split::Train ? "-train" : "-test"));
}

void write_idx(const std::filesystem::path& path, const at::Tensor& bytes) {
  BULWARK_CHECK(bytes.defined() && bytes.scalar_type() == at::kByte,
                "write_idx: the tensor must be uint8, got {}",
                bytes.defined() ? detail::dtype_string(bytes) : "undefined");
  BULWARK_CHECK(bytes.dim() >= 1 && bytes.dim() <= 4,
                "write_idx: the tensor must have 1 to 4 dimensions, got {}", bytes.dim());
  const auto data = bytes.contiguous().cpu();
  std::string header = {0, 0, 0x08, static_cast<char>(data.dim())};
  for (const int64_t size : data.sizes()) {
    BULWARK_CHECK(size < (int64_t{1} << 32), "write_idx: size {} does not fit IDX's 32 bits", size);
    for (const int shift : {24, 16, 8, 0}) header.push_back(static_cast<char>((size >> shift) & 0xff));
  }
  write_file_atomically(path, [&](const std::filesystem::path& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    BULWARK_CHECK(out.good(), "write_idx: cannot open '{}' for writing", tmp.string());
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    out.write(reinterpret_cast<const char*>(data.const_data_ptr<uint8_t>()),
              static_cast<std::streamsize>(data.numel()));
    out.flush();
    BULWARK_CHECK(out.good(), "write_idx: writing '{}' failed", path.string());
  });
}

void save_mnist_format(const Dataset& data, const std::filesystem::path& directory, Split split) {
  BULWARK_CHECK(std::filesystem::is_directory(directory),
                "save_mnist_format: directory '{}' does not exist", directory.string());
  const auto& images = data.images;
  BULWARK_CHECK(images.defined() && images.dim() == 4 && images.size(1) == 1,
                "save_mnist_format: images must be [N, 1, H, W], got {}",
                images.defined() ? detail::shape_string(images) : "undefined");
  BULWARK_CHECK(images.numel() == 0 ||
                    (images.min().item<double>() >= 0 && images.max().item<double>() <= 1),
                "save_mnist_format: images must lie in [0, 1]");
  BULWARK_CHECK(data.labels.numel() == 0 || (data.labels.min().item<int64_t>() >= 0 &&
                                             data.labels.max().item<int64_t>() < 10),
                "save_mnist_format: labels must lie in [0, 10)");
  const std::string prefix = split == Split::Train ? "train" : "t10k";
  write_idx(directory / (prefix + "-images-idx3-ubyte"),
            images.squeeze(1).cpu().to(at::kFloat).mul(255.0f).round().to(at::kByte));
  write_idx(directory / (prefix + "-labels-idx1-ubyte"), data.labels.cpu().to(at::kByte));
}

std::filesystem::path default_fashion_mnist_dir() {
  if (const char* env = std::getenv("BULWARK_FASHION_MNIST"); env != nullptr && *env != '\0') {
    return env;
  }
  return "/usr/share/datasets/fashion-mnist";
}

Dataset load_fashion_mnist(Split split, const std::filesystem::path& directory) {
  auto data = load_mnist_format(directory, split, "fashion-mnist");
  // Xiao et al. 2017's labels.
  data.class_names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return data;
}

}  // namespace bulwark
