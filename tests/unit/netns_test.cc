#include "proc/proc_parsers.h"

#include <catch2/catch.hpp>

using sockdiag::ParsePodUid;

TEST_CASE("pod UID from cgroup v1 cgroupfs paths (containerd and docker)", "[netns]") {
  const char* text =
      "12:memory:/kubepods/burstable/pod0f6a3c1e-2b7d-4e8f-9a10-b2c3d4e5f607/"
      "8d4c1f0e9b2a\n"
      "11:cpu,cpuacct:/kubepods/burstable/pod0f6a3c1e-2b7d-4e8f-9a10-b2c3d4e5f607/8d4c1f0e9b2a\n";
  CHECK(ParsePodUid(text).value() == "0f6a3c1e-2b7d-4e8f-9a10-b2c3d4e5f607");
  CHECK(ParsePodUid("4:pids:/kubepods/pod11111111-2222-3333-4444-555555555555/docker-abc\n")
            .value() == "11111111-2222-3333-4444-555555555555");
}

TEST_CASE("pod UID from systemd-driver slices (underscores) on cgroup v2", "[netns]") {
  const char* containerd =
      "0::/kubepods.slice/kubepods-besteffort.slice/"
      "kubepods-besteffort-pod7c9e2d4a_1b3f_4c5d_8e6f_a0b1c2d3e4f5.slice/"
      "cri-containerd-3f2e1d.scope\n";
  CHECK(ParsePodUid(containerd).value() == "7c9e2d4a-1b3f-4c5d-8e6f-a0b1c2d3e4f5");
  const char* crio =
      "0::/kubepods.slice/kubepods-pod7C9E2D4A_1B3F_4C5D_8E6F_A0B1C2D3E4F5.slice/"
      "crio-3f2e1d.scope\n";
  CHECK(ParsePodUid(crio).value() == "7c9e2d4a-1b3f-4c5d-8e6f-a0b1c2d3e4f5");
  const char* guaranteed =
      "0::/kubepods.slice/kubepods-pod01234567_89ab_cdef_0123_456789abcdef.slice/"
      "docker-3f2e1d.scope\n";
  CHECK(ParsePodUid(guaranteed).value() == "01234567-89ab-cdef-0123-456789abcdef");
}

TEST_CASE("no pod UID outside kubepods or in malformed paths", "[netns]") {
  CHECK_FALSE(ParsePodUid("0::/system.slice/sshd.service\n").has_value());
  CHECK_FALSE(ParsePodUid("0::/user.slice/pod0f6a3c1e-2b7d-4e8f-9a10-b2c3d4e5f607\n").has_value());
  CHECK_FALSE(ParsePodUid("0::/kubepods/burstable/pod0f6a3c1e-2b7d-4e8f-9a10\n").has_value());
  CHECK_FALSE(ParsePodUid("0::/kubepods/pod0f6a3c1e-2b7d-4e8f-9a10-b2c3d4e5f607x/c\n").has_value());
  CHECK_FALSE(ParsePodUid("").has_value());
}

TEST_CASE("pod UID from a path relative to a private cgroup namespace", "[netns]") {
  // Inside a container with its own cgroup namespace, paths outside it show
  // as "/../..".
  const char* text =
      "0::/../../kubepods-besteffort-pod7c9e2d4a_1b3f_4c5d_8e6f_a0b1c2d3e4f5.slice/"
      "cri-containerd-3f2e1d.scope\n";
  CHECK(ParsePodUid(text).value() == "7c9e2d4a-1b3f-4c5d-8e6f-a0b1c2d3e4f5");
}
