#include "netlink/netlink.h"

#include <libmnl/libmnl.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>

#include "netlink/nlattr.h"

namespace sockdiag {

Result<DumpProgress> ProcessDatagram(std::span<const uint8_t> datagram, uint32_t seq,
                                     uint32_t portid, MessageSink& sink, DumpStats* stats) {
  // Bounds are checked here in size_t rather than with mnl_nlmsg_ok():
  // libmnl 1.0.4 compares (int)nlmsg_len, so a length >= 2^31 turns negative
  // and passes its check.
  stats->datagrams++;
  stats->bytes += datagram.size();
  bool multipart = true;
  size_t offset = 0;
  while (datagram.size() - offset >= sizeof(struct nlmsghdr)) {
    const auto* nlh = reinterpret_cast<const struct nlmsghdr*>(datagram.data() + offset);
    const size_t len = nlh->nlmsg_len;
    if (len < sizeof(struct nlmsghdr) || len > datagram.size() - offset) {
      return Status::Corruption("netlink message length outside its datagram");
    }
    if (seq != 0 && nlh->nlmsg_seq != 0 && nlh->nlmsg_seq != seq) {
      return Status::Corruption("netlink reply with a foreign sequence number");
    }
    if (portid != 0 && nlh->nlmsg_pid != 0 && nlh->nlmsg_pid != portid) {
      return Status::Corruption("netlink reply for another port id");
    }
    if (nlh->nlmsg_flags & NLM_F_DUMP_INTR) stats->interrupted = true;
    multipart = (nlh->nlmsg_flags & NLM_F_MULTI) != 0;
    const size_t payload_len = len - NlAlign(sizeof(struct nlmsghdr));  // len >= 16.
    const void* payload = mnl_nlmsg_get_payload(nlh);

    switch (nlh->nlmsg_type) {
      case NLMSG_NOOP:
        break;
      case NLMSG_DONE: {
        // Since 4.x a dump that failed mid-way reports -errno in the DONE
        // payload; libmnl's default callbacks ignore it.
        if (payload_len >= sizeof(int)) {
          int err = 0;
          std::memcpy(&err, payload, sizeof(err));
          if (err == INT32_MIN) return Status::Corruption("NLMSG_DONE with an impossible errno");
          if (err < 0) return Status::FromErrno(-err, "netlink dump failed in the kernel");
        }
        return DumpProgress::kDone;
      }
      case NLMSG_ERROR: {
        if (payload_len < sizeof(struct nlmsgerr)) {
          return Status::Corruption("truncated NLMSG_ERROR");
        }
        struct nlmsgerr err;
        std::memcpy(&err, payload, sizeof(err));
        if (err.error == 0) return DumpProgress::kDone;  // An ACK.
        if (err.error < 0 && err.error != INT32_MIN) {
          return Status::FromErrno(-err.error, "netlink request rejected by the kernel");
        }
        return Status::Corruption("NLMSG_ERROR with a positive error code");
      }
      case NLMSG_OVERRUN:
        return Status::IOError("netlink overrun", ENOBUFS);
      default: {
        stats->messages++;
        Status s = sink.OnMessage(nlh);
        if (!s.ok()) return s;
        break;
      }
    }
    const size_t step = NlAlign(len);
    if (step >= datagram.size() - offset) {
      offset = datagram.size();
      break;
    }
    offset += step;
  }
  if (offset != datagram.size()) {
    return Status::Corruption("truncated netlink message in datagram");
  }
  // A reply without NLM_F_MULTI is complete by itself.
  return multipart ? DumpProgress::kMore : DumpProgress::kDone;
}

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
    ssize_t n = recv(mnl_socket_get_fd(nl_), buffer_.data(), buffer_.size(), 0);
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
    const auto len = static_cast<size_t>(n);
    if (record.is_open()) {
      const auto len32 = static_cast<uint32_t>(len);
      record.write(reinterpret_cast<const char*>(&len32), sizeof(len32));
      record.write(reinterpret_cast<const char*>(buffer_.data()), static_cast<std::streamsize>(len));
    }
    auto progress = ProcessDatagram({buffer_.data(), len}, seq, portid_, sink, stats);
    if (!progress.ok()) {
      // The rest of the dump may still be queued; a fresh socket is simpler
      // and safer than draining a stream of unknown length.
      broken_ = true;
      return progress.status();
    }
    if (progress.value() == DumpProgress::kDone) return Status::Ok();
  }
}

Result<std::vector<std::vector<uint8_t>>> ReadRecording(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::FromErrno(errno, "open recording " + path);
  std::vector<std::vector<uint8_t>> out;
  for (;;) {
    uint32_t len = 0;
    if (!in.read(reinterpret_cast<char*>(&len), sizeof(len))) break;
    if (len > (16u << 20)) return Status::Corruption("recording " + path + ": datagram too large");
    std::vector<uint8_t> d(len);
    if (!in.read(reinterpret_cast<char*>(d.data()), len)) {
      return Status::Corruption("recording " + path + ": truncated datagram");
    }
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace sockdiag
