// `bulwark keygen`, `seal`, `unseal`, `sign` and `verify`: keys and sealed (encrypted, signed)
// model files.
#include <fmt/format.h>

#include <filesystem>

#include "bulwark/security/keys.h"
#include "bulwark/security/sealed_file.h"
#include "cli/cli_common.h"
#include "cli/commands.h"
#include "cli/sealed_options.h"
#include "cli/validators.h"
#include "core/check.h"

namespace bulwark::cli {
namespace {
namespace fs = std::filesystem;

struct KeygenArgs {
  std::string out;
  std::string public_out;
  bool signing = false;
  bool force = false;
};

void check_new_key_path(const std::string& option, const std::string& path, bool force) {
  check_output_path(option, path);
  BULWARK_CHECK(force || !fs::exists(path),
                "{}: '{}' exists; a key is never overwritten without --force (the files it "
                "sealed could no longer be opened)",
                option, path);
}

void run_keygen(const KeygenArgs& args) {
  if (!args.signing) {
    BULWARK_CHECK(args.public_out.empty(), "--public-out is for --signing keys only");
    check_new_key_path("--out", args.out, args.force);
    SecretKey::generate().write(args.out);
    fmt::print("wrote the secret key {} (32 bytes, readable by its owner only)\n", args.out);
    return;
  }
  const auto public_out = args.public_out.empty()
                              ? fs::path(args.out).replace_extension(".pub").string()
                              : args.public_out;
  BULWARK_CHECK(public_out != args.out, "--public-out must differ from --out");
  check_new_key_path("--out", args.out, args.force);
  check_new_key_path("--public-out", public_out, args.force);
  const auto key = SigningKey::generate();
  key.write(args.out);
  key.public_key().write(public_out);
  fmt::print("wrote the signing key {} (readable by its owner only) and its public key {}; key id "
             "{}\n",
             args.out, public_out, key.public_key().id());
}

std::string describe(const SealedFileInfo& info) {
  std::string what = info.encrypted
                         ? (info.passphrase ? "encrypted (passphrase, Argon2id)" : "encrypted (key)")
                         : "not encrypted";
  what += info.is_signed ? fmt::format(", signed by key {}", info.signer_id) : ", not signed";
  return fmt::format("{}; {} bytes of content, {} bytes on disk", what, info.content_size,
                     info.file_size);
}

struct SealArgs {
  std::string in, out;
  SealedArgs sealed;
  std::string sign_key;
  std::string cost = "moderate";
  int64_t chunk_size = int64_t{1} << 20;
};

PassphraseCost parse_cost(const std::string& name) {
  // libsodium's named limits for crypto_pwhash_argon2id.
  if (name == "interactive") return PassphraseCost().opslimit(2).memlimit(uint64_t{64} << 20);
  if (name == "sensitive") return PassphraseCost().opslimit(4).memlimit(uint64_t{1} << 30);
  return PassphraseCost().opslimit(3).memlimit(uint64_t{256} << 20);
}

void run_seal(const SealArgs& args) {
  check_output_path("--out", args.out);
  BULWARK_CHECK(args.sealed.trust.empty(), "--trust is for opening sealed files, not sealing");
  const auto given = unseal_options(args.sealed);
  SealOptions options;
  options.key(given.key())
      .passphrase(given.passphrase())
      .passphrase_cost(parse_cost(args.cost))
      .chunk_size(args.chunk_size);
  if (!args.sign_key.empty()) options.signing_key(SigningKey::read(args.sign_key));
  seal_file(args.in, args.out, options);
  fmt::print("sealed {} into {}: {}\n", args.in, args.out, describe(inspect_sealed_file(args.out)));
}

struct UnsealArgs {
  std::string in, out;
  SealedArgs sealed;
};

void run_unseal(const UnsealArgs& args) {
  check_output_path("--out", args.out);
  unseal_file(args.in, args.out, unseal_options(args.sealed));
  fmt::print("wrote the plain content of {} to {}\n", args.in, args.out);
}

struct SignArgs {
  std::string in, out, sign_key;
};

void run_sign(const SignArgs& args) {
  check_output_path("--out", args.out);
  sign_file(args.in, args.out, SigningKey::read(args.sign_key));
  fmt::print("signed {} into {}: {}\n", args.in, args.out, describe(inspect_sealed_file(args.out)));
}

struct VerifyArgs {
  std::string in;
  std::vector<std::string> trust;
};

void run_verify(const VerifyArgs& args) {
  BULWARK_CHECK(is_sealed_file(args.in), "'{}' is not a sealed file: nothing to verify", args.in);
  // The structure, the signature and the signer against the trusted keys (whole keys, not
  // ids); no decryption.
  const auto info = inspect_sealed_file(args.in, read_trusted_keys(args.trust));
  fmt::print("{}: valid signature by trusted key {}; {}\n", args.in, info.signer_id,
             describe(info));
}

}  // namespace

Command add_keygen_command(CLI::App& app, const GlobalOptions&) {
  auto args = std::make_shared<KeygenArgs>();
  auto* cmd = app.add_subcommand(
      "keygen", "Make a secret key for sealing, or an Ed25519 signing key and its public key");
  cmd->add_option("--out", args->out, "Where to write the (secret) key")->required();
  cmd->add_flag("--signing", args->signing,
                "Make a signing key pair instead of an encryption key");
  cmd->add_option("--public-out", args->public_out,
                  "Where to write the public key of --signing (default: --out with .pub)");
  cmd->add_flag("--force", args->force, "Overwrite existing key files");
  return {cmd, [args] { run_keygen(*args); }};
}

Command add_seal_command(CLI::App& app, const GlobalOptions&) {
  auto args = std::make_shared<SealArgs>();
  auto* cmd = app.add_subcommand(
      "seal", "Encrypt (key or passphrase) and/or sign a model or checkpoint file");
  cmd->add_option("--in", args->in, "File to seal")->required()->check(CLI::ExistingFile);
  cmd->add_option("--out", args->out, "Sealed file to write")->required();
  add_sealed_options(cmd, args->sealed);
  cmd->add_option("--sign-key", args->sign_key, "Also sign with this signing key");
  cmd->add_option("--passphrase-cost", args->cost,
                  "Argon2id cost of a passphrase (libsodium's limits: interactive 64 MiB, "
                  "moderate 256 MiB, sensitive 1 GiB)")
      ->check(CLI::IsMember({"interactive", "moderate", "sensitive"}));
  cmd->add_option("--chunk-size", args->chunk_size, "Bytes per encrypted chunk")
      ->check(in_interval<int64_t>(1, int64_t{64} << 20));
  return {cmd, [args] { run_seal(*args); }};
}

Command add_unseal_command(CLI::App& app, const GlobalOptions&) {
  auto args = std::make_shared<UnsealArgs>();
  auto* cmd = app.add_subcommand(
      "unseal", "Check and decrypt a sealed file, writing its plain content");
  cmd->add_option("--in", args->in, "Sealed file")->required()->check(CLI::ExistingFile);
  cmd->add_option("--out", args->out, "Plain file to write")->required();
  add_sealed_options(cmd, args->sealed);
  return {cmd, [args] { run_unseal(*args); }};
}

Command add_sign_command(CLI::App& app, const GlobalOptions&) {
  auto args = std::make_shared<SignArgs>();
  auto* cmd = app.add_subcommand(
      "sign", "Sign a sealed file (or wrap a plain file into a signed one) with Ed25519");
  cmd->add_option("--in", args->in, "File to sign")->required()->check(CLI::ExistingFile);
  cmd->add_option("--out", args->out, "Signed file to write")->required();
  cmd->add_option("--sign-key", args->sign_key, "Signing key (from `bulwark keygen --signing`)")
      ->required();
  return {cmd, [args] { run_sign(*args); }};
}

Command add_verify_command(CLI::App& app, const GlobalOptions&) {
  auto args = std::make_shared<VerifyArgs>();
  auto* cmd = app.add_subcommand(
      "verify", "Check a sealed file's structure and signature, and that its signer is trusted");
  cmd->add_option("--in", args->in, "Sealed file")->required()->check(CLI::ExistingFile);
  cmd->add_option("--trust", args->trust,
                  "Trusted public key (repeatable: any one of them); a signature by an "
                  "untrusted key proves nothing, so one is required")
      ->required();
  return {cmd, [args] { run_verify(*args); }};
}

}  // namespace bulwark::cli
