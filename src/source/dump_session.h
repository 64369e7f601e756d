// NetlinkFactory: how collectors and the poller get netlink sockets for the
// namespace being polled, so tests (and the golden test) can hand them
// replays instead (source/replay.h).
//
// Thread-safety: a factory is used by the polling thread only.
#pragma once

#include <memory>

#include "netlink/netlink.h"
#include "sockdiag/status.h"

namespace sockdiag {

// Opens netlink sockets for the namespace being polled; pods mode opens
// them from a thread that has entered the namespace.
class NetlinkFactory {
 public:
  virtual ~NetlinkFactory() = default;
  virtual Result<std::unique_ptr<NetlinkDumper>> Open(int bus) = 0;
};

}  // namespace sockdiag
