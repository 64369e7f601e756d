#include <catch2/catch.hpp>
#include <cerrno>

#include "netlink/inet_diag.h"
#include "netlink/netlink.h"
#include "netlink/replay_dumper.h"
#include "unit/netlink_builders.h"

using namespace sockdiag;
using sockdiag::testing::DatagramBuilder;

namespace {

struct CountingSink : MessageSink {
  int n = 0;
  Status fail_with = Status::Ok();
  Status OnMessage(const struct nlmsghdr*) override {
    ++n;
    return fail_with;
  }
};

const uint8_t kLo4[4] = {127, 0, 0, 1};

}  // namespace

TEST_CASE("walker delivers data messages and stops at NLMSG_DONE", "[netlink]") {
  DatagramBuilder b;
  b.AddSocket(AF_INET, 1, 1000, 80, kLo4, kLo4);
  b.AddSocket(AF_INET, 6, 1001, 80, kLo4, kLo4);
  b.AddDone();
  auto bytes = b.Bytes();
  CountingSink sink;
  DumpStats stats;
  auto r = ProcessDatagram(bytes, 0, 0, sink, &stats);
  REQUIRE(r.ok());
  CHECK(r.value() == DumpProgress::kDone);
  CHECK(sink.n == 2);
  CHECK_FALSE(stats.interrupted);
}

TEST_CASE("walker asks for more when a multipart dump continues", "[netlink]") {
  DatagramBuilder b;
  b.AddSocket(AF_INET, 1, 1000, 80, kLo4, kLo4);
  CountingSink sink;
  DumpStats stats;
  auto r = ProcessDatagram(b.Bytes(), 0, 0, sink, &stats);
  REQUIRE(r.ok());
  CHECK(r.value() == DumpProgress::kMore);
}

TEST_CASE("an errno carried in NLMSG_DONE fails the dump", "[netlink]") {
  DatagramBuilder b;
  b.AddSocket(AF_INET, 1, 1000, 80, kLo4, kLo4);
  b.AddDone(-ENOBUFS);
  CountingSink sink;
  DumpStats stats;
  auto r = ProcessDatagram(b.Bytes(), 0, 0, sink, &stats);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().err() == ENOBUFS);
  CHECK(sink.n == 1);
}

TEST_CASE("an impossible errno in NLMSG_DONE or NLMSG_ERROR is corruption", "[netlink]") {
  CountingSink sink;
  DumpStats stats;
  DatagramBuilder done;
  done.AddDone(INT32_MIN);
  CHECK(ProcessDatagram(done.Bytes(), 0, 0, sink, &stats).status().code() ==
        Status::Code::kCorruption);
  DatagramBuilder error;
  error.AddError(INT32_MIN);
  CHECK(ProcessDatagram(error.Bytes(), 0, 0, sink, &stats).status().code() ==
        Status::Code::kCorruption);
  DatagramBuilder positive;
  positive.AddError(5);
  CHECK_FALSE(ProcessDatagram(positive.Bytes(), 0, 0, sink, &stats).ok());
}

TEST_CASE("NLMSG_ERROR maps to a Status; an ACK ends the reply", "[netlink]") {
  CountingSink sink;
  DumpStats stats;
  {
    DatagramBuilder b;
    b.AddError(-EPERM);
    auto r = ProcessDatagram(b.Bytes(), 0, 0, sink, &stats);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().IsPermission());
  }
  {
    DatagramBuilder b;
    b.AddError(-ENOENT);
    auto r = ProcessDatagram(b.Bytes(), 0, 0, sink, &stats);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().IsNotFound());
  }
  {
    DatagramBuilder b;
    b.AddError(0);
    auto r = ProcessDatagram(b.Bytes(), 0, 0, sink, &stats);
    REQUIRE(r.ok());
    CHECK(r.value() == DumpProgress::kDone);
  }
}

TEST_CASE("NLM_F_DUMP_INTR is noted and the dump goes on", "[netlink]") {
  DatagramBuilder b;
  auto* nlh = b.AddSocket(AF_INET, 1, 1000, 80, kLo4, kLo4);
  nlh->nlmsg_flags |= NLM_F_DUMP_INTR;
  b.AddSocket(AF_INET, 1, 1001, 80, kLo4, kLo4);
  b.AddDone();
  CountingSink sink;
  DumpStats stats;
  auto r = ProcessDatagram(b.Bytes(), 0, 0, sink, &stats);
  REQUIRE(r.ok());
  CHECK(stats.interrupted);
  CHECK(sink.n == 2);
}

TEST_CASE("truncated and oversized messages are corruption, never overreads", "[netlink]") {
  DatagramBuilder b;
  b.AddSocket(AF_INET, 1, 1000, 80, kLo4, kLo4);
  b.AddDone();
  auto bytes = b.Bytes();
  CountingSink sink;
  DumpStats stats;
  SECTION("cut in the middle of the second message") {
    bytes.resize(bytes.size() - 6);
    auto r = ProcessDatagram(bytes, 0, 0, sink, &stats);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Status::Code::kCorruption);
  }
  SECTION("a length field larger than the datagram") {
    auto* nlh = reinterpret_cast<struct nlmsghdr*>(bytes.data());
    nlh->nlmsg_len = static_cast<uint32_t>(bytes.size() + 100);
    auto r = ProcessDatagram(bytes, 0, 0, sink, &stats);
    REQUIRE_FALSE(r.ok());
    CHECK(sink.n == 0);
  }
  SECTION("a length field of 2^31 or more (libmnl's int cast would accept it)") {
    auto* nlh = reinterpret_cast<struct nlmsghdr*>(bytes.data());
    nlh->nlmsg_len = 0xbc00007cu;
    auto r = ProcessDatagram(bytes, 0, 0, sink, &stats);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Status::Code::kCorruption);
    CHECK(sink.n == 0);
  }
  SECTION("a length field smaller than a header") {
    auto* nlh = reinterpret_cast<struct nlmsghdr*>(bytes.data());
    nlh->nlmsg_len = 4;
    auto r = ProcessDatagram(bytes, 0, 0, sink, &stats);
    REQUIRE_FALSE(r.ok());
    CHECK(sink.n == 0);
  }
}

TEST_CASE("a reply with a foreign sequence number is rejected", "[netlink]") {
  DatagramBuilder b;
  auto* nlh = b.AddSocket(AF_INET, 1, 1000, 80, kLo4, kLo4);
  nlh->nlmsg_seq = 7;
  CountingSink sink;
  DumpStats stats;
  auto r = ProcessDatagram(b.Bytes(), 8, 0, sink, &stats);
  REQUIRE_FALSE(r.ok());
  CHECK(sink.n == 0);
  auto ok = ProcessDatagram(b.Bytes(), 7, 0, sink, &stats);
  CHECK(ok.ok());
}

TEST_CASE("a sink error aborts the walk", "[netlink]") {
  DatagramBuilder b;
  b.AddSocket(AF_INET, 1, 1000, 80, kLo4, kLo4);
  b.AddSocket(AF_INET, 1, 1001, 80, kLo4, kLo4);
  b.AddDone();
  CountingSink sink;
  sink.fail_with = Status::Corruption("boom");
  DumpStats stats;
  auto r = ProcessDatagram(b.Bytes(), 0, 0, sink, &stats);
  REQUIRE_FALSE(r.ok());
  CHECK(sink.n == 1);
}

TEST_CASE("a datagram ends the reply at DONE, an ACK or the kernel's refusal only", "[netlink]") {
  CountingSink sink;
  DumpStats stats;
  bool ended = false;
  DatagramBuilder more;
  more.AddSocket(AF_INET, 1, 1000, 80, kLo4, kLo4);
  REQUIRE(ProcessDatagram(more.Bytes(), 0, 0, sink, &stats, &ended).ok());
  CHECK_FALSE(ended);
  DatagramBuilder refused;
  refused.AddError(-EPERM);
  CHECK(ProcessDatagram(refused.Bytes(), 0, 0, sink, &stats, &ended).status().IsPermission());
  CHECK(ended);
  DatagramBuilder failed_mid_dump;
  failed_mid_dump.AddDone(-EINTR);
  CHECK_FALSE(ProcessDatagram(failed_mid_dump.Bytes(), 0, 0, sink, &stats, &ended).ok());
  CHECK(ended);
  // A sink that stops the walk leaves the rest of the reply unread.
  DatagramBuilder data;
  data.AddSocket(AF_INET, 1, 1000, 80, kLo4, kLo4);
  data.AddDone();
  sink.fail_with = Status::IOError("enough");
  CHECK_FALSE(ProcessDatagram(data.Bytes(), 0, 0, sink, &stats, &ended).ok());
  CHECK_FALSE(ended);
}

TEST_CASE("ReplayDumper replays dump by dump and breaks as a socket does", "[netlink]") {
  DatagramBuilder first, refused, partial;
  first.AddSocket(AF_INET, 1, 1000, 80, kLo4, kLo4);
  first.AddDone();
  refused.AddError(-ENOENT);
  partial.AddSocket(AF_INET, 1, 1001, 80, kLo4, kLo4);  // NLM_F_MULTI, then silence.
  Datagrams requests;
  ReplayDumper dumper({first.Bytes(), refused.Bytes(), partial.Bytes()}, &requests);
  std::vector<uint8_t> request(sizeof(struct nlmsghdr), 0);
  CountingSink sink;
  DumpStats stats;
  CHECK(dumper.Dump(request, sink, &stats).ok());
  CHECK(sink.n == 1);
  CHECK(dumper.Dump(request, sink, &stats).IsNotFound());
  CHECK_FALSE(dumper.broken());  // The refusal was the whole reply.
  Status s = dumper.Dump(request, sink, &stats);
  CHECK(s.err() == ETIMEDOUT);
  CHECK(dumper.broken());
  CHECK(dumper.Dump(request, sink, &stats).code() == Status::Code::kIOError);
  CHECK(requests.size() == 3);  // A broken dumper sends nothing.
}
