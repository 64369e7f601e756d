#include "flags.h"

#include <catch2/catch.hpp>

#include "sockdiag/collector.h"

using namespace sockdiag;

namespace {

Result<FlagAction> Parse(std::vector<std::string> args, Config* c) { return ParseFlags(args, c); }

}  // namespace

TEST_CASE("defaults enable the default collectors", "[flags]") {
  Config c;
  REQUIRE(Parse({}, &c).ok());
  for (const auto& info : AllCollectors()) {
    INFO(info.name);
    CHECK(c.IsEnabled(info.name) == info.enabled_by_default);
  }
  CHECK(c.listen_address == ":10061");
  CHECK(c.poll_interval == std::chrono::seconds(15));
  CHECK(c.ports_rate_window == std::chrono::seconds(10));
}

TEST_CASE("the close-rate window flag takes 1s to 60s", "[flags]") {
  Config c;
  REQUIRE(Parse({"--ports.rate-window=1s"}, &c).ok());
  CHECK(c.ports_rate_window == std::chrono::seconds(1));
  REQUIRE(Parse({"--ports.rate-window=1m"}, &c).ok());
  CHECK(c.ports_rate_window == std::chrono::seconds(60));
  auto r = Parse({"--ports.rate-window=90s"}, &c);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().context() == "--ports.rate-window: 90s is out of range [1s, 60s]");
}

TEST_CASE("flags take =value and separate values", "[flags]") {
  Config c;
  REQUIRE(Parse({"--poll.interval=1m30s", "--path.procfs", "/host/proc", "--log.format=json",
                 "--collector.sysctl.include=net.ipv4.tcp_keepalive_time",
                 "--no-netns.include-host", "--netns.mode=pods"},
                &c)
              .ok());
  CHECK(c.poll_interval == std::chrono::seconds(90));
  CHECK(c.procfs == "/host/proc");
  CHECK(c.log_format == LogFormat::kJson);
  CHECK(c.sysctl_include == std::vector<std::string>{"net.ipv4.tcp_keepalive_time"});
  CHECK_FALSE(c.netns_include_host);
  CHECK(c.netns_mode == NetnsMode::kPods);
}

TEST_CASE("collector switches and disable-defaults", "[flags]") {
  Config c;
  REQUIRE(Parse({"--no-collector.sockets"}, &c).ok());
  CHECK_FALSE(c.IsEnabled("sockets"));
  CHECK(c.IsEnabled("sysctl"));
  REQUIRE(Parse({"--collector.disable-defaults", "--collector.netstat"}, &c).ok());
  CHECK(c.collectors == std::set<std::string>{"netstat"});
}

TEST_CASE("bad flags are InvalidArgument naming the flag", "[flags]") {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--poll.interval=-3s"}, "--poll.interval"},
      {{"--poll.interval=3"}, "--poll.interval"},
      {{"--poll.interval=0ms"}, "--poll.interval"},
      {{"--poll.interval=25h"}, "--poll.interval"},
      {{"--poll.interval"}, "--poll.interval"},
      {{"--nope"}, "--nope"},
      {{"--collector.bogus"}, "bogus"},
      {{"--collector.sockets=true"}, "--collector.sockets"},
      {{"--web.listen-address=10061"}, "--web.listen-address"},
      {{"--web.listen-address=:70000"}, "--web.listen-address"},
      {{"--web.listen-address=[::1:80"}, "--web.listen-address"},
      {{"--web.telemetry-path=/"}, "--web.telemetry-path"},
      {{"--web.max-requests=0"}, "--web.max-requests"},
      {{"--ports.top-services=abc"}, "--ports.top-services"},
      {{"--ports.rate-window=500ms"}, "--ports.rate-window"},
      {{"--ports.rate-window=61s"}, "--ports.rate-window"},
      {{"--ports.rate-window=ten"}, "--ports.rate-window"},
      {{"--conntrack.nat-port-range=5-1"}, "--conntrack.nat-port-range"},
      {{"--netns.mode=all"}, "--netns.mode"},
      {{"--log.level=trace"}, "--log.level"},
      {{"--collector.sysctl.include=../../etc/passwd"}, "--collector.sysctl.include"},
      {{"--netns.include-host=yes"}, "--netns.include-host"},
      {{"positional"}, "positional"},
  };
  for (const auto& [args, mention] : cases) {
    Config c;
    auto r = Parse(args, &c);
    INFO(args[0]);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Status::Code::kInvalidArgument);
    CHECK(r.status().context().find(mention) != std::string::npos);
    CHECK(r.status().context().find('\n') == std::string::npos);
  }
}

TEST_CASE("durations", "[flags]") {
  CHECK(ParseDuration("15s").value() == std::chrono::seconds(15));
  CHECK(ParseDuration("250ms").value() == std::chrono::milliseconds(250));
  CHECK(ParseDuration("1h2m3s").value() == std::chrono::seconds(3723));
  CHECK_FALSE(ParseDuration("").ok());
  CHECK_FALSE(ParseDuration("s").ok());
  CHECK_FALSE(ParseDuration("5x").ok());
  CHECK(ParseDuration("1.5m").value() == std::chrono::seconds(90));  // Go's syntax.
  CHECK_FALSE(ParseDuration("0").ok());
  CHECK_FALSE(ParseDuration("500us").ok());  // Under 1ms.
  CHECK_FALSE(ParseDuration("-5s").ok());
  CHECK(ParseDuration("24h").ok());
  CHECK(ParseDuration("25h").status().context().find("24h") != std::string::npos);
}

TEST_CASE("listen addresses", "[flags]") {
  auto any = ParseListenAddress(":10061");
  REQUIRE(any.ok());
  CHECK(any.value().host.empty());
  CHECK(any.value().port == 10061);
  CHECK(ParseListenAddress("[::1]:9").value().host == "::1");
  CHECK(ParseListenAddress("localhost:0").value().host == "127.0.0.1");
  CHECK(ParseListenAddress("10.0.0.1:80").value().host == "10.0.0.1");
  CHECK_FALSE(ParseListenAddress("example.com:80").ok());
  CHECK_FALSE(ParseListenAddress("1.2.3.4:").ok());
}

TEST_CASE("help lists every collector and flag", "[flags]") {
  std::string help = UsageText("sockdiag_exporter");
  for (const auto& info : AllCollectors()) {
    CHECK(help.find(std::string("--[no-]collector.") + info.name) != std::string::npos);
  }
  CHECK(help.find("--web.listen-address") != std::string::npos);
  CHECK(help.find("(default: 15s)") != std::string::npos);
}

TEST_CASE("--help shows each default from Config{} and every flag takes it back", "[flags]") {
  const Config defaults;
  for (const auto& spec : ExporterFlags()) {
    INFO(spec.name);
    const std::string name = spec.name;
    if (!spec.show) {
      CHECK(name == "collector.sysctl.include");  // Repeatable, no default.
      continue;
    }
    const std::string shown = spec.show(defaults);
    if (shown.empty()) continue;  // An unset path.
    CHECK(UsageText("x").find("(default: " + shown + ")") != std::string::npos);
    Config c;
    const std::string arg = spec.placeholder != nullptr ? "--" + name + "=" + shown
                            : shown == "true"           ? "--" + name
                                                        : "--no-" + name;
    REQUIRE(ParseFlags({arg}, &c).ok());
    CHECK(spec.show(c) == shown);
  }
}

TEST_CASE("a subcommand's own flags are parsed with the exporter's", "[flags]") {
  std::string seen;
  const std::vector<FlagSpec> extra = {{"only.here", "X", "A subcommand flag.",
                                        [&seen](std::string_view v, Config*) {
                                          seen = std::string(v);
                                          return Status::Ok();
                                        },
                                        nullptr}};
  Config c;
  REQUIRE(ParseFlags({"--only.here", "v", "--ports.top-services=3"}, &c, extra).ok());
  CHECK(seen == "v");
  CHECK(c.ports_top_services == 3);
  CHECK_FALSE(ParseFlags({"--only.here=v"}, &c).ok());  // Unknown to the exporter alone.
  CHECK(FlagUsage(extra).find("--only.here=X") != std::string::npos);
}
