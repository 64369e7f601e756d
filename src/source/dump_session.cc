#include "source/dump_session.h"

namespace sockdiag {

Status DumpSession::Open(NetlinkFactory* factory) {
  if (factory != nullptr) factory_ = factory;
  if (dumper_) return Status::Ok();
  if (factory_ == nullptr) return Status::Unsupported("no netlink factory");
  auto opened = factory_->Open(bus_);
  if (!opened.ok()) return opened.status().WithPrefix("open " + name_ + " socket");
  dumper_ = std::move(opened).value();
  return Status::Ok();
}

Status DumpSession::Dump(std::span<uint8_t> request, MessageSink& sink, DumpStats* stats) {
  Status s = Open(nullptr);
  if (!s.ok()) return s;
  s = dumper_->Dump(request, sink, stats);
  if (dumper_->broken()) dumper_.reset();
  return s;
}

}  // namespace sockdiag
