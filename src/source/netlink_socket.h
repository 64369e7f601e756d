// NetlinkSocket: a thin RAII libmnl socket that sends one dump request and
// streams the replies through the walker (netlink/netlink.h), and
// LocalNetlinkFactory, which opens them in the calling thread's namespace.
//
// Thread-safety: a NetlinkSocket is used by one thread at a time.
// Failure: an error other than the kernel refusing the request leaves the
// socket unusable; the owner reopens (see Dump()).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "netlink/netlink.h"
#include "sockdiag/status.h"
#include "source/dump_session.h"

struct mnl_socket;

namespace sockdiag {

// A NETLINK_SOCK_DIAG or NETLINK_NETFILTER socket (libmnl), opened with
// SOCK_CLOEXEC, a 1 MiB receive buffer and a receive timeout bounding any dump.
class NetlinkSocket final : public NetlinkDumper {
 public:
  // bus: NETLINK_SOCK_DIAG, NETLINK_NETFILTER, ...
  static Result<std::unique_ptr<NetlinkSocket>> Open(int bus, int recv_timeout_ms = 10000);
  ~NetlinkSocket() override;
  NetlinkSocket(const NetlinkSocket&) = delete;
  NetlinkSocket& operator=(const NetlinkSocket&) = delete;

  // Sends the request and walks replies until done. EINTR on recv is retried;
  // datagrams not sent by the kernel (nl_pid != 0) are dropped unread.
  // ENOBUFS, a timeout or a kernel error fail the dump. After a failure
  // other than the kernel's refusal (NLMSG_ERROR, or an errno in NLMSG_DONE,
  // which end its reply) the socket is marked broken() and the owner should
  // open a new one (the rest of the failed dump may still be queued on it).
  Status Dump(std::span<uint8_t> request, MessageSink& sink, DumpStats* stats) override;

  bool broken() const override { return broken_; }
  // The port id the kernel gave this socket (its address).
  uint32_t portid() const { return portid_; }

  // When set, every received datagram is appended to this file as a 4-byte
  // native-endian length followed by the bytes (for recording fixtures).
  void set_record_path(std::string path) { record_path_ = std::move(path); }

 private:
  NetlinkSocket(struct mnl_socket* nl, uint32_t portid);

  struct mnl_socket* const nl_;
  const uint32_t portid_;
  uint32_t seq_;
  bool broken_ = false;
  std::vector<uint8_t> buffer_;
  std::string record_path_;
};

// Opens netlink sockets in the calling thread's network namespace.
class LocalNetlinkFactory final : public NetlinkFactory {
 public:
  explicit LocalNetlinkFactory(std::string record_dir = "") : record_dir_(std::move(record_dir)) {}
  sockdiag::Result<std::unique_ptr<NetlinkDumper>> Open(int bus) override;

 private:
  std::string record_dir_;
  int opened_ = 0;
};

}  // namespace sockdiag
