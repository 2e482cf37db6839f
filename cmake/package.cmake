# The Debian packages: `cpack -G DEB` in a build configured with
# -DCMAKE_INSTALL_PREFIX=/usr (`./bootstrap deb` does both). Two packages,
# one per install component (cmake/install.cmake):
#   newsalertd        the daemon, the tool, the unit, the shipped config (as
#                     conffiles), the man pages and the .proto files
#   libnewsalert-dev  the headers, the static library and its pkg-config file
# libnewsalert-dev does not depend on newsalertd: the library takes its
# rules from wherever the caller says, and its headers carry the generated
# protobuf-c code, so a consumer builds and runs without the daemon.

set(CPACK_PACKAGE_NAME newsalertd)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "newsalertd")
set(CPACK_PACKAGE_CONTACT "newsalertd maintainers <maintainers@newsalertd.org>")
# No CPACK_PACKAGE_DESCRIPTION_SUMMARY: CPack would put it above each
# component's description, whose own first line is its package's synopsis.
set(CPACK_RESOURCE_FILE_LICENSE ${CMAKE_SOURCE_DIR}/LICENSE)
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
# Stripped, as Debian ships binaries (lintian: unstripped-binary-or-object).
set(CPACK_STRIP_FILES ON)

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL daemon dev)
set(CPACK_COMPONENTS_GROUPING IGNORE)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://newsalertd.org/")

set(CPACK_DEBIAN_DAEMON_PACKAGE_NAME newsalertd)
set(CPACK_DEBIAN_DAEMON_PACKAGE_SECTION net)
set(CPACK_COMPONENT_DAEMON_DESCRIPTION
    "news alert daemon: alliance, aid and summit alerts from a ZeroMQ feed\n"
    "newsalertd subscribes to a ZeroMQ feed of protobuf news articles, tags\n"
    "alliance, aid and summit developments with YAML rules compiled into one\n"
    "Vectorscan database, and publishes protobuf alerts with evidence\n"
    "sentences on per-tag ZeroMQ topics. It runs as a hardened systemd\n"
    "service.\n"
    ".\n"
    "The package also has newsalert, a tool to tail alerts, record, replay\n"
    "and pack feeds, and tag or evaluate articles offline, and the .proto\n"
    "files of the wire contract in /usr/share/newsalertd/proto.")
string(REPLACE ";" "" CPACK_COMPONENT_DAEMON_DESCRIPTION "${CPACK_COMPONENT_DAEMON_DESCRIPTION}")
# Runtime dependencies come from the binaries' ELF NEEDED entries through
# dpkg-shlibdeps (package dpkg-dev): libzmq5, libevent, libprotobuf-c1,
# libhs5, libyaml, libjansson4, libsodium23, liblinear4, libsystemd0 and
# libc, with their versions.
set(CPACK_DEBIAN_DAEMON_PACKAGE_SHLIBDEPS ON)

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libnewsalert-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
# Nothing to run: the architecture-dependent static library only.
set(CPACK_DEBIAN_DEV_PACKAGE_SHLIBDEPS OFF)
# What newsalert.pc requires (Requires: and -llinear) must be there for
# `pkg-config --cflags --libs newsalert` and the link to work.
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "libprotobuf-c-dev, libyaml-dev, libjansson-dev, \
libvectorscan-dev, libzmq3-dev, libsodium-dev, liblinear-dev, pkg-config")
set(CPACK_DEBIAN_DEV_PACKAGE_SUGGESTS "newsalertd")
set(CPACK_COMPONENT_DEV_DESCRIPTION
    "newsalertd's C library: article and alert codecs, rules, tagger\n"
    "libnewsalert is the library newsalertd is built on: the protobuf-c\n"
    "codecs of newsalert.v1.Article and Alert, the rule compiler and tagger,\n"
    "recorded feeds, the alert journal and a catch-up consumer. The package\n"
    "has its headers, the static library and its pkg-config file, for\n"
    "consumers and tools written in C.")
string(REPLACE ";" "" CPACK_COMPONENT_DEV_DESCRIPTION "${CPACK_COMPONENT_DEV_DESCRIPTION}")

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
set(CPACK_DEBIAN_DAEMON_PACKAGE_CONTROL_EXTRA
    ${_na_debian}/conffiles ${_na_debian}/postinst ${_na_debian}/prerm ${_na_debian}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_NA_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_NA_CONFDIR ${NA_CONFDIR})
set(CPACK_PROJECT_CONFIG_FILE ${CMAKE_SOURCE_DIR}/cmake/cpack-project.cmake)

set(CPACK_GENERATOR DEB)
set(CPACK_SOURCE_GENERATOR TGZ)
set(CPACK_SOURCE_IGNORE_FILES "/build.*/" "/\\\\.git/")
include(CPack)
