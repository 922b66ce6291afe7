#pragma once
/// @file
/// Sealed files: any file's bytes (a model, a checkpoint) encrypted and authenticated with
/// libsodium's crypto_secretstream_xchacha20poly1305 in chunks, and/or signed with Ed25519, so
/// that a model cannot be read without its key, nor changed, truncated, reordered or replaced
/// without the change being refused when it is opened. The format is described in
/// docs/security/sealed-files.md.
///
/// Opening verifies everything before it returns a byte: the header, every chunk's tag, the
/// final tag, the exact length and, when present or required, the signature. Decrypted bytes
/// stay in memory (load_model reads models from them); they never touch the disk unless the
/// caller writes them (unseal_file).

#include <torch/arg.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bulwark/security/keys.h"

namespace bulwark {

/// Argon2id cost of a passphrase-derived key (crypto_pwhash). Defaults: libsodium's MODERATE
/// limits (3 passes, 256 MiB), its advice for keys that protect data at rest.
struct PassphraseCost {
  TORCH_ARG(uint64_t, opslimit) = 3;
  TORCH_ARG(uint64_t, memlimit) = uint64_t{256} << 20;
};

/// How to seal: encrypt with a key or a passphrase, sign, or both (at least one).
struct SealOptions {
  /// Encrypt with this key.
  TORCH_ARG(std::optional<SecretKey>, key);
  /// Encrypt with a key derived from this passphrase by Argon2id (salt and cost in the header).
  TORCH_ARG(std::string, passphrase);
  TORCH_ARG(PassphraseCost, passphrase_cost);
  /// Sign the header and the encrypted (or plain) content with this key.
  TORCH_ARG(std::optional<SigningKey>, signing_key);
  /// Plaintext bytes per encrypted chunk (1 MiB; at most 64 MiB).
  TORCH_ARG(int64_t, chunk_size) = int64_t{1} << 20;
};

/// How to open: the key or passphrase of an encrypted file, and which signers to trust. With
/// a key or a passphrase, the file must be encrypted (a signed-only file in its place is
/// refused).
struct UnsealOptions {
  TORCH_ARG(std::optional<SecretKey>, key);
  TORCH_ARG(std::string, passphrase);
  /// A signature by one of these keys is required. Empty: a signature, when present, must be
  /// valid, but any signer is accepted.
  TORCH_ARG(std::vector<PublicKey>, trusted_keys);
  /// Refuse plain (unsealed) files. load_model implies it when a key, a passphrase or trusted
  /// keys are given, so that a sealed model cannot be swapped for a plain one.
  TORCH_ARG(bool, require_sealed) = false;
};

/// What a sealed file's header and signature block say (no key needed to read it).
struct SealedFileInfo {
  bool encrypted = false;
  bool passphrase = false;  ///< the key is derived from a passphrase
  bool is_signed = false;
  std::string signer_id;    ///< PublicKey::id() of the signer, when signed
  uint64_t content_size = 0;
  int64_t chunk_size = 0;
  uint64_t file_size = 0;
};

/// True when the bytes start with the sealed-file magic.
bool is_sealed(std::string_view file_bytes);
/// True when the file exists and starts with the sealed-file magic.
bool is_sealed_file(const std::filesystem::path& path);

/// Seals `content` and returns the sealed file's bytes.
/// @throws Error when the options neither encrypt nor sign, or the chunk size is out of range.
std::string seal(std::string_view content, const SealOptions& options);
/// Seals the file `in` into `out` (written atomically).
void seal_file(const std::filesystem::path& in, const std::filesystem::path& out,
               const SealOptions& options);

/// The content of a sealed file's bytes, after every check (see the file comment).
/// @throws Error with one clear reason: not sealed, corrupt or truncated header, wrong key or
/// passphrase, a chunk that fails authentication (flipped, reordered, duplicated), truncation,
/// trailing bytes, a bad signature, an untrusted signer, or a missing signature when trusted
/// keys are given.
std::string unseal(std::string_view file_bytes, const UnsealOptions& options);
/// Unseals `in` and writes the plain content to `out` atomically.
void unseal_file(const std::filesystem::path& in, const std::filesystem::path& out,
                 const UnsealOptions& options);

/// Reads the header and signature block, checking the structure and, when signed, that the
/// signature is valid for the embedded key (no decryption key needed). With `trusted_keys`, the
/// file must also be signed by one of them: without, a valid signature only shows the file is
/// as its signer left it, and anyone can strip or replace a signature.
/// @throws Error as unseal does for structure and signature problems.
SealedFileInfo inspect_sealed(std::string_view file_bytes,
                              const std::vector<PublicKey>& trusted_keys = {});
/// inspect_sealed on a file. @throws Error naming the file.
SealedFileInfo inspect_sealed_file(const std::filesystem::path& path,
                                   const std::vector<PublicKey>& trusted_keys = {});

/// Adds (or replaces) an Ed25519 signature: a sealed file keeps its header and content; a plain
/// file is wrapped into a signed, unencrypted sealed file. Returns the new file's bytes. Signing
/// an encrypted file vouches for its bytes, not for a model the signer may not be able to read.
/// @throws Error when the file is sealed but malformed, or its present signature does not match.
std::string sign(std::string_view file_bytes, const SigningKey& key);
/// sign() from file to file (atomic).
void sign_file(const std::filesystem::path& in, const std::filesystem::path& out,
               const SigningKey& key);

/// The file's bytes as they are on disk, or its plain content when it is sealed (unsealed with
/// `options`); plain files are refused when options.require_sealed() is set.
/// @throws Error as unseal does, or when the file cannot be read.
std::string read_possibly_sealed(const std::filesystem::path& path, const UnsealOptions& options);

/// Overwrites the bytes with zeros in a way the compiler cannot drop (sodium_memzero): for plain
/// content once it is no longer needed.
void wipe_bytes(std::string& bytes);

}  // namespace bulwark
