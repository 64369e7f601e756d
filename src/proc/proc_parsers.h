// Pure parsers for procfs text formats, unit-tested on fixture strings.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "sockdiag/status.h"

namespace sockdiag {

// /proc/net/netstat and /proc/net/snmp: pairs of lines
//   "TcpExt: SyncookiesSent SyncookiesRecv ..."
//   "TcpExt: 0 0 ..."
// Returns {"TcpExt.SyncookiesSent": 0, ...}. A header without its value line,
// or with a different field count, is Corruption. Values may be negative
// (Tcp MaxConn is -1).
Result<std::map<std::string, int64_t, std::less<>>> ParseNetstat(std::string_view text);

}  // namespace sockdiag
