// Builds netlink messages in memory with libmnl for parser tests
// (seq/portid 0, so the walker does not check them).
#pragma once

#include <libmnl/libmnl.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace sockdiag::testing {

// A datagram being assembled from several messages.
class DatagramBuilder {
 public:
  DatagramBuilder() : buf_(1 << 16, 0) {}

  // Appends a message of `type` with `flags` and a payload of `payload_len`
  // bytes copied from `payload`; returns the header for adding attributes.
  struct nlmsghdr* Add(uint16_t type, uint16_t flags, const void* payload, size_t payload_len) {
    auto* nlh = mnl_nlmsg_put_header(buf_.data() + used_);
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = flags;
    void* p = mnl_nlmsg_put_extra_header(nlh, payload_len);
    if (payload_len) std::memcpy(p, payload, payload_len);
    last_ = nlh;
    return nlh;
  }
  // Call after adding attributes to the last message.
  void Commit() { used_ += NLMSG_ALIGN(last_->nlmsg_len); }

  struct nlmsghdr* AddSocket(uint8_t family, uint8_t state, uint16_t sport, uint16_t dport,
                             const uint8_t* src, const uint8_t* dst, uint32_t expires = 0,
                             uint32_t rq = 0, uint32_t wq = 0) {
    struct inet_diag_msg m {};
    m.idiag_family = family;
    m.idiag_state = state;
    m.id.idiag_sport = htons(sport);
    m.id.idiag_dport = htons(dport);
    std::memcpy(m.id.idiag_src, src, family == AF_INET ? 4 : 16);
    std::memcpy(m.id.idiag_dst, dst, family == AF_INET ? 4 : 16);
    m.idiag_expires = expires;
    m.idiag_rqueue = rq;
    m.idiag_wqueue = wq;
    auto* nlh = Add(SOCK_DIAG_BY_FAMILY, NLM_F_MULTI, &m, sizeof(m));
    uint8_t shutdown = 0;
    mnl_attr_put(nlh, INET_DIAG_SHUTDOWN, 1, &shutdown);
    Commit();
    return nlh;
  }

  void AddDone(int error = 0) {
    Add(NLMSG_DONE, NLM_F_MULTI, &error, sizeof(error));
    Commit();
  }

  void AddError(int error) {
    struct nlmsgerr e {};
    e.error = error;
    Add(NLMSG_ERROR, 0, &e, sizeof(e));
    Commit();
  }

  std::vector<uint8_t> Bytes() const { return {buf_.begin(), buf_.begin() + static_cast<long>(used_)}; }

 private:
  std::vector<uint8_t> buf_;
  size_t used_ = 0;
  struct nlmsghdr* last_ = nullptr;
};

}  // namespace sockdiag::testing
