# What `cmake --install` puts where (GNUInstallDirs). The install prefix is
# chosen when configuring, because the binaries carry the config path
# (NA_CONFDIR) compiled in; stage with DESTDIR rather than --prefix.
#
#   bin/newsalertd, bin/newsalert
#   NA_CONFDIR: newsalertd.yaml, actors.yaml, rules/   (/etc/newsalertd for /usr)
#   NA_SYSTEMD_UNITDIR/newsalertd.service
#   include/newsalert/*.h (+ v1/*.pb-c.h), lib/libnewsalert.a, lib/pkgconfig/newsalert.pc
#   share/man/man{1,5,8}/
#   share/newsalertd/proto/newsalert/v1/*.proto
#   share/doc/{newsalertd,libnewsalert-dev}/copyright, changelog.gz
#   share/lintian/overrides/{newsalertd,libnewsalert-dev}
#
# Each file belongs to one of two components, which the Debian package
# makes into two packages (cmake/package.cmake): "daemon" (newsalertd: the
# daemon, the tool, the config, the unit, the man pages, the .proto files)
# and "dev" (libnewsalert-dev: the headers, the static library, the
# pkg-config file). `cmake --install` installs both.

# systemd's unit directory for this prefix: its pkg-config file, with the
# prefix moved to ours unless we are installing into /usr (so /usr/local
# gets /usr/local/lib/systemd/system, which systemd also searches).
set(NA_SYSTEMD_UNITDIR "" CACHE PATH
    "Directory for newsalertd.service (default: from pkg-config systemd)")
if(NOT NA_SYSTEMD_UNITDIR)
  set(_na_unitdir "")
  set(_na_defs "")
  if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
    foreach(v prefix root_prefix rootprefix)
      list(APPEND _na_defs "--define-variable=${v}=${CMAKE_INSTALL_PREFIX}")
    endforeach()
  endif()
  execute_process(
    COMMAND ${PKG_CONFIG_EXECUTABLE} ${_na_defs} --variable=systemdsystemunitdir systemd
    OUTPUT_VARIABLE _na_unitdir OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE _na_rc ERROR_QUIET)
  if(NOT _na_rc EQUAL 0 OR _na_unitdir STREQUAL "")
    set(_na_unitdir "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
  endif()
  set(NA_SYSTEMD_UNITDIR "${_na_unitdir}")
endif()
message(STATUS "newsalertd: config in ${NA_CONFDIR}, unit in ${NA_SYSTEMD_UNITDIR}")

# The committed unit and man pages name the Debian paths (/usr/bin and
# /etc/newsalertd) so that they can be read, linted and analysed as they
# are; the installed copies name this build's paths.
function(na_localize src dst)
  file(READ "${src}" text)
  string(REPLACE "/usr/bin/newsalert" "${CMAKE_INSTALL_FULL_BINDIR}/newsalert" text "${text}")
  string(REPLACE "/etc/newsalertd" "${NA_CONFDIR}" text "${text}")
  # file(CONFIGURE) writes only when the text changed; @ONLY and no
  # variables in these files leave the text itself alone.
  file(CONFIGURE OUTPUT "${dst}" CONTENT "${text}" @ONLY)
  set_property(DIRECTORY "${CMAKE_SOURCE_DIR}" APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${src}")
endfunction()

install(TARGETS newsalertd newsalert-cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        COMPONENT daemon)

# The shipped defaults. A Debian package marks them as conffiles
# (cmake/package.cmake), so an operator's edits survive upgrades.
install(FILES config/newsalertd.yaml config/actors.yaml config/tagger.model
        DESTINATION ${NA_CONFDIR} COMPONENT daemon)
install(DIRECTORY config/rules DESTINATION ${NA_CONFDIR} COMPONENT daemon
        FILES_MATCHING PATTERN "*.yaml")

na_localize(${CMAKE_SOURCE_DIR}/systemd/newsalertd.service
            ${CMAKE_BINARY_DIR}/install/newsalertd.service)
install(FILES ${CMAKE_BINARY_DIR}/install/newsalertd.service DESTINATION ${NA_SYSTEMD_UNITDIR}
        COMPONENT daemon)

# Installed compressed, as Debian policy (12.1) wants them and man(1)
# reads them anywhere; -n keeps the output the same from build to build.
find_program(NA_GZIP gzip REQUIRED)
set(_na_gz_outputs)
foreach(page newsalertd.8 newsalertd.yaml.5 newsalert.1)
  string(REGEX MATCH "[0-9]$" section ${page})
  set(_page ${CMAKE_BINARY_DIR}/install/man/${page})
  na_localize(${CMAKE_SOURCE_DIR}/docs/man/${page} ${_page})
  add_custom_command(OUTPUT ${_page}.gz
    COMMAND ${NA_GZIP} -9n -c ${_page} > ${_page}.gz
    DEPENDS ${_page} COMMENT "gzip -9n ${page}")
  list(APPEND _na_gz_outputs ${_page}.gz)
  install(FILES ${_page}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section}
          COMPONENT daemon)
endforeach()

# The wire contract, for consumers in any language (protoc --proto_path).
install(DIRECTORY proto/newsalert DESTINATION ${CMAKE_INSTALL_DATADIR}/newsalertd/proto
        COMPONENT daemon FILES_MATCHING PATTERN "*.proto")

# Each package's copyright (DEP-5) and changelog, as Debian policy puts
# them (12.5, 12.7), and the lintian overrides, each with why it stays.
# The changelog is compressed like the man pages.
add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/install/changelog.gz
  COMMAND ${NA_GZIP} -9n -c ${CMAKE_SOURCE_DIR}/packaging/debian/changelog
          > ${CMAKE_BINARY_DIR}/install/changelog.gz
  DEPENDS ${CMAKE_SOURCE_DIR}/packaging/debian/changelog
  COMMENT "gzip -9n changelog")
add_custom_target(na-install-gz ALL
  DEPENDS ${_na_gz_outputs} ${CMAKE_BINARY_DIR}/install/changelog.gz)
foreach(c daemon dev)
  set(pkg newsalertd)
  if(c STREQUAL "dev")
    set(pkg libnewsalert-dev)
  endif()
  install(FILES packaging/debian/copyright ${CMAKE_BINARY_DIR}/install/changelog.gz
          DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/${pkg} COMPONENT ${c})
  if(EXISTS ${CMAKE_SOURCE_DIR}/packaging/debian/${pkg}.lintian-overrides)
    install(FILES packaging/debian/${pkg}.lintian-overrides
            DESTINATION ${CMAKE_INSTALL_DATADIR}/lintian/overrides
            RENAME ${pkg} COMPONENT ${c})
  endif()
endforeach()

# The C library for consumers: the headers, the protobuf-c headers they
# include (generated into the build tree), the static library and its
# pkg-config file.
install(DIRECTORY include/newsalert DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev
        FILES_MATCHING PATTERN "*.h")
foreach(p ${NA_PROTOS})
  install(FILES ${NA_PROTO_GEN}/newsalert/v1/${p}.pb-c.h
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/newsalert/v1 COMPONENT dev)
endforeach()
install(TARGETS newsalert ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
foreach(d LIBDIR INCLUDEDIR)
  # Relative to ${prefix} in the .pc, so that pkg-config's
  # --define-variable=prefix=... can point a consumer at a staged copy.
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${d}}")
    set(NA_PC_${d} "${CMAKE_INSTALL_${d}}")
  else()
    set(NA_PC_${d} "\${prefix}/${CMAKE_INSTALL_${d}}")
  endif()
endforeach()
configure_file(lib/newsalert.pc.in ${CMAKE_BINARY_DIR}/install/newsalert.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/install/newsalert.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

# The layout above, for the install and package tests.
file(CONFIGURE OUTPUT ${CMAKE_BINARY_DIR}/install/layout.txt CONTENT
"prefix=${CMAKE_INSTALL_PREFIX}
bindir=${CMAKE_INSTALL_FULL_BINDIR}
confdir=${NA_CONFDIR}
unitdir=${NA_SYSTEMD_UNITDIR}
mandir=${CMAKE_INSTALL_FULL_MANDIR}
includedir=${CMAKE_INSTALL_FULL_INCLUDEDIR}
libdir=${CMAKE_INSTALL_FULL_LIBDIR}
datadir=${CMAKE_INSTALL_FULL_DATADIR}
version=${PROJECT_VERSION}
")
