#pragma once
// The options every command that reads a model file shares to open sealed files: --key-file
// (or BULWARK_KEY_FILE), --passphrase-file (or BULWARK_PASSPHRASE), --trust.

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "bulwark/security/sealed_file.h"

namespace bulwark::cli {

struct SealedArgs {
  std::string key_file;
  std::string passphrase_file;
  std::vector<std::string> trust;
};

/// --key-file, --passphrase-file and --trust (repeatable).
void add_sealed_options(CLI::App* cmd, SealedArgs& args);

/// The key, passphrase and trusted keys the options name.
/// @throws Error when a named file cannot be read or is no key.
UnsealOptions unseal_options(const SealedArgs& args);

/// The public keys of --trust. @throws Error when one cannot be read or is no public key.
std::vector<PublicKey> read_trusted_keys(const std::vector<std::string>& paths);

/// The passphrase from --passphrase-file (its first line), else from BULWARK_PASSPHRASE, else
/// empty. @throws Error when the file cannot be read or holds an empty first line.
std::string read_passphrase(const std::string& passphrase_file);

}  // namespace bulwark::cli
