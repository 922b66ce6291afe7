// Sealing and unsealing: encryption in chunks, signing, and the checks on opening that refuse
// every kind of tampering. The format itself is in sealed_format.cpp.
#include "bulwark/security/sealed_file.h"

#include <sodium.h>

#include <algorithm>
#include <exception>
#include <future>
#include <cstring>
#include <fstream>

#include "core/check.h"
#include "security/sealed_format.h"
#include "security/sodium_util.h"

namespace bulwark {
namespace fs = std::filesystem;

using namespace detail;  // the format: sealed_format.h

void wipe_bytes(std::string& bytes) { sodium_memzero(bytes.data(), bytes.size()); }

bool is_sealed(std::string_view file_bytes) {
  return file_bytes.size() >= sizeof(kMagic) &&
         std::memcmp(file_bytes.data(), kMagic, sizeof(kMagic)) == 0;
}

bool is_sealed_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return false;
  std::ifstream in(path, std::ios::binary);
  char magic[sizeof(kMagic)] = {};
  in.read(magic, sizeof(magic));
  return in.gcount() == sizeof(magic) && is_sealed(std::string_view(magic, sizeof(magic)));
}

std::string seal(std::string_view content, const SealOptions& options) {
  detail::ensure_sodium();
  const bool with_key = options.key().has_value();
  const bool with_passphrase = !options.passphrase().empty();
  BULWARK_CHECK(!(with_key && with_passphrase),
                "seal: give a key or a passphrase, not both");
  BULWARK_CHECK(with_key || with_passphrase || options.signing_key().has_value(),
                "seal: nothing to do: give a key or a passphrase to encrypt, or a signing key");
  BULWARK_CHECK(options.chunk_size() >= 1 && options.chunk_size() <= kMaxChunk,
                "seal: chunk_size must be in [1, {}], got {}", kMaxChunk, options.chunk_size());
  BULWARK_CHECK(content.size() <= kMaxContent, "seal: content of {} bytes is over the limit of {}",
                content.size(), kMaxContent);
  Header header;
  header.content_size = content.size();
  std::array<uint8_t, kHeaderSize> serialized{};
  std::string body;
  if (with_key || with_passphrase) {
    header.cipher = kXChaCha20Poly1305;
    header.chunk_size = static_cast<uint32_t>(options.chunk_size());
    std::array<uint8_t, 32> key;
    if (with_passphrase) {
      const auto& cost = options.passphrase_cost();
      BULWARK_CHECK(cost.opslimit() >= crypto_pwhash_OPSLIMIT_MIN &&
                        cost.opslimit() <= kMaxOpslimit &&
                        cost.memlimit() >= crypto_pwhash_MEMLIMIT_MIN &&
                        cost.memlimit() <= kMaxMemlimit,
                    "seal: the Argon2id cost must be within [{}, {}] passes and [{}, {}] bytes, "
                    "got {} and {}",
                    crypto_pwhash_OPSLIMIT_MIN, kMaxOpslimit, crypto_pwhash_MEMLIMIT_MIN,
                    kMaxMemlimit, cost.opslimit(), cost.memlimit());
      header.kdf = kArgon2id;
      header.opslimit = cost.opslimit();
      header.memlimit = cost.memlimit();
      randombytes_buf(header.salt.data(), header.salt.size());
      key = derive_key(options.passphrase(), header);
    } else {
      key = options.key()->bytes();
    }
    header.key_check = key_check(key);
    crypto_secretstream_xchacha20poly1305_state state;
    crypto_secretstream_xchacha20poly1305_init_push(&state, header.stream_header.data(),
                                                    key.data());
    sodium_memzero(key.data(), key.size());
    serialized = header.serialize();  // complete now: the first chunk's additional data
    body.resize(header.body_size());
    auto* out = reinterpret_cast<uint8_t*>(body.data());
    const uint64_t chunks = header.chunks();
    for (uint64_t i = 0; i < chunks; ++i) {
      const uint64_t begin = i * header.chunk_size;
      const uint64_t length = std::min<uint64_t>(header.chunk_size, content.size() - begin);
      const uint8_t tag = i + 1 == chunks ? crypto_secretstream_xchacha20poly1305_TAG_FINAL
                                          : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;
      // The header is the first chunk's additional data: changing any header byte fails it.
      crypto_secretstream_xchacha20poly1305_push(
          &state, out, nullptr, bytes_of(content) + begin, length,
          i == 0 ? serialized.data() : nullptr, i == 0 ? serialized.size() : 0, tag);
      out += length + kTagBytes;
    }
    sodium_memzero(&state, sizeof(state));
  } else {
    serialized = header.serialize();
    body.assign(content);
  }
  std::string file(reinterpret_cast<const char*>(serialized.data()), serialized.size());
  file += body;
  if (options.signing_key()) file += signature_block(file, *options.signing_key());
  return file;
}

SealedFileInfo inspect_sealed(std::string_view file_bytes,
                              const std::vector<PublicKey>& trusted_keys) {
  detail::ensure_sodium();
  const auto layout = parse_layout(file_bytes);
  check_signature(layout, trusted_keys);
  SealedFileInfo info;
  info.encrypted = layout.header.cipher == kXChaCha20Poly1305;
  info.passphrase = info.encrypted && layout.header.kdf == kArgon2id;
  info.is_signed = layout.signer.has_value();
  if (layout.signer) info.signer_id = layout.signer->id();
  info.content_size = layout.header.content_size;
  info.chunk_size = layout.header.chunk_size;
  info.file_size = file_bytes.size();
  return info;
}

namespace {

std::string decrypt(const Layout& layout, std::string_view file_bytes,
                    const UnsealOptions& options) {
  const auto& header = layout.header;
  const bool key_given = options.key().has_value() || !options.passphrase().empty();
  // A caller who gives a key expects an encrypted file: a signed-only file put in its place
  // (by anyone with any signing key) must not load.
  BULWARK_CHECK(header.cipher != kPlain || !key_given,
                "the sealed file is not encrypted, but a key or passphrase was given: it is not "
                "the file that key sealed");
  if (header.cipher == kPlain) return std::string(layout.body);

  std::array<uint8_t, 32> key;
  if (header.kdf == kArgon2id) {
    BULWARK_CHECK(!options.passphrase().empty(),
                  "the sealed file is encrypted with a passphrase: give the passphrase");
    key = derive_key(options.passphrase(), header);
  } else {
    BULWARK_CHECK(options.key().has_value(),
                  "the sealed file is encrypted with a key: give its key file");
    key = options.key()->bytes();
  }
  const bool right_key = sodium_memcmp(key_check(key).data(), header.key_check.data(), 16) == 0;
  if (!right_key) {
    sodium_memzero(key.data(), key.size());
    throw Error(header.kdf == kArgon2id
                    ? "wrong passphrase for the sealed file (or its header was altered)"
                    : "wrong key for the sealed file (or its header was altered)");
  }
  crypto_secretstream_xchacha20poly1305_state state;
  const int started = crypto_secretstream_xchacha20poly1305_init_pull(
      &state, header.stream_header.data(), key.data());
  sodium_memzero(key.data(), key.size());
  BULWARK_CHECK(started == 0, "the sealed file's stream header is corrupt");
  // The header as it is in the file (parsing is strict, so it equals header.serialize()).
  const auto* header_bytes = bytes_of(file_bytes);
  std::string content(header.content_size, '\0');
  auto* out = reinterpret_cast<uint8_t*>(content.data());
  const auto* in = bytes_of(layout.body);
  const uint64_t chunks = header.chunks();
  try {
    for (uint64_t i = 0; i < chunks; ++i) {
      const uint64_t begin = i * header.chunk_size;
      const uint64_t length = std::min<uint64_t>(header.chunk_size, header.content_size - begin);
      unsigned long long written = 0;
      uint8_t tag = 0;
      BULWARK_CHECK(crypto_secretstream_xchacha20poly1305_pull(
                        &state, out + begin, &written, &tag, in, length + kTagBytes,
                        i == 0 ? header_bytes : nullptr, i == 0 ? kHeaderSize : 0) == 0,
                    "chunk {} of {} of the sealed file fails authentication: the file was changed "
                    "(a flipped bit, chunks reordered or duplicated)",
                    i + 1, chunks);
      const bool last = i + 1 == chunks;
      BULWARK_CHECK(written == length, "chunk {} of the sealed file has the wrong length", i + 1);
      const bool final = tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL;
      BULWARK_CHECK(!last || final,
                    "the sealed file's last chunk is not marked final: it was truncated");
      BULWARK_CHECK(last || !final,
                    "chunk {} of {} of the sealed file ends the stream early: chunks were removed "
                    "or reordered",
                    i + 1, chunks);
      in += length + kTagBytes;
    }
  } catch (...) {
    sodium_memzero(content.data(), content.size());
    sodium_memzero(&state, sizeof(state));
    throw;
  }
  sodium_memzero(&state, sizeof(state));
  return content;
}

}  // namespace

std::string unseal(std::string_view file_bytes, const UnsealOptions& options) {
  detail::ensure_sodium();
  const auto layout = parse_layout(file_bytes);
  const auto& header = layout.header;
  const bool key_given = options.key().has_value() || !options.passphrase().empty();
  if (header.cipher == kPlain || !key_given || !layout.signer) {
    check_signature(layout, options.trusted_keys());
    return decrypt(layout, file_bytes, options);
  }
  // Encrypted and signed: the signature is checked on another thread while the content is
  // decrypted (both read every byte); nothing is returned unless both succeed, and a bad
  // signature is the error reported when both fail.
  auto signature_checked = std::async(std::launch::async, [&] {
    check_signature(layout, options.trusted_keys());
  });
  std::string content;
  std::exception_ptr decryption_error;
  try {
    content = decrypt(layout, file_bytes, options);
  } catch (...) {
    decryption_error = std::current_exception();
  }
  try {
    signature_checked.get();
  } catch (...) {
    wipe_bytes(content);
    throw;
  }
  if (decryption_error) std::rethrow_exception(decryption_error);
  return content;
}

std::string sign(std::string_view file_bytes, const SigningKey& key) {
  if (!is_sealed(file_bytes)) {
    return seal(file_bytes, SealOptions().signing_key(key));
  }
  detail::ensure_sodium();
  const auto layout = parse_layout(file_bytes);
  // Replacing a signature vouches for the file: a file whose signature no longer matches was
  // changed since it was signed, and is not signed again.
  if (layout.signer) verify_signature(layout);
  std::string out(layout.signed_part);
  out += signature_block(layout.signed_part, key);
  return out;
}

namespace {

// Sealed files hold models: 1 TiB is far beyond any, and keeps a corrupt size from exhausting
// memory.
constexpr size_t kMaxFile = size_t{1} << 40;

void write_all(const fs::path& path, std::string_view bytes, fs::perms permissions) {
  detail::write_file_bytes(path, bytes_of(bytes), bytes.size(), permissions);
}

constexpr auto kOwnerOnly = fs::perms::owner_read | fs::perms::owner_write;
constexpr auto kReadable = kOwnerOnly | fs::perms::group_read | fs::perms::others_read;

// Errors from the format name the file.
template <typename F>
auto naming(const fs::path& path, F&& f) {
  try {
    return f();
  } catch (const Error& e) {
    throw Error(fmt::format("'{}': {}", path.string(), e.what()));
  }
}

}  // namespace

void seal_file(const fs::path& in, const fs::path& out, const SealOptions& options) {
  auto content = detail::read_file(in, kMaxFile, "seal_file");
  const auto sealed = seal(content, options);
  sodium_memzero(content.data(), content.size());
  write_all(out, sealed, kReadable);
}

void unseal_file(const fs::path& in, const fs::path& out, const UnsealOptions& options) {
  auto content =
      naming(in, [&] { return unseal(detail::read_file(in, kMaxFile, "unseal_file"), options); });
  // The plain model, readable by its owner only.
  write_all(out, content, kOwnerOnly);
  sodium_memzero(content.data(), content.size());
}

void sign_file(const fs::path& in, const fs::path& out, const SigningKey& key) {
  const auto signed_bytes =
      naming(in, [&] { return sign(detail::read_file(in, kMaxFile, "sign_file"), key); });
  write_all(out, signed_bytes, kReadable);
}

SealedFileInfo inspect_sealed_file(const fs::path& path,
                                   const std::vector<PublicKey>& trusted_keys) {
  return naming(path, [&] {
    return inspect_sealed(detail::read_file(path, kMaxFile, "inspect_sealed_file"),
                          trusted_keys);
  });
}

std::string read_possibly_sealed(const fs::path& path, const UnsealOptions& options) {
  auto bytes = detail::read_file(path, kMaxFile, "read_possibly_sealed");
  if (!is_sealed(bytes)) {
    BULWARK_CHECK(!options.require_sealed(),
                  "'{}' is not a sealed file, but a sealed file is required here (a key, a "
                  "passphrase or trusted keys were given)",
                  path.string());
    return bytes;
  }
  return naming(path, [&] { return unseal(bytes, options); });
}

}  // namespace bulwark
