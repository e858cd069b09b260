# test/install — packaging test: `make install` into a scratch DESTDIR, then
# build programs against the installed copy through pkg-config (shared and
# static), check the SONAME, the exported symbols and that every public
# header compiles alone as C11 and as C++.
#
# The script calls make again (install/uninstall) and must use the same
# build directory and flags as the run that invoked it; they are handed
# over in SR_TEST_* variables (exported only to recipes).

TEST_SCRIPTS += test/install/install.sh

export SR_TEST_BUILD = $(BUILD)
export SR_TEST_CC = $(CC)
export SR_TEST_SAN = $(SAN)
export SR_TEST_OPT = $(OPT)
export SR_TEST_URING = $(URING)
export SR_TEST_PREFIX = /usr
