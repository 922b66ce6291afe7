// bulwark keygen, seal, unseal, sign, verify, and sealed models behind --model, end to end.
#include <stdlib.h>

#include <fstream>

#include "bulwark/models/model_zoo.h"
#include "bulwark/security/sealed_file.h"
#include "cli/run_cli.h"
#include "data/data_test_util.h"
#include "test_util.h"

namespace bulwark {
namespace {
namespace fs = std::filesystem;
using testing::count_lines;
using testing::run_cli;

class SecurityCliTest : public testing::SeededTest {
 protected:
  void SetUp() override {
    testing::SeededTest::SetUp();
    ModelSpec spec;
    spec.arch = "mlp";
    spec.hidden = {16};
    save_model(make_model(spec), spec, dir_ / "model.pt");
    ASSERT_EQ(run_cli("keygen --out " + p("model.key")).status, 0);
    const auto signing = run_cli("keygen --signing --out " + p("release.sign-key"));
    ASSERT_EQ(signing.status, 0) << signing.output;
    ASSERT_NE(signing.output.find("key id " + PublicKey::read(dir_ / "release.pub").id()),
              std::string::npos)
        << signing.output;
    ASSERT_EQ(run_cli("keygen --signing --out " + p("other.sign-key")).status, 0);
  }
  std::string p(const std::string& name) const { return (dir_ / name).string(); }
  testing::TempDir dir_;
};

TEST_F(SecurityCliTest, SealVerifyUseAndUnseal) {
  auto r = run_cli("seal --quiet --in " + p("model.pt") + " --out " + p("model.sealed") +
                   " --key-file " + p("model.key") + " --sign-key " + p("release.sign-key"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("encrypted (key), signed by key"), std::string::npos) << r.output;
  EXPECT_TRUE(is_sealed_file(dir_ / "model.sealed"));

  r = run_cli("verify --in " + p("model.sealed") + " --trust " + p("release.pub"));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("valid signature"), std::string::npos) << r.output;
  r = run_cli("verify --in " + p("model.sealed") + " --trust " + p("other.pub"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("not trusted"), std::string::npos) << r.output;

  // A command that takes --model opens it with the key, from the option or the environment.
  const std::string data = " --data mnist --data-dir /nonexistent";
  auto with_key = "evaluate --quiet --model " + p("model.sealed") + " --key-file " +
                  p("model.key") + " --trust " + p("release.pub") + data;
  r = run_cli(with_key);
  // The model opened; the (missing) data set is what fails now.
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("/nonexistent"), std::string::npos) << r.output;
  ::setenv("BULWARK_KEY_FILE", p("model.key").c_str(), 1);
  r = run_cli("evaluate --quiet --model " + p("model.sealed") + data);
  ::unsetenv("BULWARK_KEY_FILE");
  EXPECT_NE(r.output.find("/nonexistent"), std::string::npos) << r.output;
  r = run_cli("evaluate --quiet --model " + p("model.sealed") + data);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("give its key file"), std::string::npos) << r.output;
  EXPECT_EQ(count_lines(r.output), 1u) << r.output;
  r = run_cli("evaluate --quiet --model " + p("model.sealed") + " --trust " + p("other.pub") +
              " --key-file " + p("model.key") + data);
  EXPECT_NE(r.output.find("not trusted"), std::string::npos) << r.output;
  r = run_cli("evaluate --quiet --model " + p("model.pt") + " --key-file " + p("model.key") + data);
  EXPECT_NE(r.output.find("not a sealed file"), std::string::npos) << r.output;

  r = run_cli("unseal --quiet --in " + p("model.sealed") + " --out " + p("back.pt") +
              " --key-file " + p("model.key") + " --trust " + p("release.pub"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(testing::read_file(dir_ / "back.pt"), testing::read_file(dir_ / "model.pt"));
}

TEST_F(SecurityCliTest, SignPassphraseAndRefusalsWriteNothing) {
  // Sign a plain file: wrapped, readable, signed.
  auto r = run_cli("sign --quiet --in " + p("model.pt") + " --out " + p("model.signed") +
                   " --sign-key " + p("release.sign-key"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("not encrypted, signed by key"), std::string::npos) << r.output;
  // A passphrase from a file, at the cheapest named cost.
  std::ofstream(dir_ / "pass.txt") << "correct horse battery staple\n";
  r = run_cli("seal --quiet --in " + p("model.pt") + " --out " + p("pass.sealed") +
              " --passphrase-file " + p("pass.txt") + " --passphrase-cost interactive");
  ASSERT_EQ(r.status, 0) << r.output;
  r = run_cli("unseal --quiet --in " + p("pass.sealed") + " --out " + p("pass.pt") +
              " --passphrase-file " + p("pass.txt"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(testing::read_file(dir_ / "pass.pt"), testing::read_file(dir_ / "model.pt"));

  // Refusals: one line, exit 1, no output file.
  auto tampered = testing::read_file(dir_ / "pass.sealed");
  tampered[tampered.size() / 2] ^= 0x10;
  std::ofstream(dir_ / "tampered.sealed", std::ios::binary) << tampered;
  std::ofstream(dir_ / "wrong.txt") << "wrong horse\n";
  for (const auto& [command, fragment] : std::vector<std::pair<std::string, std::string>>{
           {"unseal --in " + p("tampered.sealed") + " --passphrase-file " + p("pass.txt"),
            "fails authentication"},
           {"unseal --in " + p("pass.sealed") + " --passphrase-file " + p("wrong.txt"),
            "wrong passphrase"},
           {"unseal --in " + p("model.signed") + " --trust " + p("other.pub"), "not trusted"},
           {"unseal --in " + p("pass.sealed") + " --key-file " + p("model.key"),
            "encrypted with a passphrase"},
           {"seal --in " + p("model.pt"), "nothing to do"},
           {"unseal --in " + p("model.pt") + " --key-file " + p("model.key"),
            "not a sealed file"}}) {
    r = run_cli(command + " --out " + p("out.bin"));
    EXPECT_EQ(r.status, 1) << command << "\n" << r.output;
    EXPECT_EQ(count_lines(r.output), 1u) << r.output;
    EXPECT_NE(r.output.find(fragment), std::string::npos) << command << "\n" << r.output;
    EXPECT_FALSE(fs::exists(dir_ / "out.bin")) << command;
  }
  // Keys are never overwritten silently.
  r = run_cli("keygen --out " + p("model.key"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("never overwritten"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace bulwark
