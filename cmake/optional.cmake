# wsfwd_optional_package(): an optional library of the wsfwd command (never of libwsfwd), found
# through pkg-config and chosen by a cache switch AUTO|ON|OFF: AUTO uses it when found, ON
# fails the configuration without it, OFF never uses it.
#
#   wsfwd_optional_package(SWITCH WSFWD_REDIS MODULE hiredis PREFIX HIREDIS
#                          DEBIAN libhiredis-dev FEATURE "--redis" RESULT WSFWD_HAVE_HIREDIS)
#
# Sets RESULT (ON or OFF) in the caller's scope; when ON, the imported target
# PkgConfig::<PREFIX> exists (GLOBAL, so tests/ can link it too).
function(wsfwd_optional_package)
  cmake_parse_arguments(O "" "SWITCH;MODULE;PREFIX;DEBIAN;FEATURE;RESULT" "" ${ARGN})
  set(_switch ${${O_SWITCH}})
  if(NOT _switch MATCHES "^(AUTO|ON|OFF)$")
    message(FATAL_ERROR "${O_SWITCH} must be AUTO, ON or OFF, not '${_switch}'")
  endif()
  set(_have OFF)
  if(NOT _switch STREQUAL "OFF")
    find_package(PkgConfig QUIET)
    if(PKG_CONFIG_FOUND)
      pkg_check_modules(${O_PREFIX} QUIET IMPORTED_TARGET GLOBAL ${O_MODULE})
    endif()
    if(${O_PREFIX}_FOUND)
      set(_have ON)
    elseif(_switch STREQUAL "ON")
      message(FATAL_ERROR "${O_SWITCH}=ON but ${O_MODULE} was not found through pkg-config "
                          "(Debian: apt-get install ${O_DEBIAN})")
    endif()
  endif()
  message(STATUS "wsfwd: ${O_FEATURE} ${_have} (${O_SWITCH}=${_switch})")
  set(${O_RESULT} ${_have} PARENT_SCOPE)
endfunction()
