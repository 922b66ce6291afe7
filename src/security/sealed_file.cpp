// Sealed files: the format (header, chunked secretstream body, signature block) and the checks
// that refuse every kind of tampering. Layout in docs/security/sealed-files.md.
#include "bulwark/security/sealed_file.h"

#include <sodium.h>

#include <algorithm>
#include <exception>
#include <future>
#include <cstring>
#include <fstream>

#include "core/check.h"
#include "security/sodium_util.h"

namespace bulwark {
namespace fs = std::filesystem;

namespace {

constexpr char kMagic[8] = {'B', 'L', 'W', 'K', 'S', 'E', 'A', 'L'};
constexpr char kSignatureMagic[8] = {'B', 'L', 'W', 'K', 'S', 'I', 'G', 'N'};
constexpr uint8_t kVersion = 1;
constexpr size_t kHeaderSize = 96;
constexpr size_t kSignatureBlockSize =
    crypto_sign_PUBLICKEYBYTES + crypto_sign_BYTES + sizeof(kSignatureMagic);
constexpr size_t kTagBytes = crypto_secretstream_xchacha20poly1305_ABYTES;
constexpr int64_t kMaxChunk = int64_t{64} << 20;
constexpr uint64_t kMaxContent = uint64_t{1} << 48;
// Bounds on the Argon2id cost a file may ask for: a hostile header must not make opening it
// take minutes or gigabytes.
// libsodium's SENSITIVE limits (4 passes, 1 GiB) are the most any file may ask for.
constexpr uint64_t kMaxOpslimit = 4;
constexpr uint64_t kMaxMemlimit = uint64_t{1} << 30;
constexpr std::string_view kKeyCheckContext = "bulwark sealed file key check v1";
constexpr std::string_view kSignatureContext = "bulwark sealed file signature v1";

static_assert(crypto_secretstream_xchacha20poly1305_HEADERBYTES == 24);
static_assert(crypto_pwhash_SALTBYTES == 16);
static_assert(crypto_secretstream_xchacha20poly1305_KEYBYTES == SecretKey::kSize);

enum Cipher : uint8_t { kPlain = 0, kXChaCha20Poly1305 = 1 };
enum Kdf : uint8_t { kKeyFile = 0, kArgon2id = 1 };

void put_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void put_u64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t get_u32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(p[i]) << (8 * i);
  return v;
}
uint64_t get_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}
bool all_zero(const uint8_t* p, size_t n) {
  return std::all_of(p, p + n, [](uint8_t b) { return b == 0; });
}
const uint8_t* bytes_of(std::string_view s) { return reinterpret_cast<const uint8_t*>(s.data()); }

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

  std::array<uint8_t, kHeaderSize> serialize() const {
    std::array<uint8_t, kHeaderSize> out{};
    std::memcpy(out.data(), kMagic, 8);
    out[8] = kVersion;
    out[9] = cipher;
    out[10] = kdf;
    put_u32(out.data() + 12, chunk_size);
    put_u64(out.data() + 16, content_size);
    put_u64(out.data() + 24, opslimit);
    put_u64(out.data() + 32, memlimit);
    std::memcpy(out.data() + 40, salt.data(), 16);
    std::memcpy(out.data() + 56, key_check.data(), 16);
    std::memcpy(out.data() + 72, stream_header.data(), 24);
    return out;
  }

  uint64_t chunks() const {
    if (cipher == kPlain) return 0;
    return content_size == 0 ? 1 : (content_size + chunk_size - 1) / chunk_size;
  }
  uint64_t body_size() const { return content_size + chunks() * kTagBytes; }

  static Header parse(std::string_view file) {
    BULWARK_CHECK(file.size() >= sizeof(kMagic) && std::memcmp(file.data(), kMagic, 8) == 0,
                  "not a sealed file (no sealed-file magic at its start)");
    BULWARK_CHECK(file.size() >= kHeaderSize,
                  "the sealed file is truncated: its header needs {} bytes, the file has {}",
                  kHeaderSize, file.size());
    const auto* p = bytes_of(file);
    BULWARK_CHECK(p[8] == kVersion, "the sealed file has format version {}; this Bulwark reads {}",
                  p[8], kVersion);
    Header h;
    h.cipher = p[9];
    h.kdf = p[10];
    h.chunk_size = get_u32(p + 12);
    h.content_size = get_u64(p + 16);
    h.opslimit = get_u64(p + 24);
    h.memlimit = get_u64(p + 32);
    std::memcpy(h.salt.data(), p + 40, 16);
    std::memcpy(h.key_check.data(), p + 56, 16);
    std::memcpy(h.stream_header.data(), p + 72, 24);
    const char* corrupt = "the sealed file's header is corrupt";
    BULWARK_CHECK(p[11] == 0, "{} (reserved byte {})", corrupt, p[11]);
    BULWARK_CHECK(h.cipher == kPlain || h.cipher == kXChaCha20Poly1305, "{} (unknown cipher {})",
                  corrupt, h.cipher);
    BULWARK_CHECK(h.kdf == kKeyFile || h.kdf == kArgon2id, "{} (unknown key derivation {})",
                  corrupt, h.kdf);
    BULWARK_CHECK(h.content_size <= kMaxContent, "{} (content size {})", corrupt, h.content_size);
    if (h.cipher == kPlain) {
      BULWARK_CHECK(h.kdf == kKeyFile && h.chunk_size == 0 && h.opslimit == 0 &&
                        h.memlimit == 0 && all_zero(p + 40, 56),
                    "{} (fields of an unencrypted file are set)", corrupt);
    } else {
      BULWARK_CHECK(h.chunk_size >= 1 && h.chunk_size <= kMaxChunk, "{} (chunk size {})", corrupt,
                    h.chunk_size);
      if (h.kdf == kArgon2id) {
        BULWARK_CHECK(h.opslimit >= crypto_pwhash_OPSLIMIT_MIN && h.opslimit <= kMaxOpslimit &&
                          h.memlimit >= crypto_pwhash_MEMLIMIT_MIN && h.memlimit <= kMaxMemlimit,
                      "{} (Argon2id cost {} passes, {} bytes is outside [{}, {}] x [{}, {}])",
                      corrupt, h.opslimit, h.memlimit, crypto_pwhash_OPSLIMIT_MIN, kMaxOpslimit,
                      crypto_pwhash_MEMLIMIT_MIN, kMaxMemlimit);
      } else {
        BULWARK_CHECK(h.opslimit == 0 && h.memlimit == 0 && all_zero(p + 40, 16),
                      "{} (passphrase fields set on a key-file file)", corrupt);
      }
    }
    return h;
  }
};

// Where the parts of a sealed file are, after the structural checks.
struct Layout {
  Header header;
  std::string_view signed_part;  // header and body: what the signature covers
  std::string_view body;
  std::optional<PublicKey> signer;
  std::string_view signature;
};

Layout parse_layout(std::string_view file) {
  Layout layout;
  layout.header = Header::parse(file);
  const uint64_t body = layout.header.body_size();
  const uint64_t rest = file.size() - kHeaderSize;
  BULWARK_CHECK(rest >= body,
                "the sealed file is truncated: its content needs {} bytes after the header, the "
                "file has {}",
                body, rest);
  const uint64_t extra = rest - body;
  BULWARK_CHECK(extra == 0 || extra == kSignatureBlockSize,
                "the sealed file has {} bytes after its content, expected none or a signature "
                "block of {} (truncated, or bytes were appended)",
                extra, kSignatureBlockSize);
  layout.signed_part = file.substr(0, kHeaderSize + body);
  layout.body = file.substr(kHeaderSize, body);
  if (extra > 0) {
    const auto block = file.substr(kHeaderSize + body);
    BULWARK_CHECK(std::memcmp(block.data() + block.size() - 8, kSignatureMagic, 8) == 0,
                  "the sealed file's signature block is corrupt (no signature magic)");
    layout.signer = PublicKey::from_bytes(
        std::span<const uint8_t>(bytes_of(block), crypto_sign_PUBLICKEYBYTES));
    layout.signature = block.substr(crypto_sign_PUBLICKEYBYTES, crypto_sign_BYTES);
  }
  BULWARK_CHECK(layout.header.cipher != kPlain || layout.signer.has_value(),
                "the sealed file is neither encrypted nor signed (corrupt)");
  return layout;
}

// What is signed: BLAKE2b-512 of a context string, the header and the body. BLAKE2b runs at
// about three times the speed of the SHA-512 inside Ed25519ph, and a collision-resistant
// digest signed with Ed25519 binds every byte the same way.
std::array<uint8_t, crypto_generichash_BYTES_MAX> signed_digest(std::string_view signed_part) {
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, crypto_generichash_BYTES_MAX);
  crypto_generichash_update(&state, bytes_of(kSignatureContext), kSignatureContext.size());
  crypto_generichash_update(&state, bytes_of(signed_part), signed_part.size());
  std::array<uint8_t, crypto_generichash_BYTES_MAX> digest;
  crypto_generichash_final(&state, digest.data(), digest.size());
  return digest;
}

std::string signature_block(std::string_view signed_part, const SigningKey& key) {
  detail::ensure_sodium();
  const auto digest = signed_digest(signed_part);
  std::array<uint8_t, crypto_sign_BYTES> signature;
  crypto_sign_detached(signature.data(), nullptr, digest.data(), digest.size(),
                       key.bytes().data());
  const auto public_key = key.public_key();
  std::string block(reinterpret_cast<const char*>(public_key.bytes().data()), 32);
  block.append(reinterpret_cast<const char*>(signature.data()), signature.size());
  block.append(kSignatureMagic, 8);
  return block;
}

void verify_signature(const Layout& layout) {
  const auto digest = signed_digest(layout.signed_part);
  BULWARK_CHECK(crypto_sign_verify_detached(bytes_of(layout.signature), digest.data(),
                                            digest.size(), layout.signer->bytes().data()) == 0,
                "the sealed file's signature (by key {}) does not match its content: the file was "
                "changed after it was signed",
                layout.signer->id());
}

// A present signature must match; with trusted keys, one of them (the whole key) must have
// signed.
void check_signature(const Layout& layout, const std::vector<PublicKey>& trusted) {
  if (layout.signer) verify_signature(layout);
  if (trusted.empty()) return;
  BULWARK_CHECK(layout.signer.has_value(),
                "the sealed file is not signed, but a signature by a trusted key is required");
  std::vector<std::string> ids;
  for (const auto& key : trusted) ids.push_back(key.id());
  BULWARK_CHECK(std::find(trusted.begin(), trusted.end(), *layout.signer) != trusted.end(),
                "the sealed file is signed by key {}, which is not trusted (trusted: {})",
                layout.signer->id(), fmt::join(ids, ", "));
}

std::array<uint8_t, 16> key_check(const std::array<uint8_t, 32>& key) {
  std::array<uint8_t, 16> out;
  crypto_generichash(out.data(), out.size(), bytes_of(kKeyCheckContext), kKeyCheckContext.size(),
                     key.data(), key.size());
  return out;
}

std::array<uint8_t, 32> derive_key(const std::string& passphrase, const Header& header) {
  std::array<uint8_t, 32> key;
  BULWARK_CHECK(crypto_pwhash(key.data(), key.size(), passphrase.data(), passphrase.size(),
                              header.salt.data(), header.opslimit,
                              static_cast<size_t>(header.memlimit),
                              crypto_pwhash_ALG_ARGON2ID13) == 0,
                "deriving the key from the passphrase failed (Argon2id needs {} bytes of memory)",
                header.memlimit);
  return key;
}

}  // namespace

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
