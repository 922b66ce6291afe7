#include "bulwark/data/image_io.h"

#include <png.h>
#include <torch/torch.h>

#include <vector>

#include "bulwark/core/files.h"
#include "core/check.h"
#include "data/png_bytes.h"

namespace bulwark {
namespace detail {

void write_png_bytes(const std::filesystem::path& path, int64_t width, int64_t height,
                     int channels, const std::vector<uint8_t>& bytes) {
  BULWARK_CHECK(channels >= 1 && channels <= 4 &&
                    bytes.size() == static_cast<size_t>(width * height * channels),
                "write_png: internal error, {} bytes for {}x{}x{}", bytes.size(), width, height,
                channels);
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(width);
  image.height = static_cast<png_uint_32>(height);
  constexpr png_uint_32 kFormats[] = {PNG_FORMAT_GRAY, PNG_FORMAT_GA, PNG_FORMAT_RGB,
                                      PNG_FORMAT_RGBA};
  image.format = kFormats[channels - 1];
  const int ok = png_image_write_to_file(&image, path.c_str(), 0, bytes.data(), 0, nullptr);
  const std::string message = image.message;
  png_image_free(&image);
  BULWARK_CHECK(ok != 0, "write_png: libpng could not write '{}': {}", path.string(), message);
}

}  // namespace detail

at::Tensor read_png(const std::filesystem::path& path) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  BULWARK_CHECK(png_image_begin_read_from_file(&image, path.c_str()) != 0,
                "read_png: cannot read '{}' as PNG: {}", path.string(), image.message);
  const bool colour = (image.format & PNG_FORMAT_FLAG_COLOR) != 0;
  image.format = colour ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  const int64_t channels = colour ? 3 : 1;
  const int64_t height = image.height;
  const int64_t width = image.width;
  std::vector<uint8_t> bytes(static_cast<size_t>(PNG_IMAGE_SIZE(image)));
  const int ok = png_image_finish_read(&image, nullptr, bytes.data(), 0, nullptr);
  const std::string message = image.message;
  png_image_free(&image);
  BULWARK_CHECK(ok != 0, "read_png: cannot decode '{}': {}", path.string(), message);
  return torch::from_blob(bytes.data(), {height, width, channels}, torch::kUInt8)
      .permute({2, 0, 1})
      .to(torch::kFloat)
      .div(255)
      .contiguous();
}

void write_png(const std::filesystem::path& path, const at::Tensor& image, const at::Tensor& alpha,
               int64_t scale) {
  constexpr std::string_view where = "write_png";
  detail::check_float_tensor(where, "image", image, 3);
  BULWARK_CHECK(image.dim() == 3 && (image.size(0) == 1 || image.size(0) == 3) &&
                    image.size(1) > 0 && image.size(2) > 0,
                "write_png: image must be [1 or 3, H, W] with H, W >= 1, got {}",
                detail::shape_string(image));
  BULWARK_CHECK(scale >= 1, "write_png: scale must be >= 1, got {}", scale);
  auto planes = image.detach().cpu().to(at::kFloat);
  if (alpha.defined()) {
    detail::check_float_tensor(where, "alpha", alpha, 2);
    BULWARK_CHECK(alpha.dim() == 2 && alpha.size(0) == image.size(1) &&
                      alpha.size(1) == image.size(2),
                  "write_png: alpha must be [{}, {}] like the image, got {}", image.size(1),
                  image.size(2), detail::shape_string(alpha));
    planes = torch::cat({planes, alpha.detach().cpu().to(at::kFloat).unsqueeze(0)});
  }
  BULWARK_CHECK(planes.min().item<float>() >= 0 && planes.max().item<float>() <= 1,
                "write_png: image and alpha values must lie in [0, 1] (and not be NaN)");
  const auto pixels = planes.mul(255)
                          .round()
                          .to(at::kByte)
                          .repeat_interleave(scale, 1)
                          .repeat_interleave(scale, 2)
                          .permute({1, 2, 0})
                          .contiguous();
  const auto* data = pixels.const_data_ptr<uint8_t>();
  const std::vector<uint8_t> bytes(data, data + pixels.numel());
  write_file_atomically(path, [&](const std::filesystem::path& tmp) {
    detail::write_png_bytes(tmp, pixels.size(1), pixels.size(0),
                            static_cast<int>(pixels.size(2)), bytes);
  });
}

}  // namespace bulwark
