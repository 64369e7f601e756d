// Validated netlink attribute access (the libmnl discipline, typed).
//
// ParseAttrs() checks the framing of every attribute in a region and files
// each by type into a table (unknown types above `max_type` are skipped, not
// errors: newer kernels add attributes). The typed getters check the payload
// length before reading, so a short attribute is an error, never an
// out-of-bounds read.
#pragma once

#include <linux/netlink.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include "sockdiag/status.h"

namespace sockdiag {

// Netlink's 4-byte alignment, without libmnl's int-typed macro.
constexpr size_t NlAlign(size_t len) { return (len + 3u) & ~size_t{3}; }

// Files the attributes in [data, data+len) into table[type] for
// type <= max_type; `table` must have max_type+1 entries and is cleared
// first. Corruption on broken framing.
Status ParseAttrs(const void* data, size_t len, uint16_t max_type,
                  std::span<const struct nlattr*> table);

// Attributes following a fixed-size header inside a message's payload.
Status ParseMessageAttrs(const struct nlmsghdr* nlh, size_t header_len, uint16_t max_type,
                         std::span<const struct nlattr*> table);

// Attributes nested inside `nest`.
Status ParseNestedAttrs(const struct nlattr* nest, uint16_t max_type,
                        std::span<const struct nlattr*> table);

// Payload view of an attribute.
std::span<const uint8_t> AttrPayload(const struct nlattr* attr);

// Typed getters: Corruption when the payload is shorter than the type.
// The Be variants convert from network byte order.
Result<uint8_t> AttrU8(const struct nlattr* attr);
Result<uint32_t> AttrU32(const struct nlattr* attr);
Result<uint16_t> AttrBe16(const struct nlattr* attr);
Result<uint32_t> AttrBe32(const struct nlattr* attr);

}  // namespace sockdiag
