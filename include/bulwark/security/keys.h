#pragma once
/// @file
/// Keys for sealed model files: a 32-byte secret key for authenticated encryption
/// (XChaCha20-Poly1305), and Ed25519 signing keys with the public keys users pin as trusted.
/// All key material comes from libsodium's randombytes (the operating system's CSPRNG).

#include <array>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

namespace bulwark {

/// A 32-byte secret key for sealing files. Copies are independent; every copy wipes its bytes
/// (sodium_memzero) when destroyed.
class SecretKey {
 public:
  static constexpr size_t kSize = 32;
  /// A fresh random key.
  static SecretKey generate();
  /// @throws Error unless `bytes` has exactly 32 entries.
  static SecretKey from_bytes(std::span<const uint8_t> bytes);
  /// Reads a key file: exactly 32 raw bytes (as `write` makes them).
  /// @throws Error when the file is missing, unreadable or not 32 bytes long (a public or
  /// signing key file is named as such).
  static SecretKey read(const std::filesystem::path& path);
  /// Writes the 32 bytes atomically, readable by the owner only (mode 0600).
  void write(const std::filesystem::path& path) const;
  const std::array<uint8_t, kSize>& bytes() const { return bytes_; }

  SecretKey(const SecretKey&) = default;
  SecretKey& operator=(const SecretKey&) = default;
  ~SecretKey();

 private:
  SecretKey() = default;
  std::array<uint8_t, kSize> bytes_{};
};

/// An Ed25519 public key, the identity users trust. Its id is the first 8 bytes of
/// BLAKE2b-256 of the key, in hex (16 characters), printed by `bulwark keygen` and `verify`.
class PublicKey {
 public:
  static constexpr size_t kSize = 32;
  /// @throws Error unless `bytes` has exactly 32 entries.
  static PublicKey from_bytes(std::span<const uint8_t> bytes);
  /// Reads a public key file: the tag "BLWKPUB1" and the 32-byte key.
  /// @throws Error when the file is missing, unreadable, or not a public key file (a secret or
  /// signing key file is named as such).
  static PublicKey read(const std::filesystem::path& path);
  /// Writes the tagged key atomically.
  void write(const std::filesystem::path& path) const;
  const std::array<uint8_t, kSize>& bytes() const { return bytes_; }
  std::string id() const;
  bool operator==(const PublicKey& other) const { return bytes_ == other.bytes_; }

 private:
  PublicKey() = default;
  std::array<uint8_t, kSize> bytes_{};
};

/// An Ed25519 signing key (libsodium's 64-byte secret key: seed and public key). Wiped on
/// destruction like SecretKey.
class SigningKey {
 public:
  static constexpr size_t kSize = 64;
  /// A fresh random key pair.
  static SigningKey generate();
  /// Reads a signing key file: the tag "BLWKSGN1" and libsodium's 64-byte secret key, whose
  /// second half is the public key of the first.
  /// @throws Error when the file is missing, unreadable, not a signing key file, or
  /// inconsistent.
  static SigningKey read(const std::filesystem::path& path);
  /// Writes the tagged key atomically, readable by the owner only (mode 0600).
  void write(const std::filesystem::path& path) const;
  PublicKey public_key() const;
  const std::array<uint8_t, kSize>& bytes() const { return bytes_; }

  SigningKey(const SigningKey&) = default;
  SigningKey& operator=(const SigningKey&) = default;
  ~SigningKey();

 private:
  SigningKey() = default;
  std::array<uint8_t, kSize> bytes_{};
};

}  // namespace bulwark
