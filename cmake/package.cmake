# The Debian package: `cpack -G DEB` in a build configured with
# -DCMAKE_INSTALL_PREFIX=/usr (`./bootstrap deb` does both). One package,
# newsalertd, with the daemon, the tool, the unit, the shipped config (as
# conffiles), the man pages, and the C library for consumers.

set(CPACK_PACKAGE_NAME newsalertd)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "newsalertd")
set(CPACK_PACKAGE_CONTACT "newsalertd maintainers <newsalertd@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "news alert daemon: alliance, aid and summit alerts from a ZeroMQ feed")
set(CPACK_PACKAGE_DESCRIPTION
    "newsalertd subscribes to a ZeroMQ feed of protobuf news articles, tags\n"
    "alliance, aid and summit developments with YAML rules compiled into one\n"
    "Vectorscan database, and publishes protobuf alerts with evidence sentences\n"
    "on per-tag ZeroMQ topics. It runs as a hardened systemd service.\n"
    "\n"
    "The package also has newsalert, a tool to tail alerts, record, replay and\n"
    "pack feeds, and tag or evaluate articles offline, and the static C library\n"
    "libnewsalert with its headers and pkg-config file.")
string(REPLACE ";" "" CPACK_PACKAGE_DESCRIPTION "${CPACK_PACKAGE_DESCRIPTION}")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_STRIP_FILES OFF)

set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# Runtime dependencies come from the binaries' ELF NEEDED entries through
# dpkg-shlibdeps (package dpkg-dev): libzmq5, libevent, libprotobuf-c1,
# libhs5, libyaml, libjansson4, libsodium23, liblinear4, libsystemd0 and libc, with their
# versions.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# Building against libnewsalert needs the development files of what it uses.
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "libprotobuf-c-dev, libvectorscan-dev, libyaml-dev, \
libjansson-dev, libsodium-dev, liblinear-dev, pkg-config")

# Everything shipped under /etc is a conffile: dpkg keeps an operator's
# edits on upgrade and asks before replacing them. CPack does not mark them
# by itself.
set(_na_conffiles
    "${NA_CONFDIR}/newsalertd.yaml\n${NA_CONFDIR}/actors.yaml\n${NA_CONFDIR}/tagger.model\n")
file(GLOB _na_rules RELATIVE ${CMAKE_SOURCE_DIR}/config/rules ${CMAKE_SOURCE_DIR}/config/rules/*.yaml)
list(SORT _na_rules)
foreach(r ${_na_rules})
  string(APPEND _na_conffiles "${NA_CONFDIR}/rules/${r}\n")
endforeach()
set_property(DIRECTORY "${CMAKE_SOURCE_DIR}" APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
             ${CMAKE_SOURCE_DIR}/config/rules)
set(_na_debian ${CMAKE_BINARY_DIR}/debian)
file(MAKE_DIRECTORY ${_na_debian})
file(CONFIGURE OUTPUT ${_na_debian}/conffiles CONTENT "${_na_conffiles}")
file(COPY ${CMAKE_SOURCE_DIR}/packaging/debian/postinst
          ${CMAKE_SOURCE_DIR}/packaging/debian/prerm
          ${CMAKE_SOURCE_DIR}/packaging/debian/postrm
     DESTINATION ${_na_debian}
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                      WORLD_READ WORLD_EXECUTE)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${_na_debian}/conffiles ${_na_debian}/postinst ${_na_debian}/prerm ${_na_debian}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_NA_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_NA_CONFDIR ${NA_CONFDIR})
set(CPACK_PROJECT_CONFIG_FILE ${CMAKE_SOURCE_DIR}/cmake/cpack-project.cmake)

set(CPACK_GENERATOR DEB)
set(CPACK_SOURCE_GENERATOR TGZ)
set(CPACK_SOURCE_IGNORE_FILES "/build.*/" "/\\\\.git/")
include(CPack)
