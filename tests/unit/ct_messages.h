// In-memory ctnetlink messages for unit tests, built with libmnl the way
// the kernel lays them out (seq/portid 0).
#pragma once

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace sockdiag::testing {

class CtMsg {
 public:
  CtMsg(uint8_t ct_type, uint16_t flags = NLM_F_MULTI, uint8_t family = AF_INET,
        uint16_t res_id = 0)
      : buf_(16384, 0) {
    nlh_ = mnl_nlmsg_put_header(buf_.data());
    nlh_->nlmsg_type = static_cast<uint16_t>((NFNL_SUBSYS_CTNETLINK << 8) | ct_type);
    nlh_->nlmsg_flags = flags;
    auto* g = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh_, sizeof(nfgenmsg)));
    g->nfgen_family = family;
    g->version = NFNETLINK_V0;
    g->res_id = htons(res_id);
  }
  CtMsg& Be32(uint16_t type, uint32_t v) {
    mnl_attr_put_u32(nlh_, type, htonl(v));
    return *this;
  }
  CtMsg& Be16(uint16_t type, uint16_t v) {
    mnl_attr_put_u16(nlh_, type, htons(v));
    return *this;
  }
  CtMsg& U8(uint16_t type, uint8_t v) {
    mnl_attr_put_u8(nlh_, type, v);
    return *this;
  }
  CtMsg& Raw(uint16_t type, const void* data, size_t len) {
    mnl_attr_put(nlh_, type, len, data);
    return *this;
  }
  CtMsg& Begin(uint16_t type) {
    nests_.push_back(mnl_attr_nest_start(nlh_, type));
    return *this;
  }
  CtMsg& End() {
    mnl_attr_nest_end(nlh_, nests_.back());
    nests_.pop_back();
    return *this;
  }
  // A tuple: addresses as text ("10.0.0.1" or "::1"), ports in host order.
  CtMsg& Tuple(uint16_t which, const std::string& src, const std::string& dst, uint8_t proto,
               uint16_t sport, uint16_t dport) {
    const bool v6 = src.find(':') != std::string::npos;
    uint8_t a[16], b[16];
    inet_pton(v6 ? AF_INET6 : AF_INET, src.c_str(), a);
    inet_pton(v6 ? AF_INET6 : AF_INET, dst.c_str(), b);
    Begin(which).Begin(CTA_TUPLE_IP);
    Raw(v6 ? CTA_IP_V6_SRC : CTA_IP_V4_SRC, a, v6 ? 16 : 4);
    Raw(v6 ? CTA_IP_V6_DST : CTA_IP_V4_DST, b, v6 ? 16 : 4);
    End().Begin(CTA_TUPLE_PROTO).U8(CTA_PROTO_NUM, proto);
    if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
      Be16(CTA_PROTO_SRC_PORT, sport).Be16(CTA_PROTO_DST_PORT, dport);
    }
    return End().End();
  }
  CtMsg& TcpState(uint8_t state) {
    return Begin(CTA_PROTOINFO)
        .Begin(CTA_PROTOINFO_TCP)
        .U8(CTA_PROTOINFO_TCP_STATE, state)
        .End()
        .End();
  }

  const nlmsghdr* nlh() const { return nlh_; }
  nlmsghdr* mutable_nlh() { return nlh_; }
  std::vector<uint8_t> bytes() const {
    return std::vector<uint8_t>(buf_.begin(), buf_.begin() + nlh_->nlmsg_len);
  }

 private:
  std::vector<uint8_t> buf_;
  nlmsghdr* nlh_;
  std::vector<nlattr*> nests_;
};

// NLMSG_DONE with a zero error.
inline std::vector<uint8_t> DoneMsg() {
  std::vector<uint8_t> buf(64, 0);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = NLMSG_DONE;
  nlh->nlmsg_flags = NLM_F_MULTI;
  int zero = 0;
  std::memcpy(mnl_nlmsg_put_extra_header(nlh, sizeof(int)), &zero, sizeof(int));
  buf.resize(nlh->nlmsg_len);
  return buf;
}

// NLMSG_ERROR carrying -err (0 = ACK).
inline std::vector<uint8_t> ErrorMsg(int err) {
  std::vector<uint8_t> buf(128, 0);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = NLMSG_ERROR;
  auto* e = static_cast<nlmsgerr*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nlmsgerr)));
  e->error = -err;
  buf.resize(nlh->nlmsg_len);
  return buf;
}

inline std::vector<uint8_t> Concat(const std::vector<std::vector<uint8_t>>& parts) {
  std::vector<uint8_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

}  // namespace sockdiag::testing
