#include "bulwark/security/sealed_file.h"

#include <sys/stat.h>

#include <torch/script.h>

#include <array>
#include <fstream>

#include "bulwark/models/model_zoo.h"
#include "data/data_test_util.h"
#include "test_util.h"

namespace bulwark {
namespace {
namespace fs = std::filesystem;

// 100 bytes in chunks of 16: seven chunks, the last one short.
std::string sample_content(size_t n = 100) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 37 + 11) & 0xff);
  return s;
}

// The cheapest Argon2id cost libsodium allows: passphrase tests stay fast.
PassphraseCost cheap() { return PassphraseCost().opslimit(1).memlimit(8192); }

class SealedFileTest : public testing::SeededTest {
 protected:
  SecretKey key_ = SecretKey::generate();
  SigningKey signer_ = SigningKey::generate();
  std::string content_ = sample_content();
  // Encrypted in 16-byte chunks and signed.
  std::string sealed_ =
      seal(content_, SealOptions().key(key_).signing_key(signer_).chunk_size(16));
  UnsealOptions open_ = UnsealOptions().key(key_).trusted_keys({signer_.public_key()});
};

TEST_F(SealedFileTest, RoundTripsWithAKeyAPassphraseOrOnlyASignature) {
  EXPECT_TRUE(is_sealed(sealed_));
  EXPECT_EQ(sealed_.find(content_.substr(0, 16)), std::string::npos);  // encrypted
  EXPECT_EQ(unseal(sealed_, open_), content_);
  EXPECT_EQ(unseal(sealed_, UnsealOptions().key(key_)), content_);  // any valid signer

  const auto with_passphrase =
      seal(content_, SealOptions().passphrase("correct horse").passphrase_cost(cheap()));
  EXPECT_EQ(unseal(with_passphrase, UnsealOptions().passphrase("correct horse")), content_);

  const auto signed_only = seal(content_, SealOptions().signing_key(signer_));
  EXPECT_NE(signed_only.find(content_), std::string::npos);  // readable, but signed
  EXPECT_EQ(unseal(signed_only, UnsealOptions().trusted_keys({signer_.public_key()})), content_);

  for (const size_t n : {size_t{0}, size_t{1}, size_t{16}, size_t{32}, size_t{33}}) {
    const auto c = sample_content(n);
    EXPECT_EQ(unseal(seal(c, SealOptions().key(key_).chunk_size(16)), UnsealOptions().key(key_)),
              c)
        << n << " bytes";
  }
}

TEST_F(SealedFileTest, InspectReportsTheHeaderWithoutTheKey) {
  const auto info = inspect_sealed(sealed_);
  EXPECT_TRUE(info.encrypted);
  EXPECT_FALSE(info.passphrase);
  EXPECT_TRUE(info.is_signed);
  EXPECT_EQ(info.signer_id, signer_.public_key().id());
  EXPECT_EQ(info.signer_id.size(), 16u);
  EXPECT_EQ(info.content_size, content_.size());
  EXPECT_EQ(info.chunk_size, 16);
  // 96-byte header, 7 chunks with a 17-byte tag each, 104-byte signature block.
  EXPECT_EQ(info.file_size, 96u + 100u + 7u * 17u + 104u);
  EXPECT_EQ(sealed_.size(), info.file_size);
}

TEST_F(SealedFileTest, EveryFlippedBitIsRefused) {
  const auto signed_only = seal(content_, SealOptions().signing_key(signer_));
  const auto encrypted_only = seal(content_, SealOptions().key(key_).chunk_size(16));
  const std::array<const std::string*, 3> files = {&sealed_, &signed_only, &encrypted_only};
  for (const auto* file : files) {
    for (size_t byte = 0; byte < file->size(); ++byte) {
      for (int bit = 0; bit < 8; ++bit) {
        auto bad = *file;
        bad[byte] = static_cast<char>(bad[byte] ^ (1 << bit));
        EXPECT_THROW(unseal(bad, UnsealOptions().key(key_)), Error)
            << "byte " << byte << " bit " << bit << " of " << file->size();
      }
    }
  }
}

TEST_F(SealedFileTest, EveryTruncationIsRefused) {
  // With a trusted signer required, every cut is refused (without one, cutting off exactly the
  // signature block leaves a valid encrypted file: a signature protects only when trusted).
  for (size_t size = 0; size < sealed_.size(); ++size) {
    EXPECT_THROW(unseal(sealed_.substr(0, size), open_), Error) << size;
  }
  EXPECT_EQ(unseal(sealed_.substr(0, sealed_.size() - 104), UnsealOptions().key(key_)), content_);
  // Cut exactly at the end of the content (the signature block removed): still refused when a
  // signature is required, and an unsigned truncation at a chunk boundary is refused too.
  const auto unsigned_file = seal(content_, SealOptions().key(key_).chunk_size(16));
  for (size_t chunks = 0; chunks < 7; ++chunks) {
    EXPECT_BULWARK_ERROR(unseal(unsigned_file.substr(0, 96 + chunks * 33), UnsealOptions().key(key_)),
                         "truncated");
  }
  EXPECT_BULWARK_ERROR(unseal(sealed_.substr(0, sealed_.size() - 104), open_), "not signed");
  EXPECT_BULWARK_ERROR(unseal(sealed_ + "x", open_), "bytes after its content");
}

TEST_F(SealedFileTest, ReorderedOrDuplicatedChunksAreRefused) {
  const auto file = seal(content_, SealOptions().key(key_).chunk_size(16));
  const size_t chunk = 16 + 17;
  auto chunk_at = [&](size_t i) { return file.substr(96 + i * chunk, chunk); };
  auto swapped = file;
  swapped.replace(96 + 2 * chunk, chunk, chunk_at(3));
  swapped.replace(96 + 3 * chunk, chunk, chunk_at(2));
  EXPECT_BULWARK_ERROR(unseal(swapped, UnsealOptions().key(key_)), "chunk 3 of 7",
                       "fails authentication");
  auto duplicated = file;
  duplicated.replace(96 + 3 * chunk, chunk, chunk_at(2));
  EXPECT_BULWARK_ERROR(unseal(duplicated, UnsealOptions().key(key_)), "chunk 4 of 7");
  // The last chunk moved to the front of a file of the same length.
  const auto two = seal(sample_content(32), SealOptions().key(key_).chunk_size(16));
  auto moved = two;
  moved.replace(96, chunk, two.substr(96 + chunk, chunk));
  moved.replace(96 + chunk, chunk, two.substr(96, chunk));
  EXPECT_BULWARK_ERROR(unseal(moved, UnsealOptions().key(key_)), "fails authentication");
}

TEST_F(SealedFileTest, WrongKeysPassphrasesAndSignersAreRefused) {
  EXPECT_BULWARK_ERROR(unseal(sealed_, UnsealOptions().key(SecretKey::generate())), "wrong key");
  EXPECT_BULWARK_ERROR(unseal(sealed_, UnsealOptions()), "encrypted with a key",
                       "give its key file");
  const auto with_passphrase =
      seal(content_, SealOptions().passphrase("correct horse").passphrase_cost(cheap()));
  EXPECT_BULWARK_ERROR(unseal(with_passphrase, UnsealOptions().passphrase("wrong horse")),
                       "wrong passphrase");
  EXPECT_BULWARK_ERROR(unseal(with_passphrase, UnsealOptions().key(key_)),
                       "encrypted with a passphrase");

  const auto stranger = SigningKey::generate();
  EXPECT_BULWARK_ERROR(
      unseal(sealed_, UnsealOptions().key(key_).trusted_keys({stranger.public_key()})),
      "signed by key " + signer_.public_key().id(), std::string("not trusted"));
  const auto unsigned_file = seal(content_, SealOptions().key(key_));
  EXPECT_BULWARK_ERROR(unseal(unsigned_file, open_), "not signed", "trusted key is required");
  // A signature block copied from another file does not verify.
  const auto other = seal(sample_content(99), SealOptions().key(key_).signing_key(signer_));
  auto grafted = unsigned_file + other.substr(other.size() - 104);
  EXPECT_BULWARK_ERROR(unseal(grafted, open_), "does not match its content");
  // Re-signing with a stranger's key keeps the content but not the trust.
  // A signed-only file in place of the encrypted one is refused when a key is given, whoever
  // signed it.
  EXPECT_BULWARK_ERROR(unseal(seal(content_, SealOptions().signing_key(stranger)),
                              UnsealOptions().key(key_)),
                       "not encrypted, but a key or passphrase was given");
  EXPECT_BULWARK_ERROR(unseal(seal(content_, SealOptions().signing_key(signer_)), open_),
                       "not encrypted");
  const auto resigned = sign(sealed_, stranger);
  EXPECT_EQ(unseal(resigned, UnsealOptions().key(key_)), content_);
  EXPECT_BULWARK_ERROR(unseal(resigned, open_), "not trusted");
}

TEST_F(SealedFileTest, SigningAPlainFileWrapsItAndSigningASealedFileKeepsItsContent) {
  const auto wrapped = sign(content_, signer_);
  EXPECT_TRUE(inspect_sealed(wrapped).is_signed);
  EXPECT_FALSE(inspect_sealed(wrapped).encrypted);
  EXPECT_EQ(unseal(wrapped, UnsealOptions().trusted_keys({signer_.public_key()})), content_);
  const auto unsigned_file = seal(content_, SealOptions().key(key_).chunk_size(16));
  const auto signed_later = sign(unsigned_file, signer_);
  EXPECT_EQ(signed_later.substr(0, unsigned_file.size()), unsigned_file);
  EXPECT_EQ(unseal(signed_later, open_), content_);
}

TEST_F(SealedFileTest, BadOptionsAreRefused) {
  EXPECT_BULWARK_ERROR(seal(content_, SealOptions()), "nothing to do");
  EXPECT_BULWARK_ERROR(seal(content_, SealOptions().key(key_).passphrase("x")), "not both");
  EXPECT_BULWARK_ERROR(seal(content_, SealOptions().key(key_).chunk_size(0)), "chunk_size");
  EXPECT_BULWARK_ERROR(
      seal(content_, SealOptions().passphrase("x").passphrase_cost(PassphraseCost().opslimit(99))),
      "Argon2id cost");
  EXPECT_BULWARK_ERROR(unseal("not sealed at all", open_), "not a sealed file");
}

class KeyFileTest : public testing::SeededTest {
 protected:
  testing::TempDir dir_;
};

TEST_F(KeyFileTest, KeysRoundTripThroughFilesAndSecretsAreOwnerOnly) {
  const auto key = SecretKey::generate();
  key.write(dir_ / "model.key");
  EXPECT_EQ(SecretKey::read(dir_ / "model.key").bytes(), key.bytes());
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "model.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  const auto signer = SigningKey::generate();
  signer.write(dir_ / "release.sign-key");
  signer.public_key().write(dir_ / "release.pub");
  EXPECT_EQ(SigningKey::read(dir_ / "release.sign-key").bytes(), signer.bytes());
  EXPECT_EQ(PublicKey::read(dir_ / "release.pub"), signer.public_key());
  ASSERT_EQ(::stat((dir_ / "release.sign-key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_NE(SecretKey::generate().bytes(), key.bytes());
}

TEST_F(KeyFileTest, MalformedKeyFilesAreRefused) {
  std::ofstream(dir_ / "short.key", std::ios::binary) << std::string(31, 'k');
  EXPECT_BULWARK_ERROR(SecretKey::read(dir_ / "short.key"), "expected 32 bytes, got 31");
  EXPECT_BULWARK_ERROR(PublicKey::read(dir_ / "short.key"), "not a public key file",
                       "expected 40 bytes");
  EXPECT_BULWARK_ERROR(SecretKey::read(dir_ / "missing.key"), "does not exist");
  // One kind of key is never taken for another: a public key used as an encryption key would
  // let anyone decrypt.
  const auto signer = SigningKey::generate();
  signer.public_key().write(dir_ / "release.pub");
  signer.write(dir_ / "release.sign-key");
  SecretKey::generate().write(dir_ / "model.key");
  EXPECT_BULWARK_ERROR(SecretKey::read(dir_ / "release.pub"), "is a public key, not a secret");
  EXPECT_BULWARK_ERROR(SecretKey::read(dir_ / "release.sign-key"), "is a signing key");
  EXPECT_BULWARK_ERROR(PublicKey::read(dir_ / "model.key"), "is a secret (encryption) key");
  EXPECT_BULWARK_ERROR(PublicKey::read(dir_ / "release.sign-key"), "is a signing key");
  EXPECT_BULWARK_ERROR(SigningKey::read(dir_ / "release.pub"), "is a public key");
  auto bytes = signer.bytes();
  bytes[40] ^= 1;  // the public half no longer matches the seed
  std::ofstream(dir_ / "bad.sign-key", std::ios::binary)
      << "BLWKSGN1" << std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  EXPECT_BULWARK_ERROR(SigningKey::read(dir_ / "bad.sign-key"), "not a signing key");
}

class SealedModelTest : public testing::SeededTest {
 protected:
  testing::TempDir dir_;
};

TEST_F(SealedModelTest, LoadModelOpensSealedCheckpointsAndTorchScriptInMemory) {
  ModelSpec spec;
  spec.arch = "mlp";
  spec.hidden = {16};
  auto model = make_model(spec);
  save_model(model, spec, dir_ / "plain.pt");
  const auto key = SecretKey::generate();
  const auto signer = SigningKey::generate();
  seal_file(dir_ / "plain.pt", dir_ / "sealed.pt", SealOptions().key(key).signing_key(signer));
  const auto x = torch::rand({4, 1, 28, 28});
  const auto expected = model.forward(x);
  const auto options = UnsealOptions().key(key).trusted_keys({signer.public_key()});
  auto loaded = load_model(dir_ / "sealed.pt", c10::Device(c10::kCPU), options);
  ASSERT_TRUE(loaded.spec.has_value());
  EXPECT_TRUE(torch::equal(loaded.model.forward(x), expected));

  // A TorchScript model, sealed.
  const fs::path script = testing::test_data("tiny_mlp.pt");
  seal_file(script, dir_ / "script.sealed", SealOptions().key(key));
  auto scripted = load_model(dir_ / "script.sealed", c10::Device(c10::kCPU),
                             UnsealOptions().key(key));
  EXPECT_FALSE(scripted.spec.has_value());
  const auto plain_script = load_model(script);
  const auto y = torch::jit::load(testing::test_data("tiny_mlp_expected.pt"))
                     .attr("inputs")
                     .toTensor();
  EXPECT_TRUE(torch::equal(scripted.model.forward(y), plain_script.model.forward(y)));

  // With a key given, a plain file is refused: a sealed model cannot be swapped for a plain one.
  EXPECT_BULWARK_ERROR(load_model(dir_ / "plain.pt", c10::Device(c10::kCPU), options),
                       "not a sealed file");
  // A sealed file without its key names the file and what is missing.
  EXPECT_BULWARK_ERROR(load_model(dir_ / "sealed.pt"), "sealed.pt", "give its key file");
  // Only a trusted signature required: a signed (unencrypted) model loads, a plain one does not.
  sign_file(dir_ / "plain.pt", dir_ / "signed.pt", signer);
  const auto trust_only = UnsealOptions().trusted_keys({signer.public_key()});
  EXPECT_TRUE(torch::equal(
      load_model(dir_ / "signed.pt", c10::Device(c10::kCPU), trust_only).model.forward(x),
      expected));
  EXPECT_BULWARK_ERROR(load_model(dir_ / "plain.pt", c10::Device(c10::kCPU), trust_only),
                       "not a sealed file");
  // Unsealing writes the original bytes back, atomically, readable by the owner only.
  unseal_file(dir_ / "sealed.pt", dir_ / "unsealed.pt", options);
  EXPECT_EQ(testing::read_file(dir_ / "unsealed.pt"), testing::read_file(dir_ / "plain.pt"));
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "unsealed.pt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

}  // namespace
}  // namespace bulwark
