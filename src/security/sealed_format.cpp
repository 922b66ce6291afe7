// The sealed-file format: header serialization and the strict parser, the file's layout, the
// signature over it, and the key checks.
#include "security/sealed_format.h"

#include <algorithm>
#include <cstring>

#include "core/check.h"
#include "security/sodium_util.h"

namespace bulwark::detail {

namespace {

constexpr std::string_view kKeyCheckContext = "bulwark sealed file key check v1";
constexpr std::string_view kSignatureContext = "bulwark sealed file signature v1";

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


}  // namespace

std::array<uint8_t, kHeaderSize> Header::serialize() const {
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

Header Header::parse(std::string_view file) {
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

}  // namespace bulwark::detail
