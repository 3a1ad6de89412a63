// The Registry contract against a real etcd (started by this test), plus what only the etcd
// registry does: leases, keep-alive, reconnecting watches, unreachable endpoints.
#include "weft/membership/etcd_registry.h"

#include <chrono>
#include <memory>
#include <string>

#include "gtest/gtest.h"

#include "weft/membership/etcd_test_server.h"
#include "weft/membership/registry_contract_test.h"

namespace weft::membership {
namespace {

using std::chrono::milliseconds;

// One etcd for the whole binary; each test works under its own cluster name.
class EtcdEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    StatusOr<std::unique_ptr<EtcdTestServer>> server = EtcdTestServer::Start();
    if (!server.ok()) {
      status_ = server.status();
      return;
    }
    server_ = *std::move(server);
  }
  void TearDown() override { server_.reset(); }

  static Status status() { return status_; }
  static EtcdTestServer& server() { return *server_; }

 private:
  static inline Status status_;
  static inline std::unique_ptr<EtcdTestServer> server_;
};

// gtest owns registered environments.
[[maybe_unused]] ::testing::Environment* const kEtcdEnvironment =
    ::testing::AddGlobalTestEnvironment(new EtcdEnvironment);

std::string FreshCluster() {
  static int counter = 0;
  return "test" + std::to_string(++counter);
}

EtcdRegistryOptions Options(const std::string& cluster, int64_t lease_ttl_s = 2) {
  EtcdRegistryOptions options;
  options.endpoint = EtcdEnvironment::server().endpoint();
  options.cluster = cluster;
  options.lease_ttl_s = lease_ttl_s;
  options.watch_retry_ms = 50;
  options.watch_retry_ms_max = 500;
  return options;
}

class EtcdBackend {
 public:
  static constexpr int kRacers = 8;
  static constexpr int kRaceRounds = 3;
  static constexpr milliseconds kWaitMax{10000};

  Status Ready() { return EtcdEnvironment::status(); }
  std::unique_ptr<Registry> NewRegistry() {
    return std::make_unique<EtcdRegistry>(Options(cluster_));
  }
  void Crash(Registry& registry, uint64_t member_id) {
    static_cast<EtcdRegistry&>(registry).StopKeepAlive();
  }

 private:
  const std::string cluster_ = FreshCluster();
};

INSTANTIATE_TYPED_TEST_SUITE_P(Etcd, RegistryContractTest, EtcdBackend);

class EtcdRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const Status ready = EtcdEnvironment::status();
    if (absl::IsNotFound(ready)) {
      GTEST_SKIP() << ready;
    }
    ASSERT_TRUE(ready.ok()) << ready;
  }

  const std::string cluster_ = FreshCluster();
};

MemberInfo Info(uint64_t id, std::string name) {
  MemberInfo info;
  info.member_id = id;
  info.name = std::move(name);
  info.peer_address = "127.0.0.1:7001";
  info.client_address = "127.0.0.1:6001";
  return info;
}

TEST_F(EtcdRegistryTest, LostLeaseIsReportedAndTheMemberStopsActing) {
  auto registry = std::make_unique<EtcdRegistry>(Options(cluster_));
  Mutex mutex;
  MutexCondition changed;
  bool lost = false;
  registry->SetLeaseLostCallback([&](uint64_t /*registration*/) {
    MutexLock lock(&mutex);
    lost = true;
    changed.SignalAll();
  });
  ASSERT_TRUE(registry->Register(Info(1, "a")).ok());
  ASSERT_TRUE(registry->EnterRegion("r").ok());
  EXPECT_GE(registry->lease_ttl_s(), 2);
  // Someone (an operator, etcd itself after a long partition) revokes the lease.
  EtcdClient client(EtcdClientOptions{.endpoint = EtcdEnvironment::server().endpoint()});
  ASSERT_TRUE(client.RevokeLease(registry->lease_id()).ok());
  {
    MutexLock lock(&mutex);
    while (!lost) {
      ASSERT_TRUE(changed.WaitFor(&mutex, milliseconds(5000)));
    }
  }
  const Status entered = registry->EnterRegion("other").status();
  EXPECT_TRUE(absl::IsFailedPrecondition(entered)) << entered;
  StatusOr<GroupView> group = registry->ReadGroup("r");
  ASSERT_TRUE(group.ok());
  EXPECT_TRUE(group->members.empty());
  EXPECT_TRUE(registry->Deregister().ok());
}

TEST_F(EtcdRegistryTest, KeepAliveHoldsTheMemberPastItsTtl) {
  EtcdRegistry registry(Options(cluster_, /*lease_ttl_s=*/1));
  ASSERT_TRUE(registry.Register(Info(1, "a")).ok());
  ASSERT_TRUE(registry.EnterRegion("r").ok());
  const int64_t ttl_s = registry.lease_ttl_s();
  ASSERT_GE(ttl_s, 1);  // etcd may raise it to its minimum
  // Nothing to wait on but time itself: the lease would have expired by now without renewals.
  std::this_thread::sleep_for(milliseconds(ttl_s * 1000 + 1000));
  StatusOr<GroupView> group = registry.ReadGroup("r");
  ASSERT_TRUE(group.ok());
  EXPECT_EQ(Summary(*group), "a:ACTIVE");
  ASSERT_TRUE(registry.Deregister().ok());
  group = registry.ReadGroup("r");
  ASSERT_TRUE(group.ok());
  EXPECT_EQ(Summary(*group), "");
}

TEST_F(EtcdRegistryTest, UnreachableEtcdFailsQuicklyWithAClearError) {
  EtcdRegistryOptions options;
  options.endpoint = "127.0.0.1:1";  // privileged and unused: connection refused
  options.cluster = cluster_;
  options.connect_timeout_ms = 500;
  options.request_timeout_ms = 1000;
  StatusOr<std::unique_ptr<EtcdRegistry>> registry = EtcdRegistry::Create(options);
  ASSERT_TRUE(registry.ok()) << registry.status();
  const auto started = std::chrono::steady_clock::now();
  const Status registered = (*registry)->Register(Info(1, "a"));
  EXPECT_TRUE(absl::IsUnavailable(registered)) << registered;
  EXPECT_NE(std::string(registered.message()).find("etcd unreachable at 127.0.0.1:1"),
            std::string::npos)
      << registered;
  const Status read = (*registry)->ReadGroup("r").status();
  EXPECT_TRUE(absl::IsUnavailable(read)) << read;
  EXPECT_LT(std::chrono::steady_clock::now() - started, milliseconds(3000));
  // A watch keeps retrying in the background and still cancels promptly.
  ViewRecorder recorder;
  std::unique_ptr<WatchHandle> watch = (*registry)->Watch("r", recorder.Callback());
  std::this_thread::sleep_for(milliseconds(100));
  const auto cancel_started = std::chrono::steady_clock::now();
  watch.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - cancel_started, milliseconds(500));
  EXPECT_TRUE(recorder.views().empty());
}

TEST_F(EtcdRegistryTest, CreateRejectsBadOptions) {
  EtcdRegistryOptions options;
  options.endpoint = "localhost";
  EXPECT_TRUE(absl::IsInvalidArgument(EtcdRegistry::Create(options).status()));
  options.endpoint = "127.0.0.1:2379";
  options.cluster = "a/b";
  EXPECT_TRUE(absl::IsInvalidArgument(EtcdRegistry::Create(options).status()));
  options.cluster = "ok";
  options.lease_ttl_s = 0;
  EXPECT_TRUE(absl::IsInvalidArgument(EtcdRegistry::Create(options).status()));
}

// etcd goes away and comes back: the watch reconnects and resumes after the last revision it
// delivered, so the change made while it was reconnecting is not lost.
TEST_F(EtcdRegistryTest, WatchResumesAfterEtcdRestarts) {
  EtcdRegistry a(Options(cluster_, /*lease_ttl_s=*/15));
  EtcdRegistry b(Options(cluster_, /*lease_ttl_s=*/15));
  ASSERT_TRUE(a.Register(Info(1, "a")).ok());
  ASSERT_TRUE(b.Register(Info(2, "b")).ok());
  ASSERT_TRUE(a.EnterRegion("r").ok());
  ViewRecorder recorder;
  std::unique_ptr<WatchHandle> watch = a.Watch("r", recorder.Callback());
  ASSERT_TRUE(recorder.WaitFor([](const GroupView& view) { return Summary(view) == "a:ACTIVE"; },
                               milliseconds(10000)));
  const Status restarted = EtcdEnvironment::server().Restart();
  ASSERT_TRUE(restarted.ok()) << restarted;
  // The first requests after a restart may still fail while etcd settles; retry briefly.
  StatusOr<EnterResult> entered = absl::UnknownError("not tried");
  const auto deadline = std::chrono::steady_clock::now() + milliseconds(10000);
  while (!entered.ok() && std::chrono::steady_clock::now() < deadline) {
    entered = b.EnterRegion("r");
  }
  ASSERT_TRUE(entered.ok()) << entered.status();
  ASSERT_TRUE(recorder.WaitFor(
      [](const GroupView& view) { return Summary(view) == "a:ACTIVE b:INITIALIZING"; },
      milliseconds(10000)));
  const std::vector<GroupView> views = recorder.views();
  for (size_t i = 1; i < views.size(); ++i) {
    EXPECT_GT(views[i].revision, views[i - 1].revision);
  }
  EXPECT_TRUE(a.Deregister().ok());
  EXPECT_TRUE(b.Deregister().ok());
}

}  // namespace
}  // namespace weft::membership
