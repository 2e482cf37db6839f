# Read by cpack for each generator (CPACK_PROJECT_CONFIG_FILE).
if(CPACK_GENERATOR STREQUAL "DEB" AND NOT CPACK_NA_INSTALL_PREFIX STREQUAL "/usr")
  message(WARNING
    "This build installs into ${CPACK_NA_INSTALL_PREFIX}, so the package will too, "
    "with its config in ${CPACK_NA_CONFDIR}. A Debian package belongs in /usr and "
    "/etc: configure with -DCMAKE_INSTALL_PREFIX=/usr, or run ./bootstrap deb.")
endif()
