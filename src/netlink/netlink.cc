#include "netlink/netlink.h"

#include <libmnl/libmnl.h>

#include <cerrno>
#include <cstring>

#include "netlink/nlattr.h"

namespace sockdiag {

Result<DumpProgress> ProcessDatagram(std::span<const uint8_t> datagram, uint32_t seq,
                                     uint32_t portid, MessageSink& sink, DumpStats* stats,
                                     bool* reply_ended) {
  bool ignored = false;
  bool& ended = reply_ended != nullptr ? *reply_ended : ignored;
  ended = false;
  // Bounds are checked here in size_t rather than with mnl_nlmsg_ok():
  // libmnl 1.0.4 compares (int)nlmsg_len, so a length >= 2^31 turns negative
  // and passes its check.
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
          ended = true;
          if (err < 0) return Status::FromErrno(-err, "netlink dump failed in the kernel");
        }
        ended = true;
        return DumpProgress::kDone;
      }
      case NLMSG_ERROR: {
        if (payload_len < sizeof(struct nlmsgerr)) {
          return Status::Corruption("truncated NLMSG_ERROR");
        }
        struct nlmsgerr err;
        std::memcpy(&err, payload, sizeof(err));
        if (err.error == 0) {  // An ACK.
          ended = true;
          return DumpProgress::kDone;
        }
        if (err.error < 0 && err.error != INT32_MIN) {
          ended = true;
          return Status::FromErrno(-err.error, "netlink request rejected by the kernel");
        }
        return Status::Corruption("NLMSG_ERROR with a positive error code");
      }
      case NLMSG_OVERRUN:
        return Status::IOError("netlink overrun", ENOBUFS);
      default: {
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
  ended = !multipart;
  return multipart ? DumpProgress::kMore : DumpProgress::kDone;
}

}  // namespace sockdiag
