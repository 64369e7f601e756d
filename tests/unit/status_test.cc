#include "sockdiag/status.h"

#include <catch2/catch.hpp>
#include <cerrno>

using sockdiag::Result;
using sockdiag::Status;

TEST_CASE("Status maps errno to codes and keeps context", "[status]") {
  CHECK(Status::Ok().ok());
  CHECK(Status::FromErrno(ENOENT, "open x").IsNotFound());
  CHECK(Status::FromErrno(EPERM, "open x").IsPermission());
  CHECK(Status::FromErrno(EACCES, "open x").IsPermission());
  CHECK(Status::FromErrno(EOPNOTSUPP, "dump").IsUnsupported());
  CHECK(Status::FromErrno(EPROTONOSUPPORT, "dump").IsUnsupported());
  Status io = Status::FromErrno(EIO, "read /proc/x");
  CHECK(io.code() == Status::Code::kIOError);
  CHECK(io.err() == EIO);
  CHECK(io.ToString() == "read /proc/x: Input/output error");
  CHECK(io.WithPrefix("sysctl").ToString() == "sysctl: read /proc/x: Input/output error");
  CHECK(Status::Corruption("bad bytes").ToString() == "bad bytes");
  CHECK(Status::Ok().ToString() == "OK");
}

TEST_CASE("Result holds a value or a status", "[status]") {
  Result<int> good(42);
  REQUIRE(good.ok());
  CHECK(good.value() == 42);
  CHECK(good.status().ok());
  Result<int> bad(Status::NotFound("nothing"));
  CHECK_FALSE(bad.ok());
  CHECK(bad.status().IsNotFound());
}
