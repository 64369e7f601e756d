#include "source/netlink_socket.h"

#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <ctime>
#include <fstream>

namespace sockdiag {

NetlinkSocket::NetlinkSocket(struct mnl_socket* nl, uint32_t portid)
    : nl_(nl), portid_(portid), seq_(static_cast<uint32_t>(time(nullptr))),
      buffer_(kNetlinkBufferSize) {}

NetlinkSocket::~NetlinkSocket() { mnl_socket_close(nl_); }

Result<std::unique_ptr<NetlinkSocket>> NetlinkSocket::Open(int bus, int recv_timeout_ms) {
  struct mnl_socket* nl = mnl_socket_open2(bus, SOCK_CLOEXEC);
  if (nl == nullptr) return Status::FromErrno(errno, "open netlink socket");
  if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
    int err = errno;
    mnl_socket_close(nl);
    return Status::FromErrno(err, "bind netlink socket");
  }
  const int fd = mnl_socket_get_fd(nl);
  int rcvbuf = 1 << 20;
  // Best effort: SO_RCVBUF is capped by net.core.rmem_max, which is fine.
  (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  int one = 1;
  (void)setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
  struct timeval tv;
  tv.tv_sec = recv_timeout_ms / 1000;
  tv.tv_usec = static_cast<suseconds_t>((recv_timeout_ms % 1000) * 1000);
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
    int err = errno;
    mnl_socket_close(nl);
    return Status::FromErrno(err, "set netlink receive timeout");
  }
  return std::unique_ptr<NetlinkSocket>(new NetlinkSocket(nl, mnl_socket_get_portid(nl)));
}

Status NetlinkSocket::Dump(std::span<uint8_t> request, MessageSink& sink, DumpStats* stats) {
  if (broken_) return Status::IOError("netlink socket unusable after an earlier failure");
  if (request.size() < sizeof(struct nlmsghdr)) {
    return Status::InvalidArgument("netlink request shorter than a header");
  }
  auto* req = reinterpret_cast<struct nlmsghdr*>(request.data());
  const uint32_t seq = ++seq_;
  req->nlmsg_seq = seq;
  req->nlmsg_pid = 0;
  if (mnl_socket_sendto(nl_, request.data(), req->nlmsg_len) < 0) {
    broken_ = true;
    return Status::FromErrno(errno, "send netlink request");
  }
  std::ofstream record;
  if (!record_path_.empty()) record.open(record_path_, std::ios::binary | std::ios::app);
  for (;;) {
    struct sockaddr_nl from {};
    socklen_t from_len = sizeof(from);
    ssize_t n = recvfrom(mnl_socket_get_fd(nl_), buffer_.data(), buffer_.size(), 0,
                         reinterpret_cast<struct sockaddr*>(&from), &from_len);
    if (n < 0) {
      if (errno == EINTR) continue;
      broken_ = true;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return Status::IOError("netlink dump timed out", ETIMEDOUT);
      }
      return Status::FromErrno(errno, "receive netlink reply");
    }
    if (n == 0) {
      broken_ = true;
      return Status::IOError("netlink socket closed mid-dump");
    }
    // Only the kernel (port id 0) answers requests. A process allowed to
    // send to this socket (CAP_NET_ADMIN in its namespace: in pods mode, a
    // pod's) could otherwise forge replies, which would pass the walker's
    // checks with sequence number and port id 0. Drop them and wait on.
    if (from_len != sizeof(from) || from.nl_family != AF_NETLINK || from.nl_pid != 0) continue;
    const auto len = static_cast<size_t>(n);
    if (record.is_open()) {
      const auto len32 = static_cast<uint32_t>(len);
      record.write(reinterpret_cast<const char*>(&len32), sizeof(len32));
      record.write(reinterpret_cast<const char*>(buffer_.data()), static_cast<std::streamsize>(len));
    }
    bool reply_ended = false;
    auto progress =
        ProcessDatagram({buffer_.data(), len}, seq, portid_, sink, stats, &reply_ended);
    if (!progress.ok()) {
      // Unless the kernel ended its reply (a refusal), the rest of the dump
      // may still be queued; a fresh socket is simpler and safer than
      // draining a stream of unknown length.
      broken_ = !reply_ended;
      return progress.status();
    }
    if (progress.value() == DumpProgress::kDone) return Status::Ok();
  }
}

Result<std::unique_ptr<NetlinkDumper>> LocalNetlinkFactory::Open(int bus) {
  auto sock = NetlinkSocket::Open(bus);
  if (!sock.ok()) return sock.status();
  if (!record_dir_.empty()) {
    sock.value()->set_record_path(record_dir_ + "/netlink-" + std::to_string(bus) + "-" +
                                  std::to_string(opened_++) + ".bin");
  }
  return std::unique_ptr<NetlinkDumper>(std::move(sock).value());
}

}  // namespace sockdiag
