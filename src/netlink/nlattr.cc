#include "netlink/nlattr.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace sockdiag {
namespace {

template <typename T>
Result<T> ReadAttr(const struct nlattr* attr) {
  auto p = AttrPayload(attr);
  if (p.size() < sizeof(T)) return Status::Corruption("netlink attribute payload too short");
  T v;
  std::memcpy(&v, p.data(), sizeof(T));
  return v;
}

}  // namespace

Status ParseAttrs(const void* data, size_t len, uint16_t max_type,
                  std::span<const struct nlattr*> table) {
  std::fill(table.begin(), table.end(), nullptr);
  if (table.size() < static_cast<size_t>(max_type) + 1) {
    return Status::InvalidArgument("attribute table smaller than max_type+1");
  }
  const auto* p = static_cast<const uint8_t*>(data);
  size_t left = len;
  while (left >= sizeof(struct nlattr)) {
    struct nlattr a;
    std::memcpy(&a, p, sizeof(a));
    if (a.nla_len < sizeof(struct nlattr) || a.nla_len > left) {
      return Status::Corruption("netlink attribute with a bad length");
    }
    const auto type = static_cast<uint16_t>(a.nla_type & 0x3fff);  // NLA_TYPE_MASK
    if (type <= max_type) table[type] = reinterpret_cast<const struct nlattr*>(p);
    const size_t step = std::min(NlAlign(a.nla_len), left);
    p += step;
    left -= step;
  }
  if (left != 0) return Status::Corruption("trailing bytes after netlink attributes");
  return Status::Ok();
}

Status ParseMessageAttrs(const struct nlmsghdr* nlh, size_t header_len, uint16_t max_type,
                         std::span<const struct nlattr*> table) {
  const size_t hdr = NlAlign(sizeof(struct nlmsghdr));
  if (nlh->nlmsg_len < hdr + header_len) {
    return Status::Corruption("netlink message shorter than its fixed header");
  }
  const size_t offset = std::min<size_t>(hdr + NlAlign(header_len), nlh->nlmsg_len);
  return ParseAttrs(reinterpret_cast<const uint8_t*>(nlh) + offset, nlh->nlmsg_len - offset,
                    max_type, table);
}

Status ParseNestedAttrs(const struct nlattr* nest, uint16_t max_type,
                        std::span<const struct nlattr*> table) {
  auto p = AttrPayload(nest);
  return ParseAttrs(p.data(), p.size(), max_type, table);
}

std::span<const uint8_t> AttrPayload(const struct nlattr* attr) {
  struct nlattr a;
  std::memcpy(&a, attr, sizeof(a));
  const auto* base = reinterpret_cast<const uint8_t*>(attr);
  const size_t hdr = NlAlign(sizeof(struct nlattr));
  if (a.nla_len < hdr) return {};
  return {base + hdr, a.nla_len - hdr};
}

Result<uint8_t> AttrU8(const struct nlattr* attr) { return ReadAttr<uint8_t>(attr); }
Result<uint32_t> AttrU32(const struct nlattr* attr) { return ReadAttr<uint32_t>(attr); }

Result<uint16_t> AttrBe16(const struct nlattr* attr) {
  auto v = ReadAttr<uint16_t>(attr);
  if (!v.ok()) return v;
  return ntohs(v.value());
}
Result<uint32_t> AttrBe32(const struct nlattr* attr) {
  auto v = ReadAttr<uint32_t>(attr);
  if (!v.ok()) return v;
  return ntohl(v.value());
}

}  // namespace sockdiag
