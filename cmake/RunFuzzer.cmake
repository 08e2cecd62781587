# Run one libFuzzer target for a bounded time on a copy of its seed corpus.
#   cmake -DFUZZER=<exe> -DCORPUS=<seed dir> -DWORK_DIR=<scratch dir> -DSECONDS=<n>
#         -P RunFuzzer.cmake
# libFuzzer writes new inputs into its corpus directory, so it gets a fresh copy under
# WORK_DIR and the source tree is never written. Any crash, leak, timeout or sanitizer report
# makes libFuzzer exit non-zero, and this script then fails with the end of its log.
foreach(v FUZZER CORPUS WORK_DIR SECONDS)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "RunFuzzer.cmake: -D${v}=... is required")
  endif()
endforeach()

get_filename_component(_name "${FUZZER}" NAME)
set(_corpus "${WORK_DIR}/corpus")
set(_artifacts "${WORK_DIR}/artifacts")
set(_log "${WORK_DIR}/fuzz.log")

file(REMOVE_RECURSE "${_corpus}" "${_artifacts}")
file(MAKE_DIRECTORY "${_corpus}" "${_artifacts}")
if(IS_DIRECTORY "${CORPUS}")
  file(COPY "${CORPUS}/" DESTINATION "${_corpus}")
else()
  message(WARNING "${_name}: no seed corpus at ${CORPUS}; starting from an empty one")
endif()
file(GLOB _seeds "${_corpus}/*")
list(LENGTH _seeds _nseeds)
message(STATUS "${_name}: ${SECONDS}s on ${_nseeds} seed(s), log ${_log}")

execute_process(
  COMMAND "${FUZZER}"
          -max_total_time=${SECONDS}
          -timeout=25
          -rss_limit_mb=2048
          -print_final_stats=1
          "-artifact_prefix=${_artifacts}/"
          "${_corpus}"
  RESULT_VARIABLE _rc
  OUTPUT_FILE "${_log}"
  ERROR_FILE "${_log}")

if(_rc EQUAL 0)
  # Only the closing statistics: the full log is long.
  file(STRINGS "${_log}" _lines REGEX "^(stat::|Done )")
  foreach(_line IN LISTS _lines)
    message(STATUS "${_line}")
  endforeach()
  message(STATUS "${_name}: passed")
else()
  # The end of the log holds the sanitizer report and the reproducer's name.
  execute_process(COMMAND tail -n 80 "${_log}")
  file(GLOB _found "${_artifacts}/*")
  message(FATAL_ERROR "${_name}: libFuzzer exited with ${_rc}; reproducer(s): ${_found}")
endif()
