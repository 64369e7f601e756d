// What the conntrack collectors share: the "is conntrack there at all"
// check and a ctnetlink session that keeps its NETLINK_NETFILTER socket
// across polls and turns kernel refusals into statuses the poller logs at
// the right level (Permission: one warning; NotFound: debug).
//
// Thread-safety: one session per collector instance, poller thread only.
#pragma once

#include <linux/netlink.h>

#include <cerrno>
#include <vector>

#include "netlink/ctnetlink.h"
#include "netlink/netlink.h"
#include "sockdiag/collector.h"
#include "source/dump_session.h"
#include "source/poll_context.h"

namespace sockdiag {

// NotFound when the nf_conntrack module is not loaded (its sysctls are
// absent). Checked before any ctnetlink request because such a request
// would make the kernel load the module (nfnetlink's request_module):
// the exporter must not switch connection tracking on for a host.
inline Status CheckConntrackLoaded(const PollContext& ctx) {
  auto max = ctx.procfs.ReadSysctlInts("net.netfilter.nf_conntrack_max");
  if (!max.ok() && max.status().IsNotFound()) {
    return Status::NotFound("conntrack is not loaded (no net.netfilter.nf_conntrack_max)");
  }
  return Status::Ok();
}

class CtnetlinkSession {
 public:
  // Sends one ctnetlink GET request of `kind` and streams the replies to
  // `sink`. Kernel refusals map to: EPERM -> Permission (CAP_NET_ADMIN is
  // missing), EINVAL/EOPNOTSUPP -> NotFound (no ctnetlink or no such
  // request on this kernel). A sink's own status is returned unchanged.
  // The socket is reopened at the next call after it broke.
  Status Run(const PollContext& ctx, CtRequest kind, MessageSink& sink, DumpStats* stats) {
    Status s = session_.Open(ctx.netlink);
    if (!s.ok()) return s;
    std::vector<uint8_t> request = BuildCtRequest(kind);
    s = session_.Dump(request, sink, stats);
    if (s.ok()) return s;
    switch (s.err()) {
      case EPERM:
      case EACCES:
        return Status::Permission("ctnetlink request refused: needs CAP_NET_ADMIN", s.err());
      case EINVAL:
      case EOPNOTSUPP:
        return Status::NotFound("ctnetlink request not supported by this kernel", s.err());
      default:
        return s;
    }
  }

 private:
  DumpSession session_{NETLINK_NETFILTER, "NETLINK_NETFILTER"};
};

}  // namespace sockdiag
