#include "cli/sealed_options.h"

#include <cstdlib>
#include <fstream>

#include "core/check.h"

namespace bulwark::cli {

void add_sealed_options(CLI::App* cmd, SealedArgs& args) {
  cmd->add_option("--key-file", args.key_file,
                  "Key of a sealed model file (32 bytes, from `bulwark keygen`)")
      ->envname("BULWARK_KEY_FILE");
  cmd->add_option("--passphrase-file", args.passphrase_file,
                  "File whose first line is the passphrase of a sealed model file (or set "
                  "BULWARK_PASSPHRASE)");
  cmd->add_option("--trust", args.trust,
                  "Public key (.pub) whose signature the model file must carry (repeatable: any "
                  "one of them)");
}

std::string read_passphrase(const std::string& passphrase_file) {
  if (passphrase_file.empty()) {
    const char* env = std::getenv("BULWARK_PASSPHRASE");
    if (env == nullptr) return {};
    // Set but empty is a mistake to report, not "no passphrase": sealing would then quietly
    // not encrypt.
    BULWARK_CHECK(*env != '\0', "BULWARK_PASSPHRASE is set but empty");
    return env;
  }
  std::ifstream in(passphrase_file);
  BULWARK_CHECK(in.good(), "--passphrase-file: cannot read '{}'", passphrase_file);
  std::string line;
  std::getline(in, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  BULWARK_CHECK(!line.empty(), "--passphrase-file: the first line of '{}' is empty",
                passphrase_file);
  return line;
}

UnsealOptions unseal_options(const SealedArgs& args) {
  UnsealOptions options;
  if (!args.key_file.empty()) options.key(SecretKey::read(args.key_file));
  options.passphrase(read_passphrase(args.passphrase_file));
  options.trusted_keys(read_trusted_keys(args.trust));
  return options;
}

std::vector<PublicKey> read_trusted_keys(const std::vector<std::string>& paths) {
  std::vector<PublicKey> keys;
  for (const auto& path : paths) keys.push_back(PublicKey::read(path));
  return keys;
}

}  // namespace bulwark::cli
