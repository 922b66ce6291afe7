#include "bulwark/security/keys.h"

#include <sodium.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string_view>
#include <vector>

#include "bulwark/core/files.h"
#include "core/check.h"
#include "security/sodium_util.h"

namespace bulwark {
namespace fs = std::filesystem;

namespace detail {

void ensure_sodium() {
  static const int status = sodium_init();  // 0: started now, 1: already started
  BULWARK_CHECK(status >= 0, "libsodium could not be initialised");
}

std::string read_file(const fs::path& path, size_t max_bytes, const char* what) {
  std::error_code ec;
  BULWARK_CHECK(fs::is_regular_file(path, ec), "{}: '{}' does not exist or is not a file", what,
                path.string());
  const auto size = fs::file_size(path, ec);
  BULWARK_CHECK(!ec, "{}: cannot read the size of '{}': {}", what, path.string(), ec.message());
  BULWARK_CHECK(size <= max_bytes, "{}: '{}' is longer than {} bytes", what, path.string(),
                max_bytes);
  std::ifstream in(path, std::ios::binary);
  BULWARK_CHECK(in.good(), "{}: cannot open '{}': {}", what, path.string(), std::strerror(errno));
  std::string bytes(size, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  BULWARK_CHECK(static_cast<uintmax_t>(in.gcount()) == size && in.peek() == EOF,
                "{}: '{}' changed while it was read", what, path.string());
  return bytes;
}

void write_file_bytes(const fs::path& path, const uint8_t* data, size_t size,
                      fs::perms permissions) {
  write_file_atomically(path, [&](const fs::path& tmp) {
    // A new file (never one that exists, nor a symbolic link planted at the temporary name)
    // with its permissions from the start, so no other user can open it while secrets are
    // written; fchmod then sets them exactly, whatever the umask.
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                          static_cast<mode_t>(permissions));
    BULWARK_CHECK(fd >= 0, "cannot create '{}': {}", tmp.string(), std::strerror(errno));
    bool ok = ::fchmod(fd, static_cast<mode_t>(permissions)) == 0;
    for (size_t written = 0; ok && written < size;) {
      const auto n = ::write(fd, data + written, size - written);
      if (n < 0 && errno == EINTR) continue;
      ok = n > 0;
      if (ok) written += static_cast<size_t>(n);
    }
    const int error = errno;
    ::close(fd);
    BULWARK_CHECK(ok, "writing '{}' failed: {}", path.string(), std::strerror(error));
  });
}

std::string to_hex(const uint8_t* data, size_t size) {
  std::string hex(2 * size + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), data, size);
  hex.pop_back();
  return hex;
}

}  // namespace detail

namespace {

constexpr auto kOwnerOnly = fs::perms::owner_read | fs::perms::owner_write;
constexpr auto kPublic = kOwnerOnly | fs::perms::group_read | fs::perms::others_read;

template <size_t N>
std::array<uint8_t, N> exact_bytes(std::span<const uint8_t> bytes, const char* what) {
  BULWARK_CHECK(bytes.size() == N, "{}: a key has {} bytes, got {}", what, N, bytes.size());
  std::array<uint8_t, N> out;
  std::memcpy(out.data(), bytes.data(), N);
  return out;
}

// Public and signing key files start with a type tag, so that one kind of key can never be
// used as another (a public key handed out as an encryption key would let anyone decrypt).
// Secret (encryption) key files are the bare 32 bytes.
constexpr std::string_view kPublicTag = "BLWKPUB1";
constexpr std::string_view kSigningTag = "BLWKSGN1";

// A key file of `size` key bytes after `tag`.
bool is_key_file(std::string_view bytes, std::string_view tag, size_t size) {
  return bytes.size() == tag.size() + size && bytes.starts_with(tag);
}

template <size_t N>
std::array<uint8_t, N> read_key_file(const fs::path& path, const char* what, const char* kind,
                                     std::string_view tag = {}) {
  auto bytes = detail::read_file(path, 4096, what);
  if (!is_key_file(bytes, tag, N)) {
    const char* found = is_key_file(bytes, kPublicTag, PublicKey::kSize)    ? "a public key"
                        : is_key_file(bytes, kSigningTag, SigningKey::kSize) ? "a signing key"
                        : is_key_file(bytes, {}, SecretKey::kSize) ? "a secret (encryption) key"
                                                                   : nullptr;
    const auto size = bytes.size();
    sodium_memzero(bytes.data(), bytes.size());
    if (found != nullptr) {
      throw Error(fmt::format("{}: '{}' is {}, not {}", what, path.string(), found, kind));
    }
    throw Error(fmt::format("{}: '{}' is not {} file: expected {} bytes, got {}", what,
                            path.string(), kind, tag.size() + N, size));
  }
  std::array<uint8_t, N> out;
  std::memcpy(out.data(), bytes.data() + tag.size(), N);
  sodium_memzero(bytes.data(), bytes.size());
  return out;
}

template <size_t N>
void write_key_file(const fs::path& path, const std::array<uint8_t, N>& key, std::string_view tag,
                    fs::perms permissions) {
  std::vector<uint8_t> bytes(tag.begin(), tag.end());
  bytes.insert(bytes.end(), key.begin(), key.end());
  detail::write_file_bytes(path, bytes.data(), bytes.size(), permissions);
  sodium_memzero(bytes.data(), bytes.size());
}

}  // namespace

SecretKey SecretKey::generate() {
  detail::ensure_sodium();
  SecretKey key;
  crypto_secretstream_xchacha20poly1305_keygen(key.bytes_.data());
  return key;
}

SecretKey SecretKey::from_bytes(std::span<const uint8_t> bytes) {
  SecretKey key;
  key.bytes_ = exact_bytes<kSize>(bytes, "SecretKey::from_bytes");
  return key;
}

SecretKey SecretKey::read(const fs::path& path) {
  SecretKey key;
  key.bytes_ = read_key_file<kSize>(path, "SecretKey::read", "a secret (encryption) key");
  return key;
}

void SecretKey::write(const fs::path& path) const {
  detail::write_file_bytes(path, bytes_.data(), bytes_.size(), kOwnerOnly);
}

SecretKey::~SecretKey() { sodium_memzero(bytes_.data(), bytes_.size()); }

PublicKey PublicKey::from_bytes(std::span<const uint8_t> bytes) {
  PublicKey key;
  key.bytes_ = exact_bytes<kSize>(bytes, "PublicKey::from_bytes");
  return key;
}

PublicKey PublicKey::read(const fs::path& path) {
  PublicKey key;
  key.bytes_ = read_key_file<kSize>(path, "PublicKey::read", "a public key", kPublicTag);
  return key;
}

void PublicKey::write(const fs::path& path) const {
  write_key_file(path, bytes_, kPublicTag, kPublic);
}

std::string PublicKey::id() const {
  detail::ensure_sodium();
  std::array<uint8_t, 32> hash;
  crypto_generichash(hash.data(), hash.size(), bytes_.data(), bytes_.size(), nullptr, 0);
  return detail::to_hex(hash.data(), 8);
}

SigningKey SigningKey::generate() {
  detail::ensure_sodium();
  SigningKey key;
  std::array<uint8_t, crypto_sign_PUBLICKEYBYTES> public_key;
  crypto_sign_keypair(public_key.data(), key.bytes_.data());
  return key;
}

SigningKey SigningKey::read(const fs::path& path) {
  detail::ensure_sodium();
  SigningKey key;
  key.bytes_ = read_key_file<kSize>(path, "SigningKey::read", "a signing key", kSigningTag);
  // The second half is the public key of the seed in the first half.
  std::array<uint8_t, crypto_sign_PUBLICKEYBYTES> derived;
  std::array<uint8_t, crypto_sign_SECRETKEYBYTES> check;
  crypto_sign_seed_keypair(derived.data(), check.data(), key.bytes_.data());
  const bool consistent = sodium_memcmp(check.data(), key.bytes_.data(), check.size()) == 0;
  sodium_memzero(check.data(), check.size());
  BULWARK_CHECK(consistent,
                "SigningKey::read: '{}' is not a signing key (its public half does not match its "
                "seed)",
                path.string());
  return key;
}

void SigningKey::write(const fs::path& path) const {
  write_key_file(path, bytes_, kSigningTag, kOwnerOnly);
}

PublicKey SigningKey::public_key() const {
  return PublicKey::from_bytes(std::span<const uint8_t>(bytes_.data() + 32, 32));
}

SigningKey::~SigningKey() { sodium_memzero(bytes_.data(), bytes_.size()); }

}  // namespace bulwark
