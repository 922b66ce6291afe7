#include "fuzz/targets.h"

#include <unistd.h>

#include <fstream>
#include <string_view>

#include "bulwark/core/error.h"
#include "bulwark/data/cifar10.h"
#include "bulwark/data/idx.h"
#include "bulwark/data/image_io.h"
#include "bulwark/defenses/learned_detector.h"
#include "bulwark/models/model_zoo.h"
#include "bulwark/security/keys.h"
#include "bulwark/security/sealed_file.h"

namespace bulwark::fuzz {
namespace fs = std::filesystem;

namespace {

// Runs `parse`; a bulwark::Error is the parser refusing bad bytes, which is fine.
template <typename F>
int expect_refusal_or_success(F&& parse) {
  try {
    parse();
  } catch (const Error&) {
  }
  return 0;
}

fs::path scratch_directory() {
  static const fs::path dir = [] {
    const fs::path base = fs::is_directory("/dev/shm") ? fs::path("/dev/shm")
                                                         : fs::temp_directory_path();
    auto d = base / ("bulwark-fuzz-" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

}  // namespace

fs::path scratch_file(const uint8_t* data, size_t size, const std::string& name) {
  const auto path = scratch_directory() / name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

std::vector<uint8_t> fuzz_secret_key_bytes() {
  std::vector<uint8_t> key(32);
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(7 * i + 1);
  return key;
}

int idx_file(const uint8_t* data, size_t size) {
  const auto path = scratch_file(data, size, "data.idx");
  return expect_refusal_or_success([&] { read_idx(path); });
}

int cifar10_file(const uint8_t* data, size_t size) {
  const auto path = scratch_file(data, size, "data_batch_1.bin");
  return expect_refusal_or_success([&] { read_cifar10_batches({path}); });
}

int png_file(const uint8_t* data, size_t size) {
  const auto path = scratch_file(data, size, "image.png");
  return expect_refusal_or_success([&] { read_png(path); });
}

int model_file(const uint8_t* data, size_t size) {
  const auto path = scratch_file(data, size, "model.pt");
  return expect_refusal_or_success([&] {
    auto loaded = load_model(path);
    // A model that loads must also answer (or refuse) a forward pass.
    if (loaded.spec) {
      const auto& s = *loaded.spec;
      if (s.in_channels * s.image_size * s.image_size <= 4096) {
        loaded.model.forward(at::zeros({1, s.in_channels, s.image_size, s.image_size}));
      }
    }
  });
}

int model_spec(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  return expect_refusal_or_success([&] {
    const auto spec = ModelSpec::from_json(text);
    // A valid spec round-trips.
    if (ModelSpec::from_json(spec.to_json()).to_json() != spec.to_json()) std::abort();
  });
}

int detector_file(const uint8_t* data, size_t size) {
  const auto path = scratch_file(data, size, "detector.pt");
  static const Model classifier = [] {
    ModelSpec spec;
    spec.arch = "mlp";
    spec.hidden = {8};
    return make_model(spec);
  }();
  return expect_refusal_or_success([&] { LearnedDetector::load(path, classifier); });
}

int sealed_file(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  static const auto key = SecretKey::from_bytes(fuzz_secret_key_bytes());
  expect_refusal_or_success([&] { inspect_sealed(bytes); });
  expect_refusal_or_success([&] { unseal(bytes, UnsealOptions().key(key)); });
  // No passphrase: a hostile header may ask Argon2id for gigabytes, which only a caller who
  // gives a passphrase pays for.
  return 0;
}

int key_file(const uint8_t* data, size_t size) {
  const auto path = scratch_file(data, size, "key");
  expect_refusal_or_success([&] { SecretKey::read(path); });
  expect_refusal_or_success([&] { PublicKey::read(path); });
  expect_refusal_or_success([&] { SigningKey::read(path); });
  return 0;
}

const std::vector<NamedTarget>& targets() {
  static const std::vector<NamedTarget> all = {
      {"idx_file", idx_file},         {"cifar10_file", cifar10_file},
      {"png_file", png_file},         {"model_file", model_file},
      {"model_spec", model_spec},     {"detector_file", detector_file},
      {"sealed_file", sealed_file},   {"key_file", key_file}};
  return all;
}

}  // namespace bulwark::fuzz
