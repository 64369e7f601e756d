// The Linux capabilities the process holds, as the kernel reports them.
//
// Thread-safety: free functions, no shared state.
#pragma once

#include <cstdint>

#include "sockdiag/status.h"

namespace sockdiag {

// The calling thread's effective set (capget(2)).
Result<uint64_t> EffectiveCapabilities();
// /proc/sys/kernel/cap_last_cap, or 40 (Linux 5.9+) when unreadable.
int LastCapability();

}  // namespace sockdiag
