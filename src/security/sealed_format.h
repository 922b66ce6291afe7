#pragma once
// Private to the security area: the sealed-file format (the 96-byte header, the chunked
// secretstream body, the signature block), its strict parser, the signature over it and the
// key checks. seal/unseal (sealed_file.cpp) build on these. Layout in
// docs/security/sealed-files.md.

#include <sodium.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bulwark/security/keys.h"

namespace bulwark::detail {

inline constexpr char kMagic[8] = {'B', 'L', 'W', 'K', 'S', 'E', 'A', 'L'};
inline constexpr char kSignatureMagic[8] = {'B', 'L', 'W', 'K', 'S', 'I', 'G', 'N'};
inline constexpr uint8_t kVersion = 1;
inline constexpr size_t kHeaderSize = 96;
inline constexpr size_t kSignatureBlockSize =
    crypto_sign_PUBLICKEYBYTES + crypto_sign_BYTES + sizeof(kSignatureMagic);
inline constexpr size_t kTagBytes = crypto_secretstream_xchacha20poly1305_ABYTES;
inline constexpr int64_t kMaxChunk = int64_t{64} << 20;
inline constexpr uint64_t kMaxContent = uint64_t{1} << 48;
// Bounds on the Argon2id cost a file may ask for: a hostile header must not make opening it
// take minutes or gigabytes.
// libsodium's SENSITIVE limits (4 passes, 1 GiB) are the most any file may ask for.
inline constexpr uint64_t kMaxOpslimit = 4;
inline constexpr uint64_t kMaxMemlimit = uint64_t{1} << 30;

static_assert(crypto_secretstream_xchacha20poly1305_HEADERBYTES == 24);
static_assert(crypto_pwhash_SALTBYTES == 16);
static_assert(crypto_secretstream_xchacha20poly1305_KEYBYTES == SecretKey::kSize);

enum Cipher : uint8_t { kPlain = 0, kXChaCha20Poly1305 = 1 };
enum Kdf : uint8_t { kKeyFile = 0, kArgon2id = 1 };

inline const uint8_t* bytes_of(std::string_view s) {
  return reinterpret_cast<const uint8_t*>(s.data());
}

// The fixed 96-byte header: magic, version, cipher, kdf, reserved, chunk size, content size,
// Argon2id limits and salt, key check, secretstream header (little-endian integers).
struct Header {
  uint8_t cipher = kPlain;
  uint8_t kdf = kKeyFile;
  uint32_t chunk_size = 0;
  uint64_t content_size = 0;
  uint64_t opslimit = 0;
  uint64_t memlimit = 0;
  std::array<uint8_t, 16> salt{};
  std::array<uint8_t, 16> key_check{};
  std::array<uint8_t, 24> stream_header{};

  std::array<uint8_t, kHeaderSize> serialize() const;

  uint64_t chunks() const {
    if (cipher == kPlain) return 0;
    return content_size == 0 ? 1 : (content_size + chunk_size - 1) / chunk_size;
  }
  uint64_t body_size() const { return content_size + chunks() * kTagBytes; }

  /// Parses and checks the header at the start of `file`. @throws Error naming what is wrong.
  static Header parse(std::string_view file);
};

// Where the parts of a sealed file are, after the structural checks.
struct Layout {
  Header header;
  std::string_view signed_part;  // header and body: what the signature covers
  std::string_view body;
  std::optional<PublicKey> signer;
  std::string_view signature;
};

/// Splits a sealed file into its parts after the structural checks (sizes, magic numbers).
/// @throws Error naming what is truncated, appended or corrupt.
Layout parse_layout(std::string_view file);

/// The signature block (public key, Ed25519 signature, magic) over `signed_part`.
std::string signature_block(std::string_view signed_part, const SigningKey& key);

/// @throws Error when the file's signature does not match its content.
void verify_signature(const Layout& layout);

/// A present signature must match; with trusted keys, one of them (the whole key) must have
/// signed. @throws Error otherwise.
void check_signature(const Layout& layout, const std::vector<PublicKey>& trusted);

/// 16 bytes that tell a right key from a wrong one without decrypting (a keyed BLAKE2b).
std::array<uint8_t, 16> key_check(const std::array<uint8_t, 32>& key);

/// The key from a passphrase through Argon2id, with the header's salt and limits.
std::array<uint8_t, 32> derive_key(const std::string& passphrase, const Header& header);

}  // namespace bulwark::detail
