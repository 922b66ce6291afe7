// Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/seed-*: small valid
// files made by Bulwark's own writers (and a few hand-made ones), which the fuzzers mutate.
// Usage: bulwark_fuzz_seeds CORPUS_DIR
#include <zlib.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "bulwark/core/seed.h"
#include "bulwark/data/image_io.h"
#include "bulwark/defenses/learned_detector.h"
#include "bulwark/models/model_zoo.h"
#include "bulwark/security/keys.h"
#include "bulwark/security/sealed_file.h"
#include "fuzz/targets.h"

namespace fs = std::filesystem;
using namespace bulwark;

namespace {

void write(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string gzip(const std::string& bytes) {
  uLongf size = compressBound(bytes.size()) + 64;
  std::string out(size, '\0');
  z_stream z{};
  deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  z.avail_in = static_cast<uInt>(bytes.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string idx(uint8_t type, const std::vector<uint32_t>& dims, size_t element_size) {
  std::string s = {0, 0, static_cast<char>(type), static_cast<char>(dims.size())};
  size_t n = 1;
  for (const auto d : dims) {
    for (int b = 3; b >= 0; --b) s.push_back(static_cast<char>((d >> (8 * b)) & 0xff));
    n *= d;
  }
  for (size_t i = 0; i < n * element_size; ++i) s.push_back(static_cast<char>(i * 13 % 251));
  return s;
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc != 2) {
    std::cerr << "usage: bulwark_fuzz_seeds CORPUS_DIR\n";
    return 2;
  }
  const fs::path corpus = argv[1];
  const fs::path tmp = fs::temp_directory_path() / "bulwark-fuzz-seeds";
  fs::create_directories(tmp);
  manual_seed(0);

  write(corpus / "idx_file" / "seed-images", idx(0x08, {2, 4, 4}, 1));
  write(corpus / "idx_file" / "seed-labels", idx(0x08, {3}, 1));
  write(corpus / "idx_file" / "seed-images.gz", gzip(idx(0x08, {2, 3, 3}, 1)));
  write(corpus / "idx_file" / "seed-float", idx(0x0D, {2, 2}, 4));

  std::string cifar;
  for (int record = 0; record < 2; ++record) {
    cifar.push_back(static_cast<char>(record + 3));
    for (int i = 0; i < 3072; ++i) cifar.push_back(static_cast<char>((i * 7 + record) % 256));
  }
  write(corpus / "cifar10_file" / "seed-two-records", cifar);

  write_png(tmp / "rgb.png", torch::rand({3, 5, 4}));
  write_png(tmp / "grey.png", torch::rand({1, 4, 4}));
  write_png(tmp / "alpha.png", torch::rand({3, 4, 4}), torch::rand({4, 4}));
  for (const auto* name : {"rgb.png", "grey.png", "alpha.png"}) {
    write(corpus / "png_file" / (std::string("seed-") + name), slurp(tmp / name));
  }

  ModelSpec mlp;
  mlp.arch = "mlp";
  mlp.hidden = {8};
  save_model(make_model(mlp), mlp, tmp / "mlp.pt");
  ModelSpec normalized = mlp;
  normalized.mean = {0.5};
  normalized.std = {0.25};
  save_model(make_model(normalized), normalized, tmp / "normalized.pt", R"({"note": "x"})");
  write(corpus / "model_file" / "seed-mlp.pt", slurp(tmp / "mlp.pt"));
  write(corpus / "model_file" / "seed-normalized.pt", slurp(tmp / "normalized.pt"));
  write(corpus / "model_file" / "seed-torchscript.pt",
        slurp(fs::path(BULWARK_SOURCE_DIR) / "tests/data/files/tiny_mlp.pt"));

  write(corpus / "model_spec" / "seed-default", ModelSpec().to_json());
  write(corpus / "model_spec" / "seed-mlp", normalized.to_json());
  ModelSpec resnet;
  resnet.arch = "resnet";
  resnet.in_channels = 3;
  resnet.image_size = 32;
  write(corpus / "model_spec" / "seed-resnet", resnet.to_json());

  const auto classifier = make_model(mlp);
  const auto clean = torch::rand({8, 1, 28, 28});
  auto detector = LearnedDetector::train(classifier, clean, (clean + 0.1).clamp(0, 1),
                                         LearnedDetectorOptions().layer("net").hidden({8}).epochs(1));
  detector.save(tmp / "detector.pt");
  write(corpus / "detector_file" / "seed-detector.pt", slurp(tmp / "detector.pt"));

  const auto key = SecretKey::from_bytes(fuzz::fuzz_secret_key_bytes());
  const auto signer = SigningKey::generate();
  std::string content(300, 'm');
  write(corpus / "sealed_file" / "seed-encrypted",
        seal(content, SealOptions().key(key).chunk_size(64)));
  write(corpus / "sealed_file" / "seed-encrypted-signed",
        seal(content, SealOptions().key(key).signing_key(signer).chunk_size(100)));
  write(corpus / "sealed_file" / "seed-signed", seal(content, SealOptions().signing_key(signer)));
  write(corpus / "sealed_file" / "seed-passphrase",
        seal(content, SealOptions().passphrase("p").passphrase_cost(
                          PassphraseCost().opslimit(1).memlimit(8192))));
  write(corpus / "sealed_file" / "seed-empty", seal("", SealOptions().key(key)));

  key.write(tmp / "secret.key");
  signer.write(tmp / "signing.key");
  signer.public_key().write(tmp / "public.key");
  for (const auto* name : {"secret.key", "signing.key", "public.key"}) {
    write(corpus / "key_file" / (std::string("seed-") + name), slurp(tmp / name));
  }
  fs::remove_all(tmp);
  std::cout << "wrote the seed corpus to " << corpus << "\n";
  return 0;
} catch (const std::exception& e) {
  std::cerr << "bulwark_fuzz_seeds: " << e.what() << "\n";
  return 1;
}
