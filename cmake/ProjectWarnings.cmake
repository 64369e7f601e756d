# sockdiag_project_warnings(<target>): the project's warning set, PRIVATE to the
# target. -Werror only when SOCKDIAG_WERROR is on (presets and CI), never forced
# on packagers.
function(sockdiag_project_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion -Wshadow
    -Wnon-virtual-dtor -Wold-style-cast -Woverloaded-virtual -Wnull-dereference)
  if(SOCKDIAG_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
