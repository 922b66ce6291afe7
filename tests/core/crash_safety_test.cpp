// Crash safety of every file Bulwark writes: a writer killed with SIGKILL at random points
// while it rewrites a checkpoint, a JSON report and a PNG never leaves a damaged file, and the
// next successful write leaves no temporary file behind.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "bulwark/core/files.h"
#include "bulwark/data/image_io.h"
#include "bulwark/models/model_zoo.h"
#include "data/data_test_util.h"
#include "test_util.h"

extern char** environ;

namespace bulwark {
namespace {
namespace fs = std::filesystem;

constexpr const char* kChildDirVariable = "BULWARK_CRASH_WRITER_DIR";

ModelSpec writer_spec() {
  ModelSpec spec;
  spec.arch = "mlp";
  spec.hidden = {256};  // about 200 000 weights: a write takes a few milliseconds
  return spec;
}

// Version v of each file: every weight equals v, the report says v, every pixel is v / 255.
// The model is made once by the caller: a writer then spends its time writing.
void write_version(const fs::path& dir, int64_t v, Model& model) {
  const auto spec = writer_spec();
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model.parameters()) p.fill_(static_cast<double>(v));
  }
  save_model(model, spec, dir / "model.pt");
  nlohmann::json report = {{"version", v}, {"padding", std::string(1 << 20, 'x')}};
  write_text_atomically(dir / "report.json", report.dump());
  write_png(dir / "image.png", torch::full({3, 256, 256}, static_cast<double>(v % 256) / 255.0));
}

// Which version each file holds; throws if a file is missing or damaged.
std::array<int64_t, 3> read_versions(const fs::path& dir) {
  auto loaded = load_model(dir / "model.pt");
  const auto first = loaded.model.parameters().front();
  const auto model_version = static_cast<int64_t>(first.flatten()[0].item<double>());
  for (const auto& p : loaded.model.parameters()) {
    EXPECT_TRUE(torch::all(p == static_cast<double>(model_version)).item<bool>());
  }
  std::ifstream in(dir / "report.json");
  const auto report = nlohmann::json::parse(in);
  EXPECT_EQ(report.at("padding").get<std::string>().size(), size_t{1} << 20);
  const auto image = read_png(dir / "image.png");
  EXPECT_EQ(image.sizes(), (std::vector<int64_t>{3, 256, 256}));
  EXPECT_TRUE(torch::all(image == image.flatten()[0]).item<bool>());
  const auto pixel = std::lround(image.flatten()[0].item<double>() * 255);
  return {model_version, report.at("version").get<int64_t>(), pixel};
}

std::vector<fs::path> temporaries(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().filename().string().find(".tmp-") != std::string::npos) {
      out.push_back(entry.path());
    }
  }
  return out;
}

// The child: started by the test below as this same test binary, it rewrites the three files
// with growing versions until it is killed. Disabled, so it never runs on its own.
TEST(CrashSafetyChild, DISABLED_WritesUntilKilled) {
  const char* dir = std::getenv(kChildDirVariable);
  if (dir == nullptr) GTEST_SKIP() << "runs only as the crash-safety test's child";
  const char* start = std::getenv("BULWARK_CRASH_WRITER_START");
  auto model = make_model(writer_spec());
  int64_t v = start != nullptr ? std::atoll(start) : 1;
  write_version(dir, v++, model);  // warm: the random kill below lands among writes
  std::ofstream(fs::path(dir) / "writer-started").put('1');
  for (;; ++v) write_version(dir, v, model);
}

class CrashSafetyTest : public testing::SeededTest {
 protected:
  testing::TempDir dir_;
};

TEST_F(CrashSafetyTest, KilledWritersNeverLeaveADamagedFileNorATemporaryAfterTheNextWrite) {
  auto model = make_model(writer_spec());
  write_version(dir_.path(), 0, model);
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> delay_ms(0, 150);
  std::uniform_int_distribution<int> delay_us(0, 1000);
  int kills_mid_write = 0;
  int64_t next = 1;
  constexpr int kKills = 20;
  for (int kill = 0; kill < kKills; ++kill) {
    const std::string filter = "--gtest_filter=CrashSafetyChild.DISABLED_WritesUntilKilled";
    const std::string also = "--gtest_also_run_disabled_tests";
    const std::string dir_env = std::string(kChildDirVariable) + "=" + dir_.path().string();
    const std::string start_env = "BULWARK_CRASH_WRITER_START=" + std::to_string(next);
    std::vector<char*> argv = {const_cast<char*>("/proc/self/exe"), const_cast<char*>(filter.c_str()),
                               const_cast<char*>(also.c_str()), nullptr};
    std::vector<char*> envp;
    for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
    envp.push_back(const_cast<char*>(dir_env.c_str()));
    envp.push_back(const_cast<char*>(start_env.c_str()));
    envp.push_back(const_cast<char*>("OMP_NUM_THREADS=1"));
    envp.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    pid_t child = 0;
    ASSERT_EQ(posix_spawn(&child, "/proc/self/exe", &actions, nullptr, argv.data(), envp.data()),
              0);
    posix_spawn_file_actions_destroy(&actions);
    // The child loads LibTorch first; the random delay counts from its first write.
    const auto started = dir_.path() / "writer-started";
    for (int i = 0; i < 6000 && !fs::exists(started); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ASSERT_TRUE(fs::exists(started)) << "the writer did not start within 30 s";
    if (kill % 2 == 0) {
      // At a random moment.
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    } else {
      // At a random point soon after a temporary file appears: inside a write.
      for (int i = 0; i < 100000 && temporaries(dir_.path()).empty(); ++i) {
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
      std::this_thread::sleep_for(std::chrono::microseconds(delay_us(rng)));
    }
    ::kill(child, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "the writer ended by itself (status " << status << ")";

    // Every file is whole and holds a version that was completely written.
    const auto versions = read_versions(dir_.path());
    fs::remove(started);
    // The last version written before, or a newer one (the child's first write is `next`).
    EXPECT_GE(versions[0], next - 1);
    EXPECT_GE(versions[1], next - 1);
    if (!temporaries(dir_.path()).empty()) ++kills_mid_write;
    next = std::max({versions[0], versions[1], next}) + 1;

    // The next successful write removes what the killed writer left.
    write_version(dir_.path(), next, model);
    EXPECT_EQ(read_versions(dir_.path()), (std::array<int64_t, 3>{next, next, next % 256}));
    const auto left = temporaries(dir_.path());
    EXPECT_TRUE(left.empty()) << left.front();
    ++next;
  }
  // Half the kills wait for a write to begin; the test is void if too few landed in one.
  std::cout << kills_mid_write << " of " << kKills << " kills left a temporary file\n";
  EXPECT_GE(kills_mid_write, kKills / 4);
}

}  // namespace
}  // namespace bulwark
