// Sealed model files: seal and unseal throughput on 100 MB, and load_model of a sealed ~100 MB
// checkpoint against loading the same plain file (the floor, timed between the iterations).
// Argon2id's key derivation is timed on its own: it is a fixed cost per open, by design.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <filesystem>
#include <string>

#include "bulwark/core/seed.h"
#include "bulwark/models/model_zoo.h"
#include "bulwark/security/keys.h"
#include "bulwark/security/sealed_file.h"
#include "bench_util.h"

namespace {
namespace fs = std::filesystem;

constexpr size_t kContentBytes = size_t{100} << 20;

const std::string& content() {
  static const std::string bytes = [] {
    std::string s(kContentBytes, '\0');
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (auto& c : s) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      c = static_cast<char>(x);
    }
    return s;
  }();
  return bytes;
}

const bulwark::SecretKey& key() {
  static const auto k = bulwark::SecretKey::generate();
  return k;
}

const bulwark::SigningKey& signer() {
  static const auto k = bulwark::SigningKey::generate();
  return k;
}

// mode 0: encrypt; 1: encrypt and sign.
void BM_Seal(benchmark::State& state) {
  auto options = bulwark::SealOptions().key(key());
  if (state.range(0) == 1) options.signing_key(signer());
  for (auto _ : state) benchmark::DoNotOptimize(bulwark::seal(content(), options).data());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kContentBytes));
  state.SetLabel(state.range(0) == 1 ? "100 MB, encrypt + sign" : "100 MB, encrypt");
}

void BM_Unseal(benchmark::State& state) {
  auto seal_options = bulwark::SealOptions().key(key());
  auto open_options = bulwark::UnsealOptions().key(key());
  if (state.range(0) == 1) {
    seal_options.signing_key(signer());
    open_options.trusted_keys({signer().public_key()});
  }
  const auto sealed = bulwark::seal(content(), seal_options);
  for (auto _ : state) benchmark::DoNotOptimize(bulwark::unseal(sealed, open_options).data());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kContentBytes));
  state.SetLabel(state.range(0) == 1 ? "100 MB, check signature + decrypt" : "100 MB, decrypt");
}

// load_model of a sealed (encrypted and signed) checkpoint of about 100 MB, as a multiple of
// load_model of the plain file.
void BM_LoadSealedModel(benchmark::State& state) {
  const auto dir = fs::temp_directory_path() / "bulwark-security-bench";
  fs::create_directories(dir);
  bulwark::manual_seed(0);
  bulwark::ModelSpec spec;
  spec.arch = "mlp";
  spec.hidden = {8192, 2048};  // 23.2 M weights: 93 MB
  bulwark::save_model(bulwark::make_model(spec), spec, dir / "plain.pt");
  bulwark::seal_file(dir / "plain.pt", dir / "sealed.pt",
                     bulwark::SealOptions().key(key()).signing_key(signer()));
  const auto open = bulwark::UnsealOptions().key(key()).trusted_keys({signer().public_key()});
  const auto cpu = c10::Device(c10::kCPU);
  const double ratio = bulwark_bench::timed_against_floor(
      state,
      [&] { benchmark::DoNotOptimize(bulwark::load_model(dir / "sealed.pt", cpu, open)); },
      [&] {
        return bulwark_bench::mean_seconds(
            [&] { benchmark::DoNotOptimize(bulwark::load_model(dir / "plain.pt", cpu)); }, 2);
      });
  state.counters["x_plain_load"] = ratio;
  state.counters["megabytes"] = static_cast<double>(fs::file_size(dir / "plain.pt")) / 1e6;
  state.SetLabel("load_model, sealed (key + signature) vs plain");
  fs::remove_all(dir);
}

// Argon2id at libsodium's MODERATE cost (3 passes, 256 MiB): paid once per passphrase open.
void BM_PassphraseKeyDerivation(benchmark::State& state) {
  const auto options = bulwark::SealOptions().passphrase("correct horse battery staple");
  for (auto _ : state) benchmark::DoNotOptimize(bulwark::seal("", options).data());
  state.SetLabel("Argon2id, 3 passes, 256 MiB");
}

BENCHMARK(BM_Seal)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(BM_Unseal)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(BM_LoadSealedModel)->Unit(benchmark::kMillisecond)->Iterations(5);
BENCHMARK(BM_PassphraseKeyDerivation)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace
