#!/usr/bin/env bash
# Checks the layering of src/ (README.md, "Architecture"):
#   check_layers.sh includes REPO   every quoted #include points to a layer
#                                   below the includer's (or to its own folder)
#   check_layers.sh pure LIB.a      the pure core calls nothing that does I/O:
#                                   its undefined symbols are the project's,
#                                   the C++ runtime's, libmnl's buffer helpers
#                                   and an allow-list of libc functions
# Exit 1 with one line per violation.
set -euo pipefail
mode=$1

# Layer of a path relative to the repository (or of an include path, which
# is relative to src/ or include/). Equal ranks are side by side and may not
# include each other.
rank() {
  case "$1" in
    include/sockdiag/*|sockdiag/*) echo "0 contracts" ;;
    src/netlink/*|netlink/*) echo "1 netlink" ;;
    src/proc/*|proc/*) echo "1 proc" ;;
    src/status.cc) echo "1 status" ;;
    src/model/*|model/*) echo "2 model" ;;
    src/source/*|source/*) echo "2 source" ;;
    src/log.cc) echo "2 log" ;;
    src/collectors/*|collectors/*) echo "3 collectors" ;;
    src/poll/*|poll/*) echo "4 poll" ;;
    src/flags.*|flags.h|src/caps.*|caps.h) echo "5 cli" ;;
    src/diagnose/*|diagnose/*) echo "6 diagnose" ;;
    src/web/*|web/*) echo "6 web" ;;
    src/main.cc) echo "7 main" ;;
    *) echo "? unknown" ;;
  esac
}

case "$mode" in
  includes)
    cd "$2"
    bad=0
    while IFS=: read -r file line text; do
      target=$(sed -E 's/^#include "([^"]+)".*/\1/' <<<"$text")
      read -r fr fl <<<"$(rank "$file")"
      read -r tr tl <<<"$(rank "$target")"
      if [ "$fr" = "?" ] || [ "$tr" = "?" ]; then
        echo "$file:$line: $target: file or include outside the known layers" >&2; bad=1
      elif [ "$fl" = "$tl" ]; then
        :  # Within a layer.
      elif [ "$tr" -ge "$fr" ]; then
        echo "$file:$line: $fl includes $tl ($target): not a lower layer" >&2; bad=1
      fi
    done < <(grep -rn '^#include "' src include --include='*.h' --include='*.cc' \
               | grep -v '"sockdiag/version.h"')
    exit $bad
    ;;
  pure)
    allowed='^(memcpy|memmove|memset|memcmp|memchr|strlen|strerror|inet_ntop|inet_pton|ntohs|ntohl|htons|htonl|isxdigit|isdigit|tolower|llround|log|exp|strtod|strtol|strtoul|strtoull|mmap|munmap|madvise|__popcountdi2|__errno_location|_GLOBAL_OFFSET_TABLE_|__dso_handle|__stack_chk_fail)$'
    bad=$(nm -u --demangle "$2" | sed -nE 's/^ +U (.*)$/\1/p' | sort -u |
          grep -vE '^(sockdiag::|std::|operator |__cxa_|__gxx_|_Unwind_|typeinfo |vtable |mnl_nlmsg_|mnl_attr_|__asan|__ubsan|__sanitizer)' |
          grep -vE "$allowed" || true)
    if [ -n "$bad" ]; then
      echo "$2 calls functions outside the pure allow-list (I/O belongs in src/source/):" >&2
      echo "$bad" >&2
      exit 1
    fi
    ;;
  *) echo "usage: $0 includes REPO | pure LIB.a" >&2; exit 2 ;;
esac
