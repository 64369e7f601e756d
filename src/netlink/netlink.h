// Netlink dump plumbing: a pure walker over received datagrams and the
// seam a dump goes through (NetlinkDumper).
//
// The walker (ProcessDatagram) is the whole protocol: it checks framing,
// sequence and port id, stops at NLMSG_DONE (reporting an errno the kernel
// carried in it), turns NLMSG_ERROR into a Status, notes NLM_F_DUMP_INTR and
// hands each data message to a MessageSink. It does no I/O, so tests feed it
// bytes built in memory. NetlinkSocket (source/netlink_socket.h) adds only
// send/recv around it.
//
// Thread-safety: the walker is reentrant; a NetlinkDumper is used by one
// thread at a time.
#pragma once

#include <linux/netlink.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "sockdiag/status.h"

namespace sockdiag {

// Receives each data message of a dump, in kernel order. A non-OK return
// aborts the dump: the walker stops delivering and returns that Status.
class MessageSink {
 public:
  virtual ~MessageSink() = default;
  // REQUIRES: nlh->nlmsg_len is within the datagram (checked by the walker).
  virtual Status OnMessage(const struct nlmsghdr* nlh) = 0;
};

// What the walker noticed about a dump; accumulates across calls.
struct DumpStats {
  bool interrupted = false;  // Some message carried NLM_F_DUMP_INTR.
};

enum class DumpProgress { kMore, kDone };

// Walks one datagram of a dump reply. seq/portid are checked only when
// non-zero (as libmnl does), so in-memory test messages may use 0.
// Returns kDone after NLMSG_DONE, an ACK, or a reply without NLM_F_MULTI;
// kMore when the reply continues in a later datagram (note: ctnetlink marks
// even its single GET_STATS answer NLM_F_MULTI and sends no DONE, so such
// requests set NLM_F_ACK and the ACK ends them); or the error: an NLMSG_ERROR or an
// errno inside NLMSG_DONE (Status::FromErrno), a sink error, or Corruption
// for bad framing or a foreign sequence number.
// *reply_ended (when given) tells whether this datagram ended the kernel's
// reply: true for kDone and for the kernel's own refusal (NLMSG_ERROR, an
// errno in NLMSG_DONE), after which nothing more of it is queued; false for
// kMore and every other error, which leave the rest of the reply unread.
Result<DumpProgress> ProcessDatagram(std::span<const uint8_t> datagram, uint32_t seq,
                                     uint32_t portid, MessageSink& sink, DumpStats* stats,
                                     bool* reply_ended = nullptr);

// Receive buffer size. The kernel sizes dump skbs from the reader's buffer
// (up to 32 KiB and beyond); a smaller buffer truncates (MSG_TRUNC).
inline constexpr size_t kNetlinkBufferSize = 64 * 1024;

// The seam between collectors and the kernel: "send this dump request,
// stream me the replies". Tests substitute canned byte streams.
class NetlinkDumper {
 public:
  virtual ~NetlinkDumper() = default;
  // `request` is one complete netlink message; its nlmsg_seq and nlmsg_pid
  // are overwritten. On return the dump is finished (or failed).
  virtual Status Dump(std::span<uint8_t> request, MessageSink& sink, DumpStats* stats) = 0;
  // True once a failed dump has left this dumper unusable (part of the reply
  // may still be queued): its owner opens a new one. A request the kernel
  // refused outright leaves it usable.
  virtual bool broken() const { return false; }
};

}  // namespace sockdiag
